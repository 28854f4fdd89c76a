//! The `$JS.API` request handlers for streams and the account: one internal
//! subscription on `$JS.API.>`, a dispatch on the subject, and JSON answers
//! shaped as nats-server's (`type` names, field names, error objects).
//!
//! Handlers run on the requesting client's task; they take the stream locks
//! they need briefly and publish the answer with no lock held.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::{JsError, JsErrorKind};
use super::headers;
use super::stream::Stream;
use super::types::*;
use super::JsAccount;
use rnats_core::router::Message;
use rnats_core::server::ServerState;
use rnats_core::subscription::InternalHandler;

const API_PREFIX: &str = "$JS.API.";
pub const DIRECT_GET: &str = "$JS.API.DIRECT.GET.";
pub use crate::versioning::API_LEVEL;

pub fn subscribe(
    server: &Arc<ServerState>,
    js: &Arc<JsAccount>,
) -> Result<(), rnats_subject::SublistError> {
    let handler = Arc::new(Api {
        js: Arc::downgrade(js),
    });
    // Direct gets are subscribed per stream (see `Stream::resubscribe`), so a
    // stream without `allow_direct` leaves requesters with no responders.
    let account = &js.account;
    server.subscribe_internal_in(account, "$JS.API.INFO", None, handler.clone())?;
    server.subscribe_internal_in(account, "$JS.API.STREAM.>", None, handler.clone())?;
    // `MSG.NEXT` is subscribed per consumer, so a pull to a missing one
    // finds no responders, as with nats-server.
    for verb in [
        "CREATE", "DURABLE", "INFO", "DELETE", "NAMES", "LIST", "PAUSE", "UNPIN", "LEADER",
        // Answered per consumer; this one only swallows requests for a
        // missing consumer, which nats-server lets time out.
        "RESET",
    ] {
        let subject = format!("$JS.API.CONSUMER.{verb}.>");
        server.subscribe_internal_in(account, &subject, None, handler.clone())?;
    }
    // With a domain, `$JS.<domain>.API.>` is the same API under another prefix.
    if let Some(domain) = server.opts().jetstream_domain.clone() {
        let prefix = format!("$JS.{domain}.API.");
        let mapper = Arc::new(DomainApi {
            server: Arc::downgrade(server),
            account: Arc::downgrade(account),
            prefix: prefix.clone(),
        });
        server.subscribe_internal_in(account, &format!("{prefix}>"), None, mapper)?;
    }
    Ok(())
}

/// Forwards `$JS.<domain>.API.<op>` to `$JS.API.<op>` with the same reply.
struct DomainApi {
    server: Weak<ServerState>,
    account: Weak<rnats_core::account::Account>,
    prefix: String,
}

impl InternalHandler for DomainApi {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(server), Some(account)) = (self.server.upgrade(), self.account.upgrade()) else {
            return;
        };
        let subject = String::from_utf8_lossy(msg.subject);
        let Some(op) = subject.strip_prefix(&self.prefix) else {
            return;
        };
        let target = format!("{API_PREFIX}{op}");
        server.publish_in(
            &account,
            target.as_bytes(),
            msg.reply,
            msg.headers,
            msg.payload,
        );
    }
}

struct Api {
    js: Weak<JsAccount>,
}

impl InternalHandler for Api {
    fn deliver(&self, msg: &Message<'_>) {
        self.handle(msg, None);
    }

    /// The requester is named in the `$JS.EVENT.ADVISORY.API` audit.
    fn deliver_from(
        &self,
        publisher: &rnats_core::client::ClientShared,
        msg: &Message<'_>,
    ) -> bool {
        self.handle(msg, Some(publisher));
        true
    }
}

impl Api {
    fn handle(&self, msg: &Message<'_>, publisher: Option<&rnats_core::client::ClientShared>) {
        let Some(js) = self.js.upgrade() else { return };
        let Some(reply) = msg.reply else {
            // nats-server ignores API requests nobody can receive an answer to.
            return;
        };
        let subject = String::from_utf8_lossy(msg.subject);
        let Some(server) = js.server.upgrade() else {
            return;
        };
        let Some(op) = subject.strip_prefix(API_PREFIX) else {
            return;
        };
        let gate = Gate::of(msg.headers.unwrap_or_default());
        // Not an API we serve (yet): nats-server does not answer these either.
        let answer = match op.strip_prefix("CONSUMER.") {
            Some(rest) => super::consumer_api::dispatch(&js, rest, msg.payload, &gate),
            None => dispatch(&js, op, msg.payload, &gate),
        };
        let Some((body, failed)) = answer else {
            return;
        };
        js.count_api(failed);
        server.publish_in(&js.account, reply, None, None, &body);
        js.audit_api(&server, publisher, &subject, msg.payload, &body);
    }
}

/// The serialized response and whether it is an error.
pub type Answer = Option<(Vec<u8>, bool)>;

