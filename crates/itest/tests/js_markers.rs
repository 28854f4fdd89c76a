//! Subject delete markers (ADR-43) and KV limit markers through async-nats:
//! a stream with `subject_delete_marker_ttl` replaces the last message of a
//! subject that `max_age` expires with a `Nats-Marker-Reason: MaxAge` marker
//! (which consumers receive and which expires in turn), also after a restart;
//! a KV bucket with `limit_markers` gives per-key TTLs (`create_with_ttl`),
//! whose expiry watchers see as a purge, and purge markers with a TTL
//! (`purge_with_ttl`) that go away without leaving another marker.
//!
//! Everything asserted was observed from the reference nats-server v2.15.0.

use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{self, DeliverPolicy},
    kv::{self, Operation},
    stream::{Config, StorageType},
};
use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, js_context, js_server, start_jetstream, within};

const LIMIT: Duration = Duration::from_secs(30);

fn header(m: &jetstream::message::StreamMessage, name: &str) -> Option<String> {
    m.headers.get(name).map(|v| v.as_str().to_string())
}

/// Polls `check` every 50 ms until it returns Some, for at most `timeout`.
async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn marker_stream(storage: StorageType) -> Config {
    Config {
        name: "S".into(),
        subjects: vec!["s.>".into()],
        storage,
        max_age: Duration::from_secs(1),
        subject_delete_marker_ttl: Some(Duration::from_secs(2)),
        ..Default::default()
    }
}

#[tokio::test]
async fn max_age_marker_reaches_consumers_and_expires() {
    let (server, _store) = js_server();
    within(LIMIT, "max_age markers", async {
        let js = js_context(&server).await;
        let mut stream = js
            .create_stream(marker_stream(StorageType::File))
            .await
            .unwrap();
        assert!(stream.cached_info().config.allow_message_ttl);
        js.publish("s.a", "a1".into()).await.unwrap().await.unwrap();
        js.publish("s.a", "a2".into()).await.unwrap().await.unwrap();
        let c = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut msgs = c.messages().await.unwrap();
        for want in ["a1", "a2"] {
            let m = msgs.next().await.unwrap().unwrap();
            assert_eq!(m.payload, want);
            m.ack().await.unwrap();
        }
        // Once a2 is past max_age, a marker takes its place (seq 3).
        let m = msgs.next().await.unwrap().unwrap();
        assert_eq!((m.subject.as_str(), m.payload.len()), ("s.a", 0), "{m:?}");
        let h = m.headers.clone().unwrap_or_default();
        assert_eq!(
            h.get("Nats-Marker-Reason").map(|v| v.as_str()),
            Some("MaxAge")
        );
        assert_eq!(h.get("Nats-TTL").map(|v| v.as_str()), Some("2s"));
        assert_eq!(h.get("Nats-Rollup").map(|v| v.as_str()), Some("sub"));
        let last = stream.get_last_raw_message_by_subject("s.a").await.unwrap();
        assert_eq!(last.sequence, 3);
        assert_eq!(
            header(&last, "Nats-Marker-Reason").as_deref(),
            Some("MaxAge")
        );
        let st = stream.info().await.unwrap().state.clone();
        assert_eq!(
            (st.messages, st.first_sequence, st.last_sequence),
            (1, 3, 3)
        );

        // The marker expires by its TTL and leaves nothing behind.
        wait_for(Duration::from_secs(6), "the marker to expire", || {
            let mut stream = stream.clone();
            async move { (stream.info().await.ok()?.state.messages == 0).then_some(()) }
        })
        .await;
        let st = stream.info().await.unwrap().state.clone();
        assert_eq!(st.last_sequence, 3);
    })
    .await;
}

#[tokio::test]
async fn max_age_markers_after_restart() {
    let store = tempfile::tempdir().unwrap();
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "markers after restart", async {
        let js = js_context(&server).await;
        js.create_stream(marker_stream(StorageType::File))
            .await
            .unwrap();
        js.publish("s.x", "x".into()).await.unwrap().await.unwrap();
        js.publish("s.keep", "k".into())
            .await
            .unwrap()
            .await
            .unwrap();
        server.kill();
        // Down while max_age passes: the restarted stream still marks.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let server = start_jetstream(store.path(), &[]);
        let js = jetstream::new(connect(&server).await);
        let stream = js.get_stream("S").await.unwrap();
        let last = wait_for(Duration::from_secs(5), "the s.x marker", || {
            let stream = stream.clone();
            async move {
                let m = stream.get_last_raw_message_by_subject("s.x").await.ok()?;
                (m.sequence > 2).then_some(m)
            }
        })
        .await;
        assert_eq!(
            header(&last, "Nats-Marker-Reason").as_deref(),
            Some("MaxAge")
        );
        assert!(last.payload.is_empty());
    })
    .await;
}

#[tokio::test]
async fn kv_limit_markers_per_key_ttl() {
    let (server, _store) = js_server();
    within(LIMIT, "kv limit markers", async {
        let js = js_context(&server).await;
        let kv = js
            .create_key_value(kv::Config {
                bucket: "LM".into(),
                limit_markers: Some(Duration::from_secs(2)),
                ..Default::default()
            })
            .await
            .unwrap();
        let cfg = kv.stream.cached_info().config.clone();
        assert_eq!(
            (cfg.subject_delete_marker_ttl, cfg.allow_message_ttl),
            (Some(Duration::from_secs(2)), true)
        );
        let mut watch = kv.watch_all().await.unwrap();

        let t0 = Instant::now();
        let rev = kv
            .create_with_ttl("k", Bytes::from_static(b"v"), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(rev, 1);
        let e = watch.next().await.unwrap().unwrap();
        assert_eq!((e.key.as_str(), e.operation), ("k", Operation::Put));
        // Expired by its own TTL: the marker is a purge to watchers and get.
        let e = watch.next().await.unwrap().unwrap();
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(
            (e.key.as_str(), e.revision, e.operation),
            ("k", 2, Operation::Purge)
        );
        assert_eq!(kv.get("k").await.unwrap(), None);
        // A purged key can be created again.
        assert_eq!(kv.create("k", Bytes::from_static(b"w")).await.unwrap(), 3);
        assert_eq!(watch.next().await.unwrap().unwrap().revision, 3);

        // A purge marker with its own TTL leaves no marker when it goes.
        kv.put("p", Bytes::from_static(b"gone soon")).await.unwrap();
        kv.purge_with_ttl("p", Duration::from_secs(1))
            .await
            .unwrap();
        for op in [Operation::Put, Operation::Purge] {
            let e = watch.next().await.unwrap().unwrap();
            assert_eq!((e.key.as_str(), e.operation), ("p", op));
        }
        let mut stream = kv.stream.clone();
        wait_for(Duration::from_secs(5), "the purge marker to expire", || {
            let mut stream = stream.clone();
            async move { (stream.info().await.ok()?.state.messages == 1).then_some(()) }
        })
        .await;
        assert_eq!(kv.get("k").await.unwrap().as_deref(), Some(&b"w"[..]));
        let st = stream.info().await.unwrap().state.clone();
        assert_eq!(st.last_sequence, 5, "no marker for an expiring purge");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), watch.next())
                .await
                .is_err(),
            "no further watch updates"
        );
    })
    .await;
}
