//! What a consumer remembers between deliveries: where it is in the stream,
//! which delivered messages await an ack (and until when), what must be
//! redelivered, and the pull requests waiting for messages. Also the on-disk
//! form of that state for durables on file streams.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rnats_store::{smallfile, MsgStore, StoreIo};
use serde::{Deserialize, Serialize};

use super::super::types::{AckPolicy, ConsumerConfig, DeliverPolicy, PriorityPolicy};

/// A delivered message waiting for its ack.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Consumer sequence of the latest delivery.
    pub dseq: u64,
    /// When it is redelivered if not acked.
    pub deadline: Instant,
    /// When it was (last) sent: the ack metric's `ack_time` counts from here.
    pub sent: Instant,
}

/// A pull request waiting for messages.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub reply: Vec<u8>,
    /// Messages still wanted.
    pub batch: i64,
    /// Bytes still allowed (0 = no limit).
    pub max_bytes: i64,
    pub expires: Option<Instant>,
    pub no_wait: bool,
    pub heartbeat: Option<Duration>,
    pub next_heartbeat: Option<Instant>,
    /// Messages sent so far for this request.
    pub sent: i64,
    /// Group fields of a JSON request (see [`super::priority`]).
    pub priority: Option<super::priority::PriorityRequest>,
}

pub struct State {
    pub config: ConsumerConfig,
    /// The subjects this consumer delivers (empty = everything).
    pub filters: Vec<String>,
    /// Next stream sequence to look at for a first delivery.
    pub next_sseq: u64,
    /// Last consumer sequence used and the stream sequence it carried.
    pub dseq: u64,
    pub delivered_sseq: u64,
    pub ack_floor_d: u64,
    pub ack_floor_s: u64,
    pub pending: BTreeMap<u64, Pending>,
    /// Deliveries per stream sequence (only while pending or redelivering).
    pub redelivered: HashMap<u64, u64>,
    /// Stream sequences due for redelivery, oldest first.
    pub redeliver: BTreeSet<u64>,
    /// For `last_per_subject`: the sequences to deliver first.
    pub initial: VecDeque<u64>,
    pub waiting: VecDeque<PullRequest>,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub last_ack_at: Option<DateTime<Utc>>,
    /// Push: when the last message or heartbeat went out.
    pub last_push_at: Instant,
    /// Push flow control: the outstanding request's reply subject.
    pub fc_outstanding: Option<String>,
    pub bytes_since_fc: u64,
    /// Ephemerals: since when nobody has been using the consumer.
    pub idle_since: Option<Instant>,
    pub dirty: bool,
    pub last_save: Instant,
    /// `replay: original`: the stream time and wall time of the last first
    /// delivery, and when the next one is due.
    pub replay_last: Option<(i64, Instant)>,
    pub replay_due: Option<Instant>,
    /// `pinned_client` policy: the client served now (not persisted: a
    /// restart pins anew).
    pub pin: Option<super::priority::Pin>,
    /// Messages given up on at max_deliver while choosing the next message,
    /// for the pump to announce: (stream seq, deliveries).
    pub given_up: Vec<(u64, u64)>,
}

/// The persisted form of a consumer's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Persisted {
    pub next_sseq: u64,
    pub dseq: u64,
    pub delivered_sseq: u64,
    pub ack_floor_d: u64,
    pub ack_floor_s: u64,
    /// (stream seq, consumer seq, deliveries)
    pub pending: Vec<(u64, u64, u64)>,
}

/// `meta.json` of a durable.
#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub created: DateTime<Utc>,
    pub config: ConsumerConfig,
}

impl State {
    pub fn new(config: ConsumerConfig) -> State {
        let filters = filters_of(&config);
        State {
            config,
            filters,
            next_sseq: 1,
            dseq: 0,
            delivered_sseq: 0,
            ack_floor_d: 0,
            ack_floor_s: 0,
            pending: BTreeMap::new(),
            redelivered: HashMap::new(),
            redeliver: BTreeSet::new(),
            initial: VecDeque::new(),
            waiting: VecDeque::new(),
            last_delivered_at: None,
            last_ack_at: None,
            last_push_at: Instant::now(),
            fc_outstanding: None,
            bytes_since_fc: 0,
            idle_since: Some(Instant::now()),
            dirty: false,
            last_save: Instant::now(),
            replay_last: None,
            replay_due: None,
            pin: None,
            given_up: Vec::new(),
        }
    }

    pub fn update_config(&mut self, config: ConsumerConfig) {
        if config.priority_policy != PriorityPolicy::PinnedClient {
            self.pin = None;
        }
        self.filters = filters_of(&config);
        self.config = config;
        self.dirty = true;
    }

