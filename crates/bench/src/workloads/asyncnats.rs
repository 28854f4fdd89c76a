//! workloads/asyncnats.rs — pub-sub and queue-group throughput through the
//! real client (async-nats on a 2-worker tokio runtime), so the client side
//! is what applications run rather than the raw-socket load generators: one
//! async-nats connection per subscriber, `subscribe` / `queue_subscribe`,
//! counting `Subscriber::next()`; one publisher connection calling
//! `publish(subject, Bytes)` in a loop and `flush()` at the end.
//!
//! async-nats drops messages (slow consumer) when a subscription's channel
//! (64k messages by default) is full, so the publisher stays at most `WINDOW`
//! messages ahead of what the subscribers have counted. Interest is probed
//! (subscribe to a probe subject on the same connection, publish to it from
//! the publisher's connection until it arrives) before the clock starts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;

use super::throughput::INTEREST_TIMEOUT;
use super::Limit;

const SUBJECT: &str = "bench.pubsub";
const QUEUE: &str = "bench.q";
/// Messages the publisher may be ahead of the subscribers' count.
const WINDOW: u64 = 32 * 1024;
/// How long subscribers may lag behind the publisher's end.
const GRACE: Duration = Duration::from_secs(30);
/// `target` before the publisher has finished.
const UNKNOWN: u64 = u64::MAX;

/// What one subscriber saw.
struct Received {
    msgs: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// Counters shared by the publisher and the subscriber tasks.
struct Shared {
    target: AtomicU64,
    total: AtomicU64,
    per_sub: Vec<AtomicU64>,
    abort: AtomicBool,
}

impl Shared {
    /// What the publisher's window is measured against: the group total for
    /// a queue group, else the slowest subscriber.
    fn progress(&self, queue: bool) -> u64 {
        if queue {
            self.total.load(Ordering::Acquire)
        } else {
            self.per_sub
                .iter()
                .map(|c| c.load(Ordering::Acquire))
                .min()
                .unwrap_or(0)
        }
    }
}

/// One async-nats publisher on `pub_addr`, one async-nats subscriber on each
/// of `sub_addrs` (one queue group when `queue`). Every subscriber must get
/// every message, or the group every message exactly once. Returns
/// [msgs/s, MB/s] (all deliveries after the first, over first to last
/// delivery) and each subscriber's count.
pub fn pub_sub_on(
    pub_addr: SocketAddr,
    sub_addrs: &[SocketAddr],
    size: usize,
    queue: bool,
    limit: Limit,
) -> Result<(Vec<f64>, Vec<u64>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run(pub_addr, sub_addrs, size, queue, limit))
}

async fn connect(addr: SocketAddr) -> Result<Client> {
    async_nats::ConnectOptions::new()
        .connect(format!("nats://{addr}"))
        .await
        .with_context(|| format!("async-nats connect to {addr}"))
}

