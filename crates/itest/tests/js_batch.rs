//! Atomic batch publish (ADR-50) through async-nats: a batch is stored all at
//! once at its commit (`1` or `eob`) with the PubAck naming the batch and its
//! size, and not at all when any message fails a check: gaps, duplicates,
//! expected sequences that only the first message may carry, unsupported
//! headers, API levels. Counters inside a batch add up; a batch staged before
//! a SIGKILL is gone after it (its commit is refused as incomplete).
//!
//! Every reply asserted here was observed from the reference nats-server
//! v2.15.0 with the same messages.

use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use rnats_itest::{connect, start_jetstream, within};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(30);

async fn create(nc: &async_nats::Client, cfg: Value) {
    let name = cfg["name"].as_str().expect("name").to_string();
    let r = nc
        .request(
            format!("$JS.API.STREAM.CREATE.{name}"),
            cfg.to_string().into(),
        )
        .await
        .expect("create");
    let v: Value = serde_json::from_slice(&r.payload).expect("json");
    assert!(v.get("error").is_none(), "{v}");
}

async fn state(nc: &async_nats::Client, name: &str) -> Value {
    let r = nc
        .request(format!("$JS.API.STREAM.INFO.{name}"), "".into())
        .await
        .expect("info");
    let v: Value = serde_json::from_slice(&r.payload).expect("json");
    v["state"].clone()
}

/// Publishes message `seq` of batch `id`; the reply ("" for a staged one).
async fn publish(
    nc: &async_nats::Client,
    subject: &str,
    id: &str,
    seq: u64,
    commit: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let mut h = HeaderMap::new();
    h.insert("Nats-Batch-Id", id);
    h.insert("Nats-Batch-Sequence", seq.to_string().as_str());
    if let Some(c) = commit {
        h.insert("Nats-Batch-Commit", c);
    }
    for (k, v) in extra {
        h.insert(*k, *v);
    }
    let r = nc
        .request_with_headers(subject.to_string(), h, "x".into())
        .await
        .expect("batch publish");
    String::from_utf8(r.payload.to_vec()).expect("utf-8")
}

fn code(reply: &str) -> u64 {
    let v: Value = serde_json::from_str(reply).unwrap_or_default();
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn batches_commit_all_or_nothing() {
    let store = tempfile::tempdir().expect("store");
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "atomic batches", async {
        let nc = connect(&server).await;
        create(
            &nc,
            json!({"name": "B", "subjects": ["b.>"], "allow_atomic": true}),
        )
        .await;
        create(&nc, json!({"name": "N", "subjects": ["n.>"]})).await;
        assert_eq!(
            code(&publish(&nc, "n.a", "x", 1, Some("1"), &[]).await),
            10174
        );

        // Staged messages are answered with an empty reply and not stored.
        assert_eq!(publish(&nc, "b.a", "a1", 1, None, &[]).await, "");
        assert_eq!(publish(&nc, "b.b", "a1", 2, None, &[]).await, "");
        assert_eq!(state(&nc, "B").await["messages"], 0);
        let ack = publish(&nc, "b.c", "a1", 3, Some("1"), &[]).await;
        assert_eq!(
            serde_json::from_str::<Value>(&ack).unwrap_or_default(),
            json!({"stream": "B", "seq": 3, "batch": "a1", "count": 3})
        );
        assert_eq!(state(&nc, "B").await["messages"], 3);

        // `eob` commits without storing its own message.
        publish(&nc, "b.a", "a2", 1, None, &[]).await;
        publish(&nc, "b.a", "a2", 2, None, &[]).await;
        let ack = publish(&nc, "b.a", "a2", 3, Some("eob"), &[]).await;
        assert_eq!(
            serde_json::from_str::<Value>(&ack).unwrap_or_default(),
            json!({"stream": "B", "seq": 5, "batch": "a2", "count": 2})
        );

        // Refusals: nothing of the batch is stored.
        publish(&nc, "b.a", "gap", 1, None, &[]).await;
        assert_eq!(code(&publish(&nc, "b.a", "gap", 3, None, &[]).await), 10176);
        assert_eq!(
            code(&publish(&nc, "b.a", "gap", 4, Some("1"), &[]).await),
            10176
        );
        assert_eq!(
            code(&publish(&nc, "b.a", "late", 2, Some("1"), &[]).await),
            10176
        );
        assert_eq!(
            code(&publish(&nc, "b.a", "big", 1001, Some("1"), &[]).await),
            10199
        );
        publish(&nc, "b.a", "bc", 1, None, &[]).await;
        assert_eq!(
            code(&publish(&nc, "b.a", "bc", 2, Some("yes"), &[]).await),
            10200
        );
        assert_eq!(
            code(&publish(&nc, "b.a", "eob", 1, Some("eob"), &[]).await),
            10176
        );
        assert_eq!(
            code(&publish(&nc, "b.a", &"x".repeat(65), 1, Some("1"), &[]).await),
            10179
        );
        let last = [("Nats-Expected-Last-Sequence", "5")];
        publish(&nc, "b.a", "e1", 1, None, &last).await;
        let again = [("Nats-Expected-Last-Sequence", "6")];
        assert_eq!(
            code(&publish(&nc, "b.a", "e1", 2, Some("1"), &again).await),
            10164
        );
        let wrong = [("Nats-Expected-Last-Sequence", "99")];
        publish(&nc, "b.a", "e2", 1, None, &wrong).await;
        assert_eq!(
            code(&publish(&nc, "b.a", "e2", 2, Some("1"), &[]).await),
            10071
        );
        let msg_id = [("Nats-Expected-Last-Msg-Id", "z")];
        assert_eq!(
            code(&publish(&nc, "b.a", "e3", 1, Some("1"), &msg_id).await),
            10177
        );
        let dup = [("Nats-Msg-Id", "m")];
        publish(&nc, "b.a", "d1", 1, None, &dup).await;
        assert_eq!(
            code(&publish(&nc, "b.a", "d1", 2, Some("1"), &dup).await),
            10201
        );
        let level = [("Nats-Required-Api-Level", "9")];
        assert_eq!(
            code(&publish(&nc, "b.a", "lvl", 1, Some("1"), &level).await),
            10185
        );
        let st = state(&nc, "B").await;
        assert_eq!(
            (st["messages"].as_u64(), st["last_seq"].as_u64()),
            (Some(5), Some(5)),
            "{st}"
        );

        // An expected subject sequence may not follow a write to that subject.
        let zero = [("Nats-Expected-Last-Subject-Sequence", "0")];
        publish(&nc, "b.x", "es", 1, None, &zero).await;
        assert_eq!(
            code(&publish(&nc, "b.x", "es", 2, Some("1"), &zero).await),
            10164
        );
        publish(&nc, "b.y", "es2", 1, None, &zero).await;
        let ack = publish(&nc, "b.z", "es2", 2, Some("1"), &zero).await;
        assert_eq!(code(&ack), 0, "{ack}");
    })
    .await;
}

