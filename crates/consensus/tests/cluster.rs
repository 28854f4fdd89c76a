//! Three in-process nodes: replication, leader transfer, membership changes under load, a
//! damaged follower log repaired from the leader, and a lagging follower caught up by snapshot.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{eventually, leader_of, Cluster};
use rnats_consensus::{FsDisk, NodeConfig, ProposeError};

fn cluster(dir: &tempfile::TempDir) -> Cluster {
    Cluster::new(dir.path().to_path_buf(), FsDisk::new(), NodeConfig::fast())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_converge() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = cluster(&dir);
    let mut groups = Vec::new();
    let mut applied = Vec::new();
    for id in 1..=3 {
        c.start_node(id);
        let (g, a) = c.open(id, 7, &[1, 2, 3]).await;
        groups.push(g);
        applied.push(a);
    }
    common::propose(&groups, b"first".to_vec()).await;
    let leader = leader_of(&groups).await;
    let follower = groups
        .iter()
        .find(|g| !g.is_leader())
        .cloned()
        .expect("follower");
    match follower.propose(b"x".to_vec()).await {
        Err(ProposeError::NotLeader { leader: Some(l) }) => {
            assert_eq!(l, leader.leader().unwrap_or(0))
        }
        other => panic!("follower accepted a proposal: {other:?}"),
    }
    let mut last = 0;
    for i in 0..50u32 {
        last = leader
            .propose(i.to_be_bytes().to_vec())
            .await
            .expect("commit");
    }
    eventually(10, "replicas converge", || {
        applied
            .iter()
            .all(|a| a.entries().last().map(|e| e.0) == Some(last))
    })
    .await;
    let first = applied[0].entries();
    assert_eq!(first.len(), 51);
    for a in &applied[1..] {
        assert_eq!(a.entries(), first, "replicas diverged");
    }
    let m = leader.metrics();
    assert_eq!(m.peers.len(), 2);
    eventually(5, "followers current", || {
        leader
            .metrics()
            .peers
            .iter()
            .all(|p| p.current && p.lag == 0)
    })
    .await;
    let stats = c.node(leader.leader().unwrap_or(1)).stats();
    assert!(stats.log_fsyncs > 0 && stats.log_appends >= stats.log_fsyncs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_transfer_to_chosen_peer() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = cluster(&dir);
    let mut groups = Vec::new();
    for id in 1..=3 {
        c.start_node(id);
        groups.push(c.open(id, 1, &[1, 2, 3]).await.0);
    }
    common::propose(&groups, b"a".to_vec()).await;
    let leader = leader_of(&groups).await;
    let old = leader.leader().expect("leader id");
    let target = (1..=3).find(|p| *p != old).expect("target");
    let term = leader.term();
    leader
        .transfer_leader(Some(target))
        .await
        .expect("transfer");
    let new_leader = leader_of(&groups).await;
    assert!(new_leader.term() > term);
    assert_ne!(new_leader.leader(), Some(old), "leadership did not move");
    new_leader
        .propose(b"b".to_vec())
        .await
        .expect("commit after transfer");
    let follower = groups.iter().find(|g| !g.is_leader()).expect("follower");
    assert!(matches!(
        follower.transfer_leader(None).await,
        Err(rnats_consensus::ChangeError::NotLeader { .. })
    ));
    // Step-down without a target: someone else takes over.
    let second = new_leader.leader().expect("id");
    let term = new_leader.term();
    new_leader.transfer_leader(None).await.expect("step down");
    let third = leader_of(&groups).await;
    assert!(third.term() > term);
    assert_ne!(third.leader(), Some(second), "the old leader stepped down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_r1_to_r3_to_r1_under_load() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = cluster(&dir);
    for id in 1..=3 {
        c.start_node(id);
    }
    let (g1, a1) = c.open(1, 9, &[1]).await;
    let (_g2, a2) = c.open(2, 9, &[]).await;
    let (_g3, a3) = c.open(3, 9, &[]).await;
    eventually(10, "R1 leader", || g1.is_leader()).await;

    let writer = {
        let g = g1.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..300u32 {
                if let Ok(idx) = g.propose(i.to_be_bytes().to_vec()).await {
                    acked.push((idx, i));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            acked
        })
    };
    g1.add_learner(2).await.expect("learner 2");
    g1.add_learner(3).await.expect("learner 3");
    g1.set_voters(BTreeSet::from([1, 2, 3])).await.expect("R3");
    assert_eq!(g1.members().0, BTreeSet::from([1, 2, 3]));
    g1.remove_peer(3).await.expect("remove 3");
    g1.remove_peer(2).await.expect("remove 2");
    assert_eq!(g1.members().0, BTreeSet::from([1]));
    let acked = writer.await.expect("writer");
    assert_eq!(
        acked.len(),
        300,
        "every proposal on the stable leader commits"
    );
    let on1: Vec<(u64, Vec<u8>)> = a1.entries();
    for (idx, i) in &acked {
        assert!(
            on1.contains(&(*idx, i.to_be_bytes().to_vec())),
            "acked entry {idx} missing"
        );
    }
    // While they were voters, 2 and 3 held a prefix of the same log.
    for a in [&a2, &a3] {
        let e = a.entries();
        assert!(!e.is_empty());
        assert_eq!(&on1[..e.len().min(on1.len())], &e[..e.len().min(on1.len())]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_follower_log_is_cut_and_repaired_from_leader() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = NodeConfig::fast();
    config.snapshot_every = 100_000; // keep the whole log, so the damage is in it
    let c = Cluster::new(dir.path().to_path_buf(), FsDisk::new(), config);
    let mut groups = Vec::new();
    let mut applied = Vec::new();
    for id in 1..=3 {
        c.start_node(id);
        let (g, a) = c.open(id, 3, &[1, 2, 3]).await;
        groups.push(g);
        applied.push(a);
    }
    for i in 0..40u32 {
        common::propose(&groups, vec![i as u8; 64]).await;
    }
    let leader = leader_of(&groups).await;
    let lid = leader.leader().expect("id");
    let victim = (1..=3).find(|p| *p != lid).expect("follower");
    eventually(10, "victim caught up", || {
        applied[victim as usize - 1].entries().len() == 40
    })
    .await;
    groups[victim as usize - 1].shutdown().await;

    let path = dir.path().join(format!("n{victim}/g3/log"));
    let mut bytes = std::fs::read(&path).expect("log file");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).expect("corrupt");

    for i in 40..60u32 {
        leader
            .propose(vec![i as u8; 64])
            .await
            .expect("commit while victim down");
    }
    let applied_v = common::Applied::default();
    let (_g, report) = c
        .node(victim)
        .open_group(
            3,
            BTreeSet::new(),
            Box::new(common::Recorder(applied_v.clone())),
        )
        .await
        .expect("reopen damaged group");
    assert!(
        report.log.dropped_records && report.log.dropped_bytes > 0,
        "{report:?}"
    );
    let want = applied[lid as usize - 1].entries();
    eventually(15, "damaged replica repaired", || {
        applied_v.entries() == want
    })
    .await;
    assert_eq!(want.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_from_snapshot() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = cluster(&dir); // snapshot every 64, keep 8 behind
    let mut groups = Vec::new();
    let mut applied = Vec::new();
    for id in 1..=3 {
        c.start_node(id);
        let (g, a) = c.open(id, 5, &[1, 2, 3]).await;
        groups.push(g);
        applied.push(a);
    }
    common::propose(&groups, b"first".to_vec()).await;
    let leader = leader_of(&groups).await;
    let lid = leader.leader().expect("id");
    let lagger = (1..=3).find(|p| *p != lid).expect("follower");
    c.net.isolated.lock().insert(lagger);
    for i in 0..300u32 {
        leader
            .propose(i.to_be_bytes().to_vec())
            .await
            .expect("commit with 2 of 3");
    }
    eventually(10, "leader snapshot and purge", || {
        let m = leader.metrics();
        m.snapshot.is_some_and(|s| s > 100)
    })
    .await;
    c.net.isolated.lock().clear();
    let want = applied[lid as usize - 1].entries();
    let g = groups[lagger as usize - 1].clone();
    eventually(20, "lagger installs snapshot and converges", || {
        applied[lagger as usize - 1].entries() == want && g.metrics().snapshot.is_some()
    })
    .await;
}
