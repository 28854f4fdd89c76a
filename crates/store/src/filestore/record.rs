//! On-disk record framing: encode/decode of the self-delimiting, checksummed records that
//! make up a block file. Layout (little endian):
//!
//! ```text
//! 0  magic   [D5 4E 53 7A]
//! 4  len     u32   whole record length, header included
//! 8  crc     u32   crc32c over bytes [0..8] ++ [12..len]
//! 12 kind    u8    1 msg, 2 tombstone, 3 compact, 4 skip, 5 erased, 6 block header
//! 13 seq     u64
//! 21 ts      i64
//! 29 body    msg: subj_len u16, subject, hdr_len u32, headers, payload
//!            block header: first_seq u64 (seq = last_seq, ts = last_ts)
//!            others: empty (erased: zero filler)
//! ```

pub(crate) const MAGIC: [u8; 4] = [0xD5, 0x4E, 0x53, 0x7A];
pub(crate) const HDR_LEN: usize = 29;
/// Sanity bound on one record (a message can't be larger than this).
pub(crate) const MAX_RECORD: usize = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Msg = 1,
    Tombstone = 2,
    Compact = 3,
    Skip = 4,
    Erased = 5,
    BlockHeader = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Msg,
            2 => Kind::Tombstone,
            3 => Kind::Compact,
            4 => Kind::Skip,
            5 => Kind::Erased,
            6 => Kind::BlockHeader,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub kind: Kind,
    pub seq: u64,
    pub ts: i64,
    pub len: usize,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes than the record claims (or than a header): a torn write at the tail.
    Short,
    BadMagic,
    BadLen,
    BadCrc,
    BadBody,
}

impl DecodeError {
    pub fn describe(self) -> &'static str {
        match self {
            DecodeError::Short => "incomplete record (torn write)",
            DecodeError::BadMagic => "bad record marker",
            DecodeError::BadLen => "bad record length",
            DecodeError::BadCrc => "checksum mismatch",
            DecodeError::BadBody => "malformed record body",
        }
    }
}

fn checksum(rec: &[u8]) -> u32 {
    let c = crc32c::crc32c(&rec[0..8]);
    crc32c::crc32c_append(c, &rec[12..])
}

fn put_header(buf: &mut Vec<u8>, kind: Kind, seq: u64, ts: i64) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[0; 8]);
    buf.push(kind as u8);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&ts.to_le_bytes());
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&buf[start..]);
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// Appends an encoded message record to `buf`.
pub(crate) fn encode_msg(
    buf: &mut Vec<u8>,
    seq: u64,
    ts: i64,
    subject: &str,
    hdr: &[u8],
    payload: &[u8],
) {
    let start = put_header(buf, Kind::Msg, seq, ts);
    buf.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    buf.extend_from_slice(subject.as_bytes());
    buf.extend_from_slice(&(hdr.len() as u32).to_le_bytes());
    buf.extend_from_slice(hdr);
    buf.extend_from_slice(payload);
    finish(buf, start);
}

/// Length of a message record.
pub(crate) fn msg_record_len(subject: usize, hdr: usize, payload: usize) -> usize {
    HDR_LEN + 2 + subject + 4 + hdr + payload
}

/// Appends a marker record (tombstone, compact, skip) to `buf`.
pub(crate) fn encode_marker(buf: &mut Vec<u8>, kind: Kind, seq: u64, ts: i64) {
    let start = put_header(buf, kind, seq, ts);
    finish(buf, start);
}

/// Appends a block header record: the stream's first/last seq and last ts when the block began.
pub(crate) fn encode_block_header(buf: &mut Vec<u8>, first: u64, last: u64, last_ts: i64) {
    let start = put_header(buf, Kind::BlockHeader, last, last_ts);
    buf.extend_from_slice(&first.to_le_bytes());
    finish(buf, start);
}

