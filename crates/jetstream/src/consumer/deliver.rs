//! Sending messages: pick the next message for the consumer (redeliveries
//! first, then `last_per_subject` starts, then new messages), address it to a
//! waiting pull request or the push deliver subject, and stamp the
//! `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` reply.
//! Status messages (`404 No Messages`, `408 Request Timeout`, `409 ...`,
//! `100 Idle Heartbeat`, `100 FlowControl Request`) go out the same way.

use std::time::{Duration, Instant};

use chrono::Utc;
use rnats_store::StoredMsg;

use super::super::headers;
use super::super::types::{AckPolicy, NextRequest, PriorityPolicy, ReplayPolicy};
use super::priority;
use super::state::{Pending, PullRequest, State};
use super::Consumer;
use rnats_core::server::ServerState;

/// One frame to publish once the consumer's lock is released.
pub struct Outgoing {
    /// Where it goes (the pull request's inbox or the deliver subject).
    pub route: Vec<u8>,
    /// What the `MSG` line shows (the message's own subject).
    pub subject: Vec<u8>,
    pub reply: Option<Vec<u8>>,
    pub headers: Option<Vec<u8>>,
    pub payload: bytes::Bytes,
}

/// Push flow control: ask the client to confirm after this many bytes.
const FC_BYTES: u64 = 256 * 1024;

pub fn send_status(
    server: &ServerState,
    account: &rnats_core::account::Account,
    to: &[u8],
    code: u16,
    text: &str,
    extra: &[(&str, String)],
) {
    let mut b = headers::Builder::status(code, text);
    for (k, v) in extra {
        b = b.add(k, v);
    }
    server.publish_in(account, to, None, Some(&b.finish()), b"");
}

