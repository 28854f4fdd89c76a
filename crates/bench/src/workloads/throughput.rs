//! workloads/throughput.rs — the throughput workloads: publish-only (rate at
//! the publisher, up to the last PONG) and publish -> N subscribers, plain or
//! as one queue group (rate at the subscribers, first to last message);
//! also with publisher and subscribers on different cluster nodes.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::publisher::Publisher;
use super::subscriber::{self, Received, Shared};
use super::Limit;
use crate::server::await_interest;

/// Bound on waiting for a subscription to propagate to another node.
pub const INTEREST_TIMEOUT: Duration = Duration::from_secs(10);

/// [msgs/s, MB/s] for `msgs` messages of `size` bytes in `secs`.
fn rates(msgs: u64, size: usize, secs: f64) -> Result<Vec<f64>> {
    if secs <= 0.0 || msgs == 0 {
        bail!("nothing measured ({msgs} messages in {secs} s)");
    }
    let mps = msgs as f64 / secs;
    Ok(vec![mps, mps * size as f64 / 1e6])
}

pub fn pub_only(addr: SocketAddr, size: usize, limit: Limit) -> Result<Vec<f64>> {
    let mut p = Publisher::connect(addr, "bench.pubonly", size)?;
    let shared = Shared::new();
    let r = p.run(limit, &shared.abort)?;
    rates(r.msgs, size, r.elapsed.as_secs_f64())
}

/// One publisher, `subs` subscribers on one subject (in one queue group when
/// `queue`). Every subscriber must get every message (fan-out), or the group
/// must get every message exactly once in total (queue). The figure is all
/// deliveries divided by the time from the first to the last delivery.
pub fn pub_sub(
    addr: SocketAddr,
    size: usize,
    subs: usize,
    queue: bool,
    limit: Limit,
) -> Result<Vec<f64>> {
    Ok(pub_sub_on(addr, &vec![addr; subs], size, queue, limit)?.0)
}

/// `pub_sub` with the publisher connected to `pub_addr` and one subscriber
/// connected to each of `sub_addrs` (cluster nodes). A subscriber on another
/// node is probed (`server::await_interest`) until its interest has reached
/// the publisher's node. Returns the rates and each subscriber's count.
pub fn pub_sub_on(
    pub_addr: SocketAddr,
    sub_addrs: &[SocketAddr],
    size: usize,
    queue: bool,
    limit: Limit,
) -> Result<(Vec<f64>, Vec<u64>)> {
    let subject = "bench.pubsub";
    let subs = sub_addrs.len();
    let shared = Shared::new();
    let mut conns = Vec::with_capacity(subs);
    let deadline = Instant::now() + INTEREST_TIMEOUT;
    for &addr in sub_addrs {
        let mut c = subscriber::connect(addr, subject, queue.then_some("bench.q"))?;
        if addr != pub_addr {
            await_interest(&mut c, pub_addr, deadline)
                .context("subscription did not reach the publisher's node")?;
        }
        conns.push(c);
    }
    let mut publisher = Publisher::connect(pub_addr, subject, size)?;

    let results: Vec<Result<Received>> = thread::scope(|s| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|c| {
                let shared = &shared;
                s.spawn(move || {
                    let r = subscriber::count(c, shared, queue);
                    if r.is_err() {
                        shared.abort.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        match publisher.run(limit, &shared.abort) {
            Ok(p) => shared.target.store(p.msgs, Ordering::Release),
            Err(e) => {
                shared.abort.store(true, Ordering::Relaxed);
                // Still join the subscribers; report the publisher's error.
                for h in handles {
                    let _ = h.join();
                }
                return vec![Err(e.context("publisher"))];
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("subscriber thread panicked")))
            })
            .collect()
    });

    let mut recv = Vec::with_capacity(subs);
    for r in results {
        recv.push(r?);
    }
    let target = shared.target.load(Ordering::Acquire);
    let total: u64 = recv.iter().map(|r| r.msgs).sum();
    let expected = if queue { target } else { target * subs as u64 };
    if total != expected {
        bail!("subscribers received {total} messages, expected exactly {expected}");
    }
    let first = recv.iter().filter_map(|r| r.first).min();
    let last = recv.iter().filter_map(|r| r.last).max();
    let (Some(first), Some(last)) = (first, last) else {
        bail!("no messages received");
    };
    // Messages in the very first read arrived before the clock started.
    let early = recv
        .iter()
        .filter(|r| r.first == Some(first))
        .map(|r| r.first_batch)
        .max()
        .unwrap_or(0);
    let rates = rates(
        total.saturating_sub(early),
        size,
        (last - first).as_secs_f64(),
    )?;
    Ok((rates, recv.iter().map(|r| r.msgs).collect()))
}
