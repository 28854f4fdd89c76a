//! rnats-cluster: routes between the servers of one cluster, wire-compatible
//! with nats-server (route.go), so rnats and Go servers can share a cluster.
//!
//! Every server keeps a full mesh of routes to the others. Each route is an
//! ordinary connection in the core's terms (a `ClientShared` of kind
//! `Route`): peers announce interest with `RS+`/`RS-` and those become
//! subscriptions in the account's sublist that carry a [`RemoteSink`], so the
//! core's router sends a peer one `RMSG` per message, naming the queue groups
//! the peer must serve. A routed message is delivered locally only (one hop).
//!
//! - [`conn`]: one route connection: handshake, reading, the peer's protocol.
//! - [`peers`]: the registry of peers and their pooled connections (pooling
//!   as nats-server 2.10+: `pool_size` connections per peer, accounts spread
//!   over them by name, and dedicated routes for pinned accounts such as the
//!   system account).
//! - [`interest`]: our local interest per account, told to peers.
//! - [`dial`]: soliciting configured routes, reconnecting, implicit routes.
//! - [`gossip`]: telling peers about new servers, and clients about URLs.
//! - [`routez`]: what `/routez` and `/varz` show.
//!
//! [`RemoteSink`]: rnats_core::subscription::RemoteSink

#![forbid(unsafe_code)]

pub mod conn;
pub mod dial;
pub mod gossip;
pub mod interest;
pub mod peers;
pub mod routez;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use rnats_core::account::Account;
use rnats_core::client::CloseReason;
use rnats_core::hooks::Hooks;
use rnats_core::options::ClusterOptions;
use rnats_core::server::ServerState;
use rnats_core::subscription::SubRef;
use rnats_proto::route::RouteInfo;
use tokio::net::TcpListener;

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("Error listening on router port: {port} - {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster name cannot contain spaces")]
    BadName,
    #[error("Error setting up cluster TLS: {0}")]
    Tls(String),
}

/// TLS on routes: the cluster port's server side and the dialling side.
pub struct RouteTls {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    pub timeout: std::time::Duration,
}

/// The clustering feature of one server.
pub struct Cluster {
    state: Weak<ServerState>,
    opts: ClusterOptions,
    /// The cluster's name (adopted from a peer when ours is dynamic).
    name: RwLock<String>,
    dynamic: AtomicBool,
    /// Where we accept routes.
    pub listen: SocketAddr,
    /// Our route INFO, without the per-connection fields.
    info: RwLock<RouteInfo>,
    /// Connections per peer (0: no pooling, one connection carries all).
    pool_size: u32,
    /// Accounts with a dedicated route (incl. the system account).
    pinned: Vec<String>,
    pub(crate) peers: Mutex<peers::Peers>,
    pub(crate) interest: interest::Interest,
    /// Our own client URLs (`host:port`), first in `connect_urls`.
    own_urls: Vec<String>,
    next_rid: AtomicU64,
    stopping: AtomicBool,
    /// TLS on routes, when the block has a `tls {}`.
    pub tls: Option<Arc<RouteTls>>,
}

impl Cluster {
    /// The state of the server this cluster belongs to.
    pub fn server(&self) -> Option<Arc<ServerState>> {
        self.state.upgrade()
    }

