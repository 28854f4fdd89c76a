//! A consumer's advisories and ack metrics (`$JS.EVENT.*.<stream>.<consumer>`),
//! published in the stream's account with the bodies from
//! [`crate::advisories`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Consumer;
use crate::advisories::{self as adv, Action};

impl Consumer {
    /// Publishes one event on `<prefix>.<stream>.<consumer>` if anyone listens.
    fn advise<T: Serialize>(
        &self,
        prefix: &str,
        kind: &'static str,
        build: impl FnOnce(Option<String>) -> T,
    ) {
        if let Some(server) = self.server.upgrade() {
            let subject = format!("{prefix}.{}.{}", self.stream_name, self.name);
            adv::publish(&server, &self.account, &subject, kind, build);
        }
    }

    /// `CONSUMER.CREATED` or `CONSUMER.DELETED`.
    pub fn advise_action(&self, action: Action) {
        let prefix = match action {
            Action::Delete => adv::CONSUMER_DELETED,
            Action::Create | Action::Modify => adv::CONSUMER_CREATED,
        };
        self.advise(prefix, adv::CONSUMER_ACTION, |domain| adv::ConsumerAction {
            stream: &self.stream_name,
            consumer: &self.name,
            action,
            domain,
        });
    }

    /// `CONSUMER.PAUSE`: paused until `until`, or running again. An end of
    /// pause in the future is announced again when it comes (see `timers`).
    pub fn advise_pause(&self, until: Option<DateTime<Utc>>) {
        let paused = until.is_some_and(|t| t > Utc::now());
        *self.pause_ends.lock() = until.filter(|_| paused);
        self.advise(adv::CONSUMER_PAUSE, adv::CONSUMER_PAUSE_TYPE, |domain| {
            adv::ConsumerPause {
                stream: &self.stream_name,
                consumer: &self.name,
                paused,
                pause_until: adv::go_time_or_zero(until),
                domain,
            }
        });
    }

    /// The end of an announced pause, when it has come: announced as
    /// `paused: false` with the time it ended.
    pub fn advise_pause_ended(&self) {
        let ended = {
            let mut ends = self.pause_ends.lock();
            match *ends {
                Some(t) if t <= Utc::now() => ends.take(),
                _ => None,
            }
        };
        if let Some(t) = ended {
            self.advise(adv::CONSUMER_PAUSE, adv::CONSUMER_PAUSE_TYPE, |domain| {
                adv::ConsumerPause {
                    stream: &self.stream_name,
                    consumer: &self.name,
                    paused: false,
                    pause_until: adv::go_time_or_zero(Some(t)),
                    domain,
                }
            });
        }
    }

    pub fn advise_max_deliveries(&self, seq: u64, deliveries: u64) {
        self.advise(adv::MAX_DELIVERIES, adv::MAX_DELIVER_TYPE, |domain| {
            adv::MaxDeliver {
                stream: &self.stream_name,
                consumer: &self.name,
                stream_seq: seq,
                deliveries,
                domain,
            }
        });
    }

    pub fn advise_nak(&self, seq: u64, dseq: u64, deliveries: u64) {
        self.advise(adv::MSG_NAKED, adv::NAK_TYPE, |domain| adv::Nak {
            stream: &self.stream_name,
            consumer: &self.name,
            consumer_seq: dseq,
            stream_seq: seq,
            deliveries,
            domain,
        });
    }

    pub fn advise_terminated(&self, seq: u64, dseq: u64, deliveries: u64, reason: &str) {
        self.advise(adv::MSG_TERMINATED, adv::TERMINATED_TYPE, |domain| {
            adv::Terminated {
                stream: &self.stream_name,
                consumer: &self.name,
                consumer_seq: dseq,
                stream_seq: seq,
                deliveries,
                reason,
                domain,
            }
        });
    }

    /// `$JS.EVENT.METRIC.CONSUMER.ACK`: one acked delivery, `ack_time` after
    /// it was sent; sent for `sample_freq` percent of acks.
    pub fn sample_ack(&self, sample: AckSample) {
        self.advise(adv::ACK_METRIC, adv::ACK_METRIC_TYPE, |domain| {
            adv::AckMetric {
                stream: &self.stream_name,
                consumer: &self.name,
                consumer_seq: sample.dseq,
                stream_seq: sample.seq,
                ack_time: i64::try_from(sample.ack_time.as_nanos()).unwrap_or(i64::MAX),
                deliveries: sample.deliveries,
                domain,
            }
        });
    }
}

/// An acked delivery picked for the ack metric.
pub struct AckSample {
    pub seq: u64,
    pub dseq: u64,
    pub deliveries: u64,
    pub ack_time: std::time::Duration,
}
