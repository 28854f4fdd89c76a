//! `bench`: throughput and latency measurements in the modes of `nats bench`
//! (core pub/sub, request/reply, JetStream publish and consume, KV put/get).
//! Each client runs on its own connection; results are msgs/s, MB/s and, for
//! the request-shaped modes, latency percentiles.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt;

use crate::conn::ConnOpts;
use crate::output::{human_duration, ibytes, num, parse_bytes};
use crate::progress::Progress;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Publish Core NATS messages
    Pub(Common),
    /// Subscribe to Core NATS messages
    Sub(Common),
    /// Core NATS request/reply
    #[command(subcommand)]
    Service(ServiceCmd),
    /// JetStream publish and consume
    #[command(subcommand)]
    Js(JsCmd),
    /// Key-Value put and get
    #[command(subcommand)]
    Kv(KvCmd),
}

#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Send requests and measure their latency
    Request(Common),
    /// Answer requests (runs until the expected number is served)
    Serve(Common),
}

#[derive(Subcommand, Debug)]
pub enum JsCmd {
    /// Publish to a stream and wait for each acknowledgement (or a batch)
    Pub(JsArgs),
    /// Consume a stream through a pull consumer
    Consume(JsArgs),
}

#[derive(Subcommand, Debug)]
pub enum KvCmd {
    /// Put values into a bucket
    Put(KvArgs),
    /// Get values from a bucket
    Get(KvArgs),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Subject to use
    #[arg(default_value = "benchsubject")]
    pub subject: String,
    /// Number of messages to send or receive in total
    #[arg(long, default_value_t = 100_000)]
    pub msgs: u64,
    /// Size of the messages (e.g. 128, 1KB)
    #[arg(long, default_value = "128", value_parser = parse_size)]
    pub size: u64,
    /// Number of concurrent clients
    #[arg(long, default_value_t = 1)]
    pub clients: u64,
    /// Disables the progress bar
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug, Clone)]
pub struct JsArgs {
    #[command(flatten)]
    pub common: Common,
    /// The stream to use
    #[arg(long, default_value = "benchstream")]
    pub stream: String,
    /// Create the stream (over the subject) if it does not exist
    #[arg(long)]
    pub create: bool,
    /// Purge the stream before the run
    #[arg(long)]
    pub purge: bool,
    /// Storage of a created stream
    #[arg(long, value_enum, default_value = "file")]
    pub storage: StorageKind,
    /// Publish acknowledgements to await at once: 1 is fully synchronous
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
}

