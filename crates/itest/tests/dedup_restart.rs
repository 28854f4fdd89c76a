//! Exactly-once across a restart: publishers use `Nats-Msg-Id`, the server
//! is stopped (SIGKILL or SIGTERM) in the middle of an asynchronous publish
//! stream, and the clients then do what real clients do — reconnect and
//! re-send every message they had not seen acknowledged, plus a sample of
//! those they had. Inside the duplicate window each re-send of a stored id
//! must answer `duplicate: true` with the original sequence, and in the end
//! the stream holds every id exactly once. Also under `sync_interval: always`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};
use async_nats::HeaderMap;
use futures::stream::{FuturesOrdered, StreamExt};
use rnats_itest::{connect, within, Server};

const LIMIT: Duration = Duration::from_secs(60);
/// Acknowledged publishes to wait for before stopping the server.
const ACKED_BEFORE_STOP: usize = 3_000;
const WINDOW: usize = 128;

#[derive(Clone, Copy)]
enum Stop {
    Kill,
    Term,
}

fn start(store: &std::path::Path, sync_always: bool) -> Server {
    let dir = store.to_str().expect("utf-8 dir");
    let sync = if sync_always {
        "sync_interval: always"
    } else {
        ""
    };
    Server::start_with_config(&format!("jetstream {{ store_dir: \"{dir}\"\n {sync} }}\n"))
}

fn headers(id: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", format!("id-{id}").as_str());
    h
}

/// What a publisher knows when its server goes away: every id it sent, and
/// the sequence of each one it saw acknowledged.
#[derive(Default)]
struct Ledger {
    sent: usize,
    acked: BTreeMap<usize, u64>,
}

/// Publishes ids 0.. with a window of acks in flight until `stop` is set or
/// the server goes away.
async fn publish_until_stopped(js: jetstream::Context, stop: Arc<AtomicBool>) -> Ledger {
    let mut ledger = Ledger::default();
    let mut inflight = FuturesOrdered::new();
    while !stop.load(Ordering::Relaxed) {
        let id = ledger.sent;
        match js
            .publish_with_headers("dd.x", headers(id), format!("payload {id}").into())
            .await
        {
            Ok(fut) => {
                ledger.sent += 1;
                inflight.push_back(async move { (id, fut.await) });
            }
            Err(_) => break,
        }
        if inflight.len() >= WINDOW {
            match inflight.next().await {
                Some((id, Ok(ack))) => {
                    ledger.acked.insert(id, ack.sequence);
                }
                _ => break,
            }
        }
    }
    // Whatever answers before the connection is gone is acknowledged too.
    while let Ok(Some((id, res))) =
        tokio::time::timeout(Duration::from_millis(200), inflight.next()).await
    {
        if let Ok(ack) = res {
            ledger.acked.insert(id, ack.sequence);
        }
    }
    ledger
}

