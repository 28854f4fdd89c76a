//! The S2 stream framing that nats-server wraps snapshots in (klauspost's
//! `s2.NewWriter`/`NewReader`): Snappy's framing format with the `S2sTwO`
//! stream identifier, blocks of up to 4 MiB and the repeat-offset copy.
//!
//! Reading accepts what Go's writer produces (S2 or Snappy streams, padding
//! and index chunks skipped). Writing emits checksummed uncompressed chunks
//! under the S2 identifier: valid input for Go's reader without a compressor
//! here (the messages are what a backup is for; size is secondary).

use thiserror::Error;

const S2_MAGIC: &[u8] = b"S2sTwO";
const SNAPPY_MAGIC: &[u8] = b"sNaPpY";
const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_IDENTIFIER: u8 = 0xff;
/// S2's largest block (Snappy's is 64 KiB).
const MAX_BLOCK: usize = 4 << 20;
/// Uncompressed bytes per chunk written here (Snappy's limit, so any reader copes).
pub const WRITE_BLOCK: usize = 64 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum S2Error {
    /// Go's `s2: corrupt input`.
    #[error("s2: corrupt input")]
    Corrupt,
    /// Go's `s2: corrupt input, crc mismatch`.
    #[error("s2: corrupt input, crc mismatch")]
    Crc,
    #[error("s2: unsupported input")]
    Unsupported,
    /// The stream stops inside a chunk.
    #[error("unexpected EOF")]
    Truncated,
}

/// Snappy's masked CRC-32C of the uncompressed bytes.
fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Incremental writer: feed bytes, take whole chunks as they fill.
#[derive(Default)]
pub struct Encoder {
    started: bool,
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl Encoder {
    pub fn write(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        while self.pending.len() >= WRITE_BLOCK {
            let rest = self.pending.split_off(WRITE_BLOCK);
            let block = std::mem::replace(&mut self.pending, rest);
            self.emit(&block);
        }
    }

    /// Flushes what is pending into a (short) chunk.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            self.emit(&block);
        }
        if !self.started {
            self.identifier();
        }
    }

    /// Encoded bytes so far.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Takes up to `n` encoded bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.out.len());
        let rest = self.out.split_off(n);
        std::mem::replace(&mut self.out, rest)
    }

    fn identifier(&mut self) {
        self.out.push(CHUNK_IDENTIFIER);
        self.out.extend_from_slice(&[S2_MAGIC.len() as u8, 0, 0]);
        self.out.extend_from_slice(S2_MAGIC);
        self.started = true;
    }

    fn emit(&mut self, block: &[u8]) {
        if !self.started {
            self.identifier();
        }
        let len = block.len() + 4;
        self.out.push(CHUNK_UNCOMPRESSED);
        self.out
            .extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8]);
        self.out.extend_from_slice(&masked_crc(block).to_le_bytes());
        self.out.extend_from_slice(block);
    }
}

/// Encodes a whole buffer as an S2 stream.
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::default();
    e.write(data);
    e.flush();
    e.out
}

/// Decodes a whole S2 (or Snappy-framed) stream.
pub fn decode(src: &[u8]) -> Result<Vec<u8>, S2Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut seen_identifier = false;
    while pos < src.len() {
        let head = src.get(pos..pos + 4).ok_or(S2Error::Truncated)?;
        let kind = head[0];
        let len = head[1] as usize | (head[2] as usize) << 8 | (head[3] as usize) << 16;
        // Go's reader wants the identifier first, before reading a body.
        if !seen_identifier && kind != CHUNK_IDENTIFIER {
            return Err(S2Error::Corrupt);
        }
        let body = src.get(pos + 4..pos + 4 + len).ok_or(S2Error::Truncated)?;
        pos += 4 + len;
        if kind == CHUNK_IDENTIFIER {
            if body != S2_MAGIC && body != SNAPPY_MAGIC {
                return Err(S2Error::Corrupt);
            }
            seen_identifier = true;
            continue;
        }
        match kind {
            CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                if body.len() < 4 {
                    return Err(S2Error::Corrupt);
                }
                let crc = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                let start = out.len();
                if kind == CHUNK_COMPRESSED {
                    decode_block(&body[4..], &mut out)?;
                } else {
                    if body.len() - 4 > MAX_BLOCK {
                        return Err(S2Error::Corrupt);
                    }
                    out.extend_from_slice(&body[4..]);
                }
                if masked_crc(&out[start..]) != crc {
                    return Err(S2Error::Crc);
                }
            }
            // Reserved unskippable chunk types.
            0x02..=0x7f => return Err(S2Error::Unsupported),
            // Padding, the seek index and other skippable chunks.
            _ => {}
        }
    }
    Ok(out)
}

