//! Our local interest, as peers must know it (nats-server's `acc.rm`): per
//! account, how many local subscriptions each subject (and each queue group
//! on it) has. A subject's first subscription sends `RS+`, its last `RS-`; a
//! queue group sends `RS+` with its new member count on every change, so
//! peers can weigh their picks. A new route gets everything at once.
//!
//! Updates are sent while the interest lock is held, so what a peer hears
//! about one subject is always in the order it happened here.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use rnats_core::account::Account;
use rnats_core::server::ServerState;
use rnats_core::subscription::SubRef;
use rnats_proto::route as proto;

use crate::conn::Route;
use crate::Cluster;

type Key = (Box<[u8]>, Option<Box<[u8]>>);

/// Local interest counts per account name.
#[derive(Default)]
pub struct Interest {
    accounts: Mutex<HashMap<String, HashMap<Key, u32>>>,
}

/// Counts subscriptions that existed before the cluster started.
pub(crate) fn seed(cluster: &Cluster, state: &ServerState) {
    let mut all = cluster.interest.accounts.lock();
    for acc in state.accounts.all() {
        let counts = all.entry(acc.name.clone()).or_default();
        acc.for_each_sub(|subject, queue, sub| {
            if sub.remote.is_none() && !sub.local_only {
                *counts
                    .entry((subject.into(), queue.map(Into::into)))
                    .or_default() += 1;
            }
        });
    }
}

/// An account registered after startup (operator mode): nothing to count
/// yet, but its interest will arrive through `local_changed`.
pub(crate) fn account_added(cluster: &Cluster, account: &Arc<Account>) {
    cluster
        .interest
        .accounts
        .lock()
        .entry(account.name.clone())
        .or_default();
}

/// A local subscription came or went: tell the peers if that changes what
/// they must send us.
pub(crate) fn local_changed(cluster: &Cluster, sub: &SubRef, added: bool) {
    let account = &sub.account.name;
    if !may_import(cluster, &sub.subject) {
        return;
    }
    let mut all = cluster.interest.accounts.lock();
    let counts = all.entry(account.clone()).or_default();
    let key: Key = (sub.subject.clone(), sub.queue.clone());
    let before = counts.get(&key).copied().unwrap_or(0);
    let after = if added {
        before + 1
    } else {
        before.saturating_sub(1)
    };
    if after == 0 {
        counts.remove(&key);
    } else {
        counts.insert(key, after);
    }
    let queue = sub.queue.as_deref();
    let send = match queue {
        // A queue group's weight changes with every member.
        Some(_) => before != after,
        None => (before == 0) != (after == 0),
    };
    if !send {
        return;
    }
    let routes: Vec<Arc<Route>> = {
        let peers = cluster.peers.lock();
        peers
            .by_id
            .values()
            .filter_map(|p| p.route_for(cluster, account).cloned())
            .collect()
    };
    for r in routes {
        let acc = account_in_proto(&r).then_some(account.as_bytes());
        let mut line = BytesMut::with_capacity(sub.subject.len() + account.len() + 16);
        if after > 0 {
            proto::sub(&mut line, acc, &sub.subject, queue.map(|q| (q, after)));
        } else {
            proto::unsub(&mut line, acc, &sub.subject, queue);
        }
        r.client.out.send_now(&line);
    }
    drop(all);
}

fn account_in_proto(route: &Route) -> bool {
    let r = route.remote.lock();
    route.origin.account.is_none() && r.info.route_account.is_empty()
}

/// Sends a newly registered route all our interest it carries: one pinned
/// `account`, the accounts of pool `slot`, or (no pooling) every account.
pub(crate) fn send_all(
    cluster: &Cluster,
    route: &Route,
    account: Option<&str>,
    slot: Option<usize>,
) {
    let all = cluster.interest.accounts.lock();
    let no_pool = route.remote.lock().no_pool;
    let mut out = BytesMut::new();
    for (name, counts) in all.iter() {
        let wanted = match (account, slot) {
            (Some(a), _) => a == name,
            (None, Some(i)) => cluster.pool_index(name) == Some(i as u32),
            (None, None) => no_pool,
        };
        if !wanted {
            continue;
        }
        let acc = account.is_none().then_some(name.as_bytes());
        for ((subject, queue), n) in counts {
            proto::sub(&mut out, acc, subject, queue.as_deref().map(|q| (q, *n)));
        }
    }
    if !out.is_empty() {
        route.client.out.send_now(&out);
        tracing::debug!(
            "{} - Sent local subscriptions to route",
            route.client.log_prefix()
        );
    }
}

/// The `import` permission of the cluster: what we ask peers to send us.
fn may_import(cluster: &Cluster, subject: &[u8]) -> bool {
    let Some(p) = &cluster.opts.import else {
        return true;
    };
    let s = String::from_utf8_lossy(subject);
    let allowed = p.allow.as_ref().is_none_or(|a| {
        a.iter()
            .any(|x| rnats_subject::matches(s.as_bytes(), x.as_bytes()))
    });
    allowed
        && !p
            .deny
            .iter()
            .any(|x| rnats_subject::matches(s.as_bytes(), x.as_bytes()))
}
