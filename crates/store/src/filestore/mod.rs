//! FileStore: the disk `MsgStore`. Owns the store lock, appends records to the active block,
//! rolls blocks, persists removals as markers, compacts sparse blocks and serves reads.
//! Format in `record`, accounting in `block`, replay in `recover`, group commit in `sync`,
//! the clean-stop index shortcut in `snapshot`.

mod block;
mod cache;
mod index;
mod record;
mod recover;
mod snapshot;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::core::{Core, Removed};
use crate::error::StoreError;
use crate::io::{RealIo, StoreIo};
use crate::types::{file_msg_size, StoreLimits, StoredMsg, StreamState, SubjectState};
use crate::{now_nanos, MsgStore};
use block::{block_path, tmp_path, Block};
use index::Loc;
use record::Kind;
pub use recover::{DamagedRange, RecoveryReport};
pub use snapshot::Rejected as SnapshotRejected;

/// Scans a FileStore directory without changing anything (the offline
/// `rnats-server --check-store`): the same scan recovery does, through
/// read-only files, so damage is reported but nothing is truncated.
pub fn check_store(dir: &std::path::Path) -> Result<RecoveryReport, StoreError> {
    let recovered = recover::recover(
        &crate::io::ReadOnlyIo,
        dir,
        crate::types::StoreLimits::default(),
    )?;
    Ok(recovered.report)
}
pub use cache::CacheStats;
pub use sync::SyncPolicy;

/// FileStore settings.
#[derive(Clone, Debug)]
pub struct FileStoreConfig {
    pub dir: PathBuf,
    /// A block rolls once it would grow past this (8 MiB is a good default).
    pub block_size: u64,
    pub sync: SyncPolicy,
    pub limits: StoreLimits,
}

impl FileStoreConfig {
    pub const DEFAULT_BLOCK_SIZE: u64 = 8 * 1024 * 1024;

    pub fn new(dir: impl Into<PathBuf>, limits: StoreLimits) -> Self {
        FileStoreConfig {
            dir: dir.into(),
            block_size: Self::DEFAULT_BLOCK_SIZE,
            sync: SyncPolicy::Interval(std::time::Duration::from_secs(120)),
            limits,
        }
    }
}

struct Inner {
    core: Core<Loc>,
    blocks: BTreeMap<u32, Block>,
    active: u32,
    closed: bool,
    buf: Vec<u8>,
    cache: cache::ReadCache,
}

pub struct FileStore {
    dir: PathBuf,
    block_size: u64,
    io: Arc<dyn StoreIo>,
    inner: Mutex<Inner>,
    sync: Arc<sync::SyncShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    report: RecoveryReport,
}

impl FileStore {
    pub fn open(cfg: FileStoreConfig) -> Result<Self, StoreError> {
        Self::open_with_io(cfg, Arc::new(RealIo))
    }

    pub fn open_with_io(cfg: FileStoreConfig, io: Arc<dyn StoreIo>) -> Result<Self, StoreError> {
        let rec = Self::load_index(io.as_ref(), &cfg)?;
        let last = rec.core.last_seq;
        let sync = sync::SyncShared::new(cfg.sync.clone(), last);
        let mut inner = Inner {
            core: rec.core,
            blocks: rec.blocks,
            active: 0,
            closed: false,
            buf: Vec::new(),
            cache: cache::ReadCache::default(),
        };
        // Whatever we recovered is made durable before we report it as synced (a snapshot
        // is only written after a clean stop synced every block).
        if !rec.report.from_snapshot {
            for b in inner.blocks.values() {
                b.file.start_writeback();
            }
            for b in inner.blocks.values() {
                b.file.sync()?;
            }
        }
        let store = FileStore {
            dir: cfg.dir,
            // Offsets in the index are u32 (see `Loc`).
            block_size: cfg.block_size.clamp(64, 1 << 30),
            io,
            inner: Mutex::new(Inner {
                core: Core::new(cfg.limits),
                blocks: BTreeMap::new(),
                active: 0,
                closed: true,
                buf: Vec::new(),
                cache: cache::ReadCache::default(),
            }),
            sync,
            thread: Mutex::new(None),
            report: rec.report,
        };
        match inner.blocks.iter().next_back() {
            Some((n, b)) if b.len < store.block_size => {
                inner.active = *n;
                store.sync.set_active(b.file.clone());
            }
            _ => store.roll(&mut inner)?,
        }
        // Limits may have been exceeded by records whose removal markers were lost.
        let old_first = inner.core.first_seq;
        let mut removed = Removed::new();
        inner.core.enforce_all(&mut removed);
        store.persist_removals(&mut inner, old_first, removed)?;
        *store.inner.lock() = inner;
        store.sync.sync_now()?;
        let shared = store.sync.clone();
        let handle = std::thread::Builder::new()
            .name("rnats-store-sync".into())
            .spawn(move || shared.run())?;
        *store.thread.lock() = Some(handle);
        Ok(store)
    }