pub fn answer<T: ApiResponseBody + Serialize + Default>(result: Result<T, JsError>) -> Answer {
    let failed = result.is_err();
    Some((ApiResponse::from_result(result).to_vec(), failed))
}

/// A request's `Nats-Required-Api-Level` (ADR-44): a level above ours
/// turns any API request into nats-server's error, in the request's own
/// response type, without running it.
pub struct Gate(Option<JsError>);

impl Gate {
    pub fn of(hdrs: &[u8]) -> Gate {
        let refused = crate::headers::get_str(hdrs, crate::batch::REQUIRED_API_LEVEL)
            .is_some_and(|l| l.parse::<i64>().map_or(true, |l| l > API_LEVEL));
        Gate(refused.then(|| JsError::new(JsErrorKind::RequiredApiLevel)))
    }

    pub fn answer<T: ApiResponseBody + Serialize + Default>(
        &self,
        run: impl FnOnce() -> Result<T, JsError>,
    ) -> Answer {
        match &self.0 {
            Some(e) => answer::<T>(Err(e.clone())),
            None => answer(run()),
        }
    }
}

fn dispatch(js: &Arc<JsAccount>, op: &str, body: &[u8], gate: &Gate) -> Answer {
    if op == "INFO" {
        return gate.answer(|| account_info(js));
    }
    let rest = op.strip_prefix("STREAM.")?;
    let (verb, name) = match rest.split_once('.') {
        Some((v, n)) => (v, Some(n)),
        None => (rest, None),
    };
    match (verb, name) {
        ("CREATE", Some(n)) => gate.answer(|| create(js, n, body)),
        ("UPDATE", Some(n)) => gate.answer(|| update(js, n, body)),
        ("INFO", Some(n)) => gate.answer(|| info(js, n, body)),
        ("DELETE", Some(n)) => gate.answer(|| delete(js, n)),
        ("PURGE", Some(n)) => gate.answer(|| purge(js, n, body)),
        ("SNAPSHOT", Some(n)) => gate.answer(|| crate::snapshot::snapshot(js, n, body)),
        ("RESTORE", Some(n)) => gate.answer(|| crate::snapshot::restore(js, n, body)),
        ("NAMES", None) => gate.answer(|| names(js, body)),
        ("LIST", None) => gate.answer(|| list(js, body)),
        // Standalone: nats-server refuses these until it is clustered.
        ("LEADER", Some(rest)) if rest.starts_with("STEPDOWN.") => {
            gate.answer(|| Err::<StreamLeaderStepDownResponse, _>(not_clustered()))
        }
        ("PEER", Some(rest)) if rest.starts_with("REMOVE.") => {
            gate.answer(|| Err::<StreamRemovePeerResponse, _>(not_clustered()))
        }
        ("MSG", Some(rest)) => match rest.split_once('.') {
            Some(("GET", n)) => gate.answer(|| msg_get(js, n, body)),
            Some(("DELETE", n)) => gate.answer(|| msg_delete(js, n, body)),
            _ => None,
        },
        _ => None,
    }
}

/// What a standalone server answers to the cluster-only APIs.
pub fn not_clustered() -> JsError {
    JsError::new(JsErrorKind::ClusterRequired)
}

fn invalid_json(e: impl std::fmt::Display) -> JsError {
    JsError::new(JsErrorKind::InvalidJSON).arg("err", &e.to_string())
}

/// Go's `encoding/json` text for a syntax error, which clients show as is
/// (`invalid character 'b' looking for beginning of object key string`).
pub fn go_json_error(e: &serde_json::Error, body: &[u8]) -> String {
    if e.is_eof() {
        return "unexpected end of JSON input".into();
    }
    if !e.is_syntax() {
        return e.to_string();
    }
    // serde_json reports a 1-based line and column; find that byte.
    let mut line = 1;
    let mut offset = 0;
    for (i, &b) in body.iter().enumerate() {
        if line == e.line() {
            offset = i + e.column().saturating_sub(1);
            break;
        }
        if b == b'\n' {
            line += 1;
        }
    }
    let c = body.get(offset).map_or(' ', |&b| b as char);
    let what = if e.to_string().starts_with("key must be a string") {
        "looking for beginning of object key string"
    } else {
        "looking for beginning of value"
    };
    format!("invalid character '{c}' {what}")
}

/// Go's JSON decoding leaves a field at its default when the value is `null`
/// (async-nats sends `"consumer_limits":null` and the like): drop those keys.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Parses a JSON body the way nats-server does (nulls are defaults).
pub fn parse_json(body: &[u8]) -> Result<Value, JsError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| {
        // nats-server adds the offset where decoding stopped.
        let offset = if e.is_syntax() {
            format!(" at offset {}", e.column())
        } else {
            String::new()
        };
        invalid_json(format!("{}{offset}", go_json_error(&e, body)))
    })?;
    strip_nulls(&mut v);
    Ok(v)
}

