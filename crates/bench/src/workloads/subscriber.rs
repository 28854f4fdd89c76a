//! workloads/subscriber.rs — a counting subscriber on its own thread: reads
//! big chunks, scans MSG/HMSG frames, and timestamps the first and last read
//! that carried messages. Stops once its goal is met (its own count, or a
//! shared count for queue groups) after the publisher has said how many it
//! sent.

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proto::{Conn, Frame, PONG};

/// `target` before the publisher has finished.
pub const UNKNOWN: u64 = u64::MAX;
/// How long subscribers may lag behind the publisher's end.
const GRACE: Duration = Duration::from_secs(30);

/// State shared between the publisher side and the subscriber threads.
#[derive(Default)]
pub struct Shared {
    /// Messages the publisher sent (UNKNOWN until it is done).
    pub target: AtomicU64,
    /// Sum of messages received by all subscribers.
    pub total: AtomicU64,
    /// Set when anything failed: everyone stops.
    pub abort: AtomicBool,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            target: AtomicU64::new(UNKNOWN),
            ..Default::default()
        })
    }
}

/// What one subscriber saw.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub msgs: u64,
    /// Messages carried by the first read (received before `first`).
    pub first_batch: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

/// Connects, subscribes and waits for the PONG so the interest is in place.
pub fn connect(addr: SocketAddr, subject: &str, queue: Option<&str>) -> Result<Conn> {
    let mut c = Conn::connect(addr)?;
    c.subscribe(subject, queue, 1)?;
    c.round_trip(Duration::from_secs(10))?;
    c.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .context("set read timeout")?;
    Ok(c)
}

/// Counts messages until done. `shared_goal`: the goal is the group total
/// (queue group) rather than this subscriber's own count (fan-out).
pub fn count(mut c: Conn, shared: &Shared, shared_goal: bool) -> Result<Received> {
    let mut r = Received {
        msgs: 0,
        first_batch: 0,
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
            let have = if shared_goal {
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
        match c.scan.read_from(&mut c.sock) {
            Ok(0) => bail!("server closed the connection after {} messages", r.msgs),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("subscriber read"),
        }
        let now = Instant::now();
        let mut n = 0u64;
        let mut ping = false;
        while let Some(f) = c.scan.next_frame()? {
            match f {
                Frame::Msg { .. } | Frame::HMsg { .. } => n += 1,
                Frame::Ping => ping = true,
                Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
                _ => {}
            }
        }
        if ping {
            c.sock.write_all(PONG).context("send PONG")?;
        }
        if n > 0 {
            if r.first.is_none() {
                r.first = Some(now);
                r.first_batch = n;
            }
            r.last = Some(now);
            r.msgs += n;
            if shared_goal {
                shared.total.fetch_add(n, Ordering::AcqRel);
            }
        }
    }
}
