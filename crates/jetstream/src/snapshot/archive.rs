//! nats-server 2.15's snapshot archive (`server/archive`, "NATSARC1"): the
//! magic, then entries of uvarint name length, zig-zag varint timestamp,
//! uvarint sequence, header size and payload size, the name and the bytes.
//! A backup is `state.json` (the stream state), one `consumers/<name>` entry
//! per consumer (config and state), the messages (subject as name, headers
//! then payload as bytes) and an all-zero end-of-backup entry.
//!
//! Parsing reads the whole archive before anything is restored, so a
//! truncated or damaged backup creates nothing.

use thiserror::Error;

pub const MAGIC: &[u8] = b"NATSARC1";
pub const STATE_ENTRY: &str = "state.json";
pub const CONSUMER_PREFIX: &str = "consumers/";
/// nats-server's bound on an entry name.
const MAX_NAME: u64 = 1 << 20;

/// Why an archive cannot be restored; the texts are nats-server's.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("archive: invalid archive stream")]
    Invalid,
    #[error("EOF")]
    Eof,
    #[error("expected state.json first")]
    NoState,
    #[error("error in state.json: {0}")]
    BadState(String),
    #[error("expected consumer, found {0:?}")]
    NotConsumer(String),
    #[error("expected message sequence")]
    NoSequence,
    #[error("message sequence {0} out of order")]
    OutOfOrder(u64),
}

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends one entry (the magic must already be written).
pub fn put_entry(out: &mut Vec<u8>, name: &str, ts: i64, seq: u64, hdr: &[u8], payload: &[u8]) {
    put_uvarint(out, name.len() as u64);
    put_varint(out, ts);
    put_uvarint(out, seq);
    put_uvarint(out, hdr.len() as u64);
    put_uvarint(out, payload.len() as u64);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(hdr);
    out.extend_from_slice(payload);
}

/// One archive entry, borrowed from the decoded backup.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub ts: i64,
    pub seq: u64,
    pub hdr: &'a [u8],
    pub payload: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Result<Option<u64>, ArchiveError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(ArchiveError::Invalid)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(Some(v));
            }
        }
        Err(ArchiveError::Invalid)
    }

    fn field(&mut self) -> Result<u64, ArchiveError> {
        self.uvarint()?.ok_or(ArchiveError::Invalid)
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], ArchiveError> {
        let n = usize::try_from(n).map_err(|_| ArchiveError::Invalid)?;
        let end = self.pos.checked_add(n).ok_or(ArchiveError::Invalid)?;
        let b = self.buf.get(self.pos..end).ok_or(ArchiveError::Invalid)?;
        self.pos = end;
        Ok(b)
    }

    /// The next entry; `Eof` at a clean end of the stream.
    fn next(&mut self) -> Result<Entry<'a>, ArchiveError> {
        let name_len = self.uvarint()?.ok_or(ArchiveError::Eof)?;
        let z = self.field()?;
        let ts = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let seq = self.field()?;
        let hdr_len = self.field()?;
        let payload_len = self.field()?;
        if name_len > MAX_NAME || hdr_len > i64::MAX as u64 || payload_len > i64::MAX as u64 {
            return Err(ArchiveError::Invalid);
        }
        let name = std::str::from_utf8(self.bytes(name_len)?).map_err(|_| ArchiveError::Invalid)?;
        let hdr = self.bytes(hdr_len)?;
        let payload = self.bytes(payload_len)?;
        Ok(Entry {
            name,
            ts,
            seq,
            hdr,
            payload,
        })
    }
}

/// A whole backup, checked for order and completeness.
pub struct Backup<'a> {
    /// `state.json`: nats-server's `StreamState`.
    pub state: &'a [u8],
    /// (name, JSON of `{config, state}`).
    pub consumers: Vec<(&'a str, &'a [u8])>,
    pub msgs: Vec<Entry<'a>>,
}

/// The fields of `state.json` a restore needs.
#[derive(serde::Deserialize, Default)]
pub struct BackupState {
    #[serde(default)]
    pub first_seq: u64,
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default)]
    pub consumer_count: u64,
}

pub fn parse(buf: &[u8]) -> Result<(Backup<'_>, BackupState), ArchiveError> {
    match buf.get(..MAGIC.len()) {
        None => return Err(ArchiveError::Eof),
        Some(m) if m != MAGIC => return Err(ArchiveError::Invalid),
        Some(_) => {}
    }
    let mut r = Reader {
        buf,
        pos: MAGIC.len(),
    };
    let first = r.next()?;
    if first.name != STATE_ENTRY {
        return Err(ArchiveError::NoState);
    }
    let state: BackupState =
        serde_json::from_slice(first.payload).map_err(|e| ArchiveError::BadState(e.to_string()))?;
    let mut backup = Backup {
        state: first.payload,
        consumers: Vec::new(),
        msgs: Vec::new(),
    };
    for _ in 0..state.consumer_count {
        let e = r.next()?;
        let Some(name) = e.name.strip_prefix(CONSUMER_PREFIX) else {
            return Err(ArchiveError::NotConsumer(e.name.to_string()));
        };
        backup.consumers.push((name, e.payload));
    }
    let mut last = state.first_seq.saturating_sub(1);
    loop {
        let e = r.next()?;
        if e.seq == 0 {
            if e.ts == 0 && e.hdr.is_empty() && e.payload.is_empty() {
                break;
            }
            return Err(ArchiveError::NoSequence);
        }
        if e.seq <= last {
            return Err(ArchiveError::OutOfOrder(e.seq));
        }
        last = e.seq;
        backup.msgs.push(e);
    }
    Ok((backup, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put_entry(
            &mut out,
            STATE_ENTRY,
            5,
            0,
            b"",
            br#"{"first_seq":1,"last_seq":3,"consumer_count":1}"#,
        );
        put_entry(&mut out, "consumers/C", -7, 0, b"", b"{}");
        put_entry(
            &mut out,
            "a.b",
            1_700_000_000_000_000_000,
            1,
            b"NATS/1.0\r\n\r\n",
            b"x",
        );
        put_entry(&mut out, "a.c", 2, 3, b"", b"yz");
        put_entry(&mut out, "", 0, 0, b"", b"");
        out
    }

    #[test]
    fn parses_what_it_writes() {
        let buf = sample();
        let (b, st) = parse(&buf).unwrap();
        assert_eq!((st.first_seq, st.last_seq), (1, 3));
        assert_eq!(b.consumers, vec![("C", &b"{}"[..])]);
        assert_eq!(b.msgs.len(), 2);
        assert_eq!(b.msgs[0].ts, 1_700_000_000_000_000_000);
        assert_eq!(b.msgs[0].hdr, b"NATS/1.0\r\n\r\n");
        assert_eq!((b.msgs[1].seq, b.msgs[1].payload), (3, &b"yz"[..]));
    }

    #[test]
    fn refuses_truncation_anywhere() {
        let buf = sample();
        for cut in 0..buf.len() {
            assert!(parse(&buf[..cut]).is_err(), "cut at {cut} accepted");
        }
        assert_eq!(
            parse(b"NATSARC2").err(),
            Some(ArchiveError::Invalid),
            "wrong magic"
        );
    }
}
