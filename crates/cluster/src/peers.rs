//! The registry of peer servers and their route connections, kept as
//! nats-server keeps it (route.go `addRoute`/`removeRoute`): per peer a pool
//! of connections (accounts are spread over the slots by name) and one
//! dedicated connection per pinned account. A second connection for a slot
//! that is taken is a duplicate and is closed; a soliciting server takes the
//! first free slot and names it in its INFO, the accepting one places the
//! connection where that INFO says.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rnats_core::client::CloseReason;
use rnats_proto::route::RouteInfo;

use crate::conn::{Close, Route};
use crate::{gossip, interest, Cluster};

/// Every peer we have a route to, and the connections still in handshake.
#[derive(Default)]
pub struct Peers {
    pub by_id: HashMap<String, Peer>,
    /// Connections not registered yet (closed on shutdown all the same).
    pub pending: HashMap<u64, Arc<Route>>,
}

/// One peer server.
pub struct Peer {
    /// Slot -> connection (one slot without pooling).
    pub pool: Vec<Option<Arc<Route>>>,
    /// Pinned account -> its dedicated connection.
    pub pinned: HashMap<String, Arc<Route>>,
    /// The peer does not pool: its one connection carries every account.
    pub no_pool: bool,
    /// The INFO of its first connection (name, URLs, gossip).
    pub info: RouteInfo,
}

impl Peer {
    fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.pool.iter().flatten().chain(self.pinned.values())
    }

    fn pooled(&self) -> usize {
        self.pool.iter().flatten().count()
    }

    /// The connection an account travels on to this peer.
    pub fn route_for(&self, cluster: &Cluster, account: &str) -> Option<&Arc<Route>> {
        if self.no_pool {
            return self.pool.first().and_then(Option::as_ref);
        }
        match cluster.pool_index(account) {
            None => self.pinned.get(account),
            Some(i) => self.pool.get(i as usize).and_then(Option::as_ref),
        }
    }
}

impl Peers {
    /// Every connection, registered or not.
    pub fn all_routes(&self) -> Vec<Arc<Route>> {
        self.by_id
            .values()
            .flat_map(Peer::routes)
            .chain(self.pending.values())
            .cloned()
            .collect()
    }

    /// One connection per peer (for gossip): its first pooled one.
    pub fn one_per_peer(&self) -> Vec<Arc<Route>> {
        self.by_id
            .values()
            .filter_map(|p| p.pool.iter().flatten().next().cloned())
            .collect()
    }

    /// Whether we have a pooled connection to `id`.
    pub fn connected_to(&self, id: &str) -> bool {
        self.by_id.get(id).is_some_and(|p| p.pooled() > 0)
    }
}

fn protocol_error(text: String) -> Close {
    Close(CloseReason::ProtocolViolation, Some(text))
}

fn duplicate() -> Close {
    Close(CloseReason::DuplicateRoute, None)
}

