//! One gateway connection, outbound (we dialled a remote cluster) or inbound
//! (a remote server dialled us): the handshake (INFO/CONNECT, gateway name
//! and credentials checks, duplicate names), then the remote's operations.
//! An outbound connection carries our messages and receives the remote
//! cluster's interest (`RS+`/`RS-`, `A+`/`A-`, `INFO` mode commands); an
//! inbound one receives messages (`RMSG`/`HMSG`) and carries our interest.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use rnats_core::account::Account;
use rnats_core::client::writer::{self, WriterConfig};
use rnats_core::client::{ClientShared, CloseReason, ConnKind};
use rnats_core::router::{self, Batch, Message};
use rnats_core::server::ServerState;
use rnats_core::subscription::{RemoteSink, SubRef, Subscription};
use rnats_proto::route::{self, RouteConnect, RouteOp, RouteParser, RoutedMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::optimistic::Modes;
use crate::proto::{GatewayInfo, CMD_ALL_SUBS_COMPLETE, CMD_ALL_SUBS_START, CMD_GOSSIP};
use crate::{dial, interest, reply, AccountCache, Gateway};

/// What the handshake learned about the remote server.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// The remote cluster's gateway name.
    pub gateway: String,
    pub id: String,
    pub name: String,
    pub info: GatewayInfo,
}

/// One gateway connection.
pub struct GwConn {
    pub client: Arc<ClientShared>,
    pub outbound: bool,
    /// The URL we dialled (outbound).
    pub url: Option<url::Url>,
    pub remote: Mutex<Remote>,
    pub registered: AtomicBool,
    /// Accounts in interest-only mode on this (inbound) connection.
    switched: Mutex<HashSet<String>>,
    pub sink: Arc<GatewaySink>,
    pub started: chrono::DateTime<chrono::Utc>,
}

impl GwConn {
    pub fn gid(&self) -> u64 {
        self.client.cid
    }

    pub fn remote_gateway(&self) -> String {
        self.remote.lock().gateway.clone()
    }

    pub(crate) fn is_switched(&self, account: &str) -> bool {
        self.switched.lock().contains(account)
    }

    /// Marks an account interest-only; false if it already was.
    pub(crate) fn mark_switched(&self, account: &str) -> bool {
        self.switched.lock().insert(account.to_string())
    }

    pub fn switched_accounts(&self) -> Vec<String> {
        let mut v: Vec<String> = self.switched.lock().iter().cloned().collect();
        v.sort();
        v
    }
}

/// Encodes our messages for one outbound connection.
pub struct GatewaySink {
    /// Per-account interest modes the remote set (optimistic or not).
    pub modes: Modes,
    headers: AtomicBool,
    reply_prefix: Vec<u8>,
    recent: Arc<reply::Recent>,
}

impl RemoteSink for GatewaySink {
    fn wants(&self, account: &Account, msg: &Message<'_>, queues: &[&[u8]]) -> bool {
        !queues.is_empty()
            || self
                .modes
                .wants(&account.name, msg.route.unwrap_or(msg.subject))
    }

    fn encode(&self, out: &mut BytesMut, account: &Account, msg: &Message<'_>, queues: &[&[u8]]) {
        let subject = msg.route.unwrap_or(msg.subject);
        let mut mapped = Vec::new();
        let reply = match msg.reply {
            Some(r) if !r.starts_with(b"_GR_.") && self.recent.matches(&account.name, r) => {
                mapped.extend_from_slice(&self.reply_prefix);
                mapped.extend_from_slice(r);
                Some(&mapped[..])
            }
            r => r,
        };
        let headers = msg.headers.filter(|_| self.headers.load(Ordering::Relaxed));
        route::msg(
            out,
            Some(account.name.as_bytes()),
            subject,
            reply,
            queues,
            headers,
            msg.payload,
        );
    }
}

/// Ends the connection; `Some(text)` is sent as `-ERR 'text'` first.
pub(crate) struct Close(pub CloseReason, pub Option<String>);

