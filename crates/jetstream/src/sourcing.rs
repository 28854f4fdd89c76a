//! Mirrors and sources: a stream that copies another stream's messages.
//!
//! nats-server drives these with flow-controlled internal consumers over the
//! wire; on one server a task per mirror or source reads the origin's store
//! directly from the next sequence, applies each message through the
//! target's normal apply path, and then sleeps until the origin stores more
//! (the origin only bumps a `watch`, so its publishers never wait on us), a
//! stream is created or deleted, or a one-second tick (nats-server's
//! heartbeat, which keeps `active` fresh). One message is in flight at a
//! time, so memory stays bounded; messages the origin removed before they
//! were copied are simply not found and skipped, as nats-server does.
//!
//! - A mirror stores each message at the origin's sequence and time, so a
//!   gap (deleted, purged or filtered-out messages) becomes deleted
//!   sequences; after a restart it continues from its last sequence + 1.
//! - A source stores with new sequences and adds the `Nats-Stream-Source`
//!   header (`<stream> <seq> <filter> <dest> <subject> <identity>`); after
//!   a restart the last copied origin sequence is read back from those
//!   headers, so every message is present exactly once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use super::errors::{JsError, JsErrorKind};
use super::headers;
use super::stream::{now_nanos, Origin, Stream, DIRECT_GROUP};
use super::types::{StreamSource, StreamSourceInfo};
use super::JsAccount;
use rnats_core::router::Message;
use rnats_core::subscription::{InternalHandler, SubRef};

#[path = "sourcing_remote.rs"]
mod remote;

/// Messages copied before the task yields to other work.
const BATCH: usize = 256;
/// How often an idle task looks again (and counts as active).
const TICK: Duration = Duration::from_secs(1);
/// A mirror serves the origin's direct gets once it lags less than this.
const DIRECT_CAUGHT_UP: u64 = 10;

/// The running mirror and sources of one stream.
#[derive(Default)]
pub struct Links {
    inner: Mutex<LinksInner>,
}

#[derive(Default)]
struct LinksInner {
    mirror: Option<Running>,
    sources: Vec<Running>,
    /// The mirror's subscriptions on the origin's direct-get subjects.
    direct: Vec<SubRef>,
}

struct Running {
    link: Arc<Link>,
    task: JoinHandle<()>,
}

