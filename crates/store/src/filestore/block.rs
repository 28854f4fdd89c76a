//! Block files: naming and the per-block accounting used for rolling and compaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::io::StoreFile;

pub(crate) struct Block {
    pub num: u32,
    pub file: Arc<dyn StoreFile>,
    /// Bytes in the file.
    pub len: u64,
    /// Bytes of live message records.
    pub live_bytes: u64,
    pub live_msgs: u64,
    /// Lowest/highest seq of message records physically present (0 = none).
    pub pmin: u64,
    pub pmax: u64,
    /// Bytes kept by the last rewrite that are not live messages (needed tombstones).
    pub floor: u64,
    /// Highest seq named by a tombstone in this block (0 = none).
    pub tmax: u64,
}

impl Block {
    pub fn new(num: u32, file: Arc<dyn StoreFile>, len: u64) -> Self {
        Block {
            num,
            file,
            len,
            live_bytes: 0,
            live_msgs: 0,
            pmin: 0,
            pmax: 0,
            floor: 0,
            tmax: 0,
        }
    }

    pub fn note_msg(&mut self, seq: u64) {
        if self.pmin == 0 || seq < self.pmin {
            self.pmin = seq;
        }
        if seq > self.pmax {
            self.pmax = seq;
        }
    }

    /// Does this (non-active) block hold enough garbage to be worth rewriting?
    pub fn wants_compaction(&self) -> bool {
        let garbage = self.len.saturating_sub(self.live_bytes + self.floor);
        garbage * 2 > self.len || (self.live_msgs == 0 && self.len > self.floor)
    }

    /// Holds nothing at or past `first`: no live message and no tombstone that matters.
    pub fn below(&self, first: u64) -> bool {
        self.live_msgs == 0 && self.pmax < first && self.tmax < first
    }

    pub fn may_hold(&self, seq: u64) -> bool {
        self.pmin != 0 && self.pmin <= seq && seq <= self.pmax
    }
}

pub(crate) fn block_path(dir: &Path, num: u32) -> PathBuf {
    dir.join(format!("{num}.blk"))
}

pub(crate) fn tmp_path(dir: &Path, num: u32) -> PathBuf {
    dir.join(format!("{num}.blk.tmp"))
}

/// Block number of a `<n>.blk` file name.
pub(crate) fn parse_block_name(name: &str) -> Option<u32> {
    name.strip_suffix(".blk")?.parse().ok()
}
