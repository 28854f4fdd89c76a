//! The `rnats` command-line tool (crate `rnats-cli`) driven as a subprocess
//! against a real server: stream, consumer, pub/sub, request/reply and KV
//! verbs, JSON output round trips through `--config`, and error exits.
//!
//! Needs `cargo build -p rnats-cli -p rnats-server` first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rnats_itest::{cli_bin, js_server, Server};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Run {
        assert_eq!(
            self.code, 0,
            "`rnats {what}` failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

fn cmd(server: &Server, args: &[&str]) -> Command {
    let mut c = Command::new(cli_bin());
    c.arg("-s").arg(server.url()).args(args);
    c.env_remove("NATS_URL");
    c
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `rnats -s <server> ARGS` with stdin closed.
fn rnats(server: &Server, args: &[&str]) -> Run {
    let out = cmd(server, args)
        .stdin(Stdio::null())
        .output()
        .expect("run rnats");
    finish(out)
}

/// Like [`rnats`] and assert success.
fn rnats_ok(server: &Server, args: &[&str]) -> Run {
    rnats(server, args).ok(&args.join(" "))
}

/// Run with `input` on stdin.
fn rnats_stdin(server: &Server, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let mut child = cmd(server, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rnats");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    finish(child.wait_with_output().expect("wait rnats"))
}

/// A long-running `rnats` (sub, reply) whose stderr lines are streamed.
struct Bg {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    fn spawn(server: &Server, args: &[&str]) -> Bg {
        let mut child = cmd(server, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rnats");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Bg { child, lines }
    }

    /// Wait for a stderr line containing `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("rnats did not print {needle:?} on stderr"),
            }
        }
    }

    /// Wait (bounded) for exit and return stdout.
    fn finish(mut self) -> (i32, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                use std::io::Read;
                self.child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                return (st.code().unwrap_or(-1), out);
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("rnats did not exit in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn without_metadata(mut cfg: Value) -> Value {
    cfg.as_object_mut().unwrap().remove("metadata");
    cfg
}

#[test]
fn stream_add_info_json_round_trips_through_config() {
    let (server, _store) = js_server();
    let r = rnats_ok(
        &server,
        &[
            "str",
            "add",
            "ORDERS",
            "--subjects",
            "ORDERS.*",
            "--defaults",
        ],
    );
    assert!(
        r.stdout.contains("Stream ORDERS was created"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Subjects: ORDERS.*"), "{}", r.stdout);
    assert!(r.stdout.contains("Duplicate Window: 2m0s"), "{}", r.stdout);

    let info = rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).json();
    let cfg = &info["config"];
    assert_eq!(cfg["name"], "ORDERS");
    assert_eq!(cfg["subjects"], serde_json::json!(["ORDERS.*"]));
    assert_eq!(cfg["storage"], "file");
    assert_eq!(cfg["retention"], "limits");
    assert_eq!(cfg["discard"], "old");
    assert_eq!(cfg["max_msgs"], -1);
    assert_eq!(cfg["max_bytes"], -1);
    assert_eq!(cfg["duplicate_window"], 120_000_000_000u64);
    assert_eq!(cfg["num_replicas"], 1);
    assert_eq!(info["state"]["messages"], 0);
    assert!(info.get("type").is_none(), "API type marker leaked: {info}");

    // Save the info, delete the stream and recreate it from the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.json");
    std::fs::write(
        &file,
        rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).stdout,
    )
    .unwrap();
    rnats_ok(&server, &["str", "rm", "ORDERS", "-f"]);
    let gone = rnats(&server, &["str", "info", "ORDERS"]);
    assert_ne!(gone.code, 0);
    let file_s = file.to_str().unwrap();
    rnats_ok(&server, &["str", "add", "--config", file_s]);
    let again = rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).json();
    assert_eq!(
        without_metadata(again["config"].clone()),
        without_metadata(cfg.clone())
    );

    // --config with a name argument creates a copy under that name.
    rnats_ok(
        &server,
        &[
            "str",
            "add",
            "COPY",
            "--config",
            file_s,
            "--subjects",
            "COPY.*",
        ],
    );
    let copy = rnats_ok(&server, &["str", "info", "COPY", "-j"]).json();
    assert_eq!(copy["config"]["name"], "COPY");
    assert_eq!(copy["config"]["subjects"], serde_json::json!(["COPY.*"]));
    assert_eq!(copy["config"]["max_age"], cfg["max_age"]);
}

#[test]
fn stream_add_with_seed_flags() {
    let (server, _store) = js_server();
    rnats_ok(
        &server,
        &[
            "str",
            "add",
            "ORDERS",
            "--subjects",
            "ORDERS.*",
            "--ack",
            "--max-msgs=-1",
            "--max-bytes=-1",
            "--max-age=1y",
            "--storage",
            "file",
            "--retention",
            "limits",
            "--max-msg-size=-1",
            "--discard=old",
            "--replicas",
            "1",
            "--dupe-window=2m",
        ],
    );
    let cfg = rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).json()["config"].clone();
    assert_eq!(cfg["max_age"], 31_536_000_000_000_000u64);
    assert_eq!(cfg["duplicate_window"], 120_000_000_000u64);
    assert_eq!(cfg["max_msg_size"], -1);
    // nats-server omits false booleans.
    assert_ne!(cfg["no_ack"], true);
    let human = rnats_ok(&server, &["str", "info", "ORDERS"]).stdout;
    assert!(human.contains("Maximum Age: 1y0d0h0m0s"), "{human}");

    rnats_ok(
        &server,
        &[
            "str",
            "add",
            "WQ",
            "--subjects",
            "wq.a,wq.b",
            "--storage",
            "memory",
            "--retention",
            "work",
            "--discard",
            "new",
            "--no-ack",
            "--max-msgs",
            "10",
            "--max-bytes",
            "1MB",
            "--max-msg-size",
            "1K",
            "--max-msgs-per-subject",
            "5",
            "--deny-delete",
            "--deny-purge",
            "--max-age",
            "1h",
            "--description",
            "work queue",
        ],
    );
    let cfg = rnats_ok(&server, &["str", "info", "WQ", "-j"]).json()["config"].clone();
    assert_eq!(cfg["subjects"], serde_json::json!(["wq.a", "wq.b"]));
    assert_eq!(cfg["storage"], "memory");
    assert_eq!(cfg["retention"], "workqueue");
    assert_eq!(cfg["discard"], "new");
    assert_eq!(cfg["no_ack"], true);
    assert_eq!(cfg["max_msgs"], 10);
    assert_eq!(cfg["max_bytes"], 1024 * 1024);
    assert_eq!(cfg["max_msg_size"], 1024);
    assert_eq!(cfg["max_msgs_per_subject"], 5);
    assert_ne!(cfg["allow_rollup_hdrs"], true);
    assert_eq!(cfg["deny_delete"], true);
    assert_eq!(cfg["deny_purge"], true);
    assert_eq!(cfg["max_age"], 3_600_000_000_000u64);
    assert_eq!(cfg["description"], "work queue");
    let human = rnats_ok(&server, &["str", "info", "WQ"]).stdout;
    assert!(human.contains("Retention: WorkQueue"), "{human}");
    assert!(human.contains("Maximum Bytes: 1.0 MiB"), "{human}");
    assert!(human.contains("Allows Purge: false"), "{human}");

    // Roll-ups need purges; the server's refusal is reported with its code.
    let both = rnats(
        &server,
        &[
            "str",
            "add",
            "RU",
            "--subjects",
            "ru",
            "--allow-rollup",
            "--deny-purge",
        ],
    );
    assert_ne!(both.code, 0);
    assert!(
        both.stderr
            .contains("could not create Stream: roll-ups require the purge permission (10052)"),
        "{}",
        both.stderr
    );
    rnats_ok(
        &server,
        &["str", "add", "RU", "--subjects", "ru", "--allow-rollup"],
    );
    let cfg = rnats_ok(&server, &["str", "info", "RU", "-j"]).json()["config"].clone();
    assert_eq!(cfg["allow_rollup_hdrs"], true);

    // --output writes the config instead of creating the stream.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.json");
    rnats_ok(
        &server,
        &[
            "str",
            "add",
            "SAVED",
            "--subjects",
            "saved",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(saved["name"], "SAVED");
    assert_ne!(rnats(&server, &["str", "info", "SAVED"]).code, 0);

    // A server-side validation error exits non-zero with its text.
    let bad = rnats(&server, &["str", "add", "BAD", "--subjects", "ORDERS.new"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("could not create Stream"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("subjects overlap"), "{}", bad.stderr);
}

#[test]
fn stream_messages_ls_report_purge_get_rmm() {
    let (server, _store) = js_server();
    rnats_ok(
        &server,
        &[
            "str",
            "add",
            "ORDERS",
            "--subjects",
            "ORDERS.*",
            "--defaults",
        ],
    );
    let p = rnats_ok(
        &server,
        &[
            "pub",
            "ORDERS.new",
            "ORDER {{Count}}",
            "--count",
            "3",
            "-H",
            "X-Seq:{{Count}}",
        ],
    );
    assert_eq!(
        p.stderr
            .matches("Published 7 bytes to \"ORDERS.new\"")
            .count(),
        3,
        "{}",
        p.stderr
    );
    let info = rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).json();
    assert_eq!(info["state"]["messages"], 3);
    assert_eq!(info["state"]["last_seq"], 3);

    let got = rnats_ok(&server, &["str", "get", "ORDERS", "2"]).stdout;
    assert!(got.contains("Item: ORDERS#2"), "{got}");
    assert!(got.contains("on Subject ORDERS.new"), "{got}");
    assert!(got.contains("X-Seq: 2"), "{got}");
    assert!(got.contains("ORDER 2"), "{got}");
    let gj = rnats_ok(&server, &["str", "get", "ORDERS", "3", "-j"]).json();
    assert_eq!(gj["seq"], 3);
    assert_eq!(gj["data"], "ORDER 3");

    // Body from STDIN; JetStream publish prints the ack.
    let js = rnats_stdin(&server, &["pub", "ORDERS.stdin", "-J"], "from stdin").ok("pub -J");
    assert!(
        js.stderr.contains("Stored in Stream: ORDERS Sequence: 4"),
        "{}",
        js.stderr
    );
    let gj = rnats_ok(&server, &["str", "get", "ORDERS", "4", "-j"]).json();
    assert_eq!(gj["data"], "from stdin");

    let names = rnats_ok(&server, &["str", "ls", "--names"]).stdout;
    assert_eq!(names.trim(), "ORDERS");
    let table = rnats_ok(&server, &["str", "ls"]).stdout;
    assert!(table.contains("│ ORDERS"), "{table}");
    let report = rnats_ok(&server, &["s", "report"]).stdout;
    let row = report
        .lines()
        .find(|l| l.contains("ORDERS"))
        .expect("report row");
    let cells: Vec<&str> = row.split('│').map(str::trim).collect();
    assert_eq!(&cells[1..6], &["ORDERS", "File", "", "0", "4"], "{report}");

    rnats_ok(&server, &["str", "rmm", "ORDERS", "1", "-f"]);
    let info = rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).json();
    assert_eq!(info["state"]["messages"], 3);
    let missing = rnats(&server, &["str", "get", "ORDERS", "1"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("no message found (10037)"),
        "{}",
        missing.stderr
    );

    let purged = rnats_ok(&server, &["str", "purge", "ORDERS", "-f", "--keep", "1"]).stdout;
    assert!(purged.contains("Purged 2 messages from ORDERS"), "{purged}");
    let info = rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).json();
    assert_eq!(info["state"]["messages"], 1);
    rnats_ok(
        &server,
        &["str", "purge", "ORDERS", "-f", "--subject", "ORDERS.stdin"],
    );
    let info = rnats_ok(&server, &["str", "info", "ORDERS", "-j"]).json();
    assert_eq!(info["state"]["messages"], 0);

    // Destructive verbs refuse without --force when not interactive.
    let refused = rnats(&server, &["str", "rm", "ORDERS"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    rnats_ok(&server, &["str", "info", "ORDERS"]);

    rnats_ok(&server, &["str", "rm", "ORDERS", "-f"]);
    let gone = rnats(&server, &["str", "info", "ORDERS"]);
    assert_ne!(gone.code, 0);
    assert!(
        gone.stderr.contains("stream not found (10059)"),
        "{}",
        gone.stderr
    );
    assert!(gone.stdout.is_empty(), "{}", gone.stdout);
    let empty = rnats_ok(&server, &["str", "ls"]).stdout;
    assert!(empty.contains("No Streams defined"), "{empty}");
}

#[test]
fn consumer_add_info_ls_next_rm() {
    let (server, _store) = js_server();
    rnats_ok(
        &server,
        &[
            "str",
            "add",
            "ORDERS",
            "--subjects",
            "ORDERS.*",
            "--defaults",
        ],
    );
    let added = rnats_ok(
        &server,
        &[
            "con",
            "add",
            "ORDERS",
            "DISPATCH",
            "--filter",
            "ORDERS.processed",
            "--ack",
            "explicit",
            "--pull",
            "--deliver",
            "all",
            "--sample",
            "100",
            "--max-deliver",
            "20",
            "--replay",
            "instant",
            "--max-pending",
            "0",
        ],
    )
    .stdout;
    assert!(
        added.contains("Information for Consumer ORDERS > DISPATCH"),
        "{added}"
    );
    assert!(added.contains("Pull Mode: true"), "{added}");

    let info = rnats_ok(&server, &["con", "info", "ORDERS", "DISPATCH", "-j"]).json();
    let cfg = &info["config"];
    assert_eq!(cfg["durable_name"], "DISPATCH");
    assert_eq!(cfg["filter_subject"], "ORDERS.processed");
    assert_eq!(cfg["ack_policy"], "explicit");
    assert_eq!(cfg["deliver_policy"], "all");
    assert_eq!(cfg["replay_policy"], "instant");
    assert_eq!(cfg["max_deliver"], 20);
    assert_eq!(cfg["sample_freq"], "100%");
    assert!(cfg
        .get("deliver_subject")
        .is_none_or(|v| v.is_null() || v == ""));

    // Round trip through --config under another name.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.json");
    std::fs::write(&file, serde_json::to_vec(&info).unwrap()).unwrap();
    rnats_ok(
        &server,
        &[
            "con",
            "add",
            "ORDERS",
            "COPY",
            "--config",
            file.to_str().unwrap(),
        ],
    );
    let copy = rnats_ok(&server, &["con", "info", "ORDERS", "COPY", "-j"]).json();
    assert_eq!(copy["config"]["filter_subject"], "ORDERS.processed");
    assert_eq!(copy["config"]["max_deliver"], 20);

    rnats_ok(
        &server,
        &[
            "con",
            "add",
            "ORDERS",
            "MONITOR",
            "--filter",
            "",
            "--ack",
            "none",
            "--target",
            "monitor.ORDERS",
            "--deliver",
            "last",
            "--replay",
            "instant",
        ],
    );
    let mon = rnats_ok(&server, &["con", "info", "ORDERS", "MONITOR", "-j"]).json();
    assert_eq!(mon["config"]["deliver_subject"], "monitor.ORDERS");
    assert_eq!(mon["config"]["deliver_policy"], "last");
    assert_eq!(mon["config"]["ack_policy"], "none");

    let names = rnats_ok(&server, &["con", "ls", "ORDERS", "--names"]).stdout;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        vec!["COPY", "DISPATCH", "MONITOR"]
    );

    for i in 1..=3 {
        rnats_ok(&server, &["pub", "ORDERS.processed", &format!("order {i}")]);
    }
    let next = rnats_ok(&server, &["con", "next", "ORDERS", "DISPATCH"]).stdout;
    assert!(
        next.contains("subj: ORDERS.processed / tries: 1 / cons seq: 1 / str seq: 1 / pending: 2"),
        "{next}"
    );
    assert!(next.contains("order 1"), "{next}");
    assert!(next.contains("Acknowledged message"), "{next}");
    let info = rnats_ok(&server, &["con", "info", "ORDERS", "DISPATCH", "-j"]).json();
    assert_eq!(info["num_pending"], 2);
    assert_eq!(info["num_ack_pending"], 0);

    let noack = rnats_ok(
        &server,
        &[
            "con", "next", "ORDERS", "DISPATCH", "--no-ack", "--count", "2", "--raw",
        ],
    )
    .stdout;
    assert_eq!(
        noack.lines().collect::<Vec<_>>(),
        vec!["order 2", "order 3"]
    );
    let info = rnats_ok(&server, &["con", "info", "ORDERS", "DISPATCH", "-j"]).json();
    assert_eq!(info["num_ack_pending"], 2);
    assert_eq!(info["num_pending"], 0);

    let empty = rnats(
        &server,
        &[
            "--timeout",
            "1s",
            "con",
            "next",
            "ORDERS",
            "COPY",
            "--count",
            "4",
        ],
    );
    assert_ne!(
        empty.code, 0,
        "fetching past the end must fail: {}",
        empty.stdout
    );
    assert_eq!(
        empty.stdout.matches("Acknowledged message").count(),
        3,
        "{}",
        empty.stdout
    );

    rnats_ok(&server, &["con", "rm", "ORDERS", "COPY", "-f"]);
    let gone = rnats(&server, &["con", "info", "ORDERS", "COPY"]);
    assert_ne!(gone.code, 0);
    assert!(
        gone.stderr.contains("consumer not found (10014)"),
        "{}",
        gone.stderr
    );
}

#[test]
fn pub_sub_with_queue_headers_and_count() {
    let (server, _store) = js_server();
    let sub = Bg::spawn(
        &server,
        &["sub", "greet.*", "--queue", "q1", "--count", "2"],
    );
    sub.wait_for("Subscribing on greet.*");
    rnats_ok(
        &server,
        &[
            "pub",
            "greet.a",
            "hello {{Count}}",
            "-H",
            "X-Test:yes",
            "--count",
            "2",
            "--sleep",
            "10ms",
        ],
    );
    let (code, out) = sub.finish();
    assert_eq!(code, 0);
    assert!(out.contains("[#1] Received on \"greet.a\""), "{out}");
    assert!(out.contains("[#2] Received on \"greet.a\""), "{out}");
    assert!(out.contains("X-Test: yes"), "{out}");
    assert!(out.contains("hello 1") && out.contains("hello 2"), "{out}");

    let raw = Bg::spawn(&server, &["sub", "raw.x", "--raw", "--count", "1"]);
    raw.wait_for("Subscribing on raw.x");
    rnats_ok(&server, &["pub", "raw.x", "just the body"]);
    let (code, out) = raw.finish();
    assert_eq!(code, 0);
    assert_eq!(out, "just the body\n");
}

#[test]
fn req_against_reply() {
    let (server, _store) = js_server();
    let rep = Bg::spawn(
        &server,
        &["reply", "svc.echo", "re: {{Request}}", "--count", "3"],
    );
    rep.wait_for("Listening on \"svc.echo\"");
    let r = rnats_ok(
        &server,
        &["req", "svc.echo", "ORDER {{Count}}", "--count", "2"],
    );
    assert!(r.stdout.contains("re: ORDER 1"), "{}", r.stdout);
    assert!(r.stdout.contains("re: ORDER 2"), "{}", r.stdout);
    assert_eq!(
        r.stderr.matches("Received with rtt").count(),
        2,
        "{}",
        r.stderr
    );
    let raw = rnats_ok(&server, &["req", "svc.echo", "x", "--raw"]);
    assert!(raw.stdout.starts_with("re: x\n"), "{}", raw.stdout);
    let (code, out) = rep.finish();
    assert_eq!(code, 0);
    assert!(out.contains("ORDER 1") && out.contains("ORDER 2"), "{out}");

    // --command runs a shell command with the request body on STDIN.
    let cmd = Bg::spawn(
        &server,
        &[
            "reply",
            "svc.upper",
            "--command",
            "tr a-z A-Z",
            "--count",
            "1",
        ],
    );
    cmd.wait_for("Listening on \"svc.upper\"");
    let r = rnats_ok(&server, &["req", "svc.upper", "shout", "--raw"]);
    assert!(r.stdout.starts_with("SHOUT"), "{}", r.stdout);
    drop(cmd);

    let none = rnats_ok(&server, &["req", "svc.nobody", "x"]);
    assert!(
        none.stderr.contains("No responders are available"),
        "{}",
        none.stderr
    );
}

#[test]
fn kv_verbs() {
    let (server, _store) = js_server();
    rnats_ok(&server, &["kv", "add", "CFG", "--history", "5"]);
    let info = rnats_ok(&server, &["str", "info", "KV_CFG", "-j"]).json();
    assert_eq!(info["config"]["max_msgs_per_subject"], 5);
    rnats_ok(&server, &["kv", "put", "CFG", "color", "red"]);
    rnats_stdin(&server, &["kv", "put", "CFG", "color"], "blue").ok("kv put stdin");
    let raw = rnats_ok(&server, &["kv", "get", "CFG", "color", "--raw"]).stdout;
    assert_eq!(raw, "blue\n");
    let get = rnats_ok(&server, &["kv", "get", "CFG", "color"]).stdout;
    assert!(
        get.starts_with("CFG > color revision: 2 created @ "),
        "{get}"
    );
    let hist = rnats_ok(&server, &["kv", "history", "CFG", "color", "-j"]).json();
    let values: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["red", "blue"]);
    assert_eq!(
        rnats_ok(&server, &["kv", "ls", "--names"]).stdout.trim(),
        "CFG"
    );
    assert_eq!(
        rnats_ok(&server, &["kv", "ls", "CFG"]).stdout.trim(),
        "color"
    );
    rnats_ok(&server, &["kv", "del", "CFG", "color", "-f"]);
    let gone = rnats(&server, &["kv", "get", "CFG", "color"]);
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains("key not found"), "{}", gone.stderr);
    rnats_ok(&server, &["kv", "del", "CFG", "-f"]);
    assert_ne!(rnats(&server, &["str", "info", "KV_CFG"]).code, 0);
}

#[test]
fn connection_errors_exit_non_zero() {
    let port = rnats_itest::free_port();
    let out = Command::new(cli_bin())
        .args([
            "-s",
            &format!("nats://127.0.0.1:{port}"),
            "--timeout",
            "1s",
            "str",
            "ls",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = finish(out);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.starts_with("rnats: error: could not connect"),
        "{}",
        r.stderr
    );

    // JetStream verbs against a server without JetStream fail clearly.
    let plain = Server::start(&[]);
    let r = rnats(&plain, &["str", "ls"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("JetStream"), "{}", r.stderr);

    // NATS_URL is honoured when -s is absent.
    let (server, _store) = js_server();
    let out = Command::new(cli_bin())
        .args(["str", "ls", "--names"])
        .env("NATS_URL", server.url())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(finish(out).code, 0);
}

#[test]
fn stream_edit_and_copy_change_only_what_the_flags_say() {
    let (server, _store) = js_server();
    rnats_ok(
        &server,
        &[
            "stream",
            "add",
            "ORDERS",
            "--subjects",
            "orders.>",
            "--defaults",
            "--max-age",
            "1h",
        ],
    );
    // Not interactive and no -f: refused, nothing changed.
    let refused = rnats(&server, &["stream", "edit", "ORDERS", "--max-msgs", "10"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let edited = rnats_ok(
        &server,
        &[
            "stream",
            "edit",
            "ORDERS",
            "--max-msgs",
            "10",
            "--subjects",
            "orders.>",
            "returns.>",
            "-f",
            "-j",
        ],
    )
    .json();
    assert_eq!(edited["config"]["max_msgs"], 10);
    assert_eq!(
        edited["config"]["subjects"],
        serde_json::json!(["orders.>", "returns.>"])
    );
    assert_eq!(
        edited["config"]["max_age"], 3_600_000_000_000u64,
        "max_age kept"
    );
    let same = rnats(
        &server,
        &["stream", "edit", "ORDERS", "--max-msgs", "10", "-f"],
    );
    assert_ne!(same.code, 0, "no difference is an error");
    assert!(same.stderr.contains("no difference"), "{}", same.stderr);

    let copied = rnats_ok(
        &server,
        &[
            "stream",
            "cp",
            "ORDERS",
            "ARCHIVE",
            "--subjects",
            "archive.>",
            "-j",
        ],
    )
    .json();
    assert_eq!(copied["config"]["name"], "ARCHIVE");
    assert_eq!(
        copied["config"]["subjects"],
        serde_json::json!(["archive.>"])
    );
    assert_eq!(copied["config"]["max_msgs"], 10);
    assert_eq!(copied["config"]["max_age"], 3_600_000_000_000u64);
}