async fn run(
    pub_addr: SocketAddr,
    sub_addrs: &[SocketAddr],
    size: usize,
    queue: bool,
    limit: Limit,
) -> Result<(Vec<f64>, Vec<u64>)> {
    let publisher = connect(pub_addr).await?;
    let mut clients = Vec::with_capacity(sub_addrs.len());
    let mut subs = Vec::with_capacity(sub_addrs.len());
    let deadline = Instant::now() + INTEREST_TIMEOUT;
    for &addr in sub_addrs {
        let c = connect(addr).await?;
        let s = if queue {
            c.queue_subscribe(SUBJECT, QUEUE.to_string()).await
        } else {
            c.subscribe(SUBJECT).await
        }
        .context("subscribe")?;
        await_interest(&c, &publisher, deadline)
            .await
            .with_context(|| format!("subscription on {addr} did not reach {pub_addr}"))?;
        clients.push(c);
        subs.push(s);
    }
    let shared = Arc::new(Shared {
        target: AtomicU64::new(UNKNOWN),
        total: AtomicU64::new(0),
        per_sub: (0..subs.len()).map(|_| AtomicU64::new(0)).collect(),
        abort: AtomicBool::new(false),
    });
    let tasks: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(i, sub)| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let r = count(sub, i, &shared, queue).await;
                if r.is_err() {
                    shared.abort.store(true, Ordering::Relaxed);
                }
                r
            })
        })
        .collect();

    let published = publish(&publisher, size, queue, limit, &shared).await;
    match &published {
        Ok(n) => shared.target.store(*n, Ordering::Release),
        Err(_) => shared.abort.store(true, Ordering::Relaxed),
    }
    let mut recv = Vec::with_capacity(tasks.len());
    let mut first_err = None;
    for t in tasks {
        match t.await.context("subscriber task")? {
            Ok(r) => recv.push(r),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let target = published.context("publisher")?;
    if let Some(e) = first_err {
        return Err(e.context("subscriber"));
    }
    drop(clients);

    let total: u64 = recv.iter().map(|r| r.msgs).sum();
    let expected = if queue {
        target
    } else {
        target * recv.len() as u64
    };
    if total != expected {
        bail!("subscribers received {total} messages, expected exactly {expected}");
    }
    let first = recv.iter().filter_map(|r| r.first).min();
    let last = recv.iter().filter_map(|r| r.last).max();
    let (Some(first), Some(last)) = (first, last) else {
        bail!("no messages received");
    };
    let secs = (last - first).as_secs_f64();
    // The first message arrived when the clock started.
    let msgs = total.saturating_sub(1);
    if secs <= 0.0 || msgs == 0 {
        bail!("nothing measured ({msgs} messages in {secs} s)");
    }
    let mps = msgs as f64 / secs;
    Ok((
        vec![mps, mps * size as f64 / 1e6],
        recv.iter().map(|r| r.msgs).collect(),
    ))
}

/// Publishes until `limit`, staying within `WINDOW` of the subscribers, then
/// flushes. Returns the number of messages published.
async fn publish(
    client: &Client,
    size: usize,
    queue: bool,
    limit: Limit,
    shared: &Shared,
) -> Result<u64> {
    let payload = Bytes::from(crate::proto::payload(size));
    let start = Instant::now();
    let mut sent: u64 = 0;
    loop {
        if shared.abort.load(Ordering::Relaxed) {
            bail!("publisher aborted after {sent} messages");
        }
        match limit {
            Limit::Msgs(n) if sent >= n => break,
            Limit::Time(d) if sent % 256 == 0 && start.elapsed() >= d => break,
            _ => {}
        }
        while sent.saturating_sub(shared.progress(queue)) >= WINDOW {
            if shared.abort.load(Ordering::Relaxed) {
                bail!("publisher aborted after {sent} messages");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        client
            .publish(SUBJECT, payload.clone())
            .await
            .context("publish")?;
        sent += 1;
    }
    client.flush().await.context("flush")?;
    Ok(sent)
}

/// Counts messages until this subscriber's goal (its own count, or the
/// group total for a queue group) reaches the publisher's count.
async fn count(
    mut sub: async_nats::Subscriber,
    i: usize,
    shared: &Shared,
    queue: bool,
) -> Result<Received> {
    let mut r = Received {
        msgs: 0,
        first: None,
        last: None,
    };
    let mut target_seen_at: Option<Instant> = None;
    loop {
        if shared.abort.load(Ordering::Relaxed) {
            bail!("aborted after {} messages", r.msgs);
        }
        let target = shared.target.load(Ordering::Acquire);
        if target != UNKNOWN {
            let have = if queue {
                shared.total.load(Ordering::Acquire)
            } else {
                r.msgs
            };
            if have >= target {
                return Ok(r);
            }
            let seen = *target_seen_at.get_or_insert_with(Instant::now);
            if seen.elapsed() > GRACE {
                bail!(
                    "subscriber got {have} of {target} messages within {GRACE:?} after the publisher finished"
                );
            }
        }
        match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Err(_) => continue,
            Ok(None) => bail!("subscription closed after {} messages", r.msgs),
            Ok(Some(_msg)) => {
                let now = Instant::now();
                r.first.get_or_insert(now);
                r.last = Some(now);
                r.msgs += 1;
                shared.per_sub[i].fetch_add(1, Ordering::AcqRel);
                shared.total.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// Makes sure the subscriptions `sub` made so far are known at `from`'s
/// server: `sub` subscribes to a fresh probe subject (its SUBs go out in
/// order on one connection), `from` publishes to it every 25 ms until one
/// arrives (bounded by `deadline`), then the probe is unsubscribed.
async fn await_interest(sub: &Client, from: &Client, deadline: Instant) -> Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let subject = format!(
        "_bench.aprobe.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut probe = sub.subscribe(subject.clone()).await.context("subscribe")?;
    sub.flush().await.context("flush")?;
    loop {
        from.publish(subject.clone(), Bytes::new())
            .await
            .context("publish probe")?;
        from.flush().await.context("flush")?;
        match tokio::time::timeout(Duration::from_millis(25), probe.next()).await {
            Ok(Some(_)) => break,
            Ok(None) => bail!("probe subscription closed"),
            Err(_) if Instant::now() > deadline => bail!("probe message did not arrive in time"),
            Err(_) => {}
        }
    }
    probe.unsubscribe().await.context("unsubscribe probe")?;
    Ok(())
}
