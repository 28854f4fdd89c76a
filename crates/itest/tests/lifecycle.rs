//! Process lifecycle: SIGTERM and SIGINT make the server log its shutdown
//! (`Trapped "terminated" signal`, `Initiating Shutdown...`, `Server
//! Exiting..`), close client connections and exit 0; `-p -1` picks a random
//! port announced on the `Listening for client connections on` line; lame
//! duck mode (SIGUSR2) announces `"ldm":true` in an INFO to connected
//! clients, stops accepting connections, closes the existing ones after the
//! grace period and exits.
//!
//! nats-server rejects a `lame_duck_duration` below 30 s, so the test uses
//! 30 s; with a handful of clients it still closes them about one second
//! apart after the 1 s grace period.

use std::time::{Duration, Instant};

use async_nats::Event;
use rnats_itest::{connect, sync, within, RawClient, Server, LISTENING_LINE};

async fn shutdown_on_signal(sig: i32, trapped: &str) {
    let mut server = Server::start(&[]);
    within(Duration::from_secs(20), "signal shutdown", async {
        let mut raw = RawClient::connect(server.port()).await;
        raw.handshake().await;
        server.signal(sig);
        let status = server
            .wait_exit_async(Duration::from_secs(10))
            .await
            .expect("server did not exit within 10s of the signal");
        assert_eq!(status.code(), Some(0), "exit status {status:?}");
        let (_, closed) = raw.wait_closed(Duration::from_secs(5)).await;
        assert!(closed, "client connection not closed by shutdown");
        let log = server.log();
        for line in [trapped, "Initiating Shutdown...", "Server Exiting.."] {
            assert!(log.contains(line), "log lacks {line:?}:\n{log}");
        }
    })
    .await;
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    shutdown_on_signal(libc::SIGTERM, "Trapped \"terminated\" signal").await;
}

#[tokio::test]
async fn sigint_exits_cleanly() {
    shutdown_on_signal(libc::SIGINT, "Trapped \"interrupt\" signal").await;
}

#[tokio::test]
async fn random_port() {
    let server = Server::launch(&["-a", "127.0.0.1", "-p", "-1"]);
    within(Duration::from_secs(20), "random port", async {
        let log = server.log();
        let line = log
            .lines()
            .find(|l| l.contains(LISTENING_LINE))
            .unwrap_or_else(|| panic!("no listening line in log:\n{log}"));
        assert!(
            line.contains(&format!("127.0.0.1:{}", server.port())),
            "{line}"
        );
        let port = server.port();
        assert!(port != 0 && port != 4222 && port != u16::MAX, "port {port}");
        let client = connect(&server).await;
        assert_eq!(client.server_info().port, port);
        sync(&client).await;
    })
    .await;
}

#[tokio::test]
async fn lame_duck_mode() {
    let mut server =
        Server::start_with_config("lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\n");
    let port = server.port();
    within(Duration::from_secs(30), "lame duck", async {
        let mut a = RawClient::connect(port).await;
        a.handshake().await;
        let mut b = RawClient::connect(port).await;
        b.handshake().await;
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .max_reconnects(Some(1))
            .event_callback(move |e| {
                let tx = events_tx.clone();
                async move {
                    let _ = tx.send(e);
                }
            })
            .connect(server.url())
            .await
            .unwrap();
        sync(&client).await;
        assert!(!client.server_info().lame_duck_mode);

        let signalled = Instant::now();
        server.signal(libc::SIGUSR2);

        // Connected clients are told via an INFO with "ldm":true.
        let (mut out, closed) = a
            .read_until_contains(b"\"ldm\":true", Duration::from_secs(5))
            .await;
        let (rest, _) = a.read_until_contains(b"\r\n", Duration::from_secs(5)).await;
        out.extend_from_slice(&rest);
        let text = String::from_utf8_lossy(&out).into_owned();
        let info_line = text
            .split("\r\n")
            .find(|l| l.starts_with("INFO ") && l.contains("\"ldm\":true"))
            .unwrap_or_else(|| panic!("no ldm INFO (closed: {closed}); got {text:?}"));
        let info: serde_json::Value =
            serde_json::from_str(&info_line["INFO ".len()..]).expect("ldm INFO is JSON");
        assert_eq!(info["ldm"], true);

        // The async-nats client notices lame duck mode too.
        within(Duration::from_secs(5), "LameDuckMode event", async {
            loop {
                match events.recv().await {
                    Some(Event::LameDuckMode) => break,
                    Some(_) => continue,
                    None => panic!("event channel closed"),
                }
            }
        })
        .await;

        // No new connections are accepted.
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        assert!(
            refused.is_err(),
            "new connection accepted while in lame duck mode"
        );

        // Existing connections are closed (after the grace period), well
        // within the lame duck duration.
        let (_, closed_a) = a.wait_closed(Duration::from_secs(10)).await;
        let (out_b, closed_b) = b.wait_closed(Duration::from_secs(10)).await;
        assert!(closed_a && closed_b, "clients not closed by lame duck mode");
        assert!(
            String::from_utf8_lossy(&out_b).contains("\"ldm\":true"),
            "second client did not get the ldm INFO: {:?}",
            String::from_utf8_lossy(&out_b)
        );
        let closed_after = signalled.elapsed();
        assert!(
            closed_after >= Duration::from_millis(900),
            "clients closed before the 1s grace period: {closed_after:?}"
        );

        // And the process exits.
        let status = server
            .wait_exit_async(Duration::from_secs(15))
            .await
            .expect("server did not exit after lame duck mode");
        assert_eq!(status.code(), Some(0), "exit status {status:?}");
        let log = server.log();
        assert!(
            log.contains("Entering lame duck mode, stop accepting new clients"),
            "{log}"
        );
        assert!(log.contains("Server Exiting.."), "{log}");
        drop(client);
    })
    .await;
}

/// Runs the server with `args` until it exits (at most 10 s); (success, stdout + stderr).
fn run_to_exit(args: &[&str]) -> (bool, String) {
    let mut child = std::process::Command::new(rnats_itest::server_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn server");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("server with {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Harnesses match on these start-up errors, worded as nats-server's.
#[test]
fn start_up_errors_are_worded_as_nats_server() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let port = rnats_itest::free_port().to_string();
    let sd = file.to_str().expect("utf-8");
    let (_, out) = run_to_exit(&["-js", "-sd", sd, "-p", &port]);
    assert!(
        out.contains("Can't start JetStream: storage directory is not a directory"),
        "{out}"
    );

    let conf = dir.path().join("unknown.conf");
    std::fs::write(&conf, "port: -1\nunknown_field: 1\n").expect("write");
    let (ok, out) = run_to_exit(&["-c", conf.to_str().expect("utf-8")]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("unknown.conf:2:1: unknown field \"unknown_field\""),
        "{out}"
    );
}
