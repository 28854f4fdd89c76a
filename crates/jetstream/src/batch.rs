//! Atomic batch publish (ADR-50, nats-server 2.12): on a stream with
//! `allow_atomic`, a publisher sends messages with `Nats-Batch-Id` and
//! `Nats-Batch-Sequence` (1, 2, ...); the one with `Nats-Batch-Commit: 1`
//! (stored) or `eob` (end of batch, not stored) commits them all or none.
//!
//! Messages are staged in memory until the commit (a crash before it loses
//! the batch, which the publisher sees as an incomplete batch and resends).
//! At the commit every message is checked against the stream as it will be
//! when the earlier ones are in (expected sequences, duplicates, counter
//! totals), with the stream lock held; only then is anything stored, still
//! under that lock, so no other publish interleaves. Limits (size 1,000,
//! 50 open batches per stream, 1,000 per server, 10 s of inactivity) and
//! every error are nats-server's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::counter;
use crate::errors::{JsError, JsErrorKind};
use crate::headers;
use crate::schedule;
use crate::stream::{self, Inner, Origin, Stored, Stream};
use crate::versioning::API_LEVEL;

pub const BATCH_ID: &str = "Nats-Batch-Id";
pub const BATCH_SEQ: &str = "Nats-Batch-Sequence";
pub const BATCH_COMMIT: &str = "Nats-Batch-Commit";
pub const REQUIRED_API_LEVEL: &str = "Nats-Required-Api-Level";

const MAX_BATCH_SIZE: u64 = 1000;
const MAX_OPEN_PER_STREAM: usize = 50;
const MAX_OPEN_TOTAL: i64 = 1000;
const INACTIVITY: Duration = Duration::from_secs(10);
const MAX_ID_LEN: usize = 64;

pub const ABANDONED: &str = "$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED";
pub const ABANDONED_TYPE: &str = "io.nats.jetstream.advisory.v1.stream_batch_abandoned";

/// Open batches on this server, across streams and accounts.
static OPEN_TOTAL: AtomicI64 = AtomicI64::new(0);

/// One staged message.
#[derive(Clone)]
pub struct Msg {
    pub subject: String,
    pub hdrs: Vec<u8>,
    pub payload: Vec<u8>,
}

struct Open {
    msgs: Vec<Msg>,
    last_active: Instant,
}

/// The open batches of one stream.
#[derive(Default)]
pub struct Batches {
    open: Mutex<HashMap<String, Open>>,
}

impl Drop for Batches {
    fn drop(&mut self) {
        OPEN_TOTAL.fetch_sub(self.open.get_mut().len() as i64, Ordering::Relaxed);
    }
}

/// Why a batch was dropped, as the advisory says.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Abandoned {
    Timeout,
    Large,
    Incomplete,
    Unsupported,
}

/// What a batch message led to.
pub enum Outcome {
    /// Staged; the publisher gets an empty reply.
    Staged,
    /// Committed: the stored messages, in order.
    Committed(Vec<(Msg, Stored)>),
}

/// `io.nats.jetstream.advisory.v1.stream_batch_abandoned`.
#[derive(Serialize)]
struct AbandonedAdvisory<'a> {
    stream: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    batch: &'a str,
    reason: Abandoned,
}

fn err(kind: JsErrorKind) -> JsError {
    JsError::new(kind)
}

fn too_large() -> JsError {
    err(JsErrorKind::AtomicPublishTooLargeBatchErrF).arg("size", &MAX_BATCH_SIZE.to_string())
}

impl Batches {
    fn remove(&self, open: &mut HashMap<String, Open>, id: &str) -> Option<Open> {
        let gone = open.remove(id);
        if gone.is_some() {
            OPEN_TOTAL.fetch_sub(1, Ordering::Relaxed);
        }
        gone
    }

    /// Drops batches idle for longer than the limit; their ids.
    fn sweep(&self, open: &mut HashMap<String, Open>, now: Instant) -> Vec<String> {
        let stale: Vec<String> = open
            .iter()
            .filter(|(_, b)| now.duration_since(b.last_active) > INACTIVITY)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            self.remove(open, id);
        }
        stale
    }
}

