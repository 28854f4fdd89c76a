//! The ring of recently closed clients behind `/connz?state=closed|all`: a
//! snapshot of each connection taken as it ends (counters, subscriptions,
//! why it closed), bounded like nats-server's (10,000 entries by default).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::client::{ClientShared, CloseReason};
use crate::server::ServerState;

/// nats-server's default `max_closed_clients`.
pub const MAX_CLOSED_CLIENTS: usize = 10_000;

/// One subscription as `/connz` and `/subsz` show it.
#[derive(Debug, Clone)]
pub struct SubSnapshot {
    pub subject: String,
    pub queue: Option<String>,
    pub sid: String,
    pub msgs: u64,
    pub max: u64,
    pub cid: u64,
    pub account: String,
}

impl SubSnapshot {
    pub fn of(sub: &crate::subscription::Subscription) -> SubSnapshot {
        SubSnapshot {
            subject: String::from_utf8_lossy(&sub.subject).into_owned(),
            queue: sub
                .queue
                .as_ref()
                .map(|q| String::from_utf8_lossy(q).into_owned()),
            sid: String::from_utf8_lossy(&sub.sid).into_owned(),
            msgs: sub.delivered.load(Ordering::Relaxed),
            max: sub.max.load(Ordering::Relaxed),
            cid: sub.client.cid,
            account: sub.account.name.clone(),
        }
    }
}

/// A connection as it was when it closed.
#[derive(Debug, Clone)]
pub struct ClosedClient {
    pub cid: u64,
    pub ip: String,
    pub port: u16,
    pub start: DateTime<Utc>,
    pub last_activity: DateTime<Utc>,
    pub stop: DateTime<Utc>,
    pub reason: CloseReason,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub name: String,
    pub lang: String,
    pub version: String,
    /// The account and (CONNECT) user it was bound to.
    pub account: String,
    pub user: String,
    pub subs: Vec<SubSnapshot>,
}

impl ClosedClient {
    /// Takes the snapshot; `client`'s subscriptions must still be in place.
    pub fn snapshot(state: &ServerState, client: &ClientShared, reason: CloseReason) -> Self {
        let stop = Utc::now();
        let last_ms = client.last_in_ms.load(Ordering::Relaxed);
        let start = state.wall_time(client.started);
        let (out_msgs, out_bytes) = client.out.out_counts();
        let meta = client.meta.lock().clone();
        let mut subs: Vec<SubSnapshot> = client
            .subs
            .lock()
            .values()
            .map(|s| SubSnapshot::of(s))
            .collect();
        subs.sort_by(|a, b| a.sid.cmp(&b.sid));
        ClosedClient {
            cid: client.cid,
            ip: client.addr.ip().to_string(),
            port: client.addr.port(),
            start,
            last_activity: start + chrono::Duration::milliseconds(last_ms as i64),
            stop,
            reason,
            in_msgs: client.in_msgs.load(Ordering::Relaxed),
            in_bytes: client.in_bytes.load(Ordering::Relaxed),
            out_msgs,
            out_bytes,
            name: meta.name,
            lang: meta.lang,
            version: meta.version,
            account: client.account_name(),
            user: meta.user,
            subs,
        }
    }
}

/// nats-server's text for a close reason (`ClosedState.String()`).
pub fn reason_text(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::ClientClosed => "Client Closed",
        CloseReason::ReadError => "Read Error",
        CloseReason::WriteError => "Write Error",
        CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
        CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
        CloseReason::ProtocolViolation => "Protocol Violation",
        CloseReason::ParseError => "Parse Error",
        CloseReason::StaleConnection => "Stale Connection",
        CloseReason::AuthenticationViolation => "Authentication Failure",
        CloseReason::AuthenticationTimeout => "Authentication Timeout",
        CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
        CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
        CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
        CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
        CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
        CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
        CloseReason::ServerShutdown | CloseReason::LameDuckMode => "Server Shutdown",
        CloseReason::Revocation => "Credentials Revoked",
        CloseReason::DuplicateRoute => "Duplicate Route",
        CloseReason::ClusterNameConflict => "Cluster Name Conflict",
        CloseReason::DuplicateServerName => "Duplicate Server Name",
        CloseReason::WrongPort => "Incorrect Port",
        CloseReason::WrongGateway => "Wrong Gateway",
        CloseReason::MissingAccount => "Missing Account",
        CloseReason::AuthenticationExpired => "Authentication Expired",
    }
}

/// Bounded, oldest first.
#[derive(Default)]
pub struct ClosedRing {
    inner: Mutex<VecDeque<Arc<ClosedClient>>>,
    /// Every client ever recorded (for `total_connections`).
    total: AtomicU64,
}

impl ClosedRing {
    pub fn push(&self, c: ClosedClient) {
        let mut q = self.inner.lock();
        if q.len() >= MAX_CLOSED_CLIENTS {
            q.pop_front();
        }
        q.push_back(Arc::new(c));
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// How many clients have closed since the server started.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The closed clients still remembered, oldest first.
    pub fn list(&self) -> Vec<Arc<ClosedClient>> {
        self.inner.lock().iter().cloned().collect()
    }
}
