//! proto.rs — the client side of the NATS wire protocol as the load generators
//! need it: pre-built outgoing frames, an incremental scanner for what the
//! server sends (INFO/MSG/HMSG/PING/PONG/+OK/-ERR), and a blocking `Conn`
//! (handshake, SUB, PING/PONG round-trips) over a std `TcpStream`, upgraded
//! to TLS after the INFO when the server requires it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::tls::Stream;

/// The CONNECT line every benchmark client sends after reading INFO.
pub const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n";
pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";

/// Largest control line we accept before declaring the stream garbage.
const MAX_CONTROL_LINE: usize = 64 * 1024;

/// One `PUB subject [reply] len\r\npayload\r\n` frame.
pub fn pub_frame(subject: &str, reply: Option<&str>, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(subject.len() + payload.len() + 32);
    f.extend_from_slice(b"PUB ");
    f.extend_from_slice(subject.as_bytes());
    if let Some(r) = reply {
        f.push(b' ');
        f.extend_from_slice(r.as_bytes());
    }
    f.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
    f.extend_from_slice(payload);
    f.extend_from_slice(b"\r\n");
    f
}

/// A deterministic payload of `len` printable bytes.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// One frame received from the server. Byte slices borrow the scanner buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Info(&'a [u8]),
    Msg {
        subject: &'a [u8],
        sid: &'a [u8],
        reply: Option<&'a [u8]>,
        payload: &'a [u8],
    },
    HMsg {
        subject: &'a [u8],
        sid: &'a [u8],
        reply: Option<&'a [u8]>,
        headers: &'a [u8],
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
}

/// Incremental scanner: feed it bytes (from any number of reads, split
/// anywhere) and pull complete frames out. Nothing is consumed until a whole
/// frame (control line plus payload plus trailing CRLF) is buffered.
pub struct Scanner {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::with_capacity(256 * 1024)
    }
}

impl Scanner {
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            buf: vec![0; cap.max(64)],
            start: 0,
            end: 0,
        }
    }

    /// Bytes buffered but not yet returned as frames.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Makes room at the tail (compacting or growing) and returns it.
    fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Appends bytes (tests feed split input this way).
    #[cfg(test)]
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let spare = self.spare();
            let n = spare.len().min(data.len());
            spare[..n].copy_from_slice(&data[..n]);
            self.end += n;
            data = &data[n..];
        }
    }

    /// One `read` from `r` into the buffer. Returns the byte count (0 = EOF).
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> std::io::Result<usize> {
        let spare = self.spare();
        let n = r.read(spare)?;
        self.end += n;
        Ok(n)
    }

    /// The next complete frame, or `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        let avail = &self.buf[self.start..self.end];
        let Some(nl) = memchr::memchr(b'\n', avail) else {
            if avail.len() > MAX_CONTROL_LINE {
                bail!("control line longer than {MAX_CONTROL_LINE} bytes");
            }
            return Ok(None);
        };
        let line_end = if nl > 0 && avail[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let line = &avail[..line_end];
        let body_start = nl + 1;
        let (op, args) = match memchr::memchr2(b' ', b'\t', line) {
            Some(i) => (&line[..i], trim(&line[i + 1..])),
            None => (line, &line[line.len()..]),
        };
        let base = self.start;
        let frame_and_len = if op.eq_ignore_ascii_case(b"MSG") {
            let mut it = Args::new(args);
            let (subject, sid) = (it.need()?, it.need()?);
            let third = it.need()?;
            let (reply, size) = match it.next() {
                Some(size) => (Some(third), size),
                None => (None, third),
            };
            let size = parse_usize(size)?;
            let total = body_start + size + 2;
            if avail.len() < total {
                return Ok(None);
            }
            let payload = &avail[body_start..body_start + size];
            (
                Frame::Msg {
                    subject,
                    sid,
                    reply,
                    payload,
                },
                total,
            )
        } else if op.eq_ignore_ascii_case(b"HMSG") {
            let mut it = Args::new(args);
            let (subject, sid) = (it.need()?, it.need()?);
            let a = it.need()?;
            let b = it.need()?;
            let (reply, hdr, size) = match it.next() {
                Some(c) => (Some(a), b, c),
                None => (None, a, b),
            };
            let (hdr, size) = (parse_usize(hdr)?, parse_usize(size)?);
            if hdr > size {
                bail!("HMSG header size {hdr} > total size {size}");
            }
            let total = body_start + size + 2;
            if avail.len() < total {
                return Ok(None);
            }
            (
                Frame::HMsg {
                    subject,
                    sid,
                    reply,
                    headers: &avail[body_start..body_start + hdr],
                    payload: &avail[body_start + hdr..body_start + size],
                },
                total,
            )
        } else if op.eq_ignore_ascii_case(b"PING") {
            (Frame::Ping, body_start)
        } else if op.eq_ignore_ascii_case(b"PONG") {
            (Frame::Pong, body_start)
        } else if op.eq_ignore_ascii_case(b"+OK") {
            (Frame::Ok, body_start)
        } else if op.eq_ignore_ascii_case(b"-ERR") {
            (Frame::Err(args), body_start)
        } else if op.eq_ignore_ascii_case(b"INFO") {
            (Frame::Info(args), body_start)
        } else {
            bail!(
                "unexpected protocol line from server: {:?}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            );
        };
        let (frame, len) = frame_and_len;
        self.start = base + len;
        Ok(Some(frame))
    }
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

/// Whitespace-separated argument iterator over a control line.
struct Args<'a>(&'a [u8]);

