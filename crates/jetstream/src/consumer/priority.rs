//! Pull consumer priority groups (ADR-42), as nats-server 2.15 serves them:
//!
//! - `overflow`: a request with `min_pending` / `min_ack_pending` is only
//!   served while the consumer has at least that many messages waiting for a
//!   first delivery / awaiting acks (either suffices);
//! - `pinned_client`: the first request served pins its client (the server
//!   makes up an id, sent as `Nats-Pin-Id` on every message); only requests
//!   carrying that id are served until the pin is dropped, by the unpin API
//!   or after `priority_timeout` without a request from the pinned client;
//! - `prioritized`: waiting requests are served lowest `priority` (0-9) first.
//!
//! Checks happen when a request arrives ([`check_request`]); the choice of
//! request happens per message in the pump ([`select`]). Pin changes are
//! returned as [`PinEvent`]s so advisories go out after the lock is released.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::super::types::{NextRequest, PriorityPolicy};
use super::state::State;
use super::Consumer;

/// The priority-group part of a JSON pull request. Requests with an empty or
/// numeric body have none and are subject to no group rules, as in nats-server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriorityRequest {
    pub group: String,
    pub min_pending: i64,
    pub min_ack_pending: i64,
    /// The pin id the client holds (empty: none yet).
    pub id: String,
    pub priority: i64,
}

impl PriorityRequest {
    pub fn from_next(req: &NextRequest) -> PriorityRequest {
        PriorityRequest {
            group: req.group.clone(),
            min_pending: req.min_pending,
            min_ack_pending: req.min_ack_pending,
            id: req.id.clone(),
            priority: req.priority,
        }
    }
}

/// The client currently pinned (`pinned_client` policy).
#[derive(Debug, Clone)]
pub struct Pin {
    pub id: String,
    pub group: String,
    pub since: DateTime<Utc>,
    /// Dropped at this moment unless the pinned client pulls again.
    pub expires: Instant,
}

/// A pin change to announce with an advisory.
#[derive(Debug, Clone, PartialEq)]
pub enum PinEvent {
    Pinned { group: String, id: String },
    Unpinned { group: String, reason: &'static str },
}

/// nats-server's group name rule: `^[a-zA-Z0-9/_=-]{1,16}$`.
pub fn valid_group_name(name: &str) -> bool {
    (1..=16).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'=' | b'-'))
}

fn bad(text: &str) -> (u16, String) {
    (400, format!("Bad Request - {text}"))
}

/// The checks nats-server makes on a pull request's group fields before
/// queueing it. A request from the pinned client renews the pin.
pub fn check_request(
    st: &mut State,
    req: &PriorityRequest,
    now: Instant,
) -> Result<(), (u16, String)> {
    let policy = st.config.priority_policy;
    if (req.min_pending != 0 || req.min_ack_pending != 0) && policy != PriorityPolicy::Overflow {
        return Err(bad("Not a Overflow Priority consumer"));
    }
    if !req.id.is_empty() && policy != PriorityPolicy::PinnedClient {
        return Err(bad("Not a Pinned Client Priority consumer"));
    }
    if !(0..=9).contains(&req.priority) {
        return Err(bad("Priority must be between 0 and 9"));
    }
    if policy == PriorityPolicy::None {
        return Ok(());
    }
    if req.group.is_empty() {
        return Err(bad("Priority Group missing"));
    }
    if !st.config.priority_groups.contains(&req.group) {
        return Err(bad("Invalid Priority Group"));
    }
    let ttl = pinned_ttl(st);
    if let Some(pin) = &mut st.pin {
        if req.id == pin.id {
            pin.expires = now + ttl;
        } else if !req.id.is_empty() {
            return Err((423, "Nats-Pin-Id mismatch".into()));
        }
    }
    Ok(())
}

fn pinned_ttl(st: &State) -> Duration {
    Duration::from_nanos(st.config.pinned_ttl.max(0) as u64)
}

