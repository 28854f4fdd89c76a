//! The in-memory index and the limit/purge rules shared by MemStore and FileStore.
//!
//! `Core<T>` keeps seq -> entry (subject, ts, accounted size, store-specific data `T`), per-subject
//! counts and the stream counters. It never touches disk: every mutating call hands back what it
//! removed so the FileStore can persist tombstones and fix its block accounting.

use crate::error::StoreError;
use crate::filter;
use crate::seqmap::SeqMap;
use crate::subj::Subj;
use crate::types::{DiscardPolicy, StoreLimits, StreamState, SubjectState};
use std::collections::{BTreeMap, HashMap, HashSet};

pub(crate) struct Entry<T> {
    pub subject: Subj,
    pub ts: i64,
    /// Accounted size (mem or file formula, chosen by the owning store); records are
    /// below 4 GiB, and u32 keeps the entry small.
    pub size: u32,
    pub data: T,
}

#[derive(Clone, Copy, Debug)]
struct SubjInfo {
    msgs: u64,
    /// Exact unless `first_stale`, then a lower bound.
    first: u64,
    last: u64,
    first_stale: bool,
}

pub(crate) type Removed<T> = Vec<(u64, Entry<T>)>;

pub(crate) struct Core<T> {
    pub limits: StoreLimits,
    pub msgs: SeqMap<Entry<T>>,
    subjects: HashMap<Subj, SubjInfo>,
    pub first_seq: u64,
    pub first_ts: i64,
    pub last_seq: u64,
    pub last_ts: i64,
    pub bytes: u64,
}

impl<T> Core<T> {
    pub fn new(limits: StoreLimits) -> Self {
        Core {
            limits,
            msgs: SeqMap::default(),
            subjects: HashMap::new(),
            first_seq: 0,
            first_ts: 0,
            last_seq: 0,
            last_ts: 0,
            bytes: 0,
        }
    }

    pub fn state(&self) -> StreamState {
        let msgs = self.msgs.len() as u64;
        let num_deleted = if msgs == 0 {
            0
        } else {
            (self.last_seq + 1)
                .saturating_sub(self.first_seq)
                .saturating_sub(msgs)
        };
        StreamState {
            msgs,
            bytes: self.bytes,
            first_seq: self.first_seq,
            first_ts: self.first_ts,
            last_seq: self.last_seq,
            last_ts: self.last_ts,
            num_subjects: self.subjects.len() as u64,
            num_deleted,
            consumer_count: 0,
        }
    }

    /// Checks max_msg_size and the discard-new limits for a message about to be stored.
    pub fn check_store(
        &self,
        subject: &str,
        hdr_len: usize,
        payload_len: usize,
        size: u64,
    ) -> Result<(), StoreError> {
        let l = &self.limits;
        if l.max_msg_size > 0 && hdr_len + payload_len > l.max_msg_size as usize {
            return Err(StoreError::MaxMsgSize);
        }
        if l.discard != DiscardPolicy::New {
            return Ok(());
        }
        let info = self.subjects.get(subject);
        let maxp = l.max_msgs_per_subject;
        let asl = maxp > 0 && info.is_some_and(|s| s.msgs >= maxp as u64);
        if asl && l.discard_new_per_subject {
            return Err(StoreError::MaxMsgsPerSubject);
        }
        if l.max_msgs > 0 && self.msgs.len() as u64 >= l.max_msgs as u64 && !asl {
            return Err(StoreError::MaxMsgs);
        }
        if l.max_bytes > 0 && self.bytes + size > l.max_bytes as u64 {
            if !asl {
                return Err(StoreError::MaxBytes);
            }
            // At the subject limit: storing drops that subject's oldest; enough room?
            let first = info.map(|i| self.exact_first(subject, i)).unwrap_or(0);
            match self.msgs.get(&first) {
                Some(e) if u64::from(e.size) >= size => {}
                _ => return Err(StoreError::MaxBytes),
            }
        }
        Ok(())
    }

    /// Inserts without enforcing limits. `seq` must be greater than `last_seq`.
    pub fn insert(&mut self, seq: u64, subject: &str, ts: i64, size: u64, data: T) {
        debug_assert!(seq > self.last_seq || (self.last_seq == 0 && self.msgs.is_empty()));
        if self.msgs.is_empty() {
            self.first_seq = seq;
            self.first_ts = ts;
        }
        self.last_seq = seq;
        self.last_ts = ts;
        let size = size.min(u32::MAX as u64) as u32;
        self.bytes += u64::from(size);
        let key = match self.subjects.get_key_value(subject) {
            Some((k, _)) => k.clone(),
            None => Subj::new(subject),
        };
        let info = self.subjects.entry(key.clone()).or_insert(SubjInfo {
            msgs: 0,
            first: seq,
            last: seq,
            first_stale: false,
        });
        if info.msgs == 0 {
            info.first = seq;
            info.first_stale = false;
        }
        info.msgs += 1;
        info.last = seq;
        self.msgs.insert(
            seq,
            Entry {
                subject: key,
                ts,
                size,
                data,
            },
        );
    }

