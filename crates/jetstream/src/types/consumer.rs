//! Consumer types: `ConsumerConfig` (every field of nats-server's
//! `consumer_configuration.json`, with `with_defaults` = its
//! `setConsumerConfigDefaults`), its policy enums, `ConsumerInfo`,
//! `SequenceInfo` and `PriorityGroupState`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{is_false, is_zero_i64, is_zero_u64, nullable, time_fmt, zero_time};
use super::{ClusterInfo, StreamConfig, NANOS_PER_SEC};

/// Where a consumer starts. `"undefined"` reads as `all`, as in nats-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    #[default]
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

/// nats-server's text for an enum value it does not know.
fn unknown_value<E: serde::de::Error>(s: &str) -> E {
    // Go prints the raw JSON token with %q: `"bogus"` becomes `"\"bogus\""`.
    E::custom(format!("can not unmarshal {:?}", format!("\"{s}\"")))
}

impl<'de> Deserialize<'de> for AckPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "none" => AckPolicy::None,
            "all" => AckPolicy::All,
            "explicit" => AckPolicy::Explicit,
            "flow_control" => AckPolicy::FlowControl,
            _ => return Err(unknown_value(&s)),
        })
    }
}

impl<'de> Deserialize<'de> for ReplayPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "instant" => ReplayPolicy::Instant,
            "original" => ReplayPolicy::Original,
            _ => return Err(unknown_value(&s)),
        })
    }
}

impl<'de> Deserialize<'de> for DeliverPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "all" | "undefined" => DeliverPolicy::All,
            "last" => DeliverPolicy::Last,
            "new" => DeliverPolicy::New,
            "by_start_sequence" => DeliverPolicy::ByStartSequence,
            "by_start_time" => DeliverPolicy::ByStartTime,
            "last_per_subject" => DeliverPolicy::LastPerSubject,
            _ => return Err(unknown_value(&s)),
        })
    }
}

/// How deliveries are acknowledged. Absent means `none` (Go's zero value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckPolicy {
    #[default]
    None,
    All,
    Explicit,
    FlowControl,
}

/// Pace of redelivery of stored messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

/// How pull requests of a priority group are served. Omitted when `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityPolicy {
    #[default]
    None,
    Overflow,
    PinnedClient,
    Prioritized,
}

impl<'de> Deserialize<'de> for PriorityPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "none" => PriorityPolicy::None,
            "overflow" => PriorityPolicy::Overflow,
            "pinned_client" => PriorityPolicy::PinnedClient,
            "prioritized" => PriorityPolicy::Prioritized,
            // nats-server's own wording for this enum.
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown priority policy: \"{s}\""
                )))
            }
        })
    }
}

impl PriorityPolicy {
    pub fn is_none(&self) -> bool {
        *self == PriorityPolicy::None
    }
}

/// `action` of a consumer create request: `""` create-or-update, `"create"`, `"update"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConsumerAction {
    #[default]
    CreateOrUpdate,
    Update,
    Create,
}

impl Serialize for ConsumerAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            ConsumerAction::CreateOrUpdate => "",
            ConsumerAction::Update => "update",
            ConsumerAction::Create => "create",
        })
    }
}

impl<'de> Deserialize<'de> for ConsumerAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref() {
            None | Some("") => Ok(ConsumerAction::CreateOrUpdate),
            Some("create") => Ok(ConsumerAction::Create),
            Some("update") => Ok(ConsumerAction::Update),
            Some(other) => Err(serde::de::Error::custom(format!(
                "unknown consumer action: \"{other}\""
            ))),
        }
    }
}

