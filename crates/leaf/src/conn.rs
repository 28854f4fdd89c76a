//! One leaf node connection, accepted (we are the hub) or dialled (we are
//! the spoke): the handshake (INFO, CONNECT with authentication, the hub's
//! confirming INFO), then the peer's interest (`LS+`/`LS-`) and messages
//! (`LMSG`/`HMSG`) until it closes.
//!
//! A leaf connection reuses the core's machinery: its outbound buffer and
//! writer task (PINGs, write deadline, authentication deadline) and the
//! router, which forwards across leaf connections by nats-server's rules.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use rnats_core::account::Account;
use rnats_core::client::writer::{self, WriterConfig};
use rnats_core::client::{ClientShared, CloseReason, ConnKind};
use rnats_core::router::{self, Batch, MatchCache, Message};
use rnats_core::server::ServerState;
use rnats_core::subscription::{RemoteSink, SubRef, Subscription};
use rnats_proto::leaf::{self as proto, LeafConnect, LeafInfo, LeafOp, LeafParser};
use rnats_proto::route::RoutedMsg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::interest::{self, Smap, LDS_PREFIX};
use crate::Leafs;

/// nats-server's `leafNodeReconnectDelayAfterLoopDetected`.
pub const LOOP_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// Where a connection came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Index of the `remotes` entry we dialled (`None`: accepted).
    pub remote: Option<usize>,
    /// The URL we dialled.
    pub url: Option<url::Url>,
}

/// What the handshake learned about the other side.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub id: String,
    pub name: String,
    pub cluster: String,
    pub domain: String,
    /// The account the other side bound this connection to.
    pub remote_account: String,
    /// `leafnode_urls` the hub told us.
    pub urls: Vec<String>,
}

/// One leaf connection.
pub struct LeafConn {
    pub client: Arc<ClientShared>,
    pub origin: Origin,
    pub sink: Arc<LeafSink>,
    pub peer: Mutex<Peer>,
    account: Mutex<Arc<Account>>,
    /// What we told the peer (`None` until the handshake is done).
    pub(crate) smap: Mutex<Option<Smap>>,
    /// `deny_imports` of the remote (spoke side): interest we do not ask
    /// for and messages we drop.
    deny_imports: Mutex<Vec<String>>,
    /// Set when a loop was detected: redial only after a long delay.
    pub loop_detected: AtomicBool,
    pub started: chrono::DateTime<chrono::Utc>,
    nonce: String,
}

impl LeafConn {
    pub fn account(&self) -> Arc<Account> {
        self.account.lock().clone()
    }

    /// We are the spoke of this connection.
    pub fn is_spoke(&self) -> bool {
        self.client.leaf_spoke.load(Ordering::Relaxed)
    }

    pub(crate) fn nonce(&self) -> &str {
        &self.nonce
    }

    pub fn solicited(&self) -> bool {
        self.origin.remote.is_some()
    }

    /// Whether the peer may be told about interest in `subject`
    /// (`deny_imports`: we do not ask for what we refuse to receive).
    pub(crate) fn may_import(&self, subject: &[u8]) -> bool {
        !denied(&self.deny_imports.lock(), subject)
    }

    /// Whether the peer may ask for `subject` (`deny_exports`).
    fn may_export(&self, subject: &[u8]) -> bool {
        !denied(&self.sink.deny_exports.lock(), subject)
    }
}

/// Whether `subject` (a subscription subject, maybe with wildcards) falls
/// under one of the `deny` patterns.
fn denied(deny: &[String], subject: &[u8]) -> bool {
    deny.iter()
        .any(|d| rnats_subject::is_subset(subject, d.as_bytes()))
}

/// Encodes messages for one leaf connection.
pub struct LeafSink {
    headers: AtomicBool,
    /// Subjects never sent to the peer: the remote's `deny_exports` (spoke)
    /// or the spoke's `deny_pub` (hub).
    deny_exports: Mutex<Vec<String>>,
}