/// Parses a request body; an empty body is the request's default.
pub fn request<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, JsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    match parse_json(body)? {
        // `null` decodes to the zero value in Go.
        Value::Null => Ok(T::default()),
        v => serde_json::from_value(v).map_err(invalid_json),
    }
}

/// `request` with nats-server's strict decoding (its default `strict`
/// JetStream mode): a top-level field the request does not have is refused
/// as `json: unknown field "<name>"`. Go matches names case-insensitively.
pub fn request_strict<T: for<'de> Deserialize<'de> + Default>(
    body: &[u8],
    fields: &[&str],
) -> Result<T, JsError> {
    let req = request(body)?;
    if let Ok(TopLevelKeys(keys)) = serde_json::from_slice::<TopLevelKeys>(body) {
        if let Some(k) = keys
            .iter()
            .find(|k| !fields.iter().any(|f| f.eq_ignore_ascii_case(k)))
        {
            return Err(invalid_json(format!("json: unknown field \"{k}\"")));
        }
    }
    Ok(req)
}

/// The keys of a JSON object, in document order (empty for anything else).
struct TopLevelKeys(Vec<String>);

impl<'de> Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TopLevelKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<TopLevelKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(TopLevelKeys(keys))
            }
            fn visit_unit<E>(self) -> Result<TopLevelKeys, E> {
                Ok(TopLevelKeys(Vec::new()))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Top-level fields of the requests nats-server decodes strictly.
pub const PAGED_FIELDS: &[&str] = &["offset"];
const INFO_FIELDS: &[&str] = &["offset", "deleted_details", "subjects_filter"];
const NAMES_FIELDS: &[&str] = &["offset", "subject"];
const PURGE_FIELDS: &[&str] = &["seq", "filter", "keep"];
const MSG_GET_FIELDS: &[&str] = &[
    "seq",
    "last_by_subj",
    "next_by_subj",
    "batch",
    "max_bytes",
    "start_time",
    "multi_last",
    "up_to_seq",
    "up_to_time",
    "no_hdr",
];
const MSG_DELETE_FIELDS: &[&str] = &["seq", "no_erase"];

fn stream_of(js: &JsAccount, name: &str) -> Result<Arc<Stream>, JsError> {
    js.stream(name)
        .ok_or_else(|| JsError::new(JsErrorKind::StreamNotFound))
}

/// Fields a stream configuration may carry (nats-server refuses others).
const CONFIG_FIELDS: &[&str] = &[
    "allow_atomic",
    "allow_batched",
    "allow_direct",
    "allow_msg_counter",
    "allow_msg_schedules",
    "allow_msg_ttl",
    "allow_rollup_hdrs",
    "compression",
    "consumer_limits",
    "deny_delete",
    "deny_purge",
    "description",
    "discard",
    "discard_new_per_subject",
    "duplicate_window",
    "first_seq",
    "max_age",
    "max_bytes",
    "max_consumers",
    "max_msg_size",
    "max_msgs",
    "max_msgs_per_subject",
    "metadata",
    "mirror",
    "mirror_direct",
    "name",
    "no_ack",
    "num_replicas",
    "persist_mode",
    "placement",
    "republish",
    "retention",
    "sealed",
    "sources",
    "storage",
    "subject_delete_marker_ttl",
    "subject_transform",
    "subjects",
    "template_owner",
    "pedantic",
];

/// A stream configuration from a create/update request, with defaults applied
/// and checked; the name in the subject must agree with the body's.
fn request_config(name: &str, body: &[u8]) -> Result<StreamConfig, JsError> {
    // An empty body is an empty configuration, whose (empty) name cannot match.
    let raw = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        parse_json(body)?
    };
    if let Some(obj) = raw.as_object() {
        if let Some(unknown) = obj.keys().find(|k| !CONFIG_FIELDS.contains(&k.as_str())) {
            return Err(invalid_json(format!("json: unknown field {unknown:?}")));
        }
    }
    let mut cfg: StreamConfig = serde_json::from_value(raw).map_err(invalid_json)?;
    if cfg.name != name {
        return Err(JsError::new(JsErrorKind::StreamMismatch));
    }
    // The `_nats.*` keys are the server's to set, not stored from requests.
    cfg.metadata.retain(|k, _| !k.starts_with("_nats."));
    let cfg = cfg.with_defaults();
    cfg.validate()?;
    Ok(cfg)
}

