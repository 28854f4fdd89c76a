//! Index snapshot (`index.snap`): the recovered index written on a clean stop so the next open
//! can skip scanning every block. It is only a shortcut: it is used only when it decodes with a
//! valid checksum and every block file still has the length, modification stamp and tail bytes
//! it recorded; otherwise (missing, stale, torn, corrupt) recovery scans the blocks as it
//! always did. Opening deletes it before anything is written, so after a crash there is never
//! a snapshot that describes older files. `check_store` never reads it.
//!
//! Layout: `MAGIC`, then varint-encoded fields (below), then a crc32c (u32 LE) of everything
//! before it.
//!
//! ```text
//! first_seq first_ts last_seq last_ts bytes
//! nblocks { num len stamp tail_crc live_bytes live_msgs pmin pmax floor tmax }
//! nsubjects { len bytes }
//! nmsgs { seq_delta subject_idx ts_delta size blk off_delta len }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::block::{block_path, parse_block_name, Block};
use super::index::Loc;
use crate::core::Core;
use crate::io::{StoreFile, StoreIo};
use crate::types::StoreLimits;

const MAGIC: &[u8; 8] = b"RNIDX\x00\x00\x01";
/// Bytes at the end of each block whose checksum is recorded.
const TAIL: u64 = 4096;
pub(crate) const FILE_NAME: &str = "index.snap";

pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

fn tmp_path(dir: &Path) -> PathBuf {
    dir.join("index.snap.tmp")
}

/// crc32c of the last `TAIL` bytes of a block.
fn tail_crc(file: &dyn StoreFile, len: u64) -> std::io::Result<u32> {
    let from = len.saturating_sub(TAIL);
    let mut buf = vec![0u8; (len - from) as usize];
    file.read_at(&mut buf, from)?;
    Ok(crc32c::crc32c(&buf))
}