/// Handles one message of batch `id` for `stream` (its subject already
/// transformed). Errors are for the publisher; the batch is gone after one.
pub fn on_message(
    stream: &Stream,
    id: &str,
    subject: &str,
    hdrs: &[u8],
    payload: &[u8],
) -> Result<Outcome, JsError> {
    let cfg = stream.config();
    if cfg.sealed {
        return Err(err(JsErrorKind::StreamSealed));
    }
    if cfg.max_msg_size >= 0 && hdrs.len() + payload.len() > cfg.max_msg_size as usize {
        return Err(err(JsErrorKind::StreamMessageExceedsMaximum));
    }
    if !cfg.allow_atomic {
        return Err(err(JsErrorKind::AtomicPublishDisabled));
    }
    if id.len() > MAX_ID_LEN {
        return Err(err(JsErrorKind::AtomicPublishInvalidBatchID));
    }
    let seq: u64 = headers::get_str(hdrs, BATCH_SEQ)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| err(JsErrorKind::AtomicPublishMissingSeq))?;
    let commit = headers::get_str(hdrs, BATCH_COMMIT);
    let eob = commit == Some("eob");
    let bad_commit = commit.is_some_and(|c| c != "eob" && c != "1");
    // The end-of-batch marker does not count toward the size.
    let size = seq - u64::from(eob);

    let batches = stream.batches();
    let mut open = batches.open.lock();
    for stale in batches.sweep(&mut open, Instant::now()) {
        advise(stream, &stale, Abandoned::Timeout);
    }
    if !open.contains_key(id) {
        if seq != 1 {
            return Err(if size > MAX_BATCH_SIZE {
                too_large()
            } else {
                err(JsErrorKind::AtomicPublishIncompleteBatch)
            });
        }
        if open.len() + 1 > MAX_OPEN_PER_STREAM {
            return Err(err(JsErrorKind::AtomicPublishTooManyInflight));
        }
        if OPEN_TOTAL.fetch_add(1, Ordering::Relaxed) + 1 > MAX_OPEN_TOTAL {
            OPEN_TOTAL.fetch_sub(1, Ordering::Relaxed);
            return Err(err(JsErrorKind::AtomicPublishTooManyInflight));
        }
        open.insert(
            id.to_string(),
            Open {
                msgs: Vec::new(),
                last_active: Instant::now(),
            },
        );
    }
    let abandon = |open: &mut HashMap<String, Open>, why: Option<Abandoned>, e: JsError| {
        batches.remove(open, id);
        if let Some(why) = why {
            advise(stream, id, why);
        }
        Err(e)
    };
    if bad_commit {
        return abandon(
            &mut open,
            None,
            err(JsErrorKind::AtomicPublishInvalidBatchCommit),
        );
    }
    // The required API level can refuse the batch; the header is not stored.
    let mut hdrs = hdrs.to_vec();
    if let Some(level) = headers::get_str(&hdrs, REQUIRED_API_LEVEL) {
        if level.parse::<i64>().map_or(true, |l| l > API_LEVEL) {
            let e = err(JsErrorKind::RequiredApiLevel);
            return abandon(&mut open, Some(Abandoned::Unsupported), e);
        }
        hdrs = headers::remove(&hdrs, REQUIRED_API_LEVEL);
    }
    let staged = open.get(id).map_or(0, |b| b.msgs.len() as u64);
    if seq != staged + 1 || (seq == 1 && eob) {
        let e = err(JsErrorKind::AtomicPublishIncompleteBatch);
        return abandon(&mut open, Some(Abandoned::Incomplete), e);
    }
    if size > MAX_BATCH_SIZE {
        return abandon(&mut open, Some(Abandoned::Large), too_large());
    }
    let Some(batch) = open.get_mut(id) else {
        return Err(err(JsErrorKind::AtomicPublishIncompleteBatch));
    };
    batch.last_active = Instant::now();
    if !eob {
        batch.msgs.push(Msg {
            subject: subject.to_string(),
            hdrs,
            payload: payload.to_vec(),
        });
    }
    if commit.is_none() {
        return Ok(Outcome::Staged);
    }
    let Some(Open { mut msgs, .. }) = batches.remove(&mut open, id) else {
        return Err(err(JsErrorKind::AtomicPublishIncompleteBatch));
    };
    drop(open);
    // A batch ended by `eob` gets the commit header on its last message.
    if let (true, Some(last)) = (eob, msgs.last_mut()) {
        last.hdrs = headers::set(&last.hdrs, BATCH_COMMIT, "1");
    }
    commit_batch(stream, msgs).map(Outcome::Committed)
}