    /// The index from the clean-stop snapshot when it is valid, else from scanning every
    /// block. Either way the snapshot is deleted before the store writes anything.
    fn load_index(
        io: &dyn StoreIo,
        cfg: &FileStoreConfig,
    ) -> Result<recover::Recovered, StoreError> {
        let loaded = snapshot::load(io, &cfg.dir, cfg.limits.clone());
        snapshot::discard(io, &cfg.dir)?;
        let rejected = match loaded {
            Ok(l) => {
                let report = RecoveryReport {
                    blocks: l.blocks.len(),
                    msgs: l.core.msgs.len() as u64,
                    from_snapshot: true,
                    ..Default::default()
                };
                recover::remove_tmp_blocks(io, &cfg.dir)?;
                return Ok(recover::Recovered {
                    core: l.core,
                    blocks: l.blocks,
                    report,
                });
            }
            Err(snapshot::Rejected::Missing) => None,
            Err(e) => Some(e),
        };
        let mut rec = recover::recover(io, &cfg.dir, cfg.limits.clone())?;
        rec.report.snapshot_rejected = rejected.map(|e| e.to_string());
        Ok(rec)
    }

    /// Read-cache counters (hits, misses, file reads).
    pub fn cache_stats(&self) -> CacheStats {
        let g = self.inner.lock();
        CacheStats {
            bytes: g.cache.bytes(),
            ..g.cache.stats
        }
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The block files' directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn lock(&self) -> Result<parking_lot::MutexGuard<'_, Inner>, StoreError> {
        let g = self.inner.lock();
        if g.closed {
            return Err(StoreError::Closed);
        }
        Ok(g)
    }

    /// Starts a new active block with a header record describing the stream so far.
    fn roll(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let num = inner.blocks.keys().next_back().map_or(1, |n| n + 1);
        // The number may have belonged to a block that was dropped.
        inner.cache.invalidate(num);
        let path = block_path(&self.dir, num);
        let file = self.io.open(&path, true)?;
        file.truncate(0)?;
        let mut buf = Vec::new();
        let c = &inner.core;
        record::encode_block_header(&mut buf, c.first_seq, c.last_seq, c.last_ts);
        file.write_at(&buf, 0)?;
        let mut blk = Block::new(num, file.clone(), buf.len() as u64);
        blk.floor = buf.len() as u64;
        inner.blocks.insert(num, blk);
        inner.active = num;
        self.sync.set_active(file);
        self.sync.note_dirty();
        Ok(())
    }

    /// Appends `inner.buf` as one or more whole records to the active block (rolling first
    /// if it would overflow). Returns (block, offset).
    fn append_buf(&self, inner: &mut Inner) -> Result<(u32, u64), StoreError> {
        let (blk, off) = self.reserve(inner)?;
        self.write_reserved(inner, blk, off)?;
        Ok((blk, off))
    }

    /// Rolls if `inner.buf` would overflow the active block; returns where it will be written.
    fn reserve(&self, inner: &mut Inner) -> Result<(u32, u64), StoreError> {
        let n = inner.buf.len() as u64;
        let need_roll = match inner.blocks.get(&inner.active) {
            Some(b) => b.len > b.floor && b.len + n > self.block_size,
            None => true,
        };
        if need_roll {
            self.roll(inner)?;
        }
        let blk = inner
            .blocks
            .get(&inner.active)
            .ok_or_else(|| StoreError::Corrupt("no active block".into()))?;
        Ok((blk.num, blk.len))
    }

    /// Writes `inner.buf` at the end of block `blk` (where `reserve` said).
    fn write_reserved(&self, inner: &mut Inner, blk: u32, off: u64) -> Result<(), StoreError> {
        let b = inner
            .blocks
            .get_mut(&blk)
            .ok_or_else(|| StoreError::Corrupt("no active block".into()))?;
        b.file.write_at(&inner.buf, off)?;
        b.len = off + inner.buf.len() as u64;
        Ok(())
    }

    fn write_marker(&self, inner: &mut Inner, kind: Kind, seq: u64) -> Result<(), StoreError> {
        inner.buf.clear();
        let ts = inner.core.last_ts;
        record::encode_marker(&mut inner.buf, kind, seq, ts);
        let (blk, _) = self.append_buf(inner)?;
        if kind == Kind::Tombstone {
            if let Some(b) = inner.blocks.get_mut(&blk) {
                b.tmax = b.tmax.max(seq);
            }
        }
        Ok(())
    }

    fn append_msg(
        &self,
        inner: &mut Inner,
        seq: u64,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) -> Result<(), StoreError> {
        if subject.len() > u16::MAX as usize
            || record::msg_record_len(subject.len(), headers.len(), payload.len())
                > record::MAX_RECORD
        {
            return Err(StoreError::MaxMsgSize);
        }
        let old_first = inner.core.first_seq;
        inner.buf.clear();
        record::encode_msg(&mut inner.buf, seq, ts, subject, headers, payload);
        let len = inner.buf.len() as u32;
        let (blk, off) = self.reserve(inner)?;
        let size = file_msg_size(subject.len(), headers.len(), payload.len());
        let loc = Loc {
            blk,
            len,
            off: off as u32,
        };
        inner.core.insert(seq, subject, ts, size, loc);
        let mut removed = Removed::new();
        inner.core.enforce_after_insert(subject, &mut removed);
        // What the limits removed (a full stream's oldest, a KV key's previous value) is
        // recorded by markers that ride in the same write as the message: one write and,
        // under `sync_interval: always`, one fsync per publish, full stream or not.
        let new_first = inner.core.first_seq;
        let mut tmax = 0;
        for (s, _) in &removed {
            if *s >= new_first {
                record::encode_marker(&mut inner.buf, Kind::Tombstone, *s, ts);
                tmax = tmax.max(*s);
            }
        }
        if new_first > old_first {
            record::encode_marker(&mut inner.buf, Kind::Compact, new_first, ts);
        }
        if let Err(e) = self.write_reserved(inner, blk, off) {
            // Keep the index in step with the file: the message is not there.
            inner.core.remove(seq);
            return Err(e);
        }
        if let Some(b) = inner.blocks.get_mut(&blk) {
            b.live_bytes += len as u64;
            b.live_msgs += 1;
            b.note_msg(seq);
            b.tmax = b.tmax.max(tmax);
        }
        let r = self.persist_removals_inner(inner, old_first, removed, true);
        self.sync.note_written(seq);
        r
    }

    /// Records removals on disk (tombstones / a compact marker), fixes block accounting and
    /// compacts or drops blocks that became sparse.
    fn persist_removals(
        &self,
        inner: &mut Inner,
        old_first: u64,
        removed: Removed<Loc>,
    ) -> Result<(), StoreError> {
        self.persist_removals_inner(inner, old_first, removed, false)
    }

    /// `markers_written`: the tombstones and compact marker are already written (with the
    /// message that caused the removals, whose `note_written` will wake the sync thread).
    fn persist_removals_inner(
        &self,
        inner: &mut Inner,
        old_first: u64,
        removed: Removed<Loc>,
        markers_written: bool,
    ) -> Result<(), StoreError> {
        let new_first = inner.core.first_seq;
        if removed.is_empty() && new_first <= old_first {
            return Ok(());
        }
        let mut touched = BTreeSet::new();
        for (_, e) in &removed {
            if let Some(b) = inner.blocks.get_mut(&e.data.blk) {
                b.live_bytes = b.live_bytes.saturating_sub(e.data.len as u64);
                b.live_msgs = b.live_msgs.saturating_sub(1);
                touched.insert(b.num);
            }
        }
        if !markers_written {
            for (seq, _) in &removed {
                if *seq >= new_first {
                    self.write_marker(inner, Kind::Tombstone, *seq)?;
                }
            }
            if new_first > old_first {
                self.write_marker(inner, Kind::Compact, new_first)?;
            }
            self.sync.note_dirty();
        }
        // An active block holding only dead messages is rolled so it can be dropped.
        let active = inner.active;
        if let Some(b) = inner.blocks.get(&active) {
            if b.live_msgs == 0 && b.pmax != 0 {
                self.roll(inner)?;
                touched.insert(active);
            }
        }
        // The block holding the first message is left alone: discard-old keeps eating it
        // from the front and drops it whole once first_seq passes it, so rewriting it on the
        // way would copy the same bytes again and again.
        let head = inner.core.msgs.get(&new_first).map(|e| e.data.blk);
        let mut candidates: Vec<u32> = touched
            .into_iter()
            .filter(|n| *n != inner.active && Some(*n) != head)
            .filter(|n| inner.blocks.get(n).is_some_and(|b| b.wants_compaction()))
            .collect();
        if new_first > old_first {
            // Blocks left holding only tombstones that first_seq has now passed. They all
            // come before the block holding first_seq, so the walk stops there instead of
            // visiting every block on every publish into a full stream.
            for (n, b) in &inner.blocks {
                if b.pmin > new_first {
                    break;
                }
                if *n != inner.active && b.live_msgs == 0 && b.tmax < new_first {
                    candidates.push(*n);
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
        }
        // Blocks wholly below first_seq are dropped at once; they need no sync first (see
        // `compact_block`). Only rewrites make the newest markers durable beforehand.
        let (drops, rewrites): (Vec<u32>, Vec<u32>) = candidates
            .into_iter()
            .partition(|n| inner.blocks.get(n).is_some_and(|b| b.below(new_first)));
        for n in drops {
            self.compact_block(inner, n)?;
        }
        if !rewrites.is_empty() {
            self.sync.sync_now()?;
            for n in rewrites {
                self.compact_block(inner, n)?;
            }
        }
        Ok(())
    }

    /// Rewrites block `num` keeping only live messages and still-needed tombstones; removes
    /// the file if nothing remains.
    fn compact_block(&self, inner: &mut Inner, num: u32) -> Result<(), StoreError> {
        let Some(b) = inner.blocks.get(&num) else {
            return Ok(());
        };
        // Offsets in this block change (or it disappears).
        inner.cache.invalidate(num);
        let path = block_path(&self.dir, num);
        if b.below(inner.core.first_seq) {
            // Everything it names is below first_seq: drop the file without reading it,
            // without syncing the directory or the markers that moved first_seq first.
            // The active block always carries the current first_seq (its header or a
            // compact marker). Should the removal be lost, recovery replays the block and
            // that removes it again; should the markers be lost instead, recovery starts at
            // the next block's first message: a front trim no later than the real one, the
            // state an interval-synced store may come back in anyway.
            inner.blocks.remove(&num);
            self.io.remove(&path)?;
            return Ok(());
        }
        let mut data = vec![0u8; b.len as usize];
        b.file.read_at(&mut data, 0)?;
        let mut out = Vec::with_capacity(b.live_bytes as usize);
        let mut moves = Vec::new();
        let (mut pmin, mut pmax, mut tmax) = (0u64, 0u64, 0u64);
        let mut off = 0usize;
        while off < data.len() {
            let rec = match record::decode(&data[off..]) {
                Ok(r) => r,
                Err(_) => {
                    off = record::find_magic(&data, off + 1).unwrap_or(data.len());
                    continue;
                }
            };
            let keep = match rec.kind {
                Kind::Msg => inner
                    .core
                    .msgs
                    .get(&rec.seq)
                    .is_some_and(|e| e.data.blk == num && e.data.off() == off as u64),
                Kind::Tombstone => {
                    rec.seq >= inner.core.first_seq
                        && inner.blocks.range(..num).any(|(_, o)| o.may_hold(rec.seq))
                }
                _ => false,
            };
            if keep {
                if rec.kind == Kind::Msg {
                    moves.push((rec.seq, out.len() as u64));
                    if pmin == 0 {
                        pmin = rec.seq;
                    }
                    pmax = rec.seq;
                } else {
                    tmax = tmax.max(rec.seq);
                }
                out.extend_from_slice(&data[off..off + rec.len]);
            }
            off += rec.len;
        }
        if out.is_empty() {
            inner.blocks.remove(&num);
            self.io.remove(&path)?;
            self.io.sync_dir(&self.dir)?;
            return Ok(());
        }
        let tmp = tmp_path(&self.dir, num);
        let f = self.io.open(&tmp, true)?;
        f.truncate(0)?;
        f.write_at(&out, 0)?;
        f.sync()?;
        drop(f);
        self.io.rename(&tmp, &path)?;
        self.io.sync_dir(&self.dir)?;
        let file = self.io.open(&path, false)?;
        for (seq, noff) in moves {
            if let Some(e) = inner.core.msgs.get_mut(&seq) {
                e.data.off = noff as u32;
            }
        }
        if let Some(b) = inner.blocks.get_mut(&num) {
            b.file = file;
            b.len = out.len() as u64;
            b.pmin = pmin;
            b.pmax = pmax;
            b.tmax = tmax;
            b.floor = b.len.saturating_sub(b.live_bytes);
        }
        Ok(())
    }

    fn read_msg(inner: &mut Inner, seq: u64) -> Result<StoredMsg, StoreError> {
        let e = inner
            .core
            .msgs
            .get(&seq)
            .ok_or_else(|| inner.core.missing(seq))?;
        let loc = e.data;
        let b = inner
            .blocks
            .get(&loc.blk)
            .ok_or_else(|| StoreError::Corrupt(format!("block {} missing", loc.blk)))?;
        let buf = inner
            .cache
            .read(b.file.as_ref(), loc.blk, b.len, loc.off(), loc.len as usize)?;
        let bad = |why: &str| {
            StoreError::Corrupt(format!(
                "seq {seq} in block {} at offset {}: {why}",
                loc.blk, loc.off
            ))
        };
        let rec = record::decode(buf).map_err(|e| bad(e.describe()))?;
        if rec.kind != Kind::Msg || rec.seq != seq {
            return Err(bad("unexpected record"));
        }
        let (subject, hdr, payload) = record::parse_msg(rec.body).map_err(|e| bad(e.describe()))?;
        Ok(StoredMsg {
            seq,
            ts: rec.ts,
            subject: subject.to_string(),
            headers: Bytes::copy_from_slice(hdr),
            payload: Bytes::copy_from_slice(payload),
        })
    }

    /// Runs a removal operation on the index and persists its effects.
    fn removal<R>(
        &self,
        f: impl FnOnce(&mut Core<Loc>, &mut Removed<Loc>) -> R,
    ) -> Result<R, StoreError> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        let old_first = inner.core.first_seq;
        let mut removed = Removed::new();
        let r = f(&mut inner.core, &mut removed);
        self.persist_removals(inner, old_first, removed)?;
        Ok(r)
    }

    /// Stops the sync thread and syncs; `save_index` also writes the index snapshot.
    fn shutdown(&self, save_index: bool) -> Result<(), StoreError> {
        let was_open = {
            let mut g = self.inner.lock();
            let was = !g.closed;
            g.closed = true;
            was
        };
        self.sync.request_stop();
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
        if was_open {
            self.sync.sync_now()?;
            if !save_index {
                return Ok(());
            }
            // Every block is durable and nothing can be written any more: save the index
            // so the next open can skip the scan. Failing to is harmless (it will scan).
            let g = self.inner.lock();
            if let Ok(data) = snapshot::encode(&g.core, &g.blocks) {
                let _ = snapshot::write(self.io.as_ref(), &self.dir, &data);
            }
        }
        Ok(())
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        let _ = self.shutdown(true);
    }
}

impl MsgStore for FileStore {
    fn store(
        &self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) -> Result<(u64, i64), StoreError> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        let size = file_msg_size(subject.len(), headers.len(), payload.len());
        inner
            .core
            .check_store(subject, headers.len(), payload.len(), size)?;
        let ts = if ts == 0 { now_nanos() } else { ts };
        let seq = inner.core.last_seq + 1;
        self.append_msg(inner, seq, subject, headers, payload, ts)?;
        Ok((seq, ts))
    }

    fn store_at(
        &self,
        seq: u64,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        if seq == 0 || seq <= inner.core.last_seq {
            return Err(StoreError::SequenceMismatch);
        }
        self.append_msg(inner, seq, subject, headers, payload, ts)
    }

    fn skip(&self) -> Result<u64, StoreError> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        let seq = inner.core.last_seq + 1;
        self.write_marker(inner, Kind::Skip, seq)?;
        inner.core.skip(seq);
        self.sync.note_written(seq);
        Ok(seq)
    }

