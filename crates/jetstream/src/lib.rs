//! JetStream on one server, a feature on `rnats-core` (see [`install`]). [`JetStream`] (in [`engine`]) is the server-wide
//! part; [`JsAccount`] here is one account's JetStream: its streams, where
//! they live on disk, its limits, and the `$JS.API` subscription in the
//! account's own subject space that manages them.
//!
//! Layout on disk, under `<store_dir>/jetstream/<account>/streams/<name>/`:
//! `meta.json` (the configuration and creation time) and `msgs/` (the
//! FileStore's blocks). Memory streams are not persisted, as in nats-server.

#![forbid(unsafe_code)]

pub mod advisories;
pub mod api;
pub mod batch;
pub mod check;
pub mod consumer;
pub mod consumer_api;
pub mod counter;
pub mod disabled;
pub mod engine;
pub mod errors;
pub mod headers;
pub mod markers;
pub mod schedule;
mod shutdown;
pub mod snapshot;
pub mod sourcing;
pub mod stream;
pub mod types;
pub mod versioning;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use rnats_store::{FileStore, FileStoreConfig, MemStore, MsgStore, SyncPolicy};
use serde::{Deserialize, Serialize};

pub use engine::JetStream;
use errors::{JsError, JsErrorKind};
use rnats_core::account::{Account, AccountJetStream};
use rnats_core::hooks::Hooks;
use rnats_core::server::ServerState;
use stream::{store_limits, Stream};
use types::{StorageType, StreamConfig};

/// Makes an enabled [`JetStream`] the server's: stores it in the server's
/// slot for it and listens for new accounts (operator mode: JetStream for an
/// account whose JWT enables it starts at first login) and for shutdown.
pub fn install(state: &ServerState, js: Arc<JetStream>) {
    state.set_slot(js);
    state.add_hooks(Arc::new(JsHooks));
}

/// JetStream's side of the core's events.
struct JsHooks;

impl Hooks for JsHooks {
    fn account_added(&self, state: &Arc<ServerState>, account: &Arc<Account>) {
        if let Some(js) = state.slot::<JetStream>() {
            if let Err(e) = js.account_registered(state, account) {
                tracing::error!("Error enabling JetStream for account {}: {e}", account.name);
            }
        }
    }

    fn shutdown(&self, state: &ServerState) {
        if let Some(js) = state.slot::<JetStream>() {
            js.shutdown();
        }
    }
}

/// What `meta.json` holds for a file stream.
#[derive(Serialize, Deserialize)]
struct StreamMeta {
    created: DateTime<Utc>,
    config: StreamConfig,
}

/// One account's JetStream.
pub struct JsAccount {
    server: Weak<ServerState>,
    /// The server-wide part (its limits and the other accounts' usage).
    engine: Weak<JetStream>,
    /// The account whose subject space every subscription and publish of
    /// this JetStream (API, captures, deliveries, acks, advisories) uses.
    pub account: Arc<Account>,
    /// The account's limits (-1 = unlimited).
    pub limits: AccountJetStream,
    /// `<store_dir>/jetstream/<account>/streams`.
    streams_dir: PathBuf,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    pub api_total: AtomicU64,
    pub api_errors: AtomicU64,
    /// Damaged ranges found in stream files since start.
    pub corruption_events: AtomicU64,
    /// The same, per stream name (`/jsz` and `/metrics`).
    corrupt_by_stream: parking_lot::Mutex<std::collections::HashMap<String, u64>>,
    /// (when measured, memory bytes, file bytes) for `limits_exceeded`.
    usage_cache: parking_lot::Mutex<(std::time::Instant, u64, u64)>,
    /// Bytes reserved by memory and file streams, for other accounts'
    /// reservation checks to read without taking this account's stream lock
    /// (two accounts creating streams at once would deadlock otherwise).
    reserved_mem: AtomicI64,
    reserved_file: AtomicI64,
    /// Bumped when a stream is created or deleted (mirrors and sources
    /// waiting for their origin look again).
    pub streams_changed: tokio::sync::watch::Sender<u64>,
}

