//! rnats-leaf: leaf node connections, wire-compatible with nats-server
//! (leafnode.go), so an rnats server can be the leaf of a Go hub and the
//! hub of Go leaf nodes.
//!
//! A leaf connection joins one account on each side: the hub binds it to
//! the account of the user the spoke authenticated as, the spoke to the
//! remote's `account` (default `$G`). Each side tells the other its
//! account's interest (`LS+`/`LS-`, which become subscriptions with a
//! [`RemoteSink`] in that account's sublist) and the core's router forwards
//! messages across as `LMSG`/`HMSG` following nats-server's rules.
//!
//! - [`conn`]: one leaf connection: handshake, then the peer's protocol.
//! - [`interest`]: what each connection has been told (nats-server's
//!   `smap`), the loop-detection subject, and updates as interest changes.
//! - [`dial`]: the leaf node port and soliciting the configured remotes.
//! - [`leafz`]: what `/leafz` and `/varz` show.
//!
//! [`RemoteSink`]: rnats_core::subscription::RemoteSink

#![forbid(unsafe_code)]

pub mod conn;
pub mod dial;
mod dial_ws;
pub mod interest;
pub mod leafz;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rnats_core::client::CloseReason;
use rnats_core::config::leafnode::LeafNodeOptions;
use rnats_core::hooks::Hooks;
use rnats_core::server::ServerState;
use rnats_core::subscription::SubRef;
use tokio::net::TcpListener;

/// Why leaf nodes could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    #[error("Error listening on leafnode port: {port} - {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("Error setting up leafnode TLS: {0}")]
    Tls(String),
}

/// The leaf node feature of one server.
pub struct Leafs {
    state: Weak<ServerState>,
    pub opts: LeafNodeOptions,
    /// Where we accept leaf nodes (when we are a hub).
    pub listen: Option<SocketAddr>,
    /// Connections past their handshake.
    pub(crate) conns: Mutex<Vec<Arc<conn::LeafConn>>>,
    pub(crate) interest: interest::LoopSubjects,
    stopping: AtomicBool,
    /// TLS for the leaf node port.
    pub(crate) tls_server: Option<Arc<rustls::ServerConfig>>,
}

impl Leafs {
    pub fn server(&self) -> Option<Arc<ServerState>> {
        self.state.upgrade()
    }

    /// The registered leaf connections.
    pub fn connections(&self) -> Vec<Arc<conn::LeafConn>> {
        self.conns.lock().clone()
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The `host:port` leaf nodes should dial, as told in `leafnode_urls`.
    pub(crate) fn own_url(&self) -> Option<String> {
        let listen = self.listen?;
        if let Some(a) = &self.opts.advertise {
            return Some(a.clone());
        }
        let host = if self.opts.host == "0.0.0.0" || self.opts.host.is_empty() {
            "127.0.0.1".to_string()
        } else {
            self.opts.host.clone()
        };
        Some(format!("{host}:{}", listen.port()))
    }
}

/// Binds the leaf node port (if any), registers the feature and starts
/// soliciting remotes. `None` when the server has no `leafnodes {}`.
pub async fn start(state: &Arc<ServerState>) -> Result<Option<Arc<Leafs>>, LeafError> {
    let Some(opts) = state.opts().leafnode.clone() else {
        return Ok(None);
    };
    let tls_server = match (&opts.tls, opts.accept) {
        (Some(t), true) => Some(
            rnats_core::tls::server_config(t)
                .map_err(LeafError::Tls)?
                .config,
        ),
        _ => None,
    };
    let (listener, listen) = if opts.accept {
        let l = TcpListener::bind((opts.host.as_str(), opts.port))
            .await
            .map_err(|source| LeafError::Listen {
                port: opts.port,
                source,
            })?;
        let addr = l.local_addr().map_err(|source| LeafError::Listen {
            port: opts.port,
            source,
        })?;
        (Some(l), Some(addr))
    } else {
        (None, None)
    };
    let leafs = Arc::new(Leafs {
        state: Arc::downgrade(state),
        opts,
        listen,
        conns: Mutex::new(Vec::new()),
        interest: interest::LoopSubjects::default(),
        stopping: AtomicBool::new(false),
        tls_server,
    });
    state.set_slot(leafs.clone());
    state.add_hooks(Arc::new(LeafHooks(Arc::downgrade(&leafs))));
    if let (Some(l), Some(addr)) = (listener, listen) {
        tracing::info!(
            "Listening for leafnode connections on {}:{}",
            leafs.opts.host,
            addr.port()
        );
        tokio::spawn(dial::accept_loop(leafs.clone(), l));
    }
    dial::solicit_remotes(&leafs);
    let weak = Arc::downgrade(&leafs);
    state.set_slot(Arc::new(rnats_core::hooks::LeafStreamAcceptor(Box::new(
        move |stream, addr| {
            if let Some(l) = weak.upgrade() {
                tokio::spawn(dial::serve_stream(l, stream, addr));
            }
        },
    ))));
    Ok(Some(leafs))
}

/// The leaf node feature of a server, if it has one.
pub fn of(state: &ServerState) -> Option<Arc<Leafs>> {
    state.slot::<Leafs>()
}

struct LeafHooks(Weak<Leafs>);

impl Hooks for LeafHooks {
    fn interest_changed(&self, _state: &ServerState, sub: &SubRef, added: bool) {
        if let Some(l) = self.0.upgrade() {
            interest::changed(&l, sub, added);
        }
    }

    fn peer_interest_changed(&self, _state: &ServerState, sub: &SubRef, added: bool) {
        if let Some(l) = self.0.upgrade() {
            interest::changed(&l, sub, added);
        }
    }

    fn shutdown(&self, _state: &ServerState) {
        if let Some(l) = self.0.upgrade() {
            l.stopping.store(true, Ordering::SeqCst);
            for c in l.connections() {
                c.client.close(CloseReason::ServerShutdown);
            }
        }
    }
}
