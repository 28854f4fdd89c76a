//! A JetStream consumer: a cursor over a stream with delivery and
//! acknowledgement state, shared by pull and push delivery.
//!
//! - [`state`]: what a consumer remembers (delivered, ack floor, pending,
//!   redeliveries) and how it is persisted for durables on file streams.
//! - [`deliver`]: choosing the next message and sending it (pull requests,
//!   push to a deliver subject, status messages).
//! - [`ack`]: the `$JS.ACK` protocol (ack, nak, term, in-progress, next).
//! - [`priority`]: priority groups (overflow, pinned client, prioritized).
//! - [`reset`]: `$JS.API.CONSUMER.RESET` (start over at a sequence).
//! - [`timers`]: the one task per consumer that sleeps until the next
//!   deadline (ack wait, request expiry, heartbeat) and otherwise costs nothing.
//!
//! Delivery runs in whoever caused it (a publisher storing a message, a
//! client's pull request or ack), under the consumer's lock only while
//! choosing messages; frames are published after the lock is released.

pub mod ack;
pub mod advise;
pub mod deliver;
#[cfg(test)]
mod model_tests;
pub mod priority;
pub mod reset;
pub mod state;
pub mod timers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::stream::Stream;
use super::types::{
    zero_time, AckPolicy, ConsumerConfig, ConsumerInfo, PriorityGroupState, SequenceInfo,
};
use super::versioning;
use rnats_core::server::ServerState;
use rnats_core::subscription::{InternalHandler, SubRef};
use state::State;

pub struct Consumer {
    pub name: String,
    pub stream_name: String,
    pub created: DateTime<Utc>,
    stream: Weak<Stream>,
    server: Weak<ServerState>,
    /// The stream's account: acks, pulls, deliveries and advisories use its
    /// subject space.
    account: Arc<rnats_core::account::Account>,
    state: Mutex<State>,
    /// Wakes the timer task to recompute its next deadline.
    wake: Notify,
    subs: Mutex<Vec<SubRef>>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Where a durable on a file stream keeps its config and state.
    dir: Option<PathBuf>,
    deleted: AtomicBool,
    /// Persist state before confirming acks (`sync_interval: always`).
    sync_always: bool,
    /// Reply subjects of confirmed acks waiting for the next save.
    confirmations: Mutex<Vec<Vec<u8>>>,
    /// A save-and-confirm pass is running.
    saving: AtomicBool,
    /// Serialises state writes (they share a temporary file name).
    save_lock: Mutex<()>,
    /// When an announced pause ends (its end is announced too).
    pause_ends: Mutex<Option<DateTime<Utc>>>,
}

/// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
struct NextHandler(Weak<Consumer>);

impl InternalHandler for NextHandler {
    fn deliver(&self, msg: &rnats_core::router::Message<'_>) {
        let (Some(c), Some(reply)) = (self.0.upgrade(), msg.reply) else {
            return;
        };
        if let Err((code, text)) = c.add_pull_request(reply, msg.payload) {
            if let Some(server) = c.server.upgrade() {
                deliver::send_status(&server, &c.account, reply, code, &text, &[]);
            }
        }
    }
}

impl rnats_core::server::InterestWatcher for Consumer {
    fn interest_appeared(&self) {
        self.pump();
    }
}

