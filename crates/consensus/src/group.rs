//! One Raft group as the rest of the server sees it: propose bytes and learn the committed index,
//! ask who leads, step down or hand leadership to a peer, change membership (learner, promote,
//! remove; R1 -> R3 -> R1), and read monitoring figures. openraft stays behind this type.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, EmptyNode, Raft, ServerState};

use tokio::sync::{mpsc, oneshot};

use crate::batch::Proposal;
use crate::log_store::{LogStore, Recovery};
use crate::node::{GroupEntry, GroupNetwork, Node, NodeInner};
use crate::state_machine::{SmStore, SnapshotState, StateMachine};
use crate::types::{GroupId, LogIndex, PeerId, TypeConfig};
use crate::Error;

/// Why a proposal was not committed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// This peer does not lead the group; `leader` is who does, when known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<PeerId> },
    /// The group lost its quorum or leadership while the entry was in flight: it may or may not
    /// commit later (the caller retries with de-duplication, as JetStream's Nats-Msg-Id does).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    #[error("group is shut down")]
    Shutdown,
}

/// Why a membership change or leader transfer failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChangeError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<PeerId> },
    #[error("{0}")]
    Refused(String),
}

/// Monitoring figures for one peer of a group, as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerMetrics {
    pub peer: PeerId,
    /// Within a heartbeat's worth of entries of the leader's log.
    pub current: bool,
    /// Entries behind the leader's last entry.
    pub lag: u64,
    /// Time since the peer last answered an RPC of this group.
    pub last_active: Option<Duration>,
}

/// A group's monitoring snapshot.
#[derive(Clone, Debug)]
pub struct GroupMetrics {
    pub group: GroupId,
    pub leader: Option<PeerId>,
    pub term: u64,
    pub is_leader: bool,
    pub last_index: Option<LogIndex>,
    pub applied: Option<LogIndex>,
    pub snapshot: Option<LogIndex>,
    /// The log is purged up to here (inclusive); older entries exist only in the snapshot.
    pub purged: Option<LogIndex>,
    pub voters: BTreeSet<PeerId>,
    pub learners: BTreeSet<PeerId>,
    /// Filled on the leader only: the other peers.
    pub peers: Vec<PeerMetrics>,
}

/// A handle to one local group.
#[derive(Clone)]
pub struct Group {
    id: GroupId,
    raft: Raft<TypeConfig>,
    proposals: mpsc::UnboundedSender<Proposal>,
    node: Arc<NodeInner>,
}

/// What opening a group's storage found (damage is repaired from the leader, not fatal).
#[derive(Debug)]
pub struct OpenReport {
    pub log: Recovery,
    pub snapshot: SnapshotState,
}

impl Node {
    /// Opens (or creates) group `id` on this node. `members` bootstraps a new group: every
    /// initial member passes the same set. A peer joining an existing group passes an empty set
    /// and waits to be added as a learner by the leader.
    pub async fn open_group(
        &self,
        id: GroupId,
        members: BTreeSet<PeerId>,
        sm: Box<dyn StateMachine>,
    ) -> Result<(Group, OpenReport), Error> {
        let inner = &self.inner;
        let dir = inner.dir.join(format!("g{id}"));
        let (log, log_rec) = LogStore::open(inner.disk.clone(), dir.clone(), inner.stats.clone())
            .await
            .map_err(Error::Io)?;
        let (sm, snap_state) = SmStore::open(inner.disk.clone(), dir, sm).map_err(Error::Io)?;
        if snap_state == SnapshotState::Damaged && log.last_purged().is_some() {
            // The log's base is gone: start empty and take the leader's snapshot.
            log.reset().map_err(Error::Io)?;
        }
        let net = GroupNetwork {
            node: Arc::downgrade(inner),
            group: id,
        };
        let raft = Raft::new(inner.id, inner.raft_config.clone(), net, log, sm)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let proposals = crate::batch::spawn(raft.clone());
        inner.groups.write().insert(
            id,
            GroupEntry {
                raft: raft.clone(),
                proposals: proposals.clone(),
            },
        );
        if !members.is_empty()
            && !raft
                .is_initialized()
                .await
                .map_err(|e| Error::Raft(e.to_string()))?
        {
            let m: BTreeMap<PeerId, EmptyNode> =
                members.iter().map(|p| (*p, EmptyNode {})).collect();
            if let Err(e) = raft.initialize(m).await {
                tracing::debug!(group = id, error = %e, "initialize skipped");
            }
        }
        Ok((
            Group {
                id,
                raft,
                proposals,
                node: inner.clone(),
            },
            OpenReport {
                log: log_rec,
                snapshot: snap_state,
            },
        ))
    }