/// Checks the whole batch, then stores it, with the stream lock held.
fn commit_batch(stream: &Stream, msgs: Vec<Msg>) -> Result<Vec<(Msg, Stored)>, JsError> {
    for m in &msgs {
        stream.charge_limits(&m.subject, &m.hdrs, &m.payload)?;
    }
    let mut inner = stream.lock_inner();
    let checked = check(stream, &mut inner, msgs)?;
    let mut out = Vec::with_capacity(checked.len());
    for m in checked {
        // Checked above: a failure here is the store's (disk full, closed).
        let stored =
            stream.apply_locked(&mut inner, &m.subject, &m.hdrs, &m.payload, Origin::Batch)?;
        out.push((m, stored));
    }
    Ok(out)
}

/// A client's checks for each message as if the earlier ones were stored;
/// the messages with counters computed.
fn check(stream: &Stream, inner: &mut Inner, msgs: Vec<Msg>) -> Result<Vec<Msg>, JsError> {
    let cfg = inner.config().clone();
    let last_seq = stream.store.state().last_seq;
    let mut ids: HashSet<String> = HashSet::new();
    let mut written: HashSet<String> = HashSet::new();
    let mut expected_cache: HashMap<String, u64> = HashMap::new();
    // The latest counter message per subject within the batch.
    let mut totals: HashMap<String, (Vec<u8>, Vec<u8>)> = HashMap::new();
    let mut scheduled: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::with_capacity(msgs.len());
    for (i, mut m) in msgs.into_iter().enumerate() {
        let h = &m.hdrs;
        if headers::get(h, headers::EXPECTED_LAST_MSG_ID).is_some() {
            return Err(err(JsErrorKind::AtomicPublishUnsupportedHeaderBatch)
                .arg("header", headers::EXPECTED_LAST_MSG_ID));
        }
        let incr = counter::increment(h)?;
        if incr.is_some() {
            counter::check_publish(h, &m.payload, cfg.allow_msg_counter)?;
        }
        if headers::get_str(h, headers::EXPECTED_STREAM).is_some_and(|s| s != stream.name) {
            return Err(err(JsErrorKind::StreamNotMatch));
        }
        if let Some(v) = headers::get_str(h, headers::TTL) {
            if !cfg.allow_msg_ttl {
                return Err(err(JsErrorKind::MessageTTLDisabled));
            }
            stream::parse_ttl(v)?;
        }
        let sched = schedule::check_batch_msg(stream, &mut scheduled, &cfg, &m.subject, h)?;
        if let Some(hs) = sched {
            m.hdrs = hs;
        }
        let h = &m.hdrs;
        if let Some(r) = headers::get_str(h, headers::ROLLUP) {
            if !cfg.allow_rollup_hdrs {
                return Err(
                    err(JsErrorKind::StreamRollupFailedF).arg("err", "rollup not permitted")
                );
            }
            if r != "sub" && r != "all" {
                return Err(err(JsErrorKind::StreamRollupFailedF)
                    .arg("err", &format!("rollup value invalid: {r:?}")));
            }
        }
        if let Some(id) = headers::get_str(h, headers::MSG_ID).filter(|s| !s.is_empty()) {
            if !ids.insert(id.to_string()) || inner.has_msg_id(id) {
                return Err(err(JsErrorKind::AtomicPublishContainsDuplicateMessage));
            }
        }
        if headers::get(h, headers::STREAM_SOURCE).is_some() {
            return Err(err(JsErrorKind::MessageSourceHdrNotAllowed));
        }
        if incr.is_none() && cfg.allow_msg_counter {
            return Err(err(JsErrorKind::MessageIncrMissing));
        }
        if let Some(incr) = incr.filter(|_| cfg.allow_msg_counter) {
            let last = match totals.get(&m.subject) {
                Some((lh, lp)) => Some((lh.clone(), lp.clone())),
                None => stream
                    .store
                    .load_last(&m.subject)
                    .ok()
                    .map(|s| (s.headers.to_vec(), s.payload.to_vec())),
            };
            let c = counter::apply(
                last.as_ref().map(|(a, b)| (&a[..], &b[..])),
                &m.subject,
                &m.hdrs,
                &m.payload,
                incr,
            )?;
            m.hdrs = c.hdrs;
            m.payload = c.payload;
            totals.insert(m.subject.clone(), (m.hdrs.clone(), m.payload.clone()));
        }
        let h = &m.hdrs;
        // Only the first message may name the stream's last sequence.
        if let Some(v) = headers::get_str(h, headers::EXPECTED_LAST_SEQ) {
            let now_last = last_seq + i as u64;
            if v.parse::<u64>().ok() != Some(now_last) {
                return Err(
                    err(JsErrorKind::StreamWrongLastSequenceErrF).arg("seq", &now_last.to_string())
                );
            }
            if i > 0 {
                return Err(err(JsErrorKind::StreamWrongLastSequenceConstant));
            }
        }
        let subj_seq = headers::get_str(h, headers::EXPECTED_LAST_SUBJ_SEQ);
        let for_subject = headers::get_str(h, headers::EXPECTED_LAST_SUBJ_SEQ_SUBJECT);
        match (subj_seq, for_subject) {
            (Some(v), f) => {
                let subj = f.unwrap_or(&m.subject).to_string();
                // Written earlier in this batch: the check could not be right.
                if written.contains(&subj) {
                    return Err(err(JsErrorKind::StreamWrongLastSequenceConstant));
                }
                let last = *expected_cache
                    .entry(subj.clone())
                    .or_insert_with(|| stream.store.load_last(&subj).map(|s| s.seq).unwrap_or(0));
                if v.parse::<u64>().ok() != Some(last) {
                    return Err(
                        err(JsErrorKind::StreamWrongLastSequenceErrF).arg("seq", &last.to_string())
                    );
                }
            }
            (None, Some(_)) => {
                return Err(err(JsErrorKind::StreamExpectedLastSeqPerSubjectInvalid))
            }
            (None, None) => {}
        }
        written.insert(m.subject.clone());
        out.push(m);
    }
    Ok(out)
}

