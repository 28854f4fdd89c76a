//! One stream: its configuration, its message store, and the publish path
//! that turns a captured message into a stored one (limits, de-duplication,
//! expected-headers checks, rollups) and answers the publisher with a PubAck.
//!
//! A stream applies operations in order, like a state machine: today they
//! come from local publishes through [`Stream::apply_publish`]; a replicated
//! stream will feed the same method from its log.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rnats_store::{MsgStore, StoreError, StoreLimits};
use tokio::task::JoinHandle;

use super::batch;
use super::consumer::Consumer;
use super::counter;
use super::errors::{JsError, JsErrorKind};
use super::headers;
use super::markers;
use super::types::{
    DiscardPolicy, PubAck, PubAckResponse, RePublish, RetentionPolicy, StorageType, StreamConfig,
};
use rnats_core::router::Message;
use rnats_core::server::ServerState;
use rnats_core::subscription::{InternalHandler, SubRef};

/// The queue group of direct-get responders: a stream and the mirrors
/// serving its direct gets answer each request once between them.
pub const DIRECT_GROUP: &str = "_sys_";

/// An ack held back until its message is fsynced: (seq, reply subject, body).
type PendingAck = (u64, Vec<u8>, Vec<u8>);

/// Where a message being applied comes from: the checks differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client's publish: every check applies.
    Client,
    /// Copied by a source: stored verbatim (no expected-headers, TTL or
    /// rollup permission checks), de-duplicated, with a new sequence.
    Source,
    /// Copied by a mirror: stored at the origin's sequence and time, no
    /// de-duplication.
    Mirror { seq: u64, ts: i64 },
    /// Written by the stream itself (subject delete markers): stored like a
    /// sourced message.
    Internal,
    /// A message of an atomic batch being committed: the batch already made
    /// a client's checks (and computed counters); TTLs and rollups apply.
    Batch,
}

/// The outcome of a publish into the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stored {
    pub seq: u64,
    pub duplicate: bool,
    /// Counter streams: the subject's total after this message.
    pub counter: Option<String>,
    /// The headers and body stored, when they differ from those published
    /// (a counter's new total).
    pub rewritten: Option<(Vec<u8>, Vec<u8>)>,
}

impl Stored {
    /// The headers and body as stored, given those published.
    pub fn stored_msg<'a>(&'a self, hdrs: &'a [u8], payload: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        match &self.rewritten {
            Some((h, p)) => (h, p),
            None => (hdrs, payload),
        }
    }
}

pub struct Stream {
    pub name: String,
    pub created: DateTime<Utc>,
    pub store: Arc<dyn MsgStore>,
    /// Where a file stream keeps its metadata and messages.
    pub dir: Option<PathBuf>,
    server: Weak<ServerState>,
    /// The account's JetStream this stream belongs to.
    js: Weak<super::JsAccount>,
    /// The account whose subject space the stream captures, answers and
    /// republishes in.
    pub account: Arc<rnats_core::account::Account>,
    inner: Mutex<Inner>,
    /// Capture subscriptions on the stream's subjects.
    subs: Mutex<Vec<SubRef>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Publishes waiting for an fsync before their ack (`sync: always`).
    pending_acks: Mutex<VecDeque<PendingAck>>,
    /// Whether acks wait for the store's fsync.
    ack_after_sync: bool,
    /// Wakes the expiry task when a sooner deadline appears.
    expiry_wake: tokio::sync::Notify,
    consumers: parking_lot::RwLock<std::collections::BTreeMap<String, Arc<Consumer>>>,
    /// Atomic batches being staged.
    batches: batch::Batches,
    /// The last stored sequence, for mirrors and sources of this stream to
    /// wait on (sending never blocks the publisher).
    new_msgs: tokio::sync::watch::Sender<u64>,
    /// The tasks copying this stream's mirror or sources.
    pub(crate) sourcing: super::sourcing::Links,
    /// Message schedules (see [`super::schedule`]).
    pub(crate) scheduler: super::schedule::Scheduler,
}

pub(crate) struct Inner {
    config: StreamConfig,
    dedup: Dedup,
    last_msg_id: Option<String>,
    /// Per-message TTL deadlines (unix nanos, seq), soonest first.
    ttls: BTreeSet<(i64, u64)>,
}

impl Inner {
    pub(crate) fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Whether `id` was published within the duplicate window.
    pub(crate) fn has_msg_id(&mut self, id: &str) -> bool {
        let window = self.config.duplicate_window;
        self.dedup.expire(now_nanos(), window);
        self.dedup.ids.contains_key(id)
    }
}