    /// Per-subject limit for `subject`, then max_msgs / max_bytes (discard old).
    pub fn enforce_after_insert(&mut self, subject: &str, removed: &mut Removed<T>) {
        let maxp = self.limits.max_msgs_per_subject;
        if maxp > 0 {
            self.enforce_subject(subject, maxp as u64, removed);
        }
        self.enforce_msgs_bytes(removed);
    }

    fn enforce_subject(&mut self, subject: &str, maxp: u64, removed: &mut Removed<T>) {
        while let Some(info) = self.subjects.get(subject).copied() {
            if info.msgs <= maxp {
                break;
            }
            let first = self.exact_first(subject, &info);
            match self.remove(first) {
                Some(e) => removed.push((first, e)),
                None => break,
            }
        }
    }

    pub fn enforce_msgs_bytes(&mut self, removed: &mut Removed<T>) {
        if self.limits.discard != DiscardPolicy::Old {
            return;
        }
        let (mm, mb) = (self.limits.max_msgs, self.limits.max_bytes);
        while (mm > 0 && self.msgs.len() as u64 > mm as u64) || (mb > 0 && self.bytes > mb as u64) {
            let Some(first) = self.msgs.first_key() else {
                break;
            };
            if let Some(e) = self.remove(first) {
                removed.push((first, e));
            }
        }
    }

    /// Applies all limits except age (used after recovery).
    pub fn enforce_all(&mut self, removed: &mut Removed<T>) {
        let maxp = self.limits.max_msgs_per_subject;
        if maxp > 0 {
            self.enforce_all_subjects(maxp as u64, removed);
        }
        self.enforce_msgs_bytes(removed);
    }

    fn enforce_all_subjects(&mut self, maxp: u64, removed: &mut Removed<T>) {
        let over: Vec<Subj> = self
            .subjects
            .iter()
            .filter(|(_, i)| i.msgs > maxp)
            .map(|(k, _)| k.clone())
            .collect();
        for s in over {
            self.enforce_subject(&s, maxp, removed);
        }
    }

    pub fn update_limits(&mut self, limits: StoreLimits, removed: &mut Removed<T>) {
        let old_maxp = self.limits.max_msgs_per_subject;
        self.limits = limits;
        self.enforce_msgs_bytes(removed);
        let maxp = self.limits.max_msgs_per_subject;
        if maxp > 0 && (old_maxp <= 0 || maxp < old_maxp) {
            self.enforce_all_subjects(maxp as u64, removed);
        }
    }

    /// Reserves `seq` (> last_seq) without a message.
    pub fn skip(&mut self, seq: u64) {
        if seq <= self.last_seq {
            return;
        }
        self.last_seq = seq;
        if self.msgs.is_empty() {
            self.first_seq = seq + 1;
            self.first_ts = 0;
        }
    }

    /// Exact first sequence of a subject (scans when the cached one is stale).
    fn exact_first(&self, subject: &str, info: &SubjInfo) -> u64 {
        if !info.first_stale {
            return info.first;
        }
        self.msgs
            .range(info.first..=info.last)
            .find(|(_, e)| &*e.subject == subject)
            .map(|(s, _)| s)
            .unwrap_or(info.last)
    }

    fn fix_first(&mut self, subject: &str) {
        if let Some(info) = self.subjects.get(subject).copied() {
            if info.first_stale {
                let f = self.exact_first(subject, &info);
                if let Some(i) = self.subjects.get_mut(subject) {
                    i.first = f;
                    i.first_stale = false;
                }
            }
        }
    }

    /// Removes one message, keeping counters, subject state and first_seq right.
    pub fn remove(&mut self, seq: u64) -> Option<Entry<T>> {
        let e = self.msgs.remove(&seq)?;
        self.bytes = self.bytes.saturating_sub(u64::from(e.size));
        let mut drop_subject = false;
        let mut need_last = None;
        if let Some(info) = self.subjects.get_mut(&*e.subject) {
            if info.msgs <= 1 {
                drop_subject = true;
            } else {
                info.msgs -= 1;
                if seq == info.last {
                    need_last = Some((info.first, seq));
                } else if info.msgs == 1 {
                    info.first = info.last;
                    info.first_stale = false;
                } else if seq == info.first {
                    info.first_stale = true;
                }
            }
        }
        if drop_subject {
            self.subjects.remove(&*e.subject);
        } else if let Some((lo, hi)) = need_last {
            let last = self
                .msgs
                .range(lo..hi)
                .rev()
                .find(|(_, x)| x.subject == e.subject)
                .map(|(s, _)| s);
            if let Some(info) = self.subjects.get_mut(&*e.subject) {
                if let Some(l) = last {
                    info.last = l;
                    if info.msgs == 1 {
                        info.first = l;
                        info.first_stale = false;
                    }
                }
            }
        }
        if seq == self.first_seq || self.msgs.is_empty() {
            self.reset_first();
        }
        Some(e)
    }

