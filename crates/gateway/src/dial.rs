//! Making and keeping gateway connections, as nats-server does
//! (gateway.go `solicitGateway`, `processImplicitGateway`): accept on the
//! gateway port; dial one outbound connection per remote gateway, trying its
//! URLs, configured ones forever and implicit (learned) ones
//! `connect_retries` times; learn remote URLs from INFO `gateway_urls` and
//! gossip; redial when an outbound connection drops.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rnats_core::server::ServerState;
use rnats_core::subscription::{SubRef, Subscription};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::{self, sub_key, GwConn};
use crate::proto::{GatewayInfo, CMD_GOSSIP};
use crate::{gw_hash, Gateway, RemoteCfg};

/// nats-server's `defaultGatewayConnectDelay`, `...MaxDelay`, `...ReconnectDelay`.
const CONNECT_DELAY: Duration = Duration::from_secs(1);
const CONNECT_DELAY_MAX: Duration = Duration::from_secs(30);
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// `nats://[user:pass@]host:port`, or a bare `host:port`.
pub(crate) fn parse_url(raw: &str) -> Option<url::Url> {
    let full = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("nats://{raw}")
    };
    match url::Url::parse(&full) {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::error!("Error parsing gateway URL {raw:?}: {e}");
            None
        }
    }
}

pub(crate) async fn accept_loop(gw: Arc<Gateway>, listener: TcpListener) {
    loop {
        if gw.stopping.load(Ordering::SeqCst) {
            return;
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
        };
        match accepted {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                start(&gw, stream, addr, None);
            }
            Err(e) => {
                tracing::error!("Error accepting gateway connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn start(gw: &Arc<Gateway>, stream: TcpStream, addr: SocketAddr, out: Option<(String, url::Url)>) {
    let Some(state) = gw.server() else {
        return;
    };
    let gw = gw.clone();
    tokio::spawn(async move {
        let Some(tls) = gw.tls.clone() else {
            let (rd, wr) = stream.into_split();
            conn::run(gw, state, addr, out, rd, wr).await;
            return;
        };
        let prefix = format!("{}:{}", addr.ip(), addr.port());
        let timeout = tls.timeout;
        if let Some((_, url)) = &out {
            let host = url
                .host_str()
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let Ok(name) = rustls_pki_types::ServerName::try_from(host) else {
                tracing::error!("{prefix} - TLS gateway handshake error: invalid server name");
                return;
            };
            let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
            match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
                Ok(Ok(s)) => {
                    let (rd, wr) = tokio::io::split(s);
                    let wr = rnats_core::tls::FlushingWriter::new(wr);
                    conn::run(gw, state, addr, out, rd, wr).await;
                }
                Ok(Err(e)) => tracing::error!("{prefix} - TLS gateway handshake error: {e}"),
                Err(_) => tracing::error!("{prefix} - TLS gateway handshake error: timeout"),
            }
        } else {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(s)) => {
                    let (rd, wr) = tokio::io::split(s);
                    let wr = rnats_core::tls::FlushingWriter::new(wr);
                    conn::run(gw, state, addr, out, rd, wr).await;
                }
                Ok(Err(e)) => tracing::error!("{prefix} - TLS gateway handshake error: {e}"),
                Err(_) => tracing::error!("{prefix} - TLS gateway handshake error: timeout"),
            }
        }
    });
}

/// Dials every configured remote gateway.
pub(crate) fn solicit_configured(gw: &Arc<Gateway>) {
    let names: Vec<String> = gw.remotes.lock().keys().cloned().collect();
    for name in names {
        spawn_solicit(gw, name, Duration::ZERO);
    }
}

fn spawn_solicit(gw: &Arc<Gateway>, name: String, delay: Duration) {
    let gw = gw.clone();
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        solicit(&gw, &name).await;
    });
}