impl Consumer {
    /// Delivers whatever can be delivered now.
    pub fn pump(&self) {
        let (Some(server), Some(stream)) = (self.server.upgrade(), self.stream.upgrade()) else {
            return;
        };
        if self.is_deleted() {
            return;
        }
        let mut out = Vec::new();
        let mut statuses: Vec<(Vec<u8>, u16, &'static str)> = Vec::new();
        // Requests ended because the next message is bigger than they allow.
        let mut too_big: Vec<(Vec<u8>, i64, i64)> = Vec::new();
        let mut pin_events = Vec::new();
        let mut wrong_pin: Vec<priority::WrongPin> = Vec::new();
        {
            let mut st = self.state.lock();
            if st.paused_until(Utc::now()).is_some() {
                // Paused: nothing goes out; no-wait requests are told so now.
                let mut i = 0;
                while i < st.waiting.len() {
                    if st.waiting[i].no_wait {
                        if let Some(req) = st.waiting.remove(i) {
                            statuses.push((req.reply, 404, "No Messages"));
                        }
                    } else {
                        i += 1;
                    }
                }
                drop(st);
                for (to, code, text) in statuses {
                    send_status(&server, &self.account, &to, code, text, &[]);
                }
                return;
            }
            let push = !st.config.is_pull();
            if push && (st.fc_outstanding.is_some() || !self.push_interest(&st.config)) {
                return;
            }
            let mut remaining = None;
            loop {
                if !push && st.waiting.is_empty() {
                    break;
                }
                let limit = st.config.max_ack_pending;
                if st.config.ack_policy != AckPolicy::None
                    && limit > 0
                    && st.pending.len() as i64 >= limit
                {
                    break;
                }
                let Some((msg, redelivery)) = next_message(&mut st, &stream.store) else {
                    break;
                };
                // `replay: original`: keep the spacing the messages were stored with.
                if !redelivery && st.config.replay_policy == ReplayPolicy::Original {
                    let now = Instant::now();
                    if let Some((last_ts, at)) = st.replay_last {
                        let due = at + Duration::from_nanos((msg.ts - last_ts).max(0) as u64);
                        if due > now {
                            st.replay_due = Some(due);
                            unread(&mut st, msg.seq, false);
                            break;
                        }
                    }
                    st.replay_due = None;
                    st.replay_last = Some((msg.ts, now));
                }
                // The `pending` token: messages left after this one.
                let pending_after = match remaining {
                    None => st.num_pending(&stream.store),
                    Some(n) if redelivery => n,
                    Some(n) => n.saturating_sub(1),
                };
                let deliveries = st.redelivered.get(&msg.seq).copied().unwrap_or(0) + 1;
                let reply = format!(
                    "$JS.ACK.{}.{}.{}.{}.{}.{}.{}",
                    self.stream_name,
                    self.name,
                    deliveries,
                    msg.seq,
                    st.dseq + 1,
                    msg.ts,
                    pending_after
                );
                // nats-server counts subject, reply, headers and payload.
                let size = (msg.subject.len() + reply.len() + msg.headers.len() + msg.payload.len())
                    as i64;
                let mut slot = 0;
                let target = if push {
                    st.config.deliver_subject.as_bytes().to_vec()
                } else {
                    // Priority groups may hold every waiting request back.
                    let Some((i, pinned_now)) = priority::select(
                        &mut st,
                        pending_after + 1,
                        &mut pin_events,
                        &mut wrong_pin,
                    ) else {
                        unread(&mut st, msg.seq, redelivery);
                        break;
                    };
                    slot = i;
                    let req = &mut st.waiting[i];
                    if req.max_bytes > 0 && size > req.max_bytes {
                        too_big.push((req.reply.clone(), req.batch, req.max_bytes));
                        st.waiting.remove(i);
                        if pinned_now {
                            // nats-server releases the pin without an advisory.
                            st.pin = None;
                        }
                        // The message stays where it was for the next request.
                        unread(&mut st, msg.seq, redelivery);
                        continue;
                    }
                    req.reply.clone()
                };
                remaining = Some(pending_after);
                let mut frame = self.record_delivery(&mut st, &msg, redelivery, target, reply);
                if !push && st.config.priority_policy == PriorityPolicy::PinnedClient {
                    let pin = st.pin.as_ref().map(|p| p.id.as_str()).unwrap_or_default();
                    frame.headers = Some(priority::with_pin_header(frame.headers.take(), pin));
                }
                out.push(frame);
                if push {
                    st.last_push_at = Instant::now();
                    if st.config.flow_control {
                        st.bytes_since_fc += size as u64;
                        if st.bytes_since_fc >= FC_BYTES {
                            out.push(self.flow_control_request(&mut st));
                            break;
                        }
                    }
                } else {
                    let req = &mut st.waiting[slot];
                    req.batch -= 1;
                    req.sent += 1;
                    if req.max_bytes > 0 {
                        req.max_bytes -= size;
                    }
                    if req.batch <= 0 || (req.max_bytes < 0) {
                        st.waiting.remove(slot);
                    }
                }
            }
            // No-wait requests at the end of what is available: `404 No
            // Messages` ends them (after a partial batch too); one with an
            // expiry that got nothing yet waits for its first message.
            let mut i = 0;
            while i < st.waiting.len() {
                let r = &st.waiting[i];
                if r.no_wait && (r.sent > 0 || r.expires.is_none()) {
                    if let Some(req) = st.waiting.remove(i) {
                        statuses.push((req.reply, 404, "No Messages"));
                    }
                } else {
                    i += 1;
                }
            }
            if !out.is_empty() {
                st.dirty = true;
                st.idle_since = None;
            }
        }
        let changed = !out.is_empty()
            || !statuses.is_empty()
            || !too_big.is_empty()
            || !pin_events.is_empty()
            || !wrong_pin.is_empty();
        self.advise_pin(&pin_events);
        let given_up = std::mem::take(&mut self.state.lock().given_up);
        for (seq, deliveries) in given_up {
            self.advise_max_deliveries(seq, deliveries);
        }
        server.publish_internal_many_in(
            &self.account,
            out.iter().map(|f| rnats_core::router::Message {
                subject: &f.subject,
                route: (f.route != f.subject).then_some(&f.route[..]),
                reply: f.reply.as_deref(),
                headers: f.headers.as_deref(),
                payload: &f.payload,
            }),
        );
        for (to, batch, bytes) in too_big {
            send_status(
                &server,
                &self.account,
                &to,
                409,
                "Message Size Exceeds MaxBytes",
                &[
                    ("Nats-Pending-Messages", batch.to_string()),
                    ("Nats-Pending-Bytes", bytes.to_string()),
                ],
            );
        }
        for (to, batch, bytes) in wrong_pin {
            send_status(
                &server,
                &self.account,
                &to,
                423,
                "Nats-Wrong-Pin-Id",
                &[
                    ("Nats-Pending-Messages", batch.to_string()),
                    ("Nats-Pending-Bytes", bytes.to_string()),
                ],
            );
        }
        for (to, code, text) in statuses {
            send_status(&server, &self.account, &to, code, text, &[]);
        }
        if changed {
            // New ack deadlines: let the timer task look again.
            self.wake.notify_one();
        }
    }

    /// Updates the state for one delivery and builds its frame.
    fn record_delivery(
        &self,
        st: &mut State,
        msg: &StoredMsg,
        redelivery: bool,
        target: Vec<u8>,
        reply: String,
    ) -> Outgoing {
        st.note_delivery(msg.seq, redelivery, Instant::now());
        let (hdrs, payload) = if st.config.headers_only {
            let h = headers::Builder::new()
                .extend_from(&msg.headers)
                .add("Nats-Msg-Size", &msg.payload.len().to_string())
                .finish();
            (Some(h), bytes::Bytes::new())
        } else {
            (
                (!msg.headers.is_empty()).then(|| msg.headers.to_vec()),
                msg.payload.clone(),
            )
        };
        Outgoing {
            route: target,
            subject: msg.subject.as_bytes().to_vec(),
            reply: Some(reply.into_bytes()),
            headers: hdrs,
            payload,
        }
    }

    fn flow_control_request(&self, st: &mut State) -> Outgoing {
        let reply = format!(
            "$JS.FC.{}.{}.{}",
            self.stream_name,
            self.name,
            fastrand::u64(..)
        );
        st.fc_outstanding = Some(reply.clone());
        st.bytes_since_fc = 0;
        Outgoing {
            route: st.config.deliver_subject.as_bytes().to_vec(),
            subject: st.config.deliver_subject.as_bytes().to_vec(),
            reply: Some(reply.into_bytes()),
            headers: Some(headers::Builder::status(100, "FlowControl Request").finish()),
            payload: bytes::Bytes::new(),
        }
    }

    /// A pull request (`$JS.API.CONSUMER.MSG.NEXT...` or `+NXT`).
    pub fn add_pull_request(&self, reply: &[u8], body: &[u8]) -> Result<(), (u16, String)> {
        {
            let mut st = self.state.lock();
            if !st.config.is_pull() {
                return Err((409, "Consumer is push based".into()));
            }
            let (req, json) = parse_next(body).map_err(|e| (400, format!("Bad Request - {e}")))?;
            let mb = st.config.max_request_batch;
            if mb > 0 && req.batch > mb {
                return Err((409, format!("Exceeded MaxRequestBatch of {mb}")));
            }
            let mx = st.config.max_request_max_bytes;
            if mx > 0 && req.max_bytes > mx {
                return Err((409, format!("Exceeded MaxRequestMaxBytes of {mx}")));
            }
            let me = st.config.max_request_expires;
            if me > 0 && req.expires > me {
                return Err((
                    409,
                    format!("Exceeded MaxRequestExpires of {}", go_duration(me)),
                ));
            }
            // Only JSON requests carry group fields (and are checked for them).
            let group = json.then(|| priority::PriorityRequest::from_next(&req));
            let now = Instant::now();
            if let Some(g) = &group {
                priority::check_request(&mut st, g, now)?;
            }
            let max_waiting = st.config.max_waiting.max(1) as usize;
            if st.waiting.len() >= max_waiting {
                return Err((409, "Exceeded MaxWaiting".into()));
            }
            // Without an expiry of its own, a request lives for max_expires.
            let expires = if me > 0 && req.expires == 0 {
                me
            } else {
                req.expires
            };
            let heartbeat =
                (req.idle_heartbeat > 0).then(|| Duration::from_nanos(req.idle_heartbeat as u64));
            let at = priority::insert_position(&st, group.as_ref());
            st.waiting.insert(
                at,
                PullRequest {
                    reply: reply.to_vec(),
                    batch: req.batch.max(1),
                    max_bytes: req.max_bytes.max(0),
                    // A negative expiry is already past: answered at once.
                    expires: (expires != 0)
                        .then(|| now + Duration::from_nanos(expires.max(0) as u64)),
                    no_wait: req.no_wait,
                    heartbeat,
                    next_heartbeat: heartbeat.map(|h| now + h),
                    sent: 0,
                    priority: group,
                },
            );
            st.idle_since = None;
        }
        // A new expiry or heartbeat deadline for the timer task.
        self.wake.notify_one();
        self.pump();
        Ok(())
    }
}

impl State {
    /// Records one delivery of stream sequence `seq` (consumer sequence,
    /// delivery count, ack deadline); returns the delivery count.
    pub fn note_delivery(&mut self, seq: u64, redelivery: bool, now: Instant) -> u64 {
        self.dseq += 1;
        let deliveries = {
            let c = self.redelivered.entry(seq).or_insert(0);
            *c += 1;
            *c
        };
        if !redelivery {
            self.delivered_sseq = self.delivered_sseq.max(seq);
        }
        self.last_delivered_at = Some(Utc::now());
        if self.config.ack_policy == AckPolicy::None {
            self.redelivered.remove(&seq);
            self.advance_floor();
        } else {
            let wait = self.ack_wait_for(deliveries);
            self.pending.insert(
                seq,
                Pending {
                    dseq: self.dseq,
                    deadline: now + wait,
                    sent: now,
                },
            );
        }
        deliveries
    }
}

/// Puts a message back so the next delivery attempt finds it again.
fn unread(st: &mut State, seq: u64, redelivery: bool) {
    if redelivery {
        st.redeliver.insert(seq);
    } else {
        st.next_sseq = st.next_sseq.min(seq);
    }
}

/// The next message to deliver, and whether it is a redelivery.
pub(super) fn next_message(
    st: &mut State,
    store: &std::sync::Arc<dyn rnats_store::MsgStore>,
) -> Option<(StoredMsg, bool)> {
    while let Some(seq) = st.redeliver.pop_first() {
        if !st.pending.contains_key(&seq) {
            continue;
        }
        // A nak'd message that had all its deliveries is given up on here
        // (nats-server checks when it takes it off the redelivery queue).
        let deliveries = st.redelivered.get(&seq).copied().unwrap_or(1);
        if st.config.max_deliver > 0 && deliveries >= st.config.max_deliver as u64 {
            st.pending.remove(&seq);
            st.advance_floor();
            st.given_up.push((seq, deliveries));
            continue;
        }
        match store.load(seq) {
            Ok(m) => return Some((m, true)),
            Err(_) => {
                st.pending.remove(&seq);
                st.redelivered.remove(&seq);
            }
        }
    }
    while let Some(seq) = st.initial.pop_front() {
        if let Ok(m) = store.load(seq) {
            return Some((m, false));
        }
    }
    let start = st.next_sseq;
    let found = st
        .filter_list()
        .iter()
        .filter_map(|f| store.load_next(f, start).ok())
        .min_by_key(|m| m.seq)?;
    st.next_sseq = found.seq + 1;
    Some((found, false))
}

/// Go's `time.Duration` text for whole units (`1s`, `500ms`, `2m0s`).
pub(crate) fn go_duration(nanos: i64) -> String {
    let d = Duration::from_nanos(nanos.max(0) as u64);
    if d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (d.as_secs() / 3600, d.as_secs() / 60 % 60, d.as_secs() % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A `MSG.NEXT` body as nats-server reads it: JSON when it starts with `{`
/// (then the flag is set: only JSON requests take part in priority groups),
/// else a bare batch size, else (empty or anything else) one message.
fn parse_next(body: &[u8]) -> Result<(NextRequest, bool), String> {
    let one = NextRequest {
        batch: 1,
        ..NextRequest::default()
    };
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.starts_with('{') {
        let batch = text.parse::<i64>().unwrap_or(1);
        return Ok((NextRequest { batch, ..one }, false));
    }
    let mut v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| super::super::api::go_json_error(&e, text.as_bytes()))?;
    if let serde_json::Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    let req: NextRequest = serde_json::from_value(v).map_err(|e| e.to_string())?;
    // Two heartbeats must fit in the request's life.
    if req.idle_heartbeat > 0 && req.idle_heartbeat.saturating_mul(2) > req.expires {
        return Err("heartbeat value too large".into());
    }
    Ok((req, true))
}
