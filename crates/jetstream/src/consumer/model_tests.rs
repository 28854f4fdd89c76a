//! Property test of the ack/redelivery engine (issue #5): random sequences of
//! deliveries, acks, naks, terms, progress and clock advances are applied to
//! a consumer's [`State`] (over a real MemStore, with a simulated clock) and
//! to a naive model that tracks each message on its own. After every step the
//! pending set, delivery counts, redelivery queue, ack floor and delivered
//! sequences must agree, and no message is sent more than `max_deliver` times.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rnats_store::{MemStore, MsgStore, StoreLimits};

use super::deliver::next_message;
use super::state::State;
use crate::types::{AckPolicy, ConsumerConfig};

const ACK_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
enum Op {
    Deliver,
    Ack(u64),
    Nak(u64, Option<u64>),
    Progress(u64),
    Term(u64),
    /// Seconds pass, then due ack deadlines are handled.
    Advance(u64),
}

fn op(n: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Deliver),
        2 => (1..=n).prop_map(Op::Ack),
        1 => (1..=n, proptest::option::of(1..8u64)).prop_map(|(s, d)| Op::Nak(s, d)),
        1 => (1..=n).prop_map(Op::Progress),
        1 => (1..=n).prop_map(Op::Term),
        2 => (1..8u64).prop_map(Op::Advance),
    ]
}

/// One message as the model sees it.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    New,
    Pending {
        deliveries: u64,
        dseq: u64,
        /// `None` once queued by expiry (it is not due again until resent).
        deadline: Option<Instant>,
        queued: bool,
    },
    Done,
    GivenUp {
        deliveries: u64,
    },
}

struct Model {
    msgs: BTreeMap<u64, Msg>,
    dseq: u64,
    delivered_sseq: u64,
    max_deliver: u64,
    ack_all: bool,
    /// Consumer-sequence ack floor (see [`Model::consumer_floor`]).
    floor_d: u64,
}

impl Model {
    fn pending(&self) -> impl Iterator<Item = (u64, &Msg)> {
        self.msgs
            .iter()
            .filter(|(_, m)| matches!(m, Msg::Pending { .. }))
            .map(|(s, m)| (*s, m))
    }

    /// Returns the sequence sent, if any.
    fn deliver(&mut self, now: Instant) -> Option<u64> {
        let queued: Vec<u64> = self
            .pending()
            .filter(|(_, m)| matches!(m, Msg::Pending { queued: true, .. }))
            .map(|(s, _)| s)
            .collect();
        for seq in queued {
            let Some(Msg::Pending { deliveries, .. }) = self.msgs.get(&seq).cloned() else {
                continue;
            };
            if self.max_deliver > 0 && deliveries >= self.max_deliver {
                self.msgs.insert(seq, Msg::GivenUp { deliveries });
                self.floor_d = self.consumer_floor();
                continue;
            }
            self.send(seq, deliveries + 1, now);
            return Some(seq);
        }
        let seq = self
            .msgs
            .iter()
            .find(|(_, m)| **m == Msg::New)
            .map(|(s, _)| *s)?;
        self.send(seq, 1, now);
        self.delivered_sseq = self.delivered_sseq.max(seq);
        Some(seq)
    }

    fn send(&mut self, seq: u64, deliveries: u64, now: Instant) {
        self.dseq += 1;
        self.msgs.insert(
            seq,
            Msg::Pending {
                deliveries,
                dseq: self.dseq,
                deadline: Some(now + ACK_WAIT),
                queued: false,
            },
        );
    }

    fn ack(&mut self, seq: u64) {
        let upto = if self.ack_all { 1 } else { seq };
        let mut moved = false;
        for s in upto..=seq {
            if let Some(m @ Msg::Pending { .. }) = self.msgs.get_mut(&s) {
                *m = Msg::Done;
                moved = true;
            }
        }
        if moved {
            self.floor_d = self.consumer_floor();
        }
    }

    fn nak(&mut self, seq: u64, delay: Option<Duration>, now: Instant) {
        if let Some(Msg::Pending {
            deadline, queued, ..
        }) = self.msgs.get_mut(&seq)
        {
            match delay {
                Some(d) => *deadline = Some(now + d),
                None => *queued = true,
            }
        }
    }

    fn progress(&mut self, seq: u64, now: Instant) {
        if let Some(Msg::Pending { deadline, .. }) = self.msgs.get_mut(&seq) {
            *deadline = Some(now + ACK_WAIT);
        }
    }

    fn term(&mut self, seq: u64) {
        if let Some(m @ Msg::Pending { .. }) = self.msgs.get_mut(&seq) {
            *m = Msg::Done;
            self.floor_d = self.consumer_floor();
        }
    }

    fn expire(&mut self, now: Instant) {
        let mut gave_up = false;
        for m in self.msgs.values_mut() {
            if let Msg::Pending {
                deliveries,
                deadline: Some(t),
                ..
            } = m
            {
                if *t > now {
                    continue;
                }
                if self.max_deliver > 0 && *deliveries >= self.max_deliver {
                    *m = Msg::GivenUp {
                        deliveries: *deliveries,
                    };
                    gave_up = true;
                } else if let Msg::Pending {
                    deadline, queued, ..
                } = m
                {
                    *deadline = None;
                    *queued = true;
                }
            }
        }
        if gave_up {
            self.floor_d = self.consumer_floor();
        }
    }

