//! The acknowledgement protocol: a client answers a delivery on its
//! `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
//! subject with `+ACK` (or nothing), `-NAK [{"delay":ns}]`, `+WPI`,
//! `+NXT [request]` or `+TERM [reason]`. A reply subject on the ack asks for
//! confirmation, which is sent once the new state is saved. Flow-control
//! answers arrive on `$JS.FC.<stream>.<consumer>.<id>`.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Deserialize;

use super::super::types::AckPolicy;
use super::advise::AckSample;
use super::state::State;
use super::Consumer;
use crate::advisories::{sample_percent, should_sample};
use rnats_core::router::Message;
use rnats_core::subscription::InternalHandler;

pub struct AckHandler(pub Weak<Consumer>);

impl InternalHandler for AckHandler {
    fn deliver(&self, msg: &Message<'_>) {
        let Some(consumer) = self.0.upgrade() else {
            return;
        };
        let subject = String::from_utf8_lossy(msg.subject);
        if subject.starts_with("$JS.FC.") {
            consumer.on_flow_control(&subject);
            return;
        }
        consumer.on_ack(&subject, msg.payload, msg.reply);
    }
}

/// What an ack body asks for.
#[derive(Debug, PartialEq)]
enum AckKind<'a> {
    Ack,
    Nak(Option<Duration>),
    Progress,
    Next(&'a [u8]),
    Term,
}

#[derive(Deserialize)]
struct NakDelay {
    delay: i64,
}

fn parse_body(body: &[u8]) -> AckKind<'_> {
    let trimmed = body.trim_ascii();
    if let Some(rest) = trimmed.strip_prefix(b"-NAK") {
        let rest = rest.trim_ascii();
        let delay = serde_json::from_slice::<NakDelay>(rest)
            .ok()
            .filter(|d| d.delay > 0)
            .map(|d| Duration::from_nanos(d.delay as u64));
        return AckKind::Nak(delay);
    }
    if trimmed.starts_with(b"+WPI") {
        return AckKind::Progress;
    }
    if let Some(rest) = trimmed.strip_prefix(b"+NXT") {
        return AckKind::Next(rest.trim_ascii());
    }
    if trimmed.starts_with(b"+TERM") {
        return AckKind::Term;
    }
    AckKind::Ack
}

/// (delivered count, stream seq, consumer seq) from an ack subject.
fn parse_subject(subject: &str) -> Option<(u64, u64, u64)> {
    let t: Vec<&str> = subject.split('.').collect();
    // v1: $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>
    // v2: $JS.ACK.<domain>.<acc>.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>.<token>
    let base = match t.len() {
        9 => 4,
        12 => 6,
        _ => return None,
    };
    Some((
        t[base].parse().ok()?,
        t[base + 1].parse().ok()?,
        t[base + 2].parse().ok()?,
    ))
}

/// The acknowledgement transitions of a consumer's state, kept free of I/O
/// so they can be checked against a model (see `model_tests`).
impl State {
    /// `+ACK` (and `+NXT`): the stream sequences no longer pending. With
    /// `ack_policy: all` everything up to `sseq` counts as acknowledged.
    pub fn ack(&mut self, sseq: u64) -> Vec<u64> {
        let done: Vec<u64> = if self.config.ack_policy == AckPolicy::All {
            self.pending.range(..=sseq).map(|(s, _)| *s).collect()
        } else if self.pending.contains_key(&sseq) {
            vec![sseq]
        } else {
            Vec::new()
        };
        for s in &done {
            self.pending.remove(s);
            self.redelivered.remove(s);
            self.redeliver.remove(s);
        }
        done
    }

    /// `-NAK`: redeliver now, or once `delay` has passed.
    pub fn nak(&mut self, sseq: u64, delay: Option<Duration>, now: Instant) {
        if let Some(p) = self.pending.get_mut(&sseq) {
            match delay {
                Some(d) => p.deadline = now + d,
                None => {
                    self.redeliver.insert(sseq);
                }
            }
        }
    }

    /// `+WPI`: the ack wait starts over.
    pub fn progress(&mut self, sseq: u64, now: Instant) {
        let deliveries = self.redelivered.get(&sseq).copied().unwrap_or(1);
        let wait = self.ack_wait_for(deliveries);
        if let Some(p) = self.pending.get_mut(&sseq) {
            p.deadline = now + wait;
        }
    }

    /// `+TERM`: never redelivered; (deliveries, consumer seq) if it was pending.
    pub fn term(&mut self, sseq: u64) -> Option<(u64, u64)> {
        let p = self.pending.remove(&sseq)?;
        let deliveries = self.redelivered.remove(&sseq).unwrap_or(1);
        self.redeliver.remove(&sseq);
        Some((deliveries, p.dseq))
    }
}

