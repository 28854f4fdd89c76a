//! Smaller JetStream API behaviours where rnats must answer as nats-server
//! 2.15 does (each value observed from the reference with the same request):
//! a stream's `consumer_limits` as ceilings, pedantic consumer creation,
//! strict request decoding (unknown fields refused), and the cluster-only
//! APIs refused on a standalone server instead of left unanswered.

use std::time::Duration;

use rnats_itest::{connect, js_server, within};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(30);

async fn api(nc: &async_nats::Client, subject: &str, body: Value) -> Value {
    let r = nc
        .request(subject.to_string(), body.to_string().into())
        .await
        .expect("api request");
    serde_json::from_slice(&r.payload).expect("api json")
}

fn err(v: &Value) -> (u64, String) {
    (
        v["error"]["err_code"].as_u64().unwrap_or(0),
        v["error"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn consumer_limits_pedantic_mode_and_strict_requests() {
    let (server, _store) = js_server();
    within(LIMIT, "api parity", async {
        let nc = connect(&server).await;
        api(
            &nc,
            "$JS.API.STREAM.CREATE.S",
            json!({"name": "S", "subjects": ["s.>"],
                   "consumer_limits": {"inactive_threshold": 5_000_000_000u64, "max_ack_pending": 50}}),
        )
        .await;
        // Defaults come from the stream's limits.
        let c = api(&nc, "$JS.API.CONSUMER.CREATE.S.E", json!({"stream_name": "S", "config": {"name": "E"}})).await;
        assert_eq!(c["config"]["max_ack_pending"], 50, "{c}");
        assert_eq!(c["config"]["inactive_threshold"], 5_000_000_000u64, "{c}");
        // ... and are ceilings.
        let c = api(
            &nc,
            "$JS.API.CONSUMER.CREATE.S.E2",
            json!({"stream_name": "S", "config": {"name": "E2", "max_ack_pending": 100}}),
        )
        .await;
        assert_eq!(err(&c), (10121, "consumer max ack pending exceeds system limit of 50".into()));
        let c = api(
            &nc,
            "$JS.API.CONSUMER.CREATE.S.E3",
            json!({"stream_name": "S", "config": {"name": "E3", "max_ack_pending": 10,
                   "inactive_threshold": 9_000_000_000u64}}),
        )
        .await;
        assert_eq!(err(&c), (10153, "consumer inactive threshold exceeds system limit of 5s".into()));

        // Pedantic: what the defaults would change is refused instead.
        let c = api(
            &nc,
            "$JS.API.CONSUMER.CREATE.S.P",
            json!({"stream_name": "S", "config": {"name": "P"}, "pedantic": true}),
        )
        .await;
        assert_eq!(
            err(&c),
            (10157, "pedantic mode: max_ack_pending must be set if it's configured in stream limits".into())
        );
        let c = api(
            &nc,
            "$JS.API.CONSUMER.CREATE.S.P2",
            json!({"stream_name": "S", "config": {"name": "P2", "max_ack_pending": 40,
                   "inactive_threshold": 1_000_000_000u64}, "pedantic": true}),
        )
        .await;
        assert_eq!(c["config"]["max_ack_pending"], 40, "{c}");
        let c = api(
            &nc,
            "$JS.API.CONSUMER.CREATE.S.P3",
            json!({"stream_name": "S", "config": {"name": "P3", "max_ack_pending": 40,
                   "inactive_threshold": 1_000_000_000u64, "max_deliver": -5}, "pedantic": true}),
        )
        .await;
        assert_eq!(err(&c), (10157, "pedantic mode: max_deliver must be set to -1".into()));

        // Strict decoding: unknown fields are refused, names match in any case.
        let r = api(&nc, "$JS.API.CONSUMER.NAMES.S", json!({"subject": "s.x"})).await;
        assert_eq!(err(&r), (10025, "invalid JSON: json: unknown field \"subject\"".into()));
        assert_eq!(r["type"], "io.nats.jetstream.api.v1.consumer_names_response");
        let r = api(&nc, "$JS.API.STREAM.NAMES", json!({"Offset": 0, "subject": "s.a"})).await;
        assert_eq!(r["streams"], json!(["S"]), "{r}");
        let r = api(&nc, "$JS.API.STREAM.INFO.S", json!({"deleted_details": true, "bogus": 1})).await;
        assert_eq!(err(&r).0, 10025, "{r}");

        // Cluster-only APIs on a standalone server.
        for (subject, kind) in [
            ("$JS.API.STREAM.LEADER.STEPDOWN.S", "stream_leader_stepdown_response"),
            ("$JS.API.CONSUMER.LEADER.STEPDOWN.S.E", "consumer_leader_stepdown_response"),
            ("$JS.API.STREAM.PEER.REMOVE.S", "stream_remove_peer_response"),
        ] {
            let r = api(&nc, subject, json!({})).await;
            assert_eq!(r["type"], format!("io.nats.jetstream.api.v1.{kind}"));
            assert_eq!(err(&r), (10010, "JetStream clustering support required".into()), "{subject}");
        }
    })
    .await;
}

/// The next message on `sub` as (status, description), or None after `wait`.
async fn status(
    sub: &mut async_nats::Subscriber,
    wait: Duration,
) -> Option<(String, String, usize)> {
    use futures::StreamExt;
    let m = tokio::time::timeout(wait, sub.next()).await.ok()??;
    let h = m.headers.clone().unwrap_or_default();
    let code = m.status.map(|s| s.as_u16().to_string()).unwrap_or_default();
    let desc = m
        .description
        .clone()
        .or_else(|| h.get("Description").map(|v| v.to_string()))
        .unwrap_or_default();
    Some((code, desc, m.payload.len()))
}

#[tokio::test]
async fn pull_requests_are_read_and_timed_as_nats_server_does() {
    let (server, _store) = js_server();
    within(LIMIT, "pull requests", async {
        let nc = connect(&server).await;
        api(
            &nc,
            "$JS.API.STREAM.CREATE.S",
            json!({"name": "S", "subjects": ["s.>"]}),
        )
        .await;
        api(
            &nc,
            "$JS.API.CONSUMER.CREATE.S.C",
            json!({"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit"}}),
        )
        .await;
        let inbox = nc.new_inbox();
        let mut sub = nc.subscribe(inbox.clone()).await.expect("sub");
        let next = "$JS.API.CONSUMER.MSG.NEXT.S.C";
        let pull = |body: Value| {
            let nc = nc.clone();
            let inbox = inbox.clone();
            async move {
                nc.publish_with_reply(next, inbox, body.to_string().into())
                    .await
                    .expect("pull");
            }
        };
        // Idle heartbeats, then the timeout.
        pull(json!({"batch": 1, "expires": 700_000_000, "idle_heartbeat": 200_000_000})).await;
        let hb = status(&mut sub, Duration::from_secs(2))
            .await
            .expect("heartbeat");
        assert_eq!((hb.0.as_str(), hb.1.as_str()), ("100", "Idle Heartbeat"));
        loop {
            let s = status(&mut sub, Duration::from_secs(2))
                .await
                .expect("status");
            if s.0 != "100" {
                assert_eq!((s.0.as_str(), s.1.as_str()), ("408", "Request Timeout"));
                break;
            }
        }
        // Two heartbeats must fit in the request.
        pull(json!({"batch": 1, "expires": 500_000_000, "idle_heartbeat": 300_000_000})).await;
        let s = status(&mut sub, Duration::from_secs(2))
            .await
            .expect("refused");
        assert_eq!(
            (s.0.as_str(), s.1.as_str()),
            ("400", "Bad Request - heartbeat value too large")
        );
        // An expiry in the past is answered at once.
        pull(json!({"batch": 2, "expires": -1})).await;
        let s = status(&mut sub, Duration::from_secs(2))
            .await
            .expect("timeout");
        assert_eq!(s.0, "408");
        // A body that is neither JSON nor a number asks for one message.
        nc.publish("s.a", "hello".into()).await.expect("publish");
        nc.publish_with_reply(next, inbox.clone(), "garbage".into())
            .await
            .expect("pull");
        let s = status(&mut sub, Duration::from_secs(2))
            .await
            .expect("message");
        assert_eq!((s.0.as_str(), s.2), ("", 5), "{s:?}");

        // Requests whose reply nobody listens to are not waiting.
        for _ in 0..2 {
            let lost = nc.new_inbox();
            nc.publish_with_reply(
                next,
                lost,
                json!({"batch": 1, "expires": 5_000_000_000u64})
                    .to_string()
                    .into(),
            )
            .await
            .expect("pull");
        }
        pull(json!({"batch": 1, "expires": 5_000_000_000u64})).await;
        rnats_itest::sync(&nc).await;
        let info = api(&nc, "$JS.API.CONSUMER.INFO.S.C", json!({})).await;
        assert_eq!(info["num_waiting"], 1, "{info}");
    })
    .await;
}

#[tokio::test]
async fn direct_gets_by_time_and_as_of_a_sequence() {
    use futures::StreamExt;
    let (server, _store) = js_server();
    within(LIMIT, "direct get", async {
        let nc = connect(&server).await;
        api(
            &nc,
            "$JS.API.STREAM.CREATE.D",
            json!({"name": "D", "subjects": ["d.>"], "allow_direct": true}),
        )
        .await;
        for (subj, body) in [("d.a", "1"), ("d.b", "2")] {
            nc.request(subj, body.into()).await.expect("publish");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mid = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (subj, body) in [("d.a", "3"), ("d.c", "4")] {
            nc.request(subj, body.into()).await.expect("publish");
        }
        // A single get by start time: the first message at or after it.
        let m = nc
            .request(
                "$JS.API.DIRECT.GET.D",
                json!({"start_time": mid}).to_string().into(),
            )
            .await
            .expect("get");
        let seq = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Sequence"))
            .map(|v| v.to_string());
        assert_eq!(seq.as_deref(), Some("3"));
        // The last message per subject as of a time, or a sequence.
        for body in [
            json!({"multi_last": ["d.>"], "up_to_time": mid}),
            json!({"multi_last": ["d.>"], "up_to_seq": 2}),
        ] {
            let inbox = nc.new_inbox();
            let mut sub = nc.subscribe(inbox.clone()).await.expect("sub");
            nc.publish_with_reply("$JS.API.DIRECT.GET.D", inbox, body.to_string().into())
                .await
                .expect("get");
            let mut got = Vec::new();
            while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), sub.next()).await {
                let h = m.headers.clone().unwrap_or_default();
                if m.status.is_some() {
                    assert_eq!(
                        h.get("Nats-UpTo-Sequence")
                            .map(|v| v.to_string())
                            .as_deref(),
                        Some("2")
                    );
                    break;
                }
                got.push(
                    h.get("Nats-Sequence")
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
            }
            assert_eq!(got, ["1", "2"], "{body}");
        }
    })
    .await;
}
