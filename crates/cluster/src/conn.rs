//! One route connection, accepted or dialled: the handshake (INFO and
//! CONNECT, cluster-name rules, authorization), then the peer's operations —
//! interest (`RS+`/`RS-`), messages (`RMSG`/`HMSG`), keep-alive and
//! gossip — until it closes.
//!
//! A route reuses the core's connection machinery: its outbound buffer and
//! writer task (one write per batch, PINGs, write deadline) and the router.

use std::collections::HashMap;
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
use rnats_proto::route::{self, RouteConnect, RouteInfo, RouteOp, RouteParser, RoutedMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::{gossip, peers, Cluster};

/// How a route came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// We dialled it (and may redial it).
    pub solicited: bool,
    /// It was configured (`routes`), not learned from a peer.
    pub explicit: bool,
    /// The URL we dialled (credentials included).
    pub url: Option<url::Url>,
    /// Dedicated to this account (pinned accounts), if any.
    pub account: Option<String>,
    /// The gossip mode the INFO that made us dial it asked for.
    pub gossip_mode: u8,
}

/// What the handshake learned about the peer.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    pub id: String,
    pub name: String,
    pub info: RouteInfo,
    /// Slot in the peer's pool; `None` until registered.
    pub pool_idx: Option<usize>,
    /// A peer without pooling: this one connection carries every account.
    pub no_pool: bool,
    pub headers: bool,
}

/// One route connection.
pub struct Route {
    pub client: Arc<ClientShared>,
    pub origin: Origin,
    pub remote: Mutex<Remote>,
    /// Registered in the peer registry (counted in `/routez`).
    pub registered: AtomicBool,
    /// Set when the connection must not be redialled once closed.
    pub no_reconnect: AtomicBool,
    /// Dial the next pool connection after the first PONG (pool growth).
    pub grow_pool_on_pong: AtomicBool,
    /// The sink the peer's subscriptions deliver through.
    pub sink: Arc<RouteSink>,
    pub started: chrono::DateTime<chrono::Utc>,
}

impl Route {
    pub fn rid(&self) -> u64 {
        self.client.cid
    }

    pub fn remote_id(&self) -> String {
        self.remote.lock().id.clone()
    }
}

/// Encodes messages for one route connection.
pub struct RouteSink {
    /// A route dedicated to one account: protocols leave the account out.
    pinned: AtomicBool,
    /// The peer understands headers (else they are dropped, as nats-server does).
    headers: AtomicBool,
}

impl RemoteSink for RouteSink {
    fn encode(&self, out: &mut BytesMut, account: &Account, msg: &Message<'_>, queues: &[&[u8]]) {
        let acc = (!self.pinned.load(Ordering::Relaxed)).then_some(account.name.as_bytes());
        // JetStream delivers to an inbox but shows the message's own subject:
        // across a route that subject rides after an `@` in the ack reply.
        let subject = msg.route.unwrap_or(msg.subject);
        let mut joined = Vec::new();
        let reply = match (msg.route, msg.reply) {
            (Some(r), Some(reply)) if r != msg.subject && is_js_ack(reply) => {
                joined.extend_from_slice(reply);
                joined.push(b'@');
                joined.extend_from_slice(msg.subject);
                Some(&joined[..])
            }
            (_, reply) => reply,
        };
        let headers = msg.headers.filter(|_| self.headers.load(Ordering::Relaxed));
        route::msg(out, acc, subject, reply, queues, headers, msg.payload);
    }
}

fn is_js_ack(reply: &[u8]) -> bool {
    reply.starts_with(b"$JS.ACK.")
}

/// `$JS.ACK....@<subject>`: where the `@` is (after at least 8 dots), as
/// nats-server finds it.
fn js_ack_deliver_idx(reply: &[u8]) -> Option<usize> {
    if !is_js_ack(reply) {
        return None;
    }
    let mut dots = 0;
    for (i, &b) in reply.iter().enumerate() {
        match b {
            b'.' => dots += 1,
            b'@' if dots >= 8 => return Some(i),
            _ => {}
        }
    }
    None
}