/// Where a new request goes in the waiting queue: at the end, or for the
/// `prioritized` policy after every request of the same or a better priority.
pub fn insert_position(st: &State, req: Option<&PriorityRequest>) -> usize {
    if st.config.priority_policy != PriorityPolicy::Prioritized {
        return st.waiting.len();
    }
    let rank = |p: Option<&PriorityRequest>| p.map_or(i64::MAX, |p| p.priority);
    let mine = rank(req);
    st.waiting
        .iter()
        .position(|w| rank(w.priority.as_ref()) > mine)
        .unwrap_or(st.waiting.len())
}

/// A request ended because it holds a pin id that is no longer current:
/// (reply, messages still wanted, bytes still allowed).
pub type WrongPin = (Vec<u8>, i64, i64);

/// Which waiting request gets the next message, if any may. `num_pending`
/// counts messages awaiting a first delivery including the one at hand.
/// Returns the request's index and whether it was pinned just now.
pub fn select(
    st: &mut State,
    num_pending: u64,
    events: &mut Vec<PinEvent>,
    wrong_pin: &mut Vec<WrongPin>,
) -> Option<(usize, bool)> {
    let policy = st.config.priority_policy;
    let mut i = 0;
    while i < st.waiting.len() {
        let mut assigned = false;
        if policy == PriorityPolicy::PinnedClient {
            let held = st.waiting[i]
                .priority
                .as_ref()
                .map(|p| p.id.clone())
                .unwrap_or_default();
            match &st.pin {
                None if held.is_empty() => {
                    // The first request served pins its client (requests
                    // without a group are served unpinned).
                    let group = st.waiting[i].priority.as_ref().map(|p| p.group.clone());
                    if let Some(group) = group.filter(|g| !g.is_empty()) {
                        let id = new_pin_id();
                        st.pin = Some(Pin {
                            id: id.clone(),
                            group: group.clone(),
                            since: Utc::now(),
                            expires: Instant::now() + pinned_ttl(st),
                        });
                        if let Some(p) = st.waiting[i].priority.as_mut() {
                            p.id = id.clone();
                        }
                        events.push(PinEvent::Pinned { group, id });
                        assigned = true;
                    }
                }
                Some(pin) if held == pin.id => {}
                Some(_) if held.is_empty() => {
                    // Stand-by clients wait for the pin to go.
                    i += 1;
                    continue;
                }
                _ => {
                    // A pin id that is not (or no longer) the current one.
                    if let Some(r) = st.waiting.remove(i) {
                        wrong_pin.push((r.reply, r.batch, r.max_bytes));
                    }
                    continue;
                }
            }
        }
        if policy == PriorityPolicy::Overflow {
            if let Some(p) = &st.waiting[i].priority {
                let limited = p.min_pending > 0 || p.min_ack_pending > 0;
                let over = (p.min_pending > 0 && p.min_pending as u64 <= num_pending)
                    || (p.min_ack_pending > 0 && p.min_ack_pending as usize <= st.pending.len());
                if limited && !over {
                    i += 1;
                    continue;
                }
            }
        }
        return Some((i, assigned));
    }
    None
}

/// Drops a pin whose time is up; the advisory to send, if so.
pub fn expire(st: &mut State, now: Instant) -> Option<PinEvent> {
    if st.pin.as_ref().is_some_and(|p| p.expires <= now) {
        let pin = st.pin.take()?;
        return Some(PinEvent::Unpinned {
            group: pin.group,
            reason: "timeout",
        });
    }
    None
}

/// A pin id: 22 characters like nats-server's NUIDs.
fn new_pin_id() -> String {
    rnats_core::ids::next()
}

/// The `Nats-Pin-Id` header added to a message sent by a `pinned_client`
/// consumer (empty when the request was served unpinned).
pub fn with_pin_header(headers: Option<Vec<u8>>, pin: &str) -> Vec<u8> {
    super::super::headers::Builder::new()
        .extend_from(headers.as_deref().unwrap_or_default())
        .add("Nats-Pin-Id", pin)
        .finish()
}