/// Tries the remote's URLs (in random order) until one connects.
async fn solicit(gw: &Arc<Gateway>, name: &str) {
    let mut delay = CONNECT_DELAY;
    let mut attempts = 0u32;
    loop {
        if gw.stopping.load(Ordering::SeqCst) || gw.outbound.lock().contains_key(name) {
            return;
        }
        let Some(cfg) = gw.remotes.lock().get(name).cloned() else {
            return;
        };
        attempts += 1;
        let mut urls = cfg.urls.clone();
        fastrand::shuffle(&mut urls);
        let kind = if cfg.implicit { "implicit" } else { "explicit" };
        for u in urls {
            let Some(host) = u.host_str() else { continue };
            let addr = format!("{}:{}", host, u.port().unwrap_or(7222));
            tracing::debug!("Connecting to {kind} gateway {name:?} ({addr}) (attempt {attempts})");
            match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let peer = stream
                        .peer_addr()
                        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                    start(gw, stream, peer, Some((name.to_string(), u.clone())));
                    return;
                }
                Ok(Err(e)) => tracing::debug!(
                    "Error connecting to {kind} gateway {name:?} ({addr}) (attempt {attempts}): {e}"
                ),
                Err(_) => tracing::debug!(
                    "Error connecting to {kind} gateway {name:?} ({addr}) (attempt {attempts}): timeout"
                ),
            }
        }
        if cfg.implicit && attempts > gw.opts.connect_retries && !has_inbound(gw, name) {
            gw.remotes.lock().remove(name);
            return;
        }
        tokio::time::sleep(delay).await;
        if gw.opts.connect_backoff {
            delay = (delay * 2).min(CONNECT_DELAY_MAX);
        }
    }
}

fn has_inbound(gw: &Gateway, name: &str) -> bool {
    gw.inbound_conns()
        .iter()
        .any(|c| c.remote_gateway() == name)
}

/// Registers an outbound connection (one per remote gateway) and gives
/// every account a `_GR_.<remote cluster hash>.>` subscription on it, so
/// replies routed to that cluster go straight there.
pub(crate) fn register_outbound(gw: &Arc<Gateway>, state: &ServerState, c: &Arc<GwConn>) -> bool {
    let name = c.remote_gateway();
    {
        let mut out = gw.outbound.lock();
        if out.contains_key(&name) {
            return false;
        }
        out.insert(name.clone(), c.clone());
    }
    c.registered.store(true, Ordering::Release);
    if let Some(cfg) = gw.remotes.lock().get_mut(&name) {
        cfg.attempts = 0;
    }
    let subject = format!("_GR_.{}.>", gw_hash(&name));
    let optimistic = c.sink.modes.enabled.load(Ordering::Relaxed);
    for acc in state.accounts.all() {
        let key = sub_key(&acc.name, subject.as_bytes(), None);
        add_sink_sub(state, c, &acc, subject.as_bytes(), key);
        if optimistic {
            let key = catch_all_key(&acc.name);
            add_sink_sub(state, c, &acc, b">", key);
        }
    }
    true
}

/// A subscription of ours whose sink is the outbound connection `c`.
fn add_sink_sub(
    state: &ServerState,
    c: &GwConn,
    acc: &Arc<rnats_core::account::Account>,
    subject: &[u8],
    key: Vec<u8>,
) {
    let mut sub = Subscription::new(c.client.clone(), acc.clone(), subject, None, &key);
    sub.remote = Some(c.sink.clone());
    let sub = SubRef(Arc::new(sub));
    if state.add_subscription(&sub).is_ok() {
        c.client.subs.lock().insert(key.into(), sub.0.clone());
    }
}

/// The key of an optimistic account's `>` subscription (no remote
/// subscription key starts with a space).
fn catch_all_key(account: &str) -> Vec<u8> {
    format!(" optimistic {account}").into_bytes()
}

/// The account switched to interest-only: its `>` goes.
pub(crate) fn remove_catch_all(state: &ServerState, c: &GwConn, account: &str) {
    let sub = c.client.subs.lock().remove(&catch_all_key(account)[..]);
    if let Some(sub) = sub {
        state.remove_subscription(&SubRef(sub));
    }
}

/// Tells the servers of our cluster about a remote gateway (nats-server's
/// `forwardNewGatewayToLocalCluster`), so each has an outbound to it.
pub(crate) fn forward_to_cluster(state: &ServerState, info: &GatewayInfo) {
    let line = GatewayInfo {
        id: format!("GW{}", state.server_id),
        name: state.server_name.clone(),
        gateway: info.gateway.clone(),
        gateway_urls: info.gateway_urls.clone(),
        gateway_cmd: CMD_GOSSIP,
        ..Default::default()
    }
    .to_line();
    state.raise(|h| h.broadcast_to_routes(state, &line));
}

