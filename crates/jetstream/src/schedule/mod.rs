//! Message schedules (ADR-51, nats-server 2.12+): a message carrying
//! `Nats-Schedule` on a stream with `allow_msg_schedules` is a schedule; when
//! it falls due the stream stores a new message on its `Nats-Schedule-Target`
//! (headers as nats-server sets them), then purges a one-shot schedule or
//! waits for the repeating one's next time. This module owns the publish
//! checks (nats-server's order and error codes), the due-time index, the
//! store-time bookkeeping, the timer task and the rebuild at start; the
//! stream calls in through a few hooks. Times follow [`cron`].

pub mod cron;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rnats_subject::{is_valid_literal_subject, overlaps};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::errors::{JsError, JsErrorKind};
use super::headers;
use super::stream::{now_nanos, parse_ttl, Origin, Stream};
use super::types::StreamConfig;

pub const SCHEDULE: &str = "Nats-Schedule";
pub const TIME_ZONE: &str = "Nats-Schedule-Time-Zone";
pub const SCHEDULE_TTL: &str = "Nats-Schedule-TTL";
pub const SCHEDULE_ROLLUP: &str = "Nats-Schedule-Rollup";
pub const TARGET: &str = "Nats-Schedule-Target";
pub const SOURCE: &str = "Nats-Schedule-Source";
pub const SCHEDULER: &str = "Nats-Scheduler";
pub const NEXT: &str = "Nats-Schedule-Next";
pub const NEXT_PURGE: &str = "purge";

/// nats-server never arms its schedule timer sooner than this, so a burst
/// of due schedules does not starve ingest.
const MIN_FIRE: Duration = Duration::from_millis(250);

/// A stream's schedules: which message is the live schedule of each subject
/// and when each fires.
#[derive(Default)]
pub struct Scheduler {
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    running: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Schedule subject -> (its message's seq, next fire in unix nanos).
    by_subject: HashMap<String, (u64, i64)>,
    by_seq: HashMap<u64, String>,
    /// (fire at, seq), soonest first. A schedule being fired is taken out
    /// until its produced message updates it.
    due: BTreeSet<(i64, u64)>,
}

impl State {
    fn init(&mut self, seq: u64, subject: &str, at: i64) {
        if let Some((old_seq, old_at)) = self.by_subject.insert(subject.to_string(), (seq, at)) {
            self.due.remove(&(old_at, old_seq));
            self.by_seq.remove(&old_seq);
        }
        self.due.insert((at, seq));
        self.by_seq.insert(seq, subject.to_string());
    }

    fn update(&mut self, subject: &str, at: i64) {
        if let Some(entry) = self.by_subject.get_mut(subject) {
            self.due.remove(&(entry.1, entry.0));
            entry.1 = at;
            self.due.insert((at, entry.0));
        }
    }

    fn remove_subject(&mut self, subject: &str) {
        if let Some((seq, at)) = self.by_subject.remove(subject) {
            self.due.remove(&(at, seq));
            self.by_seq.remove(&seq);
        }
    }

    fn remove_seq(&mut self, seq: u64) {
        if let Some(subject) = self.by_seq.get(&seq).cloned() {
            self.remove_subject(&subject);
        }
    }
}

impl Scheduler {
    fn next_due(&self) -> Option<i64> {
        self.state.lock().due.first().map(|&(at, _)| at)
    }
}

fn err(kind: JsErrorKind) -> JsError {
    JsError::new(kind)
}

/// A header's value when present and not empty.
fn value<'a>(hdrs: &'a [u8], name: &str) -> Option<&'a [u8]> {
    headers::get(hdrs, name).filter(|v| !v.is_empty())
}

