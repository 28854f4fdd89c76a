//! JetStream consumers through async-nats' `jetstream` API: pull consumers
//! (`fetch`, `messages()`), acks (`ack`, `Nak` with a delay, `Term`,
//! `double_ack`), ack-wait redelivery, push consumers on a deliver subject,
//! ordered push and pull consumers, consumer info counts, create/update
//! errors, and a SIGKILL crash/restart check of a durable's ack state.
//!
//! Error codes and texts are the ones the reference nats-server v2.15.0
//! returns; async-nats renders a JetStream API error as
//! `"<description> (code <status>, error code <err_code>)"`.

use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{self, pull, push, AckPolicy, DeliverPolicy},
    context::{ConsumerInfoErrorKind, CreateStreamErrorKind},
    stream::{
        Config, ConsumerCreateStrictErrorKind, ConsumerErrorKind, ConsumerUpdateErrorKind,
        StorageType,
    },
    AckKind, ErrorCode, Message,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rnats_itest::{connect, js_context, js_server, mem_config, start_jetstream, within, Server};

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

fn durable_pull(name: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(name.to_string()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    }
}

/// (stream seq, consumer seq, delivered, pending) from the ack subject.
fn meta(m: &Message) -> (u64, u64, i64, u64) {
    let i = m.info().expect("ack metadata");
    (
        i.stream_sequence,
        i.consumer_sequence,
        i.delivered,
        i.pending,
    )
}

/// Next message of a consumer message stream, with a timeout.
async fn next<S, E>(s: &mut S, wait: Duration) -> Message
where
    S: futures::Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Debug,
{
    match tokio::time::timeout(wait, s.next()).await {
        Ok(Some(Ok(m))) => m,
        Ok(Some(Err(e))) => panic!("consumer stream error: {e:?}"),
        Ok(None) => panic!("consumer stream ended"),
        Err(_) => panic!("no message within {wait:?}"),
    }
}

#[tokio::test]
async fn pull_fetch_ack_and_info_counts() {
    let (server, _store) = js_server();
    within(LIMIT, "pull fetch", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(mem_config("PULL", &["pull.>"]))
            .await
            .unwrap();
        publish_n(&js, "pull.a", 10).await;
        let consumer: consumer::PullConsumer =
            stream.create_consumer(durable_pull("P")).await.unwrap();
        let info = consumer.cached_info();
        assert_eq!(info.name, "P");
        assert_eq!(info.num_pending, 10);
        assert_eq!(info.config.ack_wait, Duration::from_secs(30));
        assert_eq!(info.config.max_ack_pending, 1000);
        assert_eq!(info.config.max_waiting, 512);

        let msgs: Vec<Message> = consumer
            .fetch()
            .max_messages(4)
            .messages()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(msgs.len(), 4);
        let metas: Vec<_> = msgs.iter().map(meta).collect();
        assert_eq!(
            metas,
            vec![(1, 1, 1, 9), (2, 2, 1, 8), (3, 3, 1, 7), (4, 4, 1, 6)]
        );
        let i = msgs[0].info().unwrap();
        assert_eq!((i.stream, i.consumer), ("PULL", "P"));
        assert_eq!(&msgs[3].payload[..], b"3");

        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.num_ack_pending, 4);
        assert_eq!(info.num_pending, 6);
        assert_eq!(info.delivered.stream_sequence, 4);
        assert_eq!(info.ack_floor.stream_sequence, 0);

        for m in &msgs[..3] {
            m.ack().await.unwrap();
        }
        msgs[3].double_ack().await.unwrap(); // a barrier for the acks before it
        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.num_ack_pending, 0);
        assert_eq!(info.ack_floor.stream_sequence, 4);
        assert_eq!(info.ack_floor.consumer_sequence, 4);

        // Asking for more than there is: fetch ends with what is available.
        let rest: Vec<Message> = consumer
            .fetch()
            .max_messages(50)
            .messages()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(rest.len(), 6);
        assert_eq!(meta(&rest[5]), (10, 10, 1, 0));
        for m in &rest {
            m.double_ack().await.unwrap();
        }
        // Nothing left: an empty fetch.
        let none: Vec<Message> = consumer
            .fetch()
            .max_messages(5)
            .messages()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(none.is_empty());
        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.num_pending, 0);
        assert_eq!(info.ack_floor.stream_sequence, 10);
        assert_eq!(info.num_redelivered, 0);

        let mut s = js.get_stream("PULL").await.unwrap();
        assert_eq!(s.info().await.unwrap().state.consumer_count, 1);
    })
    .await;
}

