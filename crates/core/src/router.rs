//! Routing one published message to everyone interested: look up the
//! subject's interest (through a per-connection cache validated by the
//! sublist's generation), append a frame to each plain subscriber and to one
//! member of each queue group, and remember which connections need their
//! writer woken at the end of the publisher's read batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ahash::AHashMap;
use rnats_proto::encode;
use rnats_subject::MatchResult;

use crate::account::Account;
use crate::client::{ClientShared, ConnKind, Push};
use crate::server::ServerState;
use crate::stats::LocalCounts;
use crate::subscription::{Admit, SubRef};

/// One message as published.
pub struct Message<'a> {
    /// The subject subscribers see in the `MSG` line.
    pub subject: &'a [u8],
    /// The subject interest is matched on, when it differs (JetStream
    /// deliveries travel to an inbox but show the message's own subject).
    pub route: Option<&'a [u8]>,
    pub reply: Option<&'a [u8]>,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// Match results this connection has looked up, valid while the sublist's
/// generation is unchanged.
pub struct MatchCache {
    generation: u64,
    entries: AHashMap<Box<[u8]>, Arc<MatchResult<SubRef>>>,
}

/// Bound on cached subjects per connection; the cache restarts when full.
const CACHE_MAX: usize = 1024;

impl Default for MatchCache {
    fn default() -> Self {
        MatchCache {
            generation: u64::MAX,
            entries: AHashMap::new(),
        }
    }
}

impl MatchCache {
    pub fn lookup(&mut self, account: &Account, subject: &[u8]) -> Arc<MatchResult<SubRef>> {
        let generation = account.generation();
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
        }
        if let Some(r) = self.entries.get(subject) {
            return r.clone();
        }
        let r = Arc::new(account.matches(subject));
        if self.entries.len() >= CACHE_MAX {
            self.entries.clear();
        }
        self.entries.insert(subject.into(), r.clone());
        r
    }
}

/// Per-batch routing scratch owned by a publishing connection.
#[derive(Default)]
pub struct Batch {
    /// Connections whose writers must be woken when the batch ends.
    pub to_flush: Vec<Arc<ClientShared>>,
    pub counts: LocalCounts,
    /// Subscriptions that reached their auto-unsubscribe maximum.
    pub expired: Vec<SubRef>,
    /// Receivers past their stall gate: a client publisher waits a moment
    /// for them after the batch (nats-server's fast-producer stall).
    pub stalled: Vec<Arc<ClientShared>>,
}

impl Batch {
    /// Wakes every writer that got data and publishes the batch's counters.
    /// Returns whether any writer was woken.
    pub fn finish(&mut self, state: &ServerState) -> bool {
        let woke = !self.to_flush.is_empty();
        for c in self.to_flush.drain(..) {
            c.out.flush();
        }
        state.counters.add(&self.counts);
        self.counts = LocalCounts::default();
        for sub in self.expired.drain(..) {
            state.remove_subscription(&sub);
        }
        self.stalled.clear();
        woke
    }
}

/// Delivers `msg` to all interest in `account`; returns whether anyone got it.
/// `cache` must only ever be used with this one account.
pub fn route(
    state: &ServerState,
    account: &Account,
    cache: &mut MatchCache,
    publisher: &ClientShared,
    msg: &Message<'_>,
    batch: &mut Batch,
) -> bool {
    route_from(state, account, cache, publisher, msg, None, batch)
}