    /// A handle to an open group.
    pub fn group(&self, id: GroupId) -> Option<Group> {
        let e = self.inner.groups.read().get(&id).cloned()?;
        Some(Group {
            id,
            raft: e.raft,
            proposals: e.proposals,
            node: self.inner.clone(),
        })
    }

    /// Stops every group (storage stays; reopen to continue).
    pub async fn shutdown(&self) {
        let groups: Vec<_> = self.inner.groups.write().drain().collect();
        for (_, e) in groups {
            let _ = e.raft.shutdown().await;
        }
    }
}

/// Started on a transfer target: once the old leader's lease has run out on the other peers
/// (it stopped heartbeating), ask for votes — repeatedly, since our own timer may be later.
pub(crate) async fn campaign(raft: Raft<TypeConfig>, lease: Duration) {
    let start = tokio::time::Instant::now();
    tokio::time::sleep(lease).await;
    while start.elapsed() < lease * 3 {
        let m = raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            return;
        }
        let _ = raft.trigger().elect().await;
        tokio::time::sleep(lease / 8).await;
    }
}

pub(crate) fn map_write_err(
    e: RaftError<PeerId, ClientWriteError<PeerId, EmptyNode>>,
) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ProposeError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(e) => ProposeError::Unknown(e.to_string()),
        RaftError::Fatal(openraft::error::Fatal::Stopped) => ProposeError::Shutdown,
        RaftError::Fatal(e) => ProposeError::Unknown(e.to_string()),
    }
}

fn map_change_err(e: RaftError<PeerId, ClientWriteError<PeerId, EmptyNode>>) -> ChangeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ChangeError::NotLeader {
            leader: f.leader_id,
        },
        e => ChangeError::Refused(e.to_string()),
    }
}

impl Group {
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Replicates `data`; resolves once a quorum has it on disk and it was applied here.
    /// Proposals made while earlier ones are in flight are committed together (group commit).
    pub async fn propose(&self, data: Vec<u8>) -> Result<LogIndex, ProposeError> {
        let (tx, rx) = oneshot::channel();
        self.proposals
            .send((data, tx))
            .map_err(|_| ProposeError::Shutdown)?;
        rx.await.unwrap_or(Err(ProposeError::Shutdown))
    }

    pub fn leader(&self) -> Option<PeerId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// Voters and learners of the latest membership.
    pub fn members(&self) -> (BTreeSet<PeerId>, BTreeSet<PeerId>) {
        let m = self.raft.metrics().borrow().membership_config.clone();
        let voters = m.membership().voter_ids().collect();
        let learners = m.membership().learner_ids().collect();
        (voters, learners)
    }

    pub fn metrics(&self) -> GroupMetrics {
        let m = self.raft.metrics().borrow().clone();
        let mem = m.membership_config.membership();
        let voters: BTreeSet<PeerId> = mem.voter_ids().collect();
        let learners: BTreeSet<PeerId> = mem.learner_ids().collect();
        let last = m.last_log_index.unwrap_or(0);
        let mut peers = Vec::new();
        if let Some(rep) = &m.replication {
            let active = self.node.last_active.lock();
            for (peer, matched) in rep {
                if *peer == self.node.id {
                    continue;
                }
                let lag = last.saturating_sub(matched.map(|l| l.index).unwrap_or(0));
                let last_active = active.get(&(self.id, *peer)).map(|t| t.elapsed());
                let fresh = last_active.is_some_and(|d| d < self.node.config.election_timeout_min);
                peers.push(PeerMetrics {
                    peer: *peer,
                    current: fresh && lag <= 1,
                    lag,
                    last_active,
                });
            }
        }
        GroupMetrics {
            group: self.id,
            leader: m.current_leader,
            term: m.current_term,
            is_leader: m.state == ServerState::Leader,
            last_index: m.last_log_index,
            applied: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
            voters,
            learners,
            peers,
        }
    }

