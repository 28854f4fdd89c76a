//! The `rnats` CLI's connection contexts, object store, server/account
//! views, events and benchmarks, driven as a subprocess against a started
//! server. Every run gets its own `XDG_CONFIG_HOME` so no test sees the
//! user's (or another test's) contexts.
//!
//! Needs `cargo build -p rnats-cli -p rnats-server` first.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rnats_itest::{cli_bin, js_server, Server};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "rnats failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// `rnats` with a private config dir and no inherited NATS_* variables.
fn base(cfg: &Path) -> Command {
    let mut c = Command::new(cli_bin());
    c.env("XDG_CONFIG_HOME", cfg);
    for v in [
        "NATS_URL",
        "NATS_CONTEXT",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CREDS",
        "NATS_NKEY",
    ] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Run {
    let out = c.output().expect("run rnats");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `rnats -s <server> ARGS`.
fn rnats(server: &Server, cfg: &Path, args: &[&str]) -> Run {
    let mut c = base(cfg);
    c.arg("-s").arg(server.url()).args(args);
    run(c)
}

/// A long-running `rnats` whose stdout lines are streamed.
struct Bg {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    fn spawn(server: &Server, cfg: &Path, args: &[&str]) -> Bg {
        let mut c = base(cfg);
        c.arg("-s").arg(server.url()).args(args);
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rnats");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Bg { child, lines }
    }

    /// Wait for an output line containing `needle`; returns the lines seen.
    fn wait_for(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    seen.push(l);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => panic!("rnats did not print {needle:?}; saw {seen:#?}"),
            }
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn contexts_are_stored_like_the_nats_cli_and_used_for_connections() {
    let (server, _store) = js_server();
    let cfg = tempfile::tempdir().unwrap();
    let dead = "nats://127.0.0.1:1";

    // The first context saved becomes the selected one.
    let mut c = base(cfg.path());
    c.args(["context", "add", "local", "-s", &server.url()])
        .args(["--description", "Local server"]);
    let r = run(c).ok();
    assert!(r.stdout.contains("Local server"), "{}", r.stdout);
    let file = cfg.path().join("nats/context/local.json");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["url"], server.url());
    assert_eq!(saved["description"], "Local server");
    let selected = cfg.path().join("nats/context.txt");
    assert_eq!(std::fs::read_to_string(&selected).unwrap().trim(), "local");

    let mut c = base(cfg.path());
    c.args(["context", "add", "broken", "-s", dead, "--timeout", "1s"]);
    run(c).ok();
    assert_eq!(std::fs::read_to_string(&selected).unwrap().trim(), "local");

    // No -s: the selected context's URL is used.
    let mut c = base(cfg.path());
    c.args(["account", "info", "-j"]);
    let info = run(c).ok().json();
    assert_eq!(info["server"]["server_id"].as_str().map(str::len), Some(56));

    // --context and NATS_CONTEXT pick another one; NATS_URL beats a context.
    let mut c = base(cfg.path());
    c.args(["--context", "broken", "--timeout", "1s", "account", "info"]);
    let r = run(c);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
    let mut c = base(cfg.path());
    c.env("NATS_CONTEXT", "broken")
        .env("NATS_URL", server.url());
    c.args(["account", "info", "-j"]);
    run(c).ok();

    let mut c = base(cfg.path());
    c.args(["context", "ls"]);
    let r = run(c).ok();
    assert!(r.stdout.contains("local*"), "{}", r.stdout);
    assert!(r.stdout.contains("broken "), "{}", r.stdout);

    let mut c = base(cfg.path());
    c.args(["context", "select", "broken"]);
    run(c).ok();
    assert_eq!(std::fs::read_to_string(&selected).unwrap().trim(), "broken");
    let mut c = base(cfg.path());
    c.args(["context", "info", "-j"]);
    assert_eq!(run(c).ok().json()["url"], dead);

    let mut c = base(cfg.path());
    c.args(["context", "rm", "broken", "-f"]);
    run(c).ok();
    assert!(!cfg.path().join("nats/context/broken.json").exists());
    assert!(
        !selected.exists(),
        "removing the selected context unselects it"
    );
    let mut c = base(cfg.path());
    c.args(["context", "select", "nope"]);
    let r = run(c);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("unknown context"), "{}", r.stderr);
    let mut c = base(cfg.path());
    c.args(["context", "add", "../escape"]);
    assert_ne!(run(c).code, 0);
}

#[test]
fn credentials_come_from_flags_env_or_context() {
    let server = Server::start(&["--user", "alice", "--pass", "s3cret"]);
    let cfg = tempfile::tempdir().unwrap();

    let r = rnats(&server, cfg.path(), &["pub", "x", "hi"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.to_lowercase().contains("authorization"),
        "{}",
        r.stderr
    );

    rnats(
        &server,
        cfg.path(),
        &["--user", "alice", "--password", "s3cret", "pub", "x", "hi"],
    )
    .ok();

    let mut c = base(cfg.path());
    c.env("NATS_URL", server.url())
        .env("NATS_USER", "alice")
        .env("NATS_PASSWORD", "s3cret")
        .args(["pub", "x", "hi"]);
    run(c).ok();

    let mut c = base(cfg.path());
    c.args(["context", "add", "auth", "-s", &server.url()])
        .args(["--user", "alice", "--password", "s3cret"]);
    run(c).ok();
    let mut c = base(cfg.path());
    c.args(["context", "info", "auth"]);
    let r = run(c).ok();
    assert!(r.stdout.contains("Username: alice"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("s3cret"),
        "passwords are masked: {}",
        r.stdout
    );
    let mut c = base(cfg.path());
    c.args(["pub", "x", "hi"]);
    run(c).ok();
}

#[test]
fn object_store_put_get_ls_info_rm_seal() {
    let (server, _store) = js_server();
    let cfg = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let r = |args: &[&str]| rnats(&server, cfg.path(), args);

    let r1 = r(&["obj", "add", "FILES", "--description", "my files"]).ok();
    assert!(
        r1.stdout.contains("JetStream Stream: OBJ_FILES"),
        "{}",
        r1.stdout
    );

    // Big enough for several chunks (and a progress bar on a terminal).
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = work.path().join("blob.bin");
    std::fs::write(&src, &data).unwrap();
    let put = r(&["obj", "put", "FILES", src.to_str().unwrap()]).ok();
    assert!(
        put.stdout
            .contains("Object information for FILES > blob.bin"),
        "{}",
        put.stdout
    );
    assert!(put.stdout.contains("Size: 1.4 MiB"), "{}", put.stdout);
    assert!(
        !put.stderr.contains('\r') && !put.stderr.contains('█'),
        "no progress bar off a terminal: {:?}",
        put.stderr
    );

    let mut c = base(cfg.path());
    c.arg("-s").arg(server.url());
    c.args(["obj", "put", "FILES", "--name", "note.txt"]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello object")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    let ls = r(&["obj", "ls", "FILES", "-j"]).ok().json();
    let names: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["blob.bin", "note.txt"]);
    let table = r(&["obj", "ls", "FILES"]).ok();
    assert!(table.stdout.contains("Bucket Contents"), "{}", table.stdout);
    let buckets = r(&["obj", "ls", "-j"]).ok().json();
    assert_eq!(buckets, serde_json::json!(["FILES"]));

    let info = r(&["obj", "info", "FILES", "blob.bin", "-j"]).ok().json();
    assert_eq!(info["size"], 1_500_000);
    assert!(info["chunks"].as_u64().unwrap() > 1);

    let out = work.path().join("copy.bin");
    let got = r(&[
        "obj",
        "get",
        "FILES",
        "blob.bin",
        "-O",
        out.to_str().unwrap(),
    ])
    .ok();
    assert!(got.stdout.starts_with("Wrote: 1.4 MiB"), "{}", got.stdout);
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // An existing file is not overwritten without --force.
    let again = r(&[
        "obj",
        "get",
        "FILES",
        "blob.bin",
        "-O",
        out.to_str().unwrap(),
    ]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let stdout = r(&["obj", "get", "FILES", "note.txt", "-O", "-"]).ok();
    assert_eq!(stdout.stdout, "hello object");

    r(&["obj", "rm", "FILES", "note.txt", "-f"]).ok();
    let missing = r(&["obj", "get", "FILES", "note.txt", "-O", "-"]);
    assert_ne!(missing.code, 0);

    let sealed = r(&["obj", "seal", "FILES", "-f"]).ok();
    assert!(sealed.stdout.contains("Sealed: true"), "{}", sealed.stdout);
    let refused = r(&["obj", "put", "FILES", src.to_str().unwrap(), "-f"]);
    assert_ne!(refused.code, 0, "a sealed bucket refuses puts");

    r(&["obj", "rm", "FILES", "-f"]).ok();
    assert_eq!(r(&["obj", "ls", "-j"]).ok().json(), serde_json::json!([]));
}

#[test]
fn object_watch_reports_puts_and_deletes() {
    let (server, _store) = js_server();
    let cfg = tempfile::tempdir().unwrap();
    rnats(&server, cfg.path(), &["obj", "add", "W"]).ok();
    let watch = Bg::spawn(&server, cfg.path(), &["obj", "watch", "W"]);
    std::thread::sleep(Duration::from_millis(500));
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("a.txt");
    std::fs::write(&f, b"abc").unwrap();
    rnats(
        &server,
        cfg.path(),
        &["obj", "put", "W", f.to_str().unwrap()],
    )
    .ok();
    watch.wait_for("PUT W: a.txt");
    rnats(&server, cfg.path(), &["obj", "rm", "W", "a.txt", "-f"]).ok();
    watch.wait_for("DEL W: a.txt");
}

/// A server with a system account (`sys`/`sys`) and an application account
/// (`app`/`app`): `$SYS` requests and events are the system account's.
const SYS_CONFIG: &str = r#"
accounts {
  SYS { users = [{user: sys, password: sys}] }
  APP { users = [{user: app, password: app}] }
}
system_account: SYS
"#;

fn with_user<'a>(user: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--user", user, "--password", user];
    v.extend_from_slice(args);
    v
}

#[test]
fn server_ping_list_info_and_check() {
    let server = Server::start_with_config(SYS_CONFIG);
    let cfg = tempfile::tempdir().unwrap();
    let r = |args: &[&str]| rnats(&server, cfg.path(), &with_user("sys", args));

    let ping = r(&["server", "ping", "--expect", "1"]).ok();
    assert!(ping.stdout.contains("rtt="), "{}", ping.stdout);
    assert!(ping.stdout.contains("1 replies max:"), "{}", ping.stdout);

    let list = r(&["server", "list", "--expect", "1", "-j"]).ok().json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0]["statsz"]["connections"].as_u64().unwrap() >= 1);
    let table = r(&["server", "list", "--expect", "1"]).ok();
    assert!(table.stdout.contains("Server Overview"), "{}", table.stdout);

    let info = r(&["server", "info", "-j"]).ok().json();
    let id = info["data"]["server_id"].as_str().unwrap().to_string();
    assert_eq!(info["server"]["id"], id.as_str());
    let by_id = r(&["server", "info", &id]).ok();
    assert!(
        by_id.stdout.contains(&format!("({id})")),
        "{}",
        by_id.stdout
    );

    let check = r(&["server", "check", "connection"]).ok();
    assert!(
        check.stdout.starts_with("OK Connection OK:connected to"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("| connect_time="), "{}", check.stdout);
    let critical = r(&["server", "check", "connection", "--connect-critical", "0s"]);
    assert_eq!(critical.code, 2, "{}", critical.stdout);
    assert!(
        critical.stdout.starts_with("CRITICAL Connection"),
        "{}",
        critical.stdout
    );
}

#[test]
fn account_info_shows_connection_and_jetstream_usage() {
    let (server, _store) = js_server();
    let cfg = tempfile::tempdir().unwrap();
    rnats(
        &server,
        cfg.path(),
        &["str", "add", "S1", "--subjects", "s1.>", "--defaults"],
    )
    .ok();
    let j = rnats(&server, cfg.path(), &["account", "info", "-j"])
        .ok()
        .json();
    assert_eq!(j["jetstream"]["streams"], 1);
    let human = rnats(&server, cfg.path(), &["account", "info"]).ok();
    assert!(
        human.stdout.contains("Connected Server Version: "),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("Streams: 1"), "{}", human.stdout);

    let plain = Server::start(&[]);
    let nojs = rnats(&plain, cfg.path(), &["account", "info"]).ok();
    assert!(
        nojs.stdout.contains("JetStream is not supported"),
        "{}",
        nojs.stdout
    );
}

#[test]
fn event_pretty_prints_advisories_and_connections() {
    let (server, _store) = js_server();
    let cfg = tempfile::tempdir().unwrap();
    let ev = Bg::spawn(&server, cfg.path(), &["event", "--js-advisory"]);
    ev.wait_for("Listening for events");
    let advisory = r#"{"type":"io.nats.jetstream.advisory.v1.test","id":"abc","timestamp":"2026-01-01T00:00:00Z","stream":"ORDERS","consumer":{"name":"C1"}}"#;
    rnats(
        &server,
        cfg.path(),
        &["pub", "$JS.EVENT.ADVISORY.TEST", advisory],
    )
    .ok();
    let seen = ev.wait_for("io.nats.jetstream.advisory.v1.test");
    assert!(seen.last().unwrap().contains("[abc]"), "{seen:?}");
    let rest = ev.wait_for("Subject: $JS.EVENT.ADVISORY.TEST");
    assert!(
        rest.iter().any(|l| l.contains("consumer.name: C1")),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("stream: ORDERS")),
        "{rest:?}"
    );

    // Connection events are the system account's.
    let sys_server = Server::start_with_config(SYS_CONFIG);
    let json = Bg::spawn(
        &sys_server,
        cfg.path(),
        &with_user("sys", &["event", "--connections", "--json"]),
    );
    json.wait_for("Listening for events");
    rnats(
        &sys_server,
        cfg.path(),
        &with_user("app", &["pub", "x", "y"]),
    )
    .ok();
    let lines = json.wait_for("client_connect");
    let v: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(v["type"], "io.nats.server.advisory.v1.client_connect");
}

#[test]
fn bench_modes_report_rates_and_latencies() {
    let (server, _store) = js_server();
    let cfg = tempfile::tempdir().unwrap();
    let r = |args: &[&str]| rnats(&server, cfg.path(), args);

    let sub = Bg::spawn(
        &server,
        cfg.path(),
        &["bench", "sub", "bench.core", "--msgs", "2000"],
    );
    sub.wait_for("Starting Sub benchmark");
    std::thread::sleep(Duration::from_millis(300));
    let pubr = r(&[
        "bench",
        "pub",
        "bench.core",
        "--msgs",
        "2000",
        "--clients",
        "2",
    ])
    .ok();
    assert!(pubr.stdout.contains("Pub stats: "), "{}", pubr.stdout);
    assert!(
        pubr.stdout.contains(" [2] "),
        "per-client lines: {}",
        pubr.stdout
    );
    assert!(
        !pubr.stderr.contains('\r'),
        "no progress bar off a terminal"
    );
    sub.wait_for("Sub stats: ");

    let serve = Bg::spawn(
        &server,
        cfg.path(),
        &["bench", "service", "serve", "bench.svc", "--msgs", "100"],
    );
    serve.wait_for("Starting Serve benchmark");
    std::thread::sleep(Duration::from_millis(300));
    let req = r(&["bench", "service", "request", "bench.svc", "--msgs", "100"]).ok();
    assert!(req.stdout.contains("Request stats: "), "{}", req.stdout);
    assert!(req.stdout.contains("Latencies: min "), "{}", req.stdout);
    assert!(req.stdout.contains("p99 "), "{}", req.stdout);

    let js = r(&[
        "bench", "js", "pub", "bench.js", "--create", "--msgs", "300", "--size", "1KB",
    ])
    .ok();
    assert!(
        js.stdout.contains("JetStream publish stats: "),
        "{}",
        js.stdout
    );
    r(&[
        "bench", "js", "pub", "bench.js", "--msgs", "200", "--batch", "50",
    ])
    .ok();
    let info = r(&["str", "info", "benchstream", "-j"]).ok().json();
    assert_eq!(info["state"]["messages"], 500);
    assert_eq!(
        info["state"]["bytes"].as_u64().map(|b| b > 300 * 1024),
        Some(true)
    );
    let consume = r(&["bench", "js", "consume", "bench.js", "--msgs", "500"]).ok();
    assert!(
        consume.stdout.contains("JetStream consume stats: "),
        "{}",
        consume.stdout
    );

    let put = r(&["bench", "kv", "put", "--msgs", "50"]).ok();
    assert!(put.stdout.contains("KV put stats: "), "{}", put.stdout);
    let get = r(&["bench", "kv", "get", "--msgs", "50"]).ok();
    assert!(get.stdout.contains("Latencies: "), "{}", get.stdout);
    let keys = r(&["kv", "ls", "benchbucket", "-j"]).ok().json();
    assert_eq!(keys.as_array().map(Vec::len), Some(50));
}

/// Backs up stream B (3 messages) from `from` and restores it into `to`
/// (B must not exist there) with the CLI's backup directory.
fn backup_and_restore(from: &Server, to: &Server, cfg: &Path) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("b");
    let dir = dir.to_str().unwrap();
    let out = rnats(from, cfg, &["str", "backup", "B", dir]).ok();
    assert!(out.stdout.contains("Received"), "{}", out.stdout);
    for f in ["backup.json", "stream.tar.s2"] {
        assert!(work.path().join("b").join(f).is_file(), "{f} missing");
    }
    let meta: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("b/backup.json")).unwrap()).unwrap();
    assert_eq!(meta["config"]["name"], "B");
    assert_eq!(meta["state"]["messages"], 3);
    let out = rnats(to, cfg, &["str", "restore", dir]).ok();
    assert!(out.stdout.contains("3 messages"), "{}", out.stdout);
    let info = rnats(to, cfg, &["str", "info", "B", "-j"]).ok().json();
    assert_eq!(info["state"]["messages"], 3, "{info}");
    assert_eq!(info["state"]["last_seq"], 3, "{info}");
    // A second restore finds the stream there and says so.
    let again = rnats(to, cfg, &["str", "restore", dir]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("10130"), "{}", again.stderr);
}

