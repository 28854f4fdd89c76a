//! `SeqMap`: the sequence -> entry map behind `Core`, built for what a stream looks like:
//! sequences arrive in increasing order and are mostly dense, with removals at the front
//! (limits) and scattered holes (KV updates, deletes).
//!
//! A `BTreeMap<u64, V>` costs a key plus node slack per message (about twice the entry
//! itself for small entries). Here sequences are grouped into chunks of 64: one bitmask says
//! which are present and a vector holds only the present values, in order. A dense stream
//! pays the entry plus well under a byte of overhead per message; a sparse one never pays
//! more than one chunk per live message (what the BTreeMap cost anyway). Chunks that empty
//! are dropped, and a chunk's vector is shrunk when most of it is gone.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

const SHIFT: u32 = 6;
const LOW: u64 = (1 << SHIFT) - 1;

struct Chunk<V> {
    mask: u64,
    vals: Vec<V>,
}

impl<V> Chunk<V> {
    /// Index into `vals` of bit `bit` (which must be set for a lookup).
    fn slot(&self, bit: u64) -> usize {
        (self.mask & ((1u64 << bit) - 1)).count_ones() as usize
    }
}

pub(crate) struct SeqMap<V> {
    chunks: BTreeMap<u64, Chunk<V>>,
    len: usize,
}

impl<V> Default for SeqMap<V> {
    fn default() -> Self {
        SeqMap {
            chunks: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<V> SeqMap<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, seq: &u64) -> Option<&V> {
        let c = self.chunks.get(&(seq >> SHIFT))?;
        let bit = seq & LOW;
        (c.mask & (1 << bit) != 0).then(|| &c.vals[c.slot(bit)])
    }

    pub fn get_mut(&mut self, seq: &u64) -> Option<&mut V> {
        let c = self.chunks.get_mut(&(seq >> SHIFT))?;
        let bit = seq & LOW;
        if c.mask & (1 << bit) == 0 {
            return None;
        }
        let i = c.slot(bit);
        Some(&mut c.vals[i])
    }

    /// Inserts or replaces; appending past the end (the usual case) is a push.
    pub fn insert(&mut self, seq: u64, v: V) -> Option<V> {
        let c = self.chunks.entry(seq >> SHIFT).or_insert_with(|| Chunk {
            mask: 0,
            vals: Vec::new(),
        });
        let bit = seq & LOW;
        let i = c.slot(bit);
        if c.mask & (1 << bit) != 0 {
            return Some(std::mem::replace(&mut c.vals[i], v));
        }
        c.mask |= 1 << bit;
        c.vals.insert(i, v);
        self.len += 1;
        None
    }

    pub fn remove(&mut self, seq: &u64) -> Option<V> {
        let key = seq >> SHIFT;
        let c = self.chunks.get_mut(&key)?;
        let bit = seq & LOW;
        if c.mask & (1 << bit) == 0 {
            return None;
        }
        let i = c.slot(bit);
        c.mask &= !(1 << bit);
        let v = c.vals.remove(i);
        self.len -= 1;
        if c.mask == 0 {
            self.chunks.remove(&key);
        } else if c.vals.capacity() >= 16 && c.vals.len() * 4 <= c.vals.capacity() {
            c.vals.shrink_to_fit();
        }
        Some(v)
    }

    pub fn first_key(&self) -> Option<u64> {
        self.iter().next().map(|(s, _)| s)
    }

    pub fn last_key(&self) -> Option<u64> {
        self.iter().next_back().map(|(s, _)| s)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &V)> + '_ {
        self.range(..)
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.iter().map(|(s, _)| s)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    pub fn range<R: RangeBounds<u64>>(
        &self,
        r: R,
    ) -> impl DoubleEndedIterator<Item = (u64, &V)> + '_ {
        let lo = match r.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        // `hi` is inclusive; an empty range gets lo > hi.
        let (hi, empty) = match r.end_bound() {
            Bound::Included(s) => (*s, false),
            Bound::Excluded(s) => (s.saturating_sub(1), *s == 0),
            Bound::Unbounded => (u64::MAX, false),
        };
        let empty = empty || lo > hi;
        let (clo, chi) = if empty {
            (1, 0)
        } else {
            (lo >> SHIFT, hi >> SHIFT)
        };
        let chunks = if clo <= chi {
            Some(self.chunks.range(clo..=chi))
        } else {
            None
        };
        chunks.into_iter().flatten().flat_map(move |(k, c)| {
            let base = k << SHIFT;
            let mut mask = c.mask;
            // Clip the mask to [lo, hi] so the iterator needs no filter.
            if base < lo {
                mask &= !((1u64 << (lo - base)) - 1);
            }
            if hi - base < LOW {
                mask &= (1u64 << (hi - base + 1)) - 1;
            }
            let below_first = (mask & mask.wrapping_neg()).wrapping_sub(1);
            let skip = (c.mask & below_first).count_ones() as usize;
            let take = mask.count_ones() as usize;
            let vals = if take == 0 {
                &c.vals[..0]
            } else {
                &c.vals[skip..skip + take]
            };
            ChunkIter {
                base,
                mask,
                vals: vals.iter(),
            }
        })
    }

