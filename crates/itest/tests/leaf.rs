//! Leaf nodes across implementations: an rnats leaf on a reference hub, a
//! reference leaf on an rnats hub, and rnats on both sides. Each pairing
//! carries messages (with headers) and requests both ways, drops interest
//! when a subscriber leaves, and serves queue groups as nats-server does
//! (a hub's local member first, a leaf's members when the hub has none).
//! A hub that is part of a cluster passes messages between its routes and
//! its leaf nodes.
//!
//! Pairings with the reference print why they are skipped when it is
//! missing (`RNATS_REFERENCE_BIN` or `scripts/fetch-reference.sh`).

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::cluster::reference_or_skip;
use rnats_itest::leaf::{crosses, Impl, Node};
use rnats_itest::{free_port, next_msg, sync, within};

const LIMIT: Duration = Duration::from_secs(30);

fn hub_config(leaf_port: u16) -> String {
    format!("leafnodes {{ port: {leaf_port} }}\n")
}

fn leaf_config(leaf_port: u16) -> String {
    format!("leafnodes {{ remotes = [ {{ url: \"nats://127.0.0.1:{leaf_port}\" }} ] }}\n")
}

/// Hub and leaf of the given kinds, connected (interest crosses both ways).
async fn pair(hub: Impl, leaf: Impl, test: &str) -> Option<(Node, Node)> {
    let reference = if hub == Impl::Reference || leaf == Impl::Reference {
        Some(reference_or_skip(test)?)
    } else {
        None
    };
    let lp = free_port();
    let h = Node::start(hub, reference.as_ref(), &hub_config(lp));
    let l = Node::start(leaf, reference.as_ref(), &leaf_config(lp));
    let (hc, lc) = (h.client().await, l.client().await);
    assert!(
        crosses(&hc, &lc, Duration::from_secs(10)).await
            && crosses(&lc, &hc, Duration::from_secs(10)).await,
        "leaf connection not up\nhub:\n{}\nleaf:\n{}",
        h.server.log(),
        l.server.log()
    );
    Some((h, l))
}