impl RemoteSink for LeafSink {
    fn admits(&self, subject: &[u8]) -> bool {
        let deny = self.deny_exports.lock();
        deny.is_empty()
            || !deny
                .iter()
                .any(|d| rnats_subject::matches(d.as_bytes(), subject))
    }

    fn encode(&self, out: &mut BytesMut, _account: &Account, msg: &Message<'_>, queues: &[&[u8]]) {
        let headers = msg.headers.filter(|_| self.headers.load(Ordering::Relaxed));
        // A JetStream delivery goes to its inbox; the message's own subject
        // rides after an `@` in the ack reply, as nats-server sends it.
        let subject = msg.route.unwrap_or(msg.subject);
        let mut joined = Vec::new();
        let reply = match (msg.route, msg.reply) {
            (Some(r), Some(reply)) if r != msg.subject && reply.starts_with(b"$JS.ACK.") => {
                joined.extend_from_slice(reply);
                joined.push(b'@');
                joined.extend_from_slice(msg.subject);
                Some(&joined[..])
            }
            (_, reply) => reply,
        };
        proto::msg(out, subject, reply, queues, headers, msg.payload);
    }
}

/// What a connection starts from. `pre` holds bytes already read (a spoke
/// reads the hub's INFO before deciding on TLS); `connect` is the spoke's
/// CONNECT, sent first.
pub struct Start {
    pub leafs: Arc<Leafs>,
    pub state: Arc<ServerState>,
    pub addr: SocketAddr,
    pub origin: Origin,
    pub pre: BytesMut,
    pub connect: Option<Vec<u8>>,
    /// An accepted connection whose INFO (with this cid and nonce) was
    /// already sent, before the TLS handshake.
    pub info_sent: Option<(u64, String)>,
}

/// Runs one leaf connection to its end.
pub async fn run<R, W>(start: Start, rd: R, wr: W) -> Arc<LeafConn>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Start {
        leafs,
        state,
        addr,
        origin,
        pre,
        connect,
        info_sent,
    } = start;
    let opts = state.opts();
    let remote_opts = origin
        .remote
        .and_then(|i| leafs.opts.remotes.get(i).cloned());
    let account = match remote_opts.as_ref().and_then(|r| r.local_account.clone()) {
        Some(name) => state
            .accounts
            .get(&name)
            .unwrap_or_else(|| state.accounts.global().clone()),
        None => state.accounts.global().clone(),
    };
    let client = Arc::new(
        ClientShared {
            out: rnats_core::client::Outbound::new_route(opts.max_pending),
            ..ClientShared::new(
                info_sent
                    .as_ref()
                    .map_or_else(|| state.next_cid(), |(cid, _)| *cid),
                addr,
                opts.max_pending,
                account.clone(),
            )
        }
        .with_kind(ConnKind::Leaf),
    );
    client.echo.store(false, Ordering::Relaxed);
    let spoke = remote_opts.as_ref().is_some_and(|r| !r.hub);
    client.leaf_spoke.store(spoke, Ordering::Relaxed);
    let nonce = match &info_sent {
        Some((_, n)) => n.clone(),
        None => rnats_core::auth::nkey::new_nonce().unwrap_or_default(),
    };
    let conn = Arc::new(LeafConn {
        client: client.clone(),
        sink: Arc::new(LeafSink {
            headers: AtomicBool::new(true),
            deny_exports: Mutex::new(
                remote_opts
                    .as_ref()
                    .map(|r| r.deny_exports.clone())
                    .unwrap_or_default(),
            ),
        }),
        peer: Mutex::new(Peer::default()),
        account: Mutex::new(account),
        smap: Mutex::new(None),
        deny_imports: Mutex::new(
            remote_opts
                .as_ref()
                .map(|r| r.deny_imports.clone())
                .unwrap_or_default(),
        ),
        loop_detected: AtomicBool::new(false),
        started: chrono::Utc::now(),
        nonce,
        origin,
    });
    let accepted = !conn.solicited();
    let cfg = WriterConfig {
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        write_deadline: opts.write_deadline,
        auth_timeout: accepted.then(|| {
            leafs
                .opts
                .auth_timeout
                .unwrap_or(opts.auth_timeout)
                .max(Duration::from_millis(1))
        }),
    };
    let writer = tokio::spawn(writer::run(client.clone(), wr, cfg));
    tracing::info!("{} - Leafnode connection created", client.log_prefix());
    if accepted && info_sent.is_none() {
        client
            .out
            .send_now(&hub_info(&leafs, &state, client.cid, &conn.nonce, None).to_line());
    }
    if let Some(c) = connect {
        client.out.send_now(&c);
    }
    let mut reader = Reader {
        leafs: leafs.clone(),
        state: state.clone(),
        conn: conn.clone(),
        parser: LeafParser::new(16 * opts.max_control_line, opts.max_payload.max(1)),
        connected: false,
        cache: MatchCache::default(),
        batch: Batch::default(),
    };
    let reason = reader.read_loop(pre, rd).await;
    client.close(reason);
    let reason = writer.await.unwrap_or(reason);
    reader.cleanup();
    let name = conn.peer.lock().name.clone();
    tracing::info!(
        "{} - Leafnode connection closed: {} - Account: {}{}",
        client.log_prefix(),
        rnats_core::closed::reason_text(reason),
        conn.account().name,
        if name.is_empty() {
            String::new()
        } else {
            format!(" - Remote: {name}")
        }
    );
    conn
}

