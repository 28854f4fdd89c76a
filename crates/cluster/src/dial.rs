//! Making and keeping route connections: the accept loop on the cluster
//! port, dialling the configured routes (and one dedicated route per pinned
//! account), growing a peer's pool, dialling servers learned by gossip, and
//! redialling a route we solicited when it drops — as nats-server does
//! (route.go `connectToRoute`, `reConnectToRoute`): explicit routes forever,
//! implicit ones only `connect_retries` times.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::conn::{self, Origin, Route};
use crate::Cluster;

/// nats-server's `DEFAULT_ROUTE_CONNECT` / `_MAX` / `_RECONNECT` / `_DIAL`.
const CONNECT_DELAY: Duration = Duration::from_secs(1);
const CONNECT_DELAY_MAX: Duration = Duration::from_secs(30);
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts routes until the server shuts down.
pub(crate) async fn accept_loop(cluster: Arc<Cluster>, listener: TcpListener) {
    loop {
        if cluster.stopping.load(Ordering::SeqCst) {
            return;
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
        };
        match accepted {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let origin = Origin {
                    solicited: false,
                    explicit: false,
                    url: None,
                    account: None,
                    gossip_mode: 0,
                };
                start(&cluster, stream, addr, origin);
            }
            Err(e) => {
                tracing::error!("Error accepting route connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn start(cluster: &Arc<Cluster>, stream: TcpStream, addr: SocketAddr, origin: Origin) {
    let Some(state) = cluster.server() else {
        return;
    };
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let Some(tls) = cluster.tls.clone() else {
            let (rd, wr) = stream.into_split();
            conn::run(cluster, state, addr, origin, rd, wr).await;
            return;
        };
        // Routes with TLS: the handshake comes first, both ends verified.
        let timeout = tls.timeout;
        let prefix = format!("{}:{}", addr.ip(), addr.port());
        if origin.solicited {
            let host = origin
                .url
                .as_ref()
                .and_then(|u| u.host_str())
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let Ok(name) = rustls_pki_types::ServerName::try_from(host) else {
                tracing::error!("{prefix} - TLS route handshake error: invalid server name");
                return;
            };
            let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
            match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
                Ok(Ok(s)) => {
                    let (rd, wr) = tokio::io::split(s);
                    let wr = rnats_core::tls::FlushingWriter::new(wr);
                    conn::run(cluster, state, addr, origin, rd, wr).await;
                }
                Ok(Err(e)) => tracing::error!("{prefix} - TLS route handshake error: {e}"),
                Err(_) => tracing::error!("{prefix} - TLS route handshake error: timeout"),
            }
        } else {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(s)) => {
                    let (rd, wr) = tokio::io::split(s);
                    let wr = rnats_core::tls::FlushingWriter::new(wr);
                    conn::run(cluster, state, addr, origin, rd, wr).await;
                }
                Ok(Err(e)) => tracing::error!("{prefix} - TLS route handshake error: {e}"),
                Err(_) => tracing::error!("{prefix} - TLS route handshake error: timeout"),
            }
        }
    });
}

/// Dials every configured route, plus a dedicated route per pinned account.
pub(crate) fn solicit_configured(cluster: &Arc<Cluster>) {
    for r in &cluster.opts.routes {
        let url = match url::Url::parse(r) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!("Error parsing route URL {r:?}: {e}");
                continue;
            }
        };
        spawn_connect(cluster, url.clone(), true, None, 0);
        for acc in &cluster.pinned {
            spawn_connect(cluster, url.clone(), true, Some(acc.clone()), 0);
        }
    }
}

/// Dials `url` in the background (see [`connect_to_route`]).
pub(crate) fn spawn_connect(
    cluster: &Arc<Cluster>,
    url: url::Url,
    explicit: bool,
    account: Option<String>,
    gossip_mode: u8,
) {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        connect_to_route(&cluster, url, explicit, account, gossip_mode, true).await;
    });
}

fn still_configured(cluster: &Cluster, url: &url::Url) -> bool {
    cluster.opts.routes.iter().any(|r| {
        url::Url::parse(r).is_ok_and(|u| u.host_str() == url.host_str() && u.port() == url.port())
    })
}