    /// Splits off everything >= `seq` (as `BTreeMap::split_off`).
    pub fn split_off(&mut self, seq: &u64) -> SeqMap<V> {
        let key = seq >> SHIFT;
        let bit = seq & LOW;
        let mut tail = self.chunks.split_off(&key);
        // The chunk holding `seq` may straddle the cut.
        if bit != 0 {
            if let Some(mut c) = tail.remove(&key) {
                let keep = c.mask & ((1u64 << bit) - 1);
                let n = keep.count_ones() as usize;
                let hi_vals = c.vals.split_off(n);
                let hi_mask = c.mask & !keep;
                if keep != 0 {
                    c.mask = keep;
                    self.chunks.insert(key, c);
                }
                if hi_mask != 0 {
                    tail.insert(
                        key,
                        Chunk {
                            mask: hi_mask,
                            vals: hi_vals,
                        },
                    );
                }
            }
        }
        let tail_len: usize = tail.values().map(|c| c.vals.len()).sum();
        self.len -= tail_len;
        SeqMap {
            chunks: tail,
            len: tail_len,
        }
    }
}

impl<V> IntoIterator for SeqMap<V> {
    type Item = (u64, V);
    type IntoIter = IntoIter<V>;

    fn into_iter(self) -> IntoIter<V> {
        IntoIter {
            chunks: self.chunks.into_iter(),
            cur: None,
        }
    }
}

pub(crate) struct IntoIter<V> {
    chunks: std::collections::btree_map::IntoIter<u64, Chunk<V>>,
    cur: Option<(u64, u64, std::vec::IntoIter<V>)>,
}

impl<V> Iterator for IntoIter<V> {
    type Item = (u64, V);

    fn next(&mut self) -> Option<(u64, V)> {
        loop {
            if let Some((base, mask, vals)) = &mut self.cur {
                if *mask != 0 {
                    let bit = mask.trailing_zeros() as u64;
                    *mask &= *mask - 1;
                    if let Some(v) = vals.next() {
                        return Some((*base + bit, v));
                    }
                }
            }
            let (k, c) = self.chunks.next()?;
            self.cur = Some((k << SHIFT, c.mask, c.vals.into_iter()));
        }
    }
}

struct ChunkIter<'a, V> {
    base: u64,
    mask: u64,
    vals: std::slice::Iter<'a, V>,
}

impl<'a, V> Iterator for ChunkIter<'a, V> {
    type Item = (u64, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if self.mask == 0 {
            return None;
        }
        let bit = self.mask.trailing_zeros() as u64;
        self.mask &= self.mask - 1;
        self.vals.next().map(|v| (self.base + bit, v))
    }
}

impl<V> DoubleEndedIterator for ChunkIter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.mask == 0 {
            return None;
        }
        let bit = 63 - self.mask.leading_zeros() as u64;
        self.mask &= !(1u64 << bit);
        self.vals.next_back().map(|v| (self.base + bit, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift so the test needs no dependency and is reproducible.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn same(m: &SeqMap<u64>, b: &BTreeMap<u64, u64>, rng: &mut Rng) {
        assert_eq!(m.len(), b.len());
        let got: Vec<(u64, u64)> = m.iter().map(|(k, v)| (k, *v)).collect();
        let want: Vec<(u64, u64)> = b.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
        for _ in 0..20 {
            let lo = rng.below(700);
            let hi = lo + rng.below(300);
            let got: Vec<u64> = m.range(lo..hi).map(|(k, _)| k).collect();
            let want: Vec<u64> = b.range(lo..hi).map(|(k, _)| *k).collect();
            assert_eq!(got, want, "range {lo}..{hi}");
            let got: Vec<u64> = m.range(lo..=hi).rev().map(|(k, _)| k).collect();
            let want: Vec<u64> = b.range(lo..=hi).rev().map(|(k, _)| *k).collect();
            assert_eq!(got, want, "rev range {lo}..={hi}");
            assert_eq!(m.get(&lo), b.get(&lo));
        }
        assert_eq!(m.first_key(), b.keys().next().copied());
        assert_eq!(m.last_key(), b.keys().next_back().copied());
    }

    #[test]
    fn behaves_like_a_btreemap() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut m = SeqMap::default();
        let mut b = BTreeMap::new();
        let mut next = 1u64;
        for round in 0..4000 {
            match rng.below(10) {
                0..=4 => {
                    m.insert(next, next * 3);
                    b.insert(next, next * 3);
                    next += 1 + rng.below(3) / 2;
                }
                5..=7 => {
                    let k = rng.below(next + 1);
                    assert_eq!(m.remove(&k), b.remove(&k));
                }
                8 => {
                    // Remove from the front, as discard-old does.
                    if let Some(k) = b.keys().next().copied() {
                        assert_eq!(m.remove(&k), b.remove(&k));
                    }
                }
                _ => {
                    if let Some(v) = m.get_mut(&(next - 1)) {
                        *v += 1;
                        *b.get_mut(&(next - 1)).unwrap() += 1;
                    }
                }
            }
            if round % 200 == 0 {
                same(&m, &b, &mut rng);
            }
        }
        same(&m, &b, &mut rng);
        for cut in [0, 1, next / 3, next / 3 + 1, next / 2 + 64, next + 5] {
            let (mut m2, mut b2) = (SeqMap::default(), BTreeMap::new());
            for (k, v) in m.iter() {
                m2.insert(k, *v);
                b2.insert(k, *v);
            }
            let mt = m2.split_off(&cut);
            let bt = b2.split_off(&cut);
            same(&m2, &b2, &mut rng);
            same(&mt, &bt, &mut rng);
            let all: Vec<(u64, u64)> = mt.into_iter().collect();
            assert_eq!(all, bt.into_iter().collect::<Vec<_>>());
        }
        assert_eq!(m.range(5..5).count(), 0);
        assert_eq!(m.range(..0).count(), 0);
    }
}