async fn pubsub_and_requests(hub: Impl, leaf: Impl, test: &str) {
    let Some((h, l)) = pair(hub, leaf, test).await else {
        return;
    };
    let (hc, lc) = (h.client().await, l.client().await);
    for (from, to, dir) in [(&hc, &lc, "hub->leaf"), (&lc, &hc, "leaf->hub")] {
        // A wildcard subscription and a message with headers.
        let mut sub = to.subscribe("orders.>").await.unwrap();
        sync(to).await;
        assert!(crosses(from, to, LIMIT).await, "{dir}");
        let mut headers = HeaderMap::new();
        headers.insert("X-Leaf", "yes");
        from.publish_with_headers("orders.new", headers, Bytes::from_static(b"o1"))
            .await
            .unwrap();
        from.flush().await.unwrap();
        let m = next_msg(&mut sub).await;
        assert_eq!(m.subject.as_str(), "orders.new", "{dir}");
        assert_eq!(&m.payload[..], b"o1", "{dir}");
        let hv = m.headers.as_ref().and_then(|h| h.get("X-Leaf"));
        assert_eq!(hv.map(|v| v.as_str()), Some("yes"), "{dir}");

        // Request-reply: the reply subject crosses back.
        let mut svc = to.subscribe("svc.echo").await.unwrap();
        sync(to).await;
        assert!(crosses(from, to, LIMIT).await, "{dir}");
        let responder = to.clone();
        let task = tokio::spawn(async move {
            let m = svc.next().await.expect("request");
            let reply = m.reply.expect("reply subject");
            responder
                .publish(reply, Bytes::from([b"re:".as_ref(), &m.payload].concat()))
                .await
                .unwrap();
            responder.flush().await.unwrap();
        });
        let r = within(LIMIT, "request", from.request("svc.echo", Bytes::from_static(b"ping")))
            .await
            .unwrap_or_else(|e| panic!("{dir}: request: {e}"));
        assert_eq!(&r.payload[..], b"re:ping", "{dir}");
        task.await.unwrap();

        // Interest goes away with the subscriber: no responders after LS-.
        sub.unsubscribe().await.unwrap();
        sync(to).await;
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            match from.request("orders.gone", Bytes::new()).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => break,
                other => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{dir}: interest stayed after unsubscribe: {other:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    assert_no_errors(&h, &l);
}

fn assert_no_errors(h: &Node, l: &Node) {
    for n in [h, l] {
        let bad: Vec<String> = rnats_itest::cluster::error_lines(&n.server.log());
        assert!(bad.is_empty(), "{:?} logged errors:\n{}", n.kind, bad.join("\n"));
    }
}

/// Queue groups: with members only on the leaf, each message reaches one
/// of them; once the hub has a member of its own, the hub's publishes stay
/// there (nats-server prefers local members over leaf nodes).
async fn queue_groups(hub: Impl, leaf: Impl, test: &str) {
    let Some((h, l)) = pair(hub, leaf, test).await else {
        return;
    };
    let (hc, lc) = (h.client().await, l.client().await);
    let mut l1 = lc.queue_subscribe("work", "q".into()).await.unwrap();
    let mut l2 = lc.queue_subscribe("work", "q".into()).await.unwrap();
    sync(&lc).await;
    assert!(crosses(&hc, &lc, LIMIT).await);
    // The hub learns the group's weight: wait until a request is answered.
    let n = 20;
    for i in 0..n {
        hc.publish("work", Bytes::from(format!("{i}"))).await.unwrap();
    }
    hc.flush().await.unwrap();
    let mut got = 0;
    while got < n {
        tokio::select! {
            Some(_) = l1.next() => got += 1,
            Some(_) = l2.next() => got += 1,
            _ = tokio::time::sleep(Duration::from_secs(5)) => break,
        }
    }
    assert_eq!(got, n, "each message once to the leaf's queue group");
    // No duplicates arrive late.
    let extra = tokio::time::timeout(Duration::from_millis(300), async {
        tokio::select! { _ = l1.next() => (), _ = l2.next() => () }
    })
    .await;
    assert!(extra.is_err(), "a queue message was delivered twice");

    let mut local = hc.queue_subscribe("work", "q".into()).await.unwrap();
    sync(&hc).await;
    for i in 0..n {
        hc.publish("work", Bytes::from(format!("{i}"))).await.unwrap();
    }
    hc.flush().await.unwrap();
    for _ in 0..n {
        next_msg(&mut local).await;
    }
    let leaked = tokio::time::timeout(Duration::from_millis(300), async {
        tokio::select! { _ = l1.next() => (), _ = l2.next() => () }
    })
    .await;
    assert!(leaked.is_err(), "the hub's own member must take its messages");
    assert_no_errors(&h, &l);
}

#[tokio::test]
async fn rnats_leaf_on_rnats_hub() {
    pubsub_and_requests(Impl::Rnats, Impl::Rnats, "rnats_leaf_on_rnats_hub").await;
}

#[tokio::test]
async fn rnats_leaf_on_reference_hub() {
    pubsub_and_requests(Impl::Reference, Impl::Rnats, "rnats_leaf_on_reference_hub").await;
}

#[tokio::test]
async fn reference_leaf_on_rnats_hub() {
    pubsub_and_requests(Impl::Rnats, Impl::Reference, "reference_leaf_on_rnats_hub").await;
}

#[tokio::test]
async fn queue_groups_rnats_hub_reference_leaf() {
    queue_groups(Impl::Rnats, Impl::Reference, "queue_groups_rnats_hub_reference_leaf").await;
}

#[tokio::test]
async fn queue_groups_reference_hub_rnats_leaf() {
    queue_groups(Impl::Reference, Impl::Rnats, "queue_groups_reference_hub_rnats_leaf").await;
}

#[tokio::test]
async fn queue_groups_rnats_both() {
    queue_groups(Impl::Rnats, Impl::Rnats, "queue_groups_rnats_both").await;
}

/// A hub in a cluster: what its leaf publishes reaches the other cluster
/// member's subscribers, and what is published there reaches the leaf.
#[tokio::test]
async fn hub_cluster_routes_to_and_from_its_leaf() {
    let (lp, c1, c2) = (free_port(), free_port(), free_port());
    let cluster = |own: u16, other: u16| {
        format!(
            "cluster {{ name: HUB, port: {own}, routes: [\"nats-route://127.0.0.1:{other}\"] }}\n"
        )
    };
    let _a = Node::start(
        Impl::Rnats,
        None,
        &format!("{}{}", cluster(c1, c2), hub_config(lp)),
    );
    let b = Node::start(Impl::Rnats, None, &cluster(c2, c1));
    let l = Node::start(Impl::Rnats, None, &leaf_config(lp));
    let (bc, lc) = (b.client().await, l.client().await);
    assert!(crosses(&bc, &lc, LIMIT).await, "B -> route -> A -> leaf");
    assert!(crosses(&lc, &bc, LIMIT).await, "leaf -> A -> route -> B");
    let mut sub = lc.subscribe("deep.x").await.unwrap();
    sync(&lc).await;
    assert!(crosses(&bc, &lc, LIMIT).await);
    bc.publish("deep.x", Bytes::from_static(b"1")).await.unwrap();
    bc.flush().await.unwrap();
    assert_eq!(&next_msg(&mut sub).await.payload[..], b"1");
    // Exactly once: the message must not loop back through the cluster.
    let dup = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(dup.is_err(), "duplicate delivery");
}
