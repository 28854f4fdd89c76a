//! The user's state machine behind openraft's `RaftStateMachine`: committed entries go to
//! [`StateMachine::apply`] in log order, snapshots are the user's bytes plus the Raft metadata,
//! written atomically (tmp + fsync + rename + dir fsync) with a CRC, and installing a leader's
//! snapshot replaces the user's state through [`StateMachine::restore`]. The state machine itself
//! is not persisted on apply: at open it is rebuilt from the last snapshot and openraft re-applies
//! the committed log after it.

use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::disk::Disk;
use crate::log_store::{de, decode_record, encode_record, ser};
use crate::types::{
    Entry, LogId, LogIndex, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// What a group replicates. Implemented by the user (the meta store, a stream, a consumer).
pub trait StateMachine: Send + 'static {
    /// A committed proposal, in log order, exactly once per process lifetime (after a restart the
    /// entries after the last snapshot are applied again on top of `restore`). Proposals that
    /// were committed together as one entry share its `index` and come in proposal order.
    fn apply(&mut self, index: LogIndex, data: &[u8]);
    /// The state to hand to a lagging follower or to restart from.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot taken by `snapshot` (possibly on another peer).
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

#[derive(Serialize, Deserialize, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

struct Inner {
    sm: Box<dyn StateMachine>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    current: Option<StoredSnapshot>,
    seq: u64,
}

/// openraft's state machine and snapshot store for one group.
#[derive(Clone)]
pub struct SmStore {
    inner: Arc<Mutex<Inner>>,
    disk: Arc<dyn Disk>,
    path: PathBuf,
}

/// What opening the snapshot found.
#[derive(Debug, PartialEq, Eq)]
pub enum SnapshotState {
    None,
    Restored(LogId),
    /// A snapshot file existed but failed its checksum or the user's restore.
    Damaged,
}

fn err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::Snapshot(None),
        verb,
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    )
}

impl SmStore {
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: PathBuf,
        mut sm: Box<dyn StateMachine>,
    ) -> std::io::Result<(Self, SnapshotState)> {
        let path = dir.join("snapshot");
        let mut state = SnapshotState::None;
        let mut inner_snap = None;
        if let Some(bytes) = disk.read(&path)? {
            let parsed = decode_record(&bytes).and_then(|(_, body, _)| de::<StoredSnapshot>(body));
            match parsed {
                Some(s) if sm.restore(&s.data).is_ok() => inner_snap = Some(s),
                _ => {
                    tracing::warn!(path = %path.display(), "raft snapshot damaged; the group will rebuild from its leader");
                    state = SnapshotState::Damaged;
                }
            }
        }
        let (last_applied, membership) = match &inner_snap {
            Some(s) => {
                if let Some(l) = s.meta.last_log_id {
                    state = SnapshotState::Restored(l);
                }
                (s.meta.last_log_id, s.meta.last_membership.clone())
            }
            None => (None, StoredMembership::default()),
        };
        Ok((
            Self {
                inner: Arc::new(Mutex::new(Inner {
                    sm,
                    last_applied,
                    membership,
                    current: inner_snap,
                    seq: 0,
                })),
                disk,
                path,
            },
            state,
        ))
    }

    fn persist(&self, s: &StoredSnapshot) -> std::io::Result<()> {
        let mut rec = Vec::new();
        encode_record(1, &ser(s), &mut rec);
        self.disk.write_atomic(&self.path, &rec)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SmStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let stored = {
            let mut inner = self.inner.lock();
            inner.seq += 1;
            let data = inner.sm.snapshot();
            let last = inner.last_applied;
            let snapshot_id = match last {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, inner.seq),
                None => format!("none-{}", inner.seq),
            };
            StoredSnapshot {
                meta: SnapshotMeta {
                    last_log_id: last,
                    last_membership: inner.membership.clone(),
                    snapshot_id,
                },
                data,
            }
        };
        self.persist(&stored)
            .map_err(|e| err(ErrorVerb::Write, e))?;
        self.inner.lock().current = Some(stored.clone());
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(stored.data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for SmStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let inner = self.inner.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.inner.lock();
        let mut out = Vec::new();
        for e in entries {
            inner.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Normal(p) => {
                    for item in &p.0 {
                        inner.sm.apply(e.log_id.index, item)
                    }
                }
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(e.log_id), m)
                }
                EntryPayload::Blank => {}
            }
            out.push(());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Vec<u8>>, StorageError> {
        Ok(Box::new(Vec::new()))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Vec<u8>>,
    ) -> Result<(), StorageError> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: *snapshot,
        };
        {
            let mut inner = self.inner.lock();
            inner
                .sm
                .restore(&stored.data)
                .map_err(|e| err(ErrorVerb::Read, e))?;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
        }
        self.persist(&stored)
            .map_err(|e| err(ErrorVerb::Write, e))?;
        self.inner.lock().current = Some(stored);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.inner.lock().current.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(s.data),
        }))
    }
}