/// A consumer's configuration. `Default` is Go's zero value; durations are nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    #[serde(
        rename = "durable_name",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub durable: String,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    pub deliver_policy: DeliverPolicy,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    #[serde(with = "time_fmt::option", skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<DateTime<Utc>>,
    pub ack_policy: AckPolicy,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub ack_wait: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_deliver: i64,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub filter_subject: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    pub replay_policy: ReplayPolicy,
    /// Bits per second.
    #[serde(rename = "rate_limit_bps", skip_serializing_if = "is_zero_u64")]
    pub rate_limit: u64,
    #[serde(
        rename = "sample_freq",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub sample_frequency: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_waiting: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    /// Pull: most messages per request.
    #[serde(rename = "max_batch", skip_serializing_if = "is_zero_i64")]
    pub max_request_batch: i64,
    /// Pull: longest `expires` of a request.
    #[serde(rename = "max_expires", skip_serializing_if = "is_zero_i64")]
    pub max_request_expires: i64,
    /// Pull: largest `max_bytes` of a request.
    #[serde(rename = "max_bytes", skip_serializing_if = "is_zero_i64")]
    pub max_request_max_bytes: i64,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub deliver_subject: String,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub deliver_group: String,
    #[serde(rename = "idle_heartbeat", skip_serializing_if = "is_zero_i64")]
    pub heartbeat: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    /// Always sent (0 = as the stream).
    pub num_replicas: i64,
    #[serde(rename = "mem_storage", skip_serializing_if = "is_false")]
    pub memory_storage: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub sourcing: bool,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
    #[serde(with = "time_fmt::option", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<String>,
    #[serde(skip_serializing_if = "PriorityPolicy::is_none")]
    pub priority_policy: PriorityPolicy,
    /// Pinned-client TTL, nanoseconds.
    #[serde(rename = "priority_timeout", skip_serializing_if = "is_zero_i64")]
    pub pinned_ttl: i64,
}

/// nats-server's `JsAckWaitDefault`: 30 s.
pub const DEFAULT_ACK_WAIT: i64 = 30 * NANOS_PER_SEC;
/// nats-server's `JsDefaultMaxAckPending`.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// nats-server's `JSWaitQueueDefaultMax`: pull requests waiting at once.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// nats-server's `JsDefaultPinnedTTL`: 2 minutes.
pub const DEFAULT_PINNED_TTL: i64 = 120 * NANOS_PER_SEC;
/// nats-server's `JsDeleteWaitTimeDefault`: inactivity before an ephemeral is removed.
pub const DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD: i64 = 5 * NANOS_PER_SEC;
/// nats-server's `sourceHealthHB`, the heartbeat of `flow_control` ack policy consumers.
pub const FLOW_CONTROL_HEARTBEAT: i64 = NANOS_PER_SEC;

impl ConsumerConfig {
    /// A durable is a consumer with `durable_name` set.
    pub fn is_durable(&self) -> bool {
        !self.durable.is_empty()
    }

    /// Pull consumers have no deliver subject.
    pub fn is_pull(&self) -> bool {
        self.deliver_subject.is_empty()
    }

    /// What nats-server's pedantic mode refuses in this config: a value the
    /// defaults would otherwise replace (in nats-server's order).
    pub fn pedantic_violation(&self, stream: &StreamConfig) -> Option<&'static str> {
        let checks: [(bool, &'static str); 12] = [
            (self.max_deliver < -1, "max_deliver must be set to -1"),
            (self.max_waiting < 0, "max_waiting must not be negative"),
            (
                self.max_ack_pending < -1,
                "max_ack_pending must be set to -1",
            ),
            (self.max_request_batch < 0, "max_batch must not be negative"),
            (
                self.max_request_expires < 0,
                "max_expires must not be negative",
            ),
            (
                self.max_request_max_bytes < 0,
                "max_bytes must not be negative",
            ),
            (self.heartbeat < 0, "idle_heartbeat must not be negative"),
            (
                self.inactive_threshold < 0,
                "inactive_threshold must not be negative",
            ),
            (self.pinned_ttl < 0, "priority_timeout must not be negative"),
            (
                self.backoff.first().is_some_and(|b| {
                    // As the defaults would compute it before the back-off.
                    let wait = if self.ack_wait == 0
                        && matches!(self.ack_policy, AckPolicy::Explicit | AckPolicy::All)
                    {
                        DEFAULT_ACK_WAIT
                    } else {
                        self.ack_wait
                    };
                    wait != *b
                }),
                "first backoff value has to equal batch AckWait",
            ),
            (
                self.max_ack_pending == 0 && stream.consumer_limits.max_ack_pending > 0,
                "max_ack_pending must be set if it's configured in stream limits",
            ),
            (
                self.inactive_threshold == 0 && stream.consumer_limits.inactive_threshold > 0,
                "inactive_threshold must be set if it's configured in stream limits",
            ),
        ];
        checks.iter().find(|(bad, _)| *bad).map(|(_, why)| *why)
    }