/// The hub's INFO: the first one (with the nonce) or, after CONNECT, the
/// one confirming the bound account.
pub(crate) fn hub_info(
    leafs: &Leafs,
    state: &ServerState,
    cid: u64,
    nonce: &str,
    bound: Option<&Arc<Account>>,
) -> LeafInfo {
    let opts = state.opts();
    LeafInfo {
        id: state.server_id.clone(),
        name: state.server_name.clone(),
        version: rnats_core::NATS_COMPAT_VERSION.to_string(),
        proto: 1,
        go_version: format!("rnats {}", rnats_core::RNATS_VERSION),
        host: leafs.opts.host.clone(),
        port: leafs.listen.map_or(0, |a| a.port()),
        headers: true,
        auth_required: true,
        tls_required: leafs.tls_server.is_some(),
        tls_verify: leafs.opts.tls.as_ref().is_some_and(|t| t.verify),
        max_payload: opts.max_payload as i64,
        jetstream: opts.jetstream,
        cid,
        nonce: if bound.is_some() {
            String::new()
        } else {
            nonce.to_string()
        },
        domain: opts.jetstream_domain.clone().unwrap_or_default(),
        connect_info: bound.is_some(),
        remote_account: bound.map(|a| a.name.clone()).unwrap_or_default(),
        is_system_account: bound.is_some_and(|a| Arc::ptr_eq(a, state.accounts.system())),
        info_on_connect: true,
        leafnode_urls: Some(leafs.own_url().into_iter().collect()),
        api_level: 1,
        ..Default::default()
    }
}

/// The read side of a leaf connection.
struct Reader {
    leafs: Arc<Leafs>,
    state: Arc<ServerState>,
    conn: Arc<LeafConn>,
    parser: LeafParser,
    /// The handshake is done: interest and messages are accepted.
    connected: bool,
    cache: MatchCache,
    batch: Batch,
}

/// Ends the connection; `Some(text)` is sent as `-ERR 'text'` first.
struct Close(CloseReason, Option<String>);

