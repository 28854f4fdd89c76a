//! What each leaf connection has been told about its account's interest
//! (nats-server's per-connection `smap`): a count per subject (and queue
//! group, by member weight). A subject's first subscription sends `LS+`, its
//! last `LS-`; a queue group sends its new weight on every change.
//!
//! Which interest a connection hears (leafnode.go `updateSmap`): a hub tells
//! its leaf everything in the account (local, routed, other leaf nodes'),
//! never the leaf's own; a spoke tells its hub only local interest and that
//! of leaf nodes it is the hub of, minus what `deny_imports` refuses. Every
//! connection also gets the account's loop-detection subject `$LDS.<id>`: if
//! it ever comes back to us, the leaf nodes form a cycle.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use rnats_core::client::ConnKind;
use rnats_core::subscription::SubRef;
use rnats_proto::leaf as proto;

use crate::conn::LeafConn;
use crate::Leafs;

/// The prefix of loop-detection subjects (nats-server's `$LDS.`).
pub const LDS_PREFIX: &str = "$LDS.";

type Key = (Box<[u8]>, Option<Box<[u8]>>);

/// One connection's view of what it told its peer.
#[derive(Default)]
pub struct Smap {
    counts: HashMap<Key, u32>,
    /// Subscriptions counted by the initial snapshot whose `added` event may
    /// still arrive (nats-server's `tsub`).
    seen: HashSet<usize>,
}

/// Each account's loop-detection subject, made on first use.
#[derive(Default)]
pub struct LoopSubjects {
    by_account: Mutex<HashMap<String, String>>,
}

impl LoopSubjects {
    pub fn get(&self, account: &str) -> String {
        self.by_account
            .lock()
            .entry(account.to_string())
            .or_insert_with(|| format!("{LDS_PREFIX}{}", nuid::next()))
            .clone()
    }
}

fn ptr(sub: &SubRef) -> usize {
    Arc::as_ptr(&sub.0) as usize
}

/// Whether `sub` is interest `conn`'s peer should hear about.
fn wanted(conn: &LeafConn, sub: &SubRef) -> bool {
    if sub.client.kind == ConnKind::Leaf && sub.client.cid == conn.client.cid {
        return false;
    }
    let lds = sub.subject.starts_with(LDS_PREFIX.as_bytes());
    if lds {
        return true;
    }
    if conn.is_spoke() {
        let local = sub.remote.is_none();
        let from_our_leaf =
            sub.client.kind == ConnKind::Leaf && !sub.client.leaf_spoke.load(Ordering::Relaxed);
        if !(local || from_our_leaf) {
            return false;
        }
    }
    conn.may_import(&sub.subject)
}

fn weight(sub: &SubRef) -> u32 {
    if sub.queue.is_some() {
        sub.weight.load(Ordering::Relaxed).max(1)
    } else {
        1
    }
}

/// Sends a connection that just finished its handshake all the interest it
/// should know, and starts tracking changes for it.
pub(crate) fn send_all(leafs: &Leafs, conn: &LeafConn) {
    let account = conn.account();
    let mut guard = conn.smap.lock();
    let mut smap = Smap::default();
    account.for_each_sub(|_, _, sub| {
        if wanted(conn, sub) {
            *smap
                .counts
                .entry((sub.subject.clone(), sub.queue.clone()))
                .or_default() += weight(sub);
            smap.seen.insert(ptr(sub));
        }
    });
    let lds = leafs.interest.get(&account.name);
    *smap
        .counts
        .entry((lds.as_bytes().into(), None))
        .or_default() += 1;
    let mut out = BytesMut::new();
    for ((subject, queue), n) in &smap.counts {
        proto::sub(&mut out, subject, queue.as_deref().map(|q| (q, *n)));
    }
    *guard = Some(smap);
    conn.client.out.send_now(&out);
}

/// A subscription came or went in some account: tell the leaf connections
/// of that account that should know.
pub(crate) fn changed(leafs: &Leafs, sub: &SubRef, added: bool) {
    let conns: Vec<Arc<LeafConn>> = leafs
        .conns
        .lock()
        .iter()
        .filter(|c| Arc::ptr_eq(&c.account(), &sub.account))
        .cloned()
        .collect();
    for conn in conns {
        if !wanted(&conn, sub) {
            continue;
        }
        let mut guard = conn.smap.lock();
        let Some(smap) = guard.as_mut() else {
            continue;
        };
        if added && smap.seen.remove(&ptr(sub)) {
            continue;
        }
        let key: Key = (sub.subject.clone(), sub.queue.clone());
        let before = smap.counts.get(&key).copied().unwrap_or(0);
        if !added && before == 0 {
            continue;
        }
        let w = weight(sub);
        let after = if added {
            before + w
        } else {
            before.saturating_sub(w)
        };
        if after == 0 {
            smap.counts.remove(&key);
        } else {
            smap.counts.insert(key, after);
        }
        let send = sub.queue.is_some() || (before == 0) != (after == 0);
        if !send {
            continue;
        }
        let mut line = BytesMut::with_capacity(sub.subject.len() + 16);
        let queue = sub.queue.as_deref();
        if after > 0 {
            proto::sub(&mut line, &sub.subject, queue.map(|q| (q, after)));
        } else {
            proto::unsub(&mut line, &sub.subject, queue);
        }
        conn.client.out.send_now(&line);
    }
}

/// A queue subscription of a peer changed weight in place: the change is
/// passed on like a removal and an addition.
pub(crate) fn reweighed(leafs: &Leafs, sub: &SubRef, old: u32) {
    let new = sub.weight.load(Ordering::Relaxed);
    sub.weight.store(old, Ordering::Relaxed);
    changed(leafs, sub, false);
    sub.weight.store(new, Ordering::Relaxed);
    changed(leafs, sub, true);
}