#[tokio::test]
async fn messages_stream_nak_delay_term_and_ack_wait() {
    let (server, _store) = js_server();
    within(LIMIT, "acks", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(mem_config("ACKS", &["acks.>"]))
            .await
            .unwrap();
        publish_n(&js, "acks.a", 3).await;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(pull::Config {
                ack_wait: Duration::from_secs(1),
                ..durable_pull("A")
            })
            .await
            .unwrap();
        let mut msgs = consumer.messages().await.unwrap();

        let m1 = next(&mut msgs, Duration::from_secs(5)).await;
        let m2 = next(&mut msgs, Duration::from_secs(5)).await;
        let m3 = next(&mut msgs, Duration::from_secs(5)).await;
        assert_eq!([meta(&m1).0, meta(&m2).0, meta(&m3).0], [1, 2, 3]);

        // Nak with a delay: redelivered, not before the delay.
        let t0 = Instant::now();
        m1.ack_with(AckKind::Nak(Some(Duration::from_millis(600))))
            .await
            .unwrap();
        // Term: never redelivered.
        m2.ack_with(AckKind::Term).await.unwrap();
        // Double ack: the server confirms.
        m3.double_ack().await.unwrap();

        let again = next(&mut msgs, Duration::from_secs(5)).await;
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(450),
            "nak delay not honoured: {took:?}"
        );
        assert_eq!(meta(&again).0, 1);
        assert_eq!(meta(&again).2, 2, "delivery count");
        assert_eq!(meta(&again).1, 4, "consumer sequence");

        // Not acked: ack_wait (1 s) expires and it comes again, count 3.
        let t1 = Instant::now();
        let third = next(&mut msgs, Duration::from_secs(5)).await;
        assert!(
            t1.elapsed() >= Duration::from_millis(700),
            "{:?}",
            t1.elapsed()
        );
        assert_eq!((meta(&third).0, meta(&third).2), (1, 3));
        third.double_ack().await.unwrap();

        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.num_ack_pending, 0);
        assert_eq!(info.ack_floor.stream_sequence, 3);
        assert_eq!(info.delivered.consumer_sequence, 5);
        assert_eq!(
            info.num_redelivered, 0,
            "redelivered counts pending redeliveries"
        );

        // The termed message is not redelivered after its ack wait.
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1500), msgs.next()).await {
            panic!("unexpected delivery {:?}", m.map(|m| meta(&m)));
        }
    })
    .await;
}

#[tokio::test]
async fn nak_without_delay_and_in_progress() {
    let (server, _store) = js_server();
    within(LIMIT, "nak/progress", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(mem_config("NAKS", &["naks.>"]))
            .await
            .unwrap();
        publish_n(&js, "naks.a", 1).await;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(pull::Config {
                ack_wait: Duration::from_secs(1),
                ..durable_pull("N")
            })
            .await
            .unwrap();
        let mut msgs = consumer.messages().await.unwrap();
        let m = next(&mut msgs, Duration::from_secs(5)).await;
        let t0 = Instant::now();
        m.ack_with(AckKind::Nak(None)).await.unwrap();
        let m = next(&mut msgs, Duration::from_secs(5)).await;
        assert!(
            t0.elapsed() < Duration::from_millis(800),
            "nak is immediate"
        );
        assert_eq!(meta(&m).2, 2);
        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.num_redelivered, 1);

        // In progress for twice the ack wait: no redelivery meanwhile.
        let t1 = Instant::now();
        while t1.elapsed() < Duration::from_secs(2) {
            m.ack_with(AckKind::Progress).await.unwrap();
            if let Ok(Some(x)) = tokio::time::timeout(Duration::from_millis(500), msgs.next()).await
            {
                panic!("redelivered while in progress: {:?}", x.map(|x| meta(&x)));
            }
        }
        m.double_ack().await.unwrap();
        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.num_ack_pending, 0);
        assert_eq!(info.ack_floor.stream_sequence, 1);
    })
    .await;
}