/// [`route`] for every publisher. A message from a peer server (a route)
/// reaches local subscribers only — never another route — and, of the queue
/// groups, only those named in `queues`, served by a local member.
/// A client's message goes to each interested peer once, naming the queue
/// groups whose (member-weighted) pick fell on that peer. Leaf node and
/// gateway connections follow nats-server's rules (client.go
/// `processMsgResults`, `sendMsgToGateways`): see [`may_forward`]. A queue
/// group's leaf members serve only when no local (or routed) member can, and
/// a gateway (another cluster) gets a group only when no member in this
/// cluster took it. A message from a gateway reaches local subscribers and
/// routes (its named groups served anywhere in this cluster), never another
/// gateway.
pub fn route_from(
    state: &ServerState,
    account: &Account,
    cache: &mut MatchCache,
    publisher: &ClientShared,
    msg: &Message<'_>,
    queues: Option<&[&[u8]]>,
    batch: &mut Batch,
) -> bool {
    let result = cache.lookup(account, msg.route.unwrap_or(msg.subject));
    if result.is_empty() {
        return false;
    }
    let from_peer = publisher.kind != ConnKind::Client;
    // Import forwarders run on every server of a cluster: the sending
    // server's own has handled a routed or gateway message already.
    let skip_forwarders = matches!(publisher.kind, ConnKind::Route | ConnKind::Gateway);
    // Routed and leaf-node messages are served by this server's members of
    // the groups they name; a gateway's may be served anywhere in the cluster.
    let route_hop = matches!(publisher.kind, ConnKind::Route | ConnKind::Leaf);
    let echo = publisher.echo();
    let mut delivered = false;
    // Peers that get this message, with the queue groups each must serve.
    let mut remotes: Vec<(&SubRef, Vec<&[u8]>)> = Vec::new();
    for sub in &result.psubs {
        if sub.remote.is_some() {
            if may_forward(publisher, sub, msg.route.unwrap_or(msg.subject))
                && !remotes.iter().any(|(r, _)| same_peer(r, sub))
            {
                remotes.push((sub, Vec::new()));
            }
            continue;
        }
        if (!echo && sub.client.cid == publisher.cid) || (skip_forwarders && sub.local_only) {
            // An import forwarder on every server: the sending server's own
            // forwarder has handled the message already.
            continue;
        }
        delivered |= deliver(state, sub, publisher, msg, batch);
    }
    for group in &result.qsubs {
        if from_peer {
            // A routed message names the groups this server must serve.
            if !queues.is_some_and(|q| q.contains(&&*group.name)) {
                continue;
            }
        }
        let n = group.members.len();
        let start = pick_start(&group.members, route_hop);
        // Farther members, used when nobody closer can take the message: a
        // leaf node's, then another cluster's.
        let mut leaf: Option<&SubRef> = None;
        let mut gateway_pick: Option<&SubRef> = None;
        let mut served = false;
        for i in 0..n {
            let sub = &group.members[(start + i) % n];
            if sub.remote.is_some() {
                if !may_forward(publisher, sub, msg.route.unwrap_or(msg.subject)) {
                    continue;
                }
                match sub.client.kind {
                    ConnKind::Leaf => {
                        leaf = leaf.or(Some(sub));
                        continue;
                    }
                    ConnKind::Gateway => {
                        gateway_pick = gateway_pick.or(Some(sub));
                        continue;
                    }
                    _ => {}
                }
                if route_hop {
                    continue;
                }
                match remotes.iter_mut().find(|(r, _)| same_peer(r, sub)) {
                    Some((_, qs)) => qs.push(&group.name),
                    None => remotes.push((sub, vec![&group.name])),
                }
                served = true;
                break;
            }
            if (!echo && sub.client.cid == publisher.cid) || (skip_forwarders && sub.local_only) {
                continue;
            }
            if deliver(state, sub, publisher, msg, batch) {
                delivered = true;
                served = true;
                break;
            }
        }
        if let (false, Some(sub)) = (served, leaf.or(gateway_pick)) {
            match remotes.iter_mut().find(|(r, _)| same_peer(r, sub)) {
                Some((_, qs)) => qs.push(&group.name),
                None => remotes.push((sub, vec![&group.name])),
            }
        }
    }
    for (sub, qs) in &remotes {
        delivered |= deliver_remote(state, account, sub, msg, qs, batch);
    }
    delivered
}

/// Whether a message from `publisher` may travel on to the peer behind
/// `sub` (nats-server's rules): never back where it came from; to routes
/// only from clients and from leaf nodes this server is the hub of (a spoke
/// does not pass its hub's messages to its cluster: every server of it has
/// its own leaf connection); to leaf nodes from anyone, except that a routed
/// message goes only to leaf nodes this server is the hub of.
fn may_forward(publisher: &ClientShared, sub: &SubRef, subject: &[u8]) -> bool {
    let peer = &sub.client;
    if peer.cid == publisher.cid && peer.kind == publisher.kind {
        return false;
    }
    if sub.remote.as_ref().is_some_and(|r| !r.admits(subject)) {
        return false;
    }
    match (peer.kind, publisher.kind) {
        // Gateways get what clients and leaf nodes publish, never what came
        // over a route or from another gateway.
        (ConnKind::Gateway, ConnKind::Client | ConnKind::Leaf) => true,
        (ConnKind::Gateway, _) => false,
        (ConnKind::Leaf, ConnKind::Route) => !peer.leaf_spoke.load(Ordering::Relaxed),
        (ConnKind::Leaf, _) => true,
        (_, ConnKind::Client) => true,
        (_, ConnKind::Leaf) => !publisher.leaf_spoke.load(Ordering::Relaxed),
        // A gateway's message is this cluster's to spread over its routes.
        (_, ConnKind::Gateway) => true,
        (_, ConnKind::Route) => false,
    }
}

fn same_peer(a: &SubRef, b: &SubRef) -> bool {
    Arc::ptr_eq(&a.client, &b.client)
}