#[test]
fn stream_backup_and_restore_move_a_stream_between_servers() {
    let cfg = tempfile::tempdir().unwrap();
    let (from, _s1) = js_server();
    let (to, _s2) = js_server();
    let r = |args: &[&str]| rnats(&from, cfg.path(), args);
    r(&["str", "add", "B", "--subjects", "b.>", "--defaults"]).ok();
    for body in ["one", "two", "three"] {
        r(&["pub", "b.x", body]).ok();
    }
    backup_and_restore(&from, &to, cfg.path());
    // nats-server's backups restore into rnats and rnats's into nats-server.
    let Some(bin) = rnats_itest::cluster::reference_or_skip(
        "stream_backup_and_restore_move_a_stream_between_servers (reference part)",
    ) else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let port = rnats_itest::free_port().to_string();
    let args = [
        "-js",
        "-sd",
        d.path().to_str().unwrap(),
        "-a",
        "127.0.0.1",
        "-p",
        &port,
    ];
    let reference = Server::try_launch_bin(&bin, &args).unwrap_or_else(|e| panic!("{e}"));
    backup_and_restore(&to, &reference, cfg.path());
    let (third, _s3) = js_server();
    backup_and_restore(&reference, &third, cfg.path());
}

#[test]
fn stream_view_pages_through_messages_with_a_filter() {
    let (server, _store) = js_server();
    let cfg = tempfile::tempdir().unwrap();
    let r = |args: &[&str]| rnats(&server, cfg.path(), args);
    r(&["str", "add", "V", "--subjects", "v.>", "--defaults"]).ok();
    let empty = r(&["str", "view", "V"]).ok();
    assert!(
        empty.stdout.contains("No messages in stream V"),
        "{}",
        empty.stdout
    );
    for (subj, body) in [("v.a", "one"), ("v.b", "two"), ("v.a", "three")] {
        r(&["pub", subj, body]).ok();
    }
    let all = r(&["str", "view", "V"]).ok();
    for needle in [
        "[1] Subject: v.a",
        "[2] Subject: v.b",
        "[3] Subject: v.a",
        "three",
    ] {
        assert!(all.stdout.contains(needle), "{needle}: {}", all.stdout);
    }
    assert!(
        all.stdout.contains("Reached apparent end of data"),
        "{}",
        all.stdout
    );
    let only_a = r(&["str", "view", "V", "--subject", "v.a", "--raw"]).ok();
    let bodies: Vec<&str> = only_a.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(bodies, ["one", "three", "Reached apparent end of data"]);
    let from2 = r(&["str", "view", "V", "--id", "2", "--raw"]).ok();
    assert!(from2.stdout.starts_with("two\n"), "{}", from2.stdout);
    let missing = r(&["str", "view", "NOPE"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("(10059)"), "{}", missing.stderr);
}
