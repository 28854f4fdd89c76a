//! Deterministic simulation under turmoil (seeded network, simulated clock): 3 and 5 nodes
//! exchanging Raft batches as UDP datagrams, with message loss, partitions, and crashes that
//! drop every unsynced byte (and may tear the last write) of the crashed node's simulated disk.
//! Each host proposes while it leads; after every step the checker asserts at most one leader
//! per term, that no replica's applied log disagrees with another's or lacks an acknowledged
//! proposal it has reached, and at the end, after healing, that all replicas converge.
//!
//! `RAFT_SIM_SEEDS=<n> RAFT_SIM_SECS=<s>` runs more seeds for longer (scripts/raft-sim.sh).

mod common;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::{Applied, Item, Recorder};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rnats_consensus::{Group, Node, NodeConfig, PeerId, SimDisk, Transport};
use tokio::sync::mpsc;

const PORT: u16 = 7222;
const GROUP: u64 = 1;

/// What the hosts publish for the checker (all on the simulation's one thread).
#[derive(Default)]
struct World {
    groups: HashMap<PeerId, Group>,
    applied: HashMap<PeerId, Applied>,
    /// (index, value) of every proposal a leader saw committed.
    acked: Vec<Item>,
    next_value: u64,
    /// Set once faults end, so replicas can be compared at rest.
    stop: bool,
}

type Shared = Arc<Mutex<World>>;

struct UdpTransport {
    tx: mpsc::UnboundedSender<(PeerId, Vec<u8>)>,
}

impl Transport for UdpTransport {
    fn send(&self, peer: PeerId, batch: Vec<u8>) {
        let _ = self.tx.send((peer, batch));
    }
}

fn host_name(id: PeerId) -> String {
    format!("n{id}")
}

async fn run_host(
    id: PeerId,
    peers: Vec<PeerId>,
    disk: Arc<SimDisk>,
    world: Shared,
) -> Result<(), Box<dyn std::error::Error>> {
    let sock =
        Rc::new(turmoil::net::UdpSocket::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?);
    let (tx, mut rx) = mpsc::unbounded_channel::<(PeerId, Vec<u8>)>();
    let node = Node::new(
        id,
        NodeConfig::fast(),
        "/data".into(),
        disk,
        Arc::new(UdpTransport { tx }),
    )?;
    let out = sock.clone();
    tokio::task::spawn_local(async move {
        while let Some((peer, batch)) = rx.recv().await {
            // A full socket buffer or a partition is message loss, which Raft tolerates.
            let _ = out.send_to(&batch, (host_name(peer), PORT)).await;
        }
    });
    let addrs: HashMap<IpAddr, PeerId> = peers
        .iter()
        .map(|p| (turmoil::lookup(host_name(*p)), *p))
        .collect();
    let inbound = node.clone();
    let recv_sock = sock.clone();
    tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; 1 << 20];
        while let Ok((n, from)) = recv_sock.recv_from(&mut buf).await {
            if let Some(peer) = addrs.get(&from.ip()) {
                inbound.receive(*peer, &buf[..n]);
            }
        }
    });
    let applied = Applied::default();
    let (group, _) = node
        .open_group(
            GROUP,
            peers.iter().copied().collect::<BTreeSet<_>>(),
            Box::new(Recorder(applied.clone())),
        )
        .await?;
    {
        let mut w = world.lock();
        w.groups.insert(id, group.clone());
        w.applied.insert(id, applied);
    }
    // The workload: propose a few unique values at a time while leading.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if !group.is_leader() || world.lock().stop {
            continue;
        }
        let mut pending = Vec::new();
        for _ in 0..3 {
            let value = {
                let mut w = world.lock();
                w.next_value += 1;
                format!("{id}:{}", w.next_value).into_bytes()
            };
            let g = group.clone();
            let world = world.clone();
            pending.push(tokio::task::spawn_local(async move {
                if let Ok(index) = g.propose(value.clone()).await {
                    world.lock().acked.push((index, value));
                }
            }));
        }
        for p in pending {
            let _ = p.await;
        }
    }
}

/// The invariants, checked after every simulation step.
struct Checker {
    leader_of_term: HashMap<u64, PeerId>,
    steps: u64,
}

impl Checker {
    fn check(&mut self, w: &World, up: &BTreeSet<PeerId>, seed: u64) {
        for (id, g) in &w.groups {
            if !up.contains(id) {
                continue;
            }
            if g.is_leader() {
                let term = g.term();
                let prev = self.leader_of_term.insert(term, *id);
                assert!(
                    prev.is_none_or(|p| p == *id),
                    "seed {seed}: two leaders in term {term}: {prev:?} and {id}"
                );
            }
        }
        // Replicas agree on the order of what they applied (one is a prefix of the other).
        let logs: Vec<(PeerId, Vec<Item>)> = w
            .applied
            .iter()
            .filter(|(id, _)| up.contains(id))
            .map(|(id, a)| (*id, a.entries()))
            .collect();
        for (i, (a, la)) in logs.iter().enumerate() {
            for (b, lb) in &logs[i + 1..] {
                let n = la.len().min(lb.len());
                assert!(
                    la[..n] == lb[..n],
                    "seed {seed}: replicas {a} and {b} diverged"
                );
            }
        }
        // Every acknowledged proposal is in every replica that has applied that far (a set
        // lookup per ack; every 50 steps, as it is the costly check).
        self.steps += 1;
        if !self.steps.is_multiple_of(50) {
            return;
        }
        for (id, log) in &logs {
            let last = log.last().map(|e| e.0).unwrap_or(0);
            let have: std::collections::HashSet<&Item> = log.iter().collect();
            for ack in &w.acked {
                if ack.0 < last {
                    assert!(
                        have.contains(ack),
                        "seed {seed}: replica {id} lost acked entry {}",
                        ack.0
                    );
                }
            }
        }
    }
}