#[tokio::test]
async fn counters_add_up_inside_a_batch_and_staging_dies_with_the_process() {
    let store = tempfile::tempdir().expect("store");
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "batched counters", async {
        let nc = connect(&server).await;
        create(
            &nc,
            json!({"name": "C", "subjects": ["c.>"], "allow_atomic": true,
                           "allow_msg_counter": true}),
        )
        .await;
        let mut adv = nc
            .subscribe("$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.C")
            .await
            .expect("sub");
        // Counter messages carry no body.
        let mut h = HeaderMap::new();
        h.insert("Nats-Batch-Id", "k");
        h.insert("Nats-Batch-Sequence", "1");
        h.insert("Nats-Incr", "2");
        let r = nc
            .request_with_headers("c.n", h, "".into())
            .await
            .expect("first");
        assert!(r.payload.is_empty());
        let mut h = HeaderMap::new();
        h.insert("Nats-Batch-Id", "k");
        h.insert("Nats-Batch-Sequence", "2");
        h.insert("Nats-Batch-Commit", "1");
        h.insert("Nats-Incr", "5");
        let r = nc
            .request_with_headers("c.n", h, "".into())
            .await
            .expect("commit");
        let ack: Value = serde_json::from_slice(&r.payload).expect("json");
        assert_eq!(ack["count"], 2, "{ack}");
        let got = nc
            .request(
                "$JS.API.STREAM.MSG.GET.C",
                json!({"last_by_subj": "c.n"}).to_string().into(),
            )
            .await
            .expect("get");
        let got: Value = serde_json::from_slice(&got.payload).expect("json");
        assert_eq!(
            got["message"]["data"], "eyJ2YWwiOiI3In0=",
            "{{\"val\":\"7\"}} expected: {got}"
        );

        // A gap abandons the batch with an advisory.
        publish(&nc, "c.n", "g", 1, None, &[("Nats-Incr", "1")]).await;
        publish(&nc, "c.n", "g", 3, None, &[("Nats-Incr", "1")]).await;
        let a = tokio::time::timeout(Duration::from_secs(5), adv.next())
            .await
            .expect("advisory")
            .expect("msg");
        let a: Value = serde_json::from_slice(&a.payload).expect("json");
        assert_eq!(
            (a["batch"].as_str(), a["reason"].as_str()),
            (Some("g"), Some("incomplete")),
            "{a}"
        );

        // Staged, then the server dies before the commit.
        publish(&nc, "c.n", "lost", 1, None, &[("Nats-Incr", "100")]).await;
    })
    .await;
    server.kill();
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "batch after a kill", async {
        let nc = connect(&server).await;
        let r = publish(&nc, "c.n", "lost", 2, Some("1"), &[("Nats-Incr", "1")]).await;
        assert_eq!(code(&r), 10176, "{r}");
        // Only the committed batch's two counter messages are there.
        assert_eq!(state(&nc, "C").await["messages"], 2);
    })
    .await;
}
