//! In-process cluster harness shared by the integration tests: nodes joined by an in-memory
//! transport that can isolate peers, and a state machine that records every applied entry.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rnats_consensus::mem::MemNet;
use rnats_consensus::{Disk, Group, GroupId, Node, NodeConfig, PeerId, StateMachine};

/// An applied proposal: its log index and bytes.
pub type Item = (u64, Vec<u8>);

/// Applied entries, shared with the test so it can compare replicas.
#[derive(Clone, Default)]
pub struct Applied(pub Arc<Mutex<Vec<Item>>>);

impl Applied {
    pub fn entries(&self) -> Vec<Item> {
        self.0.lock().clone()
    }
}

pub struct Recorder(pub Applied);

impl StateMachine for Recorder {
    fn apply(&mut self, index: u64, data: &[u8]) {
        self.0 .0.lock().push((index, data.to_vec()));
    }
    fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(&*self.0 .0.lock()).unwrap_or_default()
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let v: Vec<Item> = bincode::deserialize(snapshot).map_err(|e| e.to_string())?;
        *self.0 .0.lock() = v;
        Ok(())
    }
}

pub struct Cluster {
    pub net: Arc<MemNet>,
    pub dir: PathBuf,
    pub disk: Arc<dyn Disk>,
    pub config: NodeConfig,
}

impl Cluster {
    pub fn new(dir: PathBuf, disk: Arc<dyn Disk>, config: NodeConfig) -> Self {
        Self {
            net: MemNet::new(),
            dir,
            disk,
            config,
        }
    }

    pub fn start_node(&self, id: PeerId) -> Node {
        let t = self.net.transport(id);
        let node = Node::new(
            id,
            self.config.clone(),
            self.dir.join(format!("n{id}")),
            self.disk.clone(),
            t,
        )
        .expect("node");
        self.net.add(node.clone());
        node
    }

    pub fn node(&self, id: PeerId) -> Node {
        self.net
            .nodes
            .lock()
            .get(&id)
            .cloned()
            .expect("node exists")
    }

    pub async fn open(&self, id: PeerId, group: GroupId, members: &[PeerId]) -> (Group, Applied) {
        let applied = Applied::default();
        let (g, _) = self
            .node(id)
            .open_group(
                group,
                members.iter().copied().collect::<BTreeSet<_>>(),
                Box::new(Recorder(applied.clone())),
            )
            .await
            .expect("open group");
        (g, applied)
    }
}

/// Waits until `f` holds, polling; panics with `what` after `secs`.
pub async fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The group handle among `groups` that currently leads.
pub async fn leader_of(groups: &[Group]) -> Group {
    let mut found = None;
    eventually(20, "a leader", || {
        found = groups.iter().find(|g| g.is_leader()).cloned();
        found.is_some()
    })
    .await;
    found.expect("leader")
}

/// Proposes through whichever group leads, retrying while leadership settles (the first
/// elections after start may hand over once); returns the committed index.
pub async fn propose(groups: &[Group], data: Vec<u8>) -> u64 {
    for _ in 0..200 {
        let leader = leader_of(groups).await;
        match leader.propose(data.clone()).await {
            Ok(i) => return i,
            Err(rnats_consensus::ProposeError::NotLeader { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("proposal failed: {e}"),
        }
    }
    panic!("no stable leader to propose to");
}