    /// nats-server's `setConsumerConfigDefaults` (not pedantic, no server or
    /// account limits), plus the 5 s inactive threshold nats-server gives
    /// ephemerals when it creates them (visible in its create responses).
    pub fn with_defaults(mut self, stream: &StreamConfig) -> ConsumerConfig {
        if self.max_deliver == 0 || self.max_deliver < -1 {
            self.max_deliver = -1;
        }
        if self.max_waiting < 0 {
            self.max_waiting = 0;
        }
        if self.max_ack_pending < -1 {
            self.max_ack_pending = -1;
        }
        for v in [
            &mut self.max_request_batch,
            &mut self.max_request_expires,
            &mut self.max_request_max_bytes,
            &mut self.heartbeat,
            &mut self.inactive_threshold,
            &mut self.pinned_ttl,
        ] {
            if *v < 0 {
                *v = 0;
            }
        }
        if self.deliver_subject.is_empty() && self.max_waiting == 0 {
            self.max_waiting = DEFAULT_MAX_WAITING;
        }
        if self.ack_wait == 0 && matches!(self.ack_policy, AckPolicy::Explicit | AckPolicy::All) {
            self.ack_wait = DEFAULT_ACK_WAIT;
        }
        if let Some(first) = self.backoff.first() {
            self.ack_wait = *first;
        }
        if self.max_ack_pending == 0 {
            self.max_ack_pending = stream.consumer_limits.max_ack_pending;
        }
        if self.inactive_threshold == 0 {
            self.inactive_threshold = stream.consumer_limits.inactive_threshold;
        }
        if self.max_ack_pending == 0 && self.ack_policy != AckPolicy::None {
            self.max_ack_pending = DEFAULT_MAX_ACK_PENDING;
        }
        if self.priority_policy == PriorityPolicy::PinnedClient && self.pinned_ttl == 0 {
            self.pinned_ttl = DEFAULT_PINNED_TTL;
        }
        if self.ack_policy == AckPolicy::FlowControl {
            self.flow_control = true;
            self.heartbeat = FLOW_CONTROL_HEARTBEAT;
        }
        if !self.is_durable() && self.inactive_threshold == 0 {
            self.inactive_threshold = DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD;
        }
        self
    }
}

/// A consumer and a stream sequence, and when it last moved.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SequenceInfo {
    #[serde(rename = "consumer_seq")]
    pub consumer_seq: u64,
    #[serde(rename = "stream_seq")]
    pub stream_seq: u64,
    #[serde(
        default,
        with = "time_fmt::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_active: Option<DateTime<Utc>>,
}

/// A priority group's pinned client. `pinned_ts` is always sent (zero time when unpinned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityGroupState {
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pinned_client_id: String,
    #[serde(with = "time_fmt", default = "zero_time")]
    pub pinned_ts: DateTime<Utc>,
}

impl PriorityGroupState {
    pub fn unpinned(group: impl Into<String>) -> PriorityGroupState {
        PriorityGroupState {
            group: group.into(),
            pinned_client_id: String::new(),
            pinned_ts: zero_time(),
        }
    }
}