    /// The stream ack floor: just below the oldest pending message.
    fn ack_floor(&self) -> u64 {
        match self.pending().next() {
            Some((seq, _)) => seq - 1,
            None => self.delivered_sseq,
        }
    }

    /// The consumer-sequence ack floor, as it is when the floor last moved
    /// (acks, terms, give-ups): below the oldest pending delivery.
    fn consumer_floor(&self) -> u64 {
        match self.pending().next() {
            Some((_, Msg::Pending { dseq, .. })) => dseq - 1,
            _ => self.dseq,
        }
    }
}

fn check(st: &State, model: &Model) -> Result<(), TestCaseError> {
    let engine: BTreeMap<u64, (u64, u64)> = st
        .pending
        .iter()
        .map(|(s, p)| (*s, (st.redelivered.get(s).copied().unwrap_or(0), p.dseq)))
        .collect();
    let expected: BTreeMap<u64, (u64, u64)> = model
        .pending()
        .filter_map(|(s, m)| match m {
            Msg::Pending {
                deliveries, dseq, ..
            } => Some((s, (*deliveries, *dseq))),
            _ => None,
        })
        .collect();
    prop_assert_eq!(engine, expected, "pending (deliveries, consumer seq)");
    let queued: BTreeSet<u64> = st
        .redeliver
        .iter()
        .copied()
        .filter(|s| st.pending.contains_key(s))
        .collect();
    let expected: BTreeSet<u64> = model
        .pending()
        .filter(|(_, m)| matches!(m, Msg::Pending { queued: true, .. }))
        .map(|(s, _)| s)
        .collect();
    prop_assert_eq!(queued, expected, "redelivery queue");
    prop_assert_eq!(st.ack_floor_s, model.ack_floor(), "stream ack floor");
    prop_assert_eq!(st.ack_floor_d, model.floor_d, "consumer ack floor");
    prop_assert_eq!(
        (st.delivered_sseq, st.dseq),
        (model.delivered_sseq, model.dseq)
    );
    let redelivered = st.redelivered.values().filter(|c| **c > 1).count();
    let expected = model
        .msgs
        .values()
        .filter(|m| match m {
            Msg::Pending { deliveries, .. } | Msg::GivenUp { deliveries } => *deliveries > 1,
            _ => false,
        })
        .count();
    prop_assert_eq!(redelivered, expected, "num_redelivered");
    Ok(())
}

fn run(ops: Vec<Op>, n: u64, max_deliver: i64, ack_all: bool) -> Result<(), TestCaseError> {
    let store: Arc<dyn MsgStore> = Arc::new(MemStore::new(StoreLimits::default()));
    for i in 0..n {
        store
            .store("m", b"", format!("{i}").as_bytes(), 0)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let mut st = State::new(ConsumerConfig {
        ack_policy: if ack_all {
            AckPolicy::All
        } else {
            AckPolicy::Explicit
        },
        ack_wait: ACK_WAIT.as_nanos() as i64,
        max_deliver,
        ..ConsumerConfig::default()
    });
    st.set_start(&store);
    let mut model = Model {
        msgs: (1..=n).map(|s| (s, Msg::New)).collect(),
        dseq: 0,
        delivered_sseq: 0,
        max_deliver: max_deliver.max(0) as u64,
        ack_all,
        floor_d: 0,
    };
    let mut now = Instant::now();
    for op in ops {
        match op {
            Op::Deliver => {
                let sent = next_message(&mut st, &store).map(|(m, redelivery)| {
                    st.note_delivery(m.seq, redelivery, now);
                    m.seq
                });
                prop_assert_eq!(sent, model.deliver(now), "message chosen");
                if let Some(seq) = sent {
                    let count = st.redelivered.get(&seq).copied().unwrap_or(0);
                    prop_assert!(model.max_deliver == 0 || count <= model.max_deliver);
                }
            }
            Op::Ack(seq) => {
                if !st.ack(seq).is_empty() {
                    st.advance_floor();
                }
                model.ack(seq);
            }
            Op::Nak(seq, delay) => {
                let delay = delay.map(Duration::from_secs);
                st.nak(seq, delay, now);
                model.nak(seq, delay, now);
            }
            Op::Progress(seq) => {
                st.progress(seq, now);
                model.progress(seq, now);
            }
            Op::Term(seq) => {
                if st.term(seq).is_some() {
                    st.advance_floor();
                }
                model.term(seq);
            }
            Op::Advance(secs) => {
                now += Duration::from_secs(secs);
                st.expire_acks(now);
                model.expire(now);
            }
        }
        check(&st, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explicit_ack_engine_matches_model(
        ops in proptest::collection::vec(op(8), 1..80),
        max_deliver in prop_oneof![Just(-1i64), 1..4i64],
    ) {
        run(ops, 8, max_deliver, false)?;
    }

    #[test]
    fn ack_all_engine_matches_model(
        ops in proptest::collection::vec(op(8), 1..80),
        max_deliver in prop_oneof![Just(-1i64), 1..4i64],
    ) {
        run(ops, 8, max_deliver, true)?;
    }
}
