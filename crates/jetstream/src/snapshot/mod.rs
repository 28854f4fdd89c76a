//! Stream backups as nats-server 2.15 takes and restores them:
//! `$JS.API.STREAM.SNAPSHOT.<stream>` streams an S2-framed NATSARC1 archive
//! to the requester's deliver subject in flow-controlled chunks, and
//! `$JS.API.STREAM.RESTORE.<stream>` takes one back in acknowledged chunks on
//! `$JS.SNAPSHOT.RESTORE.<stream>.<id>`. The archive is nats-server's own
//! (`archive.rs`, `s2.rs`), so a backup moves between it and rnats both ways.
//!
//! Restores buffer the archive until its end and check all of it before a
//! stream is created, so a damaged backup leaves nothing behind.

pub mod archive;
pub mod s2;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::{JsError, JsErrorKind};
use super::stream::Stream;
use super::types::*;
use super::JsAccount;
use crate::consumer::state::Persisted;
use rnats_core::account::Account;
use rnats_core::router::Message;
use rnats_core::server::ServerState;
use rnats_core::subscription::{InternalHandler, SubRef};

const ACK_PREFIX: &str = "$JS.SNAPSHOT.ACK.";
const RESTORE_PREFIX: &str = "$JS.SNAPSHOT.RESTORE.";
const DEFAULT_CHUNK: i64 = 128 * 1024;
const DEFAULT_WINDOW: i64 = 8 * 1024 * 1024;
/// Without an ack for this long the receiver is taken as gone (nats-server's).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// A restore with no chunk for this long is abandoned (nats-server's).
const RESTORE_IDLE: Duration = Duration::from_secs(5);

#[derive(Deserialize, Default)]
struct SnapshotRequest {
    #[serde(default)]
    deliver_subject: String,
    #[serde(default)]
    no_consumers: bool,
    #[serde(default)]
    chunk_size: i64,
    #[serde(default)]
    window_size: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SnapshotResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<StreamConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StreamState>,
}

impl ApiResponseBody for SnapshotResponse {
    const RESPONSE_TYPE: &'static str = "io.nats.jetstream.api.v1.stream_snapshot_response";
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RestoreResponse {
    pub deliver_subject: String,
}

impl ApiResponseBody for RestoreResponse {
    const RESPONSE_TYPE: &'static str = "io.nats.jetstream.api.v1.stream_restore_response";
}

fn is_empty_request(body: &[u8]) -> bool {
    let t = body.trim_ascii();
    t.is_empty() || t == b"{}"
}

/// The state nats-server reports with a snapshot (its `FastState`).
fn snapshot_state(stream: &Stream) -> StreamState {
    let st = stream.store.state();
    let ts = |n: i64| {
        if n <= 0 {
            zero_time()
        } else {
            chrono::DateTime::from_timestamp_nanos(n)
        }
    };
    StreamState {
        messages: st.msgs,
        bytes: st.bytes,
        first_seq: st.first_seq,
        first_ts: ts(st.first_ts),
        last_seq: st.last_seq,
        last_ts: ts(st.last_ts),
        num_subjects: st.num_subjects as i64,
        num_deleted: st.num_deleted as i64,
        consumer_count: stream.consumers().len() as i64,
        ..StreamState::default()
    }
}

/// `$JS.API.STREAM.SNAPSHOT.<stream>`: answers with the config and state,
/// then streams the archive from a task of its own.
pub fn snapshot(js: &Arc<JsAccount>, name: &str, body: &[u8]) -> Result<SnapshotResponse, JsError> {
    if is_empty_request(body) {
        return Err(JsError::new(JsErrorKind::BadRequest));
    }
    let stream = js
        .stream(name)
        .ok_or_else(|| JsError::new(JsErrorKind::StreamNotFound))?;
    let req: SnapshotRequest = crate::api::request(body)?;
    if req.deliver_subject.is_empty()
        || !rnats_subject::is_valid_literal_subject(req.deliver_subject.as_bytes())
    {
        return Err(JsError::new(JsErrorKind::SnapshotDeliverSubjectInvalid));
    }
    let server = js.server().ok_or_else(|| {
        JsError::new(JsErrorKind::StreamSnapshotErrF).arg("err", "server is shutting down")
    })?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        JsError::new(JsErrorKind::StreamSnapshotErrF).arg("err", "no runtime to stream from")
    })?;
    let mut state = snapshot_state(&stream);
    if req.no_consumers {
        state.consumer_count = 0;
    }
    let config = stream.config();
    let producer = Producer::new(stream.clone(), &state, !req.no_consumers);
    let account = js.account.clone();
    runtime.spawn(send_snapshot(
        server,
        account,
        stream.name.clone(),
        req,
        producer,
    ));
    Ok(SnapshotResponse {
        config: Some(config),
        state: Some(state),
    })
}

