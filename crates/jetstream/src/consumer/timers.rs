//! Time in a consumer: one task that sleeps until the earliest deadline —
//! an unacked delivery's ack wait, a pull request's expiry or heartbeat, a
//! push heartbeat, an ephemeral's inactivity limit — handles what is due,
//! and otherwise waits to be woken. An idle consumer has no deadline and so
//! costs nothing. Also the advisories these events publish.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::super::headers;
use super::super::types::AckPolicy;
use super::deliver::send_status;
use super::Consumer;

/// How often a durable's changed state is written (confirmed acks are written at once).
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(consumer: Weak<Consumer>) {
    loop {
        let (deadline, wake) = {
            let Some(c) = consumer.upgrade() else { return };
            if c.is_deleted() {
                return;
            }
            if c.on_timer() {
                // The consumer deleted itself (inactive ephemeral).
                return;
            }
            let deadline = c.next_deadline();
            let c2 = c.clone();
            (deadline, async move { c2.wake.notified().await })
        };
        match deadline {
            Some(d) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(d.into()) => {}
                    _ = wake => {}
                }
            }
            None => wake.await,
        }
    }
}

impl super::state::State {
    /// Ack wait passed: queue for redelivery, or give up at max_deliver.
    /// Returns what was given up on: (stream seq, deliveries).
    pub fn expire_acks(&mut self, now: Instant) -> Vec<(u64, u64)> {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(s, _)| *s)
            .collect();
        let max_deliver = self.config.max_deliver;
        let mut given_up = Vec::new();
        for seq in due {
            let deliveries = self.redelivered.get(&seq).copied().unwrap_or(1);
            if max_deliver > 0 && deliveries >= max_deliver as u64 {
                // Given up on; it still counts as redelivered in info.
                self.pending.remove(&seq);
                given_up.push((seq, deliveries));
            } else if let Some(p) = self.pending.get_mut(&seq) {
                // Pushed back so the scan does not pick it again before delivery.
                p.deadline = now + Duration::from_secs(3600);
                self.redeliver.insert(seq);
            }
        }
        if !given_up.is_empty() {
            self.advance_floor();
            self.dirty = true;
        }
        given_up
    }
}

impl Consumer {
    /// The earliest moment something is due, if anything.
    fn next_deadline(&self) -> Option<Instant> {
        let st = self.state.lock();
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if st.config.ack_policy != AckPolicy::None {
            // Ack deadlines are not ordered by sequence: scan (bounded by max_ack_pending).
            if let Some(t) = st.pending.values().map(|p| p.deadline).min() {
                consider(t);
            }
        }
        for r in &st.waiting {
            if let Some(t) = r.expires {
                consider(t);
            }
            if let Some(t) = r.next_heartbeat {
                consider(t);
            }
        }
        if !st.config.is_pull() && st.config.heartbeat > 0 {
            consider(st.last_push_at + Duration::from_nanos(st.config.heartbeat as u64));
        }
        if let Some(since) = st.idle_since {
            if st.config.inactive_threshold > 0 && st.config.durable.is_empty() {
                consider(since + Duration::from_nanos(st.config.inactive_threshold as u64));
            }
        }
        if !st.config.is_pull() && st.config.durable.is_empty() && st.config.inactive_threshold > 0
        {
            // Push ephemerals: check for lost interest at the threshold.
            consider(Instant::now() + Duration::from_nanos(st.config.inactive_threshold as u64));
        }
        if let Some(t) = st.replay_due {
            consider(t);
        }
        if let Some(pin) = &st.pin {
            consider(pin.expires);
        }
        if st.dirty && self.dir.is_some() {
            consider(st.last_save + SAVE_INTERVAL);
        }
        if let Some(t) = st.paused_until(Utc::now()) {
            let left = (t - Utc::now()).to_std().unwrap_or_default();
            consider(Instant::now() + left);
        }
        next
    }

