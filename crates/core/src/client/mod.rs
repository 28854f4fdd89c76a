//! One client connection: the state other connections can reach
//! ([`ClientShared`]: its outbound buffer and subscriptions), the read side
//! ([`conn`]) that parses and executes the client's operations, and the write
//! side ([`writer`]) that flushes the outbound buffer and keeps the connection
//! alive with PINGs.

pub mod conn;
pub mod expiry;
pub mod outbound;
pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::account::Account;
use crate::subscription::Subscription;
pub use outbound::{Outbound, Push};

/// Why a connection ended (nats-server's closed-state names, for logs and,
/// later, `/connz?state=closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    ReadError,
    WriteError,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    ProtocolViolation,
    ParseError,
    StaleConnection,
    AuthenticationViolation,
    AuthenticationTimeout,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    MaxConnectionsExceeded,
    MaxAccountConnectionsExceeded,
    BadClientProtocolVersion,
    NoRespondersRequiresHeaders,
    ServerShutdown,
    LameDuckMode,
    /// The user's JWT was revoked by an account update.
    Revocation,
    /// Routes: a second connection to a peer we already have.
    DuplicateRoute,
    /// Routes: the peer is in another cluster.
    ClusterNameConflict,
    /// Routes: the peer has our server name.
    DuplicateServerName,
    /// Routes: a client dialled the route port.
    WrongPort,
    /// Routes: a gateway dialled the route port.
    WrongGateway,
    /// Routes: a message or interest for an account we do not have.
    MissingAccount,
    /// The user's (or its account's) JWT passed its `exp`.
    AuthenticationExpired,
}

impl CloseReason {
    /// Whether what is queued should still be written before closing (an
    /// `-ERR` explaining the close); a slow consumer is not reading, so no.
    pub fn flushes(self) -> bool {
        !matches!(
            self,
            CloseReason::SlowConsumerPendingBytes
                | CloseReason::SlowConsumerWriteDeadline
                | CloseReason::ReadError
                | CloseReason::WriteError
                | CloseReason::ClientClosed
        )
    }
}

/// What the client told us about itself in CONNECT (for logs and monitoring).
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// The CONNECT `user`, if any (for `$SYS` connect events).
    pub user: String,
    pub name: String,
    pub lang: String,
    pub version: String,
    /// An operator-mode user: its public key and the JWT's issue time
    /// (checked against revocations pushed later).
    pub jwt_user: Option<(String, i64)>,
}

/// What is on the other end of a connection: the router treats messages
/// from peer servers differently (a routed message is never routed again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnKind {
    #[default]
    Client,
    /// A cluster route to another server.
    Route,
    /// A gateway connection to a server of another cluster.
    Gateway,
    /// A leaf node connection (either side; `ClientShared::leaf_spoke` says
    /// which).
    Leaf,
}

/// The part of a connection that other tasks reach: publishers write into its
/// outbound buffer, the server closes it.
pub struct ClientShared {
    pub cid: u64,
    pub kind: ConnKind,
    pub addr: SocketAddr,
    pub started: Instant,
    pub out: Outbound,
    /// Deliver this client's own publishes back to it.
    pub echo: AtomicBool,
    /// The client understands HMSG; messages with headers reach it without them otherwise.
    pub headers: AtomicBool,
    /// CONNECT has been accepted.
    pub connected: AtomicBool,
    /// The client understands INFO sent at any time (protocol >= 1): it is
    /// told when the cluster's URLs change.
    pub async_info: AtomicBool,
    pub subs: Mutex<HashMap<Box<[u8]>, Arc<Subscription>>>,
    pub meta: Mutex<ClientMeta>,
    /// Milliseconds since `started` of the last bytes read from the client.
    pub last_in_ms: AtomicU64,
    /// PINGs sent without a PONG back.
    pub pings_out: AtomicU32,
    /// Tells the read side to stop (the writer or the server closed us).
    pub stop_reading: Notify,
    /// Messages and payload bytes received from this client (for `/connz`),
    /// added once per read batch.
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    /// The account the client is bound to (set by CONNECT).
    pub account: ArcSwap<Account>,
    /// Auth state other tasks reach (nonce, response grants, reload recheck).
    pub auth: crate::auth::session::SharedAuth,
    /// A leaf connection on which this server is the spoke (it dialled a
    /// hub, or the other side said `is_hub`): the router does not pass what
    /// the hub sends on to routes (nats-server's `isSpokeLeafNode`).
    pub leaf_spoke: AtomicBool,
}

impl ClientShared {
    pub fn new(cid: u64, addr: SocketAddr, max_pending: usize, account: Arc<Account>) -> Self {
        ClientShared {
            account: ArcSwap::new(account),
            cid,
            kind: ConnKind::Client,
            addr,
            started: Instant::now(),
            out: Outbound::new(max_pending),
            echo: AtomicBool::new(true),
            headers: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            async_info: AtomicBool::new(false),
            subs: Mutex::new(HashMap::new()),
            meta: Mutex::new(ClientMeta::default()),
            last_in_ms: AtomicU64::new(0),
            pings_out: AtomicU32::new(0),
            stop_reading: Notify::new(),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            auth: Default::default(),
            leaf_spoke: AtomicBool::new(false),
        }
    }

    /// The same, for a connection of another kind (a route).
    pub fn with_kind(mut self, kind: ConnKind) -> Self {
        self.kind = kind;
        self
    }

    /// Adds one read batch's inbound counts to this client's (monitoring only).
    pub fn add_in(&self, counts: &crate::stats::LocalCounts) {
        if counts.in_msgs > 0 {
            self.in_msgs.fetch_add(counts.in_msgs, Ordering::Relaxed);
            self.in_bytes.fetch_add(counts.in_bytes, Ordering::Relaxed);
        }
    }

    /// The name of the client's account.
    pub fn account_name(&self) -> String {
        self.account.load().name.clone()
    }

    pub fn echo(&self) -> bool {
        self.echo.load(Ordering::Relaxed)
    }

    /// Closes the connection: the writer flushes what it should and shuts the
    /// socket, the reader stops.
    pub fn close(&self, reason: CloseReason) {
        self.out.close(reason);
        self.stop_reading.notify_one();
    }

    /// `ip:port - cid:N`, the prefix nats-server puts on client log lines.
    pub fn log_prefix(&self) -> String {
        let id = match self.kind {
            ConnKind::Client => "cid",
            ConnKind::Route => "rid",
            ConnKind::Gateway => "gid",
            ConnKind::Leaf => "lid",
        };
        format!(
            "{}:{} - {id}:{}",
            self.addr.ip(),
            self.addr.port(),
            self.cid
        )
    }
}
