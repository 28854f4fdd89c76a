//! workloads/kvwatch.rs — KV watch fan-out latency: `watchers` clients each
//! own an ordered-style push consumer on `$KV.b.>` (what `kv.watch_all()`
//! creates: ack none, flow control, heartbeats, memory state); a writer puts
//! one key at a time and waits until every watcher has it before the next
//! put. Each sample is put-sent -> watcher-received, from a timestamp in the
//! payload.

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use super::jetstream::{check_puback, kv_setup, JsConn, ACK_INBOX, ACK_SID, KV_STREAM};
use super::latency::percentile;
use super::{Config, Limit};
use crate::proto::{self, Conn, Frame, PONG};

/// Puts done before samples count (consumer and cache warm-up).
const WARMUP: u64 = 200;
/// Distinct keys the writer cycles through.
const KEYS: u64 = 100;
/// How long a put may take to reach every watcher.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries seen so far by all watchers, with a wake-up for the writer.
struct Progress {
    delivered: Mutex<u64>,
    cv: Condvar,
    abort: AtomicBool,
}

/// [p50, p99, p99.9] put -> watcher latency in microseconds.
pub fn kv_watch(addr: SocketAddr, size: usize, watchers: usize, cfg: &Config) -> Result<Vec<f64>> {
    if size < 32 {
        bail!("kv-watch needs at least 32 payload bytes for its timestamp");
    }
    let mut js = kv_setup(addr)?;
    let mut conns = Vec::with_capacity(watchers);
    for i in 0..watchers {
        conns.push(watch(&mut js, addr, i).with_context(|| format!("watcher {i}"))?);
    }
    let progress = Progress {
        delivered: Mutex::new(0),
        cv: Condvar::new(),
        abort: AtomicBool::new(false),
    };
    let stop = AtomicBool::new(false);
    let epoch = Instant::now();
    let (written, samples) = thread::scope(|s| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|c| s.spawn(|| receive(c, epoch, &progress, &stop)))
            .collect();
        let written = write(&mut js, size, watchers as u64, epoch, &progress, cfg);
        if written.is_err() {
            progress.abort.store(true, Ordering::Relaxed);
        }
        stop.store(true, Ordering::Relaxed);
        let samples: Vec<Result<Vec<(u64, u64)>>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("watcher thread panicked")))
            })
            .collect();
        (written, samples)
    });
    let written = written?;
    let mut lat = Vec::new();
    for (i, r) in samples.into_iter().enumerate() {
        let got = r.with_context(|| format!("watcher {i}"))?;
        if got.len() as u64 != written {
            bail!("watcher {i} saw {} of {written} puts", got.len());
        }
        lat.extend(
            got.into_iter()
                .filter(|&(n, _)| n >= WARMUP)
                .map(|(_, l)| l),
        );
    }
    if lat.is_empty() {
        bail!("no put measured past the {WARMUP} warm-up puts");
    }
    lat.sort_unstable();
    Ok([0.50, 0.99, 0.999]
        .iter()
        .map(|&q| percentile(&lat, q) as f64 / 1000.0)
        .collect())
}

/// A watcher connection: its deliver subject subscribed, then the consumer.
fn watch(js: &mut JsConn, addr: SocketAddr, i: usize) -> Result<Conn> {
    let inbox = format!("bench.watch.{i}");
    let mut c = Conn::connect(addr)?;
    c.subscribe(&inbox, None, 1)?;
    c.round_trip(Duration::from_secs(10))?;
    js.request(
        &format!("$JS.API.CONSUMER.CREATE.{KV_STREAM}"),
        &json!({
            "stream_name": KV_STREAM,
            "config": {
                "deliver_subject": inbox,
                "deliver_policy": "last_per_subject",
                "filter_subject": "$KV.b.>",
                "ack_policy": "none",
                "max_deliver": 1,
                "replay_policy": "instant",
                "flow_control": true,
                "idle_heartbeat": 5_000_000_000u64,
                "mem_storage": true,
                "num_replicas": 1,
                "inactive_threshold": 300_000_000_000u64,
            }
        }),
    )
    .context("create the watch consumer")?;
    c.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .context("set read timeout")?;
    Ok(c)
}

