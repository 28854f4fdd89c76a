//! JetStream used from another account through exports and imports, as
//! nats-server's documented setup does it: account A exports `$JS.API.>`
//! (stream responses), the ack and flow-control subjects, `$KV.>` and a
//! deliver-subject stream; account B imports them and drives A's streams
//! through `JS.A.API`. Pull fetches (the messages travel back through the
//! service-import reply with their stored subjects), acks, a push consumer
//! that waits until B subscribes to its deliver subject (KV through the
//! same imports is checked with nats-py in `tests/python/test_js_cross_account.py`).
//!
//! Each step was checked against the reference nats-server v2.15.0.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use rnats_itest::{within, Server};

const LIMIT: Duration = Duration::from_secs(30);

fn config(store: &std::path::Path) -> String {
    format!(
        r#"
jetstream: {{store_dir: "{}"}}
accounts: {{
  A: {{
    jetstream: enabled
    users: [{{user: a, password: a}}]
    exports: [
      {{service: "$JS.API.>", response_type: "stream"}}
      {{service: "$KV.>"}}
      {{stream: "deliver.>"}}
      {{service: "$JS.ACK.>"}}
      {{service: "$JS.FC.>"}}
    ]
  }}
  B: {{
    users: [{{user: b, password: b}}]
    imports: [
      {{service: {{account: A, subject: "$JS.API.>"}}, to: "JS.A.API.>"}}
      {{service: {{account: A, subject: "$KV.>"}}, to: "$KV.>"}}
      {{stream: {{account: A, subject: "deliver.>"}}}}
      {{service: {{account: A, subject: "$JS.ACK.>"}}}}
      {{service: {{account: A, subject: "$JS.FC.>"}}}}
    ]
  }}
}}
"#,
        store.display()
    )
}

async fn user(server: &Server, name: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(name.into(), name.into())
        .connect(server.url())
        .await
        .expect("connect")
}

#[tokio::test]
async fn another_account_pulls_pushes_acks_and_uses_kv() {
    let store = tempfile::tempdir().expect("store");
    let server = Server::start_with_config(&config(store.path()));
    within(LIMIT, "cross-account JetStream", async {
        let a = jetstream::new(user(&server, "a").await);
        let b_client = user(&server, "b").await;
        let b = jetstream::with_prefix(b_client.clone(), "JS.A.API");
        a.create_stream(jetstream::stream::Config {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            ..Default::default()
        })
        .await
        .expect("stream");
        for i in 0..3 {
            a.publish(format!("s.{i}"), format!("m{i}").into())
                .await
                .expect("publish")
                .await
                .expect("ack");
        }

        // Pull from B: messages keep their stored subjects; B's acks land.
        let stream = b
            .get_stream("S")
            .await
            .expect("stream info through the import");
        let pull = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("D".into()),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut batch = pull
            .fetch()
            .max_messages(3)
            .messages()
            .await
            .expect("fetch");
        let mut subjects = Vec::new();
        while let Some(m) = batch.next().await {
            let m = m.expect("message");
            subjects.push(m.subject.to_string());
            m.ack().await.expect("ack");
        }
        assert_eq!(subjects, ["s.0", "s.1", "s.2"]);
        let mut c = a
            .get_consumer_from_stream::<consumer::pull::Config, _, _>("D", "S")
            .await
            .expect("consumer");
        let mut floor = 0;
        for _ in 0..50 {
            floor = c.info().await.expect("info").ack_floor.stream_sequence;
            if floor == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(floor, 3, "B's acks reach A's consumer");

        // A push consumer created before anyone in B listens waits for B.
        a.get_stream("S")
            .await
            .expect("stream")
            .create_consumer(consumer::push::Config {
                durable_name: Some("P".into()),
                deliver_subject: "deliver.p".into(),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("push consumer");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut sub = b_client.subscribe("deliver.p").await.expect("subscribe");
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("pushed without waiting for a redelivery")
            .expect("message");
        assert_eq!(m.subject.as_str(), "s.0");
        assert_eq!(&m.payload[..], b"m0");
    })
    .await;
}
