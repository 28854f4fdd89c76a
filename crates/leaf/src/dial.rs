//! Making leaf connections: the leaf node port's accept loop, dialling each
//! configured remote (its URLs in turn, redialled after `reconnect`, or 30 s
//! after a detected loop, as nats-server), the spoke's side of the
//! handshake up to CONNECT (the hub's INFO is read before TLS, which the hub
//! may require), and the hub's authentication of a CONNECT.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rnats_core::account::Account;
use rnats_core::server::ServerState;
use rnats_proto::leaf::LeafInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::{self, LeafConn, Origin, LOOP_RECONNECT_DELAY};
use crate::Leafs;

/// nats-server's `DEFAULT_LEAF_NODE_PORT`.
pub const DEFAULT_PORT: u16 = 7422;
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a spoke waits for the hub's first INFO.
const INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// Why one attempt to reach a hub failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("i/o timeout")]
    Timeout,
    #[error("attempted to connect to a port that is not a leafnode port")]
    WrongPort,
    #[error("{0}")]
    Other(String),
}

/// Accepts leaf nodes until the server shuts down.
pub(crate) async fn accept_loop(leafs: Arc<Leafs>, listener: TcpListener) {
    loop {
        if leafs.stopping() {
            return;
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
        };
        match accepted {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let Some(state) = leafs.server() else { return };
                tokio::spawn(serve_accepted(leafs.clone(), state, stream, addr));
            }
            Err(e) => {
                tracing::error!("Error accepting leafnode connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Runs an accepted connection; with TLS on the port, the INFO goes out in
/// the clear first (it says `tls_required`), then the handshake.
async fn serve_accepted(
    leafs: Arc<Leafs>,
    state: Arc<ServerState>,
    mut stream: TcpStream,
    addr: std::net::SocketAddr,
) {
    let origin = Origin {
        remote: None,
        url: None,
    };
    let Some(tls) = leafs.tls_server.clone() else {
        let (rd, wr) = stream.into_split();
        let start = conn::Start {
            leafs,
            state,
            addr,
            origin,
            pre: BytesMut::new(),
            connect: None,
            info_sent: None,
        };
        conn::run(start, rd, wr).await;
        return;
    };
    let cid = state.next_cid();
    let nonce = rnats_core::auth::nkey::new_nonce().unwrap_or_default();
    let info = conn::hub_info(&leafs, &state, cid, &nonce, None).to_line();
    if stream.write_all(&info).await.is_err() {
        return;
    }
    let timeout = leafs
        .opts
        .tls
        .as_ref()
        .map_or(Duration::from_secs(2), |t| t.timeout);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let s = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::error!(
                "{}:{} - lid:{cid} - TLS leafnode handshake error: {e}",
                addr.ip(),
                addr.port()
            );
            return;
        }
        Err(_) => {
            tracing::error!(
                "{}:{} - lid:{cid} - TLS leafnode handshake error: timeout",
                addr.ip(),
                addr.port()
            );
            return;
        }
    };
    let (rd, wr) = tokio::io::split(s);
    let start = conn::Start {
        leafs,
        state,
        addr,
        origin,
        pre: BytesMut::new(),
        connect: None,
        info_sent: Some((cid, nonce)),
    };
    conn::run(start, rd, rnats_core::tls::FlushingWriter::new(wr)).await;
}

/// Runs a leaf connection that arrived on the WebSocket port.
pub(crate) async fn serve_stream(
    leafs: Arc<Leafs>,
    stream: Box<dyn rnats_core::hooks::ByteStream>,
    addr: std::net::SocketAddr,
) {
    let Some(state) = leafs.server() else { return };
    let (rd, wr) = tokio::io::split(stream);
    let start = conn::Start {
        leafs,
        state,
        addr,
        origin: Origin {
            remote: None,
            url: None,
        },
        pre: BytesMut::new(),
        connect: None,
        info_sent: None,
    };
    conn::run(start, rd, wr).await;
}

/// Starts a dialling task per enabled remote.
pub(crate) fn solicit_remotes(leafs: &Arc<Leafs>) {
    for (i, r) in leafs.opts.remotes.iter().enumerate() {
        if r.disabled || r.urls.is_empty() {
            continue;
        }
        let leafs = leafs.clone();
        tokio::spawn(async move { remote_loop(leafs, i).await });
    }
}

async fn remote_loop(leafs: Arc<Leafs>, idx: usize) {
    let urls = leafs.opts.remotes[idx].urls.clone();
    let mut attempt = 0usize;
    loop {
        if leafs.stopping() {
            return;
        }
        let url = urls[attempt % urls.len()].clone();
        attempt += 1;
        let delay = match connect_once(&leafs, idx, &url).await {
            Ok(c) if c.loop_detected.load(Ordering::Relaxed) => LOOP_RECONNECT_DELAY,
            Ok(_) => leafs.opts.reconnect,
            Err(e) => {
                tracing::error!(
                    "Error trying to connect as leafnode to remote server {:?} (attempt {attempt}): {e}",
                    redacted(&url)
                );
                leafs.opts.reconnect
            }
        };
        let until = tokio::time::Instant::now() + delay;
        while tokio::time::Instant::now() < until {
            if leafs.stopping() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100).min(delay)).await;
        }
    }
}

