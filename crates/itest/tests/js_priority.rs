//! Pull consumer priority groups (ADR-42) through async-nats 0.51: overflow
//! (`min_pending` / `min_ack_pending` on `fetch`), the pinned client (one
//! `messages()` stream gets everything, `Nats-Pin-Id` headers, consumer info
//! `priority_groups`, `unpin_consumer`, expiry after `priority_timeout`, and
//! the PINNED/UNPINNED advisories), request errors, and consumer reset.
//!
//! Status texts, error codes and advisory fields are those of the reference
//! nats-server v2.15.0 (the Python suite checks the same raw exchanges against
//! it: tests/python/test_js_priority.py).

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{pull, AckPolicy, PriorityPolicy},
};
use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, js_context, js_server, mem_config, within};

const LIMIT: Duration = Duration::from_secs(30);

async fn publish_n(js: &jetstream::Context, subject: &str, n: usize) {
    for i in 0..n {
        js.publish(subject.to_string(), Bytes::from(format!("{i}")))
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

fn grouped(name: &str, policy: PriorityPolicy, ttl: Duration) -> pull::Config {
    pull::Config {
        durable_name: Some(name.to_string()),
        ack_policy: AckPolicy::Explicit,
        priority_policy: policy,
        priority_groups: vec!["A".to_string()],
        priority_timeout: ttl,
        ..Default::default()
    }
}

#[tokio::test]
async fn overflow_serves_only_above_the_thresholds() {
    let (server, _store) = js_server();
    let js = js_context(&server).await;
    let stream = js
        .create_stream(mem_config("OVER", &["over.>"]))
        .await
        .unwrap();
    publish_n(&js, "over.a", 3).await;
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(grouped("o", PriorityPolicy::Overflow, Duration::ZERO))
        .await
        .unwrap();
    within(LIMIT, "overflow fetches", async {
        // 3 pending < 10: the request is never served and expires empty.
        let mut none = consumer
            .fetch()
            .group("A")
            .min_pending(10)
            .max_messages(1)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        assert!(none.next().await.is_none(), "served below min_pending");
        // 3 pending >= 2: served.
        let mut some = consumer
            .fetch()
            .group("A")
            .min_pending(2)
            .max_messages(1)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let m = some.next().await.unwrap().unwrap();
        assert_eq!(m.payload, Bytes::from("0"));
        // One unacked message: min_ack_pending 1 is met even though only 2 are
        // left (below min_pending 5): either threshold suffices.
        let mut ack_side = consumer
            .fetch()
            .group("A")
            .min_pending(5)
            .min_ack_pending(1)
            .max_messages(1)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let m = ack_side.next().await.unwrap().unwrap();
        assert_eq!(m.payload, Bytes::from("1"));
    })
    .await;
}

/// A raw pull request; the status and description of the first reply.
async fn raw_pull(client: &async_nats::Client, consumer: &str, body: &str) -> (u16, String) {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(
            format!("$JS.API.CONSUMER.MSG.NEXT.PIN.{consumer}"),
            inbox,
            Bytes::from(body.to_string()),
        )
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a reply")
        .unwrap();
    (
        m.status.map(|s| s.as_u16()).unwrap_or(0),
        m.description.unwrap_or_default(),
    )
}

/// The next PINNED or UNPINNED advisory (skipping other consumer advisories).
async fn pin_advisory(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    loop {
        let m = sub.next().await.unwrap();
        if m.subject.contains(".PINNED.") || m.subject.contains(".UNPINNED.") {
            return m;
        }
    }
}

#[tokio::test]
async fn pinned_client_gets_everything_until_unpinned() {
    let (server, _store) = js_server();
    let js = js_context(&server).await;
    let client = connect(&server).await;
    let mut advisories = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.*.PIN.p")
        .await
        .unwrap();
    let stream = js
        .create_stream(mem_config("PIN", &["pin.>"]))
        .await
        .unwrap();
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(grouped(
            "p",
            PriorityPolicy::PinnedClient,
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    within(LIMIT, "pinned delivery", async {
        // Request errors, as nats-server words them.
        assert_eq!(
            raw_pull(&client, "p", r#"{"batch":1}"#).await,
            (400, "Bad Request - Priority Group missing".into())
        );
        assert_eq!(
            raw_pull(&client, "p", r#"{"batch":1,"group":"Z"}"#).await,
            (400, "Bad Request - Invalid Priority Group".into())
        );
        assert_eq!(
            raw_pull(&client, "p", r#"{"batch":1,"group":"A","min_pending":1}"#).await,
            (400, "Bad Request - Not a Overflow Priority consumer".into())
        );

        let js2 = js_context(&server).await;
        let c2: jetstream::consumer::PullConsumer = js2
            .get_stream("PIN")
            .await
            .unwrap()
            .get_consumer("p")
            .await
            .unwrap();
        let expires = Duration::from_secs(1);
        let mut first = consumer
            .stream()
            .group("A")
            .expires(expires)
            .messages()
            .await
            .unwrap();
        publish_n(&js, "pin.a", 1).await;
        let m = first.next().await.unwrap().unwrap();
        let pin = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Pin-Id"))
            .map(|v| v.to_string())
            .expect("Nats-Pin-Id header");
        m.ack().await.unwrap();
        let info = consumer.info().await.unwrap();
        assert_eq!(info.priority_groups.len(), 1);
        assert_eq!(info.priority_groups[0].group, "A");
        assert_eq!(
            info.priority_groups[0].pinned_client_id.as_deref(),
            Some(pin.as_str())
        );
        assert!(info.priority_groups[0].pinned_ts.is_some());
        let adv = pin_advisory(&mut advisories).await;
        assert_eq!(
            adv.subject.as_str(),
            "$JS.EVENT.ADVISORY.CONSUMER.PINNED.PIN.p"
        );
        let body: serde_json::Value = serde_json::from_slice(&adv.payload).unwrap();
        assert_eq!(
            body["type"],
            "io.nats.jetstream.advisory.v1.consumer_group_pinned"
        );
        assert_eq!(
            (body["group"].as_str(), body["pinned_id"].as_str()),
            (Some("A"), Some(pin.as_str()))
        );

        // A second client on stand-by gets nothing while the first is pinned.
        let mut second = c2
            .stream()
            .group("A")
            .expires(expires)
            .messages()
            .await
            .unwrap();
        publish_n(&js, "pin.a", 3).await;
        for _ in 0..3 {
            let m = first.next().await.unwrap().unwrap();
            assert_eq!(
                m.headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Pin-Id"))
                    .map(|v| v.to_string()),
                Some(pin.clone())
            );
            m.ack().await.unwrap();
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(500), second.next())
                .await
                .is_err(),
            "the stand-by client got a message"
        );
        // A request with someone else's pin id is refused at once.
        assert_eq!(
            raw_pull(
                &client,
                "p",
                r#"{"batch":1,"group":"A","id":"not-the-pin"}"#
            )
            .await,
            (423, "Nats-Pin-Id mismatch".into())
        );

        // Unpin: the next message pins whichever client asks next.
        stream.unpin_consumer("p", "A").await.unwrap();
        let adv = pin_advisory(&mut advisories).await;
        let body: serde_json::Value = serde_json::from_slice(&adv.payload).unwrap();
        assert_eq!(
            adv.subject.as_str(),
            "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.PIN.p"
        );
        assert_eq!(
            (body["group"].as_str(), body["reason"].as_str()),
            (Some("A"), Some("admin"))
        );
        let info = consumer.info().await.unwrap();
        assert_eq!(info.priority_groups[0].pinned_client_id, None);
        assert_eq!(info.priority_groups[0].pinned_ts, None);
        drop(first);
        publish_n(&js, "pin.a", 1).await;
        let m = second.next().await.unwrap().unwrap();
        let new_pin = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Pin-Id"))
            .map(|v| v.to_string());
        assert!(
            new_pin.is_some() && new_pin != Some(pin.clone()),
            "re-pinned with a new id"
        );
        // Unpin errors.
        let err = stream.unpin_consumer("p", "B").await.unwrap_err();
        assert!(
            err.to_string().contains("priority group does not exist"),
            "{err}"
        );
        let err = stream.unpin_consumer("nope", "A").await.unwrap_err();
        assert!(err.to_string().contains("consumer not found"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn pin_expires_without_pulls() {
    let (server, _store) = js_server();
    let js = js_context(&server).await;
    let client = connect(&server).await;
    let mut advisories = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.TTL.t")
        .await
        .unwrap();
    let stream = js
        .create_stream(mem_config("TTL", &["ttl.>"]))
        .await
        .unwrap();
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(grouped(
            "t",
            PriorityPolicy::PinnedClient,
            Duration::from_secs(1),
        ))
        .await
        .unwrap();
    within(LIMIT, "pin expiry", async {
        publish_n(&js, "ttl.a", 1).await;
        let mut first = consumer
            .stream()
            .group("A")
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        let m = first.next().await.unwrap().unwrap();
        m.ack().await.unwrap();
        // The pinned client goes away; after priority_timeout the pin is dropped.
        drop(first);
        let adv = advisories.next().await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&adv.payload).unwrap();
        assert_eq!(body["reason"], "timeout");
        let info = consumer.info().await.unwrap();
        assert_eq!(info.priority_groups[0].pinned_client_id, None);
    })
    .await;
}

#[tokio::test]
async fn reset_moves_the_consumer_back() {
    let (server, _store) = js_server();
    let js = js_context(&server).await;
    let client = connect(&server).await;
    let stream = js
        .create_stream(mem_config("RST", &["rst.>"]))
        .await
        .unwrap();
    publish_n(&js, "rst.a", 5).await;
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("r".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    within(LIMIT, "reset", async {
        let mut batch = consumer.fetch().max_messages(4).messages().await.unwrap();
        let mut n = 0;
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            n += 1;
            if n <= 2 {
                m.double_ack().await.unwrap();
            }
        }
        assert_eq!(n, 4);
        // Empty body: back to just above the ack floor (3), dropping the 2 unacked.
        let reply = client
            .request("$JS.API.CONSUMER.RESET.RST.r", Bytes::new())
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(
            v["type"],
            "io.nats.jetstream.api.v1.consumer_reset_response"
        );
        assert_eq!(v["reset_seq"], 3);
        assert_eq!(v["num_ack_pending"], 0);
        assert_eq!(v["num_pending"], 3);
        assert_eq!(v["delivered"]["stream_seq"], 2);
        assert_eq!(v["delivered"]["consumer_seq"], 0);
        let m = consumer
            .fetch()
            .max_messages(1)
            .messages()
            .await
            .unwrap()
            .next()
            .await;
        let m = m.unwrap().unwrap();
        assert_eq!(m.info().unwrap().stream_sequence, 3);
        assert_eq!(m.info().unwrap().consumer_sequence, 1);
        // A sequence: forward to 5.
        let reply = client
            .request("$JS.API.CONSUMER.RESET.RST.r", Bytes::from(r#"{"seq":5}"#))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(
            (v["reset_seq"].as_u64(), v["num_pending"].as_u64()),
            (Some(5), Some(1))
        );
        let info = consumer.info().await.unwrap();
        assert_eq!(info.ack_floor.stream_sequence, 4);
    })
    .await;
}
