//! The seam between the core and the features built on it (JetStream,
//! monitoring and `$SYS`, WebSocket; later cluster and consensus).
//!
//! The core never calls a feature. It *raises events* through [`Hooks`]
//! objects that features register on `ServerState` at startup
//! (`ServerState::add_hooks`), and it keeps each feature's state in a typed
//! [`Slots`] entry the feature owns (`ServerState::slot::<T>()`), so the core
//! does not name feature types. Features publish and subscribe with
//! `ServerState::{publish_in, subscribe_internal_in}` like any client.

use std::any::{Any, TypeId};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::account::Account;
use crate::client::{ClientShared, CloseReason};
use crate::server::ServerState;
use crate::subscription::SubRef;

/// Events the core raises. Every method has an empty default, so a feature
/// implements only what it listens to. Hooks run on the task that raised the
/// event and must not block; they are called with no core lock held.
pub trait Hooks: Send + Sync {
    /// A client finished `CONNECT` (authenticated and registered).
    fn client_connected(&self, _state: &ServerState, _client: &Arc<ClientShared>) {}
    /// A client that had connected is gone (its subscriptions removed).
    fn client_disconnected(
        &self,
        _state: &ServerState,
        _client: &Arc<ClientShared>,
        _reason: CloseReason,
    ) {
    }
    /// An account was registered after startup (operator mode: its JWT was
    /// fetched and its imports installed).
    fn account_added(&self, _state: &Arc<ServerState>, _account: &Arc<Account>) {}
    /// A local subscription (a client's or a feature's, not a peer
    /// server's) was added to (`added`) or removed from its account's
    /// sublist. Called once per actual change, with no sublist lock held.
    fn interest_changed(&self, _state: &ServerState, _sub: &SubRef, _added: bool) {}
    /// A peer server's subscription (a route's, a gateway's or a leaf
    /// node's, one with a `remote` sink) was added or removed: gateways tell
    /// other clusters about the whole cluster's interest, routes' included,
    /// and leaf nodes pass such interest on.
    fn peer_interest_changed(&self, _state: &ServerState, _sub: &SubRef, _added: bool) {}
    /// A route brought an `INFO` about gateways (`gateway_cmd` gossip of a
    /// remote cluster, or a peer's `gateway_url`), raw JSON.
    fn route_gateway_info(&self, _state: &ServerState, _json: &[u8]) {}
    /// A feature asks for a protocol line on every route (the gateways'
    /// gossip of a remote cluster to the rest of this cluster); the
    /// cluster feature sends it.
    fn broadcast_to_routes(&self, _state: &ServerState, _line: &[u8]) {}
    /// Whether a server of this cluster (a route peer) is named `name`
    /// (gateways refuse a remote server with a name taken here).
    fn has_peer_named(&self, _state: &ServerState, _name: &str) -> bool {
        false
    }
    /// A feature asks for `msg` (in `account`) to go to the one peer server
    /// whose id `is_peer` accepts (a reply a gateway routed to that server);
    /// true if the cluster sent it.
    fn send_to_peer(
        &self,
        _state: &ServerState,
        _is_peer: &dyn Fn(&str) -> bool,
        _account: &Account,
        _msg: &crate::router::Message<'_>,
    ) -> bool {
        false
    }
    /// Lame-duck mode began (before clients are told).
    fn lame_duck(&self, _state: &ServerState) {}
    /// The server is shutting down (after accepting stopped, before clients
    /// are closed).
    fn shutdown(&self, _state: &ServerState) {}
}

/// Feature state keyed by type: each feature stores one value of its own
/// type and finds it again, without the core knowing the type.
#[derive(Default)]
pub struct Slots {
    entries: RwLock<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
}

impl Slots {
    /// The value of type `T`, if one was set.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let id = TypeId::of::<T>();
        let entries = self.entries.read();
        let (_, v) = entries.iter().find(|(t, _)| *t == id)?;
        v.clone().downcast::<T>().ok()
    }

    /// Sets the value of type `T`; returns false (and keeps the old one) if
    /// it was already set.
    pub fn set<T: Any + Send + Sync>(&self, value: Arc<T>) -> bool {
        let id = TypeId::of::<T>();
        let mut entries = self.entries.write();
        if entries.iter().any(|(t, _)| *t == id) {
            return false;
        }
        entries.push((id, value));
        true
    }
}

/// A byte stream (a WebSocket connection after its upgrade) handed from one
/// feature's listener to another.
pub trait ByteStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ByteStream for T {}

/// Takes leaf node connections that arrive on the WebSocket port
/// (`/leafnode`), as nats-server does. The leaf feature stores one in a slot;
/// without it the WebSocket listener refuses such requests.
pub struct LeafStreamAcceptor(
    pub Box<dyn Fn(Box<dyn ByteStream>, std::net::SocketAddr) + Send + Sync>,
);