/// `Nats-Msg-Id`s seen within the duplicate window.
#[derive(Default)]
struct Dedup {
    ids: HashMap<String, u64>,
    order: VecDeque<(i64, String)>,
}

impl Dedup {
    fn expire(&mut self, now: i64, window: i64) {
        while let Some((ts, _)) = self.order.front() {
            if now - ts < window {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }
}

pub fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The store's view of a stream's limits.
pub fn store_limits(cfg: &StreamConfig) -> StoreLimits {
    StoreLimits {
        max_msgs: cfg.max_msgs,
        max_bytes: cfg.max_bytes,
        // With per-message TTLs the stream applies max_age itself (markers,
        // `Nats-TTL: never`), so the store must not remove by age on its own.
        max_age: if cfg.allow_msg_ttl {
            Duration::ZERO
        } else {
            Duration::from_nanos(cfg.max_age.max(0) as u64)
        },
        max_msgs_per_subject: cfg.max_msgs_per_subject,
        max_msg_size: cfg.max_msg_size,
        discard: match cfg.discard {
            DiscardPolicy::Old => rnats_store::DiscardPolicy::Old,
            DiscardPolicy::New => rnats_store::DiscardPolicy::New,
        },
        discard_new_per_subject: cfg.discard_new_per_subject,
    }
}

/// Maps a store refusal to the API error nats-server sends for it.
pub fn store_error(e: StoreError) -> JsError {
    match e {
        StoreError::MaxMsgSize => JsError::new(JsErrorKind::StreamMessageExceedsMaximum),
        other => JsError::new(JsErrorKind::StreamStoreFailedF).arg("err", &other.to_string()),
    }
}

impl Stream {
    pub fn new(
        server: Weak<ServerState>,
        js: &Arc<super::JsAccount>,
        config: StreamConfig,
        store: Arc<dyn MsgStore>,
        created: DateTime<Utc>,
        dir: Option<PathBuf>,
        ack_after_sync: bool,
    ) -> Arc<Stream> {
        Arc::new(Stream {
            name: config.name.clone(),
            created,
            store,
            dir,
            server,
            js: Arc::downgrade(js),
            account: js.account.clone(),
            inner: Mutex::new(Inner {
                config,
                dedup: Dedup::default(),
                last_msg_id: None,
                ttls: BTreeSet::new(),
            }),
            subs: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            pending_acks: Mutex::new(VecDeque::new()),
            ack_after_sync,
            expiry_wake: tokio::sync::Notify::new(),
            consumers: parking_lot::RwLock::new(std::collections::BTreeMap::new()),
            batches: batch::Batches::default(),
            new_msgs: tokio::sync::watch::Sender::new(0),
            sourcing: super::sourcing::Links::default(),
            scheduler: super::schedule::Scheduler::default(),
        })
    }

    pub fn config(&self) -> StreamConfig {
        self.inner.lock().config.clone()
    }

    /// Replaces the configuration (already validated as an allowed update).
    pub fn set_config(self: &Arc<Self>, config: StreamConfig) -> Result<(), JsError> {
        self.store
            .update_limits(store_limits(&config))
            .map_err(|e| JsError::new(JsErrorKind::StreamUpdateErrF).arg("err", &e.to_string()))?;
        let start_expiry = {
            let mut inner = self.inner.lock();
            let was = inner.config.needs_expiry();
            inner.config = config;
            !was && inner.config.needs_expiry()
        };
        super::sourcing::reconcile(self);
        self.tasks.lock().extend(super::schedule::start(self));
        if start_expiry {
            self.tasks
                .lock()
                .push(tokio::spawn(expire_loop(Arc::downgrade(self))));
        }
        Ok(())
    }

    /// Subscribes the stream to its subjects and starts its background work
    /// (age expiry, acks after fsync).
    pub fn start(self: &Arc<Self>) -> Result<(), JsError> {
        self.resubscribe()?;
        self.recover_ttls();
        self.recover_dedup();
        let mut tasks = self.tasks.lock();
        let weak = Arc::downgrade(self);
        if self.inner.lock().config.needs_expiry() {
            tasks.push(tokio::spawn(expire_loop(weak.clone())));
        }
        if self.ack_after_sync {
            tasks.push(tokio::spawn(ack_loop(weak, self.store.sync_watch())));
        }
        tasks.extend(super::schedule::start(self));
        drop(tasks);
        super::sourcing::reconcile(self);
        Ok(())
    }

    /// (Re)creates the capture subscriptions from the current subjects.
    pub fn resubscribe(self: &Arc<Self>) -> Result<(), JsError> {
        let Some(server) = self.server.upgrade() else {
            return Ok(());
        };
        let (subjects, direct) = {
            let inner = self.inner.lock();
            (inner.config.subjects.clone(), inner.config.allow_direct)
        };
        let mut subs = self.subs.lock();
        for s in subs.drain(..) {
            server.remove_subscription(&s);
        }
        let invalid =
            |_| JsError::new(JsErrorKind::StreamInvalidConfigF).arg("err", "invalid subject");
        let handler: Arc<dyn InternalHandler> = Arc::new(Capture(Arc::downgrade(self)));
        for subject in subjects {
            subs.push(
                server
                    .subscribe_internal_in(&self.account, &subject, None, handler.clone())
                    .map_err(invalid)?,
            );
        }
        if direct {
            let handler: Arc<dyn InternalHandler> = Arc::new(DirectGet(Arc::downgrade(self)));
            let base = format!("{}{}", super::api::DIRECT_GET, self.name);
            subs.push(
                server
                    .subscribe_internal_in(
                        &self.account,
                        &base,
                        Some(DIRECT_GROUP),
                        handler.clone(),
                    )
                    .map_err(invalid)?,
            );
            subs.push(
                server
                    .subscribe_internal_in(
                        &self.account,
                        &format!("{base}.>"),
                        Some(DIRECT_GROUP),
                        handler,
                    )
                    .map_err(invalid)?,
            );
        }
        Ok(())
    }

    pub(crate) fn acks_after_sync(&self) -> bool {
        self.ack_after_sync
    }

    pub(crate) fn batches(&self) -> &batch::Batches {
        &self.batches
    }

    pub(crate) fn lock_inner(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    pub(crate) fn server(&self) -> Option<Arc<ServerState>> {
        self.server.upgrade()
    }

    /// The account's JetStream this stream belongs to.
    pub(crate) fn js(&self) -> Option<Arc<super::JsAccount>> {
        self.js.upgrade()
    }

    /// A receiver that changes whenever a message is stored.
    pub(crate) fn watch_new_msgs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.new_msgs.subscribe()
    }

    pub fn consumer(&self, name: &str) -> Option<Arc<Consumer>> {
        self.consumers.read().get(name).cloned()
    }

    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.consumers.read().values().cloned().collect()
    }

    pub fn add_consumer(&self, consumer: Arc<Consumer>) {
        self.consumers
            .write()
            .insert(consumer.name.clone(), consumer);
    }

    /// Removes a consumer; on an interest stream its interest goes with it,
    /// so messages every remaining consumer has acked are dropped.
    pub fn remove_consumer(&self, name: &str) -> Option<Arc<Consumer>> {
        let removed = self.consumers.write().remove(name);
        if removed.is_some() && self.inner.lock().config.retention == RetentionPolicy::Interest {
            let st = self.store.state();
            let consumers = self.consumers();
            let mut seq = st.first_seq;
            while seq <= st.last_seq && seq > 0 {
                let Ok(m) = self.store.load_next(">", seq) else {
                    break;
                };
                if consumers.iter().all(|c| c.has_acked(m.seq, &m.subject)) {
                    let _ = self.store.remove(m.seq, false);
                }
                seq = m.seq + 1;
            }
        }
        removed
    }

    /// Retention after acks: work-queue messages go on their first ack,
    /// interest messages once every interested consumer has acked.
    pub fn on_acked(&self, seqs: &[u64]) {
        let retention = self.inner.lock().config.retention;
        match retention {
            RetentionPolicy::Limits => {}
            RetentionPolicy::WorkQueue => {
                for &seq in seqs {
                    let _ = self.store.remove(seq, false);
                }
            }
            RetentionPolicy::Interest => {
                let consumers = self.consumers();
                for &seq in seqs {
                    let Ok(m) = self.store.load(seq) else {
                        continue;
                    };
                    if consumers.iter().all(|c| c.has_acked(seq, &m.subject)) {
                        let _ = self.store.remove(seq, false);
                    }
                }
            }
        }
    }

    /// After a message is stored: consumers deliver it; an interest stream
    /// with nobody interested in its subject does not keep it.
    pub(crate) fn after_store(&self, seq: u64, subject: &str) {
        let consumers = self.consumers();
        if self.inner.lock().config.retention == RetentionPolicy::Interest
            && !consumers.iter().any(|c| c.wants(subject))
        {
            let _ = self.store.remove(seq, false);
            return;
        }
        for c in consumers {
            c.pump();
        }
    }

    /// Stops capturing and background work; the store stays on disk.
    pub fn stop(&self) {
        self.sourcing.stop(self.server.upgrade().as_deref());
        for c in self.consumers() {
            if c.is_durable_on_disk() {
                c.save();
            }
            c.stop(false);
        }
        if let Some(server) = self.server.upgrade() {
            for s in self.subs.lock().drain(..) {
                server.remove_subscription(&s);
            }
        }
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        let _ = self.store.stop();
    }

    /// Stops the stream and removes its data.
    pub fn delete(&self) -> Result<(), JsError> {
        let consumers: Vec<_> = std::mem::take(&mut *self.consumers.write())
            .into_values()
            .collect();
        for c in consumers {
            c.delete();
        }
        self.stop();
        self.store
            .delete()
            .map_err(|e| JsError::new(JsErrorKind::StreamDeleteErrF).arg("err", &e.to_string()))?;
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }

    /// Applies one published message: the checks nats-server makes, then the store.
    pub fn apply_publish(
        &self,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
    ) -> Result<Stored, JsError> {
        self.apply_from(subject, hdrs, payload, Origin::Client)
    }

    /// Applies a message copied by a mirror or source, then does what a
    /// stored publish does (republish, consumers).
    pub(crate) fn apply_sourced(
        &self,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        from: Origin,
    ) -> Result<Stored, JsError> {
        let last_before = self.store.state().last_seq;
        let stored = self.apply_from(subject, hdrs, payload, from)?;
        if !stored.duplicate {
            let republish = self.inner.lock().config.republish.clone();
            if let Some(rp) = republish {
                let (h, p) = stored.stored_msg(hdrs, payload);
                self.republish(&rp, subject, h, p, stored.seq, last_before);
            }
            self.after_store(stored.seq, subject);
        }
        Ok(stored)
    }

    fn apply_from(
        &self,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        from: Origin,
    ) -> Result<Stored, JsError> {
        self.charge_limits(subject, hdrs, payload)?;
        let mut inner = self.inner.lock();
        self.apply_locked(&mut inner, subject, hdrs, payload, from)
    }

    /// Server storage limits, checked without the stream lock (measuring
    /// usage reads every stream's configuration, this one's included).
    pub(crate) fn charge_limits(
        &self,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
    ) -> Result<(), JsError> {
        let storage = self.inner.lock().config.storage;
        if let Some(js) = self.js.upgrade() {
            let size = match storage {
                StorageType::Memory => {
                    rnats_store::mem_msg_size(subject.len(), hdrs.len(), payload.len())
                }
                StorageType::File => {
                    rnats_store::file_msg_size(subject.len(), hdrs.len(), payload.len())
                }
            };
            if let Some(kind) = js.limits_exceeded(storage, size) {
                return Err(JsError::new(kind));
            }
            js.note_stored(storage, size);
        }
        Ok(())
    }

    /// Stores one message with the stream lock held (a batch commit holds it
    /// across all of its messages, so nothing interleaves).
    pub(crate) fn apply_locked(
        &self,
        inner: &mut Inner,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        from: Origin,
    ) -> Result<Stored, JsError> {
        let client = from == Origin::Client;
        let checked_batch = from == Origin::Batch;
        // Rollup and TTL headers are refused, not ignored, for publishers.
        let strict = client || checked_batch;
        let cfg = &inner.config;
        if cfg.sealed {
            return Err(JsError::new(JsErrorKind::StreamSealed));
        }
        if cfg.max_msg_size > 0 && hdrs.len() + payload.len() > cfg.max_msg_size as usize {
            return Err(JsError::new(JsErrorKind::StreamMessageExceedsMaximum));
        }
        let now = now_nanos();
        let window = cfg.duplicate_window;
        let mut msg_id = None;
        let mut rollup = None;
        let mut ttl = 0i64;
        let mut scheduled = None;
        // `Nats-Incr`, read once: checked before anything else, as nats-server.
        let incr = if hdrs.is_empty() {
            None
        } else {
            counter::increment(hdrs)?
        };
        if !hdrs.is_empty() {
            if client && incr.is_some() {
                counter::check_publish(hdrs, payload, inner.config.allow_msg_counter)?;
            }
            if client && headers::get(hdrs, headers::STREAM_SOURCE).is_some() {
                return Err(JsError::new(JsErrorKind::MessageSourceHdrNotAllowed));
            }
            let dedup = !matches!(from, Origin::Mirror { .. });
            if let Some(id) =
                headers::get_str(hdrs, headers::MSG_ID).filter(|s| dedup && !s.is_empty())
            {
                inner.dedup.expire(now, window);
                if let Some(&seq) = inner.dedup.ids.get(id) {
                    return Ok(Stored {
                        seq,
                        duplicate: true,
                        ..Stored::default()
                    });
                }
                msg_id = Some(id.to_string());
            }
            if client {
                self.check_expected(inner, subject, hdrs)?;
                scheduled = super::schedule::check_publish(self, &inner.config, subject, hdrs)?;
            }
            let hdrs = scheduled.as_deref().unwrap_or(hdrs);
            let cfg = &inner.config;
            if let Some(r) = headers::get_str(hdrs, headers::ROLLUP) {
                if strict && !cfg.allow_rollup_hdrs {
                    return Err(JsError::new(JsErrorKind::StreamRollupFailedF)
                        .arg("err", "rollup not permitted"));
                }
                match r {
                    "sub" => rollup = Some(true),
                    "all" => rollup = Some(false),
                    _ if !strict => {}
                    other => {
                        return Err(JsError::new(JsErrorKind::StreamRollupFailedF)
                            .arg("err", &format!("rollup value invalid: {other:?}")))
                    }
                }
            }
            if let Some(v) = headers::get_str(hdrs, headers::TTL) {
                if strict {
                    if !cfg.allow_msg_ttl {
                        return Err(JsError::new(JsErrorKind::MessageTTLDisabled));
                    }
                    ttl = parse_ttl(v)?;
                } else if cfg.allow_msg_ttl {
                    // Copied verbatim: a TTL the origin accepted still applies here.
                    ttl = parse_ttl(v).unwrap_or(0);
                }
            }
        }
        let hdrs = scheduled.as_deref().unwrap_or(hdrs);
        // A batch computed its counters when it was checked.
        let counted = if checked_batch {
            None
        } else {
            self.count(&inner.config, subject, hdrs, payload, incr)?
        };
        let (hdrs, payload) = match &counted {
            Some(c) => (&c.hdrs[..], &c.payload[..]),
            None => (hdrs, payload),
        };
        // With markers on, a TTL shorter than the marker's is raised to it.
        let raised = {
            let cfg = &inner.config;
            let marker_ttl = cfg.subject_delete_marker_ttl / 1_000_000_000;
            (ttl > 0 && ttl < marker_ttl && cfg.max_msgs_per_subject != 1).then(|| {
                ttl = marker_ttl;
                markers::with_ttl(hdrs, ttl)
            })
        };
        let hdrs = raised.as_deref().unwrap_or(hdrs);
        let seq = match from {
            Origin::Mirror { seq, ts } => {
                self.store
                    .store_at(seq, subject, hdrs, payload, ts)
                    .map_err(store_error)?;
                seq
            }
            _ => {
                self.store
                    .store(subject, hdrs, payload, now)
                    .map_err(store_error)?
                    .0
            }
        };
        self.new_msgs.send_replace(seq);
        match rollup {
            Some(true) => {
                let _ = self.store.purge(Some(subject), Some(seq), None);
            }
            Some(false) => {
                let _ = self.store.purge(None, Some(seq), None);
            }
            None => {}
        }
        super::schedule::on_stored(self, &inner.config, seq, subject, hdrs, now);
        if ttl > 0 {
            let deadline = now.saturating_add(ttl.saturating_mul(1_000_000_000));
            let sooner = inner.ttls.first().is_none_or(|&(d, _)| deadline < d);
            inner.ttls.insert((deadline, seq));
            if sooner {
                self.expiry_wake.notify_one();
            }
        }
        if let Some(id) = msg_id {
            if window > 0 {
                inner.dedup.ids.insert(id.clone(), seq);
                inner.dedup.order.push_back((now, id.clone()));
            }
            inner.last_msg_id = Some(id);
        }
        Ok(Stored {
            seq,
            duplicate: false,
            counter: counted.as_ref().map(|c| c.value.clone()),
            rewritten: counted.map(|c| (c.hdrs, c.payload)),
        })
    }

    /// Counter streams: checks `Nats-Incr` and computes the subject's new
    /// total from its last message (see [`counter`]). `None`: store as is.
    fn count(
        &self,
        cfg: &StreamConfig,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        incr: Option<num_bigint::BigInt>,
    ) -> Result<Option<counter::Counted>, JsError> {
        let Some(incr) = incr else {
            if cfg.allow_msg_counter {
                return Err(JsError::new(JsErrorKind::MessageIncrMissing));
            }
            return Ok(None);
        };
        // A client's increment was checked first thing; a sourced one was
        // checked at its origin and is stored verbatim unless we count too.
        if !cfg.allow_msg_counter {
            return Ok(None);
        }
        let last = self.store.load_last(subject).ok();
        let counted = counter::apply(
            last.as_ref().map(|m| (&m.headers[..], &m.payload[..])),
            subject,
            hdrs,
            payload,
            incr,
        )?;
        let max_payload = self
            .server
            .upgrade()
            .map_or(usize::MAX, |s| s.opts().max_payload);
        if counted.hdrs.len() + counted.payload.len() > max_payload {
            return Err(JsError::new(JsErrorKind::StreamMessageExceedsMaximum));
        }
        Ok(Some(counted))
    }

    /// Rebuilds the `Nats-Msg-Id` window from the stored messages (after a
    /// restart, clean or not, as nats-server does): a client re-sending what
    /// it did not see acknowledged must get `duplicate: true` with the
    /// original sequence, never a second copy. Only messages whose stored
    /// time is inside the window are read.
    fn recover_dedup(&self) {
        let mut inner = self.inner.lock();
        let window = inner.config.duplicate_window;
        if window <= 0 || inner.config.mirror.is_some() {
            return;
        }
        let now = now_nanos();
        let last = self.store.state().last_seq;
        let mut seq = self.store.first_seq_since(now.saturating_sub(window));
        while seq <= last && seq > 0 {
            let Ok(m) = self.store.load_next(">", seq) else {
                break;
            };
            seq = m.seq + 1;
            let id = headers::get_str(&m.headers, headers::MSG_ID).filter(|s| !s.is_empty());
            if m.seq == last {
                // As nats-server: `Nats-Expected-Last-Msg-Id` compares with
                // the id of the last message, if it has one.
                inner.last_msg_id = id.map(str::to_string);
            }
            if let Some(id) = id.filter(|_| now - m.ts < window) {
                // Ids are unique within the window; the newest copy wins.
                inner.dedup.ids.insert(id.to_string(), m.seq);
                inner.dedup.order.push_back((m.ts, id.to_string()));
            }
        }
    }

    /// Rebuilds TTL deadlines from stored messages (after a restart).
    fn recover_ttls(&self) {
        let mut inner = self.inner.lock();
        if !inner.config.allow_msg_ttl {
            return;
        }
        let st = self.store.state();
        let mut seq = st.first_seq;
        while seq <= st.last_seq && seq > 0 {
            let Ok(m) = self.store.load_next(">", seq) else {
                break;
            };
            if let Some(Ok(ttl)) = headers::get_str(&m.headers, headers::TTL).map(parse_ttl) {
                if ttl > 0 {
                    inner.ttls.insert((
                        m.ts.saturating_add(ttl.saturating_mul(1_000_000_000)),
                        m.seq,
                    ));
                }
            }
            seq = m.seq + 1;
        }
    }

    /// Removes messages whose TTL or `max_age` has passed; returns when to look again.
    fn expire_now(&self) -> Option<Duration> {
        let now = now_nanos();
        let (max_age, marker_ttl, per_msg_ttls, mut due_ttls, next_ttl) = {
            let mut inner = self.inner.lock();
            let mut due = Vec::new();
            while let Some(&(deadline, seq)) = inner.ttls.first() {
                if deadline > now {
                    break;
                }
                inner.ttls.pop_first();
                due.push(seq);
            }
            (
                inner.config.max_age,
                inner.config.subject_delete_marker_ttl / 1_000_000_000,
                inner.config.allow_msg_ttl,
                due,
                inner.ttls.first().map(|&(d, _)| d),
            )
        };
        // In sequence order, so the newest of a subject is the one marked.
        due_ttls.sort_unstable();
        for seq in due_ttls {
            markers::expire_msg(self, seq, marker_ttl);
        }
        let mut next: Option<i64> = next_ttl;
        if max_age > 0 {
            let due = if per_msg_ttls {
                // Markers and `Nats-TTL: never` need a look at each message.
                markers::expire_by_age(self, now, max_age, marker_ttl)
            } else {
                let _ = self.store.expire(now);
                let st = self.store.state();
                (st.msgs > 0).then_some(st.first_ts + max_age)
            };
            let due = due.unwrap_or(now + max_age);
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        if !self.inner.lock().config.needs_expiry() {
            return None;
        }
        let wait = next.map_or(i64::MAX / 2, |n| n - now).max(1_000_000);
        Some(Duration::from_nanos(wait as u64))
    }

    fn check_expected(&self, inner: &Inner, subject: &str, hdrs: &[u8]) -> Result<(), JsError> {
        if let Some(name) = headers::get_str(hdrs, headers::EXPECTED_STREAM) {
            if name != self.name {
                return Err(JsError::new(JsErrorKind::StreamNotMatch));
            }
        }
        if let Some(v) = headers::get_str(hdrs, headers::EXPECTED_LAST_SEQ) {
            let want: u64 = v.parse().unwrap_or(u64::MAX);
            let last = self.store.state().last_seq;
            if want != last {
                return Err(JsError::new(JsErrorKind::StreamWrongLastSequenceErrF)
                    .arg("seq", &last.to_string()));
            }
        }
        if let Some(v) = headers::get_str(hdrs, headers::EXPECTED_LAST_SUBJ_SEQ) {
            let want: u64 = v.parse().unwrap_or(u64::MAX);
            let filter =
                headers::get_str(hdrs, headers::EXPECTED_LAST_SUBJ_SEQ_SUBJECT).unwrap_or(subject);
            let last = self.store.load_last(filter).map(|m| m.seq).unwrap_or(0);
            if want != last {
                return Err(JsError::new(JsErrorKind::StreamWrongLastSequenceErrF)
                    .arg("seq", &last.to_string()));
            }
        }
        if let Some(want) = headers::get_str(hdrs, headers::EXPECTED_LAST_MSG_ID) {
            let last = inner.last_msg_id.as_deref().unwrap_or("");
            if want != last {
                return Err(JsError::new(JsErrorKind::StreamWrongLastMsgIDErrF).arg("id", last));
            }
        }
        Ok(())
    }

    /// Answers a publisher: now, or once the message is on disk.
    pub(crate) fn ack(&self, seq: u64, reply: &[u8], body: Vec<u8>, wait_for_sync: bool) {
        if wait_for_sync && self.store.synced_through() < seq {
            self.pending_acks
                .lock()
                .push_back((seq, reply.to_vec(), body));
            // The sync may have completed between the check and the push.
            if self.store.synced_through() >= seq {
                self.release_acks(self.store.synced_through());
            }
            return;
        }
        if let Some(server) = self.server.upgrade() {
            server.publish_in(&self.account, reply, None, None, &body);
        }
    }

    fn release_acks(&self, synced: u64) {
        let ready: Vec<_> = {
            let mut q = self.pending_acks.lock();
            let n = q.iter().take_while(|(s, _, _)| *s <= synced).count();
            q.drain(..n).collect()
        };
        if let Some(server) = self.server.upgrade() {
            for (_, reply, body) in ready {
                server.publish_in(&self.account, &reply, None, None, &body);
            }
        }
    }

    fn on_publish(&self, msg: &Message<'_>) {
        let original = String::from_utf8_lossy(msg.subject);
        let (transform, republish) = {
            let inner = self.inner.lock();
            (
                inner.config.subject_transform.clone(),
                inner.config.republish.clone(),
            )
        };
        // `subject_transform` changes the subject the message is stored under.
        let subject = transform
            .and_then(|t| rnats_subject::Transform::new(&t.src, &t.dest).ok())
            .and_then(|t| t.apply(&original))
            .unwrap_or_else(|| original.to_string());
        let hdrs = msg.headers.unwrap_or_default();
        if let Some(id) = headers::get_str(hdrs, batch::BATCH_ID).filter(|id| !id.is_empty()) {
            self.on_batch_publish(id, &subject, hdrs, msg.payload, msg.reply);
            return;
        }
        let last_before = self.store.state().last_seq;
        let result = self.apply_publish(&subject, hdrs, msg.payload);
        if let Ok(stored) = &result {
            if !stored.duplicate {
                if let Some(rp) = republish {
                    let (h, p) = stored.stored_msg(hdrs, msg.payload);
                    self.republish(&rp, &subject, h, p, stored.seq, last_before);
                }
                self.after_store(stored.seq, &subject);
            }
        }
        let Some(reply) = msg.reply else {
            return;
        };
        let (no_ack, domain) = {
            let inner = self.inner.lock();
            (
                inner.config.no_ack,
                self.server
                    .upgrade()
                    .and_then(|s| s.opts().jetstream_domain.clone()),
            )
        };
        if no_ack {
            return;
        }
        match result {
            Ok(stored) => {
                let ack = PubAck {
                    stream: self.name.clone(),
                    seq: stored.seq,
                    duplicate: stored.duplicate,
                    domain: domain.unwrap_or_default(),
                    value: stored.counter.clone().unwrap_or_default(),
                    ..PubAck::default()
                };
                let body = PubAckResponse::ok(ack).to_vec();
                self.ack(
                    stored.seq,
                    reply,
                    body,
                    self.ack_after_sync && !stored.duplicate,
                );
            }
            Err(e) => {
                let body = PubAckResponse::error(self.name.clone(), e).to_vec();
                if let Some(server) = self.server.upgrade() {
                    server.publish_in(&self.account, reply, None, None, &body);
                }
            }
        }
    }
}

impl Stream {
    /// `republish`: a copy of each stored message matching `src` goes to
    /// `dest` with the stream, subject, sequence and time in headers.
    pub(crate) fn republish(
        &self,
        rp: &RePublish,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        seq: u64,
        last: u64,
    ) {
        let Ok(t) = rnats_subject::Transform::new(&rp.src, &rp.dest) else {
            return;
        };
        let Some(dest) = t.apply(subject) else { return };
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let ts = self
            .store
            .load(seq)
            .map(|m| m.ts)
            .unwrap_or_else(|_| now_nanos());
        let mut b = headers::Builder::new()
            .add(headers::STREAM, &self.name)
            .add(headers::SUBJECT, subject)
            .add(headers::SEQUENCE, &seq.to_string())
            .add(headers::TIME_STAMP, &super::api::go_time(ts))
            .add(headers::LAST_SEQUENCE, &last.to_string());
        if rp.headers_only {
            b = b.add("Nats-Msg-Size", &payload.len().to_string());
        }
        let h = b.extend_from(hdrs).finish();
        let body: &[u8] = if rp.headers_only { b"" } else { payload };
        server.publish_in(&self.account, dest.as_bytes(), None, Some(&h), body);
    }
}

/// The stream's capture subscription handler.
struct Capture(Weak<Stream>);

impl InternalHandler for Capture {
    fn deliver(&self, msg: &Message<'_>) {
        if let Some(stream) = self.0.upgrade() {
            stream.on_publish(msg);
        }
    }
}

/// Answers `$JS.API.DIRECT.GET.<stream>[.<subject>]` for a stream with `allow_direct`.
struct DirectGet(Weak<Stream>);

impl InternalHandler for DirectGet {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(stream), Some(reply)) = (self.0.upgrade(), msg.reply) else {
            return;
        };
        let Some(server) = stream.server.upgrade() else {
            return;
        };
        let Some(js) = stream.js.upgrade() else {
            return;
        };
        js.count_api(false);
        let subject = String::from_utf8_lossy(msg.subject);
        super::api::direct_get(&server, &js, &subject, msg.payload, reply);
    }
}