impl JsAccount {
    /// Opens the account's store directory, recovers its file streams, and
    /// subscribes to the API in the account.
    pub(crate) fn enable(
        server: &Arc<ServerState>,
        engine: &Arc<JetStream>,
        account: &Arc<Account>,
        limits: AccountJetStream,
    ) -> std::io::Result<Arc<JsAccount>> {
        let streams_dir = engine.store_dir.join(&account.name).join("streams");
        std::fs::create_dir_all(&streams_dir)?;
        let js = Arc::new(JsAccount {
            server: Arc::downgrade(server),
            engine: Arc::downgrade(engine),
            account: account.clone(),
            limits,
            streams_dir,
            streams: RwLock::new(BTreeMap::new()),
            api_total: AtomicU64::new(0),
            api_errors: AtomicU64::new(0),
            corruption_events: AtomicU64::new(0),
            corrupt_by_stream: parking_lot::Mutex::new(std::collections::HashMap::new()),
            usage_cache: parking_lot::Mutex::new((std::time::Instant::now(), 0, 0)),
            reserved_mem: AtomicI64::new(0),
            reserved_file: AtomicI64::new(0),
            streams_changed: tokio::sync::watch::Sender::new(0),
        });
        js.recover()?;
        js.note_reserved(&js.streams.read());
        js.note_streams_changed();
        api::subscribe(server, &js).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(js)
    }