/// Registers a route after the peer's first INFO. On success the route
/// receives our interest (the accounts it carries) and, for a new peer, the
/// rest of the cluster hears about it.
pub(crate) fn register(
    cluster: &Arc<Cluster>,
    route: &Arc<Route>,
    info: RouteInfo,
    account: Option<String>,
) -> Result<(), Close> {
    let solicited = route.origin.solicited;
    let ours = cluster.pool_size;
    let id = info.id.clone();
    let mut peers = cluster.peers.lock();
    if cluster.stopping.load(Ordering::SeqCst) {
        return Err(Close(CloseReason::ServerShutdown, None));
    }
    if let Some(acc) = account {
        if info.route_pool_size == 0 || ours == 0 {
            route.no_reconnect.store(true, Ordering::Relaxed);
            return Err(protocol_error(format!(
                "Not possible to have a dedicated route for account {acc:?} between those servers"
            )));
        }
        if !cluster.pinned.contains(&acc) {
            return Err(protocol_error(format!("No route for account {acc:?}")));
        }
        let peer = peers.by_id.entry(id).or_insert_with(|| Peer {
            pool: Vec::new(),
            pinned: HashMap::new(),
            no_pool: false,
            info: info.clone(),
        });
        if peer.pinned.contains_key(&acc) {
            route.no_reconnect.store(true, Ordering::Relaxed);
            return Err(duplicate());
        }
        peer.pinned.insert(acc.clone(), route.clone());
        let others = peer.pinned.len();
        peers.pending.remove(&route.rid());
        route.registered.store(true, Ordering::Release);
        if solicited {
            // Our INFO (naming the account) must reach the peer before any
            // interest sent on this route, which needs the registry lock: a
            // peer that got `RS+` first would read it as carrying an account.
            let mut ours = cluster.route_info();
            ours.route_account = acc.clone();
            route.client.out.send_now(&ours.to_line());
        }
        drop(peers);
        tracing::debug!(
            "{} - Registering remote route {:?} for account {acc:?}",
            route.client.log_prefix(),
            info.id
        );
        interest::send_all(cluster, route, Some(&acc), None);
        if others >= 1 {
            gossip::forward_new_route(cluster, &info, route);
        }
        return Ok(());
    }

    let pool = info.route_pool_size > 0 && ours > 0;
    let effective = if pool {
        ours.max(info.route_pool_size) as usize
    } else {
        1
    };
    if pool {
        if solicited && info.route_pool_idx != 0 {
            return Err(protocol_error(format!(
                "Route pool index should not be set but is set to {}",
                info.route_pool_idx
            )));
        }
        if !solicited && info.route_pool_idx as usize >= effective {
            return Err(protocol_error(format!(
                "Invalid route pool index: {} - pool size is {}",
                info.route_pool_idx, info.route_pool_size
            )));
        }
    }
    let peer = peers.by_id.entry(id.clone()).or_insert_with(|| Peer {
        pool: Vec::new(),
        pinned: HashMap::new(),
        no_pool: !pool,
        info: info.clone(),
    });
    if peer.pool.len() < effective {
        peer.pool.resize(effective, None);
    }
    let idx = if !pool {
        if peer.pool[0].is_some() {
            return Err(duplicate());
        }
        0
    } else if !solicited {
        let i = info.route_pool_idx as usize;
        if peer.pool[i].is_some() {
            return Err(duplicate());
        }
        i
    } else {
        match peer.pool.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                tracing::debug!(
                    "{} - Route pool size reached, closing extra connection to {id:?}",
                    route.client.log_prefix()
                );
                route.no_reconnect.store(true, Ordering::Relaxed);
                return Err(duplicate());
            }
        }
    };
    peer.pool[idx] = Some(route.clone());
    peer.no_pool = !pool;
    let count = peer.pooled();
    let first = count == 1;
    if first {
        peer.info = info.clone();
    }
    {
        let mut r = route.remote.lock();
        r.pool_idx = Some(idx);
        r.no_pool = !pool;
    }
    peers.pending.remove(&route.rid());
    route.registered.store(true, Ordering::Release);
    if solicited && pool {
        // Before the route is usable by others (see the pinned case above).
        let mut ours = cluster.route_info();
        ours.route_pool_idx = idx as u32;
        route.client.out.send_now(&ours.to_line());
    }
    drop(peers);
    tracing::debug!(
        "{} - Registering remote route {:?}",
        route.client.log_prefix(),
        id
    );
    let slot = if pool { Some(idx) } else { None };
    interest::send_all(cluster, route, None, slot);
    if first {
        gossip::forward_new_route(cluster, &info, route);
        gossip::update_client_urls(cluster);
    }
    if pool && solicited && count < effective {
        // The next connection of the pool, once this one proved it works.
        route.grow_pool_on_pong.store(true, Ordering::Release);
        route.client.out.send_now(b"PING\r\n");
    }
    Ok(())
}

/// Forgets a route that closed.
pub(crate) fn unregister(cluster: &Arc<Cluster>, route: &Arc<Route>) {
    let mut peers = cluster.peers.lock();
    peers.pending.remove(&route.rid());
    if !route.registered.swap(false, Ordering::AcqRel) {
        return;
    }
    let id = route.remote_id();
    let Some(peer) = peers.by_id.get_mut(&id) else {
        return;
    };
    let same = |r: &Arc<Route>| Arc::ptr_eq(r, route);
    peer.pinned.retain(|_, r| !same(r));
    for slot in peer.pool.iter_mut() {
        if slot.as_ref().is_some_and(same) {
            *slot = None;
        }
    }
    let gone = peer.pooled() == 0;
    if gone && peer.pinned.is_empty() {
        peers.by_id.remove(&id);
    }
    drop(peers);
    if gone {
        gossip::update_client_urls(cluster);
    }
}

/// Our cluster name changed: routes to other servers are no longer valid.
pub(crate) fn remove_all_except(cluster: &Arc<Cluster>, keep: &str) {
    let routes: Vec<Arc<Route>> = cluster
        .peers
        .lock()
        .by_id
        .iter()
        .filter(|(id, _)| id.as_str() != keep)
        .flat_map(|(_, p)| p.routes().cloned().collect::<Vec<_>>())
        .collect();
    for r in routes {
        r.client.close(CloseReason::ClusterNameConflict);
    }
}