    pub fn name(&self) -> String {
        self.name.read().clone()
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    fn next_rid(&self) -> u64 {
        self.next_rid.fetch_add(1, Ordering::Relaxed)
    }

    /// The pool connection an account's traffic and interest travel on
    /// (`None`: a dedicated route).
    pub fn pool_index(&self, account: &str) -> Option<u32> {
        if self.pinned.iter().any(|a| a == account) {
            return None;
        }
        Some(rnats_proto::route::pool_index(self.pool_size, account))
    }

    /// Our route INFO for a new connection.
    pub(crate) fn route_info(&self) -> RouteInfo {
        let mut info = self.info.read().clone();
        info.cluster = self.name();
        info.dynamic = self.dynamic.load(Ordering::Relaxed);
        if let Some(state) = self.server() {
            info.lame_duck_mode = state.lame_duck.load(Ordering::Relaxed);
            if !self.opts.no_advertise && !info.lame_duck_mode {
                info.connect_urls = self.own_urls.clone();
            }
        }
        info
    }

    /// Sets our gateway URL in the route INFO (so every server of the
    /// cluster knows all its gateway URLs), for routes made from now on.
    pub fn set_gateway_url(&self, url: &str) {
        self.info.write().gateway_url = url.to_string();
    }

    /// Adopts a peer's cluster name (ours was generated).
    pub(crate) fn adopt_name(&self, name: &str, dynamic: bool) {
        *self.name.write() = name.to_string();
        if !dynamic {
            self.dynamic.store(false, Ordering::Relaxed);
        }
        gossip::update_client_urls(self);
    }

    pub(crate) fn is_dynamic(&self) -> bool {
        self.dynamic.load(Ordering::Relaxed)
    }
}

/// Validates the options, binds the cluster port, registers the feature
/// with the core and starts accepting and soliciting routes. `None` when
/// the server has no `cluster {}`.
pub async fn start(state: &Arc<ServerState>) -> Result<Option<Arc<Cluster>>, ClusterError> {
    let opts_all = state.opts();
    // A `cluster {}` without a port only names the cluster (nats-server).
    let Some(opts) = opts_all.cluster.clone().filter(|c| c.enabled) else {
        return Ok(None);
    };
    if opts.name.as_deref().is_some_and(|n| n.contains(' ')) {
        return Err(ClusterError::BadName);
    }
    let tls = match &opts.tls {
        Some(t) => {
            // nats-server always requires and verifies peer certificates on routes.
            let mut server_opts = t.clone();
            server_opts.verify = true;
            let server = rnats_core::tls::server_config(&server_opts).map_err(ClusterError::Tls)?;
            let client = rnats_core::tls::client_config(t).map_err(ClusterError::Tls)?;
            Some(Arc::new(RouteTls {
                server: server.config,
                client,
                timeout: t.timeout,
            }))
        }
        None => None,
    };
    let listener = TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .map_err(|source| ClusterError::Listen {
            port: opts.port,
            source,
        })?;
    let listen = listener
        .local_addr()
        .map_err(|source| ClusterError::Listen {
            port: opts.port,
            source,
        })?;
    let (name, dynamic) = match &opts.name {
        Some(n) => (n.clone(), false),
        None => (nuid::next().to_string(), true),
    };
    tracing::info!("Cluster name is {name}");
    if opts_all.jetstream {
        tracing::warn!(
            "JetStream is not clustered yet in rnats: each server of this cluster keeps its own streams (replicas 1)"
        );
    }
    if dynamic {
        tracing::warn!("Cluster name was dynamically generated, consider setting one");
    }
    tracing::info!(
        "Listening for route connections on {}",
        gossip::join_host_port(&opts.host, listen.port())
    );
    let pool_size = if opts.pool_size > 0 {
        opts.pool_size as u32
    } else {
        0
    };
    let mut pinned = Vec::new();
    if pool_size > 0 {
        pinned.extend(opts.pinned_accounts.iter().cloned());
        let sys = state.accounts.system().name.clone();
        if !pinned.contains(&sys) {
            pinned.push(sys);
        }
    }
    let own_urls = gossip::own_client_urls(state);
    let info = gossip::base_info(state, &opts, listen.port(), pool_size);
    let cluster = Arc::new(Cluster {
        state: Arc::downgrade(state),
        name: RwLock::new(name),
        dynamic: AtomicBool::new(dynamic),
        listen,
        info: RwLock::new(info),
        pool_size,
        pinned,
        peers: Mutex::new(peers::Peers::default()),
        interest: interest::Interest::default(),
        own_urls,
        next_rid: AtomicU64::new(1),
        stopping: AtomicBool::new(false),
        tls,
        opts,
    });
    state.set_slot(cluster.clone());
    state.add_hooks(Arc::new(ClusterHooks(Arc::downgrade(&cluster))));
    gossip::update_client_urls(&cluster);
    interest::seed(&cluster, state);
    tokio::spawn(dial::accept_loop(cluster.clone(), listener));
    dial::solicit_configured(&cluster);
    Ok(Some(cluster))
}

/// The cluster of a server, if it has one.
pub fn of(state: &ServerState) -> Option<Arc<Cluster>> {
    state.slot::<Cluster>()
}

/// What the cluster hears from the core.
struct ClusterHooks(Weak<Cluster>);

impl Hooks for ClusterHooks {
    fn interest_changed(&self, _state: &ServerState, sub: &SubRef, added: bool) {
        if let Some(c) = self.0.upgrade() {
            interest::local_changed(&c, sub, added);
        }
    }

    fn lame_duck(&self, _state: &ServerState) {
        if let Some(c) = self.0.upgrade() {
            gossip::announce_lame_duck(&c);
        }
    }

    fn shutdown(&self, _state: &ServerState) {
        if let Some(c) = self.0.upgrade() {
            c.stopping.store(true, Ordering::SeqCst);
            for r in c.peers.lock().all_routes() {
                r.client.close(CloseReason::ServerShutdown);
            }
        }
    }

    fn account_added(&self, _state: &Arc<ServerState>, account: &Arc<Account>) {
        if let Some(c) = self.0.upgrade() {
            interest::account_added(&c, account);
        }
    }

    fn send_to_peer(
        &self,
        _state: &ServerState,
        is_peer: &dyn Fn(&str) -> bool,
        account: &Account,
        msg: &rnats_core::router::Message<'_>,
    ) -> bool {
        let Some(c) = self.0.upgrade() else {
            return false;
        };
        let route = {
            let peers = c.peers.lock();
            peers
                .by_id
                .iter()
                .find(|(id, _)| is_peer(id))
                .and_then(|(_, p)| p.route_for(&c, &account.name).cloned())
        };
        let Some(r) = route else {
            return false;
        };
        let sink = r.sink.clone();
        let size = msg.payload.len() + msg.headers.map_or(0, <[u8]>::len);
        r.client.out.push(Some(size), |b| {
            rnats_core::subscription::RemoteSink::encode(&*sink, b, account, msg, &[])
        });
        r.client.out.flush();
        true
    }

    fn has_peer_named(&self, _state: &ServerState, name: &str) -> bool {
        self.0
            .upgrade()
            .is_some_and(|c| c.peers.lock().by_id.values().any(|p| p.info.name == name))
    }

    fn broadcast_to_routes(&self, _state: &ServerState, line: &[u8]) {
        if let Some(c) = self.0.upgrade() {
            for r in c.peers.lock().all_routes() {
                r.client.out.send_now(line);
            }
        }
    }
}