/// A consumer's configuration and state, as in consumer create/info/list responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    #[serde(rename = "stream_name")]
    pub stream: String,
    pub name: String,
    #[serde(with = "time_fmt")]
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConsumerConfig>,
    pub delivered: SequenceInfo,
    pub ack_floor: SequenceInfo,
    pub num_ack_pending: i64,
    pub num_redelivered: i64,
    pub num_waiting: i64,
    pub num_pending: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub push_bound: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub pause_remaining: i64,
    /// When the info was gathered.
    #[serde(with = "time_fmt")]
    pub ts: DateTime<Utc>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub priority_groups: Vec<PriorityGroupState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(json: &str) -> serde_json::Value {
        let cfg: ConsumerConfig = serde_json::from_str(json).unwrap();
        serde_json::to_value(cfg.with_defaults(&StreamConfig::default())).unwrap()
    }

    #[test]
    fn defaults_match_nats_server() {
        // Configs as nats-server 2.15 answered these requests (metadata aside).
        assert_eq!(
            defaults(
                r#"{"durable_name":"dur1","ack_policy":"explicit","filter_subject":"orders.new"}"#
            ),
            serde_json::json!({"durable_name": "dur1", "deliver_policy": "all", "ack_policy": "explicit", "ack_wait": 30000000000i64, "max_deliver": -1, "filter_subject": "orders.new", "replay_policy": "instant", "max_waiting": 512, "max_ack_pending": 1000, "num_replicas": 0})
        );
        assert_eq!(
            defaults(
                r#"{"name":"push1","deliver_subject":"dlv.push1","ack_policy":"none","deliver_policy":"last","idle_heartbeat":5000000000,"flow_control":true}"#
            ),
            serde_json::json!({"name": "push1", "deliver_policy": "last", "ack_policy": "none", "max_deliver": -1, "replay_policy": "instant", "flow_control": true, "deliver_subject": "dlv.push1", "idle_heartbeat": 5000000000i64, "inactive_threshold": 5000000000i64, "num_replicas": 0})
        );
        assert_eq!(
            defaults(r#"{"name":"c3","deliver_subject":"d.c3"}"#),
            serde_json::json!({"name": "c3", "deliver_policy": "all", "ack_policy": "none", "max_deliver": -1, "replay_policy": "instant", "deliver_subject": "d.c3", "inactive_threshold": 5000000000i64, "num_replicas": 0})
        );
        assert_eq!(
            defaults(
                r#"{"durable_name":"c4","ack_policy":"all","deliver_subject":"d.c4","deliver_group":"q","replay_policy":"original","rate_limit_bps":1000}"#
            ),
            serde_json::json!({"durable_name": "c4", "deliver_policy": "all", "ack_policy": "all", "ack_wait": 30000000000i64, "max_deliver": -1, "replay_policy": "original", "rate_limit_bps": 1000, "max_ack_pending": 1000, "deliver_subject": "d.c4", "deliver_group": "q", "num_replicas": 0})
        );
        // Backoff sets ack_wait; pinned client gets a 2 minute TTL.
        let v = defaults(
            r#"{"durable_name":"full","ack_policy":"all","ack_wait":10000000000,"backoff":[1000000000,2000000000],"priority_groups":["g1"],"priority_policy":"pinned_client"}"#,
        );
        assert_eq!(v["ack_wait"], 1000000000i64);
        assert_eq!(v["priority_timeout"], 120000000000i64);
        // Stream consumer limits fill in.
        let stream = StreamConfig {
            consumer_limits: super::super::StreamConsumerLimits {
                inactive_threshold: 7,
                max_ack_pending: 9,
            },
            ..StreamConfig::default()
        };
        let cfg = ConsumerConfig {
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        }
        .with_defaults(&stream);
        assert_eq!((cfg.inactive_threshold, cfg.max_ack_pending), (7, 9));
    }

    #[test]
    fn enums_on_the_wire() {
        assert_eq!(
            serde_json::from_str::<DeliverPolicy>(r#""undefined""#).unwrap(),
            DeliverPolicy::All
        );
        assert_eq!(
            serde_json::to_string(&DeliverPolicy::LastPerSubject).unwrap(),
            r#""last_per_subject""#
        );
        assert_eq!(
            serde_json::to_string(&AckPolicy::FlowControl).unwrap(),
            r#""flow_control""#
        );
        assert_eq!(
            serde_json::to_string(&ConsumerAction::CreateOrUpdate).unwrap(),
            r#""""#
        );
        assert_eq!(
            serde_json::from_str::<ConsumerAction>(r#""create""#).unwrap(),
            ConsumerAction::Create
        );
        assert!(serde_json::from_str::<ConsumerAction>(r#""bogus""#).is_err());
    }
}
