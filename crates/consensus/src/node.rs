//! One server's side of all its Raft groups: the registry of local groups, and the per-peer
//! multiplexer that carries every group's RPCs to a peer over a single [`Transport`]. Outgoing
//! frames to a peer are queued and a per-peer task sends all that queued up meanwhile as one
//! batch, so heartbeats of thousands of groups ride in a handful of transport messages. Requests
//! are matched to answers by a request id; a lost frame is a timed-out RPC, which Raft retries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, EmptyNode, OptionalSend, Raft};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, Frame, FrameKind, Rpc};
use crate::disk::Disk;
use crate::log_store::FlushStats;
use crate::types::{GroupId, PeerId, TypeConfig, Vote};

/// Carries batches of encoded frames to a peer. The server implements it over routes (system
/// account messages under our own subject prefix); tests implement it in memory or over
/// simulated sockets. Delivery may lose, delay or reorder batches: Raft copes.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, peer: PeerId, batch: Vec<u8>);
}

/// Timers and limits shared by a node's groups.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Take a snapshot after this many applied entries (then purge the log behind it).
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, for followers that lag a little.
    pub keep_behind_snapshot: u64,
    /// How long an RPC waits for its answer at most.
    pub rpc_timeout: Duration,
}

impl Default for NodeConfig {
    /// Generous timers, as nats-server's (1 s heartbeat, 4–9 s elections): thousands of groups
    /// on a loaded machine must not mistake a slow tick for a dead leader.
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(1000),
            election_timeout_min: Duration::from_millis(4000),
            election_timeout_max: Duration::from_millis(9000),
            snapshot_every: 8192,
            keep_behind_snapshot: 1024,
            rpc_timeout: Duration::from_millis(2000),
        }
    }
}

impl NodeConfig {
    /// Fast timers for tests on one machine.
    pub fn fast() -> Self {
        Self {
            heartbeat: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            snapshot_every: 64,
            keep_behind_snapshot: 8,
            rpc_timeout: Duration::from_millis(300),
        }
    }

    pub(crate) fn raft_config(&self) -> Result<openraft::Config, String> {
        let c = openraft::Config {
            cluster_name: "rnats".into(),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: self.election_timeout_min.as_millis() as u64,
            election_timeout_max: self.election_timeout_max.as_millis() as u64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_behind_snapshot,
            install_snapshot_timeout: self.rpc_timeout.as_millis() as u64 * 4,
            ..Default::default()
        };
        c.validate().map_err(|e| e.to_string())
    }
}

pub(crate) struct NodeInner {
    pub id: PeerId,
    pub config: NodeConfig,
    pub raft_config: Arc<openraft::Config>,
    pub disk: Arc<dyn Disk>,
    pub dir: PathBuf,
    pub stats: Arc<FlushStats>,
    transport: Arc<dyn Transport>,
    pub groups: RwLock<HashMap<GroupId, GroupEntry>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Rpc>>>,
    next_req: AtomicU64,
    outboxes: Mutex<HashMap<PeerId, mpsc::UnboundedSender<Vec<u8>>>>,
    /// (group, peer) -> millis since node start of the last answer from that peer.
    pub last_active: Mutex<HashMap<(GroupId, PeerId), tokio::time::Instant>>,
    pub frames_in: AtomicU64,
    pub batches_out: AtomicU64,
    pub frames_out: AtomicU64,
}

/// A local group as the registry keeps it.
#[derive(Clone)]
pub(crate) struct GroupEntry {
    pub raft: Raft<TypeConfig>,
    pub proposals: mpsc::UnboundedSender<crate::batch::Proposal>,
}

/// A server's Raft endpoint: create groups on it and feed it the batches peers send.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

/// Transport counters of a node.
#[derive(Clone, Debug, Default)]
pub struct NodeStats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub batches_out: u64,
    pub log_fsyncs: u64,
    pub log_appends: u64,
    pub log_entries: u64,
}

