//! Small whole-file records (a durable consumer's state and config) written through
//! [`StoreIo`], so the same code runs on real disks and on the power-cut simulator.
//!
//! A file is replaced atomically (temporary file, optional fsync, rename, optional directory
//! fsync) and carries a crc32c trailer line, so a damaged file is detected instead of being
//! parsed into wrong numbers (a flipped digit in JSON still parses). Files written before the
//! trailer existed (no trailer) are accepted as they are.

use std::io;
use std::path::Path;

use thiserror::Error;

use crate::io::StoreIo;

const TRAILER: &[u8] = b"\ncrc32c:";

/// Why a checked file could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SmallFileError {
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("malformed checksum trailer")]
    BadTrailer,
}

/// `body` followed by its checksum trailer.
pub fn encode_checked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + TRAILER.len() + 9);
    out.extend_from_slice(body);
    out.extend_from_slice(TRAILER);
    out.extend_from_slice(format!("{:08x}\n", crc32c::crc32c(body)).as_bytes());
    out
}

/// The body of a file written by [`encode_checked`], verified; a file without a trailer is
/// returned whole (older format: the caller's parser is its only check).
pub fn decode_checked(data: &[u8]) -> Result<&[u8], SmallFileError> {
    let Some(at) = data.windows(TRAILER.len()).rposition(|w| w == TRAILER) else {
        return Ok(data);
    };
    let (body, rest) = data.split_at(at);
    let hex = rest[TRAILER.len()..].trim_ascii_end();
    let stored = std::str::from_utf8(hex)
        .ok()
        .filter(|h| h.len() == 8)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or(SmallFileError::BadTrailer)?;
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(SmallFileError::Checksum { stored, computed });
    }
    Ok(body)
}

/// A whole file's bytes.
pub fn read_file(io: &dyn StoreIo, path: &Path) -> io::Result<Vec<u8>> {
    let f = io.open(path, false)?;
    let len = usize::try_from(f.len()?).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    f.read_at(&mut buf, 0)?;
    Ok(buf)
}

/// Replaces `path` with `data` so that a crash leaves either the old or the new file whole
/// (when `sync`: and the new one durable once this returns).
pub fn replace_atomic(io: &dyn StoreIo, path: &Path, data: &[u8], sync: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let f = io.open(&tmp, true)?;
    f.truncate(0)?;
    f.write_at(data, 0)?;
    if sync {
        f.sync()?;
    }
    drop(f);
    io.rename(&tmp, path)?;
    if sync {
        if let Some(dir) = path.parent() {
            io.sync_dir(dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trip_and_damage() {
        let body = br#"{"ack_floor_s":12345}"#;
        let enc = encode_checked(body);
        assert_eq!(decode_checked(&enc), Ok(&body[..]));
        assert_eq!(
            decode_checked(body),
            Ok(&body[..]),
            "no trailer: older file"
        );
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x04;
            // Either detected, or (trailer marker hit) handed back whole with the
            // trailer still inside, which no JSON parser accepts.
            match decode_checked(&bad) {
                Err(_) => {}
                Ok(b) => assert!(
                    serde_json_like_reject(b),
                    "byte {i}: damage passed as {:?}",
                    String::from_utf8_lossy(b)
                ),
            }
        }
    }

    /// The accepted-but-damaged case must still carry trailing junk after the JSON object.
    fn serde_json_like_reject(b: &[u8]) -> bool {
        let end = b.iter().rposition(|c| *c == b'}').unwrap_or(0);
        b[end + 1..].iter().any(|c| !c.is_ascii_whitespace())
    }
}
