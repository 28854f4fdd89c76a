//! Mixed clusters: rnats nodes and reference nats-server nodes in one full
//! mesh. Every check runs across every ordered pair of nodes, so each pair of
//! node types (rnats->Go, Go->rnats, rnats->rnats, Go->Go) is covered: plain
//! and wildcard messages with headers, request-reply, no responders,
//! unsubscribe propagation, queue groups spread over all nodes. The Go
//! nodes' logs must stay free of `[ERR]` lines (failed dials while peers
//! start are fine). Also: restarts, gossip of a new node, route
//! authorization across implementations.
//!
//! Needs `cargo build -p rnats-server --bins` and the reference binary
//! (`RNATS_REFERENCE_BIN` or `scripts/fetch-reference.sh`); without the
//! reference each test prints why it is skipped and passes.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use rnats_itest::cluster::{
    checks, error_lines, interest_barrier, reference_or_skip, Kind, NodeOpts, TestCluster,
};
use rnats_itest::{next_msg, within};

const LIMIT: Duration = Duration::from_secs(50);

fn all_pairs(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .collect()
}

/// The reference nodes' `[ERR]` lines (failed dials left out); panics
/// listing them. Interop must not make Go servers complain.
fn assert_reference_logs_clean(c: &TestCluster) {
    let mut bad = Vec::new();
    for n in c.nodes.iter().filter(|n| n.kind == Kind::Reference) {
        for l in error_lines(&n.log()) {
            bad.push(format!("{}: {l}", n.name));
        }
    }
    let rnats: Vec<String> = c
        .nodes
        .iter()
        .filter(|n| n.kind == Kind::Rnats)
        .map(|n| {
            format!(
                "{} client {} cluster {}",
                n.name, n.client_port, n.cluster_port
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "reference nodes logged errors (rnats nodes: {rnats:?}):\n{}\n\n{}",
        bad.join("\n"),
        c.logs()
    );
}

async fn full_matrix(kinds: &[Kind]) {
    let c = TestCluster::start_formed(kinds).await;
    let n = c.len();
    within(LIMIT, "mixed cluster checks", async {
        for (from, to) in all_pairs(n) {
            checks::pubsub(&c, from, to).await;
            checks::request_reply(&c, from, to).await;
            checks::unsubscribe(&c, from, to).await;
        }
        for node in 0..n {
            checks::no_responders(&c, node).await;
        }
        let members: Vec<usize> = (0..n).collect();
        for publisher in 0..n {
            let counts = checks::queue(&c, publisher, &members, 150).await;
            assert!(
                counts.iter().all(|&k| k > 0),
                "queue published on n{publisher} ({}): every node's member gets some, got {counts:?} for {:?}",
                c.nodes[publisher].kind.label(),
                c.nodes.iter().map(|n| n.kind.label()).collect::<Vec<_>>()
            );
        }
        // Only members on other nodes, of the other type where possible.
        for publisher in 0..n {
            let remote: Vec<usize> = (0..n).filter(|&m| m != publisher).collect();
            let counts = checks::queue(&c, publisher, &remote, 100).await;
            assert_eq!(counts.iter().sum::<usize>(), 100);
        }
    })
    .await;
    assert_reference_logs_clean(&c);
}

#[tokio::test]
async fn two_reference_nodes_and_one_rnats() {
    if reference_or_skip("two_reference_nodes_and_one_rnats").is_none() {
        return;
    }
    full_matrix(&[Kind::Reference, Kind::Rnats, Kind::Reference]).await;
}

#[tokio::test]
async fn one_reference_node_and_two_rnats() {
    if reference_or_skip("one_reference_node_and_two_rnats").is_none() {
        return;
    }
    full_matrix(&[Kind::Rnats, Kind::Reference, Kind::Rnats]).await;
}

#[tokio::test]
async fn mixed_nodes_restart_and_rejoin() {
    if reference_or_skip("mixed_nodes_restart_and_rejoin").is_none() {
        return;
    }
    let mut c = TestCluster::start_formed(&[Kind::Reference, Kind::Rnats, Kind::Rnats]).await;
    within(LIMIT, "mixed restarts", async {
        let g = c.connect(0).await;
        let mut sg = g.subscribe("mr.to_go").await.unwrap();
        g.flush().await.unwrap();
        // Kill and restart the rnats node n1: the Go node re-learns it and
        // it re-learns the Go node's interest.
        c.nodes[1].restart();
        c.assert_formed().await;
        let r = c.connect(1).await;
        interest_barrier(&r, &g).await;
        r.publish("mr.to_go", Bytes::from_static(b"from-restarted-rnats"))
            .await
            .unwrap();
        r.flush().await.unwrap();
        assert_eq!(
            next_msg(&mut sg).await.payload,
            Bytes::from_static(b"from-restarted-rnats")
        );
        checks::pubsub(&c, 0, 1).await;

        // Kill and restart the Go node: both rnats nodes redial it.
        let r2 = c.connect(2).await;
        let mut sr = r2.subscribe("mr.to_rnats").await.unwrap();
        r2.flush().await.unwrap();
        c.nodes[0].restart();
        c.assert_formed().await;
        let g = c.connect(0).await;
        interest_barrier(&g, &r2).await;
        g.publish("mr.to_rnats", Bytes::from_static(b"from-restarted-go"))
            .await
            .unwrap();
        g.flush().await.unwrap();
        assert_eq!(
            next_msg(&mut sr).await.payload,
            Bytes::from_static(b"from-restarted-go")
        );
        checks::request_reply(&c, 2, 0).await;
        checks::queue(&c, 0, &[1, 2], 100).await;
    })
    .await;
    assert_reference_logs_clean(&c);
}

#[tokio::test]
async fn rnats_node_joins_a_reference_cluster_by_gossip() {
    if reference_or_skip("rnats_node_joins_a_reference_cluster_by_gossip").is_none() {
        return;
    }
    // Two Go nodes; an rnats node that only knows n0. n1 learns it from n0's
    // gossip and dials it (or the rnats node dials n1 from the INFO it got).
    let mut c = TestCluster::new(3);
    c.add(NodeOpts::new(Kind::Reference).routes_to(&[0, 1]));
    c.add(NodeOpts::new(Kind::Reference).routes_to(&[0, 1]));
    c.assert_formed().await;
    let r = c.add(NodeOpts::new(Kind::Rnats).routes_to(&[0]));
    c.assert_formed().await;
    within(LIMIT, "gossip into a Go cluster", async {
        checks::pubsub(&c, 1, r).await;
        checks::pubsub(&c, r, 1).await;
        let cl = c.connect(1).await;
        let got: BTreeSet<u16> = cl
            .server_info()
            .connect_urls
            .iter()
            .filter_map(|u| u.rsplit(':').next()?.parse().ok())
            .collect();
        assert!(
            got.contains(&c.nodes[r].client_port),
            "Go node n1 does not advertise the rnats node: {got:?}"
        );
    })
    .await;
    assert_reference_logs_clean(&c);
}

#[tokio::test]
async fn reference_node_joins_an_rnats_cluster_by_gossip() {
    if reference_or_skip("reference_node_joins_an_rnats_cluster_by_gossip").is_none() {
        return;
    }
    let mut c = TestCluster::new(3);
    c.add(NodeOpts::new(Kind::Rnats).routes_to(&[0, 1]));
    c.add(NodeOpts::new(Kind::Rnats).routes_to(&[0, 1]));
    c.assert_formed().await;
    let g = c.add(NodeOpts::new(Kind::Reference).routes_to(&[0]));
    c.assert_formed().await;
    within(LIMIT, "gossip into an rnats cluster", async {
        checks::pubsub(&c, 1, g).await;
        checks::pubsub(&c, g, 1).await;
        let cl = c.connect(g).await;
        let got: BTreeSet<u16> = cl
            .server_info()
            .connect_urls
            .iter()
            .filter_map(|u| u.rsplit(':').next()?.parse().ok())
            .collect();
        let want: BTreeSet<u16> = c.nodes.iter().map(|n| n.client_port).collect();
        assert_eq!(
            got, want,
            "Go node's connect_urls after joining the rnats cluster"
        );
    })
    .await;
    assert_reference_logs_clean(&c);
}

const RUSER: &str = "ruser";
const RPWD: &str = "rpwd";

#[tokio::test]
async fn mixed_route_authorization() {
    if reference_or_skip("mixed_route_authorization").is_none() {
        return;
    }
    let mut c = TestCluster::new(4);
    c.add(
        NodeOpts::new(Kind::Reference)
            .route_auth(RUSER, RPWD)
            .route_creds(RUSER, RPWD)
            .routes_to(&[0, 1]),
    );
    c.add(
        NodeOpts::new(Kind::Rnats)
            .route_auth(RUSER, RPWD)
            .route_creds(RUSER, RPWD)
            .routes_to(&[0, 1]),
    );
    c.assert_formed().await;
    // Wrong password from an rnats node and from a Go node: neither joins.
    let bad_r = c.add(
        NodeOpts::new(Kind::Rnats)
            .route_auth(RUSER, RPWD)
            .route_creds(RUSER, "nope")
            .routes_to(&[0, 1]),
    );
    let bad_g = c.add(
        NodeOpts::new(Kind::Reference)
            .route_auth(RUSER, RPWD)
            .route_creds(RUSER, "nope")
            .routes_to(&[0, 1]),
    );
    within(LIMIT, "mixed route auth", async {
        checks::pubsub(&c, 0, 1).await;
        checks::pubsub(&c, 1, 0).await;
        let pairs: BTreeSet<(usize, usize)> = [
            (0, bad_r),
            (bad_r, 0),
            (1, bad_r),
            (bad_r, 1),
            (0, bad_g),
            (bad_g, 1),
            (1, bad_g),
        ]
        .into();
        let missing = c
            .missing_pairs(
                &[0, 1, bad_r, bad_g],
                pairs.clone(),
                Duration::from_millis(2500),
            )
            .await;
        assert_eq!(
            missing,
            pairs,
            "messages crossed with wrong route credentials\n{}",
            c.logs()
        );
        checks::request_reply(&c, 0, 1).await;
    })
    .await;
    for n in &mut c.nodes {
        assert!(
            n.alive(),
            "{} ({}) died\n{}",
            n.name,
            n.kind.label(),
            n.log()
        );
    }
    // The Go node n0 rightly complains about the bad routes; the good rnats
    // route must not have caused any other error there.
    let port1 = c.nodes[1].cluster_port.to_string();
    let errs: Vec<String> = error_lines(&c.nodes[0].log())
        .into_iter()
        .filter(|l| l.contains(&port1))
        .collect();
    assert!(
        errs.is_empty(),
        "Go node errors about the good rnats node:\n{}",
        errs.join("\n")
    );
}

/// Go's complaint when a server's `$SYS` messages arrive with a `server.seq`
/// not above the last one seen.
const OUT_OF_ORDER: &str = "Received out of order remote server update";

/// Many clients of an rnats node come and go at once, so
/// that it sends many `$SYS.SERVER.ACCOUNT.$G.CONNS` updates concurrently;
/// the Go nodes must receive them with increasing `server.seq`, else they
/// log `[ERR] Received out of order remote server update`.
#[tokio::test]
async fn reference_nodes_see_rnats_system_messages_in_seq_order() {
    if reference_or_skip("reference_nodes_see_rnats_system_messages_in_seq_order").is_none() {
        return;
    }
    let c = TestCluster::start_formed(&[Kind::Reference, Kind::Rnats, Kind::Reference]).await;
    within(LIMIT, "connection churn on the rnats node", async {
        for _round in 0..5 {
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let url = c.url(1);
                tasks.push(tokio::spawn(async move {
                    let cl = async_nats::connect(url).await.expect("connect");
                    rnats_itest::sync(&cl).await;
                    drop(cl);
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
        // Let the last updates reach the Go nodes.
        checks::pubsub(&c, 1, 0).await;
        checks::pubsub(&c, 1, 2).await;
    })
    .await;
    let bad: Vec<String> = c
        .nodes
        .iter()
        .filter(|n| n.kind == Kind::Reference)
        .flat_map(|n| {
            error_lines(&n.log())
                .into_iter()
                .filter(|l| l.contains(OUT_OF_ORDER))
                .map(move |l| format!("{}: {l}", n.name))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "Go nodes received rnats (n1) system messages out of seq order ({} times):\n{}",
        bad.len(),
        bad.join("\n")
    );
}