/// Builds the archive one entry at a time, so the window, not the stream,
/// bounds what a snapshot holds in memory.
struct Producer {
    stream: Arc<Stream>,
    stage: Stage,
    state_json: Vec<u8>,
    consumers: Vec<Arc<crate::consumer::Consumer>>,
    first_seq: u64,
    last_seq: u64,
}

#[derive(Clone, Copy)]
enum Stage {
    State,
    Consumer(usize),
    Msg(u64),
    End,
    Done,
}

impl Producer {
    fn new(stream: Arc<Stream>, state: &StreamState, with_consumers: bool) -> Producer {
        let consumers = if with_consumers {
            stream.consumers()
        } else {
            Vec::new()
        };
        let mut archived = state.clone();
        archived.consumer_count = consumers.len() as i64;
        Producer {
            stage: Stage::State,
            state_json: serde_json::to_vec(&archived).unwrap_or_default(),
            consumers,
            first_seq: state.first_seq.max(1),
            last_seq: state.last_seq,
            stream,
        }
    }

    /// Appends the next entry to `out`; false once the archive is complete.
    fn step(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        match self.stage {
            Stage::State => {
                out.extend_from_slice(archive::MAGIC);
                let now = crate::stream::now_nanos();
                archive::put_entry(out, archive::STATE_ENTRY, now, 0, b"", &self.state_json);
                self.stage = Stage::Consumer(0);
            }
            Stage::Consumer(i) => match self.consumers.get(i) {
                Some(c) => {
                    let entry = ConsumerEntry {
                        config: c.config(),
                        state: GoConsumerState::from_persisted(&c.persisted_state(), self.last_seq),
                    };
                    let json = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
                    let name = format!("{}{}", archive::CONSUMER_PREFIX, c.name);
                    archive::put_entry(out, &name, crate::stream::now_nanos(), 0, b"", &json);
                    self.stage = Stage::Consumer(i + 1);
                }
                None => self.stage = Stage::Msg(self.first_seq),
            },
            Stage::Msg(seq) if seq <= self.last_seq => match self.stream.store.load_next("", seq) {
                Ok(m) if m.seq <= self.last_seq => {
                    archive::put_entry(out, &m.subject, m.ts, m.seq, &m.headers, &m.payload);
                    self.stage = Stage::Msg(m.seq + 1);
                }
                Ok(_) | Err(rnats_store::StoreError::NotFound) => self.stage = Stage::End,
                Err(e) => return Err(format!("couldn't load next message after seq {seq}: {e}")),
            },
            Stage::Msg(_) => self.stage = Stage::End,
            Stage::End => {
                archive::put_entry(out, "", 0, 0, b"", b"");
                self.stage = Stage::Done;
            }
            Stage::Done => return Ok(false),
        }
        Ok(true)
    }
}

/// Counts acks of sent chunks back into the window.
struct AckHandler(Arc<tokio::sync::Semaphore>);

impl InternalHandler for AckHandler {
    fn deliver(&self, _msg: &Message<'_>) {
        self.0.add_permits(1);
    }
}