fn text<'a>(hdrs: &'a [u8], name: &str) -> &'a str {
    value(hdrs, name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

/// `Nats-Schedule-Time-Zone`: absent is UTC; present, it must name a zone.
fn zone(hdrs: &[u8]) -> Result<cron::Zone, JsError> {
    let Some(v) = headers::get(hdrs, TIME_ZONE) else {
        return Ok(None);
    };
    let invalid = || err(JsErrorKind::MessageSchedulesTimeZoneInvalid);
    let name = std::str::from_utf8(v).map_err(|_| invalid())?;
    if name.is_empty() {
        return Err(invalid());
    }
    cron::load_zone(name).map(Some).ok_or_else(invalid)
}

/// nats-server's `nextMessageSchedule`: when the schedule in `hdrs` fires
/// if computed at `ts`.
fn schedule_of(hdrs: &[u8], ts: i64) -> Result<cron::Next, JsError> {
    if hdrs.is_empty() {
        return Ok(cron::Next::None);
    }
    let zone = zone(hdrs)?;
    let invalid = || err(JsErrorKind::MessageSchedulesPatternInvalid);
    let pattern = headers::get(hdrs, SCHEDULE).unwrap_or(b"");
    let pattern = std::str::from_utf8(pattern).map_err(|_| invalid())?;
    cron::next_fire(pattern, zone, ts, now_nanos()).map_err(|_| invalid())
}

/// Whether a stored message is a schedule (carries a `Nats-Schedule` pattern).
fn is_schedule(hdrs: &[u8]) -> bool {
    value(hdrs, SCHEDULE).is_some()
}

/// Whether the last message on `subject` is a schedule (`None`: no message).
fn last_is_schedule(stream: &Stream, subject: &str) -> Option<bool> {
    stream
        .store
        .load_last(subject)
        .ok()
        .map(|m| is_schedule(&m.headers))
}

/// The schedule checks nats-server makes on a client's publish, in its
/// order. `last_is_schedule` answers for a `Nats-Scheduler` purge. Returns
/// the headers to store when they change: a schedule gets `Nats-Rollup: sub`,
/// so a new schedule on the subject replaces the old one.
fn check(
    cfg: &StreamConfig,
    subject: &str,
    hdrs: &[u8],
    last_is_schedule: impl FnOnce(&str) -> Option<bool>,
) -> Result<Option<Vec<u8>>, JsError> {
    let allow = cfg.allow_msg_schedules;
    let disabled = || err(JsErrorKind::MessageSchedulesDisabled);
    let mut rewritten = None;
    match schedule_of(hdrs, now_nanos()) {
        Err(e) => return Err(if allow { e } else { disabled() }),
        Ok(cron::Next::None) => {}
        Ok(cron::Next::At { .. }) => {
            if !allow {
                return Err(disabled());
            }
            let ttl = value(hdrs, SCHEDULE_TTL);
            if let Some(ttl) = ttl {
                let ok = std::str::from_utf8(ttl).is_ok_and(|t| parse_ttl(t).is_ok());
                if !ok {
                    return Err(err(JsErrorKind::MessageSchedulesTTLInvalid));
                }
            }
            if value(hdrs, SCHEDULE_ROLLUP).is_some_and(|r| r != b"sub") {
                return Err(err(JsErrorKind::MessageSchedulesRollupInvalid));
            }
            if ttl.is_some() && !cfg.allow_msg_ttl {
                return Err(err(JsErrorKind::MessageTTLDisabled));
            }
            let target = text(hdrs, TARGET);
            if target.is_empty()
                || !is_valid_literal_subject(target.as_bytes())
                || target == subject
            {
                return Err(err(JsErrorKind::MessageSchedulesTargetInvalid));
            }
            let source = text(hdrs, SOURCE);
            let source_invalid = || err(JsErrorKind::MessageSchedulesSourceInvalid);
            if !source.is_empty()
                && (source == target
                    || source == subject
                    || !is_valid_literal_subject(source.as_bytes()))
            {
                return Err(source_invalid());
            }
            let in_stream = |s: &str| {
                cfg.subjects
                    .iter()
                    .any(|c| overlaps(c.as_bytes(), s.as_bytes()))
            };
            if !in_stream(target) {
                return Err(err(JsErrorKind::MessageSchedulesTargetInvalid));
            }
            if !source.is_empty() && !in_stream(source) {
                return Err(source_invalid());
            }
            match value(hdrs, headers::ROLLUP) {
                None => rewritten = Some(headers::set(hdrs, headers::ROLLUP, "sub")),
                Some(r) if r.eq_ignore_ascii_case(b"sub") => {}
                Some(_) => return Err(err(JsErrorKind::MessageSchedulesRollupInvalid)),
            }
        }
    }
    let scheduler_invalid = || err(JsErrorKind::MessageSchedulesSchedulerInvalid);
    if let Some(next) = value(hdrs, NEXT) {
        // Clients may only use Nats-Schedule-Next to purge a schedule.
        if next != NEXT_PURGE.as_bytes() {
            return Err(scheduler_invalid());
        }
        let scheduler = text(hdrs, SCHEDULER);
        if value(hdrs, SCHEDULER).is_none()
            || scheduler == subject
            || !is_valid_literal_subject(scheduler.as_bytes())
        {
            return Err(scheduler_invalid());
        }
        if !allow {
            return Err(disabled());
        }
        // No message on the subject is allowed (nats-server stays lenient).
        if last_is_schedule(scheduler) == Some(false) {
            return Err(scheduler_invalid());
        }
    } else if value(hdrs, SCHEDULER).is_some() {
        return Err(scheduler_invalid());
    }
    Ok(rewritten)
}

/// Hook: a client's single publish (after the expected-headers checks).
pub(crate) fn check_publish(
    stream: &Stream,
    cfg: &StreamConfig,
    subject: &str,
    hdrs: &[u8],
) -> Result<Option<Vec<u8>>, JsError> {
    if hdrs.is_empty() {
        return Ok(None);
    }
    check(cfg, subject, hdrs, |s| last_is_schedule(stream, s))
}

/// Hook: one message of an atomic batch; `written` holds the subjects
/// written earlier in the batch and whether each got a schedule, which
/// decide a `Nats-Scheduler` purge before the store does.
pub(crate) fn check_batch_msg(
    stream: &Stream,
    written: &mut HashMap<String, bool>,
    cfg: &StreamConfig,
    subject: &str,
    hdrs: &[u8],
) -> Result<Option<Vec<u8>>, JsError> {
    let out = if hdrs.is_empty() {
        None
    } else {
        check(cfg, subject, hdrs, |s| {
            written
                .get(s)
                .copied()
                .or_else(|| last_is_schedule(stream, s))
        })?
    };
    let stored = out.as_deref().unwrap_or(hdrs);
    written.insert(subject.to_string(), is_schedule(stored));
    Ok(out)
}

/// Hook: a message was just stored (any origin). A schedule is (re)armed; a
/// plain message on a schedule's subject cancels it; a produced message
/// moves its schedule to `Nats-Schedule-Next` or purges it.
pub(crate) fn on_stored(
    stream: &Stream,
    cfg: &StreamConfig,
    seq: u64,
    subject: &str,
    hdrs: &[u8],
    ts: i64,
) {
    if hdrs.is_empty() {
        if cfg.allow_msg_schedules {
            stream.scheduler.state.lock().remove_subject(subject);
        }
        return;
    }
    let next = value(hdrs, NEXT);
    let scheduler = text(hdrs, SCHEDULER);
    if next == Some(NEXT_PURGE.as_bytes()) && !scheduler.is_empty() {
        if let Err(e) = stream.store.purge(Some(scheduler), None, None) {
            tracing::warn!(stream = %stream.name, error = %e, "purging a fired schedule");
        }
        stream.scheduler.state.lock().remove_subject(scheduler);
    }
    if !cfg.allow_msg_schedules {
        return;
    }
    let mut state = stream.scheduler.state.lock();
    let armed = match schedule_of(hdrs, ts) {
        Ok(cron::Next::At { nanos, .. }) => {
            state.init(seq, subject, nanos);
            true
        }
        _ => {
            if scheduler.is_empty() {
                state.remove_subject(subject);
            }
            false
        }
    };
    if let Some((scheduler, at)) = moved(hdrs) {
        state.update(scheduler, at);
        drop(state);
        stream.scheduler.wake.notify_one();
        return;
    }
    drop(state);
    if armed {
        stream.scheduler.wake.notify_one();
    }
}

/// A produced message's schedule and the time it fires next (from
/// `Nats-Scheduler` and a `Nats-Schedule-Next` time).
fn moved(hdrs: &[u8]) -> Option<(&str, i64)> {
    let next = value(hdrs, NEXT).filter(|n| *n != NEXT_PURGE.as_bytes())?;
    let scheduler = Some(text(hdrs, SCHEDULER)).filter(|s| !s.is_empty())?;
    let at = chrono::DateTime::parse_from_rfc3339(std::str::from_utf8(next).ok()?).ok()?;
    Some((scheduler, at.timestamp_nanos_opt()?))
}

/// Hook: at stream start (and when a config update turns schedules on):
/// rebuilds the schedules from the stored messages, as nats-server's scan
/// does, and starts the timer task unless it runs already.
pub(crate) fn start(stream: &Arc<Stream>) -> Option<JoinHandle<()>> {
    if !stream.lock_inner().config().allow_msg_schedules
        || stream.scheduler.running.swap(true, Ordering::SeqCst)
    {
        return None;
    }
    // Messages a schedule produced carry its next time: replaying them
    // restores what nats-server keeps in its schedule state file, so an
    // interval missed while down fires once instead of drifting.
    let mut seq = 1;
    while let Ok(m) = stream.store.load_next("", seq) {
        if !m.headers.is_empty() {
            let mut state = stream.scheduler.state.lock();
            if let Ok(cron::Next::At { nanos, .. }) = schedule_of(&m.headers, m.ts) {
                state.init(m.seq, &m.subject, nanos);
            } else if let Some((scheduler, at)) = moved(&m.headers) {
                state.update(scheduler, at);
            }
        }
        seq = m.seq + 1;
    }
    Some(tokio::spawn(run(Arc::downgrade(stream))))
}

/// The timer task: sleeps until the soonest schedule is due (never less
/// than [`MIN_FIRE`] after it was armed, and a later arm never delays an
/// earlier deadline), fires what is due, and ends with the stream or when
/// schedules are off.
async fn run(stream: Weak<Stream>) {
    let mut deadline: Option<Instant> = None;
    loop {
        let (deadline_now, wake) = {
            let Some(s) = stream.upgrade() else { return };
            if !s.lock_inner().config().allow_msg_schedules {
                s.scheduler.running.store(false, Ordering::SeqCst);
                return;
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                deadline = None;
                fire_due(&s);
            }
            if let Some(at) = s.scheduler.next_due() {
                let until = u64::try_from(at.saturating_sub(now_nanos())).unwrap_or(0);
                let candidate = Instant::now() + Duration::from_nanos(until).max(MIN_FIRE);
                deadline = Some(deadline.map_or(candidate, |d| d.min(candidate)));
            }
            let s2 = s.clone();
            (deadline, async move { s2.scheduler.wake.notified().await })
        };
        match deadline_now {
            Some(d) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(d) => {}
                    _ = wake => {}
                }
            }
            None => wake.await,
        }
    }
}