/// `$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.<stream>`.
fn advise(stream: &Stream, batch: &str, reason: Abandoned) {
    let Some(server) = stream.server() else {
        return;
    };
    let subject = format!("{ABANDONED}.{}", stream.name);
    crate::advisories::publish(
        &server,
        &stream.account,
        &subject,
        ABANDONED_TYPE,
        |domain| AbandonedAdvisory {
            stream: &stream.name,
            domain,
            batch,
            reason,
        },
    );
}

impl Stream {
    /// A publish carrying `Nats-Batch-Id`: staged, committed, or refused;
    /// the publisher gets an empty reply, the commit's PubAck, or the error.
    pub(crate) fn on_batch_publish(
        &self,
        id: &str,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        reply: Option<&[u8]>,
    ) {
        let last_before = self.store.state().last_seq;
        let outcome = on_message(self, id, subject, hdrs, payload);
        if let Ok(Outcome::Committed(stored)) = &outcome {
            let republish = self.config().republish;
            let mut before = last_before;
            for (m, s) in stored {
                if let Some(rp) = &republish {
                    self.republish(rp, &m.subject, &m.hdrs, &m.payload, s.seq, before);
                }
                self.after_store(s.seq, &m.subject);
                before = s.seq;
            }
        }
        let Some(reply) = reply else {
            return;
        };
        let cfg = self.config();
        if cfg.no_ack {
            return;
        }
        let server = self.server();
        match outcome {
            Ok(Outcome::Staged) => {
                if let Some(server) = server {
                    server.publish_in(&self.account, reply, None, None, b"");
                }
            }
            Ok(Outcome::Committed(stored)) => {
                let seq = stored.last().map_or(0, |(_, s)| s.seq);
                let ack = crate::types::PubAck {
                    stream: self.name.clone(),
                    seq,
                    domain: server
                        .and_then(|s| s.opts().jetstream_domain.clone())
                        .unwrap_or_default(),
                    batch_id: id.to_string(),
                    batch_size: stored.len() as u64,
                    ..Default::default()
                };
                let body = crate::types::PubAckResponse::ok(ack).to_vec();
                self.ack(seq, reply, body, self.acks_after_sync());
            }
            Err(e) => {
                let body = crate::types::PubAckResponse::error(self.name.clone(), e).to_vec();
                if let Some(server) = server {
                    server.publish_in(&self.account, reply, None, None, &body);
                }
            }
        }
    }
}