fn create(js: &Arc<JsAccount>, name: &str, body: &[u8]) -> Result<StreamCreateResponse, JsError> {
    let mut cfg = request_config(name, body)?;
    if cfg.sealed {
        return Err(invalid_config(
            "stream configuration for create can not be sealed",
        ));
    }
    if cfg.num_replicas > 1 {
        return Err(JsError::new(JsErrorKind::StreamReplicasNotSupported));
    }
    if cfg.mirror_direct && cfg.mirror.is_none() {
        return Err(invalid_config(
            "stream has no mirror but does have mirror direct",
        ));
    }
    inherit_mirror_direct(js, &mut cfg);
    // nats-server says `did_create` for an identical re-create as well.
    let (stream, created_now) = js.create_stream(cfg)?;
    if created_now {
        js.advise_stream(&stream.name, super::advisories::Action::Create);
    }
    let mut info = stream_info(js, &stream, &StreamInfoRequest::default(), Detail::Full);
    info.cluster = None;
    Ok(StreamCreateResponse {
        info: Some(info),
        did_create: true,
    })
}

/// A mirror of a local stream serves direct gets exactly when its origin
/// allows them (nats-server overrides the requested `mirror_direct`).
fn inherit_mirror_direct(js: &JsAccount, cfg: &mut StreamConfig) {
    if let Some(m) = cfg.mirror.as_ref().filter(|m| m.external.is_none()) {
        if let Some(origin) = js.stream(&m.name) {
            cfg.mirror_direct = origin.config().allow_direct;
        }
    }
}

fn invalid_config(text: &str) -> JsError {
    JsError::new(JsErrorKind::StreamInvalidConfigF).arg("err", text)
}

fn update(js: &Arc<JsAccount>, name: &str, body: &[u8]) -> Result<StreamUpdateResponse, JsError> {
    let mut cfg = request_config(name, body)?;
    inherit_mirror_direct(js, &mut cfg);
    let stream = stream_of(js, name)?;
    let old = stream.config();
    if cfg.num_replicas > 1 {
        return Err(JsError::new(JsErrorKind::StreamReplicasNotSupported));
    }
    if cfg.storage != old.storage {
        return Err(invalid_config(
            "stream configuration update can not change storage type",
        ));
    }
    if cfg.retention != old.retention
        && (old.retention == RetentionPolicy::WorkQueue
            || cfg.retention == RetentionPolicy::WorkQueue)
    {
        return Err(invalid_config(
            "stream configuration update can not change retention policy to/from workqueue",
        ));
    }
    if old.sealed && !cfg.sealed {
        return Err(invalid_config(
            "stream configuration update can not unseal a sealed stream",
        ));
    }
    if old.deny_delete && !cfg.deny_delete {
        return Err(invalid_config(
            "stream configuration update can not cancel deny message deletes",
        ));
    }
    if old.deny_purge && !cfg.deny_purge {
        return Err(invalid_config(
            "stream configuration update can not cancel deny purge",
        ));
    }
    if old.allow_msg_ttl && !cfg.allow_msg_ttl {
        return Err(invalid_config("message TTL status can not be disabled"));
    }
    if old.allow_msg_schedules && !cfg.allow_msg_schedules {
        return Err(invalid_config("message schedules can not be disabled"));
    }
    // Removing the mirror promotes it to a normal stream; changing it is refused.
    if cfg.mirror.is_some() && cfg.mirror != old.mirror {
        return Err(JsError::new(JsErrorKind::StreamMirrorNotUpdatable));
    }
    let stream = js.update_stream(cfg)?;
    js.advise_stream(&stream.name, super::advisories::Action::Modify);
    let mut info = stream_info(js, &stream, &StreamInfoRequest::default(), Detail::Full);
    info.cluster = None;
    Ok(StreamUpdateResponse(Some(info)))
}

pub(crate) fn info(
    js: &Arc<JsAccount>,
    name: &str,
    body: &[u8],
) -> Result<StreamInfoResponse, JsError> {
    let req: StreamInfoRequest = request_strict(body, INFO_FIELDS)?;
    let stream = stream_of(js, name)?;
    let info = stream_info(js, &stream, &req, Detail::Full);
    let paged = if req.subjects_filter.is_empty() {
        ApiPaged::default()
    } else {
        ApiPaged {
            total: info.state.num_subjects,
            offset: req.offset,
            limit: MAX_SUBJECT_DETAILS,
        }
    };
    Ok(StreamInfoResponse {
        paged,
        info: Some(info),
    })
}

pub use rnats_core::gofmt::go_time_nanos as go_time;

fn timestamp(nanos: i64) -> DateTime<Utc> {
    if nanos <= 0 {
        zero_time()
    } else {
        DateTime::<Utc>::from_timestamp_nanos(nanos)
    }
}

fn stream_state(stream: &Stream, req: &StreamInfoRequest) -> StreamState {
    let st = stream.store.state();
    let mut state = StreamState {
        messages: st.msgs,
        bytes: st.bytes,
        first_seq: st.first_seq,
        first_ts: timestamp(st.first_ts),
        last_seq: st.last_seq,
        last_ts: timestamp(st.last_ts),
        num_subjects: st.num_subjects as i64,
        num_deleted: st.num_deleted as i64,
        consumer_count: stream.consumers().len() as i64,
        ..StreamState::default()
    };
    if req.deleted_details && st.num_deleted > 0 {
        state.deleted = stream.store.deleted();
    }
    if !req.subjects_filter.is_empty() {
        state.subjects = stream
            .store
            .subjects_state(&req.subjects_filter)
            .into_iter()
            .skip(req.offset.max(0) as usize)
            .take(MAX_SUBJECT_DETAILS as usize)
            .map(|(s, ss)| (s, ss.msgs))
            .collect();
    }
    state
}