fn put(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_i(buf: &mut Vec<u8>, v: i64) {
    put(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Encodes the index of a closed store. Blocks must be fully written (and synced) already.
pub(crate) fn encode(core: &Core<Loc>, blocks: &BTreeMap<u32, Block>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + core.msgs.len() * 16);
    out.extend_from_slice(MAGIC);
    put(&mut out, core.first_seq);
    put_i(&mut out, core.first_ts);
    put(&mut out, core.last_seq);
    put_i(&mut out, core.last_ts);
    put(&mut out, core.bytes);
    put(&mut out, blocks.len() as u64);
    for b in blocks.values() {
        for v in [b.num as u64, b.len, b.file.stamp()?] {
            put(&mut out, v);
        }
        put(&mut out, tail_crc(b.file.as_ref(), b.len)? as u64);
        for v in [b.live_bytes, b.live_msgs, b.pmin, b.pmax, b.floor, b.tmax] {
            put(&mut out, v);
        }
    }
    // Entries share their subject's Arc (the index interns them): number subjects by
    // pointer, remembering the last one since runs of one subject are common.
    let mut subjects: HashMap<*const u8, u64> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut last: Option<(*const u8, u64)> = None;
    let mut ids = Vec::with_capacity(core.msgs.len());
    for e in core.msgs.values() {
        let key = e.subject.as_ptr();
        let id = match last {
            Some((k, id)) if k == key => id,
            _ => {
                let next = order.len() as u64;
                let id = *subjects.entry(key).or_insert_with(|| {
                    order.push(&e.subject);
                    next
                });
                last = Some((key, id));
                id
            }
        };
        ids.push(id);
    }
    put(&mut out, order.len() as u64);
    for s in &order {
        put(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    put(&mut out, core.msgs.len() as u64);
    // Deltas keep it small: seq from the previous seq, ts from the previous ts, offset from
    // where the previous record in the same block ended.
    let (mut prev_seq, mut prev_ts, mut prev_end) = (0u64, 0i64, (0u32, 0u64));
    for ((seq, e), id) in core.msgs.iter().zip(ids) {
        put(&mut out, seq - prev_seq);
        put(&mut out, id);
        put_i(&mut out, e.ts.wrapping_sub(prev_ts));
        put(&mut out, u64::from(e.size));
        put(&mut out, e.data.blk as u64);
        let base = if prev_end.0 == e.data.blk {
            prev_end.1
        } else {
            0
        };
        put_i(&mut out, e.data.off().wrapping_sub(base) as i64);
        put(&mut out, e.data.len as u64);
        prev_seq = seq;
        prev_ts = e.ts;
        prev_end = (e.data.blk, e.data.off() + e.data.len as u64);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Writes the snapshot (temporary file, then rename). It is not fsynced: a snapshot lost or
/// torn by a power cut fails its checksum or is missing, and recovery scans instead.
pub(crate) fn write(io: &dyn StoreIo, dir: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(dir);
    let f = io.open(&tmp, true)?;
    f.truncate(0)?;
    f.write_at(data, 0)?;
    drop(f);
    io.rename(&tmp, &path(dir))
}

/// Deletes the snapshot (and a leftover temporary) and makes that durable, so no later write
/// can leave a snapshot describing older block files.
pub(crate) fn discard(io: &dyn StoreIo, dir: &Path) -> std::io::Result<()> {
    let mut removed = false;
    for p in [path(dir), tmp_path(dir)] {
        match io.remove(&p) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if removed {
        io.sync_dir(dir)?;
    }
    Ok(())
}

/// Why a snapshot was not used (reported by the store, then recovery scans).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("no index snapshot")]
    Missing,
    #[error("index snapshot unreadable: {0}")]
    Io(String),
    #[error("index snapshot is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("index snapshot is stale: {0}")]
    Stale(String),
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u(&mut self) -> Result<u64, Rejected> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.at)
                .ok_or(Rejected::Corrupt("truncated"))?;
            self.at += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Rejected::Corrupt("bad varint"))
    }
    fn i(&mut self) -> Result<i64, Rejected> {
        let z = self.u()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }
    fn u32(&mut self) -> Result<u32, Rejected> {
        u32::try_from(self.u()?).map_err(|_| Rejected::Corrupt("value out of range"))
    }
    fn bytes(&mut self, n: u64) -> Result<&[u8], Rejected> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|e| *e <= self.buf.len())
            .ok_or(Rejected::Corrupt("truncated"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
}

/// The index and blocks restored from a valid snapshot.
pub(crate) struct Loaded {
    pub core: Core<Loc>,
    pub blocks: BTreeMap<u32, Block>,
}

/// Loads the snapshot if it is intact and still matches every block file in `dir`.
pub(crate) fn load(io: &dyn StoreIo, dir: &Path, limits: StoreLimits) -> Result<Loaded, Rejected> {
    let data = match crate::smallfile::read_file(io, &path(dir)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Rejected::Missing),
        Err(e) => return Err(Rejected::Io(e.to_string())),
    };
    if data.len() < MAGIC.len() + 4 || &data[..MAGIC.len()] != MAGIC {
        return Err(Rejected::Corrupt("bad header"));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let mut c = [0u8; 4];
    c.copy_from_slice(crc);
    if crc32c::crc32c(body) != u32::from_le_bytes(c) {
        return Err(Rejected::Corrupt("checksum mismatch"));
    }
    let mut r = Reader {
        buf: body,
        at: MAGIC.len(),
    };
    let mut core: Core<Loc> = Core::new(limits);
    let (first_seq, first_ts, last_seq, last_ts, bytes) = (r.u()?, r.i()?, r.u()?, r.i()?, r.u()?);

    let mut on_disk: Vec<u32> = io
        .list(dir)
        .map_err(|e| Rejected::Io(e.to_string()))?
        .iter()
        .filter_map(|n| parse_block_name(n))
        .collect();
    on_disk.sort_unstable();
    let nblocks = r.u()?;
    if nblocks != on_disk.len() as u64 {
        return Err(Rejected::Stale("block files were added or removed".into()));
    }
    let mut blocks = BTreeMap::new();
    for expect in on_disk {
        let num = r.u32()?;
        if num != expect {
            return Err(Rejected::Stale(format!("block {expect} is not recorded")));
        }
        let (len, stamp, crc) = (r.u()?, r.u()?, r.u()?);
        let stale = |why: &str| Rejected::Stale(format!("block {num}: {why}"));
        let io_err = |e: std::io::Error| Rejected::Io(e.to_string());
        let file = io.open(&block_path(dir, num), false).map_err(io_err)?;
        if file.len().map_err(io_err)? != len {
            return Err(stale("length changed"));
        }
        if file.stamp().map_err(io_err)? != stamp {
            return Err(stale("modified"));
        }
        if tail_crc(file.as_ref(), len).map_err(io_err)? as u64 != crc {
            return Err(stale("tail changed"));
        }
        let mut b = Block::new(num, file, len);
        b.live_bytes = r.u()?;
        b.live_msgs = r.u()?;
        b.pmin = r.u()?;
        b.pmax = r.u()?;
        b.floor = r.u()?;
        b.tmax = r.u()?;
        blocks.insert(num, b);
    }
    let nsubj = r.u()?;
    let mut subjects: Vec<String> = Vec::new();
    for _ in 0..nsubj {
        let n = r.u()?;
        let s = std::str::from_utf8(r.bytes(n)?).map_err(|_| Rejected::Corrupt("subject"))?;
        subjects.push(s.to_string());
    }
    let nmsgs = r.u()?;
    let (mut seq, mut ts, mut prev_end) = (0u64, 0i64, (0u32, 0u64));
    for _ in 0..nmsgs {
        let delta = r.u()?;
        if delta == 0 {
            return Err(Rejected::Corrupt("sequence order"));
        }
        seq = seq
            .checked_add(delta)
            .ok_or(Rejected::Corrupt("sequence overflow"))?;
        let subject = usize::try_from(r.u()?)
            .ok()
            .and_then(|i| subjects.get(i))
            .ok_or(Rejected::Corrupt("subject index"))?;
        ts = ts.wrapping_add(r.i()?);
        let size = r.u()?;
        let blk = r.u32()?;
        let base = if prev_end.0 == blk { prev_end.1 } else { 0 };
        let off = base.wrapping_add(r.i()? as u64);
        let loc = Loc {
            blk,
            off: u32::try_from(off).map_err(|_| Rejected::Corrupt("offset out of range"))?,
            len: r.u32()?,
        };
        let fits = blocks.get(&loc.blk).is_some_and(|b| {
            loc.off()
                .checked_add(loc.len as u64)
                .is_some_and(|end| end <= b.len)
        });
        if !fits {
            return Err(Rejected::Corrupt("message outside its block"));
        }
        prev_end = (blk, off + loc.len as u64);
        core.insert(seq, subject, ts, size, loc);
    }
    if r.at != body.len() || seq > last_seq || core.bytes != bytes {
        return Err(Rejected::Corrupt("inconsistent totals"));
    }
    core.first_seq = first_seq;
    core.first_ts = first_ts;
    core.last_seq = last_seq;
    core.last_ts = last_ts;
    Ok(Loaded { core, blocks })
}
