//! Interactive prompts of the `rnats` CLI, driven through a pseudo-terminal:
//! `stream add` and `consumer add` ask (with the nats CLI's questions and
//! defaults) for what no flag gave, `stream rm` asks for confirmation, and
//! off a terminal or with `--defaults` nothing is asked. Created configs are
//! checked through the JetStream API with async-nats.
//!
//! Needs `cargo build -p rnats-cli -p rnats-server` first.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rnats_itest::{cli_bin, js_server, Server};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// `rnats` running with stdin, stdout and stderr on a pseudo-terminal.
struct Tty {
    child: Child,
    master: File,
    /// Everything the terminal showed (prompts, echoed answers, output).
    screen: Arc<Mutex<String>>,
    /// How far [`Tty::expect`] has matched.
    seen: usize,
}

impl Tty {
    fn spawn(server: &Server, args: &[&str]) -> Tty {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty only writes the two descriptors it returns.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) = unsafe { (File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let on_tty = || Stdio::from(slave.try_clone().expect("dup pty slave"));
        let child = Command::new(cli_bin())
            .arg("-s")
            .arg(server.url())
            .args(args)
            .env_remove("NATS_URL")
            .stdin(on_tty())
            .stdout(on_tty())
            .stderr(on_tty())
            .spawn()
            .expect("spawn rnats");
        drop(slave);
        let screen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().expect("dup pty master");
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and closed the slave.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("screen")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Tty {
            child,
            master,
            screen,
            seen: 0,
        }
    }

    fn screen(&self) -> String {
        self.screen.lock().expect("screen").clone()
    }

    /// Wait until the terminal shows `text` after what was matched before.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if let Some(at) = screen[self.seen..].find(text) {
                self.seen += at + text.len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "terminal never showed {text:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the question `prompt` and type `answer` + Enter.
    fn answer(&mut self, prompt: &str, answer: &str) {
        self.expect(prompt);
        self.master
            .write_all(format!("{answer}\r").as_bytes())
            .expect("type on pty");
    }

    /// Wait (bounded) for exit; returns the exit code and the whole screen.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait rnats") {
                // Let the reader drain what the child wrote last.
                std::thread::sleep(Duration::from_millis(100));
                return (st.code().unwrap_or(-1), self.screen());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("rnats did not exit; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One JetStream API request through async-nats; returns the JSON answer.
fn api(server: &Server, subject: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = rnats_itest::connect(server).await;
        let msg = client
            .request(format!("$JS.API.{subject}"), bytes::Bytes::new())
            .await
            .expect("JetStream API request");
        serde_json::from_slice(&msg.payload).expect("JSON API answer")
    })
}

/// `rnats` with stdin, stdout and stderr not on a terminal.
fn rnats_piped(server: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cli_bin())
        .arg("-s")
        .arg(server.url())
        .args(args)
        .env_remove("NATS_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run rnats");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SEC: u64 = 1_000_000_000;

#[test]
fn stream_add_asks_every_question_in_order() {
    let (server, _store) = js_server();
    let mut t = Tty::spawn(&server, &["str", "add"]);
    t.answer("? Stream Name ", "");
    t.answer("Value is required", "ORDERS");
    t.answer("? Subjects ", "ORDERS.new, ORDERS.done");
    t.answer("? Storage [file/memory] (file) ", "memory");
    t.answer("? Replication (1) ", "");
    t.answer(
        "? Retention Policy [Limits/Interest/Work Queue] (Limits) ",
        "?",
    );
    t.expect("as long as there are Consumers (Interest)");
    t.answer(
        "? Retention Policy [Limits/Interest/Work Queue] (Limits) ",
        "work queue",
    );
    t.answer("? Discard Policy [New/Old] (Old) ", "new");
    t.answer("? Stream Messages Limit (-1) ", "1000");
    t.answer("? Per Subject Messages Limit (-1) ", "lots");
    t.answer("X Sorry, your reply was invalid", "10");
    t.answer("? Total Stream Size (-1) ", "1MB");
    t.answer("? Message TTL (-1) ", "1h");
    t.answer("? Max Message Size (-1) ", "");
    t.answer("? Duplicate tracking time window (2m0s) ", "");
    t.answer("? Allow message Roll-ups (y/N) ", "y");
    t.answer("? Allow message deletion (Y/n) ", "n");
    t.answer("? Allow purging subjects or the entire stream (Y/n) ", "");
    t.expect("Stream ORDERS was created");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");

    let cfg = &api(&server, "STREAM.INFO.ORDERS")["config"];
    assert_eq!(
        cfg["subjects"],
        serde_json::json!(["ORDERS.new", "ORDERS.done"])
    );
    assert_eq!(cfg["storage"], "memory");
    assert_eq!(cfg["num_replicas"], 1);
    assert_eq!(cfg["retention"], "workqueue");
    assert_eq!(cfg["discard"], "new");
    assert_eq!(cfg["max_msgs"], 1000);
    assert_eq!(cfg["max_msgs_per_subject"], 10);
    assert_eq!(cfg["max_bytes"], 1024 * 1024);
    assert_eq!(cfg["max_age"], 3600 * SEC);
    assert_eq!(cfg["max_msg_size"], -1);
    assert_eq!(cfg["duplicate_window"], 120 * SEC);
    assert_eq!(cfg["allow_rollup_hdrs"], true);
    assert_eq!(cfg["deny_delete"], true);
    assert_eq!(cfg["deny_purge"], false);
}

#[test]
fn stream_add_asks_only_what_flags_left_open() {
    let (server, _store) = js_server();
    let mut t = Tty::spawn(
        &server,
        &[
            "str",
            "add",
            "EVENTS",
            "--subjects",
            "events.>",
            "--storage",
            "file",
            "--replicas",
            "1",
            "--retention",
            "limits",
            "--discard",
            "old",
            "--max-msgs",
            "5",
            "--max-msgs-per-subject",
            "2",
            "--max-bytes",
            "-1",
            "--max-age",
            "30s",
            "--max-msg-size",
            "-1",
            "--allow-rollup",
            "--deny-delete",
            "--no-deny-purge",
        ],
    );
    // The window defaults to the max age when that is under two minutes.
    t.answer("? Duplicate tracking time window (30s) ", "");
    t.expect("Stream EVENTS was created");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(screen.matches("? ").count(), 1, "{screen}");
    let cfg = &api(&server, "STREAM.INFO.EVENTS")["config"];
    assert_eq!(cfg["duplicate_window"], 30 * SEC);
    assert_eq!(cfg["max_msgs_per_subject"], 2);
    assert_eq!(cfg["deny_delete"], true);
}

#[test]
fn consumer_add_asks_for_stream_pull_settings_and_backoff() {
    let (server, _store) = js_server();
    for (name, subject) in [("ORDERS", "ORDERS.*"), ("EVENTS", "events.>")] {
        let (code, _, err) = rnats_piped(&server, &["str", "add", name, "--subjects", subject]);
        assert_eq!(code, 0, "{err}");
    }
    let mut t = Tty::spawn(&server, &["con", "add"]);
    t.answer("? Select a Stream [EVENTS/ORDERS] (EVENTS) ", "orders");
    t.answer("? Consumer name ", "DISPATCH");
    t.answer("? Delivery target (empty for Pull Consumers) ", "");
    t.answer(
        "? Start policy (all, new, last, subject, 1h, msg sequence) (all) ",
        "5",
    );
    t.answer(
        "? Acknowledgment policy [explicit/all/none] (explicit) ",
        "",
    );
    t.answer("? Replay policy [instant/original] (instant) ", "");
    t.answer("? Filter Stream by subjects (blank for all) ", "ORDERS.new");
    t.answer("? Maximum Allowed Deliveries (-1) ", "10");
    t.answer("? Maximum Acknowledgments Pending (0) ", "50");
    t.answer("? Deliver headers only without bodies (y/N) ", "");
    t.answer("? Add a Retry Backoff Policy (y/N) ", "y");
    t.answer("? Backoff policy [linear/none] (none) ", "linear");
    t.answer("? Minimum retry time (1m) ", "1s");
    t.answer("? Maximum retry time (10m) ", "5s");
    t.answer("? Number of steps to generate in the policy (20) ", "5");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains("Idle Heartbeat"),
        "pull consumer: {screen}"
    );

