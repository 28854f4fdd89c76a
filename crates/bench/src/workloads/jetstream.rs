//! workloads/jetstream.rs — JetStream load generators over raw TCP: acked
//! publishing with a window of outstanding PubAcks (1 = sync), pull fetches
//! with or without explicit acks, direct gets with requests in flight, a
//! KV-shaped stream (`KV_b`, put = acked publish, get = direct get by
//! subject), and the restart time of a file stream.
//!
//! Replies are counted, not decoded: the first PubAck must parse as JSON with
//! a `seq` field, and every PubAck is checked for an `"error"` key, so a
//! server that rejects messages shows as FAILED rather than fast.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::Limit;
use crate::proto::{self, Conn, Frame, PONG};
use crate::server::Server;

/// Stream used by all workloads except the KV ones.
const STREAM: &str = "BENCH";
const SUBJECT: &str = "bench.js";
/// Reply subject for JS API requests (sid 99).
const API_INBOX: &str = "bench.js.api";
const API_SID: &[u8] = b"99";
/// Reply subject for PubAcks (sid 1).
pub(super) const ACK_INBOX: &str = "bench.js.ack";
pub(super) const ACK_SID: &[u8] = b"1";
/// Reply subject for fetched messages (sid 2).
const FETCH_INBOX: &str = "bench.js.fetch";
const FETCH_SID: &[u8] = b"2";
/// Reply subject for direct-get responses (sid 3).
const GET_INBOX: &str = "bench.js.get";
const GET_SID: &[u8] = b"3";
/// PubAcks outstanding while pre-filling a stream.
const PREFILL_WINDOW: usize = 256;
/// Keys in the KV bucket.
const KV_KEYS: usize = 10_000;
pub(super) const KV_STREAM: &str = "KV_b";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    File,
    Memory,
}

impl Storage {
    fn json(self) -> &'static str {
        match self {
            Storage::File => "file",
            Storage::Memory => "memory",
        }
    }
}

/// A connection with the API reply inbox subscribed (and the PubAck inbox,
/// so one connection can both manage streams and publish).
pub(super) struct JsConn {
    pub(super) conn: Conn,
}

impl JsConn {
    fn connect(addr: SocketAddr) -> Result<Self> {
        let mut conn = Conn::connect(addr)?;
        conn.subscribe(API_INBOX, None, 99)?;
        conn.subscribe(ACK_INBOX, None, 1)?;
        conn.round_trip(Duration::from_secs(10))?;
        Ok(Self { conn })
    }

    /// One JS API request; fails on an `error` in the answer.
    pub(super) fn request(&mut self, subject: &str, body: &Value) -> Result<Value> {
        let body = serde_json::to_vec(body)?;
        let c = &mut self.conn;
        c.sock
            .write_all(&proto::pub_frame(subject, Some(API_INBOX), &body))
            .context("send API request")?;
        loop {
            while let Some(f) = c.scan.next_frame()? {
                match f {
                    Frame::Msg { sid, payload, .. } | Frame::HMsg { sid, payload, .. }
                        if sid == API_SID =>
                    {
                        let v: Value = serde_json::from_slice(payload).with_context(|| {
                            format!(
                                "{subject}: answer is not JSON: {:?}",
                                String::from_utf8_lossy(&payload[..payload.len().min(200)])
                            )
                        })?;
                        if let Some(e) = v.get("error") {
                            bail!("{subject}: {e}");
                        }
                        return Ok(v);
                    }
                    Frame::Ping => c.sock.write_all(PONG).context("send PONG")?,
                    Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                    _ => {}
                }
            }
            c.fill()
                .with_context(|| format!("waiting for the answer to {subject}"))?;
        }
    }

    fn create_stream(&mut self, cfg: Value) -> Result<()> {
        let name = cfg["name"].as_str().context("stream name")?.to_string();
        self.request(&format!("$JS.API.STREAM.CREATE.{name}"), &cfg)
            .context("create stream")?;
        Ok(())
    }

