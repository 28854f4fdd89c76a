//! A group's durable Raft log and vote. The log is one append-only file of CRC32C-checked records
//! (entries, truncations, purges) replayed into memory at open; the first record that fails its
//! checksum or is cut short ends the log there and the file is cut to the good prefix, so a torn
//! tail or a damaged record never crashes the node — the leader re-sends what is missing.
//! Appends are written at once and fsynced by a flusher task that takes every append queued
//! meanwhile into one fsync (group commit); openraft's "flushed" callback fires only after it,
//! which is what makes a commit mean "a quorum has it on disk".

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::disk::Disk;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const REC_ENTRY: u8 = 1;
const REC_TRUNCATE: u8 = 2;
const REC_PURGE: u8 = 3;
/// Record header: payload length (u32 LE, kind byte included) + CRC32C (u32 LE) of kind+payload.
const REC_HEADER: usize = 8;
/// A record larger than this is damage, not data (bounds allocation on a corrupt length).
const MAX_RECORD: usize = 256 << 20;
/// Rewrite the file after a purge once it holds this many bytes more than the live log.
const COMPACT_SLACK: u64 = 4 << 20;

/// What opening a log found: how much of the file was unusable and cut off.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes dropped at the end of the file (torn write or damaged record and all after it).
    pub dropped_bytes: u64,
    /// Entries that were dropped with them (they will be re-sent by the leader).
    pub dropped_records: bool,
}

/// Group-commit counters, shared by every group of a node.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// fsyncs issued for log appends.
    pub fsyncs: AtomicU64,
    /// append calls whose "flushed" callback was fired.
    pub appends: AtomicU64,
    /// entries written by those appends.
    pub entries: AtomicU64,
}

impl FlushStats {
    /// Appends per fsync so far (1.0 means no batching happened).
    pub fn appends_per_fsync(&self) -> f64 {
        let f = self.fsyncs.load(Ordering::Relaxed).max(1);
        self.appends.load(Ordering::Relaxed) as f64 / f as f64
    }
}

#[derive(Default)]
struct Mem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    file_len: u64,
    live_bytes: u64,
}

/// The storage handed to openraft for one group.
#[derive(Clone)]
pub struct LogStore {
    disk: Arc<dyn Disk>,
    log_path: PathBuf,
    vote_path: PathBuf,
    mem: Arc<Mutex<Mem>>,
    stats: Arc<FlushStats>,
    flusher: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn store_err(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageError::from_io_error(subject, verb, io_err(e))
}

pub(crate) fn encode_record(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() + 1) as u32;
    let mut crc = crc32c::crc32c(&[kind]);
    crc = crc32c::crc32c_append(crc, payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// One record from `buf` at its start: (kind, payload, bytes used), or None if torn/damaged.
pub(crate) fn decode_record(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?);
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let body = buf.get(REC_HEADER..REC_HEADER + len)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    Some((body[0], &body[1..], REC_HEADER + len))
}

fn bincode_opts() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new().with_limit(MAX_RECORD as u64)
}

pub(crate) fn ser<T: Serialize>(v: &T) -> Vec<u8> {
    use bincode::Options;
    // Serializing our own in-memory values into a Vec cannot fail short of a size overflow.
    bincode_opts().serialize(v).unwrap_or_default()
}

pub(crate) fn de<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Option<T> {
    use bincode::Options;
    bincode_opts().deserialize(b).ok()
}