impl Node {
    pub fn new(
        id: PeerId,
        config: NodeConfig,
        dir: PathBuf,
        disk: Arc<dyn Disk>,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, crate::Error> {
        let raft_config = Arc::new(config.raft_config().map_err(crate::Error::Config)?);
        Ok(Self {
            inner: Arc::new(NodeInner {
                id,
                config,
                raft_config,
                disk,
                dir,
                stats: Arc::new(FlushStats::default()),
                transport,
                groups: RwLock::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                next_req: AtomicU64::new(1),
                outboxes: Mutex::new(HashMap::new()),
                last_active: Mutex::new(HashMap::new()),
                frames_in: AtomicU64::new(0),
                batches_out: AtomicU64::new(0),
                frames_out: AtomicU64::new(0),
            }),
        })
    }

    pub fn id(&self) -> PeerId {
        self.inner.id
    }

    pub fn stats(&self) -> NodeStats {
        let i = &self.inner;
        NodeStats {
            frames_in: i.frames_in.load(Ordering::Relaxed),
            frames_out: i.frames_out.load(Ordering::Relaxed),
            batches_out: i.batches_out.load(Ordering::Relaxed),
            log_fsyncs: i.stats.fsyncs.load(Ordering::Relaxed),
            log_appends: i.stats.appends.load(Ordering::Relaxed),
            log_entries: i.stats.entries.load(Ordering::Relaxed),
        }
    }

    /// A batch from `from`, as its [`Transport`] delivered it. Malformed batches are dropped.
    pub fn receive(&self, from: PeerId, batch: &[u8]) {
        let frames = match codec::decode_batch(batch) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(peer = from, error = %e, "dropping malformed raft batch");
                return;
            }
        };
        for f in frames {
            self.inner.frames_in.fetch_add(1, Ordering::Relaxed);
            match f.kind {
                FrameKind::Response => {
                    if let Some(tx) = self.inner.pending.lock().remove(&f.request_id) {
                        self.inner
                            .last_active
                            .lock()
                            .insert((f.group, from), tokio::time::Instant::now());
                        let _ = tx.send(f.rpc);
                    }
                }
                FrameKind::Request => {
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        let answer = inner.serve(f.group, f.rpc).await;
                        if let Some(rpc) = answer {
                            inner.send_frame(
                                from,
                                Frame {
                                    kind: FrameKind::Response,
                                    group: f.group,
                                    request_id: f.request_id,
                                    rpc,
                                },
                            );
                        }
                    });
                }
            }
        }
    }
}

impl NodeInner {
    fn raft(&self, group: GroupId) -> Option<Raft<TypeConfig>> {
        self.groups.read().get(&group).map(|e| e.raft.clone())
    }

    async fn serve(self: &Arc<Self>, group: GroupId, rpc: Rpc) -> Option<Rpc> {
        let Some(raft) = self.raft(group) else {
            return Some(Rpc::Failed(format!("no group {group} on peer {}", self.id)));
        };
        Some(match rpc {
            Rpc::Append(req) => match raft.append_entries(req).await {
                Ok(r) => Rpc::AppendOk(r),
                Err(e) => Rpc::Failed(e.to_string()),
            },
            Rpc::Vote(req) => match raft.vote(req).await {
                Ok(r) => Rpc::VoteOk(r),
                Err(e) => Rpc::Failed(e.to_string()),
            },
            Rpc::Snapshot { vote, meta, data } => {
                let snap = openraft::storage::Snapshot {
                    meta,
                    snapshot: Box::new(data),
                };
                match raft.install_full_snapshot(vote, snap).await {
                    Ok(r) => Rpc::SnapshotOk(r),
                    Err(e) => Rpc::Failed(e.to_string()),
                }
            }
            Rpc::TimeoutNow => {
                crate::group::campaign(raft, self.config.election_timeout_max).await;
                return None;
            }
            _ => return None,
        })
    }