#[derive(Args, Debug, Clone)]
pub struct KvArgs {
    #[command(flatten)]
    pub common: Common,
    /// The bucket to use (created when missing)
    #[arg(long, default_value = "benchbucket")]
    pub bucket: String,
    /// Storage of a created bucket
    #[arg(long, value_enum, default_value = "file")]
    pub storage: StorageKind,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum StorageKind {
    File,
    Memory,
}

impl StorageKind {
    fn js(self) -> async_nats::jetstream::stream::StorageType {
        match self {
            StorageKind::File => async_nats::jetstream::stream::StorageType::File,
            StorageKind::Memory => async_nats::jetstream::stream::StorageType::Memory,
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let n = parse_bytes(s)?;
    u64::try_from(n).map_err(|_| format!("invalid size {s:?}"))
}

/// What one client achieved.
struct Sample {
    msgs: u64,
    bytes: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Split `total` messages among `clients` as evenly as possible.
fn share(total: u64, clients: u64, i: u64) -> u64 {
    total / clients + u64::from(i < total % clients)
}

pub async fn run(conn: &ConnOpts, cmd: BenchCmd) -> Result<()> {
    let (title, common) = match &cmd {
        BenchCmd::Pub(c) => ("Pub", c.clone()),
        BenchCmd::Sub(c) => ("Sub", c.clone()),
        BenchCmd::Service(ServiceCmd::Request(c)) => ("Request", c.clone()),
        BenchCmd::Service(ServiceCmd::Serve(c)) => ("Serve", c.clone()),
        BenchCmd::Js(JsCmd::Pub(a)) => ("JetStream publish", a.common.clone()),
        BenchCmd::Js(JsCmd::Consume(a)) => ("JetStream consume", a.common.clone()),
        BenchCmd::Kv(KvCmd::Put(a)) => ("KV put", a.common.clone()),
        BenchCmd::Kv(KvCmd::Get(a)) => ("KV get", a.common.clone()),
    };
    if common.clients == 0 {
        return Err(anyhow!("--clients must be at least 1"));
    }
    prepare(conn, &cmd).await?;
    eprintln!(
        "Starting {title} benchmark [subject={}, msgs={}, msgsize={}, clients={}]",
        common.subject,
        num(common.msgs),
        ibytes(common.size),
        common.clients
    );
    let bar = std::sync::Arc::new(std::sync::Mutex::new(Progress::new(
        title,
        common.msgs,
        false,
        !common.no_progress,
    )));
    let mut tasks = Vec::new();
    for i in 0..common.clients {
        let n = share(common.msgs, common.clients, i);
        let conn = conn.clone();
        let cmd = clone_cmd(&cmd);
        let bar = bar.clone();
        tasks.push(tokio::spawn(
            async move { client(conn, cmd, n, i, bar).await },
        ));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.push(
            t.await
                .map_err(|e| anyhow!("benchmark client failed: {e}"))??,
        );
    }
    if let Ok(mut b) = bar.lock() {
        b.finish();
    }
    report(title, &samples);
    Ok(())
}

fn clone_cmd(c: &BenchCmd) -> BenchCmd {
    match c {
        BenchCmd::Pub(x) => BenchCmd::Pub(x.clone()),
        BenchCmd::Sub(x) => BenchCmd::Sub(x.clone()),
        BenchCmd::Service(ServiceCmd::Request(x)) => {
            BenchCmd::Service(ServiceCmd::Request(x.clone()))
        }
        BenchCmd::Service(ServiceCmd::Serve(x)) => BenchCmd::Service(ServiceCmd::Serve(x.clone())),
        BenchCmd::Js(JsCmd::Pub(x)) => BenchCmd::Js(JsCmd::Pub(x.clone())),
        BenchCmd::Js(JsCmd::Consume(x)) => BenchCmd::Js(JsCmd::Consume(x.clone())),
        BenchCmd::Kv(KvCmd::Put(x)) => BenchCmd::Kv(KvCmd::Put(x.clone())),
        BenchCmd::Kv(KvCmd::Get(x)) => BenchCmd::Kv(KvCmd::Get(x.clone())),
    }
}

/// Streams and buckets the run needs, made once before the clients start.
async fn prepare(conn: &ConnOpts, cmd: &BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Js(JsCmd::Pub(a)) | BenchCmd::Js(JsCmd::Consume(a)) => {
            let js = conn.jetstream().await?;
            if a.create {
                js.ctx
                    .get_or_create_stream(async_nats::jetstream::stream::Config {
                        name: a.stream.clone(),
                        subjects: vec![a.common.subject.clone()],
                        storage: a.storage.js(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| anyhow!("could not create stream {}: {e}", a.stream))?;
            }
            if a.purge {
                js.api(&format!("STREAM.PURGE.{}", a.stream), None).await?;
            }
        }
        BenchCmd::Kv(KvCmd::Put(a)) | BenchCmd::Kv(KvCmd::Get(a)) => {
            let js = conn.jetstream().await?;
            if js.ctx.get_key_value(&a.bucket).await.is_err() {
                js.ctx
                    .create_key_value(async_nats::jetstream::kv::Config {
                        bucket: a.bucket.clone(),
                        storage: a.storage.js(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| anyhow!("could not create bucket {}: {e}", a.bucket))?;
            }
        }
        _ => {}
    }
    Ok(())
}

type Bar = std::sync::Arc<std::sync::Mutex<Progress>>;

fn tick(bar: &Bar) {
    if let Ok(mut b) = bar.lock() {
        b.add(1);
    }
}

async fn client(conn: ConnOpts, cmd: BenchCmd, n: u64, id: u64, bar: Bar) -> Result<Sample> {
    let mut lat = Vec::new();
    let mut bytes = 0u64;
    let start;
    let is_put = matches!(cmd, BenchCmd::Kv(KvCmd::Put(_)));
    match cmd {
        BenchCmd::Pub(c) => {
            let nc = conn.connect().await?;
            let payload = Bytes::from(vec![b'x'; c.size as usize]);
            start = Instant::now();
            for _ in 0..n {
                nc.publish(c.subject.clone(), payload.clone()).await?;
                bytes += c.size;
                tick(&bar);
            }
            nc.flush().await?;
        }
        BenchCmd::Sub(c) => {
            let nc = conn.connect().await?;
            let mut sub = nc.subscribe(c.subject.clone()).await?;
            nc.flush().await?;
            // The clock starts at the first message, as publishers start later.
            let first = sub
                .next()
                .await
                .ok_or_else(|| anyhow!("subscription closed"))?;
            start = Instant::now();
            bytes += first.payload.len() as u64;
            tick(&bar);
            for _ in 1..n {
                let m = sub
                    .next()
                    .await
                    .ok_or_else(|| anyhow!("subscription closed"))?;
                bytes += m.payload.len() as u64;
                tick(&bar);
            }
        }
        BenchCmd::Service(ServiceCmd::Request(c)) => {
            let nc = conn.connect().await?;
            let payload = Bytes::from(vec![b'x'; c.size as usize]);
            start = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                nc.request(c.subject.clone(), payload.clone())
                    .await
                    .map_err(|e| anyhow!("request on {} failed: {e}", c.subject))?;
                lat.push(t.elapsed());
                bytes += c.size;
                tick(&bar);
            }
        }
        BenchCmd::Service(ServiceCmd::Serve(c)) => {
            let nc = conn.connect().await?;
            let mut sub = nc
                .queue_subscribe(c.subject.clone(), "bench-service".into())
                .await?;
            nc.flush().await?;
            let mut started = None;
            for _ in 0..n {
                let m = sub
                    .next()
                    .await
                    .ok_or_else(|| anyhow!("subscription closed"))?;
                started.get_or_insert_with(Instant::now);
                if let Some(r) = m.reply {
                    nc.publish(r, m.payload.clone()).await?;
                }
                bytes += m.payload.len() as u64;
                tick(&bar);
            }
            nc.flush().await?;
            start = started.unwrap_or_else(Instant::now);
        }
        BenchCmd::Js(JsCmd::Pub(a)) => {
            let js = conn.jetstream().await?;
            let payload = Bytes::from(vec![b'x'; a.common.size as usize]);
            let batch = a.batch.max(1) as usize;
            start = Instant::now();
            let mut sent = 0u64;
            while sent < n {
                let k = (n - sent).min(batch as u64);
                let t = Instant::now();
                let mut acks = Vec::with_capacity(k as usize);
                for _ in 0..k {
                    acks.push(
                        js.ctx
                            .publish(a.common.subject.clone(), payload.clone())
                            .await
                            .map_err(|e| anyhow!("publish failed: {e}"))?,
                    );
                }
                for ack in acks {
                    ack.await
                        .map_err(|e| anyhow!("publish not acknowledged: {e}"))?;
                    tick(&bar);
                }
                // A synchronous publish's latency is its acknowledgement.
                if batch == 1 {
                    lat.push(t.elapsed());
                }
                sent += k;
                bytes += k * a.common.size;
            }
        }
        BenchCmd::Js(JsCmd::Consume(a)) => {
            use async_nats::jetstream::consumer::pull;
            let js = conn.jetstream().await?;
            let stream = js
                .ctx
                .get_stream(&a.stream)
                .await
                .map_err(|e| anyhow!("could not find stream {}: {e}", a.stream))?;
            let consumer = stream
                .create_consumer(pull::Config {
                    name: Some(format!("bench-{}-{id}", nuid::next())),
                    ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                })
                .await
                .map_err(|e| anyhow!("could not create consumer: {e}"))?;
            let mut msgs = consumer
                .messages()
                .await
                .map_err(|e| anyhow!("could not consume: {e}"))?;
            start = Instant::now();
            for _ in 0..n {
                let m = msgs
                    .next()
                    .await
                    .ok_or_else(|| anyhow!("consumer closed"))?
                    .map_err(|e| anyhow!("consume failed: {e}"))?;
                bytes += m.payload.len() as u64;
                tick(&bar);
            }
        }
        BenchCmd::Kv(KvCmd::Put(a)) | BenchCmd::Kv(KvCmd::Get(a)) => {
            let js = conn.jetstream().await?;
            let kv = js
                .ctx
                .get_key_value(&a.bucket)
                .await
                .map_err(|e| anyhow!("could not find bucket {}: {e}", a.bucket))?;
            let payload = Bytes::from(vec![b'x'; a.common.size as usize]);
            start = Instant::now();
            for i in 0..n {
                let key = format!("{id}.{i}");
                let t = Instant::now();
                if is_put {
                    kv.put(&key, payload.clone())
                        .await
                        .map_err(|e| anyhow!("put failed: {e}"))?;
                    bytes += a.common.size;
                } else {
                    let v = kv.get(&key).await.map_err(|e| anyhow!("get failed: {e}"))?;
                    bytes += v.map_or(0, |v| v.len() as u64);
                }
                lat.push(t.elapsed());
                tick(&bar);
            }
        }
    }
    Ok(Sample {
        msgs: n,
        bytes,
        elapsed: start.elapsed(),
        latencies: lat,
    })
}

fn rate(msgs: u64, bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64().max(1e-9);
    let avg = if msgs > 0 {
        human_duration(Duration::from_secs_f64(secs / msgs as f64))
    } else {
        "0s".into()
    };
    format!(
        "{} msgs/sec ~ {}/sec ~ {avg}",
        num((msgs as f64 / secs) as u64),
        ibytes((bytes as f64 / secs) as u64)
    )
}

fn report(title: &str, samples: &[Sample]) {
    let msgs: u64 = samples.iter().map(|s| s.msgs).sum();
    let bytes: u64 = samples.iter().map(|s| s.bytes).sum();
    let longest = samples.iter().map(|s| s.elapsed).max().unwrap_or_default();
    println!("\n{title} stats: {}", rate(msgs, bytes, longest));
    if samples.len() > 1 {
        for (i, s) in samples.iter().enumerate() {
            println!(
                " [{}] {} ({} msgs)",
                i + 1,
                rate(s.msgs, s.bytes, s.elapsed),
                num(s.msgs)
            );
        }
    }
    let mut lat: Vec<Duration> = samples
        .iter()
        .flat_map(|s| s.latencies.iter().copied())
        .collect();
    if !lat.is_empty() {
        lat.sort();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        println!(
            " Latencies: min {} | p50 {} | p90 {} | p99 {} | max {}",
            human_duration(lat[0]),
            human_duration(p(0.5)),
            human_duration(p(0.9)),
            human_duration(p(0.99)),
            human_duration(lat[lat.len() - 1])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        for (total, clients) in [(10, 3), (1, 4), (100, 1), (7, 7)] {
            let sum: u64 = (0..clients).map(|i| share(total, clients, i)).sum();
            assert_eq!(sum, total);
        }
    }
}
