//! Our cluster's interest, as remote clusters must know it: every
//! subscription in this cluster (local ones and those our route peers
//! announced), counted per account and subject (and queue group), so an
//! inbound gateway connection hears `RS+` on a subject's first
//! subscription and `RS-` on its last (nats-server's `gatewayUpdateSubInterest`).
//! Queue groups are always told; plain subjects once the account is in
//! interest-only mode on that connection, which rnats (like nats-server
//! 2.9+) switches every account to as soon as the connection registers.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rnats_core::account::Account;
use rnats_core::client::ConnKind;
use rnats_core::server::ServerState;
use rnats_core::subscription::SubRef;

use crate::conn::GwConn;
use crate::proto::{GatewayInfo, CMD_ALL_SUBS_COMPLETE, CMD_ALL_SUBS_START};
use crate::Gateway;

/// Subscription counts per account, keyed `subject` or `subject queue`.
#[derive(Default)]
pub struct Interest {
    accounts: Mutex<HashMap<String, HashMap<Key, u32>>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
}

/// Whether a subscription is part of what remote clusters are told.
fn counts(sub: &SubRef) -> bool {
    !sub.local_only && sub.client.kind != ConnKind::Gateway
}

fn line(out: &mut Vec<u8>, add: bool, account: &str, key: &Key) {
    out.extend_from_slice(if add { b"RS+ " } else { b"RS- " });
    out.extend_from_slice(account.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&key.subject);
    if let Some(q) = &key.queue {
        out.push(b' ');
        out.extend_from_slice(q);
        if add {
            out.extend_from_slice(b" 1");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Counts what the server already has when gateways start (routes may be up).
pub(crate) fn seed(g: &Gateway, state: &ServerState) {
    for acc in state.accounts.all() {
        let mut subs = Vec::new();
        acc.for_each_sub(|_, _, s| {
            if counts(s) {
                subs.push(s.clone());
            }
        });
        for s in subs {
            changed(g, &s, true);
        }
    }
}

/// A subscription of this cluster came or went.
pub(crate) fn changed(g: &Gateway, sub: &SubRef, added: bool) {
    if !counts(sub) {
        return;
    }
    let account = &sub.account.name;
    if added && sub.queue.is_none() {
        g.recent.add(account, &sub.subject);
    }
    let key = Key {
        subject: sub.subject.clone(),
        queue: sub.queue.clone(),
    };
    let mut accounts = g.interest.accounts.lock();
    let per = accounts.entry(account.clone()).or_default();
    let edge = if added {
        let n = per.entry(key.clone()).or_insert(0);
        *n += 1;
        *n == 1
    } else {
        match per.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                per.remove(&key);
                true
            }
            None => false,
        }
    };
    if !edge {
        return;
    }
    let mut proto = Vec::new();
    line(&mut proto, added, account, &key);
    // Sent under the interest lock, so a switch cannot interleave.
    for c in g.inbound_conns() {
        if key.queue.is_some() || c.is_switched(account) {
            c.client.out.send_now(&proto);
        }
    }
}

/// A new inbound connection: all queue groups, then every account switched
/// to interest-only (nats-server's `sendQueueSubsToGateway` and
/// `switchAccountToInterestMode` for all accounts).
pub(crate) fn inbound_registered(g: &Gateway, state: &ServerState, c: &Arc<GwConn>) {
    let accounts = g.interest.accounts.lock();
    let mut out = Vec::new();
    for (acc, per) in accounts.iter() {
        for key in per.keys().filter(|k| k.queue.is_some()) {
            line(&mut out, true, acc, key);
        }
    }
    c.client.out.send_now(&out);
    let mut names: Vec<String> = state
        .accounts
        .all()
        .iter()
        .map(|a| a.name.clone())
        .collect();
    for a in accounts.keys() {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    for name in names {
        switch_locked(g, &accounts, c, &name);
    }
}

/// Sends one account's plain interest between the start and complete
/// commands, and marks it interest-only on `c`.
fn switch_locked(
    g: &Gateway,
    accounts: &HashMap<String, HashMap<Key, u32>>,
    c: &GwConn,
    account: &str,
) {
    if !c.mark_switched(account) {
        return;
    }
    let mut out = GatewayInfo::account_cmd(g.name(), CMD_ALL_SUBS_START, account);
    if let Some(per) = accounts.get(account) {
        for key in per.keys().filter(|k| k.queue.is_none()) {
            line(&mut out, true, account, key);
        }
    }
    out.extend_from_slice(&GatewayInfo::account_cmd(
        g.name(),
        CMD_ALL_SUBS_COMPLETE,
        account,
    ));
    c.client.out.send_now(&out);
}

/// A new account (operator mode): switched on every inbound connection.
pub(crate) fn account_added(g: &Gateway, account: &Arc<Account>) {
    let accounts = g.interest.accounts.lock();
    for c in g.inbound_conns() {
        switch_locked(g, &accounts, &c, &account.name);
    }
}

/// The `(subject, queue)` pairs counted for an account (for `/gatewayz`).
pub fn num_subjects(g: &Gateway, account: &str) -> usize {
    g.interest
        .accounts
        .lock()
        .get(account)
        .map_or(0, HashMap::len)
}