/// Streams the archive to the deliver subject: each chunk takes a slot of
/// the window and carries an ack subject whose answer gives it back; the end
/// is an empty message whose status says how it went (204, 408, 500).
async fn send_snapshot(
    server: Arc<ServerState>,
    account: Arc<Account>,
    stream: String,
    req: SnapshotRequest,
    mut producer: Producer,
) {
    let deliver = req.deliver_subject.as_bytes().to_vec();
    // The API answer is published when the request handler returns; give it
    // the lead, then wait (as nats-server does) up to 2 s for the receiver.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let wait_until = Instant::now() + Duration::from_secs(2);
    while !account.has_interest(&deliver) && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let chunk_size = (if req.chunk_size <= 0 {
        DEFAULT_CHUNK
    } else {
        req.chunk_size
    })
    .clamp(1024, 1024 * 1024) as usize;
    let window = (if req.window_size <= 0 {
        DEFAULT_WINDOW
    } else {
        req.window_size
    })
    .clamp(1024, 32 * 1024 * 1024) as usize;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        (window.max(chunk_size) / chunk_size).max(1),
    ));
    let ack_subject = format!("{ACK_PREFIX}{stream}.{}", rnats_core::ids::next());
    let ack_sub = server.subscribe_internal_in(
        &account,
        &format!("{ack_subject}.>"),
        None,
        Arc::new(AckHandler(slots.clone())),
    );
    let mut enc = s2::Encoder::default();
    let mut raw = Vec::new();
    let mut index = 1u64;
    let mut more = true;
    // As nats-server: the end says 204 only once a full chunk went out.
    let mut status: Option<String> = None;
    let end: Option<String> = loop {
        while more && enc.output_len() < chunk_size {
            raw.clear();
            match producer.step(&mut raw) {
                Ok(m) => more = m,
                Err(e) => {
                    tracing::warn!(stream, error = %e, "snapshot failed");
                    break;
                }
            }
            enc.write(&raw);
            if !more {
                enc.flush();
            }
        }
        if more && enc.output_len() < chunk_size {
            // The producer failed above.
            break Some("500 snapshot failed".into());
        }
        match tokio::time::timeout(ACK_TIMEOUT, slots.acquire()).await {
            Ok(Ok(permit)) => permit.forget(),
            _ => break Some("408 No Flow Response".into()),
        }
        if !account.has_interest(&deliver) {
            break Some("408 No Interest".into());
        }
        let chunk = enc.take(chunk_size);
        if chunk.len() < chunk_size {
            // The short last chunk goes without an ack subject, as nats-server's.
            if !chunk.is_empty() {
                server.publish_in(&account, &deliver, None, None, &chunk);
            }
            break status;
        }
        let reply = format!("{ack_subject}.{}.{index}", chunk.len());
        server.publish_in(&account, &deliver, Some(reply.as_bytes()), None, &chunk);
        status = Some("204".into());
        index += 1;
    };
    let hdr = end.map(|status| format!("NATS/1.0 {status}\r\n\r\n"));
    let hdr = hdr.as_ref().map(|h| h.as_bytes());
    server.publish_in(&account, &deliver, None, hdr, b"");
    if let Ok(sub) = ack_sub {
        server.remove_subscription(&sub);
    }
}

/// A consumer in the archive: its config and nats-server's `ConsumerState`.
#[derive(Serialize, Deserialize)]
struct ConsumerEntry {
    config: ConsumerConfig,
    state: GoConsumerState,
}

#[derive(Serialize, Deserialize, Default, Clone, Copy)]
struct SeqPair {
    #[serde(default)]
    consumer_seq: u64,
    #[serde(default)]
    stream_seq: u64,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct GoPending {
    #[serde(rename = "Sequence", default)]
    sequence: u64,
    #[serde(rename = "Timestamp", default)]
    timestamp: i64,
}

/// nats-server's `ConsumerState` (pending and redelivered keyed by stream sequence).
#[derive(Serialize, Deserialize, Default)]
struct GoConsumerState {
    #[serde(default)]
    delivered: SeqPair,
    #[serde(default)]
    ack_floor: SeqPair,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pending: std::collections::BTreeMap<u64, GoPending>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    redelivered: std::collections::BTreeMap<u64, u64>,
}

impl GoConsumerState {
    /// Bounded by the snapshot's last sequence, as nats-server does.
    fn from_persisted(p: &Persisted, last_seq: u64) -> GoConsumerState {
        let now = crate::stream::now_nanos();
        let pending = p.pending.iter().filter(|(s, _, _)| *s <= last_seq);
        GoConsumerState {
            delivered: SeqPair {
                consumer_seq: p.dseq,
                stream_seq: p.delivered_sseq.min(last_seq),
            },
            ack_floor: SeqPair {
                consumer_seq: p.ack_floor_d,
                stream_seq: p.ack_floor_s.min(last_seq),
            },
            pending: pending
                .clone()
                .map(|(s, d, _)| {
                    (
                        *s,
                        GoPending {
                            sequence: *d,
                            timestamp: now,
                        },
                    )
                })
                .collect(),
            // nats-server counts redeliveries (deliveries - 1).
            redelivered: pending
                .filter(|(_, _, n)| *n > 1)
                .map(|(s, _, n)| (*s, n - 1))
                .collect(),
        }
    }

