//! Storage through a real group on the simulated disk: restarts, crashes that drop unsynced
//! bytes or tear the tail, a damaged record mid-log, snapshots and purge, a damaged vote file.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use common::{eventually, Applied, Cluster, Recorder};
use rnats_consensus::{Disk, Node, NodeConfig, SimDisk, SnapshotState};

async fn open_r1(
    c: &Cluster,
    group: u64,
) -> (rnats_consensus::Group, Applied, rnats_consensus::OpenReport) {
    let applied = Applied::default();
    let (g, rep) = c
        .node(1)
        .open_group(
            group,
            BTreeSet::from([1]),
            Box::new(Recorder(applied.clone())),
        )
        .await
        .expect("open");
    eventually(10, "R1 leader", || g.is_leader()).await;
    (g, applied, rep)
}

async fn restart(c: &Cluster, node: &Node) {
    node.shutdown().await;
    c.start_node(1);
}

fn sim(config: NodeConfig) -> (Cluster, Arc<SimDisk>) {
    let disk = SimDisk::new();
    let c = Cluster::new("/sim".into(), disk.clone(), config);
    c.start_node(1);
    (c, disk)
}

fn log_path(group: u64) -> std::path::PathBuf {
    Path::new("/sim/n1").join(format!("g{group}/log"))
}

#[tokio::test]
async fn acked_entries_survive_a_crash_that_drops_unsynced_bytes() {
    let (c, disk) = sim(NodeConfig::fast());
    let (g, _a, _) = open_r1(&c, 1).await;
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let g = g.clone();
        tasks.push(tokio::spawn(async move {
            (g.propose(i.to_be_bytes().to_vec()).await, i)
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        let (r, i) = t.await.expect("task");
        acked.push((r.expect("R1 commits"), i.to_be_bytes().to_vec()));
    }
    restart(&c, &c.node(1)).await;
    // Anything written after the last fsync is lost, and half of it may survive torn.
    disk.crash(|n| n / 2);
    let (_g, applied, _) = open_r1(&c, 1).await;
    eventually(10, "replay", || applied.entries().len() >= acked.len()).await;
    let got = applied.entries();
    for e in &acked {
        assert!(got.contains(e), "acked entry {} lost", e.0);
    }
}

#[tokio::test]
async fn torn_tail_is_cut_at_open() {
    let (c, disk) = sim(NodeConfig::fast());
    let (g, _, _) = open_r1(&c, 2).await;
    for i in 0..10u8 {
        g.propose(vec![i]).await.expect("commit");
    }
    restart(&c, &c.node(1)).await;
    // Half a record: length and checksum promise more bytes than there are.
    disk.append(&log_path(2), &[200, 0, 0, 0, 1, 2, 3, 4, 1, 9])
        .expect("append");
    disk.sync(&log_path(2)).expect("sync");
    let (_g, applied, rep) = open_r1(&c, 2).await;
    assert_eq!(rep.log.dropped_bytes, 10);
    eventually(10, "replay", || applied.entries().len() >= 10).await;
    let data: Vec<Vec<u8>> = applied.entries().into_iter().map(|e| e.1).collect();
    assert_eq!(
        data[..10],
        (0..10u8).map(|i| vec![i]).collect::<Vec<_>>()[..]
    );
}

#[tokio::test]
async fn bad_checksum_mid_log_cuts_there_without_crashing() {
    let mut cfg = NodeConfig::fast();
    cfg.snapshot_every = 100_000;
    let (c, disk) = sim(cfg);
    let (g, _, _) = open_r1(&c, 3).await;
    for i in 0..30u8 {
        g.propose(vec![i; 32]).await.expect("commit");
    }
    restart(&c, &c.node(1)).await;
    let len = disk.read(&log_path(3)).expect("read").expect("log").len();
    assert!(disk.corrupt(&log_path(3), len / 2, &[0xde, 0xad]));
    let applied = Applied::default();
    let (_g, rep) = c
        .node(1)
        .open_group(3, BTreeSet::from([1]), Box::new(Recorder(applied.clone())))
        .await
        .expect("a damaged log opens");
    assert!(rep.log.dropped_records);
    assert!(rep.log.dropped_bytes > 0 && (rep.log.dropped_bytes as usize) < len);
    let after = disk.read(&log_path(3)).expect("read").expect("log").len();
    assert_eq!(
        after,
        len - rep.log.dropped_bytes as usize,
        "file cut to the good prefix"
    );
}

#[tokio::test]
async fn snapshot_purges_the_log_and_restores_at_restart() {
    let (c, disk) = sim(NodeConfig::fast()); // snapshot every 64, keep 8
    let (g, applied, _) = open_r1(&c, 4).await;
    for i in 0..200u32 {
        g.propose(i.to_be_bytes().to_vec()).await.expect("commit");
    }
    eventually(10, "snapshot and purge", || {
        let m = g.metrics();
        m.snapshot.is_some_and(|s| s >= 128) && m.purged.is_some_and(|p| p > 100)
    })
    .await;
    let before = applied.entries();
    assert!(disk
        .read(Path::new("/sim/n1/g4/snapshot"))
        .expect("read")
        .is_some());
    restart(&c, &c.node(1)).await;
    disk.crash(|_| 0);
    let (_g, again, rep) = open_r1(&c, 4).await;
    assert!(
        matches!(rep.snapshot, SnapshotState::Restored(_)),
        "{rep:?}"
    );
    eventually(10, "state rebuilt from snapshot + log", || {
        again.entries() == before
    })
    .await;
}

#[tokio::test]
async fn damaged_vote_file_refuses_to_start() {
    let (c, disk) = sim(NodeConfig::fast());
    let (g, _, _) = open_r1(&c, 5).await;
    g.propose(b"x".to_vec()).await.expect("commit");
    restart(&c, &c.node(1)).await;
    let vote = Path::new("/sim/n1/g5/vote");
    assert!(disk.corrupt(vote, 9, &[0xff]));
    let res = c
        .node(1)
        .open_group(
            5,
            BTreeSet::from([1]),
            Box::new(Recorder(Applied::default())),
        )
        .await;
    assert!(
        res.is_err(),
        "a node must not start with a vote it cannot trust"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_fsyncs_on_a_real_disk() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = Cluster::new(
        dir.path().to_path_buf(),
        rnats_consensus::FsDisk::new(),
        NodeConfig::fast(),
    );
    c.start_node(1);
    let (g, _a, _) = open_r1(&c, 6).await;
    let before = c.node(1).stats();
    let mut tasks = Vec::new();
    for i in 0..256u32 {
        let g = g.clone();
        tasks.push(tokio::spawn(async move {
            g.propose(i.to_be_bytes().to_vec()).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("commit");
    }
    let after = c.node(1).stats();
    let fsyncs = after.log_fsyncs - before.log_fsyncs;
    assert!(fsyncs > 0);
    assert!(
        fsyncs < 128,
        "group commit: 256 proposals took {fsyncs} fsyncs"
    );
    println!(
        "256 concurrent proposals: {fsyncs} fsyncs, {} entries",
        after.log_entries - before.log_entries
    );
}