    fn load(&self, seq: u64) -> Result<StoredMsg, StoreError> {
        let mut g = self.lock()?;
        Self::read_msg(&mut g, seq)
    }

    fn load_next(&self, filter: &str, start: u64) -> Result<StoredMsg, StoreError> {
        let mut g = self.lock()?;
        let seq = g
            .core
            .find_next(filter, start)
            .ok_or(StoreError::NotFound)?;
        Self::read_msg(&mut g, seq)
    }

    fn load_last(&self, filter: &str) -> Result<StoredMsg, StoreError> {
        let mut g = self.lock()?;
        let seq = g.core.find_last(filter).ok_or(StoreError::NotFound)?;
        Self::read_msg(&mut g, seq)
    }

    fn remove(&self, seq: u64, secure: bool) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        let old_first = inner.core.first_seq;
        let Some(e) = inner.core.remove(seq) else {
            return Ok(false);
        };
        if secure {
            inner.cache.invalidate(e.data.blk);
            if let Some(b) = inner.blocks.get(&e.data.blk) {
                let erased = record::encode_erased(seq, e.data.len as usize);
                b.file.write_at(&erased, e.data.off())?;
            }
        }
        self.persist_removals(inner, old_first, vec![(seq, e)])?;
        Ok(true)
    }

    fn purge(
        &self,
        subject: Option<&str>,
        up_to_seq: Option<u64>,
        keep: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.removal(|core, removed| core.purge(subject, up_to_seq, keep, removed))
    }

    fn expire(&self, now: i64) -> Result<u64, StoreError> {
        self.removal(|core, removed| core.expire(now, removed))
    }

    fn state(&self) -> StreamState {
        self.lock().map(|g| g.core.state()).unwrap_or_default()
    }

    fn deleted(&self) -> Vec<u64> {
        self.lock().map(|g| g.core.deleted()).unwrap_or_default()
    }

    fn subjects_state(&self, filter: &str) -> BTreeMap<String, SubjectState> {
        self.lock()
            .map(|mut g| g.core.subjects_state(filter))
            .unwrap_or_default()
    }

    fn num_pending(&self, filter: &str, start: u64) -> u64 {
        self.lock()
            .map(|g| g.core.num_pending(filter, start))
            .unwrap_or_default()
    }

    fn first_seq_since(&self, ts: i64) -> u64 {
        self.lock()
            .map(|g| g.core.first_seq_since(ts))
            .unwrap_or_default()
    }

    fn update_limits(&self, limits: StoreLimits) -> Result<(), StoreError> {
        self.removal(|core, removed| {
            core.update_limits(limits, removed);
            core.expire(now_nanos(), removed);
        })
    }

    fn synced_through(&self) -> u64 {
        self.sync.synced()
    }

    fn sync_watch(&self) -> watch::Receiver<u64> {
        self.sync.subscribe()
    }

    fn flush(&self) -> Result<(), StoreError> {
        let _g = self.lock()?;
        self.sync.sync_now()?;
        Ok(())
    }

    fn stop(&self) -> Result<(), StoreError> {
        self.shutdown(true)
    }

    fn delete(&self) -> Result<(), StoreError> {
        let _ = self.shutdown(false);
        self.io.remove_dir_all(&self.dir)?;
        Ok(())
    }
}
