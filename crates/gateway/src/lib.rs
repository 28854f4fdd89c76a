//! rnats-gateway: gateways between clusters (a super-cluster), wire-compatible
//! with nats-server (gateway.go), so rnats and Go clusters can be joined.
//!
//! Each server dials one *outbound* connection to every remote cluster
//! (gateway) and accepts *inbound* ones from the remote clusters' servers.
//! Messages travel on outbound connections (`RMSG`); interest travels the
//! other way: a server tells each inbound connection its whole cluster's
//! interest (local and routed subscriptions) with `RS+`/`RS-`. As
//! nats-server since 2.9, every account is switched to interest-only mode
//! as soon as an inbound connection registers (`INFO` with `gateway_cmd`
//! 2/3 around the account's subscriptions), and queue groups are always
//! announced. A remote cluster's interest becomes subscriptions in the
//! account's sublist whose sink is the outbound connection, so the core's
//! router sends a gateway one frame per message; the router never passes a
//! message from one gateway to another and prefers local queue members.
//!
//! - [`conn`]: one gateway connection: handshake, the remote's protocol.
//! - [`dial`]: the accept loop, dialling remotes (explicit and implicit).
//! - [`interest`]: our cluster's interest, told to inbound connections.
//! - [`optimistic`]: a remote's per-account interest modes (optimistic,
//!   then interest-only) on an outbound connection.
//! - [`reply`]: `_GR_.<cluster>.<server>.` reply routing across clusters.
//! - [`gatewayz`]: what `/gatewayz` and `/varz` show.

#![forbid(unsafe_code)]

pub mod conn;
pub mod dial;
pub mod gatewayz;
pub mod interest;
pub mod optimistic;
pub mod proto;
pub mod reply;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rnats_core::account::Account;
use rnats_core::client::CloseReason;
use rnats_core::config::gateway::GatewayOptions;
use rnats_core::hooks::Hooks;
use rnats_core::server::ServerState;
use rnats_core::subscription::SubRef;
use tokio::net::TcpListener;

use crate::conn::GwConn;

/// Why gateways could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Invalid(String),
    #[error("Error listening on gateway port: {port} - {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("Error setting up gateway TLS: {0}")]
    Tls(String),
}

/// TLS on gateways: the gateway port's server side and the dialling side.
pub struct GatewayTls {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    pub timeout: std::time::Duration,
}

/// A remote gateway (cluster) we know: configured or learned.
#[derive(Debug, Clone)]
pub struct RemoteCfg {
    pub name: String,
    pub urls: Vec<url::Url>,
    /// Learned from a remote's INFO, not configured.
    pub implicit: bool,
    pub hash: String,
    pub attempts: u32,
}

/// The gateway feature of one server.
pub struct Gateway {
    state: Weak<ServerState>,
    pub opts: GatewayOptions,
    /// Where we accept gateways.
    pub listen: SocketAddr,
    /// Our gateway URL (`host:port`), as told to remotes and routes.
    pub url: String,
    /// `_GR_.<cluster hash>.<server hash>.`
    pub reply_prefix: Vec<u8>,
    pub cluster_hash: String,
    pub server_hash: String,
    pub(crate) remotes: Mutex<BTreeMap<String, RemoteCfg>>,
    pub(crate) outbound: Mutex<BTreeMap<String, Arc<GwConn>>>,
    pub(crate) inbound: Mutex<BTreeMap<u64, Arc<GwConn>>>,
    /// Our cluster's gateway URLs with reference counts (ours and the
    /// route peers'), sent as `gateway_urls`.
    pub(crate) urls: Mutex<BTreeMap<String, usize>>,
    pub(crate) interest: interest::Interest,
    pub(crate) recent: Arc<reply::Recent>,
    next_gid: AtomicU64,
    pub(crate) stopping: AtomicBool,
    pub tls: Option<Arc<GatewayTls>>,
}

impl Gateway {
    pub fn server(&self) -> Option<Arc<ServerState>> {
        self.state.upgrade()
    }

    pub fn name(&self) -> &str {
        &self.opts.name
    }

    fn next_gid(&self) -> u64 {
        self.next_gid.fetch_add(1, Ordering::Relaxed)
    }

    /// Our cluster's gateway URLs, ours first.
    pub fn gateway_urls(&self) -> Vec<String> {
        let urls = self.urls.lock();
        let mut out = vec![self.url.clone()];
        out.extend(urls.keys().filter(|u| **u != self.url).cloned());
        out
    }

    pub fn outbound_conns(&self) -> Vec<Arc<GwConn>> {
        self.outbound.lock().values().cloned().collect()
    }

    pub fn inbound_conns(&self) -> Vec<Arc<GwConn>> {
        self.inbound.lock().values().cloned().collect()
    }

    /// A route peer told us its gateway URL (route INFO `gateway_url`).
    pub fn add_cluster_url(&self, url: &str) {
        *self.urls.lock().entry(url.to_string()).or_insert(0) += 1;
    }
}

/// nats-server's `getHashSize(name, 6)`: the first 6 bytes of the name's
/// SHA-256, each mapped to a base-62 digit.
pub fn gw_hash(name: &str) -> String {
    use sha2::Digest;
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let sum = sha2::Sha256::digest(name.as_bytes());
    sum[..6]
        .iter()
        .map(|b| DIGITS[(*b % 62) as usize] as char)
        .collect()
}

