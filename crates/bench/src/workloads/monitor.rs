//! workloads/monitor.rs — does a monitoring scraper slow the client port?
//! Measures one-publisher/one-subscriber throughput on a server twice: quiet,
//! then while a thread requests `/varz`, `/connz` and `/jsz` back to back over
//! a keep-alive HTTP/1.1 connection to the monitoring port.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::{throughput, Limit};
use crate::server::Server;

/// What the flood thread requests, in turn.
const PATHS: [&str; 3] = ["/varz", "/connz", "/jsz"];
/// Largest response header block accepted.
const MAX_HEAD: usize = 64 * 1024;

/// [quiet msgs/s, flood msgs/s, flood/quiet, monitoring requests/s].
pub fn monitor_flood(server: &Server, size: usize, limit: Limit) -> Result<Vec<f64>> {
    let port = server
        .http_port
        .context("server started without a monitoring port")?;
    let http = SocketAddr::from(([127, 0, 0, 1], port));
    // The monitoring listener may come up a little after the client port.
    let mut probe = HttpConn::connect_ready(http, Duration::from_secs(10))?;
    for p in PATHS {
        probe.get(p).with_context(|| format!("GET {p}"))?;
    }
    drop(probe);

    let quiet = throughput::pub_sub(server.addr, size, 1, false, limit).context("quiet run")?[0];
    let stop = AtomicBool::new(false);
    let (flood, scraped) = thread::scope(|s| {
        let h = s.spawn(|| scrape(http, &stop));
        let flood = throughput::pub_sub(server.addr, size, 1, false, limit);
        stop.store(true, Ordering::Relaxed);
        let scraped = h
            .join()
            .unwrap_or_else(|_| Err(anyhow!("monitoring thread panicked")));
        (flood, scraped)
    });
    let flood = flood.context("run under the monitoring flood")?[0];
    let (requests, secs) = scraped.context("monitoring flood")?;
    if requests == 0 || secs <= 0.0 {
        bail!("no monitoring request completed during the flood");
    }
    Ok(vec![quiet, flood, flood / quiet, requests as f64 / secs])
}

/// Requests the monitoring pages until `stop`; (requests, seconds).
fn scrape(addr: SocketAddr, stop: &AtomicBool) -> Result<(u64, f64)> {
    let start = Instant::now();
    let mut n = 0u64;
    let mut conn = HttpConn::connect(addr)?;
    while !stop.load(Ordering::Relaxed) {
        let path = PATHS[(n % PATHS.len() as u64) as usize];
        let keep = conn.get(path).with_context(|| format!("GET {path}"))?;
        n += 1;
        if !keep {
            conn = HttpConn::connect(addr)?;
        }
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// A minimal keep-alive HTTP/1.1 client for GETs answering 200.
struct HttpConn {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    fn connect(addr: SocketAddr) -> Result<Self> {
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connect to monitoring port {addr}"))?;
        sock.set_nodelay(true).context("set TCP_NODELAY")?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .context("set read timeout")?;
        Ok(Self {
            sock,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    fn connect_ready(addr: SocketAddr, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        loop {
            match Self::connect(addr) {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Reads more bytes into `buf`; EOF is an error.
    fn more(&mut self) -> Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = match self.sock.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("monitoring answer timed out")
            }
            Err(e) => return Err(e).context("read monitoring answer"),
        };
        if n == 0 {
            bail!("monitoring connection closed mid-answer");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// GETs `path`, reads the whole body, requires status 200. Returns
    /// whether the connection may be reused.
    fn get(&mut self, path: &str) -> Result<bool> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
        self.sock
            .write_all(req.as_bytes())
            .context("send HTTP request")?;
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                bail!("HTTP header block over {MAX_HEAD} bytes");
            }
            self.more()?;
        };
        let head = Head::parse(&self.buf[..head_end])?;
        if head.status != 200 {
            bail!("{path} answered HTTP {}", head.status);
        }
        self.buf.drain(..head_end);
        match head.body {
            Body::Length(n) => {
                while self.buf.len() < n {
                    self.more()?;
                }
                self.buf.drain(..n);
            }
            Body::Chunked => self.skip_chunks()?,
            Body::UntilClose => {
                loop {
                    let mut chunk = [0u8; 16 * 1024];
                    match self.sock.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(e).context("read monitoring answer"),
                    }
                }
                return Ok(false);
            }
        }
        Ok(!head.close)
    }

    /// Consumes a chunked body (sizes in hex, then an empty trailer).
    fn skip_chunks(&mut self) -> Result<()> {
        loop {
            let line_end = loop {
                if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n") {
                    break i;
                }
                if self.buf.len() > 1024 {
                    bail!("bad chunk size line");
                }
                self.more()?;
            };
            let line = std::str::from_utf8(&self.buf[..line_end]).context("chunk size")?;
            let hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .with_context(|| format!("bad chunk size {hex:?}"))?;
            // Size line, data, CRLF (for the last chunk: the empty trailer).
            let need = line_end + 2 + size + 2;
            while self.buf.len() < need {
                self.more()?;
            }
            self.buf.drain(..need);
            if size == 0 {
                return Ok(());
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Body {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The parts of a response head the client needs.
#[derive(Debug)]
struct Head {
    status: u16,
    body: Body,
    close: bool,
}

impl Head {
    fn parse(raw: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(raw).context("HTTP head is not UTF-8")?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad HTTP status line {status_line:?}"))?;
        let (mut body, mut close) = (Body::UntilClose, false);
        for l in lines {
            let Some((name, value)) = l.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                body = Body::Length(value.parse().context("bad Content-Length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                body = Body::Chunked;
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                close = true;
            }
        }
        Ok(Self {
            status,
            body,
            close,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = Head::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").expect("parse");
        assert_eq!((h.status, h.body, h.close), (200, Body::Length(12), false));
        let h = Head::parse(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .expect("parse");
        assert_eq!((h.status, h.body, h.close), (200, Body::Chunked, true));
        let h = Head::parse(b"HTTP/1.0 404 Not Found\r\n\r\n").expect("parse");
        assert_eq!((h.status, h.body), (404, Body::UntilClose));
        assert!(Head::parse(b"garbage\r\n\r\n").is_err());
        assert!(Head::parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