impl Reader {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, pre: BytesMut, mut rd: R) -> CloseReason {
        let client = self.conn.client.clone();
        let mut buf = pre;
        let mut first = !buf.is_empty();
        loop {
            if !first {
                buf.reserve(64 * 1024);
                tokio::select! {
                    r = rd.read_buf(&mut buf) => match r {
                        Ok(0) => return CloseReason::ClientClosed,
                        Ok(_) => {}
                        Err(_) => return CloseReason::ReadError,
                    },
                    _ = client.stop_reading.notified() => {
                        return client.out.close_reason().unwrap_or(CloseReason::ServerShutdown);
                    }
                }
            }
            first = false;
            client.last_in_ms.store(
                client.started.elapsed().as_millis() as u64,
                Ordering::Relaxed,
            );
            let mut used = 0;
            let result = loop {
                match self.parser.parse(&buf[used..]) {
                    Ok(Some((op, len))) => {
                        used += len;
                        if let Err(close) = self.handle(op) {
                            break Err(close);
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => {
                        tracing::error!("{} - Leafnode Error {e}", client.log_prefix());
                        break Err(Close(CloseReason::ParseError, None));
                    }
                }
            };
            buf.advance(used);
            client.add_in(&self.batch.counts);
            self.batch.finish(&self.state);
            if let Err(Close(reason, text)) = result {
                if let Some(t) = text {
                    client.out.send_now(format!("-ERR '{t}'\r\n").as_bytes());
                }
                return reason;
            }
        }
    }

    fn handle(&mut self, op: LeafOp<'_>) -> Result<(), Close> {
        let client = &self.conn.client;
        match op {
            LeafOp::Ping => client.out.send_now(b"PONG\r\n"),
            LeafOp::Pong => client.pings_out.store(0, Ordering::Relaxed),
            LeafOp::Ok => {}
            LeafOp::Err(text) => {
                let text = String::from_utf8_lossy(text);
                tracing::error!(
                    "{} - Leafnode Error {}",
                    client.log_prefix(),
                    text.trim_matches('\'')
                );
                if text.contains("Loop detected") {
                    self.conn.loop_detected.store(true, Ordering::Relaxed);
                }
            }
            LeafOp::Connect(json) => self.on_connect(json)?,
            LeafOp::Info(json) => self.on_info(json)?,
            _ if !self.connected => {
                return Err(Close(CloseReason::ProtocolViolation, None));
            }
            LeafOp::Sub { subject, queue } => self.on_sub(subject, queue)?,
            LeafOp::Unsub { subject, queue } => self.on_unsub(subject, queue),
            LeafOp::Msg(m) => self.on_msg(m),
        }
        Ok(())
    }

    /// The spoke's CONNECT (we are the hub).
    fn on_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        let prefix = self.conn.client.log_prefix();
        if self.conn.solicited() || self.connected {
            return Err(Close(CloseReason::ProtocolViolation, None));
        }
        let connect: LeafConnect = serde_json::from_slice(json).map_err(|e| {
            tracing::error!("{prefix} - Error parsing leafnode CONNECT: {e}");
            Close(CloseReason::ProtocolViolation, None)
        })?;
        if !connect.lang.is_empty() {
            let text = "Client connected to the leafnode port";
            tracing::error!("{prefix} - {text}");
            return Err(Close(CloseReason::WrongPort, Some(text.into())));
        }
        if connect.cluster.contains(' ') {
            let text = "cluster name cannot contain spaces";
            return Err(Close(CloseReason::ProtocolViolation, Some(text.into())));
        }
        if !connect.gateway.is_empty() {
            let text = format!(
                "Rejecting connection from gateway {:?} on the leafnode port",
                connect.gateway
            );
            tracing::error!("{prefix} - {text}");
            return Err(Close(CloseReason::WrongGateway, Some(text)));
        }
        let account = crate::dial::authenticate(&self.leafs, &self.state, &self.conn, json)
            .ok_or_else(|| {
                tracing::error!("{prefix} - authentication error");
                Close(
                    CloseReason::AuthenticationViolation,
                    Some("Authorization Violation".into()),
                )
            })?;
        *self.conn.account.lock() = account;
        self.cache = MatchCache::default();
        if connect.hub {
            self.conn.client.leaf_spoke.store(true, Ordering::Relaxed);
        }
        // The spoke's `deny_imports`: we do not send it those subjects.
        self.conn
            .sink
            .deny_exports
            .lock()
            .extend(connect.deny_pub.iter().cloned());
        self.conn
            .sink
            .headers
            .store(connect.headers, Ordering::Relaxed);
        {
            let mut p = self.conn.peer.lock();
            p.id = connect.id.clone();
            p.name = connect.name.clone();
            p.cluster = connect.cluster.clone();
            p.domain = connect.domain.clone();
            p.remote_account = connect.remote_account.clone();
        }
        self.conn.client.connected.store(true, Ordering::Release);
        self.conn.client.out.send_now(
            &hub_info(
                &self.leafs,
                &self.state,
                self.conn.client.cid,
                "",
                Some(&self.conn.account()),
            )
            .to_line(),
        );
        self.finish();
        Ok(())
    }