/// How much of the server's metadata a response shows in the config.
#[derive(Clone, Copy, PartialEq)]
enum Detail {
    /// create/update/info: `_nats.level`, `_nats.req.level`, `_nats.ver`.
    Full,
    /// list: `_nats.req.level` only.
    List,
}

fn stream_info(
    js: &JsAccount,
    stream: &Stream,
    req: &StreamInfoRequest,
    detail: Detail,
) -> StreamInfo {
    let server_name = js
        .server
        .upgrade()
        .map(|s| s.server_name.clone())
        .unwrap_or_default();
    let mut config = stream.config();
    let required = crate::versioning::stream_required_level(&config);
    crate::versioning::set_metadata(&mut config.metadata, required, detail == Detail::Full);
    StreamInfo {
        config,
        created: stream.created,
        state: stream_state(stream, req),
        domain: String::new(),
        cluster: Some(ClusterInfo::leader(server_name)),
        mirror: super::sourcing::mirror_info(stream),
        sources: super::sourcing::sources_info(stream),
        alternates: Vec::new(),
        ts: Utc::now(),
    }
}

fn delete(js: &Arc<JsAccount>, name: &str) -> Result<StreamDeleteResponse, JsError> {
    js.delete_stream(name)?;
    // After the consumers' own advisories, as nats-server sends them.
    js.advise_stream(name, super::advisories::Action::Delete);
    Ok(StreamDeleteResponse::SUCCESS)
}

fn purge(js: &Arc<JsAccount>, name: &str, body: &[u8]) -> Result<StreamPurgeResponse, JsError> {
    let req: StreamPurgeRequest = request_strict(body, PURGE_FIELDS)?;
    let stream = stream_of(js, name)?;
    let cfg = stream.config();
    if cfg.sealed {
        return Err(JsError::new(JsErrorKind::StreamSealed));
    }
    if cfg.deny_purge {
        return Err(
            JsError::new(JsErrorKind::StreamPurgeFailedF).arg("err", "stream purge not permitted")
        );
    }
    if req.seq > 0 && req.keep > 0 {
        return Err(JsError::new(JsErrorKind::BadRequest));
    }
    let filter = Some(req.filter.as_str()).filter(|f| !f.is_empty() && *f != ">");
    let seq = (req.seq > 0).then_some(req.seq);
    let keep = (req.keep > 0).then_some(req.keep);
    let purged = stream
        .store
        .purge(filter, seq, keep)
        .map_err(|e| JsError::new(JsErrorKind::StreamPurgeFailedF).arg("err", &e.to_string()))?;
    Ok(StreamPurgeResponse {
        success: true,
        purged,
    })
}

/// Streams whose subjects could receive a message on `filter`, sorted by name.
fn matching_streams(js: &JsAccount, filter: &str) -> Vec<Arc<Stream>> {
    js.streams()
        .into_iter()
        .filter(|s| {
            filter.is_empty()
                || s.config()
                    .subjects
                    .iter()
                    .any(|sub| rnats_subject::overlaps(sub.as_bytes(), filter.as_bytes()))
        })
        .collect()
}

fn names(js: &Arc<JsAccount>, body: &[u8]) -> Result<StreamNamesResponse, JsError> {
    let req: StreamNamesRequest = request_strict(body, NAMES_FIELDS)?;
    let all = matching_streams(js, &req.subject);
    let offset = req.offset.max(0) as usize;
    let streams = all
        .iter()
        .skip(offset)
        .take(API_NAMES_LIMIT as usize)
        .map(|s| s.name.clone())
        .collect();
    Ok(StreamNamesResponse {
        paged: ApiPaged {
            total: all.len() as i64,
            offset: offset as i64,
            limit: API_NAMES_LIMIT,
        },
        streams,
    })
}

fn list(js: &Arc<JsAccount>, body: &[u8]) -> Result<StreamListResponse, JsError> {
    let req: StreamListRequest = request_strict(body, NAMES_FIELDS)?;
    let all = matching_streams(js, &req.subject);
    let offset = req.offset.max(0) as usize;
    let streams = all
        .iter()
        .skip(offset)
        .take(API_LIST_LIMIT as usize)
        .map(|s| stream_info(js, s, &StreamInfoRequest::default(), Detail::List))
        .collect();
    Ok(StreamListResponse {
        paged: ApiPaged {
            total: all.len() as i64,
            offset: offset as i64,
            limit: API_LIST_LIMIT,
        },
        streams,
        ..StreamListResponse::default()
    })
}