/// An erased record of exactly `len` bytes (len >= HDR_LEN) replacing a message in place.
pub(crate) fn encode_erased(seq: u64, len: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(len);
    let start = put_header(&mut buf, Kind::Erased, seq, 0);
    buf.resize(len.max(HDR_LEN), 0);
    finish(&mut buf, start);
    buf
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Decodes the record starting at `buf[0]`; `buf` may extend past it.
pub(crate) fn decode(buf: &[u8]) -> Result<Record<'_>, DecodeError> {
    if buf.len() < 8 {
        return Err(if buf.len() < 4 || buf[..4] == MAGIC {
            DecodeError::Short
        } else {
            DecodeError::BadMagic
        });
    }
    if buf[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let len = u32_at(buf, 4) as usize;
    if !(HDR_LEN..=MAX_RECORD).contains(&len) {
        return Err(DecodeError::BadLen);
    }
    if len > buf.len() {
        return Err(DecodeError::Short);
    }
    let rec = &buf[..len];
    if u32_at(rec, 8) != checksum(rec) {
        return Err(DecodeError::BadCrc);
    }
    let kind = Kind::from_u8(rec[12]).ok_or(DecodeError::BadBody)?;
    let seq = u64_at(rec, 13);
    let ts = u64_at(rec, 21) as i64;
    let body = &rec[HDR_LEN..];
    let r = Record {
        kind,
        seq,
        ts,
        len,
        body,
    };
    match kind {
        Kind::Msg => {
            parse_msg(body)?;
        }
        Kind::BlockHeader if body.len() != 8 => return Err(DecodeError::BadBody),
        Kind::Tombstone | Kind::Compact | Kind::Skip if !body.is_empty() => {
            return Err(DecodeError::BadBody)
        }
        _ => {}
    }
    Ok(r)
}

/// (subject, headers, payload) of a message body.
pub(crate) fn parse_msg(body: &[u8]) -> Result<(&str, &[u8], &[u8]), DecodeError> {
    if body.len() < 2 {
        return Err(DecodeError::BadBody);
    }
    let slen = u16::from_le_bytes([body[0], body[1]]) as usize;
    let rest = &body[2..];
    if rest.len() < slen + 4 {
        return Err(DecodeError::BadBody);
    }
    let subject = std::str::from_utf8(&rest[..slen]).map_err(|_| DecodeError::BadBody)?;
    let hlen = u32_at(rest, slen) as usize;
    let rest = &rest[slen + 4..];
    if rest.len() < hlen {
        return Err(DecodeError::BadBody);
    }
    Ok((subject, &rest[..hlen], &rest[hlen..]))
}

/// First value of a block header body.
pub(crate) fn header_first(body: &[u8]) -> u64 {
    if body.len() >= 8 {
        u64_at(body, 0)
    } else {
        0
    }
}

/// Offset of the next candidate magic at or after `from`.
pub(crate) fn find_magic(buf: &[u8], from: usize) -> Option<usize> {
    if from >= buf.len() {
        return None;
    }
    buf[from..]
        .windows(4)
        .position(|w| w == MAGIC)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let mut b = Vec::new();
        encode_msg(&mut b, 7, 99, "a.b", b"NATS/1.0\r\n\r\n", b"hello");
        assert_eq!(b.len(), msg_record_len(3, 12, 5));
        let r = decode(&b).unwrap();
        assert_eq!((r.kind, r.seq, r.ts, r.len), (Kind::Msg, 7, 99, b.len()));
        let (s, h, p) = parse_msg(r.body).unwrap();
        assert_eq!((s, h, p), ("a.b", &b"NATS/1.0\r\n\r\n"[..], &b"hello"[..]));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(decode(&c).is_err(), "flip at {i} undetected");
        }
        assert_eq!(decode(&b[..b.len() - 1]).unwrap_err(), DecodeError::Short);
        let e = encode_erased(7, b.len());
        assert_eq!(decode(&e).unwrap().kind, Kind::Erased);
        assert_eq!(e.len(), b.len());
    }
}
