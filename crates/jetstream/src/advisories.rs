//! JetStream advisories and metrics on `$JS.EVENT.>`, as nats-server sends
//! them: typed bodies whose fields serialize in nats-server's order (a
//! `serde_json::Value` would sort them), published in the account the
//! stream lives in, and built only when someone in that account listens.
//!
//! Every event starts with `type`, `id`, `timestamp`; `domain` is added
//! (where nats-server has it) when the server has a JetStream domain.

use chrono::{DateTime, Utc};
use rnats_core::client_info::ClientInfo;
use serde::Serialize;

use rnats_core::account::Account;
use rnats_core::client::ClientShared;
use rnats_core::server::ServerState;

pub const STREAM_CREATED: &str = "$JS.EVENT.ADVISORY.STREAM.CREATED";
pub const STREAM_DELETED: &str = "$JS.EVENT.ADVISORY.STREAM.DELETED";
pub const STREAM_UPDATED: &str = "$JS.EVENT.ADVISORY.STREAM.UPDATED";
pub const CONSUMER_CREATED: &str = "$JS.EVENT.ADVISORY.CONSUMER.CREATED";
pub const CONSUMER_DELETED: &str = "$JS.EVENT.ADVISORY.CONSUMER.DELETED";
pub const CONSUMER_PAUSE: &str = "$JS.EVENT.ADVISORY.CONSUMER.PAUSE";
pub const MAX_DELIVERIES: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";
pub const MSG_NAKED: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED";
pub const MSG_TERMINATED: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED";
pub const API_AUDIT: &str = "$JS.EVENT.ADVISORY.API";
pub const ACK_METRIC: &str = "$JS.EVENT.METRIC.CONSUMER.ACK";

pub const STREAM_ACTION: &str = "io.nats.jetstream.advisory.v1.stream_action";
pub const CONSUMER_ACTION: &str = "io.nats.jetstream.advisory.v1.consumer_action";
pub const CONSUMER_PAUSE_TYPE: &str = "io.nats.jetstream.advisory.v1.consumer_pause";
pub const MAX_DELIVER_TYPE: &str = "io.nats.jetstream.advisory.v1.max_deliver";
pub const NAK_TYPE: &str = "io.nats.jetstream.advisory.v1.nak";
pub const TERMINATED_TYPE: &str = "io.nats.jetstream.advisory.v1.terminated";
pub const API_AUDIT_TYPE: &str = "io.nats.jetstream.advisory.v1.api_audit";
pub const ACK_METRIC_TYPE: &str = "io.nats.jetstream.metric.v1.consumer_ack";
/// rnats's own: nats-server has no advisory for damaged stream files.
pub const STREAM_CORRUPTION: &str = "$JS.EVENT.ADVISORY.STREAM.CORRUPTION";
pub const STREAM_CORRUPTION_TYPE: &str = "io.rnats.jetstream.advisory.v1.stream_corruption";

/// The common head of every event, then the event's own fields.
#[derive(Serialize)]
struct Event<T> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    #[serde(flatten)]
    body: T,
}

/// Publishes an event on `subject` in `account` if anyone there listens;
/// `build` runs only then.
pub fn publish<T: Serialize>(
    server: &ServerState,
    account: &Account,
    subject: &str,
    kind: &'static str,
    build: impl FnOnce(Option<String>) -> T,
) {
    if !account.has_interest(subject.as_bytes()) {
        return;
    }
    let domain = server.opts().jetstream_domain.clone();
    let event = Event {
        kind,
        id: rnats_core::ids::next(),
        timestamp: rnats_core::gofmt::go_time(&Utc::now()),
        body: build(domain),
    };
    let json = rnats_core::gofmt::go_json(&event);
    server.publish_in(account, subject.as_bytes(), None, None, json.as_bytes());
}

impl super::JsAccount {
    /// `$JS.EVENT.ADVISORY.STREAM.CREATED|DELETED|UPDATED.<stream>`.
    pub fn advise_stream(&self, stream: &str, action: Action) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let prefix = match action {
            Action::Create => STREAM_CREATED,
            Action::Delete => STREAM_DELETED,
            Action::Modify => STREAM_UPDATED,
        };
        let subject = format!("{prefix}.{stream}");
        publish(&server, &self.account, &subject, STREAM_ACTION, |domain| {
            StreamAction {
                stream,
                action,
                domain,
            }
        });
    }

    /// `$JS.EVENT.ADVISORY.API`: a `$JS.API` request and the answer it got.
    pub fn audit_api(
        &self,
        server: &ServerState,
        requester: Option<&ClientShared>,
        subject: &str,
        request: &[u8],
        response: &[u8],
    ) {
        publish(server, &self.account, API_AUDIT, API_AUDIT_TYPE, |domain| {
            ApiAudit {
                server: server.server_name.clone(),
                client: requester.map(|c| ClientInfo {
                    server: server.server_name.clone(),
                    ..ClientInfo::of(server, c)
                }),
                subject: subject.to_string(),
                request: String::from_utf8_lossy(request).into_owned(),
                response: String::from_utf8_lossy(response).into_owned(),
                domain,
            }
        });
    }
}