#[derive(Serialize, Deserialize)]
struct VoteFile {
    vote: Option<Vote>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, replaying it and cutting any damaged tail.
    pub async fn open(
        disk: Arc<dyn Disk>,
        dir: PathBuf,
        stats: Arc<FlushStats>,
    ) -> io::Result<(Self, Recovery)> {
        disk.create_dir_all(&dir)?;
        let log_path = dir.join("log");
        let vote_path = dir.join("vote");
        let data = disk.read(&log_path)?.unwrap_or_default();
        let mut mem = Mem::default();
        let mut pos = 0usize;
        while pos < data.len() {
            let Some((kind, payload, used)) = decode_record(&data[pos..]) else {
                break;
            };
            if !mem.replay(kind, payload, used as u64) {
                break;
            }
            pos += used;
        }
        let mut recovery = Recovery::default();
        if pos < data.len() {
            recovery.dropped_bytes = (data.len() - pos) as u64;
            recovery.dropped_records = true;
            tracing::warn!(
                path = %log_path.display(),
                at = pos,
                dropped = recovery.dropped_bytes,
                "raft log damaged or torn; cut at the last good record, the leader will re-send the rest"
            );
            disk.truncate(&log_path, pos as u64)?;
        }
        mem.file_len = pos as u64;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(flusher(disk.clone(), log_path.clone(), rx, stats.clone()));
        Ok((
            Self {
                disk,
                log_path,
                vote_path,
                mem: Arc::new(Mutex::new(mem)),
                stats,
                flusher: tx,
            },
            recovery,
        ))
    }

    /// Drops the whole log (used when a damaged snapshot leaves a purged log without its base:
    /// the group then rebuilds from the leader's snapshot).
    pub fn reset(&self) -> io::Result<()> {
        let mut mem = self.mem.lock();
        *mem = Mem::default();
        self.disk.write_atomic(&self.log_path, &[])
    }

    pub fn last_purged(&self) -> Option<LogId> {
        self.mem.lock().last_purged
    }

    fn write(&self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let mut rec = Vec::with_capacity(payload.len() + REC_HEADER + 1);
        encode_record(kind, payload, &mut rec);
        self.disk.append(&self.log_path, &rec)?;
        self.mem.lock().file_len += rec.len() as u64;
        Ok(())
    }

    fn maybe_compact(&self) -> io::Result<()> {
        let mut mem = self.mem.lock();
        if mem.file_len < mem.live_bytes + COMPACT_SLACK {
            return Ok(());
        }
        let mut buf = Vec::new();
        if let Some(p) = mem.last_purged {
            encode_record(REC_PURGE, &ser(&p), &mut buf);
        }
        for e in mem.entries.values() {
            encode_record(REC_ENTRY, &ser(e), &mut buf);
        }
        self.disk.write_atomic(&self.log_path, &buf)?;
        mem.file_len = buf.len() as u64;
        mem.live_bytes = mem.file_len;
        Ok(())
    }
}

impl Mem {
    /// Applies one record read back from the file; false means it makes no sense here (a hole),
    /// which is treated as damage like a bad checksum.
    fn replay(&mut self, kind: u8, payload: &[u8], size: u64) -> bool {
        match kind {
            REC_ENTRY => {
                let Some(e) = de::<Entry>(payload) else {
                    return false;
                };
                let idx = e.log_id.index;
                let expected = self
                    .entries
                    .keys()
                    .next_back()
                    .map(|i| i + 1)
                    .or(self.last_purged.map(|p| p.index + 1));
                if let Some(exp) = expected {
                    if idx > exp {
                        return false;
                    }
                }
                self.entries.split_off(&idx);
                self.entries.insert(idx, e);
                self.live_bytes += size;
            }
            REC_TRUNCATE => {
                let Some(since) = de::<u64>(payload) else {
                    return false;
                };
                self.entries.split_off(&since);
            }
            REC_PURGE => {
                let Some(upto) = de::<LogId>(payload) else {
                    return false;
                };
                self.purge(upto);
            }
            _ => return false,
        }
        true
    }

    fn purge(&mut self, upto: LogId) {
        let keep = self.entries.split_off(&(upto.index + 1));
        self.entries = keep;
        if self.last_purged.is_none_or(|p| p.index < upto.index) {
            self.last_purged = Some(upto);
        }
        self.live_bytes = self.entries.values().map(|e| ser(e).len() as u64 + 9).sum();
    }
}