    let cfg = &api(&server, "CONSUMER.INFO.ORDERS.DISPATCH")["config"];
    assert_eq!(cfg["durable_name"], "DISPATCH");
    assert_eq!(cfg["deliver_policy"], "by_start_sequence");
    assert_eq!(cfg["opt_start_seq"], 5);
    assert_eq!(cfg["ack_policy"], "explicit");
    assert_eq!(cfg["replay_policy"], "instant");
    assert_eq!(cfg["filter_subject"], "ORDERS.new");
    assert_eq!(cfg["max_deliver"], 10);
    assert_eq!(cfg["max_ack_pending"], 50);
    assert_eq!(
        cfg["backoff"],
        serde_json::json!([SEC, 2 * SEC, 3 * SEC, 4 * SEC, 5 * SEC])
    );
    assert!(cfg.get("deliver_subject").is_none(), "{cfg}");
}

#[test]
fn consumer_add_push_asks_push_questions_and_skips_ack_ones() {
    let (server, _store) = js_server();
    let (code, _, err) = rnats_piped(&server, &["str", "add", "ORDERS", "--subjects", "ORDERS.*"]);
    assert_eq!(code, 0, "{err}");
    let mut t = Tty::spawn(&server, &["con", "add", "ORDERS", "MONITOR"]);
    t.answer(
        "? Delivery target (empty for Pull Consumers) ",
        "monitor.ORDERS",
    );
    t.answer("? Delivery Queue Group ", "");
    t.answer(
        "? Start policy (all, new, last, subject, 1h, msg sequence) (all) ",
        "last",
    );
    // Push consumers default to no acknowledgements, like the nats CLI.
    t.answer("? Acknowledgment policy [explicit/all/none] (none) ", "");
    t.answer("? Replay policy [instant/original] (instant) ", "original");
    t.answer("? Filter Stream by subjects (blank for all) ", "");
    t.answer("? Idle Heartbeat (0s) ", "10s");
    t.answer("? Enable Flow Control, ie --flow-control (y/N) ", "y");
    t.answer("? Deliver headers only without bodies (y/N) ", "yes");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    for never in ["Maximum Allowed Deliveries", "Backoff", "Consumer name"] {
        assert!(!screen.contains(never), "asked {never:?}: {screen}");
    }

    let cfg = &api(&server, "CONSUMER.INFO.ORDERS.MONITOR")["config"];
    assert_eq!(cfg["deliver_subject"], "monitor.ORDERS");
    assert_eq!(cfg["deliver_policy"], "last");
    assert_eq!(cfg["ack_policy"], "none");
    assert_eq!(cfg["replay_policy"], "original");
    assert_eq!(cfg["idle_heartbeat"], 10 * SEC);
    assert_eq!(cfg["flow_control"], true);
    assert_eq!(cfg["headers_only"], true);
    assert!(cfg.get("filter_subject").is_none(), "{cfg}");
}