/// Removes messages past `max_age` or their TTL, sleeping until the next one
/// is due (or a sooner TTL arrives). Ends when the stream goes away or no
/// longer expires anything.
async fn expire_loop(stream: Weak<Stream>) {
    loop {
        let (wait, wake) = {
            let Some(s) = stream.upgrade() else { return };
            let Some(wait) = s.expire_now() else { return };
            // Register for wake-ups before sleeping so none is missed.
            let s2 = s.clone();
            (wait, async move { s2.expiry_wake.notified().await })
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake => {}
        }
    }
}

/// `Nats-TTL`: `never`, a Go duration of at least 1s, or whole seconds.
/// Returns seconds (-1 = never expires).
pub fn parse_ttl(v: &str) -> Result<i64, JsError> {
    let invalid = || JsError::new(JsErrorKind::MessageTTLInvalid);
    if v.eq_ignore_ascii_case("never") {
        return Ok(-1);
    }
    if let Ok(d) = rnats_conf::parse_duration(v) {
        if d < Duration::from_secs(1) {
            return Err(invalid());
        }
        return Ok(d.as_secs() as i64);
    }
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(invalid)
}

/// Sends the acks that were waiting for an fsync as the store reports progress.
async fn ack_loop(stream: Weak<Stream>, mut synced: tokio::sync::watch::Receiver<u64>) {
    while synced.changed().await.is_ok() {
        let through = *synced.borrow_and_update();
        let Some(s) = stream.upgrade() else { return };
        s.release_acks(through);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("never").unwrap(), -1);
        assert_eq!(parse_ttl("1s").unwrap(), 1);
        assert_eq!(parse_ttl("1m30s").unwrap(), 90);
        assert_eq!(parse_ttl("5").unwrap(), 5);
        assert_eq!(parse_ttl("500ms").unwrap_err().err_code, 10165);
        assert_eq!(parse_ttl("garbage").unwrap_err().err_code, 10165);
        assert_eq!(parse_ttl("-3").unwrap_err().err_code, 10165);
    }
}