impl Consumer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        server: Weak<ServerState>,
        stream: &Arc<Stream>,
        name: String,
        config: ConsumerConfig,
        created: DateTime<Utc>,
        dir: Option<PathBuf>,
        restored: Option<state::Persisted>,
        sync_always: bool,
    ) -> Arc<Consumer> {
        let mut st = State::new(config);
        match restored {
            Some(p) => st.restore(p),
            None => st.set_start(&stream.store),
        }
        Arc::new(Consumer {
            name,
            stream_name: stream.name.clone(),
            created,
            stream: Arc::downgrade(stream),
            server,
            account: stream.account.clone(),
            state: Mutex::new(st),
            wake: Notify::new(),
            subs: Mutex::new(Vec::new()),
            task: Mutex::new(None),
            dir,
            deleted: AtomicBool::new(false),
            sync_always,
            confirmations: Mutex::new(Vec::new()),
            saving: AtomicBool::new(false),
            save_lock: Mutex::new(()),
            pause_ends: Mutex::new(None),
        })
    }

    /// Subscribes to acks (and flow-control replies) and starts the timer task.
    pub fn start(self: &Arc<Self>) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let handler: Arc<dyn InternalHandler> = Arc::new(ack::AckHandler(Arc::downgrade(self)));
        let mut subs = self.subs.lock();
        let ack_subject = format!("$JS.ACK.{}.{}.>", self.stream_name, self.name);
        if let Ok(s) =
            server.subscribe_internal_in(&self.account, &ack_subject, None, handler.clone())
        {
            subs.push(s);
        }
        let fc_subject = format!("$JS.FC.{}.{}.>", self.stream_name, self.name);
        if let Ok(s) = server.subscribe_internal_in(&self.account, &fc_subject, None, handler) {
            subs.push(s);
        }
        let next_subject = format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
            self.stream_name, self.name
        );
        let next: Arc<dyn InternalHandler> = Arc::new(NextHandler(Arc::downgrade(self)));
        if let Ok(s) = server.subscribe_internal_in(&self.account, &next_subject, None, next) {
            subs.push(s);
        }
        let reset_subject = format!("$JS.API.CONSUMER.RESET.{}.{}", self.stream_name, self.name);
        let reset: Arc<dyn InternalHandler> = Arc::new(reset::ResetHandler(Arc::downgrade(self)));
        if let Ok(s) = server.subscribe_internal_in(&self.account, &reset_subject, None, reset) {
            subs.push(s);
        }
        drop(subs);
        let deliver = self.state.lock().config.deliver_subject.clone();
        if !deliver.is_empty() {
            let me: Arc<dyn rnats_core::server::InterestWatcher> = self.clone();
            server.watch_interest(&deliver, Arc::downgrade(&me));
        }
        *self.task.lock() = Some(tokio::spawn(timers::run(Arc::downgrade(self))));
    }

    /// The state as persisted (delivered, ack floor, pending), for snapshots.
    pub(crate) fn persisted_state(&self) -> state::Persisted {
        self.state.lock().persisted()
    }

    pub fn config(&self) -> ConsumerConfig {
        self.state.lock().config.clone()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Replaces the configuration (an allowed update).
    pub fn set_config(&self, config: ConsumerConfig) {
        self.state.lock().update_config(config);
        self.save();
        self.wake.notify_one();
        self.pump();
    }

    /// Stops delivery and timers; `notify_waiting` tells pull requesters.
    pub fn stop(&self, notify_waiting: bool) {
        if self.deleted.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(server) = self.server.upgrade() {
            for s in self.subs.lock().drain(..) {
                server.remove_subscription(&s);
            }
            if notify_waiting {
                let waiting: Vec<_> = self.state.lock().waiting.drain(..).collect();
                for req in waiting {
                    let to = &req.reply;
                    deliver::send_status(&server, &self.account, to, 409, "Consumer Deleted", &[]);
                }
            }
        }
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
    }

    /// Stops and removes persisted state (announced with `CONSUMER.DELETED`).
    pub fn delete(&self) {
        let was_running = !self.deleted.load(Ordering::Acquire);
        self.stop(true);
        if was_running {
            self.advise_action(crate::advisories::Action::Delete);
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Writes the consumer's state for a durable on a file stream.
    pub fn save(&self) {
        let Some(dir) = &self.dir else { return };
        let _one_at_a_time = self.save_lock.lock();
        let (persisted, config) = {
            let mut st = self.state.lock();
            st.dirty = false;
            st.last_save = std::time::Instant::now();
            (st.persisted(), st.config.clone())
        };
        if let Err(e) = state::write(
            &rnats_store::RealIo,
            dir,
            &self.created,
            &config,
            &persisted,
            self.sync_always,
        ) {
            tracing::error!(
                "Could not save state of consumer '{} > {}': {e}",
                self.stream_name,
                self.name
            );
        }
    }

    /// The API's view of the consumer.
    pub fn info(&self) -> ConsumerInfo {
        let server_name = self.server.upgrade().map(|s| s.server_name.clone());
        let Some(stream) = self.stream.upgrade() else {
            return self.info_with(0, server_name);
        };
        let mut st = self.state.lock();
        st.prune(&stream.store);
        // As nats-server: requests nobody listens to any more are dropped
        // (and not counted in `num_waiting`).
        st.waiting.retain(|r| self.account.has_interest(&r.reply));
        let pending = st.num_pending(&stream.store);
        drop(st);
        self.info_with(pending, server_name)
    }

    /// `info` with this server's API level and version in the config's
    /// metadata, as create, info and reset responses show it.
    pub fn info_full(&self) -> ConsumerInfo {
        let mut info = self.info();
        if let Some(cfg) = info.config.as_mut() {
            let required = versioning::consumer_required_level(cfg);
            versioning::set_metadata(&mut cfg.metadata, required, true);
        }
        info
    }

    fn info_with(&self, num_pending: u64, _server_name: Option<String>) -> ConsumerInfo {
        let st = self.state.lock();
        let now = Utc::now();
        let paused = st.paused_until(now).is_some();
        ConsumerInfo {
            stream: self.stream_name.clone(),
            name: self.name.clone(),
            created: self.created,
            config: Some({
                // The required level is stored with the config in nats-server,
                // so every view (lists, /jsz) shows it.
                let mut cfg = st.config.clone();
                let required = versioning::consumer_required_level(&cfg);
                versioning::set_metadata(&mut cfg.metadata, required, false);
                cfg
            }),
            delivered: SequenceInfo {
                consumer_seq: st.dseq,
                stream_seq: st.delivered_sseq,
                last_active: st.last_delivered_at,
            },
            ack_floor: SequenceInfo {
                consumer_seq: st.ack_floor_d,
                stream_seq: st.ack_floor_s,
                last_active: st.last_ack_at,
            },
            num_ack_pending: if st.config.ack_policy == AckPolicy::None {
                0
            } else {
                st.pending.len() as i64
            },
            num_redelivered: st.redelivered.values().filter(|c| **c > 1).count() as i64,
            num_waiting: st.waiting.len() as i64,
            num_pending,
            // A standalone nats-server sends no cluster block for consumers.
            cluster: None,
            push_bound: !st.config.is_pull() && self.push_interest(&st.config),
            paused,
            pause_remaining: st
                .paused_until(now)
                .map(|t| (t - now).num_nanoseconds().unwrap_or(0))
                .unwrap_or(0),
            ts: now,
            // nats-server reports the first group only, with the current pin.
            priority_groups: st
                .config
                .priority_groups
                .first()
                .map(|g| PriorityGroupState {
                    group: g.clone(),
                    pinned_client_id: st.pin.as_ref().map(|p| p.id.clone()).unwrap_or_default(),
                    pinned_ts: st.pin.as_ref().map_or_else(zero_time, |p| p.since),
                })
                .into_iter()
                .collect(),
        }
    }

    /// Whether anyone listens on a push consumer's deliver subject.
    fn push_interest(&self, config: &ConsumerConfig) -> bool {
        self.account
            .has_live_interest(config.deliver_subject.as_bytes())
    }

    /// Whether every message up to `seq` that this consumer would deliver has
    /// been acknowledged (interest and work-queue retention).
    pub fn has_acked(&self, seq: u64, subject: &str) -> bool {
        let st = self.state.lock();
        if !st.matches(subject) {
            return true;
        }
        st.is_acked(seq)
    }

    pub fn is_durable_on_disk(&self) -> bool {
        self.dir.is_some()
    }

    /// Whether the consumer wants `subject` at all.
    pub fn wants(&self, subject: &str) -> bool {
        self.state.lock().matches(subject)
    }
}