async fn flusher(
    disk: Arc<dyn Disk>,
    path: PathBuf,
    mut rx: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>,
    stats: Arc<FlushStats>,
) {
    let mut batch = Vec::new();
    while let Some(cb) = rx.recv().await {
        batch.push(cb);
        while let Ok(cb) = rx.try_recv() {
            batch.push(cb);
        }
        let res = if disk.sync_is_blocking() {
            let (d, p) = (disk.clone(), path.clone());
            tokio::task::spawn_blocking(move || d.sync(&p))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
        } else {
            disk.sync(&path)
        };
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        stats
            .appends
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for cb in batch.drain(..) {
            let r = match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            cb.log_io_completed(r);
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let mem = self.mem.lock();
        Ok(mem.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.mem.lock();
        let last = mem.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: last.or(mem.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let body = ser(&VoteFile { vote: Some(*vote) });
        let mut rec = Vec::new();
        encode_record(1, &body, &mut rec);
        // Three fsyncs (file, rename, dir): keep them off the async workers on a real disk, or
        // thousands of groups electing at once stall every heartbeat behind them.
        let res = if self.disk.sync_is_blocking() {
            let (disk, path) = (self.disk.clone(), self.vote_path.clone());
            tokio::task::spawn_blocking(move || disk.write_atomic(&path, &rec))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
        } else {
            self.disk.write_atomic(&self.vote_path, &rec)
        };
        res.map_err(|e| StorageError::from_io_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        let data = self
            .disk
            .read(&self.vote_path)
            .map_err(|e| StorageError::from_io_error(ErrorSubject::Vote, ErrorVerb::Read, e))?;
        let Some(data) = data else { return Ok(None) };
        // The vote file is replaced atomically, so damage here is real corruption: refuse to
        // start with a vote we cannot trust rather than vote twice in one term.
        let vf = decode_record(&data)
            .and_then(|(_, body, _)| de::<VoteFile>(body))
            .ok_or_else(|| store_err(ErrorSubject::Vote, ErrorVerb::Read, "vote file damaged"))?;
        Ok(vf.vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut buf = Vec::new();
        let mut mem = self.mem.lock();
        let mut n = 0;
        for e in entries {
            n += 1;
            let before = buf.len();
            encode_record(REC_ENTRY, &ser(&e), &mut buf);
            mem.live_bytes += (buf.len() - before) as u64;
            mem.entries.insert(e.log_id.index, e);
        }
        mem.file_len += buf.len() as u64;
        drop(mem);
        self.stats.entries.fetch_add(n, Ordering::Relaxed);
        self.disk
            .append(&self.log_path, &buf)
            .map_err(|e| StorageError::from_io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        // A closed flusher means the runtime is going down; the callback is dropped and openraft
        // sees the IO as never completed, which is the truth.
        let _ = self.flusher.send(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.mem.lock().entries.split_off(&log_id.index);
        self.write(REC_TRUNCATE, &ser(&log_id.index))
            .map_err(|e| StorageError::from_io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.mem.lock().purge(log_id);
        self.write(REC_PURGE, &ser(&log_id))
            .and_then(|_| self.maybe_compact())
            .map_err(|e| StorageError::from_io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cut_of_a_record_is_detected() {
        let mut buf = Vec::new();
        encode_record(REC_ENTRY, b"hello raft", &mut buf);
        assert!(decode_record(&buf).is_some());
        for n in 0..buf.len() {
            assert!(decode_record(&buf[..n]).is_none(), "cut at {n} accepted");
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_record(REC_TRUNCATE, &ser(&42u64), &mut buf);
        for i in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(
                decode_record(&b)
                    .is_none_or(|(k, p, _)| (k, p) == (REC_TRUNCATE, &ser(&42u64)[..])),
                "flip {i} accepted"
            );
        }
    }

    #[test]
    fn absurd_length_is_damage() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        buf.extend_from_slice(&[0; 12]);
        assert!(decode_record(&buf).is_none());
    }
}