impl Consumer {
    /// `$JS.API.CONSUMER.UNPIN`: drops the pin (the advisory goes out even
    /// when nobody was pinned, as with nats-server).
    pub fn unpin(&self, group: &str) {
        self.state.lock().pin = None;
        self.advise_pin(&[PinEvent::Unpinned {
            group: group.to_string(),
            reason: "admin",
        }]);
        self.wake.notify_one();
        self.pump();
    }

    /// Publishes `$JS.EVENT.ADVISORY.CONSUMER.PINNED|UNPINNED.<stream>.<consumer>`.
    pub fn advise_pin(&self, events: &[PinEvent]) {
        let domain = self
            .server
            .upgrade()
            .and_then(|s| s.opts().jetstream_domain.clone());
        for e in events {
            let (kind, group, pinned_id, reason) = match e {
                PinEvent::Pinned { group, id } => ("pinned", group, Some(id.as_str()), None),
                PinEvent::Unpinned { group, reason } => ("unpinned", group, None, Some(*reason)),
            };
            let body = PinAdvisory {
                kind: format!("io.nats.jetstream.advisory.v1.consumer_group_{kind}"),
                id: rnats_core::ids::next(),
                timestamp: rnats_core::gofmt::go_time(&Utc::now()),
                account: &self.account.name,
                stream: &self.stream_name,
                consumer: &self.name,
                domain: domain.as_deref(),
                group,
                pinned_id,
                reason,
            };
            let subject = format!(
                "$JS.EVENT.ADVISORY.CONSUMER.{}.{}.{}",
                kind.to_uppercase(),
                self.stream_name,
                self.name
            );
            // Published as serialized (a `Value` would sort the fields).
            if let (Some(server), Ok(bytes)) = (self.server.upgrade(), serde_json::to_vec(&body)) {
                server.publish_in(&self.account, subject.as_bytes(), None, None, &bytes);
            }
        }
    }
}

