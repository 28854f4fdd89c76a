//! server.rs — spawning and killing the servers under test: free loopback
//! port, start with `-a 127.0.0.1 -p <port>` (plus `-js -sd <fresh temp dir>`,
//! `-m <port>` for monitoring, and a config file for `sync_interval` or the
//! `tls {}` block), wait until it speaks INFO (over TLS if required),
//! read its RSS from /proc, stop it with SIGTERM and start it again on the
//! same store (timing "Server is ready"), and kill it on drop.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
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

/// How a workload wants its server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// `-js -sd <fresh temp dir>`.
    pub jetstream: bool,
    /// Also `-c <file>` with `jetstream { sync_interval: always }`.
    pub sync_always: bool,
    /// A `tls {}` block with the bench's certificate (see `tls.rs`).
    pub tls: bool,
    /// `-m <free port>`: the HTTP monitoring endpoint.
    pub monitor: bool,
}

/// The log line both servers print once they accept clients.
pub const READY_LINE: &str = "Server is ready";

/// A directory removed (recursively) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "rnats-bench-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
        Ok(Self(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process; killed (and reaped) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Monitoring port (`-m`), when the launch asked for it.
    pub http_port: Option<u16>,
    bin: PathBuf,
    /// Arguments after `-a 127.0.0.1 -p <port>`.
    extra: Vec<String>,
    /// Store dir and config file; removed after the process is reaped.
    _dir: Option<TempDir>,
}

/// Asks the kernel for a free loopback port.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind a probe port")?;
    Ok(l.local_addr().context("probe port address")?.port())
}

impl Server {
    /// Starts `bin` on a free port and waits until a client handshake works.
    pub fn start(bin: &Path, launch: Launch) -> Result<Self> {
        let mut last_err = None;
        // A port can be taken between probing and binding; retry a few times.
        for _ in 0..3 {
            let port = free_port()?;
            let mut extra = Vec::new();
            let mut dir = None;
            if launch.jetstream || launch.tls {
                let d = TempDir::new(if launch.jetstream { "js" } else { "tls" })?;
                if launch.jetstream {
                    let store = d.path().join("store");
                    extra.extend(["-js".to_string(), "-sd".into(), path_str(&store)?]);
                }
                let mut conf = String::new();
                if launch.sync_always {
                    conf.push_str("jetstream {\n  sync_interval: always\n}\n");
                }
                if launch.tls {
                    conf.push_str(&crate::tls::config_block(d.path())?);
                }
                if !conf.is_empty() {
                    let file = d.path().join("server.conf");
                    std::fs::write(&file, conf)
                        .with_context(|| format!("write {}", file.display()))?;
                    extra.extend(["-c".to_string(), path_str(&file)?]);
                }
                dir = Some(d);
            }
            let http_port = if launch.monitor {
                let p = free_port()?;
                extra.extend(["-m".to_string(), p.to_string()]);
                Some(p)
            } else {
                None
            };
            let child = spawn(bin, port, &extra, false)?.0;
            let mut s = Server {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                http_port,
                bin: bin.to_path_buf(),
                extra,
                _dir: dir,
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

    /// Stops the server with SIGTERM (waits for it to exit), then starts the
    /// same binary with the same arguments (same port, same store dir) and
    /// waits for its "Server is ready" log line. Returns (time from SIGTERM
    /// to exit, time from spawn to the ready line).
    pub fn restart(&mut self, timeout: Duration) -> Result<(Duration, Duration)> {
        let t0 = Instant::now();
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        if rc != 0 {
            bail!("SIGTERM: {}", std::io::Error::last_os_error());
        }
        loop {
            if self
                .child
                .try_wait()
                .context("poll server process")?
                .is_some()
            {
                break;
            }
            if t0.elapsed() > timeout {
                bail!("server did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let stopped = t0.elapsed();
        let t1 = Instant::now();
        let (child, ready) = spawn(&self.bin, self.addr.port(), &self.extra, true)?;
        self.child = child;
        let ready = ready.context("no log pipe")?;
        match ready.recv_timeout(timeout) {
            Ok(()) => Ok((stopped, t1.elapsed())),
            Err(_) => match self.child.try_wait() {
                Ok(Some(st)) => bail!("restarted server exited ({st}) before {READY_LINE:?}"),
                _ => bail!("restarted server did not print {READY_LINE:?} within {timeout:?}"),
            },
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

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .with_context(|| format!("non-UTF-8 path {}", p.display()))
}

/// Spawns `bin -a 127.0.0.1 -p <port> <extra>`. With `watch_log`, stdout and
/// stderr are piped and drained by threads, and the receiver gets one message
/// when a line containing `READY_LINE` appears; otherwise output is discarded.
fn spawn(
    bin: &Path,
    port: u16,
    extra: &[String],
    watch_log: bool,
) -> Result<(Child, Option<mpsc::Receiver<()>>)> {
    let out = || {
        if watch_log {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    let mut child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(out())
        .stderr(out())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    if !watch_log {
        return Ok((child, None));
    }
    let (tx, rx) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for pipe in pipes.into_iter().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut line = Vec::new();
            // Drain until EOF so the server never blocks on a full pipe.
            while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if memchr::memmem::find(&line, READY_LINE.as_bytes()).is_some() {
                    let _ = tx.send(());
                }
                line.clear();
            }
        });
    }
    Ok((child, Some(rx)))
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
