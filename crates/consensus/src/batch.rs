//! Group commit at the leader. openraft 0.9 waits for each log append's fsync before it takes
//! the next one, so one proposal per entry would cost one fsync each. Proposals are therefore
//! queued per group and a batcher packs everything queued meanwhile into one entry, with a few
//! entries in flight so that packing continues while the previous entry is being made durable.
//! All proposals of an entry share its log index and are applied in the order proposed.

use std::sync::Arc;

use openraft::Raft;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::group::{map_write_err, ProposeError};
use crate::types::{LogIndex, Payload, TypeConfig};

/// Entries in flight per group (submitted to openraft, not yet committed).
const IN_FLIGHT: usize = 4;
/// Bounds on one entry.
const MAX_ITEMS: usize = 4096;
const MAX_BYTES: usize = 4 << 20;

pub(crate) type Reply = oneshot::Sender<Result<LogIndex, ProposeError>>;
pub(crate) type Proposal = (Vec<u8>, Reply);

pub(crate) fn spawn(raft: Raft<TypeConfig>) -> mpsc::UnboundedSender<Proposal> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(raft, rx));
    tx
}

async fn run(raft: Raft<TypeConfig>, mut rx: mpsc::UnboundedReceiver<Proposal>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut bytes = first.0.len();
        let mut items = vec![first.0];
        let mut replies = vec![first.1];
        while items.len() < MAX_ITEMS && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok((d, r)) => {
                    bytes += d.len();
                    items.push(d);
                    replies.push(r);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let res = raft
                .client_write(Payload(items))
                .await
                .map(|r| r.log_id.index)
                .map_err(map_write_err);
            drop(permit);
            for r in replies {
                let _ = r.send(res.clone());
            }
        });
    }
}
