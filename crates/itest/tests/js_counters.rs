//! Distributed counters (ADR-49), `first_seq` and the API-level metadata
//! (ADR-44), driven through async-nats requests: totals in the PubAck and the
//! stored body, every refusal with nats-server's error code, totals that keep
//! counting after a SIGKILL, and a stream that sums the counters it sources.
//!
//! Every value asserted here was observed from the reference nats-server
//! v2.15.0 with the same requests.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use base64::Engine;
use rnats_itest::{connect, start_jetstream, within};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(30);

async fn api(nc: &async_nats::Client, subject: &str, body: Value) -> Value {
    let r = nc
        .request(subject.to_string(), body.to_string().into())
        .await
        .expect("api request");
    serde_json::from_slice(&r.payload).expect("api json")
}

/// Publishes an increment (with optional extra headers and body); the PubAck.
async fn incr(
    nc: &async_nats::Client,
    subject: &str,
    by: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Value {
    let mut h = HeaderMap::new();
    h.insert("Nats-Incr", by);
    for (k, v) in extra {
        h.insert(*k, *v);
    }
    let r = nc
        .request_with_headers(subject.to_string(), h, body.to_vec().into())
        .await
        .expect("publish");
    serde_json::from_slice(&r.payload).expect("puback json")
}

fn err_code(ack: &Value) -> u64 {
    ack["error"]["err_code"].as_u64().unwrap_or(0)
}

/// The last message on `subject`: (headers, body).
async fn last(nc: &async_nats::Client, stream: &str, subject: &str) -> (String, String) {
    let r = api(
        nc,
        &format!("$JS.API.STREAM.MSG.GET.{stream}"),
        json!({ "last_by_subj": subject }),
    )
    .await;
    let b64 = |v: &Value| {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64");
        String::from_utf8(raw).expect("utf-8")
    };
    (b64(&r["message"]["hdrs"]), b64(&r["message"]["data"]))
}

#[tokio::test]
async fn counters_total_refuse_misuse_and_survive_a_kill() {
    let store = tempfile::tempdir().expect("store");
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "counters", async {
        let nc = connect(&server).await;
        let created = api(
            &nc,
            "$JS.API.STREAM.CREATE.C",
            json!({"name": "C", "subjects": ["c.>"], "allow_msg_counter": true}),
        )
        .await;
        assert_eq!(
            created["config"]["metadata"]["_nats.req.level"], "2",
            "{created}"
        );
        api(
            &nc,
            "$JS.API.STREAM.CREATE.N",
            json!({"name": "N", "subjects": ["n.>"]}),
        )
        .await;

        assert_eq!(
            incr(&nc, "c.a", "5", &[], b"").await,
            json!({"stream": "C", "seq": 1, "val": "5"})
        );
        assert_eq!(incr(&nc, "c.a", "-2", &[], b"").await["val"], "3");
        let big = incr(&nc, "c.a", "+100000000000000000000000", &[], b"").await;
        assert_eq!(big["val"], "100000000000000000000003");
        // Another subject counts on its own.
        assert_eq!(incr(&nc, "c.b", "1", &[], b"").await["val"], "1");

        // Refusals, each with nats-server's code; nothing is stored.
        assert_eq!(err_code(&incr(&nc, "c.a", "1", &[], b"body").await), 10170);
        assert_eq!(err_code(&incr(&nc, "c.a", "abc", &[], b"").await), 10171);
        let occ = [("Nats-Expected-Last-Sequence", "4")];
        assert_eq!(err_code(&incr(&nc, "c.a", "1", &occ, b"").await), 10171);
        let rollup = [("Nats-Rollup", "sub")];
        assert_eq!(err_code(&incr(&nc, "c.a", "1", &rollup, b"").await), 10171);
        let plain = nc
            .request("c.a", "hello".into())
            .await
            .expect("plain publish");
        let plain: Value = serde_json::from_slice(&plain.payload).expect("json");
        assert_eq!(err_code(&plain), 10169, "{plain}");
        assert_eq!(err_code(&incr(&nc, "n.a", "1", &[], b"").await), 10168);
        assert_eq!(err_code(&incr(&nc, "n.a", "zz", &[], b"").await), 10171);

        // A duplicate increment is not counted twice.
        let id = [("Nats-Msg-Id", "m1")];
        let first = incr(&nc, "c.a", "1", &id, b"").await;
        assert_eq!(first["val"], "100000000000000000000004");
        let again = incr(&nc, "c.a", "1", &id, b"").await;
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["seq"], first["seq"]);

        let (hdrs, body) = last(&nc, "C", "c.a").await;
        assert_eq!(body, r#"{"val":"100000000000000000000004"}"#);
        assert!(hdrs.contains("Nats-Incr: 1"), "{hdrs}");
    })
    .await;

    // The total is read back from the store after a crash.
    server.kill();
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "counters after a kill", async {
        let nc = connect(&server).await;
        let ack = incr(&nc, "c.a", "6", &[], b"").await;
        assert_eq!(ack["val"], "100000000000000000000010", "{ack}");
        assert_eq!(incr(&nc, "c.b", "1", &[], b"").await["val"], "2");
    })
    .await;
}

