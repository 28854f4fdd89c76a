//! Routes over TLS: every node's `cluster { tls {...} }` names a certificate
//! for 127.0.0.1 (server and client use) signed by one test CA; the routes
//! handshake first and verify each other both ways, so messages cross. A node
//! whose certificate comes from another CA is refused by the others. Also in
//! a mixed cluster with nats-server, which must accept rnats's routes.

use std::time::Duration;

use rnats_itest::cluster::{interest_barrier, reference_or_skip, Kind, NodeOpts, TestCluster};
use rnats_itest::{next_msg, sync, within};

#[path = "common/certs.rs"]
mod certs;
use certs::node_certs;

const LIMIT: Duration = Duration::from_secs(40);

async fn crosses(c: &TestCluster, from: usize, to: usize) {
    let sub_nc = c.connect(to).await;
    let pub_nc = c.connect(from).await;
    let subject = format!("tls.{from}.{to}");
    let mut sub = sub_nc.subscribe(subject.clone()).await.expect("sub");
    sync(&sub_nc).await;
    interest_barrier(&pub_nc, &sub_nc).await;
    pub_nc
        .publish(subject, "over tls".into())
        .await
        .expect("pub");
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"over tls");
}

async fn tls_cluster(kinds: &[Kind]) {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key, ca) = node_certs(dir.path(), "good");
    let mut c = TestCluster::new(kinds.len());
    for k in kinds {
        c.add(NodeOpts::new(*k).cluster_tls(&cert, &key, &ca));
    }
    within(LIMIT, "tls cluster", async {
        c.assert_formed().await;
        for i in 0..kinds.len() {
            for j in 0..kinds.len() {
                if i != j {
                    crosses(&c, i, j).await;
                }
            }
        }
    })
    .await;
    // A node with a certificate from another CA is not let in.
    let (rcert, rkey, rca) = node_certs(dir.path(), "rogue");
    let rogue = c.add(NodeOpts::new(Kind::Rnats).cluster_tls(&rcert, &rkey, &rca));
    let missing = within(LIMIT, "rogue node", async {
        c.wait_formed(&(0..=rogue).collect::<Vec<_>>(), Duration::from_secs(3))
            .await
    })
    .await;
    assert!(
        missing.is_err(),
        "a node with a foreign CA joined the cluster"
    );
}

#[tokio::test]
async fn routes_over_tls_between_rnats_nodes() {
    tls_cluster(&[Kind::Rnats, Kind::Rnats, Kind::Rnats]).await;
}

#[tokio::test]
async fn routes_over_tls_with_nats_server() {
    if reference_or_skip("routes_over_tls_with_nats_server").is_none() {
        return;
    }
    tls_cluster(&[Kind::Reference, Kind::Rnats, Kind::Reference]).await;
}
