//! An in-memory [`Transport`] joining nodes of one process, with switches to isolate a peer:
//! for tests, examples and benchmarks (the server carries batches over routes instead).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::node::{Node, Transport};
use crate::types::PeerId;

/// The nodes of one process and which of them are cut off.
#[derive(Default)]
pub struct MemNet {
    pub nodes: Mutex<HashMap<PeerId, Node>>,
    pub isolated: Mutex<HashSet<PeerId>>,
}

impl MemNet {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The transport for node `from`.
    pub fn transport(self: &Arc<Self>, from: PeerId) -> Arc<dyn Transport> {
        Arc::new(MemTransport {
            from,
            net: self.clone(),
        })
    }

    pub fn add(&self, node: Node) {
        self.nodes.lock().insert(node.id(), node);
    }
}

struct MemTransport {
    from: PeerId,
    net: Arc<MemNet>,
}

impl Transport for MemTransport {
    fn send(&self, peer: PeerId, batch: Vec<u8>) {
        {
            let iso = self.net.isolated.lock();
            if iso.contains(&peer) || iso.contains(&self.from) {
                return;
            }
        }
        let Some(node) = self.net.nodes.lock().get(&peer).cloned() else {
            return;
        };
        let from = self.from;
        tokio::spawn(async move { node.receive(from, &batch) });
    }
}