    fn recover(self: &Arc<Self>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.streams_dir)? {
            let dir = entry?.path();
            let meta_path = dir.join("meta.json");
            let meta: StreamMeta = match std::fs::read(&meta_path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!("Skipping stream in {}: bad metadata: {e}", dir.display());
                    continue;
                }
            };
            let name = meta.config.name.clone();
            match self.open_stream(meta.config, meta.created) {
                Ok(s) => {
                    let st = s.store.state();
                    tracing::info!(
                        "  Restored {} messages for stream '{} > {name}'",
                        st.msgs,
                        self.account.name
                    );
                    consumer_api::recover(self, &s);
                    self.streams.write().insert(name, s);
                }
                Err(e) => tracing::error!("Could not restore stream {name}: {}", e.description),
            }
        }
        Ok(())
    }

    fn stream_dir(&self, name: &str) -> PathBuf {
        self.streams_dir.join(name)
    }

    /// Builds the store and the stream for a configuration and starts it.
    fn open_stream(
        self: &Arc<Self>,
        config: StreamConfig,
        created: DateTime<Utc>,
    ) -> Result<Arc<Stream>, JsError> {
        let server = self
            .server
            .upgrade()
            .ok_or_else(|| JsError::new(JsErrorKind::NotEnabled))?;
        let limits = store_limits(&config);
        let (store, dir, ack_after_sync): (Arc<dyn MsgStore>, _, _) = match config.storage {
            StorageType::Memory => (Arc::new(MemStore::new(limits)), None, false),
            StorageType::File => {
                let dir = self.stream_dir(&config.name);
                let mut fcfg = FileStoreConfig::new(dir.join("msgs"), limits);
                fcfg.sync = if server.opts().sync_always {
                    SyncPolicy::Always
                } else {
                    SyncPolicy::Interval(server.opts().sync_interval)
                };
                let store = FileStore::open(fcfg).map_err(|e| {
                    JsError::new(JsErrorKind::StreamCreateErrF).arg("err", &e.to_string())
                })?;
                if let Some(why) = &store.recovery_report().snapshot_rejected {
                    tracing::debug!(
                        "Stream '{} > {}': {why}; rebuilt the index from the blocks",
                        self.account.name,
                        config.name
                    );
                }
                for d in &store.recovery_report().damaged {
                    self.report_corruption(&server, &config.name, d);
                }
                (Arc::new(store), Some(dir), server.opts().sync_always)
            }
        };
        let stream = Stream::new(
            self.server.clone(),
            self,
            config,
            store,
            created,
            dir,
            ack_after_sync,
        );
        stream.start()?;
        Ok(stream)
    }

    fn write_meta(&self, config: &StreamConfig, created: DateTime<Utc>) -> Result<(), JsError> {
        if config.storage != StorageType::File {
            return Ok(());
        }
        let dir = self.stream_dir(&config.name);
        let meta = StreamMeta {
            created,
            config: config.clone(),
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join("meta.json.tmp");
            let body = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, body)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, dir.join("meta.json"))?;
            Ok(())
        };
        write().map_err(|e| JsError::new(JsErrorKind::StreamCreateErrF).arg("err", &e.to_string()))
    }

    pub fn server(&self) -> Option<Arc<ServerState>> {
        self.server.upgrade()
    }

    /// Creates (or restores) a consumer on `stream` and starts it. Durables
    /// on file streams are persisted under `<stream dir>/obs/<name>`.
    pub fn add_consumer(
        &self,
        stream: &Arc<Stream>,
        name: String,
        config: types::ConsumerConfig,
        created: DateTime<Utc>,
        restored: Option<consumer::state::Persisted>,
    ) -> Result<Arc<consumer::Consumer>, JsError> {
        let sync_always = self.server.upgrade().is_some_and(|s| s.opts().sync_always);
        let dir = match (&stream.dir, config.is_durable() && !config.memory_storage) {
            (Some(d), true) => Some(d.join("obs").join(&name)),
            _ => None,
        };
        let consumer = consumer::Consumer::new(
            self.server.clone(),
            stream,
            name,
            config,
            created,
            dir,
            restored,
            sync_always,
        );
        consumer.save();
        consumer.start();
        stream.add_consumer(consumer.clone());
        consumer.pump();
        Ok(consumer)
    }

    pub fn stream(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.read().get(name).cloned()
    }

    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }

    /// Creates a stream, or succeeds without change if one with the same
    /// configuration exists (nats-server's idempotent create); the flag says
    /// whether it was created now.
    pub fn create_stream(
        self: &Arc<Self>,
        config: StreamConfig,
    ) -> Result<(Arc<Stream>, bool), JsError> {
        let mut streams = self.streams.write();
        if let Some(existing) = streams.get(&config.name) {
            if existing.config() == config {
                return Ok((existing.clone(), false));
            }
            return Err(JsError::new(JsErrorKind::StreamNameExist));
        }
        if self.limits.max_streams > 0 && streams.len() as i64 >= self.limits.max_streams {
            return Err(JsError::new(JsErrorKind::MaximumStreamsLimit));
        }
        for other in streams.values() {
            let ocfg = other.config();
            let clash = config.subjects.iter().any(|a| {
                ocfg.subjects
                    .iter()
                    .any(|b| rnats_subject::overlaps(a.as_bytes(), b.as_bytes()))
            });
            if clash {
                return Err(JsError::new(JsErrorKind::StreamSubjectOverlap));
            }
        }
        self.check_reservation(&streams, &config, 0)?;
        let created = Utc::now();
        self.write_meta(&config, created)?;
        let name = config.name.clone();
        let first_seq = config.first_seq;
        let opened = self.open_stream(config, created).and_then(|s| {
            // `first_seq`: the first message gets this sequence (as after a
            // compact of an empty stream, which the store persists).
            if first_seq > 1 {
                s.store
                    .purge(None, Some(first_seq), None)
                    .map_err(stream::store_error)?;
            }
            Ok(s)
        });
        let stream = match opened {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.stream_dir(&name));
                return Err(e);
            }
        };
        streams.insert(name, stream.clone());
        self.note_reserved(&streams);
        drop(streams);
        self.note_streams_changed();
        Ok((stream, true))
    }

    /// Applies an update already checked by `api` for what may change.
    pub fn update_stream(&self, config: StreamConfig) -> Result<Arc<Stream>, JsError> {
        let streams = self.streams.read();
        let stream = streams
            .get(&config.name)
            .cloned()
            .ok_or_else(|| JsError::new(JsErrorKind::StreamNotFound))?;
        for other in streams.values().filter(|s| s.name != config.name) {
            let ocfg = other.config();
            let clash = config.subjects.iter().any(|a| {
                ocfg.subjects
                    .iter()
                    .any(|b| rnats_subject::overlaps(a.as_bytes(), b.as_bytes()))
            });
            if clash {
                return Err(JsError::new(JsErrorKind::StreamSubjectOverlap));
            }
        }
        let old_max = stream.config().max_bytes.max(0);
        if config.max_bytes > old_max {
            self.check_reservation(&streams, &config, old_max)?;
        }
        drop(streams);
        let old = stream.config();
        let resubscribe =
            old.subjects != config.subjects || old.allow_direct != config.allow_direct;
        self.write_meta(&config, stream.created)?;
        stream.set_config(config)?;
        self.note_reserved(&self.streams.read());
        if resubscribe {
            stream.resubscribe()?;
        }
        Ok(stream)
    }

    pub fn delete_stream(&self, name: &str) -> Result<(), JsError> {
        let stream = {
            let mut streams = self.streams.write();
            let s = streams
                .remove(name)
                .ok_or_else(|| JsError::new(JsErrorKind::StreamNotFound))?;
            self.note_reserved(&streams);
            s
        };
        let result = stream.delete();
        self.note_streams_changed();
        result
    }

    fn note_streams_changed(&self) {
        self.streams_changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A stream's `max_bytes` is reserved from the account's limit and from
    /// the server's `max_memory_store` / `max_file_store` (shared by all
    /// accounts) when it is created (nats-server's rule); `offset` is what the
    /// stream being updated already holds.
    fn check_reservation(
        &self,
        streams: &BTreeMap<String, Arc<Stream>>,
        config: &StreamConfig,
        offset: i64,
    ) -> Result<(), JsError> {
        let own = reserved_in(streams.values(), config.storage) - offset;
        let add = if config.max_bytes > 0 {
            config.max_bytes
        } else {
            1
        };
        let (account_max, kind) = match config.storage {
            StorageType::Memory => (self.limits.max_memory, JsErrorKind::MemoryResourcesExceeded),
            StorageType::File => (self.limits.max_file, JsErrorKind::StorageResourcesExceeded),
        };
        let over = |reserved: i64, max: i64| reserved > max || add > max - reserved;
        if account_max >= 0 && over(own, account_max) {
            return Err(JsError::new(kind));
        }
        let Some(engine) = self.engine.upgrade() else {
            return Ok(());
        };
        let others: i64 = engine
            .accounts()
            .iter()
            .filter(|a| !std::ptr::eq(a.as_ref(), self))
            .map(|a| {
                let (m, f) = a.reserved();
                match config.storage {
                    StorageType::Memory => m,
                    StorageType::File => f,
                }
            })
            .sum();
        if over(own + others, engine.max_for(config.storage)) {
            return Err(JsError::new(kind));
        }
        Ok(())
    }

    /// Why a message of `size` bytes may not be stored now: the account's
    /// limit for this storage type (10002) or the server's (10023) is used
    /// up. Usage is refreshed at most every 50 ms.
    pub fn limits_exceeded(&self, storage: StorageType, size: u64) -> Option<JsErrorKind> {
        let (mem, file) = self.current_usage();
        let (used, account_max) = match storage {
            StorageType::Memory => (mem as i64, self.limits.max_memory),
            StorageType::File => (file as i64, self.limits.max_file),
        };
        if account_max >= 0 && used.saturating_add(size as i64) > account_max {
            return Some(JsErrorKind::AccountResourcesExceeded);
        }
        let engine = self.engine.upgrade()?;
        if engine.usage_of(storage) as i64 > engine.max_for(storage) {
            return Some(JsErrorKind::InsufficientResources);
        }
        None
    }

    /// Bytes reserved by this account's streams of each storage type
    /// (`reserved_memory`, `reserved_storage` in account info).
    pub fn reserved(&self) -> (i64, i64) {
        (
            self.reserved_mem.load(Ordering::Relaxed),
            self.reserved_file.load(Ordering::Relaxed),
        )
    }

    /// Records what `streams` (this account's, locked by the caller) reserve.
    fn note_reserved(&self, streams: &BTreeMap<String, Arc<Stream>>) {
        let mem = reserved_in(streams.values(), StorageType::Memory);
        let file = reserved_in(streams.values(), StorageType::File);
        self.reserved_mem.store(mem, Ordering::Relaxed);
        self.reserved_file.store(file, Ordering::Relaxed);
    }

    /// Consumers on all of this account's streams.
    pub fn num_consumers(&self) -> usize {
        self.streams
            .read()
            .values()
            .map(|s| s.consumers().len())
            .sum()
    }

    /// Whether the account's `max_consumers` refuses one more.
    pub fn consumer_limit_reached(&self) -> bool {
        self.limits.max_consumers > 0 && self.num_consumers() as i64 >= self.limits.max_consumers
    }

    /// Bytes used (memory, file) as measured for publish checks: at most
    /// 50 ms old, plus what was stored since.
    pub(crate) fn current_usage(&self) -> (u64, u64) {
        let mut cache = self.usage_cache.lock();
        if cache.0.elapsed() > std::time::Duration::from_millis(50) {
            let (m, f) = self.usage();
            *cache = (std::time::Instant::now(), m, f);
        }
        (cache.1, cache.2)
    }

    /// Counts a stored message in the cached usage until the next refresh,
    /// so a burst of publishes cannot overrun the limit between refreshes.
    pub fn note_stored(&self, storage: StorageType, bytes: u64) {
        let mut cache = self.usage_cache.lock();
        match storage {
            StorageType::Memory => cache.1 += bytes,
            StorageType::File => cache.2 += bytes,
        }
    }

    /// Bytes used by memory and file streams.
    pub fn usage(&self) -> (u64, u64) {
        let mut mem = 0;
        let mut file = 0;
        for s in self.streams.read().values() {
            let bytes = s.store.state().bytes;
            match s.config().storage {
                StorageType::Memory => mem += bytes,
                StorageType::File => file += bytes,
            }
        }
        (mem, file)
    }

    /// Stops every stream (server shutdown); data stays on disk.
    pub fn shutdown(&self) {
        shutdown::stop_all(self.streams_vec());
    }

    /// This account's streams, outside the lock.
    pub(crate) fn streams_vec(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }

    /// A durable's damaged state file (already logged where it was read): counted with the
    /// stream's damaged records, so `/jsz` `corrupt_records` and `/metrics` show it.
    pub fn count_consumer_state_damage(&self, stream: &str) {
        self.corruption_events.fetch_add(1, Ordering::Relaxed);
        *self
            .corrupt_by_stream
            .lock()
            .entry(stream.to_string())
            .or_insert(0) += 1;
    }

    /// A damaged range found in a stream's files: logged, counted and
    /// published as an advisory on `$JS.EVENT.ADVISORY.STREAM.CORRUPTION.<stream>`
    /// (an rnats subject; nats-server has none). The stream keeps serving.
    fn report_corruption(&self, server: &ServerState, stream: &str, d: &rnats_store::DamagedRange) {
        self.corruption_events.fetch_add(1, Ordering::Relaxed);
        *self
            .corrupt_by_stream
            .lock()
            .entry(stream.to_string())
            .or_insert(0) += 1;
        let seqs = d
            .seqs
            .map(|(a, b)| format!(", sequences {a}-{b}"))
            .unwrap_or_default();
        tracing::warn!(
            "Stream '{} > {stream}': damaged data in block {} ({}) at offset {}, {} bytes{seqs}: {}",
            self.account.name,
            d.block,
            d.file.display(),
            d.offset,
            d.len,
            d.cause
        );
        let subject = format!("{}.{stream}", advisories::STREAM_CORRUPTION);
        advisories::publish(
            server,
            &self.account,
            &subject,
            advisories::STREAM_CORRUPTION_TYPE,
            |_| advisories::StreamCorruption {
                stream,
                block: d.block,
                file: d.file.display().to_string(),
                offset: d.offset,
                bytes: d.len,
                cause: &d.cause,
                first_seq: d.seqs.map(|s| s.0),
                last_seq: d.seqs.map(|s| s.1),
            },
        );
    }

    /// Damaged ranges found in `stream`'s files since the server started.
    pub fn corrupt_records(&self, stream: &str) -> u64 {
        self.corrupt_by_stream
            .lock()
            .get(stream)
            .copied()
            .unwrap_or(0)
    }

    pub fn count_api(&self, error: bool) {
        self.api_total.fetch_add(1, Ordering::Relaxed);
        if error {
            self.api_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Bytes reserved (`max_bytes`) by `streams` of one storage type.
fn reserved_in<'a>(streams: impl Iterator<Item = &'a Arc<Stream>>, storage: StorageType) -> i64 {
    streams
        .map(|s| s.config())
        .filter(|c| c.storage == storage && c.max_bytes > 0)
        .map(|c| c.max_bytes)
        .sum()
}

/// nats-server's default: 75% of the machine's memory.
pub(crate) fn default_max_memory() -> i64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(1 << 30);
    total / 4 * 3
}