impl<'a> Args<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self(s)
    }
    fn need(&mut self) -> Result<&'a [u8]> {
        self.next()
            .ok_or_else(|| anyhow::anyhow!("too few arguments in MSG/HMSG line"))
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let s = trim(self.0);
        if s.is_empty() {
            return None;
        }
        let end = memchr::memchr2(b' ', b'\t', s).unwrap_or(s.len());
        self.0 = &s[end..];
        Some(&s[..end])
    }
}

fn parse_usize(s: &[u8]) -> Result<usize> {
    if s.is_empty() || s.len() > 12 {
        bail!("bad size {:?}", String::from_utf8_lossy(s));
    }
    let mut n = 0usize;
    for &c in s {
        if !c.is_ascii_digit() {
            bail!("bad size {:?}", String::from_utf8_lossy(s));
        }
        n = n * 10 + (c - b'0') as usize;
    }
    Ok(n)
}

/// A blocking client connection: socket plus scanner.
pub struct Conn {
    pub sock: Stream,
    pub scan: Scanner,
}

impl Conn {
    /// Connects, reads INFO, upgrades to TLS if INFO says `tls_required`,
    /// sends CONNECT. No round-trip yet.
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        Self::connect_with_buf(addr, 256 * 1024)
    }

    /// Like `connect` with a custom read-buffer size (small for idle conns).
    pub fn connect_with_buf(addr: SocketAddr, buf: usize) -> Result<Self> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connect to {addr}"))?;
        tcp.set_nodelay(true).context("set TCP_NODELAY")?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .context("set read timeout")?;
        let mut sock = Stream::Plain(tcp);
        let mut scan = Scanner::with_capacity(buf);
        let tls = loop {
            match scan.next_frame()? {
                Some(Frame::Info(info)) => break tls_required(info),
                Some(other) => bail!("expected INFO first, got {other:?}"),
                None => fill(&mut scan, &mut sock)?,
            }
        };
        if tls {
            sock = sock.upgrade()?;
        }
        sock.write_all(CONNECT).context("send CONNECT")?;
        Ok(Self { sock, scan })
    }

    /// One blocking read into the scanner; EOF is an error.
    pub fn fill(&mut self) -> Result<()> {
        fill(&mut self.scan, &mut self.sock)
    }

    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>, sid: u32) -> Result<()> {
        let line = match queue {
            Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
            None => format!("SUB {subject} {sid}\r\n"),
        };
        self.sock.write_all(line.as_bytes()).context("send SUB")
    }

    /// Sends PING and waits for the PONG, failing on anything but PING/+OK.
    /// Used after SUB so the subscription is known to be in place.
    pub fn round_trip(&mut self, timeout: Duration) -> Result<()> {
        self.sock.write_all(PING).context("send PING")?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.scan.next_frame()? {
                Some(Frame::Pong) => return Ok(()),
                Some(Frame::Ping) => self.sock.write_all(PONG).context("send PONG")?,
                Some(Frame::Ok) | Some(Frame::Info(_)) => {}
                Some(Frame::Err(e)) => bail!("server error: {}", String::from_utf8_lossy(e)),
                Some(other) => bail!("unexpected frame while waiting for PONG: {other:?}"),
                None => {
                    if Instant::now() > deadline {
                        bail!("no PONG within {timeout:?}");
                    }
                    self.fill()?;
                }
            }
        }
    }
}

/// One blocking read from `sock` into `scan`; EOF and timeouts are errors.
fn fill(scan: &mut Scanner, sock: &mut Stream) -> Result<()> {
    let n = match scan.read_from(sock) {
        Ok(n) => n,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            bail!("timed out waiting for the server to send something")
        }
        Err(e) => return Err(e).context("read from server"),
    };
    if n == 0 {
        bail!("server closed the connection");
    }
    Ok(())
}

