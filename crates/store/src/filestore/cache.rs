//! Read cache: a few sequential read-ahead windows over block files, so a consumer replaying
//! a stream (or a direct get near the previous one) is served from memory instead of one
//! `pread` per message. Random reads cost what they did before (one read of the record);
//! only a read that continues where a window ended triggers read-ahead, which doubles with
//! every sequential refill up to [`MAX_WINDOW`]. Memory is bounded by
//! `MAX_WINDOWS * MAX_WINDOW`; the least recently used window is reused.
//!
//! The cache holds file bytes, not decoded messages: every hit is still decoded and
//! crc-checked by the caller. Anything that rewrites bytes already in a block (secure erase,
//! compaction, dropping or re-creating a block) must call [`ReadCache::invalidate`]; appends
//! never touch bytes a window holds because windows stop at the block's length.

use std::io;

use crate::io::StoreFile;

/// Concurrent sequential readers served at once (consumers at different positions).
const MAX_WINDOWS: usize = 4;
/// Read-ahead after the first sequential continuation.
const MIN_WINDOW: usize = 64 * 1024;
const MAX_WINDOW: usize = 1024 * 1024;
/// A read starting this close after a window's end still counts as sequential
/// (deleted or filtered-out records in between).
const SEQ_SLACK: u64 = 64 * 1024;

struct Window {
    blk: u32,
    start: u64,
    data: Vec<u8>,
    /// Read-ahead size for the next refill.
    ahead: usize,
    last_used: u64,
}

impl Window {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    fn covers(&self, blk: u32, off: u64, len: usize) -> bool {
        self.blk == blk && off >= self.start && off + len as u64 <= self.end()
    }
}

/// Counters for tests and the curious.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// File reads issued (direct record reads and window refills).
    pub reads: u64,
    /// Bytes held by the windows now.
    pub bytes: usize,
}

#[derive(Default)]
pub(crate) struct ReadCache {
    windows: Vec<Window>,
    tick: u64,
    pub stats: CacheStats,
}

impl ReadCache {
    /// Returns the `len` bytes at `off` of block `blk` (whose file currently holds
    /// `blk_len` valid bytes), from a window when possible.
    pub fn read<'a>(
        &'a mut self,
        file: &dyn StoreFile,
        blk: u32,
        blk_len: u64,
        off: u64,
        len: usize,
    ) -> io::Result<&'a [u8]> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(i) = self.windows.iter().position(|w| w.covers(blk, off, len)) {
            self.stats.hits += 1;
            let w = &mut self.windows[i];
            w.last_used = tick;
            let from = (off - w.start) as usize;
            return Ok(&w.data[from..from + len]);
        }
        self.stats.misses += 1;
        self.stats.reads += 1;
        // Sequential: this read starts at (or just after) where a window of this block ends.
        let seq = self
            .windows
            .iter()
            .position(|w| w.blk == blk && off >= w.end() && off - w.end() <= SEQ_SLACK);
        let (i, want) = match seq {
            Some(i) => {
                let ahead = self.windows[i].ahead;
                self.windows[i].ahead = (ahead * 2).min(MAX_WINDOW);
                (i, ahead.max(len))
            }
            None => (self.victim(), len),
        };
        // Never past the block's valid bytes: appends beyond them must not be cached half-done.
        let avail = blk_len.saturating_sub(off) as usize;
        let n = want.min(avail).max(len);
        let w = if i < self.windows.len() {
            &mut self.windows[i]
        } else {
            self.windows.push(Window {
                blk,
                start: 0,
                data: Vec::new(),
                ahead: MIN_WINDOW,
                last_used: 0,
            });
            &mut self.windows[i]
        };
        if seq.is_none() {
            w.ahead = MIN_WINDOW;
        }
        w.blk = blk;
        w.start = off;
        w.last_used = tick;
        w.data.clear();
        w.data.resize(n, 0);
        if let Err(e) = file.read_at(&mut w.data, off) {
            w.data.clear();
            return Err(e);
        }
        // Keep small windows small: a big buffer left from earlier read-ahead is released
        // when this window is reused for random access.
        if w.data.capacity() > 2 * MAX_WINDOW.max(n) {
            w.data.shrink_to(n);
        }
        Ok(&w.data[..len])
    }

    /// Index of the window to reuse: a new slot while there is room, else the least recent.
    fn victim(&self) -> usize {
        if self.windows.len() < MAX_WINDOWS {
            return self.windows.len();
        }
        self.windows
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.last_used)
            .map_or(0, |(i, _)| i)
    }

    /// Forgets everything cached from block `blk` (its bytes changed or it is gone).
    pub fn invalidate(&mut self, blk: u32) {
        self.windows.retain(|w| w.blk != blk);
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.windows.iter().map(|w| w.data.capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{SimIo, StoreIo};
    use std::path::Path;

    #[test]
    fn sequential_reads_hit_and_random_reads_stay_small() {
        let io = SimIo::new();
        let f = io.open(Path::new("/c/1.blk"), true).unwrap();
        let data: Vec<u8> = (0..4 * MAX_WINDOW).map(|i| (i % 251) as u8).collect();
        f.write_at(&data, 0).unwrap();
        let len = data.len() as u64;
        let mut c = ReadCache::default();
        let rec = 100usize;
        let mut off = 0u64;
        while off + rec as u64 <= len {
            let got = c.read(f.as_ref(), 1, len, off, rec).unwrap().to_vec();
            assert_eq!(got, data[off as usize..off as usize + rec]);
            off += rec as u64;
        }
        let n = len / rec as u64;
        assert!(c.stats.reads < n / 100, "{:?} for {n} reads", c.stats);
        assert!(c.bytes() <= MAX_WINDOWS * 2 * MAX_WINDOW);
        // Random reads: one file read each, windows no bigger than the record.
        let mut c = ReadCache::default();
        for k in 0..50u64 {
            let off = (k * 7919 * 97) % (len - 200);
            let got = c.read(f.as_ref(), 1, len, off, 200).unwrap().to_vec();
            assert_eq!(got, data[off as usize..off as usize + 200]);
        }
        assert_eq!(c.stats.reads, 50);
        assert!(c.bytes() <= MAX_WINDOWS * 200 * 2);
    }

    #[test]
    fn never_reads_past_block_len_and_invalidate_forgets() {
        let io = SimIo::new();
        let f = io.open(Path::new("/c/2.blk"), true).unwrap();
        f.write_at(&[1u8; 1000], 0).unwrap();
        let mut c = ReadCache::default();
        c.read(f.as_ref(), 2, 500, 0, 10).unwrap();
        // Sequential continuation, clipped at the valid length 500.
        c.read(f.as_ref(), 2, 500, 10, 10).unwrap();
        assert!(c.windows.iter().all(|w| w.end() <= 500));
        f.write_at(&[9u8; 10], 20).unwrap();
        c.invalidate(2);
        assert_eq!(c.read(f.as_ref(), 2, 1000, 20, 10).unwrap(), &[9u8; 10]);
        // A short file is an error, not a panic, and leaves nothing half-cached.
        assert!(c.read(f.as_ref(), 2, 5000, 2000, 10).is_err());
    }
}