fn redacted(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("xxxxx"));
    }
    format!(
        "{}:{}",
        u.host_str().unwrap_or(""),
        u.port().unwrap_or(DEFAULT_PORT)
    )
}

/// One attempt: dial, read the hub's INFO, TLS if needed, send CONNECT and
/// run the connection until it closes.
async fn connect_once(
    leafs: &Arc<Leafs>,
    idx: usize,
    url: &url::Url,
) -> Result<Arc<LeafConn>, DialError> {
    let state = leafs
        .server()
        .ok_or_else(|| DialError::Other("server stopped".into()))?;
    let host = url
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let scheme = url.scheme().to_ascii_lowercase();
    if scheme == "ws" || scheme == "wss" {
        return crate::dial_ws::connect(leafs, &state, idx, url, &host).await;
    }
    let port = url.port().unwrap_or(DEFAULT_PORT);
    let mut stream = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| DialError::Timeout)??;
    let _ = stream.set_nodelay(true);
    let addr = stream.peer_addr()?;
    let (pre, info) = read_info(&mut stream).await?;
    let remote = &leafs.opts.remotes[idx];
    let connect = conn::spoke_connect(leafs, &state, idx, url, &info)
        .map_err(DialError::Other)?
        .to_line();
    let start = conn::Start {
        leafs: leafs.clone(),
        state,
        addr,
        origin: Origin {
            remote: Some(idx),
            url: Some(url.clone()),
        },
        pre,
        connect: Some(connect),
        info_sent: None,
    };
    let tls = remote.tls.is_some() || info.tls_required || scheme == "tls";
    if !tls {
        let (rd, wr) = stream.into_split();
        return Ok(conn::run(start, rd, wr).await);
    }
    let t = remote.tls.clone().unwrap_or_default();
    let client = client_tls(&t).map_err(DialError::Other)?;
    let name = rustls_pki_types::ServerName::try_from(host)
        .map_err(|_| DialError::Other("invalid server name".into()))?;
    let connector = tokio_rustls::TlsConnector::from(client);
    let s = tokio::time::timeout(t.timeout, connector.connect(name, stream))
        .await
        .map_err(|_| DialError::Other("TLS handshake timeout".into()))??;
    let (rd, wr) = tokio::io::split(s);
    Ok(conn::run(start, rd, rnats_core::tls::FlushingWriter::new(wr)).await)
}

