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
        let r = within(
            LIMIT,
            "request",
            from.request("svc.echo", Bytes::from_static(b"ping")),
        )
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
        assert!(
            bad.is_empty(),
            "{:?} logged errors:\n{}",
            n.kind,
            bad.join("\n")
        );
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
        hc.publish("work", Bytes::from(format!("{i}")))
            .await
            .unwrap();
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
        hc.publish("work", Bytes::from(format!("{i}")))
            .await
            .unwrap();
    }
    hc.flush().await.unwrap();
    for _ in 0..n {
        next_msg(&mut local).await;
    }
    let leaked = tokio::time::timeout(Duration::from_millis(300), async {
        tokio::select! { _ = l1.next() => (), _ = l2.next() => () }
    })
    .await;
    assert!(
        leaked.is_err(),
        "the hub's own member must take its messages"
    );
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
    queue_groups(
        Impl::Rnats,
        Impl::Reference,
        "queue_groups_rnats_hub_reference_leaf",
    )
    .await;
}

#[tokio::test]
async fn queue_groups_reference_hub_rnats_leaf() {
    queue_groups(
        Impl::Reference,
        Impl::Rnats,
        "queue_groups_reference_hub_rnats_leaf",
    )
    .await;
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
    bc.publish("deep.x", Bytes::from_static(b"1"))
        .await
        .unwrap();
    bc.flush().await.unwrap();
    assert_eq!(&next_msg(&mut sub).await.payload[..], b"1");
    // Exactly once: the message must not loop back through the cluster.
    let dup = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(dup.is_err(), "duplicate delivery");
}