fn uvarint(src: &[u8]) -> Result<(u64, usize), S2Error> {
    let mut v = 0u64;
    for (i, &b) in src.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok((v, i + 1));
        }
    }
    Err(S2Error::Corrupt)
}

fn le(src: &[u8], at: usize, n: usize) -> Result<usize, S2Error> {
    let bytes = src.get(at..at + n).ok_or(S2Error::Corrupt)?;
    Ok(bytes
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize))
}

/// One S2 block (Snappy's block format plus the repeat-offset copy), appended to `out`.
fn decode_block(src: &[u8], out: &mut Vec<u8>) -> Result<(), S2Error> {
    let (dlen, mut s) = uvarint(src)?;
    let dlen = usize::try_from(dlen).map_err(|_| S2Error::Corrupt)?;
    if dlen > MAX_BLOCK {
        return Err(S2Error::Corrupt);
    }
    let base = out.len();
    out.reserve(dlen);
    let mut offset = 0usize;
    while s < src.len() {
        let tag = src[s];
        let (length, copy_from) = match tag & 3 {
            0 => {
                let x = (tag >> 2) as usize;
                let len = if x < 60 {
                    s += 1;
                    x + 1
                } else {
                    let n = x - 59;
                    let v = le(src, s + 1, n)?;
                    s += 1 + n;
                    v + 1
                };
                let lit = src.get(s..s + len).ok_or(S2Error::Corrupt)?;
                out.extend_from_slice(lit);
                s += len;
                continue;
            }
            1 => {
                let code = ((tag >> 2) & 7) as usize;
                let t = ((tag as usize & 0xe0) << 3) | le(src, s + 1, 1)?;
                s += 2;
                let mut len = code;
                if t == 0 {
                    // Repeat the last offset with an extended length.
                    match code {
                        5 => {
                            len = le(src, s, 1)? + 4;
                            s += 1;
                        }
                        6 => {
                            len = le(src, s, 2)? + (1 << 8);
                            s += 2;
                        }
                        7 => {
                            len = le(src, s, 3)? + (1 << 16);
                            s += 3;
                        }
                        _ => {}
                    }
                } else {
                    offset = t;
                }
                (len + 4, offset)
            }
            2 => {
                let len = 1 + (tag >> 2) as usize;
                offset = le(src, s + 1, 2)?;
                s += 3;
                (len, offset)
            }
            _ => {
                let len = 1 + (tag >> 2) as usize;
                offset = le(src, s + 1, 4)?;
                s += 5;
                (len, offset)
            }
        };
        let written = out.len() - base;
        if copy_from == 0 || copy_from > written || written + length > dlen {
            return Err(S2Error::Corrupt);
        }
        // Byte by byte: a copy may overlap what it produces.
        let start = out.len() - copy_from;
        for i in 0..length {
            let b = out[start + i];
            out.push(b);
        }
    }
    if out.len() - base != dlen {
        return Err(S2Error::Corrupt);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let enc = encode(&data);
        assert_eq!(decode(&enc).unwrap(), data);
        assert_eq!(decode(&enc[..enc.len() - 3]), Err(S2Error::Truncated));
        let mut bad = enc.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode(&bad), Err(S2Error::Crc));
        assert_eq!(decode(b"garbage!garbage!"), Err(S2Error::Corrupt));
        assert_eq!(decode(&encode(b"")).unwrap(), b"");
    }

    #[test]
    fn decodes_copies_and_repeats() {
        // "abcd" literal, copy1 offset 4 len 4, then repeat (offset 0) len 4.
        let block = [12u8, 0x0c, b'a', b'b', b'c', b'd', 0x01, 0x04, 0x01, 0x00];
        let mut out = Vec::new();
        decode_block(&block, &mut out).unwrap();
        assert_eq!(out, b"abcdabcdabcd");
        // An offset before the start is refused, not a panic.
        let mut out = Vec::new();
        assert_eq!(
            decode_block(&[8u8, 0x01, 0x09], &mut out),
            Err(S2Error::Corrupt)
        );
    }
}