/// Whether an INFO line's JSON asks the client to upgrade to TLS.
fn tls_required(info: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(info)
        .ok()
        .and_then(|v| v.get("tls_required").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_frames(sc: &mut Scanner) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(f) = sc.next_frame().expect("scan") {
            out.push(format!("{f:?}"));
        }
        out
    }

    #[test]
    fn msg_split_at_every_byte() {
        let wire = b"INFO {\"server_id\":\"x\"}\r\nMSG foo.bar 7 5\r\nhello\r\nPING\r\nMSG a 1 0\r\n\r\nPONG\r\n";
        let mut whole = Scanner::with_capacity(64);
        whole.feed(wire);
        let expected = all_frames(&mut whole);
        assert_eq!(expected.len(), 5);
        for split in 0..wire.len() {
            let mut sc = Scanner::with_capacity(64);
            sc.feed(&wire[..split]);
            let mut got = all_frames(&mut sc);
            sc.feed(&wire[split..]);
            got.extend(all_frames(&mut sc));
            assert_eq!(got, expected, "split at {split}");
            assert_eq!(sc.pending(), 0);
        }
    }

    #[test]
    fn byte_by_byte_feed_with_small_buffer() {
        let payload = vec![b'z'; 300];
        let mut wire = b"MSG s 1 300\r\n".to_vec();
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(b"\r\n");
        let mut sc = Scanner::with_capacity(64);
        let mut n = 0;
        for b in &wire {
            sc.feed(std::slice::from_ref(b));
            while let Some(f) = sc.next_frame().expect("scan") {
                match f {
                    Frame::Msg { payload: p, .. } => assert_eq!(p, &payload[..]),
                    other => panic!("unexpected {other:?}"),
                }
                n += 1;
            }
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn msg_with_reply_subject() {
        let mut sc = Scanner::with_capacity(64);
        sc.feed(b"MSG req.x 42 _INBOX.abc 3\r\nhey\r\n");
        assert_eq!(
            sc.next_frame().expect("scan"),
            Some(Frame::Msg {
                subject: b"req.x",
                sid: b"42",
                reply: Some(b"_INBOX.abc"),
                payload: b"hey",
            })
        );
        assert_eq!(sc.next_frame().expect("scan"), None);
    }

    #[test]
    fn msg_payload_may_contain_crlf() {
        let mut sc = Scanner::with_capacity(64);
        sc.feed(b"MSG a 1 6\r\nx\r\nPIN\r\nPONG\r\n");
        assert_eq!(
            sc.next_frame().expect("scan"),
            Some(Frame::Msg {
                subject: b"a",
                sid: b"1",
                reply: None,
                payload: b"x\r\nPIN",
            })
        );
        assert_eq!(sc.next_frame().expect("scan"), Some(Frame::Pong));
    }

    #[test]
    fn hmsg_with_and_without_reply() {
        let hdr = b"NATS/1.0\r\nA: b\r\n\r\n";
        let mut wire = Vec::new();
        wire.extend_from_slice(format!("HMSG s 9 {} {}\r\n", hdr.len(), hdr.len() + 4).as_bytes());
        wire.extend_from_slice(hdr);
        wire.extend_from_slice(b"body\r\n");
        wire.extend_from_slice(format!("HMSG s 9 r.1 {} {}\r\n", hdr.len(), hdr.len()).as_bytes());
        wire.extend_from_slice(hdr);
        wire.extend_from_slice(b"\r\n");
        for split in 0..wire.len() {
            let mut sc = Scanner::with_capacity(64);
            sc.feed(&wire[..split]);
            let mut got = all_frames(&mut sc);
            sc.feed(&wire[split..]);
            got.extend(all_frames(&mut sc));
            assert_eq!(got.len(), 2, "split at {split}");
        }
        let mut sc = Scanner::with_capacity(64);
        sc.feed(&wire);
        assert_eq!(
            sc.next_frame().expect("scan"),
            Some(Frame::HMsg {
                subject: b"s",
                sid: b"9",
                reply: None,
                headers: hdr,
                payload: b"body",
            })
        );
        assert_eq!(
            sc.next_frame().expect("scan"),
            Some(Frame::HMsg {
                subject: b"s",
                sid: b"9",
                reply: Some(b"r.1"),
                headers: hdr,
                payload: b"",
            })
        );
    }

    #[test]
    fn control_lines_and_errors() {
        let mut sc = Scanner::with_capacity(64);
        sc.feed(b"+OK\r\nping\r\n-ERR 'Slow Consumer'\r\nINFO {}\r\n");
        assert_eq!(sc.next_frame().expect("scan"), Some(Frame::Ok));
        assert_eq!(sc.next_frame().expect("scan"), Some(Frame::Ping));
        assert_eq!(
            sc.next_frame().expect("scan"),
            Some(Frame::Err(b"'Slow Consumer'"))
        );
        assert_eq!(sc.next_frame().expect("scan"), Some(Frame::Info(b"{}")));
        sc.feed(b"BOGUS\r\n");
        assert!(sc.next_frame().is_err());
        let mut sc = Scanner::with_capacity(64);
        sc.feed(b"MSG a 1 x\r\n");
        assert!(sc.next_frame().is_err());
    }

    #[test]
    fn info_tls_flag() {
        assert!(tls_required(br#"{"server_id":"x","tls_required":true}"#));
        assert!(!tls_required(br#"{"server_id":"x","tls_required":false}"#));
        assert!(!tls_required(br#"{"server_id":"x"}"#));
        assert!(!tls_required(b"not json"));
    }

    #[test]
    fn pub_frame_shape() {
        assert_eq!(pub_frame("a.b", None, b"xy"), b"PUB a.b 2\r\nxy\r\n");
        assert_eq!(pub_frame("a", Some("r"), b""), b"PUB a r 0\r\n\r\n");
        assert_eq!(payload(3), b"abc");
    }
}
