//! The `$JS.API` envelope and messages: `ApiResponse<T>` (`{"type":..., ...}`
//! or `{"type":..., "error":{...}, ...}`), one body type per response with its
//! `io.nats.jetstream.api.v1.*` type string (`ApiResponseBody::RESPONSE_TYPE`),
//! the request bodies, and the publish acknowledgement `PubAckResponse`.
//!
//! Error forms follow nats-server exactly: a body's fields that Go always
//! marshals are still present next to `error` (e.g. paging fields, `purged`,
//! `paused`); build them with [`ApiResponse::error`], which uses the body's
//! `Default`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{empty_as_null, is_false, is_zero_i64, is_zero_u64, nullable, time_fmt, zero_time};
use super::{
    AccountInfo, ConsumerAction, ConsumerConfig, ConsumerInfo, StoredMsg, StreamConfig, StreamInfo,
    StreamState,
};
use crate::errors::JsError;

/// The prefix of every response's `type`.
pub const API_TYPE_PREFIX: &str = "io.nats.jetstream.api.v1.";

/// A response body, with the `type` nats-server sends for it.
pub trait ApiResponseBody {
    const RESPONSE_TYPE: &'static str;
}

/// A JetStream API response: the body's fields, or an error (with the body's
/// always-present fields, as nats-server sends them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse<T> {
    pub error: Option<JsError>,
    pub body: T,
}

impl<T: ApiResponseBody> ApiResponse<T> {
    pub fn ok(body: T) -> Self {
        ApiResponse { error: None, body }
    }

    pub fn from_result(result: Result<T, JsError>) -> Self
    where
        T: Default,
    {
        match result {
            Ok(body) => Self::ok(body),
            Err(e) => Self::error(e),
        }
    }

    /// The `type` string of this response.
    pub fn response_type(&self) -> &'static str {
        T::RESPONSE_TYPE
    }

    /// The JSON bytes to send.
    pub fn to_vec(&self) -> Vec<u8>
    where
        T: Serialize,
    {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<T: ApiResponseBody + Default> ApiResponse<T> {
    pub fn error(error: JsError) -> Self {
        ApiResponse {
            error: Some(error),
            body: T::default(),
        }
    }
}

#[derive(Serialize)]
struct WireOut<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: &'a Option<JsError>,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Deserialize)]
struct WireIn<T> {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    error: Option<JsError>,
    #[serde(flatten)]
    body: T,
}

impl<T: ApiResponseBody + Serialize> Serialize for ApiResponse<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireOut {
            kind: T::RESPONSE_TYPE,
            error: &self.error,
            body: &self.body,
        }
        .serialize(s)
    }
}

impl<'de, T: ApiResponseBody + Deserialize<'de>> Deserialize<'de> for ApiResponse<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireIn::<T>::deserialize(d)?;
        if !w.kind.is_empty() && w.kind != T::RESPONSE_TYPE {
            return Err(serde::de::Error::custom(format!(
                "response type {:?}, expected {:?}",
                w.kind,
                T::RESPONSE_TYPE
            )));
        }
        Ok(ApiResponse {
            error: w.error,
            body: w.body,
        })
    }
}

/// `total`, `offset`, `limit` of paged responses; always sent (zeros on errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiPaged {
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub offset: i64,
    #[serde(default)]
    pub limit: i64,
}

/// nats-server's `JSApiNamesLimit`: page size of names responses.
pub const API_NAMES_LIMIT: i64 = 1024;
/// nats-server's `JSApiListLimit`: page size of list responses.
pub const API_LIST_LIMIT: i64 = 256;
/// nats-server's `JSMaxSubjectDetails`: page size of stream info's subject details.
pub const MAX_SUBJECT_DETAILS: i64 = 100_000;

macro_rules! response_type {
    ($ty:ty, $kind:literal) => {
        impl ApiResponseBody for $ty {
            const RESPONSE_TYPE: &'static str = concat!("io.nats.jetstream.api.v1.", $kind);
        }
    };
}