/// Runs one route connection (after TLS, if any) to its end.
pub async fn run<R, W>(
    cluster: Arc<Cluster>,
    state: Arc<ServerState>,
    addr: SocketAddr,
    origin: Origin,
    rd: R,
    wr: W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let opts = state.opts();
    // Never cut for pending bytes (the write deadline cuts a stuck route);
    // client publishers are held back past the stall gate instead.
    let client = Arc::new(
        ClientShared {
            out: rnats_core::client::Outbound::new_route(opts.max_pending),
            ..ClientShared::new(
                cluster.next_rid(),
                addr,
                opts.max_pending,
                state.accounts.global().clone(),
            )
        }
        .with_kind(ConnKind::Route),
    );
    let pinned = origin.account.is_some();
    let route = Arc::new(Route {
        client: client.clone(),
        sink: Arc::new(RouteSink {
            pinned: AtomicBool::new(pinned),
            headers: AtomicBool::new(true),
        }),
        origin,
        remote: Mutex::new(Remote::default()),
        registered: AtomicBool::new(false),
        no_reconnect: AtomicBool::new(false),
        grow_pool_on_pong: AtomicBool::new(false),
        started: chrono::Utc::now(),
    });
    cluster
        .peers
        .lock()
        .pending
        .insert(route.rid(), route.clone());
    let ping_interval = cluster
        .opts
        .ping_interval
        .unwrap_or(opts.ping_interval)
        .min(Duration::from_secs(30));
    let auth_required = !route.origin.solicited && gossip::auth_required(&cluster.opts);
    let cfg = WriterConfig {
        ping_interval,
        ping_max: cluster.opts.ping_max.unwrap_or(opts.ping_max),
        write_deadline: opts.write_deadline,
        auth_timeout: auth_required.then_some(cluster.opts.auth_timeout),
    };
    let writer = tokio::spawn(writer::run(client.clone(), wr, cfg));
    tracing::info!("{} - Route connection created", client.log_prefix());
    if route.origin.solicited {
        client.out.send_now(&gossip::connect_line(&cluster, &route));
        // Without pooling our INFO goes at once; with it, it waits for the
        // peer's (it names the pool slot we take).
        if cluster.pool_size == 0 {
            client.out.send_now(&cluster.route_info().to_line());
        }
    } else {
        let mut info = cluster.route_info();
        info.nonce = nuid::next().to_string();
        client.out.send_now(&info.to_line());
    }
    let mut reader = Reader {
        cluster: cluster.clone(),
        state: state.clone(),
        route: route.clone(),
        parser: RouteParser {
            account_in_proto: !pinned,
            max_control_line: 16 * opts.max_control_line,
            ..Default::default()
        },
        connected: route.origin.solicited,
        info_received: false,
        caches: HashMap::new(),
        batch: Batch::default(),
    };
    let reason = reader.read_loop(rd).await;
    client.close(reason);
    let reason = writer.await.unwrap_or(reason);
    reader.cleanup();
    let name = route.remote.lock().name.clone();
    if name.is_empty() {
        tracing::info!(
            "{} - Router connection closed: {}",
            client.log_prefix(),
            close_text(reason)
        );
    } else {
        tracing::info!(
            "{} - Router connection closed: {} - Remote: {name}",
            client.log_prefix(),
            close_text(reason)
        );
    }
    crate::dial::after_close(&cluster, &route);
}

/// nats-server's names for why a route closed.
pub fn close_text(reason: CloseReason) -> &'static str {
    rnats_core::closed::reason_text(reason)
}

/// The read side of a route.
struct Reader {
    cluster: Arc<Cluster>,
    state: Arc<ServerState>,
    route: Arc<Route>,
    parser: RouteParser,
    /// CONNECT received (accepted routes) or sent (ours).
    connected: bool,
    info_received: bool,
    /// Match caches per account (a route carries many accounts).
    caches: HashMap<Box<[u8]>, (Arc<Account>, MatchCache)>,
    batch: Batch,
}

/// Ends the route; `Some(text)` is sent as `-ERR 'text'` first.
pub(crate) struct Close(pub CloseReason, pub Option<String>);

