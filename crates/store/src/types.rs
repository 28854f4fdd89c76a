//! Plain data types shared by every store: messages, limits, stream and subject state.

use std::time::Duration;

/// One stored message as handed back by a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMsg {
    pub seq: u64,
    /// Unix nanoseconds.
    pub ts: i64,
    pub subject: String,
    /// Raw `NATS/1.0` header block, or empty.
    pub headers: bytes::Bytes,
    pub payload: bytes::Bytes,
}

impl StoredMsg {
    /// nats-server's memory-store accounting (`memStoreMsgSize`):
    /// subject + headers + payload + 16 (seq and timestamp).
    pub fn size(&self) -> u64 {
        mem_msg_size(self.subject.len(), self.headers.len(), self.payload.len())
    }

    /// nats-server's file-store accounting (`fileStoreMsgSize`), which is what
    /// `StreamState::bytes` counts for a `FileStore`.
    pub fn file_size(&self) -> u64 {
        file_msg_size(self.subject.len(), self.headers.len(), self.payload.len())
    }
}

/// `memStoreMsgSize`: subject + headers + payload + 16.
pub fn mem_msg_size(subject_len: usize, hdr_len: usize, payload_len: usize) -> u64 {
    (subject_len + hdr_len + payload_len + 16) as u64
}

/// `fileStoreMsgSize`: 22 + subject + payload + 8 without headers,
/// 22 + subject + 4 + headers + payload + 8 with headers.
pub fn file_msg_size(subject_len: usize, hdr_len: usize, payload_len: usize) -> u64 {
    if hdr_len == 0 {
        (22 + subject_len + payload_len + 8) as u64
    } else {
        (22 + subject_len + 4 + hdr_len + payload_len + 8) as u64
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscardPolicy {
    Old,
    New,
}

/// Stream limits. `-1` (or a zero duration) means unlimited, as in nats-server.
/// `max_msg_size <= 0` is also treated as unlimited (nats-server normalises 0 to -1).
#[derive(Clone, Debug)]
pub struct StoreLimits {
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_age: Duration,
    pub max_msgs_per_subject: i64,
    pub max_msg_size: i32,
    pub discard: DiscardPolicy,
    pub discard_new_per_subject: bool,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_msgs: -1,
            max_bytes: -1,
            max_age: Duration::ZERO,
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            discard: DiscardPolicy::Old,
            discard_new_per_subject: false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    pub msgs: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: i64,
    pub last_seq: u64,
    pub last_ts: i64,
    pub num_subjects: u64,
    pub num_deleted: u64,
    /// Left 0 by the store; the engine fills it in.
    pub consumer_count: u32,
}

/// Per-subject counts (nats-server's `SimpleState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubjectState {
    pub msgs: u64,
    pub first: u64,
    pub last: u64,
}