fn simulate(seed: u64, nodes: u64, secs: u64) -> (usize, usize) {
    rnats_consensus::seed_thread_rng(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(secs + 60))
        .tick_duration(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(20))
        .build();
    let world: Shared = Arc::new(Mutex::new(World::default()));
    let peers: Vec<PeerId> = (1..=nodes).collect();
    let disks: HashMap<PeerId, Arc<SimDisk>> = peers.iter().map(|p| (*p, SimDisk::new())).collect();
    for id in &peers {
        let (id, peers, disk, world) = (*id, peers.clone(), disks[id].clone(), world.clone());
        sim.host(host_name(id), move || {
            run_host(id, peers.clone(), disk.clone(), world.clone())
        });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut checker = Checker {
        leader_of_term: HashMap::new(),
        steps: 0,
    };
    let mut up: BTreeSet<PeerId> = peers.iter().copied().collect();
    let mut down_until: std::collections::BTreeMap<PeerId, Duration> = Default::default();
    let mut partitioned: Option<(PeerId, Duration)> = None;
    let fault_end = Duration::from_secs(secs);
    let names: Vec<String> = peers.iter().map(|p| host_name(*p)).collect();
    let crashes = Rc::new(RefCell::new(0usize));
    loop {
        let now = sim.elapsed();
        if now < fault_end && rng.gen_bool(0.002) {
            match rng.gen_range(0..4u8) {
                0 if up.len() == peers.len() => {
                    // Crash a node: its unsynced writes are lost, half the time torn mid-record.
                    let victim = peers[rng.gen_range(0..peers.len())];
                    sim.crash(host_name(victim));
                    let tear = rng.gen_bool(0.5);
                    let mut r = rand::rngs::StdRng::seed_from_u64(rng.gen());
                    disks[&victim].crash(|n| if tear && n > 0 { r.gen_range(0..n) } else { 0 });
                    up.remove(&victim);
                    world.lock().groups.remove(&victim);
                    world.lock().applied.remove(&victim);
                    down_until.insert(
                        victim,
                        now + Duration::from_millis(rng.gen_range(200..3000)),
                    );
                    *crashes.borrow_mut() += 1;
                }
                1 if partitioned.is_none() => {
                    let victim = peers[rng.gen_range(0..peers.len())];
                    for other in &peers {
                        if *other != victim {
                            sim.partition(host_name(victim), host_name(*other));
                        }
                    }
                    partitioned = Some((
                        victim,
                        now + Duration::from_millis(rng.gen_range(500..4000)),
                    ));
                }
                2 => sim.set_fail_rate(rng.gen_range(0.0..0.2)),
                _ => sim.set_fail_rate(0.0),
            }
        }
        for (id, until) in down_until.clone() {
            if now >= until {
                sim.bounce(host_name(id));
                down_until.remove(&id);
                up.insert(id);
            }
        }
        if let Some((victim, until)) = partitioned {
            if now >= until || now >= fault_end {
                for other in &names {
                    sim.repair(host_name(victim), other.as_str());
                }
                partitioned = None;
            }
        }
        if now >= fault_end {
            sim.set_fail_rate(0.0);
            world.lock().stop = true;
        }
        match sim.step() {
            Ok(_) => {}
            Err(e) => panic!("seed {seed}: simulation error: {e}"),
        }
        checker.check(&world.lock(), &up, seed);
        if now >= fault_end && down_until.is_empty() && converged(&world.lock(), nodes) {
            break;
        }
        assert!(
            now < fault_end + Duration::from_secs(55),
            "seed {seed}: replicas did not converge within 55 s of healing"
        );
    }
    let w = world.lock();
    let acked = w.acked.len();
    let crashes = *crashes.borrow();
    (acked, crashes)
}

/// All replicas up, applied the same log, and it holds every acknowledged proposal.
fn converged(w: &World, nodes: u64) -> bool {
    if w.applied.len() as u64 != nodes {
        return false;
    }
    let logs: Vec<Vec<Item>> = w.applied.values().map(|a| a.entries()).collect();
    let first = &logs[0];
    if !logs.iter().all(|l| l == first) || w.acked.is_empty() {
        return false;
    }
    let have: std::collections::HashSet<&Item> = first.iter().collect();
    w.acked.iter().all(|a| have.contains(a))
}

fn run_seeds(nodes: u64, default_seeds: u64) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let n = env("RAFT_SIM_SEEDS").unwrap_or(default_seeds);
    let secs = env("RAFT_SIM_SECS").unwrap_or(6);
    let base: u64 = std::env::var("RAFT_SIM_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for seed in base..base + n {
        let (acked, crashes) = simulate(seed * 1000 + nodes, nodes, secs);
        println!("sim nodes={nodes} seed={seed} secs={secs}: {acked} acked proposals, {crashes} crashes, invariants held");
        assert!(acked > 0, "seed {seed}: nothing was ever committed");
    }
}

#[test]
fn three_nodes_under_faults() {
    run_seeds(3, 3);
}

#[test]
fn five_nodes_under_faults() {
    run_seeds(5, 2);
}