impl Reader {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, mut rd: R) -> CloseReason {
        let client = self.route.client.clone();
        let mut buf = BytesMut::with_capacity(32 * 1024);
        loop {
            buf.reserve(64 * 1024);
            let n = tokio::select! {
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(n) => n,
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
            let _ = n;
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
                        tracing::error!("{} - Route Error {e}", client.log_prefix());
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
        let client = &self.route.client;
        match op {
            RouteOp::Ping => client.out.send_now(b"PONG\r\n"),
            RouteOp::Pong => {
                client.pings_out.store(0, Ordering::Relaxed);
                if self.route.grow_pool_on_pong.swap(false, Ordering::AcqRel) {
                    crate::dial::grow_pool(&self.cluster, &self.route);
                }
            }
            RouteOp::Ok => {}
            RouteOp::Err(text) => {
                tracing::error!(
                    "{} - Received error from remote route: {}",
                    client.log_prefix(),
                    String::from_utf8_lossy(text)
                );
            }
            RouteOp::Connect(json) => self.on_connect(json)?,
            RouteOp::Info(json) => self.on_info(json)?,
            _ if !self.connected => {
                return Err(Close(CloseReason::ProtocolViolation, None));
            }
            RouteOp::Sub {
                account,
                subject,
                queue,
            }
            | RouteOp::LeafSub {
                account,
                subject,
                queue,
                ..
            } => self.on_sub(account, subject, queue),
            RouteOp::Unsub {
                account,
                subject,
                queue,
            }
            | RouteOp::LeafUnsub {
                account,
                subject,
                queue,
            } => self.on_unsub(account, subject, queue),
            RouteOp::Msg(m) => self.on_msg(m),
        }
        Ok(())
    }

    /// The peer's CONNECT (accepted routes only).
    fn on_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        let prefix = self.route.client.log_prefix();
        let connect: RouteConnect = serde_json::from_slice(json).map_err(|e| {
            tracing::error!("{prefix} - Error parsing route CONNECT: {e}");
            Close(CloseReason::ProtocolViolation, None)
        })?;
        if !connect.lang.is_empty() {
            let text = "attempted to connect to route port";
            tracing::error!("{prefix} - {text}");
            return Err(Close(CloseReason::WrongPort, Some(text.into())));
        }
        if !connect.gateway.is_empty() {
            let text = format!(
                "Rejecting connection from gateway {:?} on the Route port",
                connect.gateway
            );
            tracing::error!("{prefix} - {text}");
            return Err(Close(CloseReason::WrongGateway, Some(text)));
        }
        if !gossip::authorized(&self.cluster.opts, &connect) {
            tracing::error!("{prefix} - authentication error");
            return Err(Close(
                CloseReason::AuthenticationViolation,
                Some("Authorization Violation".into()),
            ));
        }
        let ours = self.cluster.name();
        if connect.cluster != ours {
            let adopt = self.cluster.is_dynamic()
                && (!connect.dynamic || ours.as_str() < connect.cluster.as_str());
            if adopt {
                self.cluster.adopt_name(&connect.cluster, connect.dynamic);
                peers::remove_all_except(&self.cluster, &connect.name);
            } else {
                let text = format!(
                    "Rejecting connection, cluster name {:?} does not match {:?}",
                    connect.cluster, ours
                );
                tracing::error!("{prefix} - {text}");
                return Err(Close(CloseReason::ClusterNameConflict, Some(text)));
            }
        }
        self.route.remote.lock().id = connect.name.clone();
        self.route
            .sink
            .headers
            .store(connect.headers, Ordering::Relaxed);
        self.route.client.connected.store(true, Ordering::Release);
        self.connected = true;
        Ok(())
    }