    /// Handles everything due now; returns true if the consumer was deleted.
    fn on_timer(self: &Arc<Self>) -> bool {
        let Some(server) = self.server.upgrade() else {
            return true;
        };
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut heartbeats = Vec::new();
        let max_delivered;
        let mut push_heartbeat = None;
        let mut inactive = false;
        let unpinned;
        {
            let mut st = self.state.lock();
            // A pinned client that stopped pulling loses its pin.
            unpinned = super::priority::expire(&mut st, now);
            max_delivered = st.expire_acks(now);
            // Pull requests: expiry and heartbeats.
            let mut i = 0;
            while i < st.waiting.len() {
                let r = &mut st.waiting[i];
                if r.expires.is_some_and(|t| t <= now) {
                    if let Some(r) = st.waiting.remove(i) {
                        expired.push(r);
                    }
                    continue;
                }
                if let (Some(hb), Some(t)) = (r.heartbeat, r.next_heartbeat) {
                    if t <= now {
                        r.next_heartbeat = Some(now + hb);
                        heartbeats.push(r.reply.clone());
                    }
                }
                i += 1;
            }
            // Push heartbeats while idle.
            if !st.config.is_pull() && st.config.heartbeat > 0 {
                let hb = Duration::from_nanos(st.config.heartbeat as u64);
                if st.last_push_at + hb <= now {
                    st.last_push_at = now;
                    push_heartbeat = Some((
                        st.config.deliver_subject.clone(),
                        st.dseq,
                        st.delivered_sseq,
                        st.fc_outstanding.clone(),
                    ));
                }
            }
            // Ephemerals nobody uses go away after inactive_threshold.
            if st.config.durable.is_empty() && st.config.inactive_threshold > 0 {
                let active = if st.config.is_pull() {
                    !st.waiting.is_empty()
                } else {
                    self.push_interest(&st.config)
                };
                if active {
                    st.idle_since = None;
                } else {
                    let since = *st.idle_since.get_or_insert(now);
                    inactive =
                        since + Duration::from_nanos(st.config.inactive_threshold as u64) <= now;
                }
            }
        }
        for r in expired {
            send_status(
                &server,
                &self.account,
                &r.reply,
                408,
                "Request Timeout",
                &[
                    ("Nats-Pending-Messages", r.batch.to_string()),
                    ("Nats-Pending-Bytes", r.max_bytes.to_string()),
                ],
            );
        }
        let (dseq, sseq) = {
            let st = self.state.lock();
            (st.dseq, st.delivered_sseq)
        };
        for reply in heartbeats {
            send_status(
                &server,
                &self.account,
                &reply,
                100,
                "Idle Heartbeat",
                &[
                    (headers::LAST_CONSUMER, dseq.to_string()),
                    (headers::LAST_STREAM, sseq.to_string()),
                ],
            );
        }
        if let Some((subject, dseq, sseq, fc)) = push_heartbeat {
            let mut extra = vec![
                (headers::LAST_CONSUMER, dseq.to_string()),
                (headers::LAST_STREAM, sseq.to_string()),
            ];
            if let Some(fc) = fc {
                extra.push(("Nats-Consumer-Stalled", fc));
            }
            send_status(
                &server,
                &self.account,
                subject.as_bytes(),
                100,
                "Idle Heartbeat",
                &extra,
            );
        }
        if let Some(e) = unpinned {
            self.advise_pin(&[e]);
        }
        for (seq, deliveries) in max_delivered {
            self.advise_max_deliveries(seq, deliveries);
        }
        self.advise_pause_ended();
        if inactive {
            if let Some(stream) = self.stream.upgrade() {
                stream.remove_consumer(&self.name);
            }
            self.delete();
            return true;
        }
        let save_due = {
            let st = self.state.lock();
            st.dirty && st.last_save.elapsed() >= SAVE_INTERVAL
        };
        if save_due {
            // File I/O (and fsync under `sync: always`) stays off the async workers.
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.save());
        }
        self.pump();
        false
    }
}