impl Consumer {
    fn on_ack(self: &Arc<Self>, subject: &str, body: &[u8], reply: Option<&[u8]>) {
        let Some((dc, sseq, dseq)) = parse_subject(subject) else {
            return;
        };
        let kind = parse_body(body);
        let mut terminated = None;
        let mut naked = false;
        let mut sample = None;
        let mut acked_any = Vec::new();
        {
            let mut st = self.state.lock();
            let now = Instant::now();
            match kind {
                AckKind::Ack | AckKind::Next(_) => {
                    // nats-server samples explicit acks of pending messages only.
                    if st.config.ack_policy == AckPolicy::Explicit {
                        let percent = sample_percent(&st.config.sample_frequency);
                        sample = st
                            .pending
                            .get(&sseq)
                            .filter(|_| should_sample(percent))
                            .map(|p| AckSample {
                                seq: sseq,
                                dseq,
                                deliveries: dc,
                                ack_time: now.saturating_duration_since(p.sent),
                            });
                    }
                    acked_any = st.ack(sseq);
                }
                AckKind::Nak(delay) => {
                    naked = st.pending.contains_key(&sseq);
                    st.nak(sseq, delay, now);
                }
                AckKind::Progress => st.progress(sseq, now),
                AckKind::Term => {
                    if let Some(t) = st.term(sseq) {
                        terminated = Some(t);
                        acked_any.push(sseq);
                    }
                }
            }
            if !acked_any.is_empty() {
                st.advance_floor();
                st.last_ack_at = Some(Utc::now());
                st.dirty = true;
            }
        }
        if naked {
            self.advise_nak(sseq, dseq, dc);
        }
        if let Some(s) = sample {
            self.sample_ack(s);
        }
        if let Some((deliveries, dseq)) = terminated {
            let reason = body
                .trim_ascii()
                .strip_prefix(b"+TERM")
                .map(<[u8]>::trim_ascii)
                .unwrap_or_default();
            self.advise_terminated(sseq, dseq, deliveries, &String::from_utf8_lossy(reason));
        }
        if !acked_any.is_empty() {
            if let Some(stream) = self.stream.upgrade() {
                stream.on_acked(&acked_any);
            }
        }
        // (`+NXT`'s reply is where the next messages go, not a confirmation.)
        if let (Some(reply), false) = (reply, matches!(kind, AckKind::Next(_))) {
            // A confirmed ack is answered only once it is on disk.
            self.confirm_after_save(reply);
        }
        if let AckKind::Next(req) = kind {
            if let Some(reply) = reply {
                let _ = self.add_pull_request(reply, req);
            }
        }
        self.wake.notify_one();
        self.pump();
    }

    /// Queues a confirmation and makes sure a save is coming that covers it.
    /// Saves run off the async workers, one at a time; confirmations that
    /// arrive during a save share the next one (group commit), so many
    /// in-flight confirmed acks cost a few writes and fsyncs, not one each.
    fn confirm_after_save(self: &Arc<Self>, reply: &[u8]) {
        if self.dir.is_none() {
            // Nothing to persist (memory or ephemeral): confirm at once.
            if let Some(server) = self.server.upgrade() {
                server.publish_in(&self.account, reply, None, None, b"");
            }
            return;
        }
        self.confirmations.lock().push(reply.to_vec());
        if self.saving.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.save_and_confirm());
    }

    fn save_and_confirm(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let batch = std::mem::take(&mut *self.confirmations.lock());
            if batch.is_empty() {
                self.saving.store(false, Ordering::Release);
                // A confirmation queued between the take and the store above
                // would otherwise wait for the next ack: look once more.
                if self.confirmations.lock().is_empty() || self.saving.swap(true, Ordering::AcqRel)
                {
                    return;
                }
                continue;
            }
            self.save();
            if let Some(server) = self.server.upgrade() {
                for reply in batch {
                    server.publish_in(&self.account, &reply, None, None, b"");
                }
            }
        }
    }

    fn on_flow_control(&self, subject: &str) {
        {
            let mut st = self.state.lock();
            if st.fc_outstanding.as_deref() == Some(subject) {
                st.fc_outstanding = None;
            }
        }
        self.pump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_bodies() {
        assert_eq!(parse_body(b""), AckKind::Ack);
        assert_eq!(parse_body(b"+ACK"), AckKind::Ack);
        assert_eq!(parse_body(b"-NAK"), AckKind::Nak(None));
        assert_eq!(
            parse_body(br#"-NAK {"delay": 2000000000}"#),
            AckKind::Nak(Some(Duration::from_secs(2)))
        );
        assert_eq!(parse_body(b"+WPI"), AckKind::Progress);
        assert_eq!(parse_body(b"+TERM bad data"), AckKind::Term);
        assert_eq!(
            parse_body(b"+NXT {\"batch\":2}"),
            AckKind::Next(b"{\"batch\":2}")
        );
    }

    #[test]
    fn ack_subjects() {
        assert_eq!(
            parse_subject("$JS.ACK.S.C.2.10.7.1700000000000000000.3"),
            Some((2, 10, 7))
        );
        assert_eq!(
            parse_subject("$JS.ACK.dom.acc.S.C.1.5.5.17.0.tok"),
            Some((1, 5, 5))
        );
        assert_eq!(parse_subject("$JS.ACK.S.C.x.10.7.1.3"), None);
        assert_eq!(parse_subject("$JS.ACK.S"), None);
    }
}
