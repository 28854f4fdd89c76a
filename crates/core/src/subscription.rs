//! A subscription as the router sees it: who to deliver to, under which sid,
//! and the auto-unsubscribe countdown (`UNSUB <sid> <max>`).
//!
//! Server features (JetStream's API and stream capture) subscribe like any
//! client, through the same sublist, with an [`InternalHandler`] that gets
//! the message in the publisher's task instead of a frame in an outbound buffer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::account::Account;
use crate::client::ClientShared;
use crate::router::Message;

/// Receives messages for a server-internal subscription. Runs on the
/// publisher's task with no locks held: keep it short, and never block.
pub trait InternalHandler: Send + Sync {
    fn deliver(&self, msg: &Message<'_>);

    /// Delivers a message from `publisher` and says whether it reached
    /// anyone. Handlers that answer about the requester override it
    /// (`$SYS.REQ.USER.INFO`), and so do forwarders (service imports), so a
    /// request nobody serves still gets its no-responders status.
    fn deliver_from(&self, _publisher: &ClientShared, msg: &Message<'_>) -> bool {
        self.deliver(msg);
        true
    }

    /// For forwarders (stream imports): whether anyone downstream listens to
    /// `subject` now, as nats-server's shadow subscriptions would say.
    /// `None`: this subscription is a listener itself.
    fn forwards_interest(&self, _subject: &[u8]) -> Option<bool> {
        None
    }
}

/// A peer server (a cluster route; later leaf nodes and gateways) whose
/// interest is registered in an account's sublist. The router sends it one
/// frame per message however many of its subscriptions match, naming the
/// queue groups it must serve, into the owning connection's outbound buffer.
pub trait RemoteSink: Send + Sync {
    fn encode(
        &self,
        out: &mut bytes::BytesMut,
        account: &Account,
        msg: &Message<'_>,
        queues: &[&[u8]],
    );

    /// Whether the peer wants this message at all (a gateway in optimistic
    /// mode sends everything but subjects the remote said it has no
    /// interest in). Checked before `encode`, with the queue groups the
    /// frame would name.
    fn wants(&self, _account: &Account, _msg: &Message<'_>, _queues: &[&[u8]]) -> bool {
        true
    }

    /// Whether a message on `subject` may be sent to this peer at all (a
    /// leaf connection's `deny_exports`); asked before `encode`.
    fn admits(&self, _subject: &[u8]) -> bool {
        true
    }
}

pub struct Subscription {
    /// The owning connection (the server's system client for internal subs).
    pub client: Arc<ClientShared>,
    /// The account whose subject space it listens in.
    pub account: Arc<Account>,
    /// Set for internal subscriptions: messages go here, not to `client`.
    pub internal: Option<Arc<dyn InternalHandler>>,
    /// Set for a peer server's interest: frames are encoded by the sink and
    /// written to `client` (the peer's connection).
    pub remote: Option<Arc<dyn RemoteSink>>,
    /// Interest that stays on this server (an account import's forwarding
    /// subscription): every server installs its own, so telling peers would
    /// deliver twice.
    pub local_only: bool,
    /// A remote queue subscription stands for this many members (its peer's
    /// count), so picks across the cluster are weighted by member; 1 otherwise.
    pub weight: std::sync::atomic::AtomicU32,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    pub sid: Box<[u8]>,
    /// Deliveries after which the subscription ends; 0 = unlimited.
    pub max: AtomicU64,
    pub delivered: AtomicU64,
    /// Set when the owner's deny permissions overlap this (wildcard or queue)
    /// subscription: deliveries to denied subjects are dropped.
    pub deny_filter: crate::auth::DenyFilter,
}

/// What happened when a message was offered to a subscription.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Deliver,
    /// Deliver, and this was the last one: remove the subscription.
    DeliverLast,
    /// Already past its maximum.
    Skip,
}

impl Subscription {
    pub fn new(
        client: Arc<ClientShared>,
        account: Arc<Account>,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Self {
        Subscription {
            client,
            account,
            internal: None,
            remote: None,
            local_only: false,
            weight: std::sync::atomic::AtomicU32::new(1),
            subject: subject.into(),
            queue: queue.map(Into::into),
            sid: sid.into(),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            deny_filter: Default::default(),
        }
    }

    /// Counts one delivery against `max`.
    #[inline]
    pub fn admit(&self) -> Admit {
        let max = self.max.load(Ordering::Relaxed);
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        match max {
            0 => Admit::Deliver,
            m if n < m => Admit::Deliver,
            m if n == m => Admit::DeliverLast,
            _ => Admit::Skip,
        }
    }
}

/// A subscription handle compared by identity, as the sublist needs.
#[derive(Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for SubRef {
    type Target = Subscription;
    fn deref(&self) -> &Subscription {
        &self.0
    }
}
