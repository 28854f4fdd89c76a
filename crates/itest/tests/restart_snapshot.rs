//! Clean stop and restart of file streams: SIGTERM stops every stream (in parallel) and
//! saves each store's index so the restart skips the block scan; the restarted server
//! serves exactly what it served before (counts, deleted sequences, subjects, last message
//! per subject, durable consumers), and what is published after that restart survives a
//! SIGKILL (no stale index is left behind). Runs against nats-server too (the file checks
//! are rnats-only).

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream::Stream};
use futures::StreamExt;
use rnats_itest::{file_config, start_jetstream, within, Server};

const LIMIT: Duration = Duration::from_secs(40);
const STREAMS: [&str; 3] = ["RA", "RB", "RC"];

fn is_rnats() -> bool {
    !std::env::var("RNATS_SERVER_BIN").is_ok_and(|b| !b.contains("rnats"))
}

fn snapshots(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "index.snap") {
                n += 1;
            }
        }
    }
    n
}

/// What a client sees of one stream.
#[derive(Debug, PartialEq)]
struct Seen {
    msgs: u64,
    first: u64,
    last: u64,
    deleted: u64,
    subjects: BTreeMap<String, u64>,
    last_payloads: Vec<String>,
    pending: u64,
}

async fn seen(js: &jetstream::Context, name: &str) -> Seen {
    let mut s: Stream = js.get_stream(name).await.unwrap();
    let info = s.info().await.unwrap().clone();
    let subjects: BTreeMap<String, u64> = s
        .info_with_subjects(">")
        .await
        .unwrap()
        .map(|r| r.unwrap())
        .collect::<BTreeMap<_, _>>()
        .await
        .into_iter()
        .map(|(k, v)| (k, v as u64))
        .collect();
    let mut last_payloads = Vec::new();
    for k in subjects.keys() {
        let m = s.get_last_raw_message_by_subject(k).await.unwrap();
        last_payloads.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    let mut c: consumer::PullConsumer = s.get_consumer("D").await.unwrap();
    let pending = c.info().await.unwrap().num_pending;
    Seen {
        msgs: info.state.messages,
        first: info.state.first_sequence,
        last: info.state.last_sequence,
        deleted: info.state.deleted_count.unwrap_or(0) as u64,
        subjects,
        last_payloads,
        pending,
    }
}

async fn fill(js: &jetstream::Context, name: &str) {
    let lower = name.to_lowercase();
    let s = js
        .create_stream(file_config(name, &[&format!("{lower}.>")]))
        .await
        .unwrap();
    for i in 0..400u32 {
        js.publish(format!("{lower}.k{}", i % 7), format!("{name}-{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    for seq in (3..400).step_by(37) {
        s.delete_message(seq).await.unwrap();
    }
    s.purge().filter(format!("{lower}.k3")).await.unwrap();
    let c: consumer::PullConsumer = s
        .create_consumer(consumer::pull::Config {
            durable_name: Some("D".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = c.fetch().max_messages(25).messages().await.unwrap();
    while let Some(m) = msgs.next().await {
        m.unwrap().double_ack().await.unwrap();
    }
}

async fn all_seen(server: &Server) -> Vec<Seen> {
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let mut out = Vec::new();
    for name in STREAMS {
        out.push(seen(&js, name).await);
    }
    out
}

#[tokio::test]
async fn clean_restart_serves_the_same_and_later_writes_survive_sigkill() {
    let store = tempfile::tempdir().unwrap();
    let mut server = start_jetstream(store.path(), &[]);
    let before = within(LIMIT, "fill", async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        for name in STREAMS {
            fill(&js, name).await;
        }
        all_seen(&server).await
    })
    .await;
    assert!(before.iter().all(|s| s.deleted > 0 && s.msgs > 300));

    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(20)).is_some());
    if is_rnats() {
        assert_eq!(
            snapshots(store.path()),
            STREAMS.len(),
            "one index per stream"
        );
    }
    let mut server = start_jetstream(store.path(), &[]);
    let after = within(LIMIT, "after clean restart", all_seen(&server)).await;
    assert_eq!(after, before);
    if is_rnats() {
        assert_eq!(snapshots(store.path()), 0, "indexes are consumed on start");
    }

    // Written after the fast restart, then a crash: recovered by the full scan.
    within(LIMIT, "late writes", async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        for i in 0..50u32 {
            js.publish("rb.late", format!("late-{i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        js.get_stream("RB")
            .await
            .unwrap()
            .delete_message(2)
            .await
            .unwrap();
    })
    .await;
    server.kill();
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "after kill", async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        let mut s = js.get_stream("RB").await.unwrap();
        let info = s.info().await.unwrap().clone();
        assert_eq!(info.state.last_sequence, before[1].last + 50);
        assert_eq!(info.state.messages, before[1].msgs + 50 - 1);
        let m = s.get_last_raw_message_by_subject("rb.late").await.unwrap();
        assert_eq!(&m.payload[..], b"late-49");
        assert!(s.get_raw_message(2).await.is_err(), "the delete was kept");
    })
    .await;
}