#[tokio::test]
async fn consumer_create_update_and_lookup_errors() {
    let (server, _store) = js_server();
    within(LIMIT, "consumer errors", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(mem_config("ERR", &["err.>"]))
            .await
            .unwrap();
        let _c: consumer::PullConsumer = stream
            .create_consumer_strict(durable_pull("C"))
            .await
            .unwrap();
        // Same config, strict create: fine.
        let _c: consumer::PullConsumer = stream
            .create_consumer_strict(durable_pull("C"))
            .await
            .unwrap();
        let err = stream
            .create_consumer_strict(pull::Config {
                description: Some("other".into()),
                ..durable_pull("C")
            })
            .await
            .map(|_: consumer::PullConsumer| ())
            .expect_err("strict create of an existing consumer");
        assert!(
            matches!(err.kind(), ConsumerCreateStrictErrorKind::AlreadyExists),
            "{err:?}"
        );
        let err = stream
            .update_consumer(durable_pull("MISSING"))
            .await
            .map(|_: consumer::PullConsumer| ())
            .expect_err("update of a missing consumer");
        assert!(
            matches!(err.kind(), ConsumerUpdateErrorKind::DoesNotExist),
            "{err:?}"
        );
        // Update a changeable field / refuse a fixed one.
        let c: consumer::PullConsumer = stream
            .update_consumer(pull::Config {
                description: Some("updated".into()),
                max_deliver: 7,
                ..durable_pull("C")
            })
            .await
            .unwrap();
        assert_eq!(
            c.cached_info().config.description.as_deref(),
            Some("updated")
        );
        assert_eq!(c.cached_info().config.max_deliver, 7);
        let err = stream
            .update_consumer(pull::Config {
                deliver_policy: DeliverPolicy::New,
                ..durable_pull("C")
            })
            .await
            .map(|_: consumer::PullConsumer| ())
            .expect_err("deliver policy change");
        match err.kind() {
            ConsumerUpdateErrorKind::JetStream(e) => assert_eq!(
                e.to_string(),
                "deliver policy can not be updated (code 500, error code 10012)"
            ),
            other => panic!("unexpected error kind {other:?}"),
        }

        // Info of a missing consumer (async-nats maps 10014 to NotFound).
        let err = stream.consumer_info("NOPE").await.expect_err("missing");
        assert!(
            matches!(err.kind(), ConsumerInfoErrorKind::NotFound),
            "{err:?}"
        );
        // Delete, then it is gone; deleting again is a 10014 error.
        assert!(stream.delete_consumer("C").await.unwrap().success);
        let err = stream.consumer_info("C").await.expect_err("deleted");
        assert!(
            matches!(err.kind(), ConsumerInfoErrorKind::NotFound),
            "{err:?}"
        );
        let err = match stream.delete_consumer("C").await {
            Ok(_) => panic!("deleting a deleted consumer succeeded"),
            Err(e) => e,
        };
        match err.kind() {
            ConsumerErrorKind::JetStream(e) => {
                assert_eq!(e.error_code(), ErrorCode::CONSUMER_NOT_FOUND);
                assert_eq!(
                    e.to_string(),
                    "consumer not found (code 404, error code 10014)"
                );
            }
            other => panic!("unexpected error kind {other:?}"),
        }

        // A consumer on a missing stream.
        let err = js
            .create_consumer_on_stream(durable_pull("X"), "NOSTREAM")
            .await
            .map(|_: consumer::PullConsumer| ())
            .expect_err("missing stream");
        match err.kind() {
            ConsumerErrorKind::JetStream(e) => {
                assert_eq!(e.error_code(), ErrorCode::STREAM_NOT_FOUND);
                assert_eq!(
                    e.to_string(),
                    "stream not found (code 404, error code 10059)"
                );
            }
            other => panic!("unexpected error kind {other:?}"),
        }
        // An invalid config: push-only max_waiting on a push consumer.
        let err = stream
            .create_consumer(consumer::Config {
                durable_name: Some("BAD".into()),
                deliver_subject: Some("deliver.bad".into()),
                max_waiting: 5,
                ..Default::default()
            })
            .await
            .map(|_: consumer::Consumer<consumer::Config>| ())
            .expect_err("push with max_waiting");
        match err.kind() {
            ConsumerErrorKind::JetStream(e) => assert_eq!(
                e.to_string(),
                "consumer in push mode can not set max waiting (code 400, error code 10080)"
            ),
            other => panic!("unexpected error kind {other:?}"),
        }
        // Creating a stream is unaffected (sanity check of error plumbing).
        let err = js
            .create_stream(mem_config("ERR2", &["err.x"]))
            .await
            .expect_err("overlap");
        assert!(matches!(err.kind(), CreateStreamErrorKind::JetStream(_)));
    })
    .await;
}

#[tokio::test]
async fn push_consumer_with_deliver_subject() {
    let (server, _store) = js_server();
    within(LIMIT, "push consumer", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(mem_config("PUSH", &["push.>"]))
            .await
            .unwrap();
        publish_n(&js, "push.a", 5).await;
        let consumer: consumer::PushConsumer = stream
            .create_consumer(push::Config {
                durable_name: Some("PD".into()),
                deliver_subject: "deliver.push".into(),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            consumer.cached_info().config.deliver_subject.as_deref(),
            Some("deliver.push")
        );
        let mut msgs = consumer.messages().await.unwrap();
        for i in 0..5u64 {
            let m = next(&mut msgs, Duration::from_secs(5)).await;
            assert_eq!(m.subject.as_str(), "push.a");
            assert_eq!(&m.payload[..], format!("{i}").as_bytes());
            assert_eq!(meta(&m), (i + 1, i + 1, 1, 4 - i));
            m.double_ack().await.unwrap();
        }
        publish_n(&js, "push.b", 1).await;
        let m = next(&mut msgs, Duration::from_secs(5)).await;
        assert_eq!((m.subject.as_str(), meta(&m).0), ("push.b", 6));
        m.double_ack().await.unwrap();
        let mut consumer = consumer;
        let info = consumer.info().await.unwrap();
        assert!(info.push_bound);
        assert_eq!(info.num_ack_pending, 0);
        assert_eq!(info.ack_floor.stream_sequence, 6);
    })
    .await;
}