    /// Where a new consumer starts, from its deliver policy.
    pub fn set_start(&mut self, store: &std::sync::Arc<dyn MsgStore>) {
        let st = store.state();
        let first = st.first_seq.max(1);
        self.next_sseq = match self.config.deliver_policy {
            DeliverPolicy::All => first,
            DeliverPolicy::New => st.last_seq + 1,
            DeliverPolicy::ByStartSequence => self.config.opt_start_seq.max(first),
            DeliverPolicy::Last => {
                let last = self
                    .filter_list()
                    .iter()
                    .filter_map(|f| store.load_last(f).ok().map(|m| m.seq))
                    .max();
                last.unwrap_or(st.last_seq + 1)
            }
            DeliverPolicy::ByStartTime => {
                let since = self
                    .config
                    .opt_start_time
                    .and_then(|t| t.timestamp_nanos_opt())
                    .unwrap_or(0);
                let mut seq = first;
                loop {
                    match store.load_next(">", seq) {
                        Ok(m) if m.ts >= since => break m.seq,
                        Ok(m) => seq = m.seq + 1,
                        Err(_) => break st.last_seq + 1,
                    }
                }
            }
            DeliverPolicy::LastPerSubject => {
                let mut seqs: Vec<u64> = self
                    .filter_list()
                    .iter()
                    .flat_map(|f| store.subjects_state(f).into_values().map(|s| s.last))
                    .collect();
                seqs.sort_unstable();
                seqs.dedup();
                self.initial = seqs.into();
                st.last_seq + 1
            }
        };
        // Nothing before the start is owed: the ack floor sits just below it.
        self.delivered_sseq = self.next_sseq.saturating_sub(1);
        self.ack_floor_s = self.delivered_sseq;
        if let Some(&first_initial) = self.initial.front() {
            self.delivered_sseq = first_initial.saturating_sub(1);
            self.ack_floor_s = self.delivered_sseq;
        }
    }

    pub fn restore(&mut self, p: Persisted) {
        self.next_sseq = p.next_sseq.max(1);
        self.dseq = p.dseq;
        self.delivered_sseq = p.delivered_sseq;
        self.ack_floor_d = p.ack_floor_d;
        self.ack_floor_s = p.ack_floor_s;
        // Unacked messages are redelivered after ack_wait, as after any delivery.
        let sent = Instant::now();
        let deadline = sent + self.ack_wait();
        for (sseq, dseq, deliveries) in p.pending {
            self.pending.insert(
                sseq,
                Pending {
                    dseq,
                    deadline,
                    sent,
                },
            );
            self.redelivered.insert(sseq, deliveries);
        }
    }

    pub fn persisted(&self) -> Persisted {
        Persisted {
            next_sseq: self.next_sseq,
            dseq: self.dseq,
            delivered_sseq: self.delivered_sseq,
            ack_floor_d: self.ack_floor_d,
            ack_floor_s: self.ack_floor_s,
            pending: self
                .pending
                .iter()
                .map(|(s, p)| (*s, p.dseq, self.redelivered.get(s).copied().unwrap_or(1)))
                .collect(),
        }
    }

    /// The filters as a list; `>` when the consumer takes everything.
    pub fn filter_list(&self) -> Vec<String> {
        if self.filters.is_empty() {
            vec![">".to_string()]
        } else {
            self.filters.clone()
        }
    }

    pub fn matches(&self, subject: &str) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| rnats_subject::matches(f.as_bytes(), subject.as_bytes()))
    }

    pub fn ack_wait(&self) -> Duration {
        Duration::from_nanos(self.config.ack_wait.max(0) as u64)
    }

    /// The wait before the `n`th redelivery (backoff list, else ack_wait).
    pub fn ack_wait_for(&self, deliveries: u64) -> Duration {
        if self.config.backoff.is_empty() {
            return self.ack_wait();
        }
        let i = (deliveries.saturating_sub(1) as usize).min(self.config.backoff.len() - 1);
        Duration::from_nanos(self.config.backoff[i].max(0) as u64)
    }

    /// Messages this consumer has yet to deliver for the first time.
    pub fn num_pending(&self, store: &std::sync::Arc<dyn MsgStore>) -> u64 {
        let start = self.next_sseq;
        let mut n: u64 = self
            .filter_list()
            .iter()
            .map(|f| store.num_pending(f, start))
            .sum();
        n += self.initial.len() as u64;
        n
    }

    /// Drops pending entries for messages no longer in the stream.
    pub fn prune(&mut self, store: &std::sync::Arc<dyn MsgStore>) {
        let first = store.state().first_seq;
        let gone: Vec<u64> = self.pending.range(..first).map(|(s, _)| *s).collect();
        for s in gone {
            self.pending.remove(&s);
            self.redelivered.remove(&s);
            self.redeliver.remove(&s);
        }
        if self.next_sseq < first {
            self.next_sseq = first;
        }
        self.advance_floor();
    }

    /// Moves the ack floor up to just below the oldest unacked delivery.
    pub fn advance_floor(&mut self) {
        match self.pending.iter().next() {
            Some((sseq, p)) => {
                self.ack_floor_s = sseq - 1;
                self.ack_floor_d = p.dseq - 1;
            }
            None => {
                self.ack_floor_s = self.delivered_sseq;
                self.ack_floor_d = self.dseq;
            }
        }
    }

    /// Whether stream sequence `seq` no longer needs an ack from this consumer.
    pub fn is_acked(&self, seq: u64) -> bool {
        if self.config.ack_policy == AckPolicy::None {
            return seq <= self.delivered_sseq;
        }
        seq <= self.ack_floor_s || (seq <= self.delivered_sseq && !self.pending.contains_key(&seq))
    }

    /// When a pause set by `pause_until` ends, if it is in the future.
    pub fn paused_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.config.pause_until.filter(|t| *t > now)
    }
}