/// The writer: one put at a time, each acked and seen by every watcher
/// before the next. Returns the number of puts.
fn write(
    js: &mut JsConn,
    size: usize,
    watchers: u64,
    epoch: Instant,
    progress: &Progress,
    cfg: &Config,
) -> Result<u64> {
    let (max, until) = match cfg.limit {
        Limit::Msgs(_) => (WARMUP + cfg.requests, None),
        Limit::Time(d) => (u64::MAX, Some(Instant::now() + d)),
    };
    let mut n = 0u64;
    while n < max && until.is_none_or(|t| n < WARMUP || Instant::now() < t) {
        let stamp = epoch.elapsed().as_nanos() as u64;
        let mut value = format!("{stamp:020} {n:010} ").into_bytes();
        value.resize(size, b'v');
        let key = format!("$KV.b.k{:03}", n % KEYS);
        let c = &mut js.conn;
        c.sock
            .write_all(&proto::pub_frame(&key, Some(ACK_INBOX), &value))
            .context("put")?;
        wait_puback(c, n == 0)?;
        n += 1;
        let goal = n * watchers;
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let mut got = progress
            .delivered
            .lock()
            .map_err(|_| anyhow!("progress lock poisoned"))?;
        while *got < goal {
            if progress.abort.load(Ordering::Relaxed) {
                bail!("a watcher failed");
            }
            let now = Instant::now();
            if now > deadline {
                bail!(
                    "put {n} reached {} of {goal} deliveries within {DELIVERY_TIMEOUT:?}",
                    *got
                );
            }
            got = progress
                .cv
                .wait_timeout(got, (deadline - now).min(Duration::from_millis(100)))
                .map_err(|_| anyhow!("progress lock poisoned"))?
                .0;
        }
    }
    Ok(n)
}

fn wait_puback(c: &mut Conn, first: bool) -> Result<()> {
    loop {
        while let Some(f) = c.scan.next_frame()? {
            match f {
                Frame::Msg { sid, payload, .. } | Frame::HMsg { sid, payload, .. }
                    if sid == ACK_SID =>
                {
                    return check_puback(payload, first);
                }
                Frame::Ping => c.sock.write_all(PONG).context("send PONG")?,
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
        c.fill().context("waiting for the PubAck")?;
    }
}

/// A watcher thread: answers flow control, skips heartbeats, and records
/// (put index, latency ns) for every KV message until `stop`.
fn receive(
    mut c: Conn,
    epoch: Instant,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Vec<(u64, u64)>> {
    let r = receive_inner(&mut c, epoch, progress, stop);
    if r.is_err() {
        progress.abort.store(true, Ordering::Relaxed);
        progress.cv.notify_all();
    }
    r
}

fn receive_inner(
    c: &mut Conn,
    epoch: Instant,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Vec<(u64, u64)>> {
    let mut samples = Vec::new();
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) && !progress.abort.load(Ordering::Relaxed) {
        match c.scan.read_from(&mut c.sock) {
            Ok(0) => bail!("server closed the watcher connection"),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e).context("watcher read"),
        }
        let now = epoch.elapsed().as_nanos() as u64;
        let mut got = 0u64;
        while let Some(f) = c.scan.next_frame()? {
            match f {
                // Status 100 with a reply: flow control, answered empty.
                Frame::HMsg {
                    headers,
                    reply: Some(r),
                    ..
                } if headers.starts_with(b"NATS/1.0 ") => {
                    out.extend_from_slice(&proto::pub_frame(
                        &String::from_utf8_lossy(r),
                        None,
                        b"",
                    ));
                }
                // Status without a reply: idle heartbeat.
                Frame::HMsg { headers, .. } if headers.starts_with(b"NATS/1.0 ") => {}
                Frame::Msg { payload, .. } | Frame::HMsg { payload, .. } => {
                    let (stamp, n) = parse_stamp(payload)?;
                    samples.push((n, now.saturating_sub(stamp)));
                    got += 1;
                }
                Frame::Ping => out.extend_from_slice(PONG),
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
        if !out.is_empty() {
            c.sock.write_all(&out).context("watcher reply")?;
            out.clear();
        }
        if got > 0 {
            let mut d = progress
                .delivered
                .lock()
                .map_err(|_| anyhow!("progress lock poisoned"))?;
            *d += got;
            progress.cv.notify_all();
        }
    }
    Ok(samples)
}

/// (timestamp ns, put index) from the start of a value.
fn parse_stamp(payload: &[u8]) -> Result<(u64, u64)> {
    let text = std::str::from_utf8(payload.get(..31).unwrap_or(payload)).unwrap_or("");
    let mut it = text.split(' ');
    match (
        it.next().and_then(|s| s.parse().ok()),
        it.next().and_then(|s| s.parse().ok()),
    ) {
        (Some(t), Some(n)) => Ok((t, n)),
        _ => bail!(
            "watched value without the writer's timestamp: {:?}",
            String::from_utf8_lossy(&payload[..payload.len().min(40)])
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamp_round_trip() {
        let mut v = format!("{:020} {:010} ", 123456789u64, 42u64).into_bytes();
        v.resize(128, b'v');
        assert_eq!(super::parse_stamp(&v).expect("parse"), (123456789, 42));
        assert!(super::parse_stamp(b"garbage").is_err());
    }
}
