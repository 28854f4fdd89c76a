//! Test-support harness for the rnats integration tests.
//!
//! * [`Server`] launches the server binary (env `RNATS_SERVER_BIN`, default
//!   the workspace's `target/debug/rnats-server`) on a free loopback port,
//!   captures its log output, waits for `Server is ready`, and kills the child
//!   on drop. The same tests can be pointed at the reference `nats-server` by
//!   setting `RNATS_SERVER_BIN`.
//! * [`RawClient`] speaks the raw text protocol over TCP so tests can observe
//!   exact server replies (`-ERR ...`, `INFO`, connection closes).
//! * [`within`] bounds a test body with a timeout so a hang fails instead of
//!   stalling CI.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub mod cluster;
pub mod http;
pub mod leaf;

/// How long [`Server::start`] waits for the `Server is ready` log line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The log line that marks a server as ready to accept clients.
pub const READY_LINE: &str = "Server is ready";

/// The log line prefix announcing the client listener address.
pub const LISTENING_LINE: &str = "Listening for client connections on ";

/// Run `fut`, panicking with `what` if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Path of the server binary under test.
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RNATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "RNATS_SERVER_BIN points to {} which does not exist",
            p.display()
        );
        return p;
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/rnats-server");
    assert!(
        p.exists(),
        "server binary {} not found: run `cargo build -p rnats-server` first \
         (or set RNATS_SERVER_BIN to a server binary, e.g. a reference nats-server)",
        p.display()
    );
    p
}

/// Pick a currently free loopback TCP port (bind 127.0.0.1:0 and release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Raise this process's soft `RLIMIT_NOFILE` to at least `want` (bounded by the
/// hard limit). Child processes (the server) inherit it. Returns the new soft
/// limit.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
pub fn raise_nofile_limit(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct.
    unsafe {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        let target = (want as libc::rlim_t).min(rl.rlim_max);
        if rl.rlim_cur < target {
            rl.rlim_cur = target;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        }
        rl.rlim_cur as u64
    }
}

#[derive(Default)]
struct LogState {
    text: String,
    /// Number of output streams that reached EOF.
    eofs: usize,
}

type SharedLog = Arc<(Mutex<LogState>, Condvar)>;

/// A running server process. Killed (SIGKILL) on drop.
pub struct Server {
    child: Child,
    port: u16,
    log: SharedLog,
    exit: Option<ExitStatus>,
    _config: Option<tempfile::NamedTempFile>,
}

impl Server {
    /// Start the server on a free loopback port: runs
    /// `BIN -a 127.0.0.1 -p <port> ARGS...` and waits for `Server is ready`.
    pub fn start(args: &[&str]) -> Server {
        Self::start_inner(args, None)
    }

    /// Start the server with a temporary config file holding `text`
    /// (`-c <file>`), on a free loopback port given on the command line.
    pub fn start_with_config(text: &str) -> Server {
        Self::start_with_config_and_args(text, &[])
    }

    /// Like [`Server::start_with_config`] with extra command-line arguments.
    pub fn start_with_config_and_args(text: &str, args: &[&str]) -> Server {
        let mut f = tempfile::Builder::new()
            .prefix("rnats-itest-")
            .suffix(".conf")
            .tempfile()
            .expect("create temp config file");
        f.write_all(text.as_bytes())
            .expect("write temp config file");
        f.flush().expect("flush temp config file");
        Self::start_inner(args, Some(f))
    }