/// Produces the message of every schedule due now, in sequence order.
fn fire_due(stream: &Stream) {
    let now = now_nanos();
    let mut due: Vec<(i64, u64)> = {
        let mut state = stream.scheduler.state.lock();
        let due: Vec<_> = state.due.range(..=(now, u64::MAX)).copied().collect();
        for d in &due {
            state.due.remove(d);
        }
        due
    };
    due.sort_unstable_by_key(|&(_, seq)| seq);
    for (at, seq) in due {
        let Some((target, hdrs, payload)) = produce(stream, seq, at) else {
            stream.scheduler.state.lock().remove_seq(seq);
            continue;
        };
        if let Err(e) = stream.apply_sourced(&target, &hdrs, &payload, Origin::Internal) {
            // As nats-server, a schedule whose message cannot be stored stays
            // parked (not re-fired) until it is replaced or the server restarts.
            tracing::warn!(stream = %stream.name, seq, error = %e.description, "storing a scheduled message");
        }
    }
}

/// The message a due schedule (at `seq`, due `at`) produces: (target,
/// headers, body), or `None` when the schedule is gone or no longer valid.
fn produce(stream: &Stream, seq: u64, at: i64) -> Option<(String, Vec<u8>, Vec<u8>)> {
    let sm = stream.store.load(seq).ok()?;
    let hdrs = &sm.headers[..];
    let pattern = std::str::from_utf8(value(hdrs, SCHEDULE)?).ok()?;
    let zone = zone(hdrs).ok()?;
    let cron::Next::At {
        nanos,
        offset,
        repeat,
    } = cron::next_fire(pattern, zone, at, now_nanos()).ok()?
    else {
        return None;
    };
    let ttl = text(hdrs, SCHEDULE_TTL);
    if !ttl.is_empty() && parse_ttl(ttl).is_err() {
        return None;
    }
    let target = text(hdrs, TARGET);
    if target.is_empty() {
        return None;
    }
    let rollup = text(hdrs, SCHEDULE_ROLLUP);
    let source = text(hdrs, SOURCE);
    // The source's last message gives the body and headers, if it has one.
    let src = (!source.is_empty())
        .then(|| stream.store.load_last(source).ok())
        .flatten();
    let (base_h, body) = match &src {
        Some(m) => (&m.headers[..], m.payload.to_vec()),
        None => (hdrs, sm.payload.to_vec()),
    };
    let mut out = remove_prefixed(base_h, &["Nats-Schedule", "Nats-Expected-"]);
    for name in [headers::MSG_ID, headers::TTL, headers::ROLLUP] {
        if headers::get(&out, name).is_some() {
            out = headers::remove(&out, name);
        }
    }
    out = append(&out, SCHEDULER, &sm.subject);
    let next = if repeat {
        cron::format_rfc3339_nano(nanos, offset)
    } else {
        NEXT_PURGE.to_string()
    };
    out = append(&out, NEXT, &next);
    if !ttl.is_empty() {
        out = append(&out, headers::TTL, ttl);
    }
    if !rollup.is_empty() {
        out = append(&out, headers::ROLLUP, rollup);
    }
    Some((target.to_string(), out, body))
}