    /// Waits until some leader is known (or `timeout`), returning it.
    pub async fn wait_leader(&self, timeout: Duration) -> Option<PeerId> {
        let mut rx = self.raft.metrics();
        let res = tokio::time::timeout(timeout, rx.wait_for(|m| m.current_leader.is_some())).await;
        match res {
            Ok(Ok(m)) => m.current_leader,
            _ => None,
        }
    }

    /// Hands leadership to `to` (or to whichever peer wins when `None`): this leader stops
    /// heartbeating and campaigning, the target campaigns as soon as the others will vote, and
    /// this peer takes part in elections again once a new leader is known or after a timeout.
    pub async fn transfer_leader(&self, to: Option<PeerId>) -> Result<(), ChangeError> {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            return Err(ChangeError::NotLeader {
                leader: m.current_leader,
            });
        }
        let voters: BTreeSet<PeerId> = m.membership_config.membership().voter_ids().collect();
        if voters.len() < 2 {
            return Err(ChangeError::Refused("no other voter to take over".into()));
        }
        if let Some(t) = to {
            if t == self.node.id || !voters.contains(&t) {
                return Err(ChangeError::Refused(format!(
                    "peer {t} is not another voter"
                )));
            }
        }
        let term = m.current_term;
        self.raft.runtime_config().heartbeat(false);
        self.raft.runtime_config().elect(false);
        if let Some(t) = to {
            let node = self.node.clone();
            node.send_frame(
                t,
                crate::codec::Frame {
                    kind: crate::codec::FrameKind::Request,
                    group: self.id,
                    request_id: 0,
                    rpc: crate::codec::Rpc::TimeoutNow,
                },
            );
        }
        let max = self.node.config.election_timeout_max;
        let mut rx = self.raft.metrics();
        let fut = rx.wait_for(|m| m.current_term > term && m.current_leader.is_some());
        let res = tokio::time::timeout(max * 4, fut).await;
        self.raft.runtime_config().heartbeat(true);
        self.raft.runtime_config().elect(true);
        match res {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ChangeError::Refused("no new leader in time".into())),
        }
    }

    /// Adds `peer` as a non-voting learner and waits until it has caught up.
    pub async fn add_learner(&self, peer: PeerId) -> Result<(), ChangeError> {
        self.raft
            .add_learner(peer, EmptyNode {}, true)
            .await
            .map(|_| ())
            .map_err(map_change_err)
    }

    /// Makes a learner a voter.
    pub async fn promote(&self, peer: PeerId) -> Result<(), ChangeError> {
        self.change(ChangeMembers::AddVoterIds(BTreeSet::from([peer])))
            .await
    }

    /// Removes `peer` (voter or learner) from the group.
    pub async fn remove_peer(&self, peer: PeerId) -> Result<(), ChangeError> {
        let (voters, learners) = self.members();
        if voters.contains(&peer) {
            if voters.len() == 1 {
                return Err(ChangeError::Refused("cannot remove the last voter".into()));
            }
            self.change(ChangeMembers::RemoveVoters(BTreeSet::from([peer])))
                .await?;
        }
        if learners.contains(&peer) || voters.contains(&peer) {
            self.change(ChangeMembers::RemoveNodes(BTreeSet::from([peer])))
                .await?;
        }
        Ok(())
    }

    /// Sets the voters to exactly `voters` (joint consensus), e.g. R1 -> R3 after adding learners.
    pub async fn set_voters(&self, voters: BTreeSet<PeerId>) -> Result<(), ChangeError> {
        self.change(ChangeMembers::ReplaceAllVoters(voters)).await
    }

    async fn change(&self, c: ChangeMembers<PeerId, EmptyNode>) -> Result<(), ChangeError> {
        self.raft
            .change_membership(c, false)
            .await
            .map(|_| ())
            .map_err(map_change_err)
    }

    /// Takes a snapshot now (normally automatic every `snapshot_every` entries).
    pub async fn snapshot_now(&self) -> Result<(), ChangeError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| ChangeError::Refused(e.to_string()))
    }

    /// Stops this group on this node (its files stay).
    pub async fn shutdown(&self) {
        self.node.groups.write().remove(&self.id);
        let _ = self.raft.shutdown().await;
    }
}