/// Runs one gateway connection (after TLS, if any) to its end.
pub async fn run<R, W>(
    gw: Arc<Gateway>,
    state: Arc<ServerState>,
    addr: SocketAddr,
    outbound: Option<(String, url::Url)>,
    rd: R,
    wr: W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let opts = state.opts();
    let client = Arc::new(
        ClientShared {
            out: rnats_core::client::Outbound::new_route(opts.max_pending),
            ..ClientShared::new(
                gw.next_gid(),
                addr,
                opts.max_pending,
                state.accounts.global().clone(),
            )
        }
        .with_kind(ConnKind::Gateway),
    );
    let (is_out, url, remote) = match outbound {
        Some((name, url)) => (
            true,
            Some(url),
            Remote {
                gateway: name,
                ..Default::default()
            },
        ),
        None => (false, None, Remote::default()),
    };
    let conn = Arc::new(GwConn {
        client: client.clone(),
        outbound: is_out,
        url,
        remote: Mutex::new(remote),
        registered: AtomicBool::new(false),
        switched: Mutex::new(HashSet::new()),
        sink: Arc::new(GatewaySink {
            modes: Modes::default(),
            headers: AtomicBool::new(true),
            reply_prefix: gw.reply_prefix.clone(),
            recent: gw.recent.clone(),
        }),
        started: chrono::Utc::now(),
    });
    // nats-server: gateways ping at most every 15 s.
    let ping_interval = opts.ping_interval.min(Duration::from_secs(15));
    let auth_required = !is_out && gw.opts.username.is_some();
    let cfg = WriterConfig {
        ping_interval,
        ping_max: opts.ping_max,
        write_deadline: gw.opts.write_deadline.unwrap_or(opts.write_deadline),
        auth_timeout: (!is_out)
            .then_some(gw.opts.auth_timeout)
            .filter(|_| auth_required),
    };
    let writer = tokio::spawn(writer::run(client.clone(), wr, cfg));
    if is_out {
        tracing::info!(
            "{} - Creating outbound gateway connection to {:?}",
            client.log_prefix(),
            conn.remote_gateway()
        );
    } else {
        tracing::info!(
            "{} - Processing inbound gateway connection",
            client.log_prefix()
        );
        let mut info = our_info(&gw, &state);
        info.nonce = nuid::next().to_string();
        client.out.send_now(&info.to_line());
    }
    let mut reader = Reader {
        gw: gw.clone(),
        state: state.clone(),
        conn: conn.clone(),
        parser: RouteParser {
            account_in_proto: true,
            max_control_line: 16 * opts.max_control_line,
            ..Default::default()
        },
        connected: false,
        info_received: false,
        caches: AccountCache::new(),
        batch: Batch::default(),
    };
    let reason = reader.read_loop(rd).await;
    client.close(reason);
    let reason = writer.await.unwrap_or(reason);
    reader.cleanup();
    let name = conn.remote_gateway();
    tracing::info!(
        "{} - Gateway connection closed: {} - Remote: {name}",
        client.log_prefix(),
        rnats_core::closed::reason_text(reason)
    );
    dial::after_close(&gw, &conn);
}

/// Our gateway INFO.
pub(crate) fn our_info(gw: &Gateway, state: &ServerState) -> GatewayInfo {
    let (host, port) = match gw.url.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(gw.listen.port()),
        ),
        None => (gw.url.clone(), gw.listen.port()),
    };
    GatewayInfo {
        id: state.server_id.clone(),
        name: state.server_name.clone(),
        version: rnats_core::NATS_COMPAT_VERSION.into(),
        proto: 1,
        go: format!("rnats {}", rnats_core::RNATS_VERSION),
        host,
        port,
        headers: true,
        auth_required: gw.opts.username.is_some(),
        tls_required: gw.tls.is_some(),
        tls_verify: gw.tls.is_some(),
        max_payload: state.opts().max_payload as i64,
        gateway: gw.name().to_string(),
        gateway_urls: gw.gateway_urls(),
        gateway_url: gw.url.clone(),
        gateway_nrp: true,
        gateway_iom: true,
        ..Default::default()
    }
}

