//! Message and byte counters. Hot-path code accumulates locally and adds to
//! these once per read batch, so publishers do not contend on one cache line
//! per message.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub slow_consumers: AtomicU64,
}

/// A batch of counts gathered by one connection between flushes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalCounts {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl Counters {
    pub fn add(&self, c: &LocalCounts) {
        if c.in_msgs > 0 {
            self.in_msgs.fetch_add(c.in_msgs, Ordering::Relaxed);
            self.in_bytes.fetch_add(c.in_bytes, Ordering::Relaxed);
        }
        if c.out_msgs > 0 {
            self.out_msgs.fetch_add(c.out_msgs, Ordering::Relaxed);
            self.out_bytes.fetch_add(c.out_bytes, Ordering::Relaxed);
        }
    }
}