impl Links {
    /// Stops every task and drops the mirror's direct-get subscriptions.
    pub fn stop(&self, server: Option<&rnats_core::server::ServerState>) {
        let (running, direct) = {
            let mut inner = self.inner.lock();
            let mut all: Vec<Running> = inner.mirror.take().into_iter().collect();
            all.append(&mut inner.sources);
            (all, std::mem::take(&mut inner.direct))
        };
        for r in running {
            r.task.abort();
        }
        if let Some(server) = server {
            server.remove_subscriptions(&direct);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mirror,
    Source,
}

/// One mirror or source: its configuration and what info reports.
pub struct Link {
    kind: Kind,
    cfg: StreamSource,
    /// nats-server's index name: `<stream>[:<api hash>] <filters> <dests>`.
    iname: String,
    /// (filter, transform) pairs; an empty list means everything unchanged.
    filters: Vec<(String, Option<rnats_subject::Transform>)>,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// Last origin sequence copied (sources) or looked at (mirror).
    sseq: u64,
    lag: u64,
    /// Unix nanos of the last sign of life from the origin; 0 = never.
    last_active: i64,
    error: Option<JsError>,
    /// The origin's identity when last seen (detects a re-created origin).
    ident: String,
}

impl Link {
    fn new(kind: Kind, cfg: &StreamSource) -> Link {
        let filters = if !cfg.subject_transforms.is_empty() {
            cfg.subject_transforms
                .iter()
                .map(|t| {
                    let src = if t.src.is_empty() { ">" } else { &t.src };
                    let tr = (!t.dest.is_empty())
                        .then(|| rnats_subject::Transform::new(src, &t.dest).ok())
                        .flatten();
                    (src.to_string(), tr)
                })
                .collect()
        } else if !cfg.filter_subject.is_empty() {
            vec![(cfg.filter_subject.clone(), None)]
        } else {
            Vec::new()
        };
        Link {
            kind,
            cfg: cfg.clone(),
            iname: index_name(cfg),
            filters,
            state: Mutex::new(LinkState::default()),
        }
    }

    fn info(&self) -> StreamSourceInfo {
        let st = self.state.lock();
        StreamSourceInfo {
            name: self.cfg.name.clone(),
            external: self.cfg.external.clone(),
            lag: st.lag,
            seq: if self.kind == Kind::Source {
                st.sseq
            } else {
                0
            },
            active: if st.last_active == 0 {
                -1
            } else {
                (now_nanos() - st.last_active).max(0)
            },
            error: st.error.clone(),
            filter_subject: self.cfg.filter_subject.clone(),
            subject_transforms: self.cfg.subject_transforms.clone(),
        }
    }

    fn touch(&self) {
        self.state.lock().last_active = now_nanos();
    }

    /// The single store filter to scan with, when there is one.
    fn scan_filter(&self) -> &str {
        match self.filters.as_slice() {
            [(f, _)] => f,
            _ => ">",
        }
    }

    /// The subject to store a message under, or None when it is filtered out.
    fn map_subject(&self, subject: &str) -> Option<String> {
        if self.filters.is_empty() {
            return Some(subject.to_string());
        }
        let (_, tr) = self
            .filters
            .iter()
            .find(|(f, _)| rnats_subject::matches(f.as_bytes(), subject.as_bytes()))?;
        Some(
            tr.as_ref()
                .and_then(|t| t.apply(subject))
                .unwrap_or_else(|| subject.to_string()),
        )
    }

    /// Origin messages at or after `next` still to copy.
    fn pending(&self, origin: &Stream, next: u64) -> u64 {
        if self.filters.is_empty() {
            return origin.store.num_pending(">", next);
        }
        self.filters
            .iter()
            .map(|(f, _)| origin.store.num_pending(f, next))
            .sum()
    }
}

/// The mirror's state for stream info.
pub fn mirror_info(stream: &Stream) -> Option<StreamSourceInfo> {
    stream
        .sourcing
        .inner
        .lock()
        .mirror
        .as_ref()
        .map(|r| r.link.info())
}

/// The sources' state for stream info, in configuration order.
pub fn sources_info(stream: &Stream) -> Vec<StreamSourceInfo> {
    stream
        .sourcing
        .inner
        .lock()
        .sources
        .iter()
        .map(|r| r.link.info())
        .collect()
}

/// Starts and stops tasks to match the stream's configuration (at start and
/// after an update: sources may be added or removed, a mirror promoted).
pub fn reconcile(stream: &Arc<Stream>) {
    let cfg = stream.config();
    let mut stale = Vec::new();
    let mut direct = Vec::new();
    {
        let mut inner = stream.sourcing.inner.lock();
        match (&cfg.mirror, &inner.mirror) {
            (Some(m), Some(r)) if r.link.cfg == *m => {}
            (Some(m), _) => {
                stale.extend(inner.mirror.take());
                inner.mirror = Some(spawn(stream, Link::new(Kind::Mirror, m)));
            }
            (None, _) => stale.extend(inner.mirror.take()),
        }
        if cfg.mirror.is_none() || !cfg.mirror_direct {
            direct = std::mem::take(&mut inner.direct);
        }
        let mut old = std::mem::take(&mut inner.sources);
        for src in &cfg.sources {
            let iname = index_name(src);
            match old.iter().position(|r| r.link.iname == iname) {
                Some(i) => inner.sources.push(old.remove(i)),
                None => inner
                    .sources
                    .push(spawn(stream, Link::new(Kind::Source, src))),
            }
        }
        stale.append(&mut old);
    }
    for r in stale {
        r.task.abort();
    }
    if let Some(server) = stream.server() {
        server.remove_subscriptions(&direct);
    }
}

fn spawn(stream: &Arc<Stream>, link: Link) -> Running {
    let link = Arc::new(link);
    // A mirror or source of a stream in another domain is fed over the network.
    let remote_origin = stream.js().is_some_and(|js| {
        link.cfg.external.is_some()
            && lookup(&js, &link.cfg).is_none()
            && !is_local_api(&js, &link.cfg)
    });
    if remote_origin {
        let task = tokio::spawn(remote::run(Arc::downgrade(stream), link.clone()));
        return Running { link, task };
    }
    let task = tokio::spawn(run(Arc::downgrade(stream), link.clone()));
    Running { link, task }
}

/// nats-server's index name of a source (also the middle of its header).
fn index_name(cfg: &StreamSource) -> String {
    let mut name = cfg.name.clone();
    if let Some(ext) = &cfg.external {
        name = format!("{name}:{}", short_hash(&ext.api));
    }
    if let Some(c) = &cfg.consumer {
        name = format!("{name}:C={}", short_hash(&c.name));
    }
    let or_all = |s: &str| {
        if s.is_empty() {
            ">".to_string()
        } else {
            s.to_string()
        }
    };
    let (src, dest) = if cfg.subject_transforms.is_empty() {
        (or_all(&cfg.filter_subject), ">".to_string())
    } else {
        let srcs: Vec<String> = cfg
            .subject_transforms
            .iter()
            .map(|t| or_all(&t.src))
            .collect();
        let dests: Vec<String> = cfg
            .subject_transforms
            .iter()
            .map(|t| or_all(&t.dest))
            .collect();
        (srcs.join("\x0c"), dests.join("\x0c"))
    };
    format!("{name} {src} {dest}")
}

/// nats-server's 8-character hash: SHA-256, each of the first 8 bytes
/// mapped onto 62 letters and digits.
pub fn short_hash(text: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref()[..8]
        .iter()
        .map(|b| DIGITS[(*b as usize) % DIGITS.len()] as char)
        .collect()
}

/// A stream's identity: changes when it is deleted and created again.
pub fn identity(stream: &Stream) -> String {
    short_hash(&rnats_core::gofmt::go_time(&stream.created))
}

/// Whether the external API prefix (if any) is this server's own.
fn is_local_api(js: &JsAccount, cfg: &StreamSource) -> bool {
    let Some(ext) = &cfg.external else {
        return true;
    };
    let api = ext.api.trim_end_matches('.');
    let domain = js
        .server()
        .and_then(|s| s.opts().jetstream_domain.clone())
        .map(|d| format!("$JS.{d}.API"));
    api == "$JS.API" || Some(api) == domain.as_deref()
}

/// The origin, if this server can reach it: a local stream, or one whose
/// external API prefix is this server's own.
fn lookup(js: &JsAccount, cfg: &StreamSource) -> Option<Arc<Stream>> {
    if let Some(ext) = &cfg.external {
        let api = ext.api.trim_end_matches('.');
        let domain = js
            .server()
            .and_then(|s| s.opts().jetstream_domain.clone())
            .map(|d| format!("$JS.{d}.API"));
        if api != "$JS.API" && Some(api) != domain.as_deref() {
            return None;
        }
    }
    js.stream(&cfg.name)
}

/// What a task waits on between batches.
enum Wait {
    /// More to copy now.
    Again,
    /// Nothing to do until the origin changes.
    Idle(Option<tokio::sync::watch::Receiver<u64>>),
}

async fn run(target: Weak<Stream>, link: Arc<Link>) {
    // The next origin sequence to look at; None until the start is known.
    let mut next: Option<u64> = None;
    let mut seen: Option<Weak<Stream>> = None;
    loop {
        let mut streams_changed = None;
        let wait = {
            let Some(target) = target.upgrade() else {
                return;
            };
            let js = target.js();
            if let Some(js) = &js {
                streams_changed = Some(js.streams_changed.subscribe());
            }
            match js.as_deref().and_then(|js| lookup(js, &link.cfg)) {
                None => {
                    let reachable = link.cfg.external.is_none();
                    let mut st = link.state.lock();
                    if reachable {
                        st.error = Some(JsError::new(JsErrorKind::StreamNotFound));
                    }
                    Wait::Idle(None)
                }
                Some(origin) => {
                    let same = seen
                        .as_ref()
                        .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&origin)));
                    if !same {
                        seen = Some(Arc::downgrade(&origin));
                        on_origin(&target, &origin, &link, &mut next);
                    }
                    link.state.lock().error = None;
                    let rx = origin.watch_new_msgs();
                    let start = *next.get_or_insert_with(|| start_seq(&target, &origin, &link));
                    let (after, more) = copy(&target, &origin, &link, start);
                    next = Some(after);
                    if more {
                        Wait::Again
                    } else {
                        Wait::Idle(Some(rx))
                    }
                }
            }
        };
        match wait {
            Wait::Again => tokio::task::yield_now().await,
            Wait::Idle(rx) => {
                let origin_grew = async {
                    match rx {
                        Some(mut rx) => {
                            if rx.changed().await.is_err() {
                                std::future::pending::<()>().await
                            }
                        }
                        None => std::future::pending().await,
                    }
                };
                let streams = async {
                    match streams_changed {
                        Some(mut rx) => {
                            if rx.changed().await.is_err() {
                                std::future::pending::<()>().await
                            }
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = origin_grew => {}
                    _ = streams => {}
                    _ = tokio::time::sleep(TICK) => {
                        if seen.as_ref().is_some_and(|w| w.strong_count() > 0) {
                            link.touch();
                        }
                    }
                }
            }
        }
    }
}

/// First sight of an origin (at start, or after it was re-created): a
/// source recovers its position from its stored headers and starts over
/// if the origin's identity changed, as nats-server does.
fn on_origin(target: &Stream, origin: &Stream, link: &Link, next: &mut Option<u64>) {
    let ident = identity(origin);
    if link.kind == Kind::Source {
        if next.is_none() {
            recover_position(target, link);
            let sseq = link.state.lock().sseq;
            if sseq > 0 {
                *next = Some(sseq + 1);
            }
        }
        let mut st = link.state.lock();
        if !st.ident.is_empty() && st.ident != ident {
            tracing::warn!(
                "JetStream source stream {:?} for stream '{} > {}' was recreated, resetting source state",
                link.cfg.name,
                target.account.name,
                target.name
            );
            st.sseq = 0;
            *next = None;
        }
        st.ident = ident;
    } else {
        link.state.lock().ident = ident;
    }
    link.touch();
}

/// Where copying starts when nothing was copied before: a mirror continues
/// after its last sequence; otherwise the configured start, or the beginning.
fn start_seq(target: &Stream, origin: &Stream, link: &Link) -> u64 {
    if link.kind == Kind::Mirror {
        let last = target.store.state().last_seq;
        if last > 0 {
            return last + 1;
        }
    }
    if link.cfg.opt_start_seq > 0 {
        return link.cfg.opt_start_seq;
    }
    if let Some(t) = &link.cfg.opt_start_time {
        let want = t.timestamp_nanos_opt().unwrap_or(0);
        let mut seq = origin.store.state().first_seq.max(1);
        while let Ok(m) = origin.store.load_next(">", seq) {
            if m.ts >= want {
                return m.seq;
            }
            seq = m.seq + 1;
        }
        return origin.store.state().last_seq + 1;
    }
    1
}

/// A source's last copied origin sequence, read back from the newest stored
/// message carrying its `Nats-Stream-Source` header.
fn recover_position(target: &Stream, link: &Link) {
    let st = target.store.state();
    let mut seq = st.last_seq;
    while seq >= st.first_seq.max(1) {
        if let Ok(m) = target.store.load(seq) {
            if let Some((iname, sseq, ident)) =
                headers::get_str(&m.headers, headers::STREAM_SOURCE).and_then(parse_source_header)
            {
                let ours = match &iname {
                    Some(i) => *i == link.iname,
                    // A pre-2.10 header names only the stream.
                    None => link.iname.split(' ').next() == Some(link.cfg.name.as_str()),
                };
                if ours {
                    let mut s = link.state.lock();
                    s.sseq = sseq;
                    s.ident = ident;
                    return;
                }
            }
        }
        seq -= 1;
    }
}

/// `<stream> <seq> <filter> <dest> <subject> [<identity>]` (or the old
/// `<stream> <seq>`): (index name if present, sequence, identity).
fn parse_source_header(v: &str) -> Option<(Option<String>, u64, String)> {
    let f: Vec<&str> = v.split(' ').collect();
    let seq = f.get(1)?.parse().ok()?;
    match f.len() {
        2 => Some((None, seq, String::new())),
        n if n >= 4 => Some((
            Some(format!("{} {} {}", f[0], f[2], f[3])),
            seq,
            f.get(5).map(|s| s.to_string()).unwrap_or_default(),
        )),
        _ => None,
    }
}

/// The message's headers for the target: any previous source header and the
/// publish-time `Nats-Expected-*` / `Nats-Batch-*` ones removed, the new
/// source header appended (byte-for-byte otherwise).
fn source_headers(orig: &[u8], value: &str) -> Vec<u8> {
    let mut out = b"NATS/1.0\r\n".to_vec();
    for line in orig.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or(line);
        let name = String::from_utf8_lossy(name);
        let name = name.trim();
        if name == headers::STREAM_SOURCE
            || name.starts_with("Nats-Expected-")
            || name.starts_with("Nats-Batch-")
        {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(headers::STREAM_SOURCE.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// Copies up to `BATCH` messages from `next`; returns the next sequence to
/// look at and whether more may be waiting.
fn copy(target: &Arc<Stream>, origin: &Stream, link: &Link, mut next: u64) -> (u64, bool) {
    let filter = link.scan_filter().to_string();
    let mut copied = 0;
    let mut full = false;
    while let Ok(m) = origin.store.load_next(&filter, next) {
        if copied == BATCH {
            full = true;
            break;
        }
        let Some(subject) = link.map_subject(&m.subject) else {
            next = m.seq + 1;
            continue;
        };
        if link.kind == Kind::Mirror && m.seq <= target.store.state().last_seq {
            // Already here (the origin was re-created with lower sequences).
            next = m.seq + 1;
            continue;
        }
        let result = match link.kind {
            Kind::Mirror => target.apply_sourced(
                &subject,
                &m.headers,
                &m.payload,
                Origin::Mirror {
                    seq: m.seq,
                    ts: m.ts,
                },
            ),
            Kind::Source => {
                let (name, src, dest) = split_iname(&link.iname);
                let ident = link.state.lock().ident.clone();
                let mut value = format!("{name} {} {src} {dest} {}", m.seq, m.subject);
                if !ident.is_empty() {
                    value.push(' ');
                    value.push_str(&ident);
                }
                let hdrs = source_headers(&m.headers, &value);
                target.apply_sourced(&subject, &hdrs, &m.payload, Origin::Source)
            }
        };
        if let Err(e) = result {
            // nats-server retries the same message later (e.g. a full
            // discard-new target); say why unless it is just full.
            if !is_full(&e) {
                tracing::warn!(
                    "Error processing inbound {} message for '{}' > '{}': {}",
                    if link.kind == Kind::Mirror {
                        "mirror"
                    } else {
                        "source"
                    },
                    target.account.name,
                    target.name,
                    e.description
                );
            }
            break;
        }
        link.state.lock().sseq = m.seq;
        next = m.seq + 1;
        copied += 1;
    }
    let lag = link.pending(origin, next);
    {
        let mut st = link.state.lock();
        st.lag = lag;
        if link.kind == Kind::Mirror && st.sseq < next - 1 {
            st.sseq = next - 1;
        }
    }
    if copied > 0 {
        link.touch();
    }
    if link.kind == Kind::Mirror && lag < DIRECT_CAUGHT_UP {
        serve_direct(target, &link.cfg.name);
    }
    (next, full)
}

fn is_full(e: &JsError) -> bool {
    e.description.contains("maximum") || e.is(JsErrorKind::InsufficientResources)
}

fn split_iname(iname: &str) -> (&str, &str, &str) {
    let mut parts = iname.splitn(3, ' ');
    (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(">"),
        parts.next().unwrap_or(">"),
    )
}

/// `mirror_direct`: once caught up, the mirror answers the origin's direct
/// gets too, in the same queue group as the origin (one answer each).
fn serve_direct(target: &Arc<Stream>, origin: &str) {
    if !target.config().mirror_direct {
        return;
    }
    let Some(server) = target.server() else {
        return;
    };
    let mut inner = target.sourcing.inner.lock();
    if !inner.direct.is_empty() || inner.mirror.is_none() {
        return;
    }
    let handler: Arc<dyn InternalHandler> = Arc::new(MirrorDirect(Arc::downgrade(target)));
    let base = format!("{}{origin}", super::api::DIRECT_GET);
    for subject in [base.clone(), format!("{base}.>")] {
        let account = &target.account;
        match server.subscribe_internal_in(account, &subject, Some(DIRECT_GROUP), handler.clone()) {
            Ok(s) => inner.direct.push(s),
            Err(e) => tracing::warn!(
                "Mirror direct get for '{} > {}': {e}",
                account.name,
                target.name
            ),
        }
    }
}

/// Answers `$JS.API.DIRECT.GET.<origin>[.<subject>]` from the mirror's store.
struct MirrorDirect(Weak<Stream>);

impl InternalHandler for MirrorDirect {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(stream), Some(reply)) = (self.0.upgrade(), msg.reply) else {
            return;
        };
        let Some(server) = stream.server() else {
            return;
        };
        let Some(js) = stream.js() else {
            return;
        };
        js.count_api(false);
        let subject = String::from_utf8_lossy(msg.subject);
        let Some(rest) = subject.strip_prefix(super::api::DIRECT_GET) else {
            return;
        };
        let last_subject = rest.split_once('.').map(|(_, s)| s);
        super::api::direct_get_on(&server, &stream, last_subject, msg.payload, reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SubjectTransformConfig;

    #[test]
    fn hash_matches_nats_server() {
        // A stream created at this time had identity "civ7mw11" on nats-server 2.15.
        assert_eq!(short_hash("2026-11-26T15:48:33.201359672Z"), "civ7mw11");
    }

    #[test]
    fn index_names() {
        let mut s = StreamSource {
            name: "O".into(),
            filter_subject: "o.1".into(),
            ..Default::default()
        };
        assert_eq!(index_name(&s), "O o.1 >");
        s.filter_subject.clear();
        assert_eq!(index_name(&s), "O > >");
        s.subject_transforms = vec![SubjectTransformConfig {
            src: "p.*".into(),
            dest: "q.{{wildcard(1)}}".into(),
        }];
        assert_eq!(index_name(&s), "O p.* q.{{wildcard(1)}}");
    }

    #[test]
    fn source_header_round_trip() {
        let h = source_headers(
            b"NATS/1.0\r\nX-A: 3\r\nNats-Expected-Stream: O\r\nNats-Stream-Source: Z 1 > > a\r\n\r\n",
            "O 4 o.1 > o.1 civ7mw11",
        );
        assert_eq!(
            h,
            b"NATS/1.0\r\nX-A: 3\r\nNats-Stream-Source: O 4 o.1 > o.1 civ7mw11\r\n\r\n"
        );
        assert_eq!(
            parse_source_header("O 4 o.1 > o.1 civ7mw11"),
            Some((Some("O o.1 >".into()), 4, "civ7mw11".into()))
        );
        assert_eq!(parse_source_header("O 9"), Some((None, 9, String::new())));
        assert_eq!(parse_source_header("O x > > a"), None);
        assert_eq!(parse_source_header("garbage"), None);
    }
}
