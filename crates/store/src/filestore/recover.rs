//! Recovery: rebuilds the index by scanning every block, resynchronising after damaged
//! records, truncating torn tails, and reporting what was lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::block::{block_path, parse_block_name, Block};
use super::index::Loc;
use super::record::{decode, find_magic, header_first, parse_msg, Kind, Record};
use crate::core::{Core, Removed};
use crate::error::StoreError;
use crate::io::StoreIo;
use crate::types::{file_msg_size, StoreLimits};

/// What recovery found when the store was opened.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub blocks: usize,
    pub msgs: u64,
    /// Bytes cut off block tails (torn or damaged final records).
    pub truncated_bytes: u64,
    pub damaged: Vec<DamagedRange>,
    /// The index came from the clean-stop snapshot (no block was scanned).
    pub from_snapshot: bool,
    /// Why an existing snapshot was ignored (then every block was scanned).
    pub snapshot_rejected: Option<String>,
}

/// A run of bytes in a block that did not decode as valid records and was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedRange {
    pub block: u32,
    pub file: PathBuf,
    pub offset: u64,
    pub len: u64,
    /// Message sequences that were probably lost, when the neighbours tell.
    pub seqs: Option<(u64, u64)>,
    pub cause: String,
}

pub(crate) struct Recovered {
    pub core: Core<Loc>,
    pub blocks: BTreeMap<u32, Block>,
    pub report: RecoveryReport,
}

pub(crate) fn recover(
    io: &dyn StoreIo,
    dir: &Path,
    limits: StoreLimits,
) -> Result<Recovered, StoreError> {
    io.create_dir_all(dir)?;
    remove_tmp_blocks(io, dir)?;
    let mut nums = Vec::new();
    for name in io.list(dir)? {
        if let Some(n) = parse_block_name(&name) {
            nums.push(n);
        }
    }
    nums.sort_unstable();
    let mut core: Core<Loc> = Core::new(limits);
    let mut blocks = BTreeMap::new();
    let mut report = RecoveryReport::default();
    for n in nums {
        let path = block_path(dir, n);
        let file = io.open(&path, false)?;
        let len = file.len()?;
        let mut data = vec![0u8; len as usize];
        file.read_at(&mut data, 0)?;
        let mut blk = Block::new(n, file.clone(), len);
        let mut off = 0usize;
        let mut bad: Option<(usize, &'static str)> = None;
        while off < data.len() {
            match decode(&data[off..]) {
                Ok(rec) => {
                    if let Some((start, cause)) = bad.take() {
                        let prev = core.last_seq;
                        let seqs = (rec.kind == Kind::Msg && rec.seq > prev + 1)
                            .then(|| (prev + 1, rec.seq - 1));
                        report.damaged.push(DamagedRange {
                            block: n,
                            file: path.clone(),
                            offset: start as u64,
                            len: (off - start) as u64,
                            seqs,
                            cause: cause.to_string(),
                        });
                    }
                    apply(&mut core, &mut blk, off as u64, &rec);
                    off += rec.len;
                }
                Err(e) => {
                    if bad.is_none() {
                        bad = Some((off, e.describe()));
                    }
                    off = find_magic(&data, off + 1).unwrap_or(data.len());
                }
            }
        }
        if let Some((start, cause)) = bad {
            file.truncate(start as u64)?;
            report.truncated_bytes += len - start as u64;
            report.damaged.push(DamagedRange {
                block: n,
                file: path.clone(),
                offset: start as u64,
                len: len - start as u64,
                seqs: None,
                cause: format!("{cause} at block tail; truncated"),
            });
            blk.len = start as u64;
        }
        blocks.insert(n, blk);
    }
    for e in core.msgs.values() {
        if let Some(b) = blocks.get_mut(&e.data.blk) {
            b.live_bytes += e.data.len as u64;
            b.live_msgs += 1;
        }
    }
    report.blocks = blocks.len();
    report.msgs = core.msgs.len() as u64;
    Ok(Recovered {
        core,
        blocks,
        report,
    })
}

/// Removes what interrupted compactions left; the original blocks are still in place.
pub(crate) fn remove_tmp_blocks(io: &dyn StoreIo, dir: &Path) -> Result<(), StoreError> {
    for name in io.list(dir)? {
        if name.ends_with(".blk.tmp") {
            let _ = io.remove(&dir.join(&name));
        }
    }
    Ok(())
}

/// Replays one valid record into the index.
fn apply(core: &mut Core<Loc>, blk: &mut Block, off: u64, rec: &Record<'_>) {
    let mut sink: Removed<Loc> = Vec::new();
    match rec.kind {
        Kind::Msg => {
            if rec.seq == 0 || rec.seq <= core.last_seq {
                return; // stale copy; a later record already moved past it
            }
            let Ok((subject, hdr, payload)) = parse_msg(rec.body) else {
                return;
            };
            let size = file_msg_size(subject.len(), hdr.len(), payload.len());
            // Blocks we write never put a record past u32 offsets (see `Loc`).
            let Ok(off) = u32::try_from(off) else {
                return;
            };
            let loc = Loc {
                blk: blk.num,
                len: rec.len as u32,
                off,
            };
            core.insert(rec.seq, subject, rec.ts, size, loc);
            blk.note_msg(rec.seq);
        }
        Kind::Tombstone => {
            blk.tmax = blk.tmax.max(rec.seq);
            core.remove(rec.seq);
            core.last_ts = rec.ts;
        }
        Kind::Compact => {
            if rec.seq > 0 {
                core.compact(rec.seq, &mut sink);
            }
            core.last_ts = rec.ts;
        }
        Kind::Skip => {
            core.skip(rec.seq);
            core.last_ts = rec.ts;
        }
        Kind::Erased => {
            core.skip(rec.seq);
            core.remove(rec.seq);
        }
        Kind::BlockHeader => {
            let first = header_first(rec.body);
            if rec.seq > core.last_seq {
                core.skip(rec.seq);
            }
            if first > core.first_seq {
                core.compact(first, &mut sink);
            }
            core.last_ts = rec.ts;
        }
    }
}
