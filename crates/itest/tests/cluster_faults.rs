//! A peer that stops answering (SIGSTOP) is detected by the route PINGs and
//! dropped (`Stale Connection`), as nats-server does; once it runs again the
//! configured routes are redialled and the cluster delivers again.

use std::time::{Duration, Instant};

use rnats_itest::cluster::{Kind, NodeOpts, TestCluster};
use rnats_itest::within;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_stopped_peer_is_dropped_by_pings_and_rejoins() {
    let mut c = TestCluster::new(2);
    for _ in 0..2 {
        c.add(NodeOpts::new(Kind::Rnats).cluster_lines(&["ping_interval: \"1s\"", "ping_max: 2"]));
    }
    within(LIMIT, "stale route", async {
        c.assert_formed().await;
        c.nodes[1].pause();
        // Node 0 pings its routes every second and gives up after two
        // unanswered PINGs.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = c.nodes[0].log();
            if log.contains("Router connection closed: Stale Connection") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node 0 never dropped its routes to the stopped node:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.nodes[1].resume();
        c.assert_formed().await;
    })
    .await;
}