#[tokio::test]
async fn ordered_push_and_pull_consumers() {
    let (server, _store) = js_server();
    within(LIMIT, "ordered consumers", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(mem_config("ORD", &["ord.>"]))
            .await
            .unwrap();
        const N: usize = 300;
        for i in 0..N {
            js.publish(format!("ord.{}", i % 4), Bytes::from(format!("{i}")))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let pull_ordered: consumer::OrderedPullConsumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: "ord.>".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut msgs = pull_ordered.messages().await.unwrap();
        for i in 0..N {
            let m = next(&mut msgs, Duration::from_secs(5)).await;
            assert_eq!(
                &m.payload[..],
                format!("{i}").as_bytes(),
                "pull ordered #{i}"
            );
            assert_eq!(m.info().unwrap().stream_sequence, i as u64 + 1);
        }

        let push_ordered: consumer::OrderedPushConsumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: js_inbox(&server).await,
                filter_subject: "ord.1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut msgs = push_ordered.messages().await.unwrap();
        for i in (1..N).step_by(4) {
            let m = next(&mut msgs, Duration::from_secs(5)).await;
            assert_eq!(&m.payload[..], format!("{i}").as_bytes(), "push ordered");
            assert_eq!(m.subject.as_str(), "ord.1");
        }
        js.publish("ord.1", Bytes::from_static(b"live"))
            .await
            .unwrap()
            .await
            .unwrap();
        let m = next(&mut msgs, Duration::from_secs(5)).await;
        assert_eq!(&m.payload[..], b"live");
    })
    .await;
}

async fn js_inbox(server: &Server) -> String {
    connect(server).await.new_inbox()
}

#[tokio::test]
async fn durable_consumer_survives_sigkill() {
    let store = tempfile::tempdir().expect("temp store dir");
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "before crash", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(Config {
                storage: StorageType::File,
                ..mem_config("CRASH", &["crash.>"])
            })
            .await
            .unwrap();
        publish_n(&js, "crash.a", 10).await;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(pull::Config {
                ack_wait: Duration::from_secs(2),
                ..durable_pull("D")
            })
            .await
            .unwrap();
        let msgs: Vec<Message> = consumer
            .fetch()
            .max_messages(6)
            .messages()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(msgs.len(), 6);
        for m in &msgs[..4] {
            m.double_ack().await.unwrap();
        }
        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.ack_floor.stream_sequence, 4);
        assert_eq!(info.num_ack_pending, 2);
        // nats-server writes consumer state to its file asynchronously (well
        // under a second after the ack) with nothing observable saying when:
        // allow that before the SIGKILL.
        tokio::time::sleep(Duration::from_secs(1)).await;
    })
    .await;
    server.kill(); // SIGKILL

    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "after restart", async {
        let js = js_context(&server).await;
        let stream = js.get_stream("CRASH").await.unwrap();
        let consumer: consumer::PullConsumer = stream.get_consumer("D").await.unwrap();
        let info = consumer.cached_info();
        assert_eq!(info.ack_floor.stream_sequence, 4);
        assert_eq!(info.ack_floor.consumer_sequence, 4);
        assert_eq!(info.delivered.stream_sequence, 6);
        assert_eq!(info.num_ack_pending, 2);
        assert_eq!(info.num_pending, 4);
        let mut msgs = consumer.messages().await.unwrap();
        let mut got = Vec::new();
        for _ in 0..6 {
            let m = next(&mut msgs, Duration::from_secs(6)).await;
            let (sseq, cseq, delivered, _) = meta(&m);
            got.push((sseq, cseq, delivered));
            m.double_ack().await.unwrap();
        }
        // New ones first, then the two unacked ones after their ack wait;
        // the acked ones (1..=4) never come back.
        assert_eq!(
            got,
            vec![
                (7, 7, 1),
                (8, 8, 1),
                (9, 9, 1),
                (10, 10, 1),
                (5, 11, 2),
                (6, 12, 2)
            ]
        );
        let info = consumer.get_info().await.unwrap();
        assert_eq!(info.ack_floor.stream_sequence, 10);
        assert_eq!(info.num_pending, 0);
        assert_eq!(info.num_ack_pending, 0);
    })
    .await;
}
