//! workloads/rss.rs — memory per idle connection: server RSS after start,
//! then after `n` clients each did CONNECT + PING and got their PONG; reports
//! (delta / n) bytes per connection and the starting RSS.

use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::proto::Conn;
use crate::server::Server;

/// Time for the server to settle before each RSS reading.
const SETTLE: Duration = Duration::from_millis(300);

/// [bytes per connection, idle RSS in MiB].
pub fn idle_rss(server: &mut Server, n: usize) -> Result<Vec<f64>> {
    thread::sleep(SETTLE);
    let before = server.rss_bytes()?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = Conn::connect_with_buf(server.addr, 512)
            .and_then(|mut c| c.round_trip(Duration::from_secs(10)).map(|()| c))
            .with_context(|| format!("idle connection {} of {n}", i + 1))?;
        c.scan = crate::proto::Scanner::with_capacity(64);
        conns.push(c);
    }
    thread::sleep(SETTLE);
    server.check_alive()?;
    let after = server.rss_bytes()?;
    drop(conns);
    let per_conn = (after as f64 - before as f64) / n.max(1) as f64;
    Ok(vec![per_conn, before as f64 / (1024.0 * 1024.0)])
}
