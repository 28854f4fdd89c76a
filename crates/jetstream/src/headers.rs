//! Reading and writing the `NATS/1.0` header block that JetStream speaks in:
//! `Nats-Msg-Id`, `Nats-Expected-*`, `Nats-Rollup`, `Nats-TTL` on the way in,
//! `Nats-Stream`/`Nats-Sequence`/... on direct-get replies, status lines
//! (`NATS/1.0 404 No Messages`) for clients.

pub const MSG_ID: &str = "Nats-Msg-Id";
pub const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
pub const EXPECTED_LAST_SEQ: &str = "Nats-Expected-Last-Sequence";
pub const EXPECTED_LAST_SUBJ_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
pub const EXPECTED_LAST_SUBJ_SEQ_SUBJECT: &str = "Nats-Expected-Last-Subject-Sequence-Subject";
pub const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
pub const ROLLUP: &str = "Nats-Rollup";
pub const TTL: &str = "Nats-TTL";
pub const STREAM: &str = "Nats-Stream";
pub const SEQUENCE: &str = "Nats-Sequence";
pub const TIME_STAMP: &str = "Nats-Time-Stamp";
pub const SUBJECT: &str = "Nats-Subject";
pub const LAST_SEQUENCE: &str = "Nats-Last-Sequence";
pub const NUM_PENDING: &str = "Nats-Num-Pending";
pub const LAST_CONSUMER: &str = "Nats-Last-Consumer";
pub const LAST_STREAM: &str = "Nats-Last-Stream";
pub const STREAM_SOURCE: &str = "Nats-Stream-Source";

/// The value of header `name` in a `NATS/1.0` block (first occurrence,
/// surrounding whitespace trimmed). Names match exactly, as in nats-server.
pub fn get<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    lines(block).find_map(|(k, v)| (k == name.as_bytes()).then_some(v))
}

/// `get` as UTF-8 text.
pub fn get_str<'a>(block: &'a [u8], name: &str) -> Option<&'a str> {
    get(block, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// The header lines after the status line, as (name, value) pairs.
pub fn lines(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    block
        .split(|&b| b == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter_map(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            Some((trim(&l[..colon]), trim(&l[colon + 1..])))
        })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `block` with header `name` set to `value`: the first line with that name
/// gets the new value in place, or a line is appended (a new block is made
/// when `block` is empty).
pub fn set(block: &[u8], name: &str, value: &str) -> Vec<u8> {
    if block.is_empty() {
        return Builder::new().add(name, value).finish();
    }
    let mut out = Vec::with_capacity(block.len() + name.len() + value.len() + 4);
    let mut done = false;
    let mut parts = block.split(|&b| b == b'\n');
    if let Some(status) = parts.next() {
        out.extend_from_slice(status);
        out.push(b'\n');
    }
    for raw in parts {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let key = line.split(|&b| b == b':').next().map(trim);
        if !done && key == Some(name.as_bytes()) {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            done = true;
        } else {
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b"\r\n");
    }
    if !done {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `block` without any `name` header line (empty if nothing is left but
/// the status line `NATS/1.0`).
pub fn remove(block: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len());
    let mut parts = block.split(|&b| b == b'\n');
    if let Some(status) = parts.next() {
        out.extend_from_slice(status);
        out.push(b'\n');
    }
    let mut kept = 0;
    for raw in parts {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let key = line.split(|&b| b == b':').next().map(trim);
        if line.is_empty() || key == Some(name.as_bytes()) {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        kept += 1;
    }
    if kept == 0 && out.starts_with(b"NATS/1.0\r\n") && out.len() == 10 {
        return Vec::new();
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Builds a header block: an optional status, then the given headers, then
/// any existing header lines from `extra` (a full `NATS/1.0` block).
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            buf: b"NATS/1.0\r\n".to_vec(),
        }
    }

    /// `NATS/1.0 <code> <description>` (description may be empty).
    pub fn status(code: u16, description: &str) -> Self {
        let line = if description.is_empty() {
            format!("NATS/1.0 {code}\r\n")
        } else {
            format!("NATS/1.0 {code} {description}\r\n")
        };
        Builder {
            buf: line.into_bytes(),
        }
    }

    pub fn add(mut self, name: &str, value: &str) -> Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Appends the header lines (not the status line) of an existing block.
    pub fn extend_from(mut self, block: &[u8]) -> Self {
        for (k, v) in lines(block) {
            self.buf.extend_from_slice(k);
            self.buf.extend_from_slice(b": ");
            self.buf.extend_from_slice(v);
            self.buf.extend_from_slice(b"\r\n");
        }
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_headers() {
        let h = b"NATS/1.0\r\nNats-Msg-Id: abc \r\nA:b\r\nA: c\r\n\r\n";
        assert_eq!(get(h, MSG_ID), Some(&b"abc"[..]));
        assert_eq!(get(h, "A"), Some(&b"b"[..]));
        assert_eq!(get(h, "nats-msg-id"), None);
        assert_eq!(lines(h).count(), 3);
    }

    #[test]
    fn remove_drops_the_named_lines() {
        let h = b"NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(remove(h, "A"), b"NATS/1.0\r\nB: 2\r\n\r\n");
        assert_eq!(remove(b"NATS/1.0\r\nA: 1\r\n\r\n", "A"), b"");
    }

    #[test]
    fn set_replaces_in_place_or_appends() {
        let h = b"NATS/1.0\r\nA: 1\r\nNats-Incr: 5\r\nB: 2\r\n\r\n";
        assert_eq!(
            set(h, "Nats-Incr", "7"),
            b"NATS/1.0\r\nA: 1\r\nNats-Incr: 7\r\nB: 2\r\n\r\n"
        );
        assert_eq!(
            set(h, "C", "x"),
            b"NATS/1.0\r\nA: 1\r\nNats-Incr: 5\r\nB: 2\r\nC: x\r\n\r\n"
        );
        assert_eq!(set(b"", "C", "x"), b"NATS/1.0\r\nC: x\r\n\r\n");
    }

    #[test]
    fn build_headers() {
        let h = Builder::status(404, "Message Not Found").finish();
        assert_eq!(h, b"NATS/1.0 404 Message Not Found\r\n\r\n");
        let h = Builder::new()
            .add(STREAM, "S")
            .extend_from(b"NATS/1.0\r\nX: 1\r\n\r\n")
            .finish();
        assert_eq!(h, b"NATS/1.0\r\nNats-Stream: S\r\nX: 1\r\n\r\n");
    }
}