/// `block` without the lines whose name starts with one of `prefixes`.
fn remove_prefixed(block: &[u8], prefixes: &[&str]) -> Vec<u8> {
    let names: Vec<Vec<u8>> = headers::lines(block)
        .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p.as_bytes())))
        .map(|(k, _)| k.to_vec())
        .collect();
    let mut out = block.to_vec();
    for n in names {
        if let Ok(n) = std::str::from_utf8(&n) {
            out = headers::remove(&out, n);
        }
    }
    out
}

/// Appends a header line (the name is known to be absent).
fn append(block: &[u8], name: &str, value: &str) -> Vec<u8> {
    headers::set(block, name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_schedule_headers_by_prefix() {
        let h = headers::Builder::new()
            .add("Nats-Schedule", "@every 1s")
            .add("Nats-Schedule-Target", "a")
            .add("Nats-Expected-Stream", "S")
            .add("Keep", "1")
            .finish();
        let out = remove_prefixed(&h, &["Nats-Schedule", "Nats-Expected-"]);
        assert_eq!(headers::get(&out, "Keep"), Some(&b"1"[..]));
        assert!(headers::get(&out, "Nats-Schedule").is_none());
        assert!(headers::get(&out, "Nats-Schedule-Target").is_none());
        assert!(headers::get(&out, "Nats-Expected-Stream").is_none());
    }

    #[test]
    fn produced_messages_move_their_schedule() {
        let h = headers::Builder::new()
            .add(SCHEDULER, "s.sched")
            .add(NEXT, "2030-01-01T00:00:01.5Z")
            .finish();
        assert_eq!(moved(&h), Some(("s.sched", 1_893_456_001_500_000_000)));
        let purge = headers::set(&h, NEXT, NEXT_PURGE);
        assert_eq!(moved(&purge), None);
        assert_eq!(moved(&headers::remove(&h, SCHEDULER)), None);
    }

    #[test]
    fn state_replaces_and_removes() {
        let mut s = State::default();
        s.init(1, "a", 10);
        s.init(2, "a", 20);
        assert_eq!(s.due.len(), 1);
        assert_eq!(s.by_subject.get("a"), Some(&(2, 20)));
        s.update("a", 5);
        assert_eq!(s.due.first(), Some(&(5, 2)));
        s.remove_seq(1);
        assert_eq!(s.due.len(), 1);
        s.remove_seq(2);
        assert!(s.due.is_empty() && s.by_seq.is_empty() && s.by_subject.is_empty());
    }
}
