//! Accounts: the isolation boundary of NATS. Each account has its own
//! subject space (its own sublist), so the same subject in two accounts
//! never crosses; the only bridges are the exports an account offers and
//! the imports another account takes (see [`imports`]).
//!
//! Every server has the global account `$G` (where clients land when no
//! account is configured for them) and a system account (`$SYS` unless
//! `system_account` names another).

pub mod config;
pub mod from_jwt;
pub mod imports;
pub mod mappings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rnats_subject::{MatchResult, Sublist, SublistError};

use crate::subscription::SubRef;

pub use config::{AccountConfig, AccountJetStream, ExportConfig, ImportConfig, ResponseType};

/// The account clients use when nothing assigns them another.
pub const GLOBAL: &str = "$G";
/// The default name of the system account.
pub const DEFAULT_SYSTEM: &str = "$SYS";

/// One account: its subject space and what it shares.
pub struct Account {
    pub name: String,
    sublist: RwLock<Sublist<SubRef>>,
    /// Mirrors the sublist's generation so match caches can check it without a lock.
    generation: AtomicU64,
    /// Connections currently bound to this account (monitoring).
    pub num_clients: AtomicUsize,
    /// What this account exports (checked when imports are configured).
    pub exports: Vec<ExportConfig>,
    /// What it imports, as configured (monitoring lists them).
    pub imports: Vec<ImportConfig>,
    /// JetStream for this account, when enabled (with its limits).
    pub jetstream: Option<AccountJetStream>,
    /// Subject mappings applied to client publishes.
    pub mappings: Vec<mappings::Mapping>,
    /// Connection, subscription and payload limits (`limits {}` or the JWT's).
    pub limits: AccountLimits,
    /// Service-import replies in flight that this account's responders will
    /// answer on `_R_.` subjects (see [`imports`]).
    pub(crate) responses: Mutex<imports::ResponseMap>,
    /// Messages of clients that have left (monitoring adds the live ones).
    pub traffic: Traffic,
    /// When the account was registered (`/accountz`'s `update_time`).
    pub updated: chrono::DateTime<chrono::Utc>,
}

/// Message counts of an account's departed clients, from their side:
/// `in` what they published, `out` what they were sent.
#[derive(Default)]
pub struct Traffic {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
}

impl Traffic {
    pub fn add(&self, in_msgs: u64, in_bytes: u64, out_msgs: u64, out_bytes: u64) {
        self.in_msgs.fetch_add(in_msgs, Ordering::Relaxed);
        self.in_bytes.fetch_add(in_bytes, Ordering::Relaxed);
        self.out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
        self.out_bytes.fetch_add(out_bytes, Ordering::Relaxed);
    }
}

impl Account {
    pub fn new(name: impl Into<String>) -> Account {
        Account {
            name: name.into(),
            sublist: RwLock::new(Sublist::new()),
            generation: AtomicU64::new(0),
            num_clients: AtomicUsize::new(0),
            exports: Vec::new(),
            imports: Vec::new(),
            jetstream: None,
            mappings: Vec::new(),
            limits: AccountLimits::default(),
            responses: Mutex::new(imports::ResponseMap::default()),
            traffic: Traffic::default(),
            updated: chrono::Utc::now(),
        }
    }