/// `$JS.API.INFO`. Absent on errors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountInfoResponse(pub Option<AccountInfo>);
response_type!(AccountInfoResponse, "account_info_response");

/// `$JS.API.STREAM.CREATE.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamCreateResponse {
    #[serde(flatten)]
    pub info: Option<StreamInfo>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub did_create: bool,
}
response_type!(StreamCreateResponse, "stream_create_response");

/// `$JS.API.STREAM.UPDATE.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamUpdateResponse(pub Option<StreamInfo>);
response_type!(StreamUpdateResponse, "stream_update_response");

/// `$JS.API.STREAM.INFO.<name>`: paging (of `state.subjects`) is always sent,
/// zeros unless subject details were asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamInfoResponse {
    #[serde(flatten)]
    pub paged: ApiPaged,
    #[serde(flatten)]
    pub info: Option<StreamInfo>,
}
response_type!(StreamInfoResponse, "stream_info_response");

/// `$JS.API.STREAM.NAMES`: `streams` is `null` when empty, as nats-server sends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamNamesResponse {
    #[serde(flatten)]
    pub paged: ApiPaged,
    #[serde(
        default,
        serialize_with = "empty_as_null",
        deserialize_with = "nullable"
    )]
    pub streams: Vec<String>,
}
response_type!(StreamNamesResponse, "stream_names_response");

/// `$JS.API.STREAM.LIST`: `streams` is `[]` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamListResponse {
    #[serde(flatten)]
    pub paged: ApiPaged,
    #[serde(default, deserialize_with = "nullable")]
    pub streams: Vec<StreamInfo>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub missing: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub offline: BTreeMap<String, String>,
}
response_type!(StreamListResponse, "stream_list_response");

/// A `{"success": true}` body (`success` omitted when false, as on errors).
macro_rules! success_response {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub struct $name {
            #[serde(default, skip_serializing_if = "is_false")]
            pub success: bool,
        }
        response_type!($name, $kind);
        impl $name {
            pub const SUCCESS: $name = $name { success: true };
        }
    };
}

success_response!(
    /// `$JS.API.STREAM.DELETE.<name>`.
    StreamDeleteResponse,
    "stream_delete_response"
);
success_response!(
    /// `$JS.API.STREAM.MSG.DELETE.<name>`.
    MsgDeleteResponse,
    "stream_msg_delete_response"
);
success_response!(
    /// `$JS.API.CONSUMER.DELETE.<stream>.<consumer>`.
    ConsumerDeleteResponse,
    "consumer_delete_response"
);
success_response!(
    /// `$JS.API.STREAM.LEADER.STEPDOWN.<name>`.
    StreamLeaderStepDownResponse,
    "stream_leader_stepdown_response"
);
success_response!(
    /// `$JS.API.CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>`.
    ConsumerLeaderStepDownResponse,
    "consumer_leader_stepdown_response"
);
success_response!(
    /// `$JS.API.META.LEADER.STEPDOWN`.
    MetaLeaderStepDownResponse,
    "meta_leader_stepdown_response"
);
success_response!(
    /// `$JS.API.SERVER.REMOVE`.
    MetaServerRemoveResponse,
    "meta_server_remove_response"
);
success_response!(
    /// `$JS.API.STREAM.PEER.REMOVE.<name>`.
    StreamRemovePeerResponse,
    "stream_remove_peer_response"
);

/// `$JS.API.STREAM.PURGE.<name>`: `purged` is always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamPurgeResponse {
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
    #[serde(default)]
    pub purged: u64,
}
response_type!(StreamPurgeResponse, "stream_purge_response");

/// `$JS.API.STREAM.MSG.GET.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MsgGetResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<StoredMsg>,
}
response_type!(MsgGetResponse, "stream_msg_get_response");

/// `$JS.API.CONSUMER.CREATE.<stream>[.<consumer>[.<filter>]]` and `DURABLE.CREATE`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConsumerCreateResponse(pub Option<ConsumerInfo>);
response_type!(ConsumerCreateResponse, "consumer_create_response");