    /// The peer's INFO: the first one registers the route; later ones are
    /// gossip (another server to dial) or updates (lame duck).
    fn on_info(&mut self, json: &[u8]) -> Result<(), Close> {
        let prefix = self.route.client.log_prefix();
        // Gateway news travels in route INFOs (a peer's `gateway_url`, a
        // remote gateway to connect to): the gateway feature handles them.
        if let Ok(probe) = serde_json::from_slice::<GatewayProbe>(json) {
            if probe.gateway_cmd != 0 || !probe.gateway_url.is_empty() {
                self.state
                    .raise(|h| h.route_gateway_info(&self.state, json));
            }
            if probe.gateway_cmd != 0 {
                return Ok(());
            }
        }
        let mut info: RouteInfo = serde_json::from_slice(json).map_err(|e| {
            tracing::error!("{prefix} - Error parsing route INFO: {e}");
            Close(CloseReason::ProtocolViolation, None)
        })?;
        let state = &self.state;
        if info.id == state.server_id {
            // A route to ourselves (e.g. our own address in `routes`).
            self.route.no_reconnect.store(true, Ordering::Relaxed);
            self.route.remote.lock().id = info.id;
            return Err(Close(CloseReason::DuplicateRoute, None));
        }
        let ours = self.cluster.name();
        if !info.cluster.is_empty() && info.cluster != ours {
            if self.cluster.is_dynamic() && (!info.dynamic || ours.as_str() < info.cluster.as_str())
            {
                self.cluster.adopt_name(&info.cluster, info.dynamic);
                peers::remove_all_except(&self.cluster, &info.id);
            } else {
                return Err(Close(CloseReason::ClusterNameConflict, None));
            }
        }
        if self.info_received {
            let remote_id = self.route.remote_id();
            if !info.id.is_empty() && info.id != remote_id {
                gossip::implicit_route(&self.cluster, &info, self.route.remote.lock().no_pool);
            } else if info.lame_duck_mode {
                gossip::peer_lame_duck(&self.cluster, &self.route);
            }
            return Ok(());
        }
        self.info_received = true;
        if !self.route.origin.solicited && info.name == self.state.server_name {
            tracing::error!(
                "{prefix} - Remote server has a duplicate name: {:?}",
                info.name
            );
            return Err(Close(CloseReason::DuplicateServerName, None));
        }
        if info.ip.is_empty() {
            let host = self.route.client.addr.ip();
            info.ip = format!(
                "nats-route://{}/",
                gossip::join_host_port(&host.to_string(), info.port)
            );
        }
        // A pinned route's account comes from the peer on accepted routes.
        let account = match &self.route.origin.account {
            Some(a) => Some(a.clone()),
            None if !self.route.origin.solicited && !info.route_account.is_empty() => {
                Some(info.route_account.clone())
            }
            None => None,
        };
        if account.is_some() {
            self.parser.account_in_proto = false;
            self.route.sink.pinned.store(true, Ordering::Relaxed);
        }
        {
            let mut r = self.route.remote.lock();
            r.id = info.id.clone();
            r.name = info.name.clone();
            r.headers = info.headers;
            r.info = info.clone();
        }
        self.route
            .sink
            .headers
            .store(info.headers, Ordering::Relaxed);
        self.connected = true;
        peers::register(&self.cluster, &self.route, info, account).inspect_err(|_| {
            tracing::debug!(
                "{prefix} - Detected duplicate remote route {:?}",
                self.route.remote_id()
            );
        })
    }

    /// The account a routed operation is for.
    fn account(&mut self, name: Option<&[u8]>) -> Option<Arc<Account>> {
        let name: &[u8] = match name {
            Some(n) => n,
            None => self.route.origin.account.as_deref().map(str::as_bytes)?,
        };
        if let Some((acc, _)) = self.caches.get(name) {
            return Some(acc.clone());
        }
        let acc = gossip::lookup_account(&self.state, std::str::from_utf8(name).ok()?)?;
        self.caches
            .insert(name.into(), (acc.clone(), MatchCache::default()));
        Some(acc)
    }

    fn pinned_name(&self) -> Option<Vec<u8>> {
        if self.parser.account_in_proto {
            return None;
        }
        let r = self.route.remote.lock();
        self.route
            .origin
            .account
            .clone()
            .or_else(|| {
                let info = &r.info;
                (!info.route_account.is_empty()).then(|| info.route_account.clone())
            })
            .map(String::into_bytes)
    }