fn filters_of(config: &ConsumerConfig) -> Vec<String> {
    let mut f: Vec<String> = config.filter_subjects.clone();
    if !config.filter_subject.is_empty() {
        f.push(config.filter_subject.clone());
    }
    f.retain(|s| s != ">");
    f
}

/// Writes `meta.json` and `state.json` atomically (tmp + rename), each with a checksum
/// trailer, through `io` (the real disk, or the power-cut simulator in tests). With `sync`
/// the new state is durable when this returns: only then may acks it covers be confirmed.
pub fn write(
    io: &dyn StoreIo,
    dir: &Path,
    created: &DateTime<Utc>,
    config: &ConsumerConfig,
    state: &Persisted,
    sync: bool,
) -> std::io::Result<()> {
    io.create_dir_all(dir)?;
    let meta = Meta {
        created: *created,
        config: config.clone(),
    };
    let meta_path = dir.join("meta.json");
    let body =
        smallfile::encode_checked(&serde_json::to_vec(&meta).map_err(std::io::Error::other)?);
    if smallfile::read_file(io, &meta_path).ok().as_deref() != Some(&body[..]) {
        smallfile::replace_atomic(io, &meta_path, &body, sync)?;
    }
    // The previous good state stays beside the new one: if the new file is
    // ever damaged, the consumer resumes from the older state (redelivering
    // some messages) rather than from its start policy (which could skip).
    let state_path = dir.join(STATE);
    if io.open(&state_path, false).is_ok() {
        io.rename(&state_path, &dir.join(STATE_PREV))?;
    }
    let body =
        smallfile::encode_checked(&serde_json::to_vec(state).map_err(std::io::Error::other)?);
    smallfile::replace_atomic(io, &state_path, &body, sync)
}

const STATE: &str = "state.json";
const STATE_PREV: &str = "state.prev.json";

/// Decodes a state file's bytes: checksum (when present), then JSON.
pub fn decode_state(data: &[u8]) -> Result<Persisted, String> {
    let body = smallfile::decode_checked(data).map_err(|e| e.to_string())?;
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// What [`read`] found.
pub struct Loaded {
    pub meta: Meta,
    /// `None` when neither the state nor the previous state is usable.
    pub state: Option<Persisted>,
    /// Why `state.json` was not used, when it exists but is damaged.
    pub damaged: Option<String>,
}

/// Reads a durable's files; the state is `None` when it is missing or damaged
/// (the consumer then restarts from its previous state, or its policy).
pub fn read(io: &dyn StoreIo, dir: &Path) -> Result<Loaded, String> {
    let meta: Meta = smallfile::read_file(io, &dir.join("meta.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| {
            let body = smallfile::decode_checked(&b).map_err(|e| e.to_string())?;
            serde_json::from_slice(body).map_err(|e| e.to_string())
        })?;
    let parse = |name: &str| -> Result<Option<Persisted>, String> {
        match smallfile::read_file(io, &dir.join(name)) {
            Ok(b) => decode_state(&b).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    };
    let (state, damaged) = match parse(STATE) {
        Ok(Some(s)) => (Some(s), None),
        current => {
            let damaged = current.err();
            let prev = parse(STATE_PREV).ok().flatten();
            if let Some(why) = &damaged {
                tracing::warn!(
                    "Consumer state in {} is damaged ({why}); resuming from {}",
                    dir.display(),
                    if prev.is_some() {
                        "the previous saved state"
                    } else {
                        "its deliver policy"
                    }
                );
            }
            (prev, damaged)
        }
    };
    Ok(Loaded {
        meta,
        state,
        damaged,
    })
}

#[cfg(test)]
#[path = "state_powercut_tests.rs"]
mod powercut_tests;