/// Whether `addr` is this server's own cluster port.
fn is_self(cluster: &Cluster, addr: &SocketAddr) -> bool {
    if addr.port() != cluster.listen.port() {
        return false;
    }
    let ip = addr.ip();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip == cluster.listen.ip()
        || if_addrs::get_if_addrs()
            .unwrap_or_default()
            .iter()
            .any(|i| i.ip() == ip)
}

async fn resolve(cluster: &Cluster, url: &url::Url) -> Result<Option<SocketAddr>, String> {
    let host = url.host_str().ok_or("route URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port().unwrap_or(6222);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| e.to_string())?
            .collect(),
    };
    let candidates: Vec<SocketAddr> = addrs.into_iter().filter(|a| !is_self(cluster, a)).collect();
    if candidates.is_empty() {
        // Every address is our own: a route to ourselves, nothing to dial.
        return Ok(None);
    }
    Ok(Some(candidates[fastrand::usize(..candidates.len())]))
}

/// Dials a route until it connects: forever for configured routes (while
/// they stay configured), `connect_retries` more times for learned ones.
pub(crate) async fn connect_to_route(
    cluster: &Arc<Cluster>,
    url: url::Url,
    explicit: bool,
    account: Option<String>,
    gossip_mode: u8,
    first_connect: bool,
) {
    let mut delay = CONNECT_DELAY;
    let mut attempts = 0u32;
    loop {
        if cluster.stopping.load(Ordering::SeqCst) {
            return;
        }
        if explicit && !still_configured(cluster, &url) {
            return;
        }
        let result = match resolve(cluster, &url).await {
            Ok(None) => return,
            Ok(Some(addr)) => {
                tracing::debug!(
                    "Trying to connect to route on {}:{} ({addr})",
                    url.host_str().unwrap_or(""),
                    url.port().unwrap_or(6222)
                );
                match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(s)) => Ok((s, addr)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("i/o timeout".to_string()),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let origin = Origin {
                    solicited: true,
                    explicit,
                    url: Some(url),
                    account,
                    gossip_mode,
                };
                start(cluster, stream, addr, origin);
                return;
            }
            Err(e) => {
                attempts += 1;
                let msg = format!("Error trying to connect to route (attempt {attempts}): {e}");
                if first_connect && (attempts == 1 || attempts.is_multiple_of(3600)) {
                    tracing::error!("{msg}");
                } else {
                    tracing::debug!("{msg}");
                }
                if !explicit && attempts > cluster.opts.connect_retries {
                    return;
                }
                tokio::time::sleep(delay).await;
                if cluster.opts.connect_backoff {
                    delay = (delay * 2).min(CONNECT_DELAY_MAX);
                }
            }
        }
    }
}

/// A route closed: redial it if we solicited it and nothing says not to.
pub(crate) fn after_close(cluster: &Arc<Cluster>, route: &Arc<Route>) {
    let o = &route.origin;
    if !o.solicited
        || route.no_reconnect.load(Ordering::Relaxed)
        || cluster.stopping.load(Ordering::SeqCst)
    {
        return;
    }
    if !o.explicit && cluster.opts.connect_retries == 0 {
        return;
    }
    let Some(url) = o.url.clone() else {
        return;
    };
    if cluster
        .server()
        .is_some_and(|s| route.remote_id() == s.server_id)
    {
        return;
    }
    tracing::debug!(
        "Attempting reconnect for solicited route {}",
        redacted(&url)
    );
    let cluster = cluster.clone();
    let (explicit, account) = (o.explicit, o.account.clone());
    tokio::spawn(async move {
        // Both ends may redial at once; a random delay breaks the tie.
        let mut delay = Duration::from_millis(fastrand::u64(..100));
        if explicit {
            delay += RECONNECT_DELAY;
        }
        tokio::time::sleep(delay).await;
        connect_to_route(&cluster, url, explicit, account, 0, false).await;
    });
}

/// Dials the next connection of a peer's pool.
pub(crate) fn grow_pool(cluster: &Arc<Cluster>, route: &Arc<Route>) {
    if let Some(url) = route.origin.url.clone() {
        let cluster = cluster.clone();
        let explicit = route.origin.explicit;
        tokio::spawn(async move {
            connect_to_route(&cluster, url, explicit, None, 0, false).await;
        });
    }
}

/// A URL without its password, for logs.
pub fn redacted(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("xxxxx"));
    }
    u.to_string()
}