    fn on_sub(&mut self, account: Option<&[u8]>, subject: &[u8], queue: Option<(&[u8], u32)>) {
        let pinned = if account.is_none() {
            self.pinned_name()
        } else {
            None
        };
        let Some(acc) = self.account(account.or(pinned.as_deref())) else {
            tracing::debug!(
                "{} - Unknown account for remote subject {:?}",
                self.route.client.log_prefix(),
                String::from_utf8_lossy(subject)
            );
            return;
        };
        if !gossip::may_export(&self.cluster.opts, subject) {
            return;
        }
        let key = sub_key(&acc.name, subject, queue.map(|q| q.0));
        let existing = self.route.client.subs.lock().get(&key[..]).cloned();
        if let Some(sub) = existing {
            if let Some((_, w)) = queue {
                sub.weight.store(w, Ordering::Relaxed);
            }
            return;
        }
        let mut sub = Subscription::new(
            self.route.client.clone(),
            acc.clone(),
            subject,
            queue.map(|q| q.0),
            &key,
        );
        sub.remote = Some(self.route.sink.clone());
        if let Some((_, w)) = queue {
            sub.weight.store(w, Ordering::Relaxed);
        }
        let sub = SubRef(Arc::new(sub));
        if self.state.add_subscription(&sub).is_err() {
            tracing::error!(
                "{} - Could not insert subscription: invalid subject {:?}",
                self.route.client.log_prefix(),
                String::from_utf8_lossy(subject)
            );
            return;
        }
        self.route
            .client
            .subs
            .lock()
            .insert(key.into(), sub.0.clone());
    }

    fn on_unsub(&mut self, account: Option<&[u8]>, subject: &[u8], queue: Option<&[u8]>) {
        let pinned = if account.is_none() {
            self.pinned_name()
        } else {
            None
        };
        let Some(acc) = self.account(account.or(pinned.as_deref())) else {
            return;
        };
        let key = sub_key(&acc.name, subject, queue);
        let sub = self.route.client.subs.lock().remove(&key[..]);
        if let Some(sub) = sub {
            self.state.remove_subscription(&SubRef(sub));
        }
    }

    fn on_msg(&mut self, m: RoutedMsg<'_>) {
        let pinned = if m.account.is_none() {
            self.pinned_name()
        } else {
            None
        };
        let Some(name) = m.account.or(pinned.as_deref()) else {
            return;
        };
        if !self.caches.contains_key(name) && self.account(Some(name)).is_none() {
            tracing::debug!(
                "{} - Unknown account {:?} for routed message on subject: {:?}",
                self.route.client.log_prefix(),
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(m.subject)
            );
            return;
        }
        self.batch.counts.in_msgs += 1;
        self.batch.counts.in_bytes += (m.payload.len() + m.headers.map_or(0, <[u8]>::len)) as u64;
        let (subject, route, reply) =
            match m.reply.and_then(|r| js_ack_deliver_idx(r).map(|i| (r, i))) {
                Some((r, i)) => (&r[i + 1..], Some(m.subject), Some(&r[..i])),
                None => (gateway_routed_subject(m.subject), None, m.reply),
            };
        let msg = Message {
            subject,
            route,
            reply,
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
            &self.route.client,
            &msg,
            Some(&m.queues),
            &mut self.batch,
        );
    }

    /// The route is gone: its peer's interest goes with it.
    fn cleanup(&mut self) {
        let subs: Vec<SubRef> = self
            .route
            .client
            .subs
            .lock()
            .drain()
            .map(|(_, s)| SubRef(s))
            .collect();
        for s in &subs {
            self.state.remove_subscription(s);
        }
        peers::unregister(&self.cluster, &self.route);
    }
}

/// A reply a gateway routed to a server of this cluster
/// (`_GR_.<cluster>.<server>.<subject>`) is delivered under its real subject.
fn gateway_routed_subject(subject: &[u8]) -> &[u8] {
    const OFFSET: usize = 19;
    if subject.len() > OFFSET && subject.starts_with(b"_GR_.") {
        &subject[OFFSET..]
    } else {
        subject
    }
}

/// The gateway fields of a route INFO.
#[derive(serde::Deserialize)]
struct GatewayProbe {
    #[serde(default)]
    gateway_cmd: u8,
    #[serde(default)]
    gateway_url: String,
}

/// The key of a peer's subscription in its connection's map.
fn sub_key(account: &str, subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_ack_suffix_is_found_after_eight_dots() {
        let r = b"$JS.ACK.S.C.1.2.3.1700000000.0@orders.new";
        let i = js_ack_deliver_idx(r).unwrap();
        assert_eq!(&r[i + 1..], b"orders.new");
        assert_eq!(js_ack_deliver_idx(b"$JS.ACK.S@x"), None);
        assert_eq!(js_ack_deliver_idx(b"_INBOX.a@b"), None);
    }
}