    /// Where a client's publish to `subject` goes, when a mapping applies.
    #[inline]
    pub fn map_subject(&self, subject: &[u8]) -> Option<String> {
        if self.mappings.is_empty() {
            return None;
        }
        mappings::map(&self.mappings, subject)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn insert(&self, sub: &SubRef) -> Result<(), SublistError> {
        let mut sl = self.sublist.write();
        sl.insert(&sub.subject, sub.queue.as_deref(), sub.clone())?;
        self.generation.store(sl.generation(), Ordering::Release);
        Ok(())
    }

    pub fn remove(&self, sub: &SubRef) -> bool {
        let mut sl = self.sublist.write();
        let removed = sl.remove(&sub.subject, sub.queue.as_deref(), sub);
        if removed {
            self.generation.store(sl.generation(), Ordering::Release);
        }
        removed
    }

    /// Removes `subs`; returns those that were present.
    pub fn remove_many<'a>(&self, subs: impl IntoIterator<Item = &'a SubRef>) -> Vec<&'a SubRef> {
        let mut sl = self.sublist.write();
        let mut removed = Vec::new();
        for s in subs {
            if sl.remove(&s.subject, s.queue.as_deref(), s) {
                removed.push(s);
            }
        }
        self.generation.store(sl.generation(), Ordering::Release);
        removed
    }

    pub fn matches(&self, subject: &[u8]) -> MatchResult<SubRef> {
        self.sublist.read().matches(subject)
    }

    pub fn has_interest(&self, subject: &[u8]) -> bool {
        self.sublist.read().has_interest(subject)
    }

    /// `has_interest`, looking through import forwarders to whether their
    /// importers listen (a push consumer must not deliver into a stream
    /// import nobody subscribes to: nats-server has no interest there).
    pub fn has_live_interest(&self, subject: &[u8]) -> bool {
        let matches = self.sublist.read().matches(subject);
        let live = |sub: &crate::subscription::SubRef| {
            sub.internal
                .as_ref()
                .and_then(|h| h.forwards_interest(subject))
                .unwrap_or(true)
        };
        matches.psubs.iter().any(live) || matches.qsubs.iter().any(|q| q.members.iter().any(live))
    }

    /// Subscriptions in this account (client and internal).
    pub fn num_subscriptions(&self) -> usize {
        self.sublist.read().count()
    }

    /// Visits every subscription (monitoring).
    pub fn for_each_sub(&self, f: impl FnMut(&[u8], Option<&[u8]>, &SubRef)) {
        self.sublist.read().for_each(f)
    }

    /// Whether `importer` may import `subject` as a stream (`service == false`)
    /// or a service from this account.
    pub fn exports_to(&self, subject: &str, service: bool, importer: &str) -> bool {
        self.exports.iter().any(|e| {
            e.is_service() == service
                && rnats_subject::is_subset(subject.as_bytes(), e.subject.as_bytes())
                && (e.accounts.is_empty() || e.accounts.iter().any(|a| a == importer))
        })
    }

    /// The export that covers a service subject (for its response type).
    pub fn service_export(&self, subject: &str) -> Option<&ExportConfig> {
        self.exports.iter().find(|e| {
            e.is_service() && rnats_subject::is_subset(subject.as_bytes(), e.subject.as_bytes())
        })
    }
}

/// An account's client limits; negative means unlimited (nats-server's -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_connections: i64,
    pub max_subscriptions: i64,
    pub max_payload: i64,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            max_connections: -1,
            max_subscriptions: -1,
            max_payload: -1,
        }
    }
}

/// `limit` as a bound, when it is one.
pub fn bound(limit: i64) -> Option<usize> {
    usize::try_from(limit).ok()
}

impl Account {
    /// Counts a new connection unless the account is full.
    pub fn admit_client(&self) -> bool {
        let max = bound(self.limits.max_connections);
        self.num_clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match max {
                Some(m) if n >= m => None,
                _ => Some(n + 1),
            })
            .is_ok()
    }

    pub fn release_client(&self) {
        let _ = self
            .num_clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// Every account on this server, by name.
pub struct Accounts {
    by_name: RwLock<HashMap<String, Arc<Account>>>,
    global: Arc<Account>,
    system: Arc<Account>,
}

impl Accounts {
    /// The accounts the options configure, plus `$G` and the system account.
    /// `global_mappings` are the top-level `mappings` (for `$G`).
    pub fn from_configs(
        configs: &[AccountConfig],
        system_account: Option<&str>,
        global_mappings: &[mappings::Mapping],
    ) -> Accounts {
        let mut by_name = HashMap::new();
        for c in configs {
            let mut a = Account::new(c.name.clone());
            a.exports = c.exports.clone();
            a.imports = c.imports.clone();
            a.jetstream = c.jetstream.clone();
            a.mappings = c.mappings.clone();
            a.limits = c.limits;
            by_name.insert(c.name.clone(), Arc::new(a));
        }
        let mut global = Account::new(GLOBAL);
        global.mappings = global_mappings.to_vec();
        let global = by_name
            .entry(GLOBAL.to_string())
            .or_insert_with(|| Arc::new(global))
            .clone();
        let sys_name = system_account.unwrap_or(DEFAULT_SYSTEM);
        let system = by_name
            .entry(sys_name.to_string())
            .or_insert_with(|| Arc::new(Account::new(sys_name)))
            .clone();
        Accounts {
            by_name: RwLock::new(by_name),
            global,
            system,
        }
    }

    pub fn global(&self) -> &Arc<Account> {
        &self.global
    }

    pub fn system(&self) -> &Arc<Account> {
        &self.system
    }

    /// Adds `account` unless one of that name exists; returns the one in
    /// place and whether it is the new one.
    pub fn insert_if_absent(&self, account: Arc<Account>) -> (Arc<Account>, bool) {
        let mut map = self.by_name.write();
        if let Some(a) = map.get(&account.name) {
            return (a.clone(), false);
        }
        map.insert(account.name.clone(), account.clone());
        (account, true)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.by_name.read().get(name).cloned()
    }

    /// All accounts, sorted by name (monitoring).
    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut v: Vec<_> = self.by_name.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Subscriptions across all accounts.
    pub fn num_subscriptions(&self) -> usize {
        self.by_name
            .read()
            .values()
            .map(|a| a.num_subscriptions())
            .sum()
    }
}
