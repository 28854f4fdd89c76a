//! `$JS.API.CONSUMER.RESET.<stream>.<consumer>` (nats-server 2.14+): move a
//! consumer back (or forward) to a stream sequence, forgetting everything
//! delivered and unacknowledged. An empty body resets to just above the ack
//! floor; `{"seq": n}` to `n`, allowed for `deliver_policy` all, and for
//! by-start-sequence / by-start-time when not below the configured start.
//! The reply is the consumer's info plus `reset_seq`. Like `MSG.NEXT`, the
//! subject is subscribed per consumer, so a missing consumer gets no answer.

use std::sync::Weak;

use super::super::errors::{JsError, JsErrorKind};
use super::super::types::{ApiResponse, ConsumerResetResponse, DeliverPolicy};
use super::state::State;
use super::Consumer;
use rnats_core::router::Message;
use rnats_core::subscription::InternalHandler;

pub struct ResetHandler(pub Weak<Consumer>);

impl InternalHandler for ResetHandler {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(c), Some(reply)) = (self.0.upgrade(), msg.reply) else {
            return;
        };
        let answer = ApiResponse::from_result(c.reset(msg.payload)).to_vec();
        if let Some(server) = c.server.upgrade() {
            server.publish_in(&c.account, reply, None, None, &answer);
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ResetRequest {
    seq: u64,
}

/// Why a reset to a sequence is refused (the `{err}` of `invalid reset`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResetError {
    #[error("below start seq")]
    BelowStartSeq,
    #[error("below start time")]
    BelowStartTime,
    #[error("not allowed")]
    NotAllowed,
}

impl State {
    /// Where a reset to `seq` (0: the ack floor) lands, if allowed.
    /// `start_time_seq` is the first sequence at or after `opt_start_time`.
    pub fn reset_target(&self, seq: u64, start_time_seq: u64) -> Result<u64, ResetError> {
        if seq == 0 {
            return Ok(self.ack_floor_s + 1);
        }
        match self.config.deliver_policy {
            DeliverPolicy::All => {}
            DeliverPolicy::ByStartSequence if seq < self.config.opt_start_seq => {
                return Err(ResetError::BelowStartSeq)
            }
            DeliverPolicy::ByStartSequence => {}
            DeliverPolicy::ByStartTime if seq < start_time_seq => {
                return Err(ResetError::BelowStartTime)
            }
            DeliverPolicy::ByStartTime => {}
            _ => return Err(ResetError::NotAllowed),
        }
        Ok(seq.max(1))
    }

    /// Starts over at `seq`: nothing pending or owed, consumer sequence 0.
    pub fn reset_to(&mut self, seq: u64) {
        self.pending.clear();
        self.redelivered.clear();
        self.redeliver.clear();
        self.initial.clear();
        self.next_sseq = seq;
        self.dseq = 0;
        self.delivered_sseq = seq - 1;
        self.ack_floor_d = 0;
        self.ack_floor_s = seq - 1;
        self.last_delivered_at = None;
        self.last_ack_at = None;
        self.replay_last = None;
        self.replay_due = None;
        self.dirty = true;
    }
}

impl Consumer {
    fn reset(&self, body: &[u8]) -> Result<ConsumerResetResponse, JsError> {
        // Like nats-server, only a body of zero length is the empty request.
        let req: ResetRequest = if body.is_empty() {
            ResetRequest::default()
        } else {
            serde_json::from_slice(body).map_err(|e| {
                JsError::new(JsErrorKind::InvalidJSON)
                    .arg("err", &super::super::api::go_json_error(&e, body))
            })?
        };
        let stream = self.stream.upgrade();
        let start_time_seq = {
            let st = self.state.lock();
            match (&stream, st.config.opt_start_time) {
                (Some(stream), Some(t)) if req.seq > 0 => {
                    first_seq_at(&stream.store, t.timestamp_nanos_opt().unwrap_or(0))
                }
                _ => 0,
            }
        };
        let seq = {
            let mut st = self.state.lock();
            let seq = st.reset_target(req.seq, start_time_seq).map_err(|e| {
                JsError::new(JsErrorKind::ConsumerInvalidReset).arg("err", &e.to_string())
            })?;
            st.reset_to(seq);
            seq
        };
        self.save();
        self.wake.notify_one();
        self.pump();
        Ok(ConsumerResetResponse {
            info: Some(self.info_full()),
            reset_seq: seq,
        })
    }
}

/// The first stored sequence with a timestamp at or after `since` (ns).
fn first_seq_at(store: &std::sync::Arc<dyn rnats_store::MsgStore>, since: i64) -> u64 {
    let st = store.state();
    let mut seq = st.first_seq.max(1);
    loop {
        match store.load_next(">", seq) {
            Ok(m) if m.ts >= since => return m.seq,
            Ok(m) => seq = m.seq + 1,
            Err(_) => return st.last_seq + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ConsumerConfig;

    #[test]
    fn targets_follow_the_deliver_policy() {
        let mut st = State::new(ConsumerConfig::default());
        st.ack_floor_s = 4;
        assert_eq!(st.reset_target(0, 0), Ok(5));
        assert_eq!(st.reset_target(2, 0), Ok(2));
        st.config.deliver_policy = DeliverPolicy::ByStartSequence;
        st.config.opt_start_seq = 3;
        assert_eq!(st.reset_target(2, 0), Err(ResetError::BelowStartSeq));
        assert_eq!(st.reset_target(3, 0), Ok(3));
        st.config.deliver_policy = DeliverPolicy::ByStartTime;
        assert_eq!(st.reset_target(6, 7), Err(ResetError::BelowStartTime));
        st.config.deliver_policy = DeliverPolicy::New;
        assert_eq!(st.reset_target(6, 0), Err(ResetError::NotAllowed));
        assert_eq!(st.reset_target(0, 0), Ok(5));
        st.reset_to(3);
        assert_eq!(
            (st.next_sseq, st.dseq, st.ack_floor_s, st.delivered_sseq),
            (3, 0, 2, 2)
        );
    }
}