struct Reader {
    gw: Arc<Gateway>,
    state: Arc<ServerState>,
    conn: Arc<GwConn>,
    parser: RouteParser,
    connected: bool,
    info_received: bool,
    caches: AccountCache,
    batch: Batch,
}

impl Reader {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, mut rd: R) -> CloseReason {
        let client = self.conn.client.clone();
        let mut buf = BytesMut::with_capacity(32 * 1024);
        loop {
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
            };
            client.last_in_ms.store(
                client.started.elapsed().as_millis() as u64,
                Ordering::Relaxed,
            );
            let mut used = 0;
            let result = loop {
                let rest = &buf[used..];
                // `A+`/`A-` (account interest) are gateway-only operations.
                if rest.len() >= 3 && rest[0] == b'A' && (rest[1] == b'+' || rest[1] == b'-') {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        break Ok(());
                    };
                    let account = String::from_utf8_lossy(&rest[2..nl]).trim().to_string();
                    used += nl + 1;
                    if self.conn.outbound && !account.is_empty() {
                        self.conn
                            .sink
                            .modes
                            .account_interest(&account, rest[1] == b'+');
                    }
                    continue;
                }
                match self.parser.parse(rest) {
                    Ok(Some((op, len))) => {
                        used += len;
                        if let Err(close) = self.handle(op) {
                            break Err(close);
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => {
                        tracing::error!("{} - Gateway Error {e}", client.log_prefix());
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

    fn handle(&mut self, op: RouteOp<'_>) -> Result<(), Close> {
        let client = &self.conn.client;
        match op {
            RouteOp::Ping => client.out.send_now(b"PONG\r\n"),
            RouteOp::Pong => client.pings_out.store(0, Ordering::Relaxed),
            RouteOp::Ok => {}
            RouteOp::Err(text) => tracing::error!(
                "{} - Gateway error from remote: {}",
                client.log_prefix(),
                String::from_utf8_lossy(text)
            ),
            RouteOp::Connect(json) => self.on_connect(json)?,
            RouteOp::Info(json) => self.on_info(json)?,
            _ if !self.connected => return Err(Close(CloseReason::ProtocolViolation, None)),
            RouteOp::Sub {
                account,
                subject,
                queue,
            } if self.conn.outbound => self.on_sub(account, subject, queue),
            RouteOp::Unsub {
                account,
                subject,
                queue,
            } if self.conn.outbound => self.on_unsub(account, subject, queue),
            RouteOp::Msg(m) if !self.conn.outbound => self.on_msg(m),
            _ => {
                tracing::error!(
                    "{} - Unexpected protocol on {} gateway connection",
                    client.log_prefix(),
                    if self.conn.outbound {
                        "outbound"
                    } else {
                        "inbound"
                    }
                );
                return Err(Close(CloseReason::ProtocolViolation, None));
            }
        }
        Ok(())
    }

    /// CONNECT from the server that dialled us.
    fn on_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        let prefix = self.conn.client.log_prefix();
        if self.conn.outbound {
            return Err(Close(CloseReason::ProtocolViolation, None));
        }
        let connect: RouteConnect = serde_json::from_slice(json).map_err(|e| {
            tracing::error!("{prefix} - Error parsing gateway CONNECT: {e}");
            Close(CloseReason::ProtocolViolation, None)
        })?;
        if connect.gateway.is_empty() {
            let text = "attempted to connect to gateway port";
            tracing::error!("{prefix} - {text}");
            return Err(Close(CloseReason::WrongPort, Some(text.into())));
        }
        let opts = &self.gw.opts;
        if let Some(user) = &opts.username {
            let pass = opts.password.as_deref().unwrap_or("");
            if connect.user != *user || connect.pass != pass {
                tracing::error!("{prefix} - authentication error");
                return Err(Close(
                    CloseReason::AuthenticationViolation,
                    Some("Authorization Violation".into()),
                ));
            }
        }
        if opts.reject_unknown && !self.gw.remotes.lock().contains_key(&connect.gateway) {
            tracing::error!(
                "{prefix} - Rejecting connection from gateway {:?}",
                connect.gateway
            );
            return Err(Close(
                CloseReason::WrongGateway,
                Some(format!(
                    "Connection to gateway {:?} rejected",
                    self.gw.name()
                )),
            ));
        }
        {
            let mut r = self.conn.remote.lock();
            r.gateway = connect.gateway.clone();
            r.id = connect.name.clone();
        }
        self.conn.client.connected.store(true, Ordering::Release);
        self.connected = true;
        Ok(())
    }

    fn on_info(&mut self, json: &[u8]) -> Result<(), Close> {
        let prefix = self.conn.client.log_prefix();
        let info: GatewayInfo = serde_json::from_slice(json).map_err(|e| {
            tracing::error!("{prefix} - Error parsing gateway INFO: {e}");
            Close(CloseReason::ProtocolViolation, None)
        })?;
        let first = !self.info_received;
        self.info_received = true;
        if self.conn.outbound {
            self.on_outbound_info(info, first)
        } else if first {
            self.on_inbound_first_info(info)
        } else {
            Ok(())
        }
    }

    fn on_outbound_info(&mut self, info: GatewayInfo, first: bool) -> Result<(), Close> {
        let prefix = self.conn.client.log_prefix();
        let expected = self.conn.remote_gateway();
        if info.gateway.is_empty() {
            let text = format!("Attempt to connect to gateway {expected:?} using wrong port");
            tracing::error!("{prefix} - {text}");
            return Err(Close(CloseReason::WrongPort, Some(text)));
        }
        if info.gateway != expected {
            if !first && info.gateway_cmd == CMD_GOSSIP {
                dial::implicit_gateway(&self.gw, &info.gateway, &info.gateway_urls);
                dial::forward_to_cluster(&self.state, &info);
                return Ok(());
            }
            tracing::error!(
                "{prefix} - Failing connection to gateway {expected:?}, remote gateway name is {:?}",
                info.gateway
            );
            self.conn.remote.lock().gateway = String::new();
            return Err(Close(
                CloseReason::WrongGateway,
                Some(format!(
                    "Connection from {:?} rejected, wanted to connect to {expected:?}, this is {:?}",
                    self.gw.name(),
                    info.gateway
                )),
            ));
        }
        if first && info.id == self.state.server_id {
            return Err(Close(CloseReason::DuplicateRoute, None));
        }
        if !info.gateway_urls.is_empty() {
            dial::add_remote_urls(&self.gw, &expected, &info.gateway_urls);
        }
        if first {
            if is_duplicate_name(&self.state, &info.name) {
                tracing::error!(
                    "{prefix} - Remote server has a duplicate name: {:?}",
                    info.name
                );
                return Err(Close(CloseReason::DuplicateServerName, None));
            }
            let opts = &self.gw.opts;
            let (user, pass) = match self.conn.url.as_ref().filter(|u| !u.username().is_empty()) {
                Some(u) => (
                    u.username().to_string(),
                    u.password().unwrap_or("").to_string(),
                ),
                None => (
                    opts.username.clone().unwrap_or_default(),
                    opts.password.clone().unwrap_or_default(),
                ),
            };
            let connect = RouteConnect {
                user,
                pass,
                tls: self.gw.tls.is_some(),
                name: self.state.server_id.clone(),
                gateway: self.gw.name().to_string(),
                headers: true,
                ..Default::default()
            };
            let mut out = connect.to_line();
            out.extend_from_slice(&our_info(&self.gw, &self.state).to_line());
            self.conn.client.out.send_now(&out);
            self.conn
                .sink
                .headers
                .store(info.headers, Ordering::Relaxed);
            // A remote that does not promise interest-only mode gets
            // everything of an account until it says otherwise.
            self.conn
                .sink
                .modes
                .enabled
                .store(!info.gateway_iom, Ordering::Relaxed);
            {
                let mut r = self.conn.remote.lock();
                r.id = info.id.clone();
                r.name = info.name.clone();
                r.info = info.clone();
            }
            self.connected = true;
            self.conn.client.connected.store(true, Ordering::Release);
            if !dial::register_outbound(&self.gw, &self.state, &self.conn) {
                return Err(Close(CloseReason::WrongGateway, None));
            }
            dial::forward_to_cluster(&self.state, &info);
            tracing::info!(
                "{prefix} - Outbound gateway connection to {expected:?} ({}) registered",
                info.id
            );
            return Ok(());
        }
        match info.gateway_cmd {
            CMD_ALL_SUBS_START | CMD_ALL_SUBS_COMPLETE => {
                let Some(acc) = info.cmd_account() else {
                    return Err(Close(
                        CloseReason::ProtocolViolation,
                        Some("Account absent from receive-all-subscriptions command".into()),
                    ));
                };
                if info.gateway_cmd == CMD_ALL_SUBS_START {
                    self.conn.sink.modes.start_switch(&acc);
                } else {
                    self.conn.sink.modes.complete_switch(&acc);
                    dial::remove_catch_all(&self.state, &self.conn, &acc);
                }
            }
            0 => {}
            n => tracing::warn!("Received unknown command {n} from gateway {expected:?}"),
        }
        Ok(())
    }

    fn on_inbound_first_info(&mut self, info: GatewayInfo) -> Result<(), Close> {
        let prefix = self.conn.client.log_prefix();
        if is_duplicate_name(&self.state, &info.name) {
            tracing::error!(
                "{prefix} - Remote server has a duplicate name: {:?}",
                info.name
            );
            return Err(Close(CloseReason::DuplicateServerName, None));
        }
        {
            let mut r = self.conn.remote.lock();
            if r.gateway.is_empty() {
                r.gateway = info.gateway.clone();
            }
            r.id = info.id.clone();
            r.name = info.name.clone();
            r.info = info.clone();
        }
        self.gw
            .inbound
            .lock()
            .insert(self.conn.gid(), self.conn.clone());
        self.conn.registered.store(true, Ordering::Release);
        tracing::info!(
            "{prefix} - Inbound gateway connection from {:?} ({}) registered",
            info.gateway,
            info.id
        );
        interest::inbound_registered(&self.gw, &self.state, &self.conn);
        dial::implicit_gateway(&self.gw, &info.gateway, &info.gateway_urls);
        dial::gossip_to_inbound(&self.gw, &self.conn, &info.gateway);
        Ok(())
    }

    fn account(&mut self, name: &[u8]) -> Option<Arc<Account>> {
        if let Some((acc, _)) = self.caches.get(name) {
            return Some(acc.clone());
        }
        let acc = self.state.accounts.get(std::str::from_utf8(name).ok()?)?;
        self.caches
            .insert(name.into(), (acc.clone(), Default::default()));
        Some(acc)
    }

    /// The remote cluster's interest: a subscription whose sink is us.
    fn on_sub(&mut self, account: Option<&[u8]>, subject: &[u8], queue: Option<(&[u8], u32)>) {
        let Some(acc) = account.and_then(|a| self.account(a)) else {
            return;
        };
        if queue.is_none() && self.conn.sink.modes.interest(&acc.name, subject) {
            return;
        }
        let key = sub_key(&acc.name, subject, queue.map(|q| q.0));
        let existing = self.conn.client.subs.lock().get(&key[..]).cloned();
        if let Some(sub) = existing {
            if let Some((_, w)) = queue {
                sub.weight.store(w, Ordering::Relaxed);
            }
            return;
        }
        let mut sub = Subscription::new(
            self.conn.client.clone(),
            acc.clone(),
            subject,
            queue.map(|q| q.0),
            &key,
        );
        sub.remote = Some(self.conn.sink.clone());
        let sub = SubRef(Arc::new(sub));
        if self.state.add_subscription(&sub).is_err() {
            tracing::error!(
                "{} - Could not insert gateway subscription: invalid subject {:?}",
                self.conn.client.log_prefix(),
                String::from_utf8_lossy(subject)
            );
            return;
        }
        self.conn
            .client
            .subs
            .lock()
            .insert(key.into(), sub.0.clone());
    }

    fn on_unsub(&mut self, account: Option<&[u8]>, subject: &[u8], queue: Option<&[u8]>) {
        let Some(acc) = account.and_then(|a| self.account(a)) else {
            return;
        };
        if queue.is_none() && self.conn.sink.modes.no_interest(&acc.name, subject) {
            return;
        }
        let key = sub_key(&acc.name, subject, queue);
        let sub = self.conn.client.subs.lock().remove(&key[..]);
        if let Some(sub) = sub {
            self.state.remove_subscription(&SubRef(sub));
        }
    }

    /// A message from the remote cluster: to our local subscribers and
    /// routes, never to another gateway.
    fn on_msg(&mut self, m: RoutedMsg<'_>) {
        let Some(name) = m.account else {
            return;
        };
        if self.account(name).is_none() {
            tracing::debug!(
                "{} - Unknown account {:?} for gateway message on subject: {:?}",
                self.conn.client.log_prefix(),
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(m.subject)
            );
            return;
        }
        self.batch.counts.in_msgs += 1;
        self.batch.counts.in_bytes += (m.payload.len() + m.headers.map_or(0, <[u8]>::len)) as u64;
        let mut subject = m.subject;
        if let Some((cluster, server, real)) = reply::split(m.subject) {
            // A reply routed to our cluster: for another server of it, it
            // goes on that server's route as it is (its requester's inbox
            // may be too new for us to know); for us, under its real subject.
            if cluster != self.gw.cluster_hash.as_bytes() {
                return;
            }
            if server != self.gw.server_hash.as_bytes()
                && self.send_to_origin_server(name, server, &m)
            {
                return;
            }
            subject = real;
        }
        let msg = Message {
            subject,
            route: None,
            reply: m.reply,
            headers: m.headers,
            payload: m.payload,
        };
        let Some((acc, cache)) = self.caches.get_mut(name) else {
            return;
        };
        router::route_from(
            &self.state,
            acc,
            cache,
            &self.conn.client,
            &msg,
            Some(&m.queues),
            &mut self.batch,
        );
    }

    /// Sends a routed reply to the server of our cluster whose id hashes
    /// to `server` (nats-server's `getRouteByHash`); false if none.
    fn send_to_origin_server(&mut self, account: &[u8], server: &[u8], m: &RoutedMsg<'_>) -> bool {
        let Some(acc) = self.account(account) else {
            return false;
        };
        let msg = Message {
            subject: m.subject,
            route: None,
            reply: m.reply,
            headers: m.headers,
            payload: m.payload,
        };
        let is_peer = |id: &str| crate::gw_hash(id).as_bytes() == server;
        let sent = std::cell::Cell::new(false);
        self.state.raise(|h| {
            if !sent.get() && h.send_to_peer(&self.state, &is_peer, &acc, &msg) {
                sent.set(true);
            }
        });
        sent.get()
    }

    /// The connection is gone: the remote cluster's interest goes with it.
    fn cleanup(&mut self) {
        let subs: Vec<SubRef> = self
            .conn
            .client
            .subs
            .lock()
            .drain()
            .map(|(_, s)| SubRef(s))
            .collect();
        for s in &subs {
            self.state.remove_subscription(s);
        }
    }
}

/// nats-server's `isDuplicateServerName`: ours or a route peer's.
fn is_duplicate_name(state: &ServerState, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    if name == state.server_name {
        return true;
    }
    let found = std::cell::Cell::new(false);
    state.raise(|h| {
        if !found.get() && h.has_peer_named(state, name) {
            found.set(true);
        }
    });
    found.get()
}

/// The key of a remote's subscription in its connection's map.
pub(crate) fn sub_key(account: &str, subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let mut k = Vec::with_capacity(account.len() + subject.len() + 2);
    k.extend_from_slice(account.as_bytes());
    k.push(b' ');
    k.extend_from_slice(subject);
    if let Some(q) = queue {
        k.push(b' ');
        k.extend_from_slice(q);
    }
    k
}
