//! Many groups, three in-process nodes, no faults: how many leader changes happen after the
//! initial elections, and what it costs in CPU. Figures go into the crate README.
//!
//! `cargo run --release -p rnats-consensus --example many_groups -- <groups> <seconds>`

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rnats_consensus::mem::MemNet;
use rnats_consensus::{FsDisk, Group, Node, NodeConfig, StateMachine};

struct Nop;

impl StateMachine for Nop {
    fn apply(&mut self, _: u64, _: &[u8]) {}
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(&mut self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let secs = args.get(1).copied().unwrap_or(30);
    let dir = std::env::temp_dir().join(format!("rnats-many-groups-{}", std::process::id()));
    let net = MemNet::new();
    let disk = FsDisk::new();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let node = Node::new(
            id,
            NodeConfig::default(),
            dir.join(format!("n{id}")),
            disk.clone(),
            net.transport(id),
        )
        .expect("node");
        net.add(node.clone());
        nodes.push(node);
    }
    let t0 = Instant::now();
    let mut opening = tokio::task::JoinSet::new();
    for gid in 0..n {
        let nodes = nodes.clone();
        opening.spawn(async move {
            let mut replicas = Vec::new();
            for node in &nodes {
                let (g, _) = node
                    .open_group(gid, BTreeSet::from([1, 2, 3]), Box::new(Nop))
                    .await
                    .expect("open");
                replicas.push(g);
            }
            replicas
        });
    }
    let groups: Vec<Vec<Group>> = opening.join_all().await;
    println!("opened {n} groups x 3 replicas in {:?}", t0.elapsed());
    let mut waited = 0u64;
    loop {
        let without = groups.iter().filter(|r| r[0].leader().is_none()).count();
        if without == 0 {
            break;
        }
        waited += 1;
        if waited.is_multiple_of(50) {
            println!(
                "{without} groups still without a leader after {:?}",
                t0.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("all {n} groups have a leader after {:?}", t0.elapsed());
    // A new leader commits a blank entry of its term by itself; let those settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let terms: HashMap<u64, (u64, Option<u64>)> = groups
        .iter()
        .map(|r| (r[0].id(), (r[0].term(), r[0].leader())))
        .collect();
    let cpu0 = cpu_seconds();
    let stats0: Vec<_> = nodes.iter().map(|n| n.stats()).collect();
    let start = Instant::now();
    let mut changes = 0u64;
    let mut last = terms.clone();
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for r in &groups {
            let now = (r[0].term(), r[0].leader());
            let prev = last.insert(r[0].id(), now);
            if prev.is_some_and(|p| p.0 != now.0) {
                changes += 1;
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let leaders: Vec<usize> = (1..=3u64)
        .map(|id| groups.iter().filter(|r| r[0].leader() == Some(id)).count())
        .collect();
    println!("groups={n} window={wall:.1}s leader_changes={changes} cpu={cpu:.1}s ({:.0}% of one core) leaders_per_node={leaders:?}", 100.0 * cpu / wall);
    for (node, s0) in nodes.iter().zip(stats0) {
        let s = node.stats();
        let frames = s.frames_out - s0.frames_out;
        let batches = (s.batches_out - s0.batches_out).max(1);
        println!(
            "node {}: {:.0} frames/s out in {:.0} batches/s ({:.1} frames per transport message)",
            node.id(),
            frames as f64 / wall,
            batches as f64 / wall,
            frames as f64 / batches as f64
        );
    }
    for node in &nodes {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