/// `$JS.API.CONSUMER.INFO.<stream>.<consumer>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConsumerInfoResponse(pub Option<ConsumerInfo>);
response_type!(ConsumerInfoResponse, "consumer_info_response");

/// `$JS.API.CONSUMER.NAMES.<stream>`: `consumers` is `[]` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerNamesResponse {
    #[serde(flatten)]
    pub paged: ApiPaged,
    #[serde(default, deserialize_with = "nullable")]
    pub consumers: Vec<String>,
}
response_type!(ConsumerNamesResponse, "consumer_names_response");

/// `$JS.API.CONSUMER.LIST.<stream>`: `consumers` is `[]` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerListResponse {
    #[serde(flatten)]
    pub paged: ApiPaged,
    #[serde(default, deserialize_with = "nullable")]
    pub consumers: Vec<ConsumerInfo>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub missing: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub offline: BTreeMap<String, String>,
}
response_type!(ConsumerListResponse, "consumer_list_response");

/// `$JS.API.CONSUMER.PAUSE.<stream>.<consumer>`: `paused` and `pause_until`
/// are always sent (false and zero time on errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerPauseResponse {
    #[serde(default)]
    pub paused: bool,
    #[serde(with = "time_fmt", default = "zero_time")]
    pub pause_until: DateTime<Utc>,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub pause_remaining: i64,
}
response_type!(ConsumerPauseResponse, "consumer_pause_response");

impl Default for ConsumerPauseResponse {
    fn default() -> Self {
        ConsumerPauseResponse {
            paused: false,
            pause_until: zero_time(),
            pause_remaining: 0,
        }
    }
}

/// `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>`: no fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerUnpinResponse {}
response_type!(ConsumerUnpinResponse, "consumer_unpin_response");

/// `$JS.API.CONSUMER.RESET.<stream>.<consumer>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsumerResetResponse {
    #[serde(flatten)]
    pub info: Option<ConsumerInfo>,
    #[serde(default)]
    pub reset_seq: u64,
}
response_type!(ConsumerResetResponse, "consumer_reset_response");

/// `$JS.API.ACCOUNT.PURGE.<account>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountPurgeResponse {
    #[serde(default, skip_serializing_if = "is_false")]
    pub initiated: bool,
}
response_type!(AccountPurgeResponse, "account_purge_response");

/// `$JS.API.STREAM.SNAPSHOT.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamSnapshotResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<StreamConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StreamState>,
}
response_type!(StreamSnapshotResponse, "stream_snapshot_response");

/// `$JS.API.STREAM.RESTORE.<name>`: `deliver_subject` is always sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamRestoreResponse {
    #[serde(default)]
    pub deliver_subject: String,
}
response_type!(StreamRestoreResponse, "stream_restore_response");

/// Errors not tied to one API (JetStream not enabled for the account, bad
/// request to an unknown API): `io.nats.jetstream.api.v1.system_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SystemResponse {}
response_type!(SystemResponse, "system_response");

// ---------------------------------------------------------------------------
// Requests. All fields are optional on the wire; `null` reads as absent.

/// `offset` of paged requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiPagedRequest {
    pub offset: i64,
}

/// `$JS.API.STREAM.NAMES`: streams with a subject matching `subject`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamNamesRequest {
    pub offset: i64,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub subject: String,
}

/// `$JS.API.STREAM.LIST`.
pub type StreamListRequest = StreamNamesRequest;

/// `$JS.API.STREAM.INFO.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfoRequest {
    pub offset: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub deleted_details: bool,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub subjects_filter: String,
}

/// `$JS.API.STREAM.CREATE.<name>` and `UPDATE` carry a bare [`StreamConfig`]
/// (plus `pedantic`, which nats-server reads from the same object).
pub type StreamCreateRequest = StreamConfig;

/// `$JS.API.STREAM.PURGE.<name>`: all, or up to (not including) `seq`, or
/// all but the last `keep`, optionally only of subjects matching `filter`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamPurgeRequest {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub seq: u64,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub filter: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub keep: u64,
}