/// A bare `GET` over HTTP/1.0, parsed as JSON.
async fn get_json(port: u16, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect monitor");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    within(LIMIT, "monitor response", s.read_to_end(&mut raw))
        .await
        .unwrap();
    let text = String::from_utf8(raw).expect("utf-8");
    let (_, body) = text.split_once("\r\n\r\n").expect("http head");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// `/leafz` and `/varz` on both ends; the hub's `/leafz` entry has the same
/// fields as the reference hub's for the same leaf.
async fn leafz_of(
    hub: Impl,
    reference: Option<&std::path::PathBuf>,
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let (lp, hh, lh) = (free_port(), free_port(), free_port());
    let h = Node::start(hub, reference, &format!("http: {hh}\n{}", hub_config(lp)));
    let l = Node::start(
        Impl::Rnats,
        None,
        &format!("http: {lh}\n{}", leaf_config(lp)),
    );
    let (hc, lc) = (h.client().await, l.client().await);
    let _sub = lc.subscribe("seen.by.hub").await.unwrap();
    sync(&lc).await;
    assert!(crosses(&hc, &lc, LIMIT).await);
    (
        get_json(hh, "/leafz?subs=1").await,
        get_json(lh, "/leafz").await,
        get_json(hh, "/varz").await,
    )
}

#[tokio::test]
async fn leafz_and_varz() {
    let (hub, leaf, varz) = leafz_of(Impl::Rnats, None).await;
    assert_eq!(hub["leafnodes"], 1, "{hub}");
    let e = &hub["leafs"][0];
    assert_eq!(e["account"], "$G");
    assert_eq!(e["is_spoke"], false);
    assert!(!e["name"].as_str().unwrap_or("").is_empty(), "{e}");
    let list: Vec<&str> = e["subscriptions_list"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    assert!(list.contains(&"seen.by.hub"), "{e}");
    assert!(list.iter().any(|s| s.starts_with("$LDS.")), "{e}");
    assert_eq!(leaf["leafs"][0]["is_spoke"], true, "{leaf}");
    assert_eq!(varz["leafnodes"], 1);
    assert!(
        varz["leaf"]["port"].as_u64().is_some_and(|p| p > 0),
        "{}",
        varz["leaf"]
    );
    let Some(reference) = reference_or_skip("leafz_and_varz (reference shape)") else {
        return;
    };
    let (go_hub, _, go_varz) = leafz_of(Impl::Reference, Some(&reference)).await;
    let mut ours = keys(e);
    let mut theirs = keys(&go_hub["leafs"][0]);
    // nats-server adds `compression` (rnats never compresses leaf links).
    theirs.retain(|k| k != "compression");
    ours.retain(|k| k != "compression");
    assert_eq!(ours, theirs, "/leafz entry fields");
    assert_eq!(keys(&hub), keys(&go_hub), "/leafz fields");
    assert_eq!(
        keys(&varz["leaf"]),
        keys(&go_varz["leaf"]),
        "/varz leaf fields"
    );
}

/// A `ws://` remote: the rnats leaf dials the reference hub's WebSocket
/// port (`/leafnode`) and the link carries messages and requests.
#[tokio::test]
async fn rnats_leaf_on_reference_hub_over_websocket() {
    let Some(reference) = reference_or_skip("rnats_leaf_on_reference_hub_over_websocket") else {
        return;
    };
    let wp = free_port();
    let h = Node::start(
        Impl::Reference,
        Some(&reference),
        // nats-server takes leaf nodes on its WebSocket port only with a
        // `leafnodes {}` block.
        &format!(
            "websocket {{ port: {wp}, no_tls: true }}\nleafnodes {{ port: {} }}\n",
            free_port()
        ),
    );
    let l = Node::start(
        Impl::Rnats,
        None,
        &format!("leafnodes {{ remotes = [ {{ url: \"ws://127.0.0.1:{wp}\" }} ] }}\n"),
    );
    let (hc, lc) = (h.client().await, l.client().await);
    assert!(
        crosses(&hc, &lc, LIMIT).await && crosses(&lc, &hc, LIMIT).await,
        "no traffic over the websocket leaf\n{}",
        l.server.log()
    );
    let mut svc = hc.subscribe("ws.svc").await.unwrap();
    sync(&hc).await;
    assert!(crosses(&lc, &hc, LIMIT).await);
    let responder = hc.clone();
    tokio::spawn(async move {
        if let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, m.payload).await;
                let _ = responder.flush().await;
            }
        }
    });
    let payload = Bytes::from(vec![b'x'; 100_000]);
    let r = within(
        LIMIT,
        "request over ws",
        lc.request("ws.svc", payload.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.payload, payload, "a large payload crosses intact");
    assert!(
        h.server.log().contains("lid_ws"),
        "the hub saw a websocket leaf"
    );
}

/// rnats's WebSocket port takes leaf nodes (`/leafnode`) when the server has
/// a `leafnodes {}` block: a reference leaf and an rnats leaf dial it.
#[tokio::test]
async fn leaf_nodes_on_the_rnats_websocket_port() {
    let wp = free_port();
    let h = Node::start(
        Impl::Rnats,
        None,
        &format!(
            "websocket {{ port: {wp}, no_tls: true }}\nleafnodes {{ port: {} }}\n",
            free_port()
        ),
    );
    let remote = format!("leafnodes {{ remotes = [ {{ url: \"ws://127.0.0.1:{wp}\" }} ] }}\n");
    let reference = reference_or_skip("leaf_nodes_on_the_rnats_websocket_port (reference leaf)");
    let mut leaves = vec![Node::start(Impl::Rnats, None, &remote)];
    if let Some(r) = reference.as_ref() {
        leaves.push(Node::start(Impl::Reference, Some(r), &remote));
    }
    let hc = h.client().await;
    for l in &leaves {
        let lc = l.client().await;
        assert!(
            crosses(&hc, &lc, LIMIT).await && crosses(&lc, &hc, LIMIT).await,
            "{:?} leaf over websocket\nhub:\n{}\nleaf:\n{}",
            l.kind,
            h.server.log(),
            l.server.log()
        );
    }
}