/// The last sequence of each subject matching `filters`, among messages up
/// to `up_to` (a scan of that prefix of the stream).
fn last_per_subject_up_to(stream: &Stream, filters: &[String], up_to: u64) -> Vec<u64> {
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut s = stream.store.state().first_seq;
    while s <= up_to {
        let Ok(m) = stream.store.load_next(">", s) else {
            break;
        };
        if m.seq > up_to {
            break;
        }
        if filters
            .iter()
            .any(|f| rnats_subject::matches(f.as_bytes(), m.subject.as_bytes()))
        {
            last.insert(m.subject.to_string(), m.seq);
        }
        s = m.seq + 1;
    }
    last.into_values().collect()
}

/// The first sequence stored at or after `since` (unix nanos); `u64::MAX`
/// when every message is older.
fn first_seq_at(stream: &Stream, since: i64) -> u64 {
    let mut s = stream.store.state().first_seq;
    loop {
        match stream.store.load_next(">", s) {
            Ok(m) if m.ts >= since => return m.seq,
            Ok(m) => s = m.seq + 1,
            Err(_) => return u64::MAX,
        }
    }
}

fn load(stream: &Stream, req: &MsgGetRequest) -> Result<rnats_store::StoredMsg, JsError> {
    let not_found = |_| JsError::new(JsErrorKind::NoMessageFound);
    // A start time picks the first message at or after it (then the
    // next one on `next_by_subj` from there, if given).
    if let Some(since) = req.start_time.and_then(|t| t.timestamp_nanos_opt()) {
        let filter = if req.next_by_subj.is_empty() {
            ">"
        } else {
            &req.next_by_subj
        };
        let from = first_seq_at(stream, since);
        return stream.store.load_next(filter, from).map_err(not_found);
    }
    match (
        req.seq,
        req.last_by_subj.as_str(),
        req.next_by_subj.as_str(),
    ) {
        (seq, "", "") if seq > 0 => stream.store.load(seq).map_err(not_found),
        (0, subj, "") if !subj.is_empty() => stream.store.load_last(subj).map_err(not_found),
        (seq, "", subj) if !subj.is_empty() => stream.store.load_next(subj, seq).map_err(not_found),
        _ => Err(JsError::new(JsErrorKind::BadRequest)),
    }
}

fn msg_get(js: &Arc<JsAccount>, name: &str, body: &[u8]) -> Result<MsgGetResponse, JsError> {
    let req: MsgGetRequest = request_strict(body, MSG_GET_FIELDS)?;
    let stream = stream_of(js, name)?;
    let m = load(&stream, &req)?;
    Ok(MsgGetResponse {
        message: Some(StoredMsg {
            subject: m.subject,
            seq: m.seq,
            hdrs: m.headers.to_vec(),
            data: m.payload.to_vec(),
            time: timestamp(m.ts),
        }),
    })
}

fn msg_delete(js: &Arc<JsAccount>, name: &str, body: &[u8]) -> Result<MsgDeleteResponse, JsError> {
    let req: MsgDeleteRequest = request_strict(body, MSG_DELETE_FIELDS)?;
    let stream = stream_of(js, name)?;
    if req.seq == 0 {
        return Err(JsError::new(JsErrorKind::BadRequest));
    }
    let cfg = stream.config();
    if cfg.sealed {
        return Err(JsError::new(JsErrorKind::StreamSealed));
    }
    if cfg.deny_delete {
        return Err(JsError::new(JsErrorKind::StreamMsgDeleteFailedF)
            .arg("err", "message delete not permitted"));
    }
    match stream.store.remove(req.seq, !req.no_erase) {
        Ok(true) => Ok(MsgDeleteResponse::SUCCESS),
        Ok(false) => {
            Err(JsError::new(JsErrorKind::SequenceNotFoundErrF).arg("seq", &req.seq.to_string()))
        }
        Err(e) => Err(JsError::new(JsErrorKind::StreamMsgDeleteFailedF).arg("err", &e.to_string())),
    }
}

fn account_info(js: &Arc<JsAccount>) -> Result<AccountInfoResponse, JsError> {
    let (memory, storage) = js.usage();
    let domain = js
        .server
        .upgrade()
        .and_then(|s| s.opts().jetstream_domain.clone())
        .unwrap_or_default();
    let (reserved_memory, reserved_storage) = js.reserved();
    Ok(AccountInfoResponse(Some(AccountInfo {
        total: TierInfo {
            memory,
            storage,
            reserved_memory: reserved_memory as u64,
            reserved_storage: reserved_storage as u64,
            streams: js.streams().len() as i64,
            consumers: js.num_consumers() as i64,
            limits: AccountLimits {
                max_memory: js.limits.max_memory,
                max_storage: js.limits.max_file,
                max_streams: js.limits.max_streams,
                max_consumers: js.limits.max_consumers,
                ..AccountLimits::default()
            },
        },
        domain,
        api: ApiStats {
            level: API_LEVEL,
            total: js.api_total.load(Ordering::Relaxed),
            errors: js.api_errors.load(Ordering::Relaxed),
            inflight: 0,
        },
        tiers: Default::default(),
    })))
}

