//! Mirrors and sources through async-nats: a mirror keeps the origin's
//! sequences, a stream aggregates several sources (filter, transform), the
//! stream info parses in the client's types, copying resumes after a
//! SIGKILL with every message present exactly once, and deleting either
//! end behaves as with nats-server.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::stream::{Config, Source, StorageType, SubjectTransform};
use async_nats::jetstream::{self, Context};
use rnats_itest::{file_config, js_context, js_server, start_jetstream, within};

const LIMIT: Duration = Duration::from_secs(60);

/// Polls `stream`'s info until `pred` holds (10 s at most).
async fn wait_until(
    js: &Context,
    stream: &str,
    what: &str,
    pred: impl Fn(&jetstream::stream::Info) -> bool,
) -> jetstream::stream::Info {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = js
            .get_stream(stream)
            .await
            .expect("stream exists")
            .info()
            .await
            .expect("stream info")
            .clone();
        if pred(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{stream}: {what} never happened; state {:?}, mirror {:?}, sources {:?}",
            info.state,
            info.config.mirror,
            info.sources
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn source(name: &str) -> Source {
    Source {
        name: name.into(),
        ..Default::default()
    }
}

/// Every message of `stream` as (subject, Nats-Stream-Source header).
async fn all_messages(js: &Context, stream: &str) -> Vec<(u64, String, String)> {
    let s = js.get_stream(stream).await.unwrap();
    let last = s.cached_info().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = s.get_raw_message(seq).await {
            let src = m
                .headers
                .get("Nats-Stream-Source")
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push((seq, m.subject.to_string(), src));
        }
    }
    out
}

#[tokio::test]
async fn mirror_and_sources_through_async_nats() {
    let (server, _dir) = js_server();
    within(LIMIT, "mirror and sources", async {
        let js = js_context(&server).await;
        js.create_stream(file_config("ORIG", &["orig.>"]))
            .await
            .unwrap();
        js.create_stream(file_config("OTHER", &["other.>"]))
            .await
            .unwrap();
        for i in 0..6u32 {
            js.publish(format!("orig.{}", i % 2), format!("o{i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        js.publish("other.a", "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
        js.get_stream("ORIG")
            .await
            .unwrap()
            .delete_message(3)
            .await
            .unwrap();

        js.create_stream(Config {
            name: "MIR".into(),
            mirror: Some(source("ORIG")),
            ..Default::default()
        })
        .await
        .unwrap();
        js.create_stream(Config {
            name: "AGG".into(),
            sources: Some(vec![
                Source {
                    filter_subject: Some("orig.1".into()),
                    ..source("ORIG")
                },
                Source {
                    subject_transforms: vec![SubjectTransform {
                        source: "other.*".into(),
                        destination: "renamed.{{wildcard(1)}}".into(),
                    }],
                    ..source("OTHER")
                },
            ]),
            ..Default::default()
        })
        .await
        .unwrap();

        // The mirror: same sequences, the deleted one a gap.
        let info = wait_until(&js, "MIR", "mirror caught up", |i| {
            i.state.last_sequence == 6
        })
        .await;
        assert_eq!((info.state.messages, info.state.first_sequence), (5, 1));
        let mirror = info.mirror.expect("mirror info");
        assert_eq!((mirror.name.as_str(), mirror.lag), ("ORIG", 0));
        assert!(mirror.active.is_some());
        let orig = js.get_stream("ORIG").await.unwrap();
        let mir = js.get_stream("MIR").await.unwrap();
        for seq in [1, 2, 4, 5, 6] {
            let (a, b) = (
                orig.get_raw_message(seq).await.unwrap(),
                mir.get_raw_message(seq).await.unwrap(),
            );
            assert_eq!(
                (a.subject, a.payload, a.time),
                (b.subject, b.payload, b.time)
            );
        }
        assert!(mir.get_raw_message(3).await.is_err());

        // The aggregate: orig.1 (seqs 2, 4, 6) and the renamed other.a.
        let info = wait_until(&js, "AGG", "sources copied", |i| i.state.messages == 4).await;
        assert_eq!(info.sources.len(), 2);
        assert!(info
            .sources
            .iter()
            .all(|s| s.lag == 0 && s.active.is_some()));
        let msgs = all_messages(&js, "AGG").await;
        let renamed: Vec<_> = msgs.iter().filter(|m| m.1 == "renamed.a").collect();
        assert_eq!(renamed.len(), 1);
        assert!(renamed[0]
            .2
            .starts_with("OTHER 1 other.* renamed.{{wildcard(1)}} other.a "));
        let mut orig_seqs: Vec<&str> = msgs
            .iter()
            .filter(|m| m.1 == "orig.1")
            .map(|m| m.2.split(' ').nth(1).unwrap())
            .collect();
        orig_seqs.sort();
        assert_eq!(orig_seqs, ["2", "4", "6"]);
    })
    .await;
}

/// A SIGKILL while sources and a mirror are copying: after the restart they
/// resume where the stored messages say, so nothing is lost or doubled.
#[tokio::test]
async fn sourcing_resumes_after_sigkill_exactly_once() {
    let store = tempfile::tempdir().unwrap();
    let mut server = start_jetstream(store.path(), &[]);
    const BURST: u32 = 400;
    within(LIMIT, "before the kill", async {
        let js = js_context(&server).await;
        for name in ["A", "B"] {
            js.create_stream(file_config(name, &[&format!("{}.>", name.to_lowercase())]))
                .await
                .unwrap();
        }
        js.create_stream(Config {
            name: "AGG".into(),
            storage: StorageType::File,
            sources: Some(vec![source("A"), source("B")]),
            ..Default::default()
        })
        .await
        .unwrap();
        js.create_stream(Config {
            name: "MIR".into(),
            storage: StorageType::File,
            mirror: Some(source("A")),
            ..Default::default()
        })
        .await
        .unwrap();
        // Publish without waiting for each ack, so the copying is still
        // under way when the process dies.
        let mut acks = Vec::new();
        for i in 0..BURST {
            acks.push(js.publish(format!("a.{i}"), "x".into()).await.unwrap());
            acks.push(js.publish(format!("b.{i}"), "y".into()).await.unwrap());
        }
        for ack in acks {
            ack.await.unwrap();
        }
    })
    .await;
    server.kill();

    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "after the kill", async {
        let js = js_context(&server).await;
        for i in BURST..BURST + 50 {
            js.publish(format!("a.{i}"), "x".into())
                .await
                .unwrap()
                .await
                .unwrap();
            js.publish(format!("b.{i}"), "y".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let total = 2 * (BURST + 50) as u64;
        wait_until(&js, "AGG", "all sourced", |i| i.state.messages >= total).await;
        let mirror = wait_until(&js, "MIR", "mirror caught up", |i| {
            i.state.last_sequence == (BURST + 50) as u64
        })
        .await;
        assert_eq!(mirror.state.messages, (BURST + 50) as u64);
        // A moment more: nothing beyond the expected count arrives.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let msgs = all_messages(&js, "AGG").await;
        let mut seen: BTreeMap<(String, u64), u32> = BTreeMap::new();
        for (_, _, src) in &msgs {
            let mut f = src.split(' ');
            let stream = f.next().unwrap().to_string();
            let seq: u64 = f.next().unwrap().parse().unwrap();
            *seen.entry((stream, seq)).or_default() += 1;
        }
        let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(doubled.is_empty(), "copied twice: {doubled:?}");
        for stream in ["A", "B"] {
            for seq in 1..=(BURST + 50) as u64 {
                assert!(
                    seen.contains_key(&(stream.to_string(), seq)),
                    "{stream} {seq} missing"
                );
            }
        }
        assert_eq!(msgs.len() as u64, total);
    })
    .await;
}

/// Deleting the origin: the source reports it missing and copies nothing;
/// a re-created origin is detected (new identity) and copied from its start.
/// Deleting the sourcing stream stops its task: a new stream of that name
/// starts from scratch and gets each message once.
#[tokio::test]
async fn deleting_either_end() {
    let (server, dir) = js_server();
    within(LIMIT, "deletes", async {
        let js = js_context(&server).await;
        js.create_stream(file_config("SRC", &["src.>"]))
            .await
            .unwrap();
        js.publish("src.1", "1".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let agg = Config {
            name: "AGG".into(),
            sources: Some(vec![source("SRC")]),
            ..Default::default()
        };
        js.create_stream(agg.clone()).await.unwrap();
        wait_until(&js, "AGG", "first copy", |i| i.state.messages == 1).await;

        js.delete_stream("SRC").await.unwrap();
        let raw = rnats_itest::connect(&server).await;
        let info: serde_json::Value = serde_json::from_slice(
            &raw.request("$JS.API.STREAM.INFO.AGG", "".into())
                .await
                .unwrap()
                .payload,
        )
        .unwrap();
        assert_eq!(info["sources"][0]["error"]["err_code"], 10059, "{info}");

        js.create_stream(file_config("SRC", &["src.>"]))
            .await
            .unwrap();
        js.publish("src.2", "2".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let info = wait_until(&js, "AGG", "copy from the new origin", |i| {
            i.state.messages == 2
        })
        .await;
        assert_eq!(info.sources[0].lag, 0);
        let msgs = all_messages(&js, "AGG").await;
        assert!(msgs[1].2.starts_with("SRC 1 > > src.2 "), "{msgs:?}");
        assert_ne!(
            msgs[0].2.rsplit(' ').next(),
            msgs[1].2.rsplit(' ').next(),
            "the identity changes with the re-created origin"
        );

        // Delete the aggregate while its origin keeps growing.
        js.delete_stream("AGG").await.unwrap();
        for i in 0..20 {
            js.publish(format!("src.more{i}"), "m".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !dir.path().join("jetstream/$G/streams/AGG").exists(),
            "a stopped source wrote into a deleted stream"
        );
        js.create_stream(agg).await.unwrap();
        wait_until(&js, "AGG", "re-created aggregate", |i| {
            i.state.messages == 21
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let info = js
            .get_stream("AGG")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(info.state.messages, 21);
    })
    .await;
}