/// A connection ended: unregister it; an outbound one is redialled.
pub(crate) fn after_close(gw: &Arc<Gateway>, c: &Arc<GwConn>) {
    if !c.registered.load(Ordering::Acquire) {
        if c.outbound && !gw.stopping.load(Ordering::SeqCst) {
            let name = c.remote_gateway();
            if !name.is_empty() {
                spawn_solicit(gw, name, RECONNECT_DELAY);
            }
        }
        return;
    }
    if c.outbound {
        let name = c.remote_gateway();
        let mut out = gw.outbound.lock();
        if out.get(&name).is_some_and(|x| Arc::ptr_eq(x, c)) {
            out.remove(&name);
        }
        drop(out);
        if !gw.stopping.load(Ordering::SeqCst) {
            let delay = RECONNECT_DELAY + Duration::from_millis(fastrand::u64(..100));
            spawn_solicit(gw, name, delay);
        }
    } else {
        gw.inbound.lock().remove(&c.gid());
    }
}

/// A remote gateway we learned of (an inbound connection's INFO, gossip):
/// dial it unless we already have it.
pub(crate) fn implicit_gateway(gw: &Arc<Gateway>, name: &str, urls: &[String]) {
    if name.is_empty() || name == gw.name() {
        return;
    }
    if gw.opts.reject_unknown && !gw.remotes.lock().contains_key(name) {
        return;
    }
    let parsed: Vec<url::Url> = urls.iter().filter_map(|u| parse_url(u)).collect();
    {
        let mut remotes = gw.remotes.lock();
        if let Some(cfg) = remotes.get_mut(name) {
            for u in parsed {
                if !cfg.urls.contains(&u) {
                    cfg.urls.push(u);
                }
            }
            return;
        }
        if parsed.is_empty() {
            return;
        }
        remotes.insert(
            name.to_string(),
            RemoteCfg {
                name: name.to_string(),
                urls: parsed,
                implicit: true,
                hash: gw_hash(name),
                attempts: 0,
            },
        );
    }
    tracing::info!("Learned of implicit gateway {name:?}");
    spawn_solicit(gw, name.to_string(), Duration::ZERO);
}

/// More URLs of a remote gateway (its INFO `gateway_urls`).
pub(crate) fn add_remote_urls(gw: &Gateway, name: &str, urls: &[String]) {
    let mut remotes = gw.remotes.lock();
    let Some(cfg) = remotes.get_mut(name) else {
        return;
    };
    for u in urls.iter().filter_map(|u| parse_url(u)) {
        if !cfg
            .urls
            .iter()
            .any(|x| x.host_str() == u.host_str() && x.port() == u.port())
        {
            cfg.urls.push(u);
        }
    }
}

/// Tells a new inbound connection about every other gateway we know, so
/// the remote cluster reaches them too (a full mesh of clusters).
pub(crate) fn gossip_to_inbound(gw: &Gateway, c: &GwConn, remote: &str) {
    let Some(state) = gw.server() else {
        return;
    };
    let remotes: Vec<RemoteCfg> = gw.remotes.lock().values().cloned().collect();
    for cfg in remotes.into_iter().filter(|r| r.name != remote) {
        let urls: Vec<String> = cfg
            .urls
            .iter()
            .filter_map(|u| Some(format!("{}:{}", u.host_str()?, u.port()?)))
            .collect();
        if urls.is_empty() {
            continue;
        }
        let info = GatewayInfo {
            id: state.server_id.clone(),
            gateway: cfg.name.clone(),
            gateway_urls: urls,
            gateway_cmd: CMD_GOSSIP,
            ..Default::default()
        };
        c.client.out.send_now(&info.to_line());
    }
}

/// A route brought gateway news: a peer's `gateway_url`, or a remote
/// gateway to make sure we are connected to (`gateway_cmd` 1).
pub(crate) fn route_gateway_info(gw: &Arc<Gateway>, json: &[u8]) {
    let Ok(info) = serde_json::from_slice::<GatewayInfo>(json) else {
        return;
    };
    if !info.gateway_url.is_empty() {
        gw.add_cluster_url(&info.gateway_url);
    }
    if info.gateway_cmd == CMD_GOSSIP && !info.gateway.is_empty() {
        implicit_gateway(gw, &info.gateway, &info.gateway_urls);
    }
}