/// `$JS.API.DIRECT.GET.<stream>` (JSON request) and
/// `$JS.API.DIRECT.GET.<stream>.<subject>` (last message for the subject):
/// the answer is the message itself with `Nats-*` headers, or a status.
pub fn direct_get(server: &ServerState, js: &JsAccount, subject: &str, body: &[u8], reply: &[u8]) {
    let Some(rest) = subject.strip_prefix(DIRECT_GET) else {
        return;
    };
    let (name, last_subject) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    let Some(stream) = js.stream(name).filter(|s| s.config().allow_direct) else {
        return;
    };
    direct_get_on(server, &stream, last_subject, body, reply);
}

/// A direct get answered from `stream` (the named stream, or a mirror of it
/// with `mirror_direct`); `last_subject` is what follows the stream name.
pub fn direct_get_on(
    server: &ServerState,
    stream: &Arc<Stream>,
    last_subject: Option<&str>,
    body: &[u8],
    reply: &[u8],
) {
    let status = |code: u16, text: &str| {
        let h = headers::Builder::status(code, text).finish();
        server.publish_in(&stream.account, reply, None, Some(&h), b"");
    };
    let req = match last_subject {
        Some(subj) => {
            let req = if body.is_empty() {
                MsgGetRequest::default()
            } else {
                match serde_json::from_slice::<MsgGetRequest>(body) {
                    Ok(r) => r,
                    Err(_) => return status(408, "Malformed Request"),
                }
            };
            if subj.is_empty()
                || req.seq != 0
                || !req.last_by_subj.is_empty()
                || !req.next_by_subj.is_empty()
                || !req.multi_last.is_empty()
                || req.batch != 0
                || req.start_time.is_some()
                || req.up_to_seq != 0
                || req.up_to_time.is_some()
            {
                return status(408, "Bad Request");
            }
            MsgGetRequest {
                last_by_subj: subj.to_string(),
                ..Default::default()
            }
        }
        None => {
            if body.is_empty() {
                return status(408, "Empty Request");
            }
            let Ok(req) = serde_json::from_slice::<MsgGetRequest>(body) else {
                return status(408, "Malformed Request");
            };
            let last = !req.last_by_subj.is_empty();
            let next = !req.next_by_subj.is_empty();
            if req.seq == 0
                && !last
                && !next
                && req.multi_last.is_empty()
                && req.start_time.is_none()
            {
                return status(408, "Empty Request");
            }
            let conflicting = (req.seq > 0 && (last || req.start_time.is_some()))
                || (req.start_time.is_some() && last)
                || (last && next)
                || (last && req.batch > 0)
                || (last && !req.multi_last.is_empty())
                || (next && !req.multi_last.is_empty())
                || (req.up_to_seq > 0 && req.up_to_time.is_some());
            if conflicting {
                return status(408, "Bad Request");
            }
            req
        }
    };
    if !req.multi_last.is_empty() {
        return direct_multi_last(server, stream, &req, reply);
    }
    if req.batch > 0 {
        return direct_batch(server, stream, &req, reply);
    }
    match load(stream, &req) {
        Ok(m) => {
            let h = direct_headers(&stream.name, &m, None);
            server.publish_in(&stream.account, reply, None, Some(&h), &m.payload);
        }
        Err(_) => status(404, "Message Not Found"),
    }
}

/// The headers of a direct-get answer: the message's own, then the `Nats-*`
/// ones (and, in a batch, pending count and previous sequence), in
/// nats-server's order.
fn direct_headers(stream: &str, m: &rnats_store::StoredMsg, batch: Option<(u64, u64)>) -> Vec<u8> {
    let mut b = headers::Builder::new()
        .extend_from(&m.headers)
        .add(headers::STREAM, stream)
        .add(headers::SUBJECT, &m.subject)
        .add(headers::SEQUENCE, &m.seq.to_string())
        .add(headers::TIME_STAMP, &go_time(m.ts));
    if let Some((pending, last)) = batch {
        b = b
            .add(headers::NUM_PENDING, &pending.to_string())
            .add(headers::LAST_SEQUENCE, &last.to_string());
    }
    b.finish()
}

/// The `204 EOB` status closing a batch; multi-last batches also say up to
/// which stream sequence they looked.
fn end_of_batch(
    server: &ServerState,
    stream: &Stream,
    reply: &[u8],
    pending: u64,
    last: u64,
    up_to: Option<u64>,
) {
    let mut b = headers::Builder::status(204, "EOB")
        .add(headers::NUM_PENDING, &pending.to_string())
        .add(headers::LAST_SEQUENCE, &last.to_string());
    if let Some(u) = up_to {
        b = b.add("Nats-UpTo-Sequence", &u.to_string());
    }
    let h = b.finish();
    server.publish_in(&stream.account, reply, None, Some(&h), b"");
}