    /// The hub's INFO (we are the spoke): the first one asks for our
    /// CONNECT (sent by the dialler before the reader starts); the one with
    /// `connect_info` completes the handshake; later ones update URLs.
    fn on_info(&mut self, json: &[u8]) -> Result<(), Close> {
        if !self.conn.solicited() {
            // A hub ignores its leaf's INFO (compression negotiation).
            return Ok(());
        }
        let prefix = self.conn.client.log_prefix();
        let info: LeafInfo = serde_json::from_slice(json).map_err(|e| {
            tracing::error!("{prefix} - Error parsing leafnode INFO: {e}");
            Close(CloseReason::ProtocolViolation, None)
        })?;
        {
            let mut p = self.conn.peer.lock();
            if p.id.is_empty() {
                p.id = info.id.clone();
                p.name = info.name.clone();
                p.cluster = info.cluster.clone();
                p.domain = info.domain.clone();
            }
            if let Some(urls) = &info.leafnode_urls {
                p.urls = urls.clone();
            }
            if !info.remote_account.is_empty() {
                p.remote_account = info.remote_account.clone();
            }
        }
        if !self.connected && (info.connect_info || !info.info_on_connect) {
            self.conn.client.connected.store(true, Ordering::Release);
            self.finish();
        }
        Ok(())
    }

    /// The handshake is done: register and tell the peer our interest.
    fn finish(&mut self) {
        self.jetstream_denies();
        self.connected = true;
        self.leafs.conns.lock().push(self.conn.clone());
        interest::send_all(&self.leafs, &self.conn);
        let p = self.conn.peer.lock().clone();
        tracing::info!(
            "{} - Leafnode connection established to {:?} (account {:?})",
            self.conn.client.log_prefix(),
            if p.name.is_empty() { &p.id } else { &p.name },
            self.conn.account().name
        );
    }

    /// nats-server's JetStream rules for a leaf connection: the API of a
    /// non-system account never crosses (`$JS.API.>`, `$KV.>`, `$OBJ.>` in
    /// both directions), so clients reach the other side's JetStream only
    /// through its domain prefix `$JS.<domain>.API`; the system account's
    /// JetStream internals cross only when both sides share the domain; and
    /// with different domains, requests for our own domain stay here.
    fn jetstream_denies(&self) {
        let opts = self.state.opts();
        let local = opts.jetstream_domain.clone().unwrap_or_default();
        let remote = self.conn.peer.lock().domain.clone();
        let account = self.conn.account();
        let is_sys = Arc::ptr_eq(&account, self.state.accounts.system());
        let differ = local != remote || !opts.jetstream;
        let deny: &[&str] = if !is_sys {
            &["$JS.API.>", "$KV.>", "$OBJ.>"]
        } else if differ {
            &["$JSC.>", "$NRG.>", "$JS.API.>", "$KV.>", "$OBJ.>"]
        } else {
            &[]
        };
        if !is_sys || differ {
            tracing::info!(
                "{} - JetStream using domains: local {local:?}, remote {remote:?}",
                self.conn.client.log_prefix()
            );
        }
        let deny: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
        self.conn.deny_imports.lock().extend(deny.iter().cloned());
        let mut exports = self.conn.sink.deny_exports.lock();
        exports.extend(deny);
        if differ && !local.is_empty() && opts.jetstream {
            exports.push(format!("$JS.{local}.API.>"));
        }
    }