    fn create_consumer(&mut self, stream: &str, name: &str, ack: bool) -> Result<()> {
        let body = json!({
            "stream_name": stream,
            "config": {
                "durable_name": name,
                "deliver_policy": "all",
                "ack_policy": if ack { "explicit" } else { "none" },
            }
        });
        self.request(&format!("$JS.API.CONSUMER.CREATE.{stream}.{name}"), &body)
            .context("create consumer")?;
        Ok(())
    }

    /// Publishes `n` messages of `size` bytes to `subject`, 256 acks in flight.
    fn prefill(&mut self, subject: &str, n: u64, size: usize) -> Result<()> {
        let frames = [proto::pub_frame(
            subject,
            Some(ACK_INBOX),
            &proto::payload(size),
        )];
        let (acked, _) = publish_acked(&mut self.conn, &frames, PREFILL_WINDOW, Limit::Msgs(n))
            .context("pre-fill the stream")?;
        if acked != n {
            bail!("pre-fill: {acked} of {n} messages acked");
        }
        Ok(())
    }
}

fn stream_config(storage: Storage) -> Value {
    json!({
        "name": STREAM,
        "subjects": [SUBJECT],
        "storage": storage.json(),
        "retention": "limits",
        "num_replicas": 1,
        "allow_direct": true,
    })
}

/// Publishes `frames` (cycled; each with reply `ACK_INBOX`) keeping at most
/// `window` PubAcks outstanding, until `limit`. Returns (acked, elapsed from
/// the first write to the last PubAck).
fn publish_acked(
    c: &mut Conn,
    frames: &[Vec<u8>],
    window: usize,
    limit: Limit,
) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let can_send = |sent: u64| match limit {
        Limit::Msgs(n) => sent < n,
        Limit::Time(d) => start.elapsed() < d,
    };
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut next = 0usize;
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        while sent - acked < window as u64 && can_send(sent) {
            out.extend_from_slice(&frames[next]);
            next = (next + 1) % frames.len();
            sent += 1;
        }
        if !out.is_empty() {
            c.sock.write_all(&out).context("publish")?;
            out.clear();
        }
        if acked == sent {
            break;
        }
        c.fill()
            .with_context(|| format!("waiting for PubAcks ({acked} of {sent} so far)"))?;
        while let Some(f) = c.scan.next_frame()? {
            match f {
                Frame::Msg { sid, payload, .. } | Frame::HMsg { sid, payload, .. }
                    if sid == ACK_SID =>
                {
                    check_puback(payload, acked == 0)?;
                    acked += 1;
                }
                Frame::Ping => out.extend_from_slice(PONG),
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
    }
    Ok((acked, start.elapsed()))
}

/// Every PubAck must lack an `"error"` key; the first must parse with `seq`.
pub(super) fn check_puback(payload: &[u8], first: bool) -> Result<()> {
    let text = || String::from_utf8_lossy(&payload[..payload.len().min(300)]).into_owned();
    if payload.is_empty() {
        bail!("empty PubAck (no JetStream responder?)");
    }
    if memchr::memmem::find(payload, b"\"error\"").is_some() {
        bail!("PubAck with error: {}", text());
    }
    if first {
        let v: Value = serde_json::from_slice(payload)
            .with_context(|| format!("PubAck is not JSON: {}", text()))?;
        if v.get("seq").and_then(Value::as_u64).is_none() {
            bail!("PubAck without seq: {}", text());
        }
    }
    Ok(())
}

/// [msgs/s, MB/s].
fn rates(n: u64, size: usize, d: Duration) -> Result<Vec<f64>> {
    let secs = d.as_secs_f64();
    if n == 0 || secs <= 0.0 {
        bail!("nothing measured ({n} messages in {secs} s)");
    }
    let r = n as f64 / secs;
    Ok(vec![r, r * size as f64 / 1e6])
}

/// Acked publishing to a fresh stream: `window` 1 is a sync publisher.
pub fn publish(
    addr: SocketAddr,
    storage: Storage,
    size: usize,
    window: usize,
    limit: Limit,
) -> Result<Vec<f64>> {
    let mut js = JsConn::connect(addr)?;
    js.create_stream(stream_config(storage))?;
    let frames = [proto::pub_frame(
        SUBJECT,
        Some(ACK_INBOX),
        &proto::payload(size),
    )];
    let (acked, d) = publish_acked(&mut js.conn, &frames, window, limit)?;
    rates(acked, size, d)
}

