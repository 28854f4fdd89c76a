//! rnats-store: JetStream message stores. Owns the `MsgStore` trait and re-exports the
//! MemStore (memory) and FileStore (disk, crash-safe, group-committed) implementations.
//! Knows nothing about sockets, JSON or the NATS protocol.

mod core;
pub mod error;
pub mod filestore;
pub mod filter;
pub mod io;
pub mod memstore;
mod seqmap;
pub mod smallfile;
mod subj;
pub mod types;

use std::collections::BTreeMap;

pub use error::StoreError;
pub use filestore::{
    check_store, DamagedRange, FileStore, FileStoreConfig, RecoveryReport, SyncPolicy,
};
pub use io::{ReadOnlyIo, RealIo, SimIo, StoreFile, StoreIo};
pub use memstore::MemStore;
pub use types::{
    file_msg_size, mem_msg_size, DiscardPolicy, StoreLimits, StoredMsg, StreamState, SubjectState,
};

/// A stream's message store. `&self` everywhere: implementations lock internally so the
/// engine can share an `Arc<dyn MsgStore>`.
pub trait MsgStore: Send + Sync {
    /// Appends with the next sequence; enforces limits (discard old removes the oldest; discard
    /// new returns the error; the per-subject limit removes that subject's oldest unless
    /// discard_new_per_subject). `ts == 0` means "now". Returns (seq, ts).
    fn store(
        &self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) -> Result<(u64, i64), StoreError>;
    /// Stores at a given sequence (mirrors/replication): seq must be > last (else
    /// `SequenceMismatch`); the gap becomes deleted sequences. Discard-new checks are skipped.
    fn store_at(
        &self,
        seq: u64,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: i64,
    ) -> Result<(), StoreError>;
    /// Skips (reserves) a sequence number without a message.
    fn skip(&self) -> Result<u64, StoreError>;
    /// `Deleted` for a removed seq inside [first, last], `NotFound` otherwise.
    fn load(&self, seq: u64) -> Result<StoredMsg, StoreError>;
    /// First message with seq >= start whose subject matches `filter` ("" or ">" = all).
    fn load_next(&self, filter: &str, start: u64) -> Result<StoredMsg, StoreError>;
    /// Last message matching `filter`.
    fn load_last(&self, filter: &str) -> Result<StoredMsg, StoreError>;
    /// Removes one message; `secure` overwrites its bytes on disk too. Ok(false) if not present.
    fn remove(&self, seq: u64, secure: bool) -> Result<bool, StoreError>;
    /// nats-server's PurgeEx: all, or only `subject` (wildcards allowed), and/or up to (not
    /// including) `up_to_seq`, or `keep` the newest N. Returns number purged.
    fn purge(
        &self,
        subject: Option<&str>,
        up_to_seq: Option<u64>,
        keep: Option<u64>,
    ) -> Result<u64, StoreError>;
    /// Removes messages older than max_age as of `now` (unix nanos); returns how many.
    fn expire(&self, now: i64) -> Result<u64, StoreError>;
    fn state(&self) -> StreamState;
    /// Sequences currently deleted between first and last.
    fn deleted(&self) -> Vec<u64>;
    /// Per-subject counts for subjects matching `filter`.
    fn subjects_state(&self, filter: &str) -> BTreeMap<String, SubjectState>;
    /// Count of messages matching `filter` with seq >= start.
    fn num_pending(&self, filter: &str, start: u64) -> u64;
    /// The first sequence of the newest run of messages stored at or after
    /// `ts` (unix nanos): the start of a time window. `last_seq + 1` if none.
    fn first_seq_since(&self, ts: i64) -> u64;
    /// Applies new limits immediately (may remove messages; age is checked against the clock).
    fn update_limits(&self, limits: StoreLimits) -> Result<(), StoreError>;
    /// Highest seq known to be on stable storage (MemStore: last_seq).
    fn synced_through(&self) -> u64;
    /// Watch channel that gets the new synced_through after each fsync (group commit).
    fn sync_watch(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Forces everything written so far to disk now.
    fn flush(&self) -> Result<(), StoreError>;
    /// Stops background work; the store can't be used afterwards.
    fn stop(&self) -> Result<(), StoreError>;
    /// Stops and removes the store's files.
    fn delete(&self) -> Result<(), StoreError>;
}

pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