    fn on_sub(&mut self, subject: &[u8], queue: Option<(&[u8], u32)>) -> Result<(), Close> {
        let account = self.conn.account();
        if subject.starts_with(LDS_PREFIX.as_bytes())
            && subject == self.leafs.interest.get(&account.name).as_bytes()
        {
            let text = format!(
                "Loop detected for leafnode account={:?}. Delaying attempt to reconnect for {}s",
                account.name,
                LOOP_RECONNECT_DELAY.as_secs()
            );
            tracing::error!("{} - {text}", self.conn.client.log_prefix());
            self.conn.loop_detected.store(true, Ordering::Relaxed);
            return Err(Close(CloseReason::ProtocolViolation, Some(text)));
        }
        if !subject.starts_with(LDS_PREFIX.as_bytes()) && !self.conn.may_export(subject) {
            tracing::debug!(
                "{} - Not permitted to subscribe to {:?} on behalf of the hub",
                self.conn.client.log_prefix(),
                String::from_utf8_lossy(subject)
            );
            return Ok(());
        }
        let key = sub_key(subject, queue.map(|q| q.0));
        let existing = self.conn.client.subs.lock().get(&key[..]).cloned();
        if let Some(sub) = existing {
            if let Some((_, w)) = queue {
                let old = sub.weight.swap(w, Ordering::Relaxed);
                if old != w {
                    interest::reweighed(&self.leafs, &SubRef(sub), old);
                }
            }
            return Ok(());
        }
        let mut sub = Subscription::new(
            self.conn.client.clone(),
            account,
            subject,
            queue.map(|q| q.0),
            &key,
        );
        sub.remote = Some(self.conn.sink.clone());
        if let Some((_, w)) = queue {
            sub.weight.store(w, Ordering::Relaxed);
        }
        let sub = SubRef(Arc::new(sub));
        if self.state.add_subscription(&sub).is_err() {
            tracing::error!(
                "{} - Could not insert subscription: invalid subject {:?}",
                self.conn.client.log_prefix(),
                String::from_utf8_lossy(subject)
            );
            return Ok(());
        }
        self.conn
            .client
            .subs
            .lock()
            .insert(key.into(), sub.0.clone());
        Ok(())
    }

    fn on_unsub(&mut self, subject: &[u8], queue: Option<&[u8]>) {
        let key = sub_key(subject, queue);
        let sub = self.conn.client.subs.lock().remove(&key[..]);
        if let Some(sub) = sub {
            self.state.remove_subscription(&SubRef(sub));
        }
    }

    fn on_msg(&mut self, m: RoutedMsg<'_>) {
        self.batch.counts.in_msgs += 1;
        self.batch.counts.in_bytes += (m.payload.len() + m.headers.map_or(0, <[u8]>::len)) as u64;
        {
            let deny = self.conn.deny_imports.lock();
            if !deny.is_empty()
                && deny
                    .iter()
                    .any(|d| rnats_subject::matches(d.as_bytes(), m.subject))
            {
                return;
            }
        }
        let (subject, route, reply) = match m
            .reply
            .and_then(|r| proto::js_ack_deliver_idx(r).map(|i| (r, i)))
        {
            Some((r, i)) => (&r[i + 1..], Some(m.subject), Some(&r[..i])),
            None => (m.subject, None, m.reply),
        };
        let msg = Message {
            subject,
            route,
            reply,
            headers: m.headers,
            payload: m.payload,
        };
        let account = self.conn.account();
        router::route_from(
            &self.state,
            &account,
            &mut self.cache,
            &self.conn.client,
            &msg,
            Some(&m.queues),
            &mut self.batch,
        );
    }