    /// None when nothing was delivered: the consumer then starts as configured.
    fn to_persisted(&self) -> Option<Persisted> {
        if self.delivered.stream_seq == 0 && self.delivered.consumer_seq == 0 {
            return None;
        }
        Some(Persisted {
            next_sseq: self.delivered.stream_seq + 1,
            dseq: self.delivered.consumer_seq,
            delivered_sseq: self.delivered.stream_seq,
            ack_floor_d: self.ack_floor.consumer_seq,
            ack_floor_s: self.ack_floor.stream_seq,
            pending: self
                .pending
                .iter()
                .map(|(s, p)| {
                    let n = self.redelivered.get(s).map_or(1, |r| r + 1);
                    (*s, p.sequence, n)
                })
                .collect(),
        })
    }
}

fn restore_error(text: impl std::fmt::Display) -> JsError {
    JsError::new(JsErrorKind::StreamRestoreErrF).arg("err", &text.to_string())
}

/// A stream configuration from a restore request or backup, as create takes it.
fn restore_config(name: &str, raw: Option<&Value>) -> Result<StreamConfig, JsError> {
    let mut raw = raw.cloned().unwrap_or(Value::Object(Default::default()));
    if let Some(obj) = raw.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
        if obj
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            obj.insert("name".into(), Value::String(name.into()));
        }
    }
    let mut cfg: StreamConfig = serde_json::from_value(raw)
        .map_err(|e| JsError::new(JsErrorKind::InvalidJSON).arg("err", &e.to_string()))?;
    if cfg.name != name {
        return Err(JsError::new(JsErrorKind::StreamMismatch));
    }
    cfg.metadata.retain(|k, _| !k.starts_with("_nats."));
    let cfg = cfg.with_defaults();
    cfg.validate()?;
    if cfg.num_replicas > 1 {
        return Err(JsError::new(JsErrorKind::StreamReplicasNotSupported));
    }
    Ok(cfg)
}

/// `$JS.API.STREAM.RESTORE.<stream>`: checks the request and opens the
/// subject the archive is sent to.
pub fn restore(js: &Arc<JsAccount>, name: &str, body: &[u8]) -> Result<RestoreResponse, JsError> {
    if is_empty_request(body) {
        return Err(JsError::new(JsErrorKind::BadRequest));
    }
    let req = crate::api::parse_json(body)?;
    if name.contains(['/', '\\']) {
        return Err(JsError::new(JsErrorKind::StreamNameContainsPathSeparators));
    }
    let cfg = restore_config(name, req.get("config"))?;
    if let Some(kind) = js.limits_exceeded(cfg.storage, 0) {
        return Err(JsError::new(kind));
    }
    if js.stream(name).is_some() {
        return Err(JsError::new(JsErrorKind::StreamNameExistRestoreFailed));
    }
    let server = js
        .server()
        .ok_or_else(|| restore_error("server is shutting down"))?;
    let subject = format!("{RESTORE_PREFIX}{name}.{}", rnats_core::ids::next());
    let session = Arc::new(Restore {
        js: Arc::downgrade(js),
        server: Arc::downgrade(&server),
        config: cfg,
        buf: Mutex::new(Vec::new()),
        last_chunk: Mutex::new(Instant::now()),
        sub: Mutex::new(None),
    });
    let sub = server
        .subscribe_internal_in(&js.account, &subject, None, session.clone())
        .map_err(|e| {
            JsError::new(JsErrorKind::RestoreSubscribeFailedErrF)
                .args(&[("err", &e.to_string()), ("subject", &subject)])
        })?;
    *session.sub.lock() = Some(sub);
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(watch_idle(Arc::downgrade(&session)));
    }
    Ok(RestoreResponse {
        deliver_subject: subject,
    })
}

/// One restore in progress: the archive received so far.
struct Restore {
    js: Weak<JsAccount>,
    server: Weak<ServerState>,
    config: StreamConfig,
    buf: Mutex<Vec<u8>>,
    last_chunk: Mutex<Instant>,
    /// Taken when the restore ends (complete, failed or stalled).
    sub: Mutex<Option<SubRef>>,
}

impl Restore {
    fn close(&self) -> bool {
        let Some(sub) = self.sub.lock().take() else {
            return false;
        };
        if let Some(server) = self.server.upgrade() {
            server.remove_subscription(&sub);
        }
        self.buf.lock().clear();
        true
    }
}

/// Abandons a restore whose sender went quiet, as nats-server does.
async fn watch_idle(session: Weak<Restore>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(s) = session.upgrade() else { return };
        if s.sub.lock().is_none() {
            return;
        }
        if s.last_chunk.lock().elapsed() > RESTORE_IDLE {
            tracing::warn!(stream = %s.config.name, "restore is stalled");
            s.close();
            return;
        }
    }
}