/// The pinned/unpinned advisory, fields in nats-server's order.
#[derive(Serialize)]
struct PinAdvisory<'a> {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    timestamp: String,
    account: &'a str,
    stream: &'a str,
    consumer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::state::PullRequest;
    use crate::types::ConsumerConfig;

    fn state(policy: PriorityPolicy) -> State {
        State::new(ConsumerConfig {
            priority_policy: policy,
            priority_groups: vec!["A".into(), "B".into()],
            pinned_ttl: 1_000_000_000,
            ..ConsumerConfig::default()
        })
    }

    fn request(reply: &str, p: Option<PriorityRequest>) -> PullRequest {
        PullRequest {
            reply: reply.as_bytes().to_vec(),
            batch: 1,
            max_bytes: 0,
            expires: None,
            no_wait: false,
            heartbeat: None,
            next_heartbeat: None,
            sent: 0,
            priority: p,
        }
    }

    fn group(g: &str) -> PriorityRequest {
        PriorityRequest {
            group: g.into(),
            ..Default::default()
        }
    }

    #[test]
    fn group_names() {
        assert!(valid_group_name("A-b_c/d=9"));
        assert!(valid_group_name("abcdefghijklmnop"));
        assert!(!valid_group_name("abcdefghijklmnopq"));
        assert!(!valid_group_name(""));
        assert!(!valid_group_name("a.b"));
    }

    #[test]
    fn request_checks() {
        let now = Instant::now();
        let mut st = state(PriorityPolicy::PinnedClient);
        let err = |st: &mut State, r: PriorityRequest| check_request(st, &r, now).err();
        assert_eq!(
            err(&mut st, group("")).unwrap().1,
            "Bad Request - Priority Group missing"
        );
        assert_eq!(
            err(&mut st, group("C")).unwrap().1,
            "Bad Request - Invalid Priority Group"
        );
        let over = PriorityRequest {
            min_pending: 1,
            ..group("A")
        };
        assert_eq!(
            err(&mut st, over).unwrap().1,
            "Bad Request - Not a Overflow Priority consumer"
        );
        let high = PriorityRequest {
            priority: 10,
            ..group("A")
        };
        assert_eq!(err(&mut st, high).unwrap().0, 400);
        assert_eq!(err(&mut st, group("A")), None);
        st.pin = Some(Pin {
            id: "P".into(),
            group: "A".into(),
            since: Utc::now(),
            expires: now,
        });
        let other = PriorityRequest {
            id: "Q".into(),
            ..group("A")
        };
        assert_eq!(
            err(&mut st, other),
            Some((423, "Nats-Pin-Id mismatch".into()))
        );
        let mine = PriorityRequest {
            id: "P".into(),
            ..group("A")
        };
        assert_eq!(err(&mut st, mine), None);
        assert!(
            st.pin.as_ref().is_some_and(|p| p.expires > now),
            "pin renewed"
        );
    }

    #[test]
    fn pinning_serves_only_the_pinned_client() {
        let mut st = state(PriorityPolicy::PinnedClient);
        st.waiting.push_back(request("one", Some(group("A"))));
        st.waiting.push_back(request("two", Some(group("A"))));
        let (mut ev, mut wrong) = (Vec::new(), Vec::new());
        assert_eq!(select(&mut st, 5, &mut ev, &mut wrong), Some((0, true)));
        let id = st.pin.as_ref().map(|p| p.id.clone()).unwrap_or_default();
        assert_eq!(
            ev,
            vec![PinEvent::Pinned {
                group: "A".into(),
                id: id.clone()
            }]
        );
        st.waiting.pop_front();
        // "two" holds no pin id: it waits.
        assert_eq!(select(&mut st, 5, &mut ev, &mut wrong), None);
        st.waiting.push_back(request(
            "three",
            Some(PriorityRequest {
                id: "old".into(),
                ..group("A")
            }),
        ));
        st.waiting
            .push_back(request("four", Some(PriorityRequest { id, ..group("A") })));
        assert_eq!(select(&mut st, 5, &mut ev, &mut wrong), Some((1, false)));
        assert_eq!(wrong, vec![(b"three".to_vec(), 1, 0)]);
        // Expiry unpins; then "two" is pinned anew.
        let later = Instant::now() + Duration::from_secs(2);
        assert!(matches!(
            expire(&mut st, later),
            Some(PinEvent::Unpinned {
                reason: "timeout",
                ..
            })
        ));
        st.waiting.remove(1);
        assert_eq!(select(&mut st, 5, &mut ev, &mut wrong), Some((0, true)));
    }

    #[test]
    fn overflow_thresholds() {
        let mut st = state(PriorityPolicy::Overflow);
        st.waiting.push_back(request(
            "a",
            Some(PriorityRequest {
                min_pending: 3,
                ..group("A")
            }),
        ));
        let (mut ev, mut wrong) = (Vec::new(), Vec::new());
        assert_eq!(select(&mut st, 2, &mut ev, &mut wrong), None);
        assert_eq!(select(&mut st, 3, &mut ev, &mut wrong), Some((0, false)));
        st.waiting.push_front(request(
            "b",
            Some(PriorityRequest {
                min_ack_pending: 1,
                ..group("A")
            }),
        ));
        assert_eq!(select(&mut st, 0, &mut ev, &mut wrong), None);
        st.pending.insert(
            1,
            super::super::state::Pending {
                dseq: 1,
                deadline: Instant::now(),
                sent: Instant::now(),
            },
        );
        assert_eq!(select(&mut st, 0, &mut ev, &mut wrong), Some((0, false)));
    }

    #[test]
    fn prioritized_order() {
        let mut st = state(PriorityPolicy::Prioritized);
        for (name, prio) in [("p5", 5), ("p1", 1), ("p5b", 5), ("p0", 0)] {
            let p = PriorityRequest {
                priority: prio,
                ..group("A")
            };
            let at = insert_position(&st, Some(&p));
            st.waiting.insert(at, request(name, Some(p)));
        }
        let at = insert_position(&st, None);
        st.waiting.insert(at, request("none", None));
        let order: Vec<_> = st
            .waiting
            .iter()
            .map(|w| String::from_utf8_lossy(&w.reply).into_owned())
            .collect();
        assert_eq!(order, ["p0", "p1", "p5", "p5b", "none"]);
    }
}
