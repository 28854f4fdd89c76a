//! JetStream streams through async-nats' `jetstream` API: stream CRUD,
//! publish acks and `Nats-Msg-Id` de-duplication, expected-header checks,
//! message get (raw and direct), message delete, purge variants, names and
//! list, account info, and a SIGKILL crash/restart durability check.
//!
//! Error codes and texts are the ones the reference nats-server v2.15.0
//! returns; async-nats renders a JetStream API error as
//! `"<description> (code <status>, error code <err_code>)"`.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    context::{CreateStreamErrorKind, GetStreamErrorKind, PublishErrorKind},
    message::PublishMessage,
    stream::{
        Config, DeleteMessageErrorKind, DirectGetErrorKind, DiscardPolicy, PurgeErrorKind,
        RawMessageErrorKind, StorageType,
    },
    ErrorCode,
};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rnats_itest::{
    connect, file_config, js_context, js_server, mem_config, start_jetstream, within,
};

const LIMIT: Duration = Duration::from_secs(30);

/// The text of the error that caused `err` (the server's JetStream error).
fn source_text(err: &dyn std::error::Error) -> String {
    err.source()
        .map(|s| s.to_string())
        .unwrap_or_else(|| panic!("error {err} has no source"))
}

#[tokio::test]
async fn create_get_info_delete_stream() {
    let (server, _store) = js_server();
    within(LIMIT, "stream CRUD", async {
        let js = js_context(&server).await;

        let mut stream = js
            .create_stream(file_config("ORDERS", &["orders.>"]))
            .await
            .expect("create stream");
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.name, "ORDERS");
        assert_eq!(info.config.subjects, vec!["orders.>".to_string()]);
        assert_eq!(info.config.storage, StorageType::File);
        assert_eq!(info.config.max_messages, -1);
        assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
        assert_eq!(info.state.messages, 0);
        assert_eq!(info.state.last_sequence, 0);

        let mem = js
            .create_stream(mem_config("CACHE", &["cache.*"]))
            .await
            .expect("create memory stream");
        assert_eq!(mem.cached_info().config.storage, StorageType::Memory);

        // Same config again: fine. Different config: 10058.
        js.create_stream(file_config("ORDERS", &["orders.>"]))
            .await
            .expect("idempotent create");
        let err = js
            .create_stream(Config {
                max_messages: 10,
                ..file_config("ORDERS", &["orders.>"])
            })
            .await
            .expect_err("create with a different config");
        match err.kind() {
            CreateStreamErrorKind::JetStream(e) => {
                assert_eq!(e.error_code(), ErrorCode::STREAM_NAME_EXIST);
                assert_eq!(e.code(), 400);
                assert_eq!(
                    e.to_string(),
                    "stream name already in use with a different configuration (code 400, error code 10058)"
                );
            }
            other => panic!("unexpected error kind {other:?}"),
        }

        // Overlapping subjects: 10065.
        let err = js
            .create_stream(mem_config("OVERLAP", &["orders.new"]))
            .await
            .expect_err("overlapping subjects");
        match err.kind() {
            CreateStreamErrorKind::JetStream(e) => assert_eq!(
                e.to_string(),
                "subjects overlap with an existing stream (code 400, error code 10065)"
            ),
            other => panic!("unexpected error kind {other:?}"),
        }

        let mut got = js.get_stream("ORDERS").await.expect("get stream");
        assert_eq!(got.info().await.unwrap().config.name, "ORDERS");

        assert!(js.delete_stream("ORDERS").await.expect("delete").success);
        let errs = [
            js.get_stream("ORDERS").await.expect_err("get deleted"),
            match js.delete_stream("ORDERS").await {
                Ok(_) => panic!("deleting a deleted stream succeeded"),
                Err(e) => e,
            },
        ];
        for err in errs {
            match err.kind() {
                GetStreamErrorKind::JetStream(e) => {
                    assert_eq!(e.error_code(), ErrorCode::STREAM_NOT_FOUND);
                    assert_eq!(e.code(), 404);
                    assert_eq!(e.to_string(), "stream not found (code 404, error code 10059)");
                }
                other => panic!("unexpected error kind {other:?}"),
            }
        }
        // The remaining stream is still there.
        let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
        assert_eq!(names, vec!["CACHE".to_string()]);
    })
    .await;
}