/// A batch direct get: up to `batch` messages from `seq` (matching
/// `next_by_subj` if given), bounded by `max_bytes`, then an EOB status.
fn direct_batch(server: &ServerState, stream: &Stream, req: &MsgGetRequest, reply: &[u8]) {
    let filter = if req.next_by_subj.is_empty() {
        ">"
    } else {
        req.next_by_subj.as_str()
    };
    let mut seq = match req.start_time.and_then(|t| t.timestamp_nanos_opt()) {
        Some(since) => first_seq_at(stream, since),
        None => req.seq.max(1),
    };
    let max_bytes = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        64 * 1024 * 1024
    };
    let mut pending = stream.store.num_pending(filter, seq);
    let mut last = 0;
    let mut sent_bytes = 0;
    for i in 0..req.batch {
        if req.up_to_seq > 0 && seq > req.up_to_seq {
            break;
        }
        let m = match stream.store.load_next(filter, seq) {
            Ok(m) if req.up_to_seq == 0 || m.seq <= req.up_to_seq => m,
            _ if i > 0 => break,
            _ => {
                let h = headers::Builder::status(404, "Message Not Found").finish();
                server.publish_in(&stream.account, reply, None, Some(&h), b"");
                return;
            }
        };
        pending = pending.saturating_sub(1);
        let h = direct_headers(&stream.name, &m, Some((pending, last)));
        server.publish_in(&stream.account, reply, None, Some(&h), &m.payload);
        last = m.seq;
        seq = m.seq + 1;
        sent_bytes += m.subject.len() + m.headers.len() + m.payload.len();
        if sent_bytes >= max_bytes {
            break;
        }
    }
    end_of_batch(server, stream, reply, pending, last, None);
}

/// `multi_last`: the last message of every subject matching the filters,
/// in sequence order, then an EOB status.
fn direct_multi_last(server: &ServerState, stream: &Stream, req: &MsgGetRequest, reply: &[u8]) {
    // `up_to_time`: as of the last message stored before that time.
    let mut req = req.clone();
    if let Some(until) = req.up_to_time.and_then(|t| t.timestamp_nanos_opt()) {
        req.up_to_seq = match first_seq_at(stream, until) {
            u64::MAX => stream.store.state().last_seq,
            s => s.saturating_sub(1),
        };
        if req.up_to_seq == 0 {
            let h = headers::Builder::status(404, "Message Not Found").finish();
            server.publish_in(&stream.account, reply, None, Some(&h), b"");
            return;
        }
    }
    let req = &req;
    let mut seqs: Vec<u64> = if req.up_to_seq == 0 {
        req.multi_last
            .iter()
            .flat_map(|f| stream.store.subjects_state(f).into_values().map(|s| s.last))
            .collect()
    } else {
        last_per_subject_up_to(stream, &req.multi_last, req.up_to_seq)
    };
    seqs.sort_unstable();
    seqs.dedup();
    if req.batch > 0 {
        seqs.truncate(req.batch as usize);
    }
    if seqs.is_empty() {
        let h = headers::Builder::status(404, "Message Not Found").finish();
        server.publish_in(&stream.account, reply, None, Some(&h), b"");
        return;
    }
    let mut pending = seqs.len() as u64;
    let mut last = 0;
    for seq in seqs {
        let Ok(m) = stream.store.load(seq) else {
            continue;
        };
        pending -= 1;
        let h = direct_headers(&stream.name, &m, Some((pending, last)));
        server.publish_in(&stream.account, reply, None, Some(&h), &m.payload);
        last = m.seq;
    }
    let up_to = if req.up_to_seq > 0 {
        req.up_to_seq
    } else {
        stream.store.state().last_seq
    };
    end_of_batch(server, stream, reply, pending, last, Some(up_to));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_trims_fraction() {
        assert_eq!(go_time(0), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(1_700_000_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            go_time(1_700_000_000_120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            go_time(1_700_000_000_000_000_001),
            "2023-11-14T22:13:20.000000001Z"
        );
    }

    #[test]
    fn unknown_config_fields_are_refused() {
        let err = request_config("S", br#"{"name":"S","bogus_field":1}"#).unwrap_err();
        assert_eq!(
            err.description,
            "invalid JSON: json: unknown field \"bogus_field\""
        );
        let err = request_config("S", br#"{"name":"T"}"#).unwrap_err();
        assert_eq!(err.err_code, 10056);
        let err = request_config("S", b"").unwrap_err();
        assert_eq!(err.err_code, 10056);
        let cfg = request_config(
            "S",
            br#"{"name":"S","subjects":["a.>"],"consumer_limits":null,"metadata":null}"#,
        )
        .unwrap();
        assert_eq!(cfg.name, "S");
        assert_eq!(cfg.max_msgs, -1);
    }
}
