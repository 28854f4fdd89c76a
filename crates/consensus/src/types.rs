//! The one place that fixes openraft's type parameters for rnats: u64 peer ids, opaque byte
//! payloads, and whole snapshots as bytes (our snapshots are state summaries; bulk data is
//! range-copied by the layer above). Everything else in the crate names these aliases.

use serde::{Deserialize, Serialize};

/// A peer (server) inside a group. The server maps its 8-character peer names onto these.
pub type PeerId = u64;
/// A Raft group on this node (the meta group, a stream, a consumer).
pub type GroupId = u64;
/// The position of an entry in a group's log.
pub type LogIndex = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for every rnats group.
    pub TypeConfig:
        D = Payload,
        R = (),
        NodeId = PeerId,
        Node = openraft::EmptyNode,
        SnapshotData = Vec<u8>,
        AsyncRuntime = crate::runtime::Runtime,
);

/// An application entry: the proposals made through [`crate::Group::propose`] while the
/// previous entry was being committed (group commit), in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload(pub Vec<Vec<u8>>);

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payload({} proposals)", self.0.len())
    }
}

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<PeerId>;
pub type Vote = openraft::Vote<PeerId>;
pub type StorageError = openraft::StorageError<PeerId>;
pub type SnapshotMeta = openraft::SnapshotMeta<PeerId, openraft::EmptyNode>;
pub type StoredMembership = openraft::StoredMembership<PeerId, openraft::EmptyNode>;
