//! rnats-consensus: Raft groups for clustered JetStream (the meta group, one group per replicated
//! stream and consumer). It wraps openraft so that the rest of the server never names it, and owns
//! what openraft leaves to the user: durable, checksummed log and vote storage with group commit,
//! atomic snapshots, the wire encoding of RPCs and a per-peer multiplexed transport. See README.md.

mod batch;
pub mod codec;
pub mod disk;
mod group;
pub mod log_store;
pub mod mem;
mod node;
mod runtime;
pub mod state_machine;
mod types;

pub use disk::{Disk, FsDisk, SimDisk};
pub use group::{ChangeError, Group, GroupMetrics, OpenReport, PeerMetrics, ProposeError};
pub use log_store::{FlushStats, Recovery};
pub use node::{Node, NodeConfig, NodeStats, Transport};
pub use runtime::seed_thread_rng;
pub use state_machine::{SnapshotState, StateMachine};
pub use types::{GroupId, LogIndex, PeerId};

/// Errors opening a node or a group.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("raft config: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("raft: {0}")]
    Raft(String),
}
