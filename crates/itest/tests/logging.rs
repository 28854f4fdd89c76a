//! Logging: a log file with size rotation (`logfile_size_limit`,
//! `logfile_max_num`), reopening it on SIGUSR1 (`--signal reopen`), and
//! rnats's JSON lines (`--log_json`). The file tests run the server binary
//! directly: with `log_file` set nothing reaches stderr, so readiness is
//! read from the file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rnats_itest::{free_port, server_bin, sync, within, Server};

const LIMIT: Duration = Duration::from_secs(40);

/// A server logging to a file, killed on drop.
struct FileLogged {
    child: Child,
    port: u16,
    _conf: tempfile::NamedTempFile,
}

impl Drop for FileLogged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(path: &Path, needle: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

fn start_file_logged(log: &Path, extra_conf: &str) -> FileLogged {
    use std::io::Write;
    let port = free_port();
    let mut conf = tempfile::Builder::new().suffix(".conf").tempfile().unwrap();
    writeln!(
        conf,
        "listen: 127.0.0.1:{port}\nlog_file: {:?}\n{extra_conf}",
        log.display().to_string()
    )
    .unwrap();
    let child = Command::new(server_bin())
        .arg("-c")
        .arg(conf.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let server = FileLogged {
        child,
        port,
        _conf: conf,
    };
    assert!(
        wait_for(log, "Server is ready", Duration::from_secs(10)),
        "server not ready; log: {:?}",
        std::fs::read_to_string(log)
    );
    server
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Publishes with tracing on: every message adds a `[TRC]` line or two.
async fn traffic(port: u16, n: usize) {
    let c = async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    for i in 0..n {
        c.publish(format!("log.traffic.{i}"), Bytes::from_static(b"payload"))
            .await
            .unwrap();
    }
    sync(&c).await;
}

#[tokio::test]
async fn size_rotation_keeps_bounded_files_and_keeps_logging() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let limit = 4096u64;
    let server = start_file_logged(
        &log,
        &format!("trace: true\nlogfile_size_limit: {limit}\nlogfile_max_num: 3"),
    );
    within(LIMIT, "rotation", traffic(server.port, 300)).await;
    let files = files_in(dir.path());
    assert_eq!(files.len(), 3, "live file plus two backups: {files:?}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("server.log"), "{name}");
        let size = std::fs::metadata(f).unwrap().len();
        // Rotation happens after the line that crosses the limit.
        assert!(size <= limit + 1024, "{name} is {size} bytes");
        if name != "server.log" {
            let stamp = name.strip_prefix("server.log.").expect("backup name");
            assert_eq!(stamp.split('.').count(), 7, "backup stamp {stamp}");
        }
    }
    let live = std::fs::read_to_string(&log).unwrap();
    assert!(live.contains("Rotated log, backup saved as"), "{live}");
    // Still logging into the new file.
    within(LIMIT, "more traffic", traffic(server.port, 5)).await;
    assert!(wait_for(&log, "log.traffic.4", Duration::from_secs(5)));
}

#[tokio::test]
async fn sigusr1_reopens_a_moved_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("reopen.log");
    let server = start_file_logged(&log, "");
    let moved = dir.path().join("reopen.log.moved");
    std::fs::rename(&log, &moved).unwrap();
    let pid = server.child.id().to_string();
    let status = Command::new(server_bin())
        .arg(format!("--signal=reopen={pid}"))
        .status()
        .expect("run --signal");
    assert!(status.success());
    assert!(
        wait_for(&log, "File log re-opened", Duration::from_secs(5)),
        "no new log file after SIGUSR1"
    );
    // The old lines stay in the moved file.
    let old = std::fs::read_to_string(&moved).unwrap();
    assert!(old.contains("Server is ready"), "{old}");
    assert!(!old.contains("File log re-opened"), "{old}");
}

#[tokio::test]
async fn json_log_lines_parse() {
    let server = Server::start(&["--log_json", "-D"]);
    within(LIMIT, "json", async {
        let c = async_nats::connect(server.url()).await.unwrap();
        sync(&c).await;
    })
    .await;
    assert!(server.wait_for_log("Client connection created", Duration::from_secs(5)));
    let log = server.log();
    let mut levels = std::collections::BTreeSet::new();
    let mut n = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["time"].is_string(), "{line}");
        assert!(v["pid"].is_u64(), "{line}");
        assert!(v["msg"].is_string(), "{line}");
        levels.insert(v["level"].as_str().unwrap_or_default().to_string());
        n += 1;
    }
    assert!(n > 5, "{log}");
    assert!(
        levels.contains("info") && levels.contains("debug"),
        "{levels:?}"
    );
    assert!(log.contains(r#""msg":"Server is ready""#), "{log}");
}