/// Validates the options, binds the gateway port, registers the feature and
/// starts accepting and dialling. `None` when the server has no gateway.
pub async fn start(state: &Arc<ServerState>) -> Result<Option<Arc<Gateway>>, GatewayError> {
    let Some(opts) = state.opts().gateway.clone() else {
        return Ok(None);
    };
    opts.validate().map_err(GatewayError::Invalid)?;
    if !opts.enabled() {
        return Ok(None);
    }
    let tls = match &opts.tls {
        Some(t) => {
            let mut server_opts = t.clone();
            server_opts.verify = true;
            let server = rnats_core::tls::server_config(&server_opts).map_err(GatewayError::Tls)?;
            let client = rnats_core::tls::client_config(t).map_err(GatewayError::Tls)?;
            Some(Arc::new(GatewayTls {
                server: server.config,
                client,
                timeout: t.timeout,
            }))
        }
        None => None,
    };
    let listener = TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .map_err(|source| GatewayError::Listen {
            port: opts.port,
            source,
        })?;
    let listen = listener
        .local_addr()
        .map_err(|source| GatewayError::Listen {
            port: opts.port,
            source,
        })?;
    let url = match &opts.advertise {
        Some(a) if a.contains(':') => a.clone(),
        Some(a) => format!("{a}:{}", listen.port()),
        None => {
            let host = if opts.host == "0.0.0.0" || opts.host == "::" {
                "127.0.0.1".to_string()
            } else {
                opts.host.clone()
            };
            join_host_port(&host, listen.port())
        }
    };
    tracing::info!("Gateway name is {}", opts.name);
    tracing::info!(
        "Listening for gateways connections on {}",
        join_host_port(&opts.host, listen.port())
    );
    tracing::info!("Address for gateway {:?} is {url}", opts.name);
    let cluster_hash = gw_hash(&opts.name);
    let server_hash = gw_hash(&state.server_id);
    let reply_prefix = format!("_GR_.{cluster_hash}.{server_hash}.").into_bytes();
    let mut remotes = BTreeMap::new();
    for r in &opts.gateways {
        if r.name == opts.name {
            continue;
        }
        let urls = r
            .urls
            .iter()
            .filter_map(|u| dial::parse_url(u))
            .collect::<Vec<_>>();
        remotes.insert(
            r.name.clone(),
            RemoteCfg {
                name: r.name.clone(),
                urls,
                implicit: false,
                hash: gw_hash(&r.name),
                attempts: 0,
            },
        );
    }
    let gw = Arc::new(Gateway {
        state: Arc::downgrade(state),
        listen,
        url,
        reply_prefix,
        cluster_hash,
        server_hash,
        remotes: Mutex::new(remotes),
        outbound: Mutex::new(BTreeMap::new()),
        inbound: Mutex::new(BTreeMap::new()),
        urls: Mutex::new(BTreeMap::new()),
        interest: interest::Interest::default(),
        recent: Arc::new(reply::Recent::default()),
        next_gid: AtomicU64::new(1),
        stopping: AtomicBool::new(false),
        tls,
        opts,
    });
    state.set_slot(gw.clone());
    state.add_hooks(Arc::new(GatewayHooks(Arc::downgrade(&gw))));
    interest::seed(&gw, state);
    tokio::spawn(dial::accept_loop(gw.clone(), listener));
    dial::solicit_configured(&gw);
    Ok(Some(gw))
}

/// The gateway feature of a server, if it has one.
pub fn of(state: &ServerState) -> Option<Arc<Gateway>> {
    state.slot::<Gateway>()
}

pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What the gateways hear from the core.
struct GatewayHooks(Weak<Gateway>);

impl Hooks for GatewayHooks {
    fn interest_changed(&self, _state: &ServerState, sub: &SubRef, added: bool) {
        if let Some(g) = self.0.upgrade() {
            interest::changed(&g, sub, added);
        }
    }

    fn peer_interest_changed(&self, _state: &ServerState, sub: &SubRef, added: bool) {
        if sub.client.kind == rnats_core::client::ConnKind::Gateway {
            return;
        }
        if let Some(g) = self.0.upgrade() {
            interest::changed(&g, sub, added);
        }
    }

    fn route_gateway_info(&self, _state: &ServerState, json: &[u8]) {
        if let Some(g) = self.0.upgrade() {
            dial::route_gateway_info(&g, json);
        }
    }

    fn shutdown(&self, _state: &ServerState) {
        if let Some(g) = self.0.upgrade() {
            g.stopping.store(true, Ordering::SeqCst);
            let all: Vec<Arc<GwConn>> = g
                .outbound_conns()
                .into_iter()
                .chain(g.inbound_conns())
                .collect();
            for c in all {
                c.client.close(CloseReason::ServerShutdown);
            }
        }
    }

    fn account_added(&self, _state: &Arc<ServerState>, account: &Arc<Account>) {
        if let Some(g) = self.0.upgrade() {
            interest::account_added(&g, account);
        }
    }
}

/// Accounts by name, for lookups from the wire.
pub(crate) type AccountCache = HashMap<Box<[u8]>, (Arc<Account>, rnats_core::router::MatchCache)>;