async fn round(stop_with: Stop, sync_always: bool) {
    let store = tempfile::tempdir().expect("temp dir");
    let mut server = start(store.path(), sync_always);
    let client = connect(&server).await;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(3));
    js.create_stream(jetstream::stream::Config {
        name: "DD".into(),
        subjects: vec!["dd.>".into()],
        storage: StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("create stream");

    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until_stopped(js.clone(), stop.clone()));
    // Stop the server once enough is acknowledged, with more in flight.
    let info_js = js.clone();
    within(LIMIT, "acks before stop", async {
        loop {
            let mut s = info_js.get_stream("DD").await.expect("stream");
            let n = s.info().await.expect("info").state.messages;
            if n as usize >= ACKED_BEFORE_STOP {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    match stop_with {
        Stop::Kill => server.kill(),
        Stop::Term => {
            server.signal(libc::SIGTERM);
            server.wait_exit_async(Duration::from_secs(20)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let ledger = within(LIMIT, "publisher ends", publisher)
        .await
        .expect("publisher task");
    assert!(ledger.acked.len() >= ACKED_BEFORE_STOP / 2, "too few acks");

    // Restart on the same store, reconnect, re-send.
    let server = start(store.path(), sync_always);
    let mut js = jetstream::new(connect(&server).await);
    js.set_timeout(Duration::from_secs(10));
    let in_doubt: Vec<usize> = (0..ledger.sent)
        .filter(|id| !ledger.acked.contains_key(id))
        .collect();
    let sample: Vec<usize> = ledger.acked.keys().copied().step_by(7).collect();
    let mut resent_dups = 0;
    within(LIMIT, "re-send", async {
        for &id in &sample {
            let ack = js
                .publish_with_headers("dd.x", headers(id), "again".into())
                .await
                .expect("publish")
                .await
                .expect("ack");
            assert!(ack.duplicate, "acked id-{id} re-sent: not a duplicate");
            assert_eq!(
                ack.sequence, ledger.acked[&id],
                "id-{id}: original sequence"
            );
        }
        for &id in &in_doubt {
            let ack = js
                .publish_with_headers("dd.x", headers(id), format!("payload {id}").into())
                .await
                .expect("publish")
                .await
                .expect("ack");
            if ack.duplicate {
                resent_dups += 1;
            }
        }
    })
    .await;

    // Every id exactly once.
    let mut stream = js.get_stream("DD").await.expect("stream");
    let state = stream.info().await.expect("info").state.clone();
    let mut seen: HashMap<String, u64> = HashMap::new();
    within(LIMIT, "read back", async {
        for seq in state.first_sequence..=state.last_sequence {
            let m = stream.get_raw_message(seq).await.expect("stored message");
            let id = m
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .expect("every message has an id");
            if let Some(first) = seen.insert(id.clone(), seq) {
                panic!("{id} stored twice: at {first} and {seq}");
            }
        }
    })
    .await;
    let expected: HashSet<String> = (0..ledger.sent).map(|i| format!("id-{i}")).collect();
    let got: HashSet<String> = seen.keys().cloned().collect();
    assert_eq!(got, expected, "stored ids differ from the ids sent");
    for (id, seq) in &ledger.acked {
        assert_eq!(seen[&format!("id-{id}")], *seq, "id-{id} moved");
    }
    println!(
        "sent {} acked {} in doubt {} (of which already stored: {resent_dups})",
        ledger.sent,
        ledger.acked.len(),
        in_doubt.len()
    );

    // And once more after a clean restart: the window survives that too.
    drop(stream);
    let mut server = server;
    server.signal(libc::SIGTERM);
    server.wait_exit_async(Duration::from_secs(20)).await;
    let server = start(store.path(), sync_always);
    let js = jetstream::new(connect(&server).await);
    let last = ledger.sent - 1;
    let ack = js
        .publish_with_headers("dd.x", headers(last), "again".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert!(ack.duplicate, "after a clean restart");
    assert_eq!(ack.sequence, seen[&format!("id-{last}")]);
}

#[tokio::test]
async fn msg_ids_are_remembered_after_sigkill() {
    round(Stop::Kill, false).await;
}

#[tokio::test]
async fn msg_ids_are_remembered_after_sigterm() {
    round(Stop::Term, false).await;
}

#[tokio::test]
async fn msg_ids_are_remembered_after_sigkill_with_sync_always() {
    round(Stop::Kill, true).await;
}

/// `Nats-Expected-Last-Msg-Id` after a restart compares with the id of the
/// last stored message, as before the restart.
#[tokio::test]
async fn expected_last_msg_id_survives_a_restart() {
    let store = tempfile::tempdir().expect("temp dir");
    let mut server = start(store.path(), false);
    let js = jetstream::new(connect(&server).await);
    js.create_stream(jetstream::stream::Config {
        name: "EL".into(),
        subjects: vec!["el".into()],
        storage: StorageType::File,
        ..Default::default()
    })
    .await
    .expect("create stream");
    for id in 0..3 {
        js.publish_with_headers("el", headers(id), "x".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    server.kill();
    let server = start(store.path(), false);
    let js = jetstream::new(connect(&server).await);
    let mut h = headers(10);
    h.insert("Nats-Expected-Last-Msg-Id", "id-2");
    let ack = js
        .publish_with_headers("el", h, "y".into())
        .await
        .expect("publish")
        .await;
    assert!(ack.is_ok(), "expected last id-2 after restart: {ack:?}");
    let mut h = headers(11);
    h.insert("Nats-Expected-Last-Msg-Id", "id-2");
    let ack = js
        .publish_with_headers("el", h, "z".into())
        .await
        .expect("publish")
        .await;
    assert!(ack.is_err(), "id-10 is last now");
}
