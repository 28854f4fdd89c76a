//! workloads/latency.rs — request-reply latency: one responder thread answers
//! each request on its reply subject; one requester sends sequential requests
//! with a reply subject it subscribed to and times each round trip (both on
//! one server, or on two cluster nodes).

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::throughput::INTEREST_TIMEOUT;
use super::{subscriber, Config, Limit};
use crate::proto::{self, Conn, Frame, PONG};
use crate::server::await_interest;

const SUBJECT: &str = "bench.req";
const INBOX: &str = "bench.inbox.1";
/// Round trips done before measuring (connection and cache warm-up).
const WARMUP: u64 = 500;

/// [p50, p99, p99.9] in microseconds.
pub fn req_reply(addr: SocketAddr, size: usize, cfg: &Config) -> Result<Vec<f64>> {
    req_reply_on(addr, addr, size, cfg)
}

/// `req_reply` with the requester on `req_addr` and the responder on
/// `resp_addr` (cluster nodes); when they differ, both subscriptions are
/// probed until each is known at the other node.
pub fn req_reply_on(
    req_addr: SocketAddr,
    resp_addr: SocketAddr,
    size: usize,
    cfg: &Config,
) -> Result<Vec<f64>> {
    let mut responder = subscriber::connect(resp_addr, SUBJECT, None)?;
    let mut req = Conn::connect(req_addr)?;
    req.subscribe(INBOX, None, 1)?;
    req.round_trip(Duration::from_secs(10))?;
    if req_addr != resp_addr {
        let deadline = Instant::now() + INTEREST_TIMEOUT;
        await_interest(&mut responder, req_addr, deadline)
            .context("responder's subscription did not reach the requester's node")?;
        await_interest(&mut req, resp_addr, deadline)
            .context("requester's inbox did not reach the responder's node")?;
    }
    let payload = proto::payload(size);
    let frame = proto::pub_frame(SUBJECT, Some(INBOX), &payload);
    let stop = AtomicBool::new(false);

    let (lat, resp) = thread::scope(|s| {
        let h = s.spawn(|| respond(responder, &payload, &stop));
        let lat = measure(&mut req, &frame, cfg);
        stop.store(true, Ordering::Relaxed);
        let resp = h
            .join()
            .unwrap_or_else(|_| Err(anyhow!("responder thread panicked")));
        (lat, resp)
    });
    let mut lat = match (lat, resp) {
        (Ok(l), _) => l,
        (Err(e), Err(r)) => return Err(e.context(format!("responder: {r:#}"))),
        (Err(e), Ok(())) => return Err(e),
    };
    if lat.is_empty() {
        bail!("no requests measured");
    }
    lat.sort_unstable();
    Ok([0.50, 0.99, 0.999]
        .iter()
        .map(|&q| percentile(&lat, q) as f64 / 1000.0)
        .collect())
}

/// Nearest-rank percentile of sorted nanosecond samples.
pub(super) fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn measure(req: &mut Conn, frame: &[u8], cfg: &Config) -> Result<Vec<u64>> {
    for _ in 0..WARMUP {
        one(req, frame)?;
    }
    let (max, until) = match cfg.limit {
        Limit::Msgs(_) => (cfg.requests, None),
        Limit::Time(d) => (u64::MAX, Some(Instant::now() + d)),
    };
    let mut lat = Vec::with_capacity(max.min(1 << 20) as usize);
    for i in 0..max {
        if let Some(t) = until {
            if i % 64 == 0 && Instant::now() >= t {
                break;
            }
        }
        lat.push(one(req, frame)?);
    }
    Ok(lat)
}

/// One timed round trip in nanoseconds.
fn one(req: &mut Conn, frame: &[u8]) -> Result<u64> {
    let t0 = Instant::now();
    req.sock.write_all(frame).context("send request")?;
    loop {
        while let Some(f) = req.scan.next_frame()? {
            match f {
                Frame::Msg { .. } | Frame::HMsg { .. } => {
                    return Ok(t0.elapsed().as_nanos() as u64);
                }
                Frame::Ping => req.sock.write_all(PONG).context("send PONG")?,
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
        req.fill().context("waiting for reply")?;
    }
}

fn respond(mut c: Conn, payload: &[u8], stop: &AtomicBool) -> Result<()> {
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        match c.scan.read_from(&mut c.sock) {
            Ok(0) => bail!("server closed the responder connection"),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e).context("responder read"),
        }
        out.clear();
        while let Some(f) = c.scan.next_frame()? {
            match f {
                Frame::Msg { reply: Some(r), .. } | Frame::HMsg { reply: Some(r), .. } => {
                    out.extend_from_slice(b"PUB ");
                    out.extend_from_slice(r);
                    out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
                    out.extend_from_slice(payload);
                    out.extend_from_slice(b"\r\n");
                }
                Frame::Ping => out.extend_from_slice(PONG),
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
        if !out.is_empty() {
            c.sock.write_all(&out).context("send reply")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(super::percentile(&v, 0.5), 500);
        assert_eq!(super::percentile(&v, 0.99), 990);
        assert_eq!(super::percentile(&v, 0.999), 999);
        assert_eq!(super::percentile(&[7], 0.999), 7);
    }
}