/// `create`, `delete` or `modify` a stream or consumer.
#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Delete,
    Modify,
}

/// `io.nats.jetstream.advisory.v1.stream_action`.
#[derive(Serialize)]
pub struct StreamAction<'a> {
    pub stream: &'a str,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `io.nats.jetstream.advisory.v1.consumer_action`.
#[derive(Serialize)]
pub struct ConsumerAction<'a> {
    pub stream: &'a str,
    pub consumer: &'a str,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `io.nats.jetstream.advisory.v1.consumer_pause` (`pause_until` is Go's
/// zero time when not paused, as nats-server writes it).
#[derive(Serialize)]
pub struct ConsumerPause<'a> {
    pub stream: &'a str,
    pub consumer: &'a str,
    pub paused: bool,
    pub pause_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `io.nats.jetstream.advisory.v1.max_deliver`.
#[derive(Serialize)]
pub struct MaxDeliver<'a> {
    pub stream: &'a str,
    pub consumer: &'a str,
    pub stream_seq: u64,
    pub deliveries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `io.nats.jetstream.advisory.v1.nak`.
#[derive(Serialize)]
pub struct Nak<'a> {
    pub stream: &'a str,
    pub consumer: &'a str,
    pub consumer_seq: u64,
    pub stream_seq: u64,
    pub deliveries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `io.nats.jetstream.advisory.v1.terminated`.
#[derive(Serialize)]
pub struct Terminated<'a> {
    pub stream: &'a str,
    pub consumer: &'a str,
    pub consumer_seq: u64,
    pub stream_seq: u64,
    pub deliveries: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `io.nats.jetstream.metric.v1.consumer_ack`: `ack_time` is nanoseconds
/// from delivery to ack.
#[derive(Serialize)]
pub struct AckMetric<'a> {
    pub stream: &'a str,
    pub consumer: &'a str,
    pub consumer_seq: u64,
    pub stream_seq: u64,
    pub ack_time: i64,
    pub deliveries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `io.rnats.jetstream.advisory.v1.stream_corruption`: a damaged range of a
/// stream's files (the sequences, when the neighbours tell).
#[derive(Serialize)]
pub struct StreamCorruption<'a> {
    pub stream: &'a str,
    pub block: u32,
    pub file: String,
    pub offset: u64,
    pub bytes: u64,
    pub cause: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

/// `io.nats.jetstream.advisory.v1.api_audit`: one `$JS.API` call and its answer.
#[derive(Serialize)]
pub struct ApiAudit {
    pub server: String,
    pub client: Option<ClientInfo>,
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request: String,
    pub response: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// Go's zero `time.Time` or the time, as JSON text.
pub fn go_time_or_zero(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| rnats_core::gofmt::go_time(&t),
    )
}

/// A consumer's `sample_freq` ("30%" or "30") as a percentage; 0 when unset
/// or unreadable (nats-server samples nothing then).
pub fn sample_percent(freq: &str) -> i64 {
    freq.trim().trim_end_matches('%').parse().unwrap_or(0)
}

/// Whether to sample this ack: always at 100% or more, never at 0, else by chance.
pub fn should_sample(percent: i64) -> bool {
    match percent {
        p if p <= 0 => false,
        p if p >= 100 => true,
        p => (fastrand::i64(0..100)) <= p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_in_nats_server_order() {
        let e = Event {
            kind: "io.nats.jetstream.advisory.v1.terminated",
            id: "X".into(),
            timestamp: "T".into(),
            body: Terminated {
                stream: "S",
                consumer: "C",
                consumer_seq: 2,
                stream_seq: 3,
                deliveries: 1,
                reason: "",
                domain: Some("hub".into()),
            },
        };
        assert_eq!(
            rnats_core::gofmt::go_json(&e),
            r#"{"type":"io.nats.jetstream.advisory.v1.terminated","id":"X","timestamp":"T","stream":"S","consumer":"C","consumer_seq":2,"stream_seq":3,"deliveries":1,"domain":"hub"}"#
        );
    }

    #[test]
    fn sampling() {
        assert_eq!(sample_percent("100%"), 100);
        assert_eq!(sample_percent("25"), 25);
        assert_eq!(sample_percent(""), 0);
        assert!(should_sample(100));
        assert!(!should_sample(0));
    }
}