    fn start_inner(args: &[&str], config: Option<tempfile::NamedTempFile>) -> Server {
        let cfg_path = config
            .as_ref()
            .map(|f| f.path().to_str().expect("utf-8 temp path").to_owned());
        let mut last_err = String::new();
        // The port is released before the server binds it, so another process
        // may grab it in between: retry a few times on a bind failure.
        for _ in 0..3 {
            let port = free_port();
            let port_s = port.to_string();
            let mut full: Vec<&str> = vec!["-a", "127.0.0.1", "-p", &port_s];
            if let Some(p) = &cfg_path {
                full.push("-c");
                full.push(p);
            }
            full.extend_from_slice(args);
            match Self::try_launch(&full) {
                Ok(mut s) => {
                    s.port = port;
                    s._config = config;
                    return s;
                }
                Err(e) => {
                    let retry = e.contains("in use") || e.contains("AddrInUse");
                    last_err = e;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("{last_err}");
    }

    /// Launch the binary with exactly `args` (no address/port added) and wait
    /// for `Server is ready`. The port is read from the
    /// `Listening for client connections on HOST:PORT` log line.
    pub fn launch(args: &[&str]) -> Server {
        Self::try_launch(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_launch(args: &[&str]) -> Result<Server, String> {
        Self::try_launch_bin(&server_bin(), args)
    }

    /// Launch `bin` (e.g. the reference nats-server) with exactly `args` and
    /// wait for `Server is ready`; `Err` carries the reason and the log.
    pub fn try_launch_bin(bin: &std::path::Path, args: &[&str]) -> Result<Server, String> {
        let bin = bin.to_path_buf();
        let mut child = Command::new(&bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", bin.display()));
        let log: SharedLog = Arc::new((Mutex::new(LogState::default()), Condvar::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let stdout = child.stdout.take().expect("stdout piped");
        spawn_reader(stderr, log.clone());
        spawn_reader(stdout, log.clone());

        let mut server = Server {
            child,
            port: 0,
            log,
            exit: None,
            _config: None,
        };
        let ready = server.wait_for_log_inner(READY_LINE, READY_TIMEOUT, true);
        if !ready {
            // Give a process that closed its output a moment to exit.
            let exited = server.wait_exit(Duration::from_secs(1));
            server.kill();
            let why = match exited {
                Some(st) => format!("exited ({st}) before printing {READY_LINE:?}"),
                None => format!("did not print {READY_LINE:?} within {READY_TIMEOUT:?}"),
            };
            return Err(format!(
                "server {} {:?} {why}; log:\n{}",
                bin.display(),
                args,
                server.log()
            ));
        }
        if let Some(port) = server.listening_port() {
            server.port = port;
        }
        Ok(server)
    }

    /// Client port parsed from the `Listening for client connections on` line.
    fn listening_port(&self) -> Option<u16> {
        let log = self.log();
        let line = log.lines().find(|l| l.contains(LISTENING_LINE))?;
        let addr = line.split(LISTENING_LINE).nth(1)?.trim();
        addr.rsplit(':').next()?.parse().ok()
    }

    /// `nats://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (stderr and stdout).
    pub fn log(&self) -> String {
        self.log.0.lock().unwrap().text.clone()
    }

    /// Wait until the log contains `needle`; returns whether it did in time.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for_log_inner(needle, timeout, false)
    }

    fn wait_for_log_inner(&self, needle: &str, timeout: Duration, stop_on_eof: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.log;
        let mut st = lock.lock().unwrap();
        loop {
            if st.text.contains(needle) {
                return true;
            }
            if stop_on_eof && st.eofs >= 2 {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// SIGKILL the server (no-op if it already exited).
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }

    /// Send a signal (e.g. `libc::SIGTERM`) to the server process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.child.id());
    }

    /// Wait up to `timeout` for the process to exit; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(st);
                // Let the reader threads drain the remaining output.
                let (lock, cv) = &*self.log;
                let mut g = lock.lock().unwrap();
                let drain_deadline = Instant::now() + Duration::from_secs(2);
                while g.eofs < 2 && Instant::now() < drain_deadline {
                    g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
                }
                return self.exit;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Async wrapper around [`Server::wait_exit`] that does not block the
    /// runtime thread.
    pub async fn wait_exit_async(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.wait_exit(Duration::from_secs(1));
            }
            if self.exit.is_some() {
                return self.exit;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_reader<R: Read + Send + 'static>(r: R, log: SharedLog) {
    std::thread::spawn(move || {
        let mut rd = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match rd.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let (lock, cv) = &*log;
                    lock.lock()
                        .unwrap()
                        .text
                        .push_str(&String::from_utf8_lossy(&line));
                    cv.notify_all();
                }
            }
        }
        let (lock, cv) = &*log;
        lock.lock().unwrap().eofs += 1;
        cv.notify_all();
    });
}

/// A raw NATS protocol client over TCP.
pub struct RawClient {
    stream: TcpStream,
    /// The INFO line (without `INFO ` prefix and CRLF) received on connect.
    pub info_json: String,
    buf: Vec<u8>,
}

impl RawClient {
    /// Connect to 127.0.0.1:`port` and read the initial INFO line.
    pub async fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("raw connect to 127.0.0.1:{port}: {e}"));
        Self::from_stream(stream).await
    }

    /// Connect with a small socket receive buffer (useful to make a client
    /// that never reads back up quickly).
    pub async fn connect_with_recv_buffer(port: u16, size: u32) -> RawClient {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.set_recv_buffer_size(size).expect("SO_RCVBUF");
        let stream = sock
            .connect(([127, 0, 0, 1], port).into())
            .await
            .unwrap_or_else(|e| panic!("raw connect to 127.0.0.1:{port}: {e}"));
        Self::from_stream(stream).await
    }

    async fn from_stream(stream: TcpStream) -> RawClient {
        let mut c = RawClient {
            stream,
            info_json: String::new(),
            buf: Vec::new(),
        };
        let line = within(Duration::from_secs(5), "reading INFO", c.read_line())
            .await
            .expect("connection closed before INFO");
        let line = String::from_utf8(line).expect("INFO is utf-8");
        let json = line
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("expected INFO line, got {line:?}"));
        c.info_json = json.trim_end().to_owned();
        c
    }

    /// The initial INFO as JSON.
    pub fn info(&self) -> serde_json::Value {
        serde_json::from_str(&self.info_json).expect("INFO json")
    }

    /// Read one CRLF-terminated line (returned without CRLF); None on close.
    async fn read_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..pos].to_vec();
                self.buf.drain(..pos + 2);
                return Some(line);
            }
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Write raw bytes. Errors (e.g. the server already closed) are ignored;
    /// observe them through [`RawClient::read_until_quiet`].
    pub async fn send(&mut self, data: &[u8]) {
        let _ = self.stream.write_all(data).await;
        let _ = self.stream.flush().await;
    }

    /// Send `CONNECT {"verbose":false,"pedantic":false,"protocol":1}` and
    /// complete the handshake; see [`RawClient::handshake_with`].
    pub async fn handshake(&mut self) {
        self.handshake_with(r#"{"verbose":false,"pedantic":false,"protocol":1}"#)
            .await;
    }

    /// Send `CONNECT <json>` and `PING`, wait for `PONG`, then do a second
    /// `PING`/`PONG` round trip and discard everything received in between.
    /// nats-server answers the first PING of a `protocol >= 1` client with
    /// `PONG` followed by an extra `INFO {..."connect_info":true...}`; the
    /// second round trip makes sure that INFO (if any) is consumed, so the
    /// test starts from a clean stream. Returns what was discarded.
    pub async fn handshake_with(&mut self, connect_json: &str) -> Vec<u8> {
        self.send(format!("CONNECT {connect_json}\r\nPING\r\n").as_bytes())
            .await;
        let (mut seen, closed) = self
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(
            !closed && contains(&seen, b"PONG\r\n"),
            "handshake failed (closed: {closed}): {:?}",
            String::from_utf8_lossy(&seen)
        );
        self.send(b"PING\r\n").await;
        let (more, closed) = self
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(
            !closed && contains(&more, b"PONG\r\n"),
            "handshake second PING failed (closed: {closed}): {:?}",
            String::from_utf8_lossy(&more)
        );
        seen.extend_from_slice(&more);
        seen
    }

    /// Read until nothing arrives for `quiet`, the connection closes, or
    /// 10 s pass. Returns the bytes read and whether the peer closed.
    pub async fn read_until_quiet(&mut self, quiet: Duration) -> (Vec<u8>, bool) {
        let hard_deadline = Instant::now() + Duration::from_secs(10);
        let mut out = std::mem::take(&mut self.buf);
        let mut tmp = vec![0u8; 64 * 1024];
        loop {
            if Instant::now() >= hard_deadline {
                return (out, false);
            }
            match tokio::time::timeout(quiet, self.stream.read(&mut tmp)).await {
                Err(_) => return (out, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Read until the received bytes contain `needle`, the connection closes,
    /// or `timeout` passes. Returns the bytes read up to and including the
    /// first `needle` (bytes after it stay buffered for the next read), and
    /// whether the peer closed.
    pub async fn read_until_contains(
        &mut self,
        needle: &[u8],
        timeout: Duration,
    ) -> (Vec<u8>, bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tmp = vec![0u8; 64 * 1024];
        let mut searched = 0usize;
        loop {
            let start = searched.saturating_sub(needle.len());
            if let Some(pos) = find(&self.buf[start..], needle) {
                let end = start + pos + needle.len();
                let out = self.buf[..end].to_vec();
                self.buf.drain(..end);
                return (out, false);
            }
            searched = self.buf.len();
            match tokio::time::timeout_at(deadline, self.stream.read(&mut tmp)).await {
                Err(_) => return (std::mem::take(&mut self.buf), false),
                Ok(Ok(0)) | Ok(Err(_)) => return (std::mem::take(&mut self.buf), true),
                Ok(Ok(n)) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Read until the connection is closed by the peer (returns true) or
    /// `timeout` passes (returns false). Data read is returned too.
    pub async fn wait_closed(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = std::mem::take(&mut self.buf);
        let mut tmp = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut tmp)).await {
                Err(_) => return (out, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(&tmp[..n]),
            }
        }
    }
}

/// Whether `hay` contains the byte string `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Position of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Default per-message wait used by [`next_msg`].
pub const MSG_TIMEOUT: Duration = Duration::from_secs(5);

/// Await the next message on `sub`, panicking on timeout or end of stream.
pub async fn next_msg(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    use futures::StreamExt;
    match tokio::time::timeout(MSG_TIMEOUT, sub.next()).await {
        Ok(Some(m)) => m,
        Ok(None) => panic!("subscription ended while waiting for a message"),
        Err(_) => panic!("no message within {MSG_TIMEOUT:?}"),
    }
}

/// Path of the built `rnats` CLI binary (env `RNATS_CLI_BIN` overrides);
/// the CLI tests need `cargo build -p rnats-cli` first.
pub fn cli_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RNATS_CLI_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/rnats");
    assert!(
        p.exists(),
        "rnats binary {} not found: run cargo build -p rnats-cli",
        p.display()
    );
    p
}

/// Connect an async-nats client to `server`, panicking on failure.
pub async fn connect(server: &Server) -> async_nats::Client {
    async_nats::connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.url()))
}

/// Full round trip to the server on `client`'s connection: subscribe to a
/// unique subject, publish to it and wait for the message to come back.
/// When this returns the server has processed everything the client sent
/// before (e.g. its SUBs). async-nats' `flush()` only writes out the buffer;
/// it does not wait for a PONG, so it is no such barrier.
/// Needs echo; see [`sync_no_echo`] for a `no_echo` connection.
pub async fn sync(client: &async_nats::Client) {
    use futures::StreamExt;
    let subject = format!("_ITEST.sync.{}", client.new_inbox().replace("_INBOX.", ""));
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .expect("sync subscribe");
    client
        .publish(subject, bytes::Bytes::new())
        .await
        .expect("sync publish");
    match tokio::time::timeout(MSG_TIMEOUT, sub.next()).await {
        Ok(Some(_)) => {}
        Ok(None) => panic!("sync subscription ended"),
        Err(_) => panic!("sync round trip timed out after {MSG_TIMEOUT:?}"),
    }
}

/// Round trip for a connection without echo: a request to a subject nobody
/// subscribes to is answered by the server with a no-responders status,
/// which it can only send after processing everything sent before.
pub async fn sync_no_echo(client: &async_nats::Client) {
    let subject = format!("_ITEST.none.{}", client.new_inbox().replace("_INBOX.", ""));
    match client.request(subject, bytes::Bytes::new()).await {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
        other => panic!("expected no-responders for the sync request, got {other:?}"),
    }
}

impl Server {
    /// The temporary config file this server was started with, if any (tests
    /// rewrite it and send SIGHUP to exercise a config reload).
    pub fn config_path(&self) -> Option<&std::path::Path> {
        self._config.as_ref().map(|f| f.path())
    }
}

/// Start the server with JetStream enabled and its store in `store_dir`
/// (`-js -sd <store_dir>` plus `extra`), on a free loopback port. Starting
/// again with the same directory (e.g. after [`Server::kill`]) recovers what
/// the previous process stored; the new server gets a new port.
pub fn start_jetstream(store_dir: &std::path::Path, extra: &[&str]) -> Server {
    let dir = store_dir.to_str().expect("utf-8 store dir");
    let mut args = vec!["-js", "-sd", dir];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A JetStream server with its own temporary store directory (kept alive by
/// the returned guard).
pub fn js_server() -> (Server, tempfile::TempDir) {
    let store = tempfile::tempdir().expect("temp store dir");
    let server = start_jetstream(store.path(), &[]);
    (server, store)
}

/// A JetStream context on a fresh connection to `server`.
pub async fn js_context(server: &Server) -> async_nats::jetstream::Context {
    async_nats::jetstream::new(connect(server).await)
}

/// A memory stream configuration with `subjects`.
pub fn mem_config(name: &str, subjects: &[&str]) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: name.to_string(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    }
}

/// A file stream configuration with `subjects`.
pub fn file_config(name: &str, subjects: &[&str]) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        storage: async_nats::jetstream::stream::StorageType::File,
        ..mem_config(name, subjects)
    }
}
