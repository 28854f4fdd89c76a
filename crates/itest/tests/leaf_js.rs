//! JetStream across a leaf connection with different domains (hub `HUB`,
//! leaf `LEAF`): the plain `$JS.API` stays on each side (nats-server denies
//! it on leaf connections), a leaf client reaches the hub's JetStream
//! through `$JS.HUB.API`, and a KV bucket on the leaf mirrors the hub's
//! bucket of the same name across the domains. Pairings with the reference
//! print why they are skipped when it is missing.

use std::time::Duration;

use async_nats::jetstream::stream::{External, Source};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use rnats_itest::cluster::reference_or_skip;
use rnats_itest::leaf::{crosses, Impl, Node};
use rnats_itest::{free_port, within};

const LIMIT: Duration = Duration::from_secs(30);

async fn domains(hub: Impl, leaf: Impl, test: &str) -> Option<(Node, Node, tempfile::TempDir)> {
    let reference = if hub == Impl::Reference || leaf == Impl::Reference {
        Some(reference_or_skip(test)?)
    } else {
        None
    };
    let dir = tempfile::tempdir().unwrap();
    let lp = free_port();
    let h = Node::start(
        hub,
        reference.as_ref(),
        &format!(
            "server_name: hub\njetstream {{ domain: HUB, store_dir: \"{}\" }}\nleafnodes {{ port: {lp} }}\n",
            dir.path().join("hub").display()
        ),
    );
    let l = Node::start(
        leaf,
        reference.as_ref(),
        &format!(
            "server_name: leaf\njetstream {{ domain: LEAF, store_dir: \"{}\" }}\nleafnodes {{ remotes = [ {{ url: \"nats://127.0.0.1:{lp}\" }} ] }}\n",
            dir.path().join("leaf").display()
        ),
    );
    let (hc, lc) = (h.client().await, l.client().await);
    assert!(crosses(&hc, &lc, LIMIT).await && crosses(&lc, &hc, LIMIT).await);
    Some((h, l, dir))
}

async fn api_domain(c: &async_nats::Client, subject: &str) -> String {
    let r = within(LIMIT, subject, c.request(subject.to_string(), Bytes::new()))
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    v["domain"].as_str().unwrap_or("").to_string()
}