    fn reset_first(&mut self) {
        match self.msgs.iter().next() {
            Some((s, e)) => {
                self.first_seq = s;
                self.first_ts = e.ts;
            }
            None => {
                self.first_seq = self.last_seq + 1;
                self.first_ts = 0;
            }
        }
    }

    /// Removes everything; first_seq becomes last_seq + 1.
    pub fn purge_all(&mut self, removed: &mut Removed<T>) -> u64 {
        let n = self.msgs.len() as u64;
        let all = std::mem::take(&mut self.msgs);
        removed.extend(all);
        self.subjects.clear();
        self.bytes = 0;
        self.first_seq = self.last_seq + 1;
        self.first_ts = 0;
        n
    }

    /// Removes every message below `seq`. Past the end it purges and moves
    /// last_seq to `seq - 1` so the next message gets `seq` (nats-server's Compact).
    pub fn compact(&mut self, seq: u64, removed: &mut Removed<T>) -> u64 {
        if seq == 0 {
            return self.purge_all(removed);
        }
        if self.first_seq > seq {
            return 0;
        }
        if seq <= self.last_seq {
            let rest = self.msgs.split_off(&seq);
            let old = std::mem::replace(&mut self.msgs, rest);
            let n = old.len() as u64;
            let mut touched: HashSet<Subj> = HashSet::new();
            for (s, e) in old {
                self.bytes = self.bytes.saturating_sub(u64::from(e.size));
                let mut gone = false;
                if let Some(info) = self.subjects.get_mut(&*e.subject) {
                    info.msgs -= 1;
                    gone = info.msgs == 0;
                    if !gone && info.first < seq {
                        info.first = seq;
                        info.first_stale = true;
                    }
                }
                if gone {
                    self.subjects.remove(&*e.subject);
                    touched.remove(&*e.subject);
                } else {
                    touched.insert(e.subject.clone());
                }
                removed.push((s, e));
            }
            for s in touched {
                self.fix_first(&s);
            }
            self.reset_first();
            n
        } else {
            let n = self.purge_all(removed);
            self.first_seq = seq;
            self.last_seq = seq - 1;
            n
        }
    }

    /// nats-server's PurgeEx.
    pub fn purge(
        &mut self,
        subject: Option<&str>,
        up_to: Option<u64>,
        keep: Option<u64>,
        removed: &mut Removed<T>,
    ) -> u64 {
        let seq = up_to.unwrap_or(0);
        let keep = keep.unwrap_or(0);
        if seq == 1 {
            return 0;
        }
        let subj = subject.unwrap_or("");
        if filter::is_all(subj) {
            if keep == 0 && seq == 0 {
                return self.purge_all(removed);
            }
            if seq > 1 {
                return self.compact(seq, removed);
            }
        }
        let (total, first, last) = self.filtered_totals(subj);
        if total == 0 {
            return 0;
        }
        let mut maxp = 0;
        if keep > 0 {
            if keep >= total {
                return 0;
            }
            maxp = total - keep;
        }
        let hi = if seq >= 1 { seq - 1 } else { last };
        if hi < first {
            return 0;
        }
        let all = filter::is_all(subj);
        let mut targets = Vec::new();
        for (s, e) in self.msgs.range(first..=hi) {
            if all || filter::matches(subj, &e.subject) {
                targets.push(s);
                if maxp > 0 && targets.len() as u64 >= maxp {
                    break;
                }
            }
        }
        let mut n = 0;
        for s in targets {
            if let Some(e) = self.remove(s) {
                removed.push((s, e));
                n += 1;
            }
        }
        n
    }

    /// (count, first lower bound, last) over subjects matching `filt`.
    fn filtered_totals(&self, filt: &str) -> (u64, u64, u64) {
        if filter::is_all(filt) {
            return (self.msgs.len() as u64, self.first_seq, self.last_seq);
        }
        let (mut n, mut f, mut l) = (0u64, u64::MAX, 0u64);
        let mut add = |i: &SubjInfo| {
            n += i.msgs;
            f = f.min(i.first);
            l = l.max(i.last);
        };
        if filter::is_literal(filt) {
            if let Some(i) = self.subjects.get(filt) {
                add(i);
            }
        } else {
            for (k, i) in &self.subjects {
                if filter::matches(filt, k) {
                    add(i);
                }
            }
        }
        (n, f, l)
    }