    /// The connection is gone: its peer's interest goes with it.
    fn cleanup(&mut self) {
        self.leafs
            .conns
            .lock()
            .retain(|c| !Arc::ptr_eq(c, &self.conn));
        let subs: Vec<SubRef> = self
            .conn
            .client
            .subs
            .lock()
            .drain()
            .map(|(_, s)| SubRef(s))
            .collect();
        self.state.remove_subscriptions(&subs);
    }
}

/// The key of a peer's subscription in its connection's map.
fn sub_key(subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let mut k = subject.to_vec();
    if let Some(q) = queue {
        k.push(b' ');
        k.extend_from_slice(q);
    }
    k
}

/// Our CONNECT as a spoke, signed for `nonce` with the remote's credentials.
pub(crate) fn spoke_connect(
    leafs: &Leafs,
    state: &ServerState,
    remote: usize,
    url: &url::Url,
    info: &LeafInfo,
) -> Result<LeafConnect, String> {
    let r = leafs
        .opts
        .remotes
        .get(remote)
        .ok_or_else(|| "unknown remote".to_string())?;
    let opts = state.opts();
    let mut c = LeafConnect {
        version: rnats_core::NATS_COMPAT_VERSION.to_string(),
        id: state.server_id.clone(),
        name: state.server_name.clone(),
        domain: opts.jetstream_domain.clone().unwrap_or_default(),
        hub: r.hub,
        cluster: opts
            .cluster
            .as_ref()
            .and_then(|c| c.name.clone())
            .unwrap_or_default(),
        headers: true,
        jetstream: opts.jetstream,
        deny_pub: r.deny_imports.clone(),
        remote_account: r
            .local_account
            .clone()
            .unwrap_or_else(|| state.accounts.global().name.clone()),
        proto: 1,
        ..Default::default()
    };
    let sign = |seed: &str| -> Result<(String, String), String> {
        let kp = nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| format!("{e}"))?;
        let sig = kp.sign(info.nonce.as_bytes()).map_err(|e| format!("{e}"))?;
        use base64::Engine;
        Ok((
            kp.public_key(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig),
        ))
    };
    if let Some(path) = &r.credentials {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{e}"))?;
        let (jwt, seed) = parse_creds(&text).ok_or("Credentials file malformed")?;
        let (_, sig) = sign(&seed)?;
        c.jwt = jwt;
        c.sig = sig;
    } else if let Some(seed) = &r.nkey {
        let (nkey, sig) = sign(seed)?;
        c.nkey = nkey;
        c.sig = sig;
    }
    if !url.username().is_empty() {
        c.user = percent_decode(url.username());
        match url.password() {
            Some(p) => c.pass = percent_decode(p),
            None => c.auth_token = c.user.clone(),
        }
    }
    Ok(c)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user JWT and the nkey seed of a `.creds` file (the two blocks
/// between `-----BEGIN ...-----` and `------END ...------` lines).
pub fn parse_creds(text: &str) -> Option<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with("-----BEGIN") || l.trim_start().starts_with("---BEGIN") {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.contains("END") && l.trim_start().starts_with("--") {
                    break;
                }
                body.push_str(l.trim());
            }
            blocks.push(body);
        }
    }
    let mut it = blocks.into_iter();
    Some((it.next()?, it.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_blocks() {
        let text = "-----BEGIN NATS USER JWT-----\neyJ0.abc.def\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\n\n-----BEGIN USER NKEY SEED-----\nSUAXYZ\n------END USER NKEY SEED------\n";
        assert_eq!(
            parse_creds(text),
            Some(("eyJ0.abc.def".into(), "SUAXYZ".into()))
        );
        assert_eq!(parse_creds("nothing"), None);
    }

    #[test]
    fn deny_patterns_cover_subjects_and_wildcards() {
        let deny = vec!["secret.>".to_string()];
        assert!(denied(&deny, b"secret.x"));
        assert!(denied(&deny, b"secret.>"));
        assert!(!denied(&deny, b"public.x"));
        assert_eq!(percent_decode("a%40b"), "a@b");
    }
}