/// `$JS.API.STREAM.MSG.GET.<name>`. Same shape as [`DirectGetRequest`].
pub type MsgGetRequest = DirectGetRequest;

/// `$JS.API.STREAM.MSG.GET.<name>` and `$JS.API.DIRECT.GET.<name>`
/// (nats-server's `JSApiMsgGetRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DirectGetRequest {
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub seq: u64,
    #[serde(
        rename = "last_by_subj",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub last_by_subj: String,
    #[serde(
        rename = "next_by_subj",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub next_by_subj: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub batch: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_bytes: i64,
    #[serde(with = "time_fmt::option", skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(
        rename = "multi_last",
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub multi_last: Vec<String>,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub up_to_seq: u64,
    #[serde(with = "time_fmt::option", skip_serializing_if = "Option::is_none")]
    pub up_to_time: Option<DateTime<Utc>>,
    #[serde(rename = "no_hdr", skip_serializing_if = "is_false")]
    pub no_headers: bool,
}

/// `$JS.API.STREAM.MSG.DELETE.<name>`: `no_erase` skips overwriting the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgDeleteRequest {
    pub seq: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_erase: bool,
}

/// `$JS.API.CONSUMER.CREATE...`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerCreateRequest {
    #[serde(deserialize_with = "nullable")]
    pub stream_name: String,
    pub config: ConsumerConfig,
    pub action: ConsumerAction,
    #[serde(skip_serializing_if = "is_false")]
    pub pedantic: bool,
}

/// `$JS.API.CONSUMER.NAMES.<stream>`.
pub type ConsumerNamesRequest = ApiPagedRequest;
/// `$JS.API.CONSUMER.LIST.<stream>`.
pub type ConsumerListRequest = ApiPagedRequest;

/// `$JS.API.CONSUMER.PAUSE.<stream>.<consumer>`: a time in the past (or absent) resumes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerPauseRequest {
    #[serde(with = "time_fmt::option", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<DateTime<Utc>>,
}

/// `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerUnpinRequest {
    #[serde(deserialize_with = "nullable")]
    pub group: String,
}

/// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` (JSON form; a bare number
/// is also accepted by nats-server as the batch size). Durations in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NextRequest {
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub expires: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub batch: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_bytes: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_wait: bool,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub idle_heartbeat: i64,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub group: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub min_pending: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub min_ack_pending: i64,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub priority: i64,
}

// ---------------------------------------------------------------------------
// Publish acknowledgements.

/// A successful publish into a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PubAck {
    pub stream: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub duplicate: bool,
    /// Counter streams: the counter's value after this increment.
    #[serde(default, rename = "val", skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Batch publishes: the batch id and size.
    #[serde(default, rename = "batch", skip_serializing_if = "String::is_empty")]
    pub batch_id: String,
    #[serde(default, rename = "count", skip_serializing_if = "is_zero_u64")]
    pub batch_size: u64,
}

/// What a publisher gets back: `{"stream":..,"seq":..}` or
/// `{"error":{..},"stream":..,"seq":0}` (nats-server names the stream in
/// errors once it knows it; no `type` field).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PubAckResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JsError>,
    #[serde(flatten)]
    pub ack: Option<PubAck>,
}

impl PubAckResponse {
    pub fn ok(ack: PubAck) -> Self {
        PubAckResponse {
            error: None,
            ack: Some(ack),
        }
    }

    /// An error for a publish into `stream`: `{"error":..,"stream":"S","seq":0}`.
    pub fn error(stream: impl Into<String>, error: JsError) -> Self {
        PubAckResponse {
            error: Some(error),
            ack: Some(PubAck {
                stream: stream.into(),
                ..PubAck::default()
            }),
        }
    }

    /// An error before any stream is known: `{"error":{..}}`.
    pub fn bare_error(error: JsError) -> Self {
        PubAckResponse {
            error: Some(error),
            ack: None,
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
