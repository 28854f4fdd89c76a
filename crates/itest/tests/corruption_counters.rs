//! Storage damage counted where operators look: a byte flipped in a stopped
//! file stream's block shows up after restart as `corrupt_records` in
//! `/jsz` (per stream and in the totals) and as
//! `jetstream_stream_corrupt_records_total` / `jetstream_server_corrupt_records_total`
//! in `/metrics`. These are rnats additions; nats-server has no such counters.

use std::time::Duration;

use async_nats::jetstream::{self, stream::Config};
use rnats_itest::{start_jetstream, within, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(40);

fn block_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "blk") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn monitor_port(server: &Server) -> u16 {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("Starting http monitor on "))
        .unwrap_or_else(|| panic!("no monitor line in:\n{log}"));
    line.rsplit(':').next().unwrap().trim().parse().unwrap()
}

async fn http_get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The value of the sample of `metric` whose labels contain `label`.
fn sample(text: &str, metric: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn a_damaged_record_is_counted_in_jsz_and_metrics() {
    if std::env::var("RNATS_SERVER_BIN").is_ok_and(|b| !b.contains("rnats")) {
        eprintln!("skipping: corruption counters are an rnats feature");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "fill", async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        for name in ["BAD", "GOOD"] {
            js.create_stream(Config {
                name: name.into(),
                subjects: vec![format!("{}.>", name.to_lowercase())],
                ..Default::default()
            })
            .await
            .unwrap();
        }
        for i in 0..200u32 {
            for subj in ["bad.x", "good.x"] {
                js.publish(subj, format!("message-{i:04}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        }
    })
    .await;
    server.signal(libc::SIGTERM);
    server
        .wait_exit(Duration::from_secs(10))
        .expect("clean exit");

    let blk = block_files(store.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/BAD/"))
        .expect("BAD's block");
    let mut data = std::fs::read(&blk).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x5a;
    std::fs::write(&blk, &data).unwrap();

    let server = start_jetstream(store.path(), &["-m", "-1"]);
    let port = monitor_port(&server);
    within(LIMIT, "counters", async {
        let jsz: serde_json::Value =
            serde_json::from_str(&http_get(port, "/jsz?streams=1").await).unwrap();
        assert_eq!(jsz["corrupt_records"], 1, "server total: {jsz}");
        let acc = &jsz["account_details"][0];
        assert_eq!(acc["corrupt_records"], 1, "account total: {acc}");
        let streams = acc["stream_detail"].as_array().expect("streams");
        let state = |n: &str| {
            streams
                .iter()
                .find(|s| s["name"] == n)
                .map(|s| s["state"].clone())
                .unwrap_or_default()
        };
        assert_eq!(state("BAD")["corrupt_records"], 1, "{jsz}");
        // A healthy stream does not carry the field at all.
        assert!(state("GOOD").get("corrupt_records").is_none(), "{jsz}");

        let metrics = http_get(port, "/metrics").await;
        let stream = "jetstream_stream_corrupt_records_total";
        assert_eq!(sample(&metrics, stream, "stream_name=\"BAD\""), Some(1.0));
        assert_eq!(sample(&metrics, stream, "stream_name=\"GOOD\""), Some(0.0));
        assert!(metrics.contains(&format!("# TYPE {stream} counter")));
        let total = "jetstream_server_corrupt_records_total";
        assert_eq!(sample(&metrics, total, "server_id"), Some(1.0), "{metrics}");
    })
    .await;
}