    /// Removes messages (from the front, stopping at the first young one) with ts <= now - max_age.
    pub fn expire(&mut self, now: i64, removed: &mut Removed<T>) -> u64 {
        let age = self.limits.max_age;
        if age.is_zero() {
            return 0;
        }
        let min = now.saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64);
        let mut n = 0;
        loop {
            let Some(s) = self
                .msgs
                .iter()
                .next()
                .filter(|(_, e)| e.ts <= min)
                .map(|(s, _)| s)
            else {
                break;
            };
            if let Some(e) = self.remove(s) {
                removed.push((s, e));
                n += 1;
            }
        }
        n
    }

    /// First message with seq >= start matching `filt`.
    pub fn find_next(&self, filt: &str, start: u64) -> Option<u64> {
        let start = start.max(self.first_seq);
        if filter::is_all(filt) {
            return self.msgs.range(start..).next().map(|(s, _)| s);
        }
        if filter::is_literal(filt) {
            let info = self.subjects.get(filt)?;
            if start > info.last {
                return None;
            }
            if !info.first_stale && start <= info.first {
                return Some(info.first);
            }
            return self
                .msgs
                .range(start.max(info.first)..=info.last)
                .find(|(_, e)| &*e.subject == filt)
                .map(|(s, _)| s);
        }
        self.msgs
            .range(start..)
            .find(|(_, e)| filter::matches(filt, &e.subject))
            .map(|(s, _)| s)
    }

    /// Last message matching `filt`.
    pub fn find_last(&self, filt: &str) -> Option<u64> {
        if filter::is_all(filt) {
            return self.msgs.last_key();
        }
        if filter::is_literal(filt) {
            return self.subjects.get(filt).map(|i| i.last);
        }
        self.subjects
            .iter()
            .filter(|(k, _)| filter::matches(filt, k))
            .map(|(_, i)| i.last)
            .max()
    }

    /// Walks back from the newest message while timestamps are >= `ts`, so
    /// the cost is the size of the window, not of the stream.
    pub fn first_seq_since(&self, ts: i64) -> u64 {
        let mut first = self.last_seq + 1;
        for (seq, e) in self.msgs.iter().rev() {
            if e.ts < ts {
                break;
            }
            first = seq;
        }
        first
    }

    pub fn num_pending(&self, filt: &str, start: u64) -> u64 {
        if start > self.last_seq || self.msgs.is_empty() {
            return 0;
        }
        let (total, first, last) = self.filtered_totals(filt);
        if total == 0 || start > last {
            return 0;
        }
        if start <= first.max(self.first_seq) {
            return total;
        }
        let all = filter::is_all(filt);
        // No interior deletes: the count is plain arithmetic (the common
        // case for consumers replaying a stream).
        if all && self.msgs.len() as u64 == self.last_seq - self.first_seq + 1 {
            return self.last_seq - start.max(self.first_seq) + 1;
        }
        let m = |e: &Entry<T>| all || filter::matches(filt, &e.subject);
        let lo = first.max(self.first_seq);
        if start - lo < last - start {
            let before = self.msgs.range(lo..start).filter(|(_, e)| m(e)).count() as u64;
            total - before
        } else {
            self.msgs.range(start..=last).filter(|(_, e)| m(e)).count() as u64
        }
    }

    pub fn subjects_state(&mut self, filt: &str) -> BTreeMap<String, SubjectState> {
        let keys: Vec<Subj> = if filter::is_all(filt) {
            self.subjects.keys().cloned().collect()
        } else if filter::is_literal(filt) {
            self.subjects
                .get_key_value(filt)
                .map(|(k, _)| k.clone())
                .into_iter()
                .collect()
        } else {
            self.subjects
                .keys()
                .filter(|k| filter::matches(filt, k))
                .cloned()
                .collect()
        };
        let mut out = BTreeMap::new();
        for k in keys {
            self.fix_first(&k);
            if let Some(i) = self.subjects.get(&k) {
                out.insert(
                    k.to_string(),
                    SubjectState {
                        msgs: i.msgs,
                        first: i.first,
                        last: i.last,
                    },
                );
            }
        }
        out
    }

    /// Interior deleted sequences between first_seq and last_seq.
    pub fn deleted(&self) -> Vec<u64> {
        let mut out = Vec::new();
        if self.msgs.is_empty() {
            return out;
        }
        let mut next = self.first_seq;
        for s in self.msgs.keys() {
            out.extend(next..s);
            next = s + 1;
        }
        out.extend(next..=self.last_seq);
        out
    }

    /// Load helper: Deleted for gaps inside [first, last], NotFound otherwise.
    pub fn missing(&self, seq: u64) -> StoreError {
        if !self.msgs.is_empty() && seq >= self.first_seq && seq <= self.last_seq {
            StoreError::Deleted
        } else {
            StoreError::NotFound
        }
    }
}
