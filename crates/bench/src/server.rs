//! server.rs — spawning and killing the servers under test: free loopback
//! port, start with `-a 127.0.0.1 -p <port>`, wait until it speaks INFO,
//! read its RSS from /proc, and kill it on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proto::Conn;

/// Which side of the comparison a server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Reference,
    Rnats,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Reference => "reference",
            Side::Rnats => "rnats",
        }
    }
}

/// A running server process; killed (and reaped) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

/// Asks the kernel for a free loopback port.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind a probe port")?;
    Ok(l.local_addr().context("probe port address")?.port())
}

impl Server {
    /// Starts `bin` on a free port and waits until a client handshake works.
    pub fn start(bin: &Path) -> Result<Self> {
        let mut last_err = None;
        // A port can be taken between probing and binding; retry a few times.
        for _ in 0..3 {
            let port = free_port()?;
            let child = Command::new(bin)
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("spawn {}", bin.display()))?;
            let mut s = Server {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            match s.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(s),
                // Exited: maybe the port was taken meanwhile; try another.
                Err(e) if matches!(s.child.try_wait(), Ok(Some(_))) => last_err = Some(e),
                // Running but not answering: retrying would not help.
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("{} did not become ready", bin.display()))
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("server did not start")))
            .with_context(|| format!("{} did not become ready", bin.display()))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("poll server process")? {
                bail!("server exited during startup: {status}");
            }
            match Conn::connect_with_buf(self.addr, 4096)
                .and_then(|mut c| c.round_trip(Duration::from_secs(5)))
            {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has died (e.g. crashed under load).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("poll server process")? {
            bail!("server process exited: {status}");
        }
        Ok(())
    }

    /// Resident set size in bytes (VmRSS from /proc/<pid>/status).
    pub fn rss_bytes(&self) -> Result<u64> {
        rss_of(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) of a process in seconds, from /proc/<pid>/stat
/// (`"self"` for this process). Assumes the usual USER_HZ of 100.
pub fn cpu_secs(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_cpu_ticks(&text)
        .map(|t| t as f64 / 100.0)
        .with_context(|| format!("unexpected format of {path}"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces; fields after ")" start at 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn rss_of(pid: u32) -> Result<u64> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    parse_vmrss(&text).with_context(|| format!("no VmRSS line in {}", path.display()))
}

fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut it = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let unit = it.next().unwrap_or("kB");
    Some(match unit {
        "kB" => n * 1024,
        "mB" | "MB" => n * 1024 * 1024,
        _ => n,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn vmrss_parses() {
        let s = "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    8084 kB\nThreads: 3\n";
        assert_eq!(super::parse_vmrss(s), Some(8084 * 1024));
        assert_eq!(super::parse_vmrss("Name: x\n"), None);
    }

    #[test]
    fn stat_cpu_parses() {
        let s = "42 (my proc) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 0 0";
        assert_eq!(super::parse_cpu_ticks(s), Some(300));
    }
}