/// `$JS.API` answers locally on each side; `$JS.<domain>.API` reaches the
/// named side; a stream made through the hub's domain takes the leaf
/// client's publishes.
async fn domain_api(hub: Impl, leaf: Impl, test: &str) {
    let Some((h, l, _dir)) = domains(hub, leaf, test).await else {
        return;
    };
    let (hc, lc) = (h.client().await, l.client().await);
    assert_eq!(api_domain(&lc, "$JS.API.INFO").await, "LEAF");
    assert_eq!(api_domain(&hc, "$JS.API.INFO").await, "HUB");
    // Interest in `$JS.HUB.API.>` may still be on its way.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match lc.request("$JS.HUB.API.INFO", Bytes::new()).await {
            Ok(r) => {
                let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
                assert_eq!(v["domain"], "HUB");
                break;
            }
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "$JS.HUB.API: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(api_domain(&hc, "$JS.LEAF.API.INFO").await, "LEAF");
    let js = jetstream::with_domain(lc.clone(), "HUB");
    js.create_stream(jetstream::stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(crosses(&lc, &hc, LIMIT).await);
    let ack = js
        .publish("orders.1", Bytes::from_static(b"x"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.stream, "ORDERS");
    assert_eq!(ack.domain, "HUB");
    // The stream lives on the hub only.
    let local = jetstream::new(lc.clone());
    assert!(local.get_stream("ORDERS").await.is_err());
}

#[tokio::test]
async fn domain_api_rnats_both() {
    domain_api(Impl::Rnats, Impl::Rnats, "domain_api_rnats_both").await;
}

#[tokio::test]
async fn domain_api_rnats_hub_reference_leaf() {
    domain_api(
        Impl::Rnats,
        Impl::Reference,
        "domain_api_rnats_hub_reference_leaf",
    )
    .await;
}

#[tokio::test]
async fn domain_api_reference_hub_rnats_leaf() {
    domain_api(
        Impl::Reference,
        Impl::Rnats,
        "domain_api_reference_hub_rnats_leaf",
    )
    .await;
}

/// The leaf's bucket `cfg` mirrors the hub's `cfg` (domain HUB).
async fn kv_mirror(hub: Impl, leaf: Impl, test: &str) {
    let Some((h, l, _dir)) = domains(hub, leaf, test).await else {
        return;
    };
    let (hc, lc) = (h.client().await, l.client().await);
    let hub_js = jetstream::new(hc.clone());
    let origin = hub_js
        .create_key_value(kv::Config {
            bucket: "cfg".into(),
            history: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    origin.put("k", Bytes::from_static(b"v1")).await.unwrap();
    let leaf_js = jetstream::new(lc.clone());
    let mirror = leaf_js
        .create_key_value(kv::Config {
            bucket: "cfg".into(),
            history: 5,
            mirror: Some(Source {
                name: "cfg".into(),
                external: Some(External {
                    api_prefix: "$JS.HUB.API".into(),
                    delivery_prefix: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let wait_for = |want: &'static [u8]| {
        let mirror = mirror.clone();
        async move {
            let deadline = tokio::time::Instant::now() + LIMIT;
            loop {
                let got = mirror.get("k").await.ok().flatten();
                if got.as_deref() == Some(want) {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "mirror has {got:?}, want {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for(b"v1").await;
    origin.put("k", Bytes::from_static(b"v2")).await.unwrap();
    wait_for(b"v2").await;
}

#[tokio::test]
async fn kv_mirror_across_domains_rnats_hub_reference_leaf() {
    kv_mirror(
        Impl::Rnats,
        Impl::Reference,
        "kv_mirror_across_domains_rnats_hub_reference_leaf",
    )
    .await;
}

#[tokio::test]
async fn kv_mirror_across_domains_reference_hub_rnats_leaf() {
    kv_mirror(
        Impl::Reference,
        Impl::Rnats,
        "kv_mirror_across_domains_reference_hub_rnats_leaf",
    )
    .await;
}

#[tokio::test]
async fn kv_mirror_across_domains_rnats_both() {
    kv_mirror(
        Impl::Rnats,
        Impl::Rnats,
        "kv_mirror_across_domains_rnats_both",
    )
    .await;
}

#[tokio::test]
async fn kv_mirror_across_domains_reference_both() {
    // The reference on both sides: shows what the test expects of rnats.
    kv_mirror(
        Impl::Reference,
        Impl::Reference,
        "kv_mirror_across_domains_reference_both",
    )
    .await;
}

/// A stream on the leaf sources a hub stream through `$JS.HUB.API`: every
/// hub message arrives once, with a new sequence and its
/// `Nats-Stream-Source` header, also what is published after it started.
async fn source_across(hub: Impl, leaf: Impl, test: &str) {
    let Some((h, l, _dir)) = domains(hub, leaf, test).await else {
        return;
    };
    let (hc, lc) = (h.client().await, l.client().await);
    let hub_js = jetstream::new(hc.clone());
    hub_js
        .create_stream(jetstream::stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..3 {
        hub_js
            .publish(format!("orders.{i}"), Bytes::from(format!("o{i}")))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let leaf_js = jetstream::new(lc.clone());
    let mut agg = leaf_js
        .create_stream(jetstream::stream::Config {
            name: "AGG".into(),
            subjects: vec!["local.>".into()],
            sources: Some(vec![Source {
                name: "ORDERS".into(),
                external: Some(External {
                    api_prefix: "$JS.HUB.API".into(),
                    delivery_prefix: None,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await
        .unwrap();
    hub_js
        .publish("orders.3", Bytes::from_static(b"o3"))
        .await
        .unwrap()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let n = agg.info().await.unwrap().state.messages;
        if n == 4 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sourced {n} of 4");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = agg.get_raw_message(4).await.unwrap();
    assert_eq!(last.subject.as_str(), "orders.3");
    let src = last
        .headers
        .get("Nats-Stream-Source")
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(src.starts_with("ORDERS:") && src.contains(" 4 "), "{src}");
    // Nothing arrives twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(agg.info().await.unwrap().state.messages, 4);
}

#[tokio::test]
async fn source_across_domains_rnats_both() {
    source_across(Impl::Rnats, Impl::Rnats, "source_across_domains_rnats_both").await;
}

#[tokio::test]
async fn source_across_domains_reference_hub_rnats_leaf() {
    source_across(
        Impl::Reference,
        Impl::Rnats,
        "source_across_domains_reference_hub_rnats_leaf",
    )
    .await;
}

#[tokio::test]
async fn source_across_domains_reference_both() {
    // The reference on both sides: shows what the test expects of rnats.
    source_across(
        Impl::Reference,
        Impl::Reference,
        "source_across_domains_reference_both",
    )
    .await;
}

/// A leaf server without JetStream of its own extends the hub's to its
/// clients: they create a stream, publish and consume with acks through
/// `$JS.HUB.API`, and the messages live on the hub.
async fn leaf_uses_hub_jetstream(hub: Impl, leaf: Impl, test: &str) {
    let reference = if hub == Impl::Reference || leaf == Impl::Reference {
        match reference_or_skip(test) {
            Some(r) => Some(r),
            None => return,
        }
    } else {
        None
    };
    let dir = tempfile::tempdir().unwrap();
    let lp = free_port();
    let h = Node::start(
        hub,
        reference.as_ref(),
        &format!(
            "server_name: hub\njetstream {{ domain: HUB, store_dir: \"{}\" }}\nleafnodes {{ port: {lp} }}\n",
            dir.path().join("hub").display()
        ),
    );
    let l = Node::start(
        leaf,
        reference.as_ref(),
        &format!("server_name: edge\nleafnodes {{ remotes = [ {{ url: \"nats://127.0.0.1:{lp}\" }} ] }}\n"),
    );
    let (hc, lc) = (h.client().await, l.client().await);
    assert!(crosses(&hc, &lc, LIMIT).await && crosses(&lc, &hc, LIMIT).await);
    within(LIMIT * 2, test, async {
        // Interest in `$JS.HUB.API.>` may still be on its way.
        let deadline = tokio::time::Instant::now() + LIMIT;
        while lc.request("$JS.HUB.API.INFO", Bytes::new()).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "$JS.HUB.API never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let js = jetstream::with_domain(lc.clone(), "HUB");
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: "EDGE".into(),
                subjects: vec!["edge.>".into()],
                ..Default::default()
            })
            .await
            .expect("stream through the hub's domain");
        let ack = js
            .publish("edge.temp", Bytes::from_static(b"21"))
            .await
            .expect("publish")
            .await
            .expect("ack");
        assert_eq!((ack.sequence, ack.domain.as_str()), (1, "HUB"));
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("D".into()),
                ..Default::default()
            })
            .await
            .expect("consumer");
        use futures::StreamExt;
        let mut msgs = consumer
            .fetch()
            .max_messages(1)
            .messages()
            .await
            .expect("fetch");
        let m = msgs.next().await.expect("a message").expect("message");
        assert_eq!(&m.payload[..], b"21");
        m.double_ack().await.expect("ack");
        // Stored on the hub.
        let hub_js = jetstream::new(hc.clone());
        let info = hub_js
            .get_stream("EDGE")
            .await
            .expect("on the hub")
            .info()
            .await
            .expect("info")
            .clone();
        assert_eq!(info.state.messages, 1);
    })
    .await;
}

#[tokio::test]
async fn leaf_uses_hub_jetstream_rnats_both() {
    leaf_uses_hub_jetstream(
        Impl::Rnats,
        Impl::Rnats,
        "leaf_uses_hub_jetstream_rnats_both",
    )
    .await;
}

#[tokio::test]
async fn leaf_uses_hub_jetstream_reference_hub_rnats_leaf() {
    leaf_uses_hub_jetstream(
        Impl::Reference,
        Impl::Rnats,
        "leaf_uses_hub_jetstream_reference_hub_rnats_leaf",
    )
    .await;
}

#[tokio::test]
async fn leaf_uses_hub_jetstream_rnats_hub_reference_leaf() {
    leaf_uses_hub_jetstream(
        Impl::Rnats,
        Impl::Reference,
        "leaf_uses_hub_jetstream_rnats_hub_reference_leaf",
    )
    .await;
}