#[tokio::test]
async fn update_stream_allowed_and_refused() {
    let (server, _store) = js_server();
    within(LIMIT, "stream update", async {
        let js = js_context(&server).await;
        js.create_stream(file_config("UPD", &["upd.a"]))
            .await
            .unwrap();
        for _ in 0..6 {
            js.publish("upd.a", Bytes::from_static(b"m"))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let info = js
            .update_stream(Config {
                max_messages: 2,
                description: Some("two at most".into()),
                ..file_config("UPD", &["upd.a", "upd.b"])
            })
            .await
            .expect("update");
        assert_eq!(info.config.max_messages, 2);
        assert_eq!(info.config.description.as_deref(), Some("two at most"));
        assert_eq!(info.config.subjects, vec!["upd.a", "upd.b"]);
        assert_eq!(info.state.messages, 2);
        assert_eq!(info.state.first_sequence, 5);
        let ack = js
            .publish("upd.b", Bytes::from_static(b"new subject"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((ack.stream.as_str(), ack.sequence), ("UPD", 7));

        let err = js
            .update_stream(Config {
                storage: StorageType::Memory,
                ..file_config("UPD", &["upd.a", "upd.b"])
            })
            .await
            .expect_err("storage change");
        match err.kind() {
            CreateStreamErrorKind::JetStream(e) => {
                assert_eq!(e.error_code(), ErrorCode::STREAM_INVALID_CONFIG);
                assert_eq!(
                    e.to_string(),
                    "stream configuration update can not change storage type (code 500, error code 10052)"
                );
            }
            other => panic!("unexpected error kind {other:?}"),
        }
        let err = js
            .update_stream(mem_config("MISSING", &["missing"]))
            .await
            .expect_err("update missing stream");
        // async-nats maps err_code 10059 on create/update to its own kind.
        assert_eq!(err.kind(), CreateStreamErrorKind::NotFound);
    })
    .await;
}

#[tokio::test]
async fn publish_acks_and_msg_id_dedup() {
    let (server, _store) = js_server();
    within(LIMIT, "publish acks", async {
        let js = js_context(&server).await;
        js.create_stream(mem_config("EV", &["ev.>"])).await.unwrap();

        for i in 1..=3u64 {
            let ack = js
                .publish("ev.a", Bytes::from(format!("m{i}")))
                .await
                .unwrap()
                .await
                .unwrap();
            assert_eq!(ack.stream, "EV");
            assert_eq!(ack.sequence, i);
            assert!(!ack.duplicate);
        }

        let first = js
            .send_publish(
                "ev.dedup",
                PublishMessage::build()
                    .message_id("order-1")
                    .payload(Bytes::from_static(b"first")),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((first.sequence, first.duplicate), (4, false));
        let again = js
            .send_publish(
                "ev.dedup",
                PublishMessage::build()
                    .message_id("order-1")
                    .payload(Bytes::from_static(b"second")),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((again.sequence, again.duplicate), (4, true));

        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", "order-1");
        let third = js
            .publish_with_headers("ev.dedup", headers, Bytes::from_static(b"third"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((third.sequence, third.duplicate), (4, true));

        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", "order-2");
        let other = js
            .publish_with_headers("ev.dedup", headers, Bytes::from_static(b"other"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((other.sequence, other.duplicate), (5, false));

        let mut stream = js.get_stream("EV").await.unwrap();
        assert_eq!(stream.info().await.unwrap().state.messages, 5);
        let m = stream.get_raw_message(4).await.unwrap();
        assert_eq!(&m.payload[..], b"first");

        // Nothing captures this subject: no responders -> StreamNotFound.
        let err = js
            .publish("nobody.here", Bytes::from_static(b"x"))
            .await
            .unwrap()
            .await
            .expect_err("publish without a stream");
        assert_eq!(err.kind(), PublishErrorKind::StreamNotFound);
    })
    .await;
}

#[tokio::test]
async fn expected_header_checks() {
    let (server, _store) = js_server();
    within(LIMIT, "expected headers", async {
        let js = js_context(&server).await;
        js.create_stream(mem_config("EXP", &["exp.>"]))
            .await
            .unwrap();
        let publish = |subject: &'static str, msg: PublishMessage| {
            let js = js.clone();
            async move { js.send_publish(subject, msg).await.unwrap().await }
        };
        let body = || PublishMessage::build().payload(Bytes::from_static(b"x"));

        let ack = publish("exp.a", body().expected_last_sequence(0))
            .await
            .unwrap();
        assert_eq!(ack.sequence, 1);
        let ack = publish("exp.b", body().message_id("id-2").expected_stream("EXP"))
            .await
            .unwrap();
        assert_eq!(ack.sequence, 2);

        let err = publish("exp.a", body().expected_stream("NOPE"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::Other);
        assert_eq!(
            source_text(&err),
            "expected stream does not match (code 400, error code 10060)"
        );

        let err = publish("exp.a", body().expected_last_sequence(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::WrongLastSequence);
        assert_eq!(
            source_text(&err),
            "wrong last sequence: 2 (code 400, error code 10071)"
        );

        let err = publish("exp.a", body().expected_last_subject_sequence(2))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::WrongLastSequence);
        assert_eq!(
            source_text(&err),
            "wrong last sequence: 1 (code 400, error code 10071)"
        );

        let err = publish("exp.a", body().expected_last_message_id("id-1"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::WrongLastMessageId);
        assert_eq!(
            source_text(&err),
            "wrong last msg ID: id-2 (code 400, error code 10070)"
        );

        let ack = publish("exp.a", body().expected_last_subject_sequence(1))
            .await
            .unwrap();
        assert_eq!(ack.sequence, 3);
        let ack = publish("exp.c", body().expected_last_subject_sequence(0))
            .await
            .unwrap();
        assert_eq!(ack.sequence, 4);
        let ack = publish("exp.c", body().expected_last_sequence(4))
            .await
            .unwrap();
        assert_eq!(ack.sequence, 5);

        let mut stream = js.get_stream("EXP").await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.state.messages, 5);
        assert_eq!(info.state.last_sequence, 5);
    })
    .await;
}

#[tokio::test]
async fn raw_message_get_and_delete() {
    let (server, _store) = js_server();
    within(LIMIT, "raw message get", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(file_config("GET", &["get.*"]))
            .await
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("X-Kind", "first");
        js.publish_with_headers("get.a", headers, Bytes::from_static(b"a1"))
            .await
            .unwrap()
            .await
            .unwrap();
        for (s, p) in [("get.b", "b1"), ("get.a", "a2"), ("get.b", "b2")] {
            js.publish(s, Bytes::from(p)).await.unwrap().await.unwrap();
        }

        let m = stream.get_raw_message(1).await.unwrap();
        assert_eq!(m.subject.as_str(), "get.a");
        assert_eq!(m.sequence, 1);
        assert_eq!(&m.payload[..], b"a1");
        assert_eq!(m.headers.get("X-Kind").map(|v| v.as_str()), Some("first"));

        let m = stream
            .get_last_raw_message_by_subject("get.a")
            .await
            .unwrap();
        assert_eq!((m.sequence, &m.payload[..]), (3, &b"a2"[..]));
        let m = stream
            .raw_message_builder()
            .sequence(3)
            .next_by_subject("get.b")
            .send()
            .await
            .unwrap();
        assert_eq!((m.sequence, &m.payload[..]), (4, &b"b2"[..]));

        let err = stream.get_raw_message(99).await.unwrap_err();
        assert_eq!(err.kind(), RawMessageErrorKind::NoMessageFound);
        let err = stream
            .get_last_raw_message_by_subject("get.none")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RawMessageErrorKind::NoMessageFound);

        assert!(stream.delete_message(2).await.unwrap());
        let err = stream.get_raw_message(2).await.unwrap_err();
        assert_eq!(err.kind(), RawMessageErrorKind::NoMessageFound);
        let err = stream.delete_message(2).await.unwrap_err();
        match err.kind() {
            DeleteMessageErrorKind::JetStream(e) => {
                assert_eq!(
                    e.to_string(),
                    "sequence 2 not found (code 400, error code 10043)"
                )
            }
            other => panic!("unexpected error kind {other:?}"),
        }
        // get_last by subject now skips the deleted message.
        let m = stream
            .get_last_raw_message_by_subject("get.b")
            .await
            .unwrap();
        assert_eq!(m.sequence, 4);

        let info = stream
            .info_builder()
            .with_deleted(true)
            .fetch()
            .await
            .unwrap()
            .info;
        assert_eq!(info.state.messages, 3);
        assert_eq!(info.state.deleted, Some(vec![2]));
        assert_eq!(info.state.deleted_count, Some(1));
    })
    .await;
}

#[tokio::test]
async fn direct_get() {
    let (server, _store) = js_server();
    within(LIMIT, "direct get", async {
        let js = js_context(&server).await;
        let stream = js
            .create_stream(Config {
                allow_direct: true,
                ..mem_config("DG", &["dg.*"])
            })
            .await
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("X-App", "v1");
        js.publish_with_headers("dg.a", headers, Bytes::from_static(b"one"))
            .await
            .unwrap()
            .await
            .unwrap();
        js.publish("dg.b", Bytes::from_static(b"two"))
            .await
            .unwrap()
            .await
            .unwrap();
        js.publish("dg.a", Bytes::from_static(b"three"))
            .await
            .unwrap()
            .await
            .unwrap();

        let m = stream.direct_get(1).await.unwrap();
        assert_eq!(m.subject.as_str(), "dg.a");
        assert_eq!(m.sequence, 1);
        assert_eq!(&m.payload[..], b"one");
        assert_eq!(m.headers.get("X-App").map(|v| v.as_str()), Some("v1"));

        let m = stream.direct_get_last_for_subject("dg.a").await.unwrap();
        assert_eq!((m.sequence, &m.payload[..]), (3, &b"three"[..]));
        let m = stream
            .direct_get_next_for_subject("dg.a", Some(2))
            .await
            .unwrap();
        assert_eq!(m.sequence, 3);

        let err = stream.direct_get(42).await.unwrap_err();
        assert_eq!(err.kind(), DirectGetErrorKind::NotFound);
        let err = stream
            .direct_get_last_for_subject("dg.none")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), DirectGetErrorKind::NotFound);

        // The raw reply: the stored message plus Nats-* headers.
        let client = connect(&server).await;
        let reply = client
            .request("$JS.API.DIRECT.GET.DG.dg.b", Bytes::new())
            .await
            .unwrap();
        assert_eq!(&reply.payload[..], b"two");
        let h = reply.headers.expect("direct get reply has headers");
        assert_eq!(h.get("Nats-Stream").map(|v| v.as_str()), Some("DG"));
        assert_eq!(h.get("Nats-Subject").map(|v| v.as_str()), Some("dg.b"));
        assert_eq!(h.get("Nats-Sequence").map(|v| v.as_str()), Some("2"));
        assert!(h.get("Nats-Time-Stamp").is_some());
        let missing = client
            .request(
                "$JS.API.DIRECT.GET.DG",
                Bytes::from_static(br#"{"seq":42}"#),
            )
            .await
            .unwrap();
        assert_eq!(missing.status, Some(async_nats::StatusCode::NOT_FOUND));
        assert_eq!(missing.description.as_deref(), Some("Message Not Found"));
        assert!(missing.payload.is_empty());
    })
    .await;
}

#[tokio::test]
async fn purge_variants() {
    let (server, _store) = js_server();
    within(LIMIT, "purge", async {
        let js = js_context(&server).await;
        let mut stream = js
            .create_stream(file_config("PRG", &["prg.*"]))
            .await
            .unwrap();
        for i in 1..=10u32 {
            let subject = if i % 2 == 1 { "prg.odd" } else { "prg.even" };
            js.publish(subject, Bytes::from(i.to_string()))
                .await
                .unwrap()
                .await
                .unwrap();
        }

        let r = stream.purge().filter("prg.odd").await.unwrap();
        assert!(r.success);
        assert_eq!(r.purged, 5);
        let subjects: HashMap<String, usize> = stream
            .info_with_subjects(">")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(subjects, HashMap::from([("prg.even".to_string(), 5)]));

        let r = stream.purge().keep(2).await.unwrap();
        assert_eq!(r.purged, 3);
        let st = stream.info().await.unwrap().state.clone();
        assert_eq!(
            (st.messages, st.first_sequence, st.last_sequence),
            (2, 8, 10)
        );

        let r = stream.purge().sequence(10).await.unwrap();
        assert_eq!(r.purged, 1);
        let st = stream.info().await.unwrap().state.clone();
        assert_eq!((st.messages, st.first_sequence), (1, 10));

        js.publish("prg.odd", Bytes::from_static(b"11"))
            .await
            .unwrap()
            .await
            .unwrap();
        let r = stream.purge().filter("prg.even").await.unwrap();
        assert_eq!(r.purged, 1);

        let r = stream.purge().await.unwrap();
        assert_eq!(r.purged, 1);
        let st = stream.info().await.unwrap().state.clone();
        assert_eq!((st.messages, st.bytes), (0, 0));
        assert_eq!((st.first_sequence, st.last_sequence), (12, 11));

        // Deny purge.
        let deny = js
            .create_stream(Config {
                deny_purge: true,
                ..mem_config("NOPURGE", &["nopurge"])
            })
            .await
            .unwrap();
        let err = deny.purge().await.unwrap_err();
        match err.kind() {
            PurgeErrorKind::JetStream(e) => {
                assert_eq!(
                    e.to_string(),
                    "stream purge not permitted (code 500, error code 10110)"
                )
            }
            other => panic!("unexpected error kind {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn stream_names_list_and_lookup_by_subject() {
    let (server, _store) = js_server();
    within(LIMIT, "stream names", async {
        let js = js_context(&server).await;
        let names = ["KILO", "ALPHA", "JULIET", "BRAVO"];
        for n in names {
            let subject = format!("{}.>", n.to_lowercase());
            js.create_stream(mem_config(n, &[subject.as_str()]))
                .await
                .unwrap();
        }
        let mut got: Vec<String> = js.stream_names().try_collect().await.unwrap();
        got.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want);

        let infos: Vec<jetstream::stream::Info> = js.streams().try_collect().await.unwrap();
        let mut listed: Vec<String> = infos.iter().map(|i| i.config.name.clone()).collect();
        listed.sort();
        assert_eq!(listed, want);
        assert!(infos
            .iter()
            .all(|i| i.config.storage == StorageType::Memory));

        assert_eq!(js.stream_by_subject("juliet.x.y").await.unwrap(), "JULIET");
        assert!(js.stream_by_subject("zulu.x").await.is_err());

        // Many streams: names page through all of them.
        for i in 0..30 {
            let name = format!("MANY{i:02}");
            let subject = format!("many.{i}");
            js.create_stream(mem_config(&name, &[subject.as_str()]))
                .await
                .unwrap();
        }
        let all: Vec<String> = js.stream_names().try_collect().await.unwrap();
        assert_eq!(all.len(), 34);
        let count = js
            .streams()
            .filter(|r| futures::future::ready(r.is_ok()))
            .count()
            .await;
        assert_eq!(count, 34);
    })
    .await;
}

#[tokio::test]
async fn discard_new_and_account_info() {
    let (server, _store) = js_server();
    within(LIMIT, "limits and account", async {
        let js = js_context(&server).await;
        let before = js.query_account().await.unwrap();
        assert_eq!((before.streams, before.memory, before.storage), (0, 0, 0));

        js.create_stream(Config {
            max_messages: 2,
            discard: DiscardPolicy::New,
            ..mem_config("FULL", &["full"])
        })
        .await
        .unwrap();
        for seq in 1..=2 {
            let ack = js
                .publish("full", Bytes::from_static(b"12345"))
                .await
                .unwrap()
                .await
                .unwrap();
            assert_eq!(ack.sequence, seq);
        }
        let err = js
            .publish("full", Bytes::from_static(b"12345"))
            .await
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::Other);
        assert_eq!(
            source_text(&err),
            "maximum messages exceeded (code 503, error code 10077)"
        );

        js.create_stream(file_config("DISK", &["disk"]))
            .await
            .unwrap();
        js.publish("disk", Bytes::from_static(b"12345"))
            .await
            .unwrap()
            .await
            .unwrap();

        let after = js.query_account().await.unwrap();
        assert_eq!(after.streams, 2);
        assert_eq!(after.consumers, 0);
        // memory: subject + payload + 16 per message; file: + 30.
        assert_eq!(after.memory, 2 * (4 + 5 + 16));
        assert_eq!(after.storage, 4 + 5 + 30);
    })
    .await;
}

#[tokio::test]
async fn crash_restart_keeps_every_acked_message() {
    const N: u64 = 2000;
    let store = tempfile::tempdir().expect("temp store dir");
    let mut server = start_jetstream(store.path(), &[]);
    within(Duration::from_secs(45), "publish before crash", async {
        let js = js_context(&server).await;
        js.create_stream(file_config("CRASH", &["crash.*"]))
            .await
            .unwrap();
        let mut pending = Vec::with_capacity(N as usize);
        for i in 1..=N {
            let subject = format!("crash.{}", i % 10);
            pending.push(
                js.publish(subject, Bytes::from(format!("msg-{i}")))
                    .await
                    .unwrap(),
            );
        }
        for (i, fut) in pending.into_iter().enumerate() {
            let ack = fut.await.expect("publish ack");
            assert_eq!(ack.stream, "CRASH");
            assert_eq!(ack.sequence, i as u64 + 1, "acks come back in order");
        }
    })
    .await;

    server.kill(); // SIGKILL
    let server = start_jetstream(store.path(), &[]);
    within(Duration::from_secs(45), "verify after restart", async {
        let js = js_context(&server).await;
        let mut stream = js.get_stream("CRASH").await.expect("stream recovered");
        let info = stream.info().await.unwrap();
        assert_eq!(info.state.messages, N);
        assert_eq!(info.state.first_sequence, 1);
        assert_eq!(info.state.last_sequence, N);
        for seq in 1..=N {
            let m = stream
                .get_raw_message(seq)
                .await
                .unwrap_or_else(|e| panic!("seq {seq} missing after restart: {e}"));
            assert_eq!(m.sequence, seq);
            assert_eq!(m.subject.as_str(), format!("crash.{}", seq % 10));
            assert_eq!(&m.payload[..], format!("msg-{seq}").as_bytes());
        }
        let ack = js
            .publish("crash.0", Bytes::from_static(b"after"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.sequence, N + 1);
    })
    .await;
}