    pub(crate) fn send_frame(self: &Arc<Self>, peer: PeerId, frame: Frame) {
        let mut buf = Vec::new();
        codec::encode(&frame, &mut buf);
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        let mut outboxes = self.outboxes.lock();
        let tx = outboxes.entry(peer).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(outbox(Arc::downgrade(self), peer, rx));
            tx
        });
        let _ = tx.send(buf);
    }

    /// Sends a request and waits for its answer (or the timeout).
    pub(crate) async fn call(
        self: &Arc<Self>,
        peer: PeerId,
        group: GroupId,
        rpc: Rpc,
        timeout: Duration,
    ) -> Result<Rpc, String> {
        let id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        self.send_frame(
            peer,
            Frame {
                kind: FrameKind::Request,
                group,
                request_id: id,
                rpc,
            },
        );
        let res = tokio::time::timeout(timeout, rx).await;
        self.pending.lock().remove(&id);
        match res {
            Ok(Ok(Rpc::Failed(e))) => Err(e),
            Ok(Ok(rpc)) => Ok(rpc),
            Ok(Err(_)) => Err("request dropped".into()),
            Err(_) => Err(format!("no answer from peer {peer} in {timeout:?}")),
        }
    }
}

/// Coalesces everything queued for one peer into one transport message per wake-up.
async fn outbox(node: Weak<NodeInner>, peer: PeerId, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    const MAX_BATCH: usize = 1 << 20;
    while let Some(mut batch) = rx.recv().await {
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        let Some(node) = node.upgrade() else { return };
        node.batches_out.fetch_add(1, Ordering::Relaxed);
        node.transport.send(peer, batch);
    }
}

/// openraft's network factory for one group: clients share the node's multiplexer.
pub(crate) struct GroupNetwork {
    pub node: Weak<NodeInner>,
    pub group: GroupId,
}

pub(crate) struct PeerClient {
    node: Weak<NodeInner>,
    group: GroupId,
    peer: PeerId,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: PeerId, _node: &EmptyNode) -> PeerClient {
        PeerClient {
            node: self.node.clone(),
            group: self.group,
            peer: target,
        }
    }
}

fn net_err(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::new(&AnyError::error(e.to_string()))
}

impl PeerClient {
    async fn call(&self, rpc: Rpc, timeout: Duration) -> Result<Rpc, NetworkError> {
        let node = self
            .node
            .upgrade()
            .ok_or_else(|| net_err("node shut down"))?;
        node.call(self.peer, self.group, rpc, timeout)
            .await
            .map_err(net_err)
    }
}

type RpcResult<T> = Result<T, RPCError<PeerId, EmptyNode, RaftError<PeerId>>>;

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<PeerId>> {
        match self.call(Rpc::Append(rpc), option.hard_ttl()).await {
            Ok(Rpc::AppendOk(r)) => Ok(r),
            Ok(_) => Err(RPCError::Network(net_err("unexpected answer"))),
            Err(e) => Err(RPCError::Network(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<PeerId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<PeerId>> {
        match self.call(Rpc::Vote(rpc), option.hard_ttl()).await {
            Ok(Rpc::VoteOk(r)) => Ok(r),
            Ok(_) => Err(RPCError::Network(net_err("unexpected answer"))),
            Err(e) => Err(RPCError::Network(e)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::storage::Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<PeerId>, StreamingError<TypeConfig, Fatal<PeerId>>> {
        let rpc = Rpc::Snapshot {
            vote,
            meta: snapshot.meta,
            data: *snapshot.snapshot,
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = self.call(rpc, option.hard_ttl()) => match r {
                Ok(Rpc::SnapshotOk(r)) => Ok(r),
                Ok(_) => Err(StreamingError::Network(net_err("unexpected answer"))),
                Err(e) => Err(StreamingError::Network(e)),
            },
        }
    }
}
