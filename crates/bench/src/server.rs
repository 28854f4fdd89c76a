//! server.rs — spawning and killing the servers under test: free loopback
//! port, start with `-a 127.0.0.1 -p <port>` (plus `-js -sd <fresh temp dir>`,
//! `-m <port>` for monitoring, and a config file for `sync_interval` or the
//! `tls {}` block), wait until it speaks INFO (over TLS if required),
//! read its RSS from /proc, stop it with SIGTERM and start it again on the
//! same store (timing "Server is ready"), and kill it on drop. Also 3-node
//! clusters (`Cluster`): every node started with the same flags on both
//! sides, a full mesh of routes, formation awaited by probing.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proto::{Conn, Frame, PONG};

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
    Ok(free_ports(1)?[0])
}

/// `n` distinct free loopback ports (all probe sockets are held at once, so
/// no port is handed out twice).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let ls = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("bind a probe port"))
        .collect::<Result<Vec<_>>>()?;
    ls.iter()
        .map(|l| Ok(l.local_addr().context("probe port address")?.port()))
        .collect()
}

/// The processes of a measurement target (one server or a cluster), for the
/// CPU-share diagnostic and the liveness check after a run.
pub trait Procs {
    fn pids(&self) -> Vec<u32>;
    /// Fails if a process has died (e.g. crashed under load).
    fn check_alive(&mut self) -> Result<()>;
}

impl Procs for Server {
    fn pids(&self) -> Vec<u32> {
        vec![self.pid()]
    }
    fn check_alive(&mut self) -> Result<()> {
        Server::check_alive(self)
    }
}

/// Nodes in a benchmark cluster.
pub const CLUSTER_NODES: usize = 3;
/// `--cluster_name` of the benchmark clusters.
const CLUSTER_NAME: &str = "bench";
/// How long a cluster may take to form (every node sees every other).
const FORM_TIMEOUT: Duration = Duration::from_secs(20);

/// A cluster of `CLUSTER_NODES` servers on loopback, each started as
/// `-a 127.0.0.1 -p <port> -n bench-<a|b|c> --cluster nats://127.0.0.1:<cport>
/// --cluster_name bench --routes <every node's cluster URL>` (a full mesh;
/// nats-server and rnats both ignore the route to themselves). Every node is
/// killed when the cluster is dropped.
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// Starts the nodes and waits (bounded) until each one routes messages
    /// to each other one.
    pub fn start(bin: &Path) -> Result<Self> {
        let mut last_err = None;
        // A port can be taken between probing and binding; retry a few times.
        for _ in 0..3 {
            match Self::try_start(bin) {
                Ok(c) => {
                    c.wait_formed(FORM_TIMEOUT)
                        .with_context(|| format!("{} cluster did not form", bin.display()))?;
                    return Ok(c);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("cluster did not start")))
    }

    fn try_start(bin: &Path) -> Result<Self> {
        let ports = free_ports(2 * CLUSTER_NODES)?;
        let (client, cluster) = ports.split_at(CLUSTER_NODES);
        let routes = cluster
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::with_capacity(CLUSTER_NODES);
        for (i, (&port, &cport)) in client.iter().zip(cluster).enumerate() {
            let extra = vec![
                "-n".to_string(),
                format!("bench-{}", node_name(i)),
                "--cluster".into(),
                format!("nats://127.0.0.1:{cport}"),
                "--cluster_name".into(),
                CLUSTER_NAME.into(),
                "--routes".into(),
                routes.clone(),
            ];
            let child = spawn(bin, port, &extra, false)?.0;
            let mut s = Server {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                http_port: None,
                bin: bin.to_path_buf(),
                extra,
                _dir: None,
            };
            // On failure the nodes started so far are dropped (killed).
            s.wait_ready(Duration::from_secs(10))
                .with_context(|| format!("node {} did not become ready", node_name(i)))?;
            nodes.push(s);
        }
        Ok(Self { nodes })
    }

    /// Client addresses of the nodes, A first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// Bounded wait until, for every ordered pair of nodes (X, Y), a message
    /// published on X reaches a subscriber on Y.
    fn wait_formed(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for (y, ny) in self.nodes.iter().enumerate() {
            let mut sub = Conn::connect(ny.addr)?;
            sub.round_trip(Duration::from_secs(10))?;
            for (x, nx) in self.nodes.iter().enumerate() {
                if x != y {
                    await_interest(&mut sub, nx.addr, deadline).with_context(|| {
                        format!("no route from {} to {}", node_name(x), node_name(y))
                    })?;
                }
            }
        }
        Ok(())
    }
}

