//! The server-wide part of JetStream: where accounts keep their streams, the
//! server's memory and storage limits (shared by all accounts), and which
//! accounts have JetStream. Each enabled account gets a [`JsAccount`]; the
//! others answer `$JS.API` requests with "not enabled" (see [`disabled`]).
//!
//! As in nats-server: with no accounts configured, `$G` has JetStream; with
//! accounts (from the config or, in operator mode, from JWTs as clients log
//! in), the accounts whose configuration enables it. The system account never
//! has JetStream.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use super::types::StorageType;
use super::{disabled, JsAccount};
use rnats_core::account::{Account, AccountJetStream};
use rnats_core::server::ServerState;

pub struct JetStream {
    server: Weak<ServerState>,
    /// `<store_dir>/jetstream`; each account keeps `<account>/streams` in it.
    pub store_dir: PathBuf,
    /// The server's limits, shared by all accounts.
    pub max_memory: i64,
    pub max_store: i64,
    accounts: RwLock<BTreeMap<String, Arc<JsAccount>>>,
}

impl JetStream {
    /// Opens the store directory and enables JetStream for every account
    /// known now that should have it.
    pub fn enable(server: &Arc<ServerState>) -> std::io::Result<Arc<JetStream>> {
        let base = server
            .opts()
            .store_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("nats"));
        // nats-server's wording, which harnesses match on.
        if base.exists() && !base.is_dir() {
            return Err(std::io::Error::other(
                "storage directory is not a directory",
            ));
        }
        let store_dir = base.join("jetstream");
        std::fs::create_dir_all(&store_dir)?;
        let engine = Arc::new(JetStream {
            server: Arc::downgrade(server),
            store_dir,
            max_memory: server
                .opts()
                .max_memory_store
                .unwrap_or_else(super::default_max_memory),
            max_store: server
                .opts()
                .max_file_store
                .unwrap_or(1024 * 1024 * 1024 * 1024),
            accounts: RwLock::new(BTreeMap::new()),
        });
        for account in server.accounts.all() {
            engine.account_registered(server, &account)?;
        }
        Ok(engine)
    }

    /// Gives a newly known account its JetStream (or the "not enabled"
    /// answers); called at startup and when operator mode registers an account.
    pub fn account_registered(
        self: &Arc<Self>,
        server: &Arc<ServerState>,
        account: &Arc<Account>,
    ) -> std::io::Result<()> {
        if Arc::ptr_eq(account, server.accounts.system()) {
            return Ok(());
        }
        let limits = match &account.jetstream {
            Some(l) => Some(l.clone()),
            // Without configured accounts, `$G` has JetStream, unlimited.
            None if Arc::ptr_eq(account, server.accounts.global()) && global_only(server) => {
                Some(AccountJetStream::default())
            }
            None => None,
        };
        let Some(limits) = limits else {
            return disabled::subscribe(server, account)
                .map_err(|e| std::io::Error::other(e.to_string()));
        };
        if self.accounts.read().contains_key(&account.name) {
            return Ok(());
        }
        let js = JsAccount::enable(server, self, account, limits)?;
        self.accounts.write().insert(account.name.clone(), js);
        Ok(())
    }

    /// The JetStream of the account named `name`, if it has one.
    pub fn account(&self, name: &str) -> Option<Arc<JsAccount>> {
        self.accounts.read().get(name).cloned()
    }

    /// Every account's JetStream, by account name.
    pub fn accounts(&self) -> Vec<Arc<JsAccount>> {
        self.accounts.read().values().cloned().collect()
    }

    pub fn server(&self) -> Option<Arc<ServerState>> {
        self.server.upgrade()
    }

    /// The server's limit for one storage type.
    pub fn max_for(&self, storage: StorageType) -> i64 {
        match storage {
            StorageType::Memory => self.max_memory,
            StorageType::File => self.max_store,
        }
    }

    /// Bytes of one storage type used by all accounts (as their publish
    /// checks last measured them).
    pub fn usage_of(&self, storage: StorageType) -> u64 {
        self.accounts()
            .iter()
            .map(|a| {
                let (m, f) = a.current_usage();
                match storage {
                    StorageType::Memory => m,
                    StorageType::File => f,
                }
            })
            .sum()
    }

    /// Bytes used by memory and file streams of all accounts.
    pub fn usage(&self) -> (u64, u64) {
        self.accounts().iter().fold((0, 0), |(m, f), a| {
            let (am, af) = a.usage();
            (m + am, f + af)
        })
    }

    /// Bytes reserved by streams of all accounts (memory, file).
    pub fn reserved(&self) -> (i64, i64) {
        self.accounts().iter().fold((0, 0), |(m, f), a| {
            let (am, af) = a.reserved();
            (m + am, f + af)
        })
    }

    /// API requests and errors of all accounts.
    pub fn api_counts(&self) -> (u64, u64) {
        self.accounts().iter().fold((0, 0), |(t, e), a| {
            (
                t + a.api_total.load(Ordering::Relaxed),
                e + a.api_errors.load(Ordering::Relaxed),
            )
        })
    }

    /// Damaged ranges found in stream files of all accounts since start.
    pub fn corruption_events(&self) -> u64 {
        self.accounts()
            .iter()
            .map(|a| a.corruption_events.load(Ordering::Relaxed))
            .sum()
    }

    /// Stops every account's streams (server shutdown); data stays on disk.
    pub fn shutdown(&self) {
        let streams = self
            .accounts()
            .iter()
            .flat_map(|a| a.streams_vec())
            .collect();
        super::shutdown::stop_all(streams);
    }
}

/// Whether only `$G` (and the system account) exist: nats-server then
/// enables JetStream for `$G`.
fn global_only(server: &ServerState) -> bool {
    server.operator.is_none()
        && server.accounts.all().iter().all(|a| {
            Arc::ptr_eq(a, server.accounts.global()) || Arc::ptr_eq(a, server.accounts.system())
        })
}
