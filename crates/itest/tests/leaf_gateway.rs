//! Leaf nodes and gateways together: a leaf server hangs off cluster A, and
//! A is joined to cluster B by gateways (one rnats server per cluster).
//! Messages and requests must travel leaf -> A -> B and back, the way a
//! nats-server super-cluster with edge leaf nodes carries them: leaf
//! interest reaches the other cluster through A's gateway, and interest in B
//! reaches the leaf through its hub.

use std::time::Duration;

use futures::StreamExt;
use rnats_itest::free_port;
use rnats_itest::leaf::{crosses, Impl, Node};

const LIMIT: Duration = Duration::from_secs(20);

fn gateway(name: &str, port: u16, a: u16, b: u16) -> String {
    format!(
        "gateway {{ name: \"{name}\", listen: \"127.0.0.1:{port}\", gateways: [ \
         {{ name: \"A\", url: \"nats://127.0.0.1:{a}\" }}, \
         {{ name: \"B\", url: \"nats://127.0.0.1:{b}\" }} ] }}"
    )
}

#[tokio::test]
async fn leaf_traffic_crosses_a_gateway_both_ways() {
    let (gw_a, gw_b, leaf_port) = (free_port(), free_port(), free_port());
    let a = Node::start(
        Impl::Rnats,
        None,
        &format!(
            "server_name: A0\n{}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n",
            gateway("A", gw_a, gw_a, gw_b)
        ),
    );
    let b = Node::start(
        Impl::Rnats,
        None,
        &format!("server_name: B0\n{}\n", gateway("B", gw_b, gw_a, gw_b)),
    );
    let leaf = Node::start(
        Impl::Rnats,
        None,
        &format!(
            "server_name: L0\nleafnodes {{ remotes = [{{ url: \"nats://127.0.0.1:{leaf_port}\" }}] }}\n"
        ),
    );
    rnats_itest::within(LIMIT * 2, "leaf across a gateway", async {
        let (lc, ac, bc) = (leaf.client().await, a.client().await, b.client().await);
        // The links are up once the hub's and the other cluster's traffic flows.
        assert!(crosses(&ac, &lc, LIMIT).await, "hub -> leaf");
        assert!(crosses(&ac, &bc, LIMIT).await, "A -> B");
        assert!(crosses(&lc, &bc, LIMIT).await, "leaf -> A -> B");
        assert!(crosses(&bc, &lc, LIMIT).await, "B -> A -> leaf");

        // A service in B answers a requester on the leaf, and the reverse.
        let mut svc = bc.subscribe("svc.b").await.expect("sub");
        let bc2 = bc.clone();
        tokio::spawn(async move {
            while let Some(m) = svc.next().await {
                if let Some(r) = m.reply {
                    let _ = bc2.publish(r, "from-b".into()).await;
                }
            }
        });
        let mut svc_l = lc.subscribe("svc.l").await.expect("sub");
        let lc2 = lc.clone();
        tokio::spawn(async move {
            while let Some(m) = svc_l.next().await {
                if let Some(r) = m.reply {
                    let _ = lc2.publish(r, "from-leaf".into()).await;
                }
            }
        });
        rnats_itest::sync(&bc).await;
        rnats_itest::sync(&lc).await;
        let mut answered = (false, false);
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !(answered.0 && answered.1) && tokio::time::Instant::now() < deadline {
            if !answered.0 {
                if let Ok(r) = lc.request("svc.b", "q".into()).await {
                    assert_eq!(&r.payload[..], b"from-b");
                    answered.0 = true;
                }
            }
            if !answered.1 {
                if let Ok(r) = bc.request("svc.l", "q".into()).await {
                    assert_eq!(&r.payload[..], b"from-leaf");
                    answered.1 = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(answered, (true, true), "requests leaf -> B and B -> leaf");
    })
    .await;
}

/// A hub counts the leaf connections bound to each account in its account
/// statistics (`/accstatz`, the account CONNS events), as nats-server does.
#[tokio::test]
async fn hub_counts_leaf_connections_per_account() {
    let (leaf_port, mport) = (free_port(), free_port());
    let _hub = Node::start(
        Impl::Rnats,
        None,
        &format!("http_port: {mport}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n"),
    );
    let leaf = Node::start(
        Impl::Rnats,
        None,
        &format!("leafnodes {{ remotes = [{{ url: \"nats://127.0.0.1:{leaf_port}\" }}] }}\n"),
    );
    rnats_itest::within(LIMIT, "leaf counts", async {
        let _lc = leaf.client().await;
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let v = rnats_itest::http::get_json(mport, "/accstatz?unused=true&acc=$G").await;
            let stat = &v["account_statz"][0];
            if stat["leafnodes"] == 1 {
                assert_eq!(
                    stat["total_conns"],
                    stat["conns"].as_u64().unwrap_or(0) + 1,
                    "{v}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leaf counted: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}