/// Publishing into a full stream: file stream `BENCH` with `max_bytes` of `max_mib` MiB and
/// discard old, pre-filled (untimed) with enough messages to reach the cap, then timed
/// publishing as `publish` does, so every timed message makes the server drop the oldest.
pub fn publish_full(
    addr: SocketAddr,
    size: usize,
    window: usize,
    max_mib: u64,
    limit: Limit,
) -> Result<Vec<f64>> {
    let mut js = JsConn::connect(addr)?;
    let mut cfg = stream_config(Storage::File);
    cfg["max_bytes"] = json!(max_mib * 1024 * 1024);
    cfg["discard"] = json!("old");
    js.create_stream(cfg)?;
    // Stored size is a little more than the payload, so this many overflows the cap.
    js.prefill(SUBJECT, max_mib * 1024 * 1024 / size as u64 + 1, size)?;
    let frames = [proto::pub_frame(
        SUBJECT,
        Some(ACK_INBOX),
        &proto::payload(size),
    )];
    let (acked, d) = publish_acked(&mut js.conn, &frames, window, limit)?;
    rates(acked, size, d)
}

/// Pull consumer over a stream pre-filled with `n` messages: fetch requests
/// of `batch` (at most two outstanding), acking every message when `ack`.
/// With acks, the clock stops once the consumer reports all `n` acked.
pub fn fetch(addr: SocketAddr, n: u64, size: usize, batch: u64, ack: bool) -> Result<Vec<f64>> {
    let mut js = JsConn::connect(addr)?;
    js.create_stream(stream_config(Storage::File))?;
    js.prefill(SUBJECT, n, size)?;
    js.create_consumer(STREAM, "C", ack)?;
    let c = &mut js.conn;
    c.subscribe(FETCH_INBOX, None, 2)?;
    c.round_trip(Duration::from_secs(10))?;

    let next_subject = format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.C");
    let request = |k: u64| {
        let body = format!("{{\"batch\":{k},\"expires\":30000000000}}");
        proto::pub_frame(&next_subject, Some(FETCH_INBOX), body.as_bytes())
    };
    let start = Instant::now();
    let (mut requested, mut received) = (0u64, 0u64);
    let mut out = Vec::with_capacity(64 * 1024);
    while received < n {
        // Keep the current batch plus one more requested.
        while requested < n && requested - received <= batch {
            let k = batch.min(n - requested);
            out.extend_from_slice(&request(k));
            requested += k;
        }
        if !out.is_empty() {
            c.sock.write_all(&out).context("send fetch/acks")?;
            out.clear();
        }
        c.fill()
            .with_context(|| format!("fetching ({received} of {n} messages so far)"))?;
        while let Some(f) = c.scan.next_frame()? {
            match f {
                Frame::Msg {
                    sid,
                    reply: Some(r),
                    payload,
                    ..
                }
                | Frame::HMsg {
                    sid,
                    reply: Some(r),
                    payload,
                    ..
                } if sid == FETCH_SID => {
                    if received == 0 && payload.len() != size {
                        bail!(
                            "fetched message has {} bytes, expected {size}",
                            payload.len()
                        );
                    }
                    received += 1;
                    if ack {
                        out.extend_from_slice(b"PUB ");
                        out.extend_from_slice(r);
                        out.extend_from_slice(b" 0\r\n\r\n");
                    }
                }
                Frame::HMsg {
                    sid,
                    reply: None,
                    headers,
                    ..
                } if sid == FETCH_SID => {
                    let line = headers.split(|&b| b == b'\r').next().unwrap_or(headers);
                    bail!(
                        "status instead of messages after {received} of {n}: {}",
                        String::from_utf8_lossy(line)
                    );
                }
                Frame::Ping => out.extend_from_slice(PONG),
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
    }
    if !out.is_empty() {
        c.sock.write_all(&out).context("send acks")?;
        out.clear();
    }
    if ack {
        wait_all_acked(&mut js, n, Duration::from_secs(30))?;
    }
    rates(received, size, start.elapsed())
}

/// Polls consumer info until the ack floor reaches `n` and nothing is pending.
fn wait_all_acked(js: &mut JsConn, n: u64, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let info = js.request(&format!("$JS.API.CONSUMER.INFO.{STREAM}.C"), &json!({}))?;
        let floor = info["ack_floor"]["stream_seq"].as_u64().unwrap_or(0);
        let pending = info["num_ack_pending"].as_u64().unwrap_or(u64::MAX);
        if floor >= n && pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("acks not applied within {timeout:?}: ack floor {floor}, {pending} pending");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Small xorshift PRNG (deterministic, no dependency).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Keeps `inflight` direct-get requests outstanding (each appended to the
/// buffer by `req`) until `limit`; every answer must be a message (no status
/// header) with `size` payload bytes. Returns [ops/s].
fn direct_gets(
    c: &mut Conn,
    inflight: usize,
    size: usize,
    limit: Limit,
    mut req: impl FnMut(&mut Vec<u8>),
) -> Result<Vec<f64>> {
    c.subscribe(GET_INBOX, None, 3)?;
    c.round_trip(Duration::from_secs(10))?;
    let start = Instant::now();
    let can_send = |sent: u64| match limit {
        Limit::Msgs(n) => sent < n,
        Limit::Time(d) => start.elapsed() < d,
    };
    let (mut sent, mut got) = (0u64, 0u64);
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        while sent - got < inflight as u64 && can_send(sent) {
            req(&mut out);
            sent += 1;
        }
        if !out.is_empty() {
            c.sock.write_all(&out).context("send direct gets")?;
            out.clear();
        }
        if got == sent {
            break;
        }
        c.fill()
            .with_context(|| format!("waiting for direct-get answers ({got} of {sent})"))?;
        while let Some(f) = c.scan.next_frame()? {
            match f {
                Frame::HMsg {
                    sid,
                    headers,
                    payload,
                    ..
                } if sid == GET_SID => {
                    let line = headers.split(|&b| b == b'\r').next().unwrap_or(headers);
                    if line.len() > b"NATS/1.0".len() {
                        bail!("direct get answered {}", String::from_utf8_lossy(line));
                    }
                    if got == 0
                        && (payload.len() != size
                            || memchr::memmem::find(headers, b"Nats-Sequence").is_none())
                    {
                        bail!(
                            "direct get answer without Nats-Sequence or with {} bytes (expected {size})",
                            payload.len()
                        );
                    }
                    got += 1;
                }
                Frame::Msg { sid, payload, .. } if sid == GET_SID => {
                    bail!(
                        "direct get answered without headers: {:?}",
                        String::from_utf8_lossy(&payload[..payload.len().min(200)])
                    );
                }
                Frame::Ping => out.extend_from_slice(PONG),
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if got == 0 || secs <= 0.0 {
        bail!("no direct gets measured");
    }
    Ok(vec![got as f64 / secs])
}

/// `$JS.API.DIRECT.GET.BENCH` with `{"seq":N}` for random N over a stream
/// pre-filled with `n` messages, `inflight` requests outstanding.
pub fn direct_get(
    addr: SocketAddr,
    n: u64,
    size: usize,
    inflight: usize,
    limit: Limit,
) -> Result<Vec<f64>> {
    let mut js = JsConn::connect(addr)?;
    js.create_stream(stream_config(Storage::File))?;
    js.prefill(SUBJECT, n, size)?;
    let subject = format!("$JS.API.DIRECT.GET.{STREAM}");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    direct_gets(&mut js.conn, inflight, size, limit, |out| {
        let body = format!("{{\"seq\":{}}}", 1 + rng.below(n));
        out.extend_from_slice(&proto::pub_frame(
            &subject,
            Some(GET_INBOX),
            body.as_bytes(),
        ));
    })
}

fn kv_key(i: usize) -> String {
    format!("$KV.b.k{i:05}")
}

/// The stream `nats kv add b` would create (file storage, history 1).
pub(super) fn kv_setup(addr: SocketAddr) -> Result<JsConn> {
    let mut js = JsConn::connect(addr)?;
    js.create_stream(json!({
        "name": KV_STREAM,
        "subjects": ["$KV.b.>"],
        "storage": "file",
        "retention": "limits",
        "num_replicas": 1,
        "max_msgs_per_subject": 1,
        "max_msgs": -1,
        "max_bytes": -1,
        "discard": "new",
        "duplicate_window": 120_000_000_000u64,
        "allow_direct": true,
        "allow_rollup_hdrs": true,
        "deny_delete": true,
    }))?;
    Ok(js)
}

fn kv_put_frames(size: usize) -> Vec<Vec<u8>> {
    let value = proto::payload(size);
    (0..KV_KEYS)
        .map(|i| proto::pub_frame(&kv_key(i), Some(ACK_INBOX), &value))
        .collect()
}

/// KV put: acked publish to `$KV.b.<key>` over 10k keys, `window` in flight.
pub fn kv_put(addr: SocketAddr, size: usize, window: usize, limit: Limit) -> Result<Vec<f64>> {
    let mut js = kv_setup(addr)?;
    let (acked, d) = publish_acked(&mut js.conn, &kv_put_frames(size), window, limit)?;
    Ok(rates(acked, size, d)?[..1].to_vec())
}

/// KV get: direct get of the last message of a random key
/// (`$JS.API.DIRECT.GET.KV_b.$KV.b.<key>`), `inflight` outstanding.
pub fn kv_get(addr: SocketAddr, size: usize, inflight: usize, limit: Limit) -> Result<Vec<f64>> {
    let mut js = kv_setup(addr)?;
    let (acked, _) = publish_acked(
        &mut js.conn,
        &kv_put_frames(size),
        PREFILL_WINDOW,
        Limit::Msgs(KV_KEYS as u64),
    )?;
    if acked != KV_KEYS as u64 {
        bail!("KV pre-fill: {acked} of {KV_KEYS} puts acked");
    }
    let frames: Vec<Vec<u8>> = (0..KV_KEYS)
        .map(|i| {
            let subject = format!("$JS.API.DIRECT.GET.{KV_STREAM}.{}", kv_key(i));
            proto::pub_frame(&subject, Some(GET_INBOX), b"")
        })
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    direct_gets(&mut js.conn, inflight, size, limit, |out| {
        out.extend_from_slice(&frames[rng.below(KV_KEYS as u64) as usize]);
    })
}

/// Restart of a file stream holding `n` messages: SIGTERM, wait for exit,
/// spawn again on the same store dir, time until "Server is ready"; then
/// check the stream still holds `n` messages. [restart ms, stop ms].
pub fn restart(server: &mut Server, n: u64, size: usize) -> Result<Vec<f64>> {
    {
        let mut js = JsConn::connect(server.addr)?;
        js.create_stream(stream_config(Storage::File))?;
        js.prefill(SUBJECT, n, size)?;
    }
    let (stopped, ready) = server.restart(Duration::from_secs(120))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut js = loop {
        match JsConn::connect(server.addr) {
            Ok(js) => break js,
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("connect after restart"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let info = js.request(&format!("$JS.API.STREAM.INFO.{STREAM}"), &json!({}))?;
    let msgs = info["state"]["messages"].as_u64().unwrap_or(0);
    if msgs != n {
        bail!("after restart the stream holds {msgs} messages, expected {n}");
    }
    let rss = server.rss_bytes()? as f64 / (1024.0 * 1024.0);
    Ok(vec![
        ready.as_secs_f64() * 1e3,
        stopped.as_secs_f64() * 1e3,
        rss,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puback_checks() {
        let ok = br#"{"stream":"BENCH","seq":1}"#;
        assert!(check_puback(ok, true).is_ok());
        let err = br#"{"error":{"code":503,"description":"no space"}}"#;
        assert!(check_puback(err, false).is_err());
        assert!(check_puback(br#"{"stream":"BENCH"}"#, true).is_err());
        assert!(check_puback(b"", false).is_err());
    }

    #[test]
    fn rng_in_range() {
        let mut r = Rng(1);
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}