#[tokio::test]
async fn a_stream_sums_the_counters_it_sources() {
    let store = tempfile::tempdir().expect("store");
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "sourced counters", async {
        let nc = connect(&server).await;
        for (name, subj) in [("A", "a.>"), ("B", "b.>")] {
            api(
                &nc,
                &format!("$JS.API.STREAM.CREATE.{name}"),
                json!({"name": name, "subjects": [subj], "allow_msg_counter": true}),
            )
            .await;
        }
        incr(&nc, "a.hits", "10", &[], b"").await;
        incr(&nc, "b.hits", "3", &[], b"").await;
        let agg = api(
            &nc,
            "$JS.API.STREAM.CREATE.SUM",
            json!({"name": "SUM", "allow_msg_counter": true, "sources": [
                {"name": "A", "subject_transforms": [{"src": "a.hits", "dest": "hits"}]},
                {"name": "B", "subject_transforms": [{"src": "b.hits", "dest": "hits"}]}
            ]}),
        )
        .await;
        assert!(agg.get("error").is_none(), "{agg}");
        incr(&nc, "a.hits", "2", &[], b"").await;
        // Sources deliver the origin's totals; the aggregate adds differences.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (hdrs, body) = last(&nc, "SUM", "hits").await;
            if body == r#"{"val":"15"}"# {
                assert!(
                    hdrs.contains(
                        r#"Nats-Counter-Sources: {"A":{"a.hits":"12"},"B":{"b.hits":"3"}}"#
                    ),
                    "{hdrs}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "aggregate never reached 15: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn first_seq_and_required_levels() {
    let store = tempfile::tempdir().expect("store");
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "first_seq", async {
        let nc = connect(&server).await;
        let created = api(
            &nc,
            "$JS.API.STREAM.CREATE.F",
            json!({"name": "F", "subjects": ["f"], "first_seq": 100, "persist_mode": "async"}),
        )
        .await;
        assert_eq!(created["state"]["first_seq"], 100, "{created}");
        assert_eq!(created["state"]["last_seq"], 99, "{created}");
        assert_eq!(created["config"]["metadata"]["_nats.req.level"], "2");
        let ack = nc.request("f", "x".into()).await.expect("publish");
        let ack: Value = serde_json::from_slice(&ack.payload).expect("json");
        assert_eq!(ack["seq"], 100, "{ack}");

        let plain = api(
            &nc,
            "$JS.API.STREAM.CREATE.P",
            json!({"name": "P", "subjects": ["p"]}),
        )
        .await;
        assert_eq!(plain["config"]["metadata"]["_nats.req.level"], "0");
        let ttl = api(
            &nc,
            "$JS.API.STREAM.CREATE.T",
            json!({"name": "T", "subjects": ["t"], "allow_msg_ttl": true}),
        )
        .await;
        assert_eq!(ttl["config"]["metadata"]["_nats.req.level"], "1");

        // Consumers carry their own metadata (and keep the user's).
        let c = api(
            &nc,
            "$JS.API.CONSUMER.CREATE.P.C",
            json!({"stream_name": "P", "config": {"name": "C", "ack_policy": "explicit",
                   "metadata": {"team": "a", "_nats.level": "99"}}}),
        )
        .await;
        let md = &c["config"]["metadata"];
        assert_eq!(md["_nats.req.level"], "0", "{c}");
        assert_eq!(md["_nats.level"], "5", "{c}");
        assert_eq!(md["team"], "a", "{c}");
        let pinned = api(
            &nc,
            "$JS.API.CONSUMER.CREATE.P.Q",
            json!({"stream_name": "P", "config": {"name": "Q", "ack_policy": "explicit",
                   "priority_policy": "pinned_client", "priority_groups": ["g"]}}),
        )
        .await;
        assert_eq!(
            pinned["config"]["metadata"]["_nats.req.level"], "1",
            "{pinned}"
        );
        // A request that needs a newer API level is refused, in its own type.
        for (level, refused) in [("9", true), ("1", false), ("x", true)] {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Required-Api-Level", level);
            let r = nc
                .request_with_headers("$JS.API.CONSUMER.INFO.P.C", h, "".into())
                .await
                .expect("info");
            let r: Value = serde_json::from_slice(&r.payload).expect("json");
            assert_eq!(r["type"], "io.nats.jetstream.api.v1.consumer_info_response");
            assert_eq!(
                r["error"]["err_code"].as_u64() == Some(10185),
                refused,
                "{level}: {r}"
            );
        }
        let list = api(&nc, "$JS.API.CONSUMER.LIST.P", json!({})).await;
        for ci in list["consumers"].as_array().expect("consumers") {
            let md = &ci["config"]["metadata"];
            assert!(md.get("_nats.req.level").is_some(), "{ci}");
            assert!(
                md.get("_nats.level").is_none(),
                "lists carry only the required level: {ci}"
            );
        }
    })
    .await;

    // The first sequence is kept across a restart.
    server.kill();
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "first_seq after a kill", async {
        let nc = connect(&server).await;
        let ack = nc.request("f", "y".into()).await.expect("publish");
        let ack: Value = serde_json::from_slice(&ack.payload).expect("json");
        assert_eq!(ack["seq"], 101, "{ack}");
    })
    .await;
}