#[test]
fn stream_rm_confirms_on_a_terminal() {
    let (server, _store) = js_server();
    let (code, _, err) = rnats_piped(&server, &["str", "add", "ORDERS", "--subjects", "ORDERS.*"]);
    assert_eq!(code, 0, "{err}");

    let mut t = Tty::spawn(&server, &["str", "rm", "ORDERS"]);
    t.answer("? Really delete Stream ORDERS (y/N) ", "n");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(
        api(&server, "STREAM.INFO.ORDERS")["config"]["name"],
        "ORDERS"
    );

    let mut t = Tty::spawn(&server, &["str", "rm", "ORDERS"]);
    t.answer("? Really delete Stream ORDERS (y/N) ", "y");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(
        api(&server, "STREAM.INFO.ORDERS")["error"]["err_code"],
        10059,
        "stream should be gone"
    );
}

#[test]
fn no_questions_off_a_terminal_or_with_defaults() {
    let (server, _store) = js_server();
    // Piped: defaults everywhere, nothing printed that looks like a question.
    let (code, out, err) = rnats_piped(&server, &["str", "add", "PLAIN", "--subjects", "plain"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("? ") && !err.contains("? "), "{out}{err}");
    let cfg = &api(&server, "STREAM.INFO.PLAIN")["config"];
    assert_eq!(cfg["storage"], "file");
    assert_eq!(cfg["retention"], "limits");
    assert_eq!(cfg["discard"], "old");
    assert_eq!(cfg["deny_delete"], false);
    assert_eq!(cfg["duplicate_window"], 120 * SEC);

    let (code, out, err) = rnats_piped(&server, &["con", "add", "PLAIN", "PULL"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("? "), "{out}");
    let cfg = &api(&server, "CONSUMER.INFO.PLAIN.PULL")["config"];
    assert_eq!(cfg["ack_policy"], "explicit");
    assert_eq!(cfg["deliver_policy"], "all");
    assert!(cfg.get("deliver_subject").is_none(), "{cfg}");

    // What cannot be defaulted fails instead of waiting for an answer.
    let (code, _, err) = rnats_piped(&server, &["str", "add"]);
    assert_ne!(code, 0);
    assert!(err.contains("a stream name is required"), "{err}");
    let (code, _, err) = rnats_piped(&server, &["str", "rm", "PLAIN"]);
    assert_ne!(code, 0);
    assert!(err.contains("without --force"), "{err}");

    // On a terminal, --defaults answers every question itself.
    let t = Tty::spawn(
        &server,
        &["str", "add", "DEF", "--subjects", "def", "--defaults"],
    );
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Stream DEF was created"), "{screen}");
    assert!(!screen.contains("? "), "{screen}");
    let t = Tty::spawn(&server, &["con", "add", "DEF", "C1", "--defaults"]);
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("? "), "{screen}");
    assert_eq!(
        api(&server, "CONSUMER.INFO.DEF.C1")["config"]["ack_policy"],
        "explicit"
    );
}