impl InternalHandler for Restore {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(server), Some(js)) = (self.server.upgrade(), self.js.upgrade()) else {
            return;
        };
        let Some(reply) = msg.reply else {
            // Without replies there is no flow control or answer: give up.
            self.close();
            return;
        };
        if !msg.payload.is_empty() {
            if self.sub.lock().is_none() {
                return;
            }
            let held = {
                let mut buf = self.buf.lock();
                buf.extend_from_slice(msg.payload);
                buf.len() as u64
            };
            // The archive is held until its end: stop one that cannot fit.
            if let Some(kind) = js.limits_exceeded(self.config.storage, held) {
                self.close();
                let err = restore_error(JsError::new(kind).description);
                let body = ApiResponse::<StreamCreateResponse>::error(err).to_vec();
                server.publish_in(&js.account, reply, None, None, &body);
                return;
            }
            *self.last_chunk.lock() = Instant::now();
            server.publish_in(&js.account, reply, None, None, b"");
            return;
        }
        let archive = std::mem::take(&mut *self.buf.lock());
        if !self.close() {
            return;
        }
        let result = restore_into(&js, self.config.clone(), &archive);
        if let Err(e) = &result {
            tracing::warn!(stream = %self.config.name, error = %e, "restore failed");
        }
        let body = ApiResponse::from_result(result).to_vec();
        server.publish_in(&js.account, reply, None, None, &body);
    }
}

/// Decodes and checks the whole archive, then creates the stream, its
/// messages and consumers; any failure removes what was created.
fn restore_into(
    js: &Arc<JsAccount>,
    cfg: StreamConfig,
    data: &[u8],
) -> Result<StreamCreateResponse, JsError> {
    let raw = s2::decode(data).map_err(restore_error)?;
    let (backup, state) = archive::parse(&raw).map_err(restore_error)?;
    let mut consumers = Vec::with_capacity(backup.consumers.len());
    for (name, json) in &backup.consumers {
        let v = crate::api::parse_json(json).map_err(|e| {
            restore_error(format!(
                "failed to decode consumer {name:?} state: {}",
                e.description
            ))
        })?;
        let entry: ConsumerEntry = serde_json::from_value(v)
            .map_err(|e| restore_error(format!("failed to decode consumer {name:?} state: {e}")))?;
        consumers.push((name.to_string(), entry));
    }
    if js.stream(&cfg.name).is_some() {
        return Err(JsError::new(JsErrorKind::StreamNameExistRestoreFailed));
    }
    let name = cfg.name.clone();
    let (stream, _) = js.create_stream(cfg)?;
    let filled = fill(&stream, &backup, &state).and_then(|()| {
        let scfg = stream.config();
        for (cname, entry) in consumers {
            let mut ccfg = entry.config;
            // The `_nats.*` keys are the server's to set, not restored.
            ccfg.metadata.retain(|k, _| !k.starts_with("_nats."));
            let ccfg = ccfg.with_defaults(&scfg);
            js.add_consumer(
                &stream,
                cname,
                ccfg,
                chrono::Utc::now(),
                entry.state.to_persisted(),
            )?;
        }
        Ok(())
    });
    if let Err(e) = filled {
        let _ = js.delete_stream(&name);
        return Err(e);
    }
    js.advise_stream(&name, crate::advisories::Action::Create);
    let info = crate::api::info(js, &name, b"")?;
    let mut info = info.info;
    if let Some(i) = info.as_mut() {
        i.cluster = None;
    }
    Ok(StreamCreateResponse {
        info,
        did_create: false,
    })
}

/// Stores the backup's messages at their sequences, keeping its gaps and
/// its first and last sequence.
fn fill(
    stream: &Stream,
    backup: &archive::Backup<'_>,
    state: &archive::BackupState,
) -> Result<(), JsError> {
    let store = &stream.store;
    let err = |e: rnats_store::StoreError| restore_error(e);
    if state.first_seq > 1 {
        store
            .purge(None, Some(state.first_seq), None)
            .map_err(err)?;
    }
    for m in &backup.msgs {
        store
            .store_at(m.seq, m.name, m.hdr, m.payload, m.ts)
            .map_err(|e| {
                restore_error(format!("failed to store message sequence {}: {e}", m.seq))
            })?;
    }
    // Trailing deleted sequences must not be reused.
    let last = store.state().last_seq;
    if backup.msgs.is_empty() && state.last_seq > last {
        store
            .purge(None, Some(state.last_seq + 1), None)
            .map_err(err)?;
    } else {
        for _ in last..state.last_seq {
            store.skip().map_err(err)?;
        }
    }
    Ok(())
}