/// The TLS client side of a remote: the hub is verified against `ca_file`;
/// a client certificate is presented only when the remote names one.
pub(crate) fn client_tls(
    t: &rnats_core::options::TlsOptions,
) -> Result<Arc<rustls::ClientConfig>, String> {
    if t.cert_file.is_some() && t.key_file.is_some() {
        return rnats_core::tls::client_config(t);
    }
    let Some(ca) = &t.ca_file else {
        return Err(
            "TLS on leafnode remotes requires 'ca_file' in rnats (the system roots are not used)"
                .into(),
        );
    };
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("failed to parse root ca certificate: {e}"))?;
    for c in certs {
        let c = c.map_err(|e| format!("failed to parse root ca certificate: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("failed to parse root ca certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads the hub's first line, which must be a leaf node INFO. Returns the
/// bytes read (the INFO included, for the connection's reader) and the INFO.
pub(crate) async fn read_info<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
) -> Result<(BytesMut, LeafInfo), DialError> {
    let mut buf = BytesMut::with_capacity(4096);
    let line_end = loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return Err(DialError::WrongPort);
        }
        let n = tokio::time::timeout(INFO_TIMEOUT, s.read_buf(&mut buf))
            .await
            .map_err(|_| DialError::Timeout)??;
        if n == 0 {
            return Err(DialError::Other("connection closed".into()));
        }
    };
    let line = String::from_utf8_lossy(&buf[..line_end]).trim().to_string();
    let json = line
        .strip_prefix("INFO ")
        .ok_or(DialError::WrongPort)?
        .to_string();
    let info: LeafInfo =
        serde_json::from_str(&json).map_err(|e| DialError::Other(e.to_string()))?;
    if info.cid == 0 || info.leafnode_urls.is_none() {
        return Err(DialError::WrongPort);
    }
    Ok((buf, info))
}

/// Decides a spoke's CONNECT (we are the hub) and returns the account the
/// connection binds to: the `leafnodes` block's users or user, else the
/// server's own authentication (operator JWTs, users, token), else
/// `authorization.account` (or `$G`).
pub(crate) fn authenticate(
    leafs: &Leafs,
    state: &Arc<ServerState>,
    conn: &LeafConn,
    json: &[u8],
) -> Option<Arc<Account>> {
    let c = rnats_proto::ConnectOptions::from_json(json).ok()?;
    let lo = &leafs.opts;
    let opts = state.opts();
    let nonce = conn.nonce();
    let by_name = |name: Option<&str>| match name {
        Some(n) => state.accounts.get(n),
        None => Some(state.accounts.global().clone()),
    };
    if !lo.users.is_empty() {
        let auth = rnats_core::options::SimpleAuth {
            users: lo.users.iter().cloned().map(Arc::new).collect(),
            ..Default::default()
        };
        let a = rnats_core::auth::authenticate(&auth, None, &c, Some(nonce)).ok()?;
        let acc = a.user.and_then(|u| u.account.clone());
        return by_name(acc.as_deref().or(lo.account.as_deref()));
    }
    if let Some(user) = &lo.username {
        let ok = c.user.as_deref() == Some(user.as_str())
            && rnats_core::auth::secret_matches(
                lo.password.as_deref().unwrap_or(""),
                c.pass.as_deref().unwrap_or(""),
            );
        return if ok {
            by_name(lo.account.as_deref())
        } else {
            None
        };
    }
    if let Some(op) = &state.operator {
        let v = rnats_core::jwt::authenticate(
            &op.trust,
            &op.resolver,
            c.jwt.as_deref(),
            nonce.as_bytes(),
            c.sig.as_deref(),
        )
        .map_err(|e| {
            tracing::warn!(
                "{} - JWT authentication failed: {e}",
                conn.client.log_prefix()
            )
        })
        .ok()?;
        return Some(rnats_core::account::from_jwt::bind(state, &v.account));
    }
    if opts.auth.required() {
        let a = rnats_core::auth::authenticate(
            &opts.auth,
            opts.no_auth_user.as_deref(),
            &c,
            Some(nonce),
        )
        .ok()?;
        let acc = a.user.and_then(|u| u.account.clone());
        return by_name(acc.as_deref().or(lo.account.as_deref()));
    }
    by_name(lo.account.as_deref())
}