/// Where the search for a queue member starts: uniform over the members,
/// except that a peer's subscription counts as many members as it stands
/// for (so a group spread over the cluster is served evenly per member).
fn pick_start(members: &[SubRef], from_peer: bool) -> usize {
    let n = members.len();
    if from_peer || members.iter().all(|m| m.remote.is_none()) {
        return fastrand::usize(..n);
    }
    let weight = |m: &SubRef| m.weight.load(Ordering::Relaxed).max(1) as u64;
    let total: u64 = members.iter().map(weight).sum();
    let mut r = fastrand::u64(..total);
    for (i, m) in members.iter().enumerate() {
        let w = weight(m);
        if r < w {
            return i;
        }
        r -= w;
    }
    0
}

/// Appends one frame for `msg` to a peer's connection (whatever number of
/// its subscriptions matched), naming `queues`.
fn deliver_remote(
    state: &ServerState,
    account: &Account,
    sub: &SubRef,
    msg: &Message<'_>,
    queues: &[&[u8]],
    batch: &mut Batch,
) -> bool {
    let Some(sink) = &sub.remote else {
        return false;
    };
    if !sink.wants(account, msg, queues) {
        return false;
    }
    let client = &sub.client;
    let size = msg.payload.len() + msg.headers.map_or(0, <[u8]>::len);
    let push = client
        .out
        .push(Some(size), |b| sink.encode(b, account, msg, queues));
    finish_push(state, client, push, size, batch)
}

/// Appends the frame for `msg` to one subscription's connection.
#[inline]
fn deliver(
    state: &ServerState,
    sub: &SubRef,
    publisher: &ClientShared,
    msg: &Message<'_>,
    batch: &mut Batch,
) -> bool {
    if sub.deny_filter.denies(msg.subject, sub.queue.as_deref()) {
        return false;
    }
    match sub.admit() {
        Admit::Skip => return false,
        Admit::DeliverLast => batch.expired.push(sub.clone()),
        Admit::Deliver => {}
    }
    if let Some(handler) = &sub.internal {
        return handler.deliver_from(publisher, msg);
    }
    let client = &sub.client;
    // A client that did not ask for headers gets the message without them.
    let headers = msg
        .headers
        .filter(|_| client.headers.load(Ordering::Relaxed));
    let size = msg.payload.len() + headers.map_or(0, <[u8]>::len);
    let push = client.out.push(Some(size), |b| match headers {
        None => encode::msg(b, msg.subject, &sub.sid, msg.reply, msg.payload),
        Some(h) => encode::hmsg(b, msg.subject, &sub.sid, msg.reply, h, msg.payload),
    });
    if !finish_push(state, client, push, size, batch) {
        return false;
    }
    if let Some(reply) = msg.reply {
        // `allow_responses`: the receiver may now answer on `reply`.
        client.auth.on_delivery(reply);
    }
    true
}

/// Books an append to `client`'s buffer: schedules its writer, counts the
/// message, or reports the slow consumer it made. False if not delivered.
fn finish_push(
    state: &ServerState,
    client: &Arc<ClientShared>,
    push: Push,
    size: usize,
    batch: &mut Batch,
) -> bool {
    match push {
        Push::Queued => {}
        Push::NeedsFlush => batch.to_flush.push(client.clone()),
        Push::Closed => return false,
        Push::SlowConsumer => {
            state
                .counters
                .slow_consumers
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
                client.log_prefix(),
                state.opts().max_pending
            );
            client.stop_reading.notify_one();
            return false;
        }
    }
    if client.out.is_stalled() && !batch.stalled.iter().any(|c| Arc::ptr_eq(c, client)) {
        batch.stalled.push(client.clone());
    }
    batch.counts.out_msgs += 1;
    batch.counts.out_bytes += size as u64;
    true
}

/// The `503` status nats-server sends to a requester when nobody is listening:
/// delivered on the requester's own subscription matching the reply subject.
pub fn no_responders(
    account: &Account,
    publisher: &Arc<ClientShared>,
    subject: &[u8],
    reply: &[u8],
    batch: &mut Batch,
) {
    let result = account.matches(reply);
    let Some(sub) = result.psubs.iter().find(|s| s.client.cid == publisher.cid) else {
        return;
    };
    let mut headers = Vec::with_capacity(40 + subject.len());
    headers.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
    headers.extend_from_slice(subject);
    headers.extend_from_slice(b"\r\n\r\n");
    let push = publisher.out.push(Some(0), |b| {
        encode::hmsg(b, reply, &sub.sid, None, &headers, b"")
    });
    if push == Push::NeedsFlush {
        batch.to_flush.push(publisher.clone());
    }
}