impl Procs for Cluster {
    fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Server::pid).collect()
    }
    fn check_alive(&mut self) -> Result<()> {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.check_alive()
                .with_context(|| format!("node {}", node_name(i)))?;
        }
        Ok(())
    }
}

/// `a`, `b`, `c`, ... for node `i`.
pub fn node_name(i: usize) -> char {
    (b'a' + (i % 26) as u8) as char
}

/// Sid used for probe subscriptions (the workloads use small sids).
const PROBE_SID: u32 = 999_999;

/// Makes sure the interest `sub` registered so far (its SUBs sent before this
/// call) is known at the server `from` is: subscribes `sub` to a fresh probe
/// subject, publishes empty messages to it from a new connection to `from`
/// every 25 ms until one arrives (or `deadline` passes), then unsubscribes and
/// drains the probe. SUBs from one connection travel the route in order, so
/// the probe arriving means the earlier SUBs have propagated too.
/// Messages on other sids during the probe are an error.
pub fn await_interest(sub: &mut Conn, from: SocketAddr, deadline: Instant) -> Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let subject = format!(
        "_bench.probe.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    sub.subscribe(&subject, None, PROBE_SID)?;
    sub.round_trip(Duration::from_secs(10))?;
    let mut publ = Conn::connect(from)?;
    publ.round_trip(Duration::from_secs(10))?;
    let frame = crate::proto::pub_frame(&subject, None, b"");
    let prev_timeout = sub.sock.read_timeout()?;
    sub.sock.set_read_timeout(Some(Duration::from_millis(25)))?;
    let got = probe_loop(sub, &mut publ, &frame, deadline);
    sub.sock.set_read_timeout(prev_timeout)?;
    got?;
    // Unsubscribe; stray probes still in flight end before the PONG.
    sub.sock
        .write_all(format!("UNSUB {PROBE_SID}\r\nPING\r\n").as_bytes())
        .context("send UNSUB")?;
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(f) = sub.scan.next_frame()? {
            match f {
                Frame::Pong => return Ok(()),
                Frame::Ping => sub.sock.write_all(PONG).context("send PONG")?,
                f => check_probe_frame(f)?,
            }
        }
        if Instant::now() > until {
            bail!("no PONG after the probe's UNSUB");
        }
        sub.fill()?;
    }
}

fn probe_loop(sub: &mut Conn, publ: &mut Conn, frame: &[u8], deadline: Instant) -> Result<()> {
    loop {
        publ.sock.write_all(frame).context("send probe")?;
        let tick = Instant::now() + Duration::from_millis(25);
        while Instant::now() < tick {
            match sub.scan.read_from(&mut sub.sock) {
                Ok(0) => bail!("server closed the connection"),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("read probe"),
            }
            let mut arrived = false;
            while let Some(f) = sub.scan.next_frame()? {
                match f {
                    Frame::Msg { sid, .. } | Frame::HMsg { sid, .. }
                        if sid == PROBE_SID.to_string().as_bytes() =>
                    {
                        arrived = true
                    }
                    Frame::Ping => sub.sock.write_all(PONG).context("send PONG")?,
                    f => check_probe_frame(f)?,
                }
            }
            if arrived {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("probe message did not arrive in time");
        }
        // Answer the probe publisher's server pings, if any.
        publ.round_trip(Duration::from_secs(10))?;
    }
}

/// Frames allowed while probing: probe messages, +OK, INFO, PONG.
fn check_probe_frame(f: Frame<'_>) -> Result<()> {
    match f {
        Frame::Msg { sid, subject, .. } | Frame::HMsg { sid, subject, .. }
            if sid != PROBE_SID.to_string().as_bytes() =>
        {
            bail!(
                "unexpected message on {} before the measurement",
                String::from_utf8_lossy(subject)
            )
        }
        Frame::Err(e) => bail!("server error: {}", String::from_utf8_lossy(e)),
        _ => Ok(()),
    }
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
