//! The WebSocket listener: NATS clients over WebSocket (binary frames, masked
//! by the client, permessage-deflate when agreed), as nats-server's
//! `websocket {}` block sets it up. The handshake is in [`handshake`], the
//! framing in [`frame`]; after the upgrade the connection is an ordinary
//! client (`client::conn::serve_stream`) over a [`frame::WsStream`].

#![forbid(unsafe_code)]

pub mod frame;
pub mod handshake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use frame::{WsParams, WsStream};
use handshake::{OriginPolicy, Request};
use rnats_core::client::conn;
use rnats_core::options::{Options, WebsocketOptions};
use rnats_core::server::ServerState;
use rnats_core::tls::TlsServer;

/// The largest compressed message: nats-server allows 8 times max_payload,
/// at most 64 MiB.
fn max_message(max_payload: usize) -> usize {
    max_payload.saturating_mul(8).min(64 * 1024 * 1024)
}

/// The WebSocket listener's settings, checked at startup.
#[derive(Debug)]
pub struct WsServer {
    pub tls: Option<Arc<TlsServer>>,
    pub origins: OriginPolicy,
    pub compression: bool,
    pub handshake_timeout: Duration,
    pub host: String,
}

/// A `websocket {}` block nats-server would refuse, with its wording.
#[derive(Debug, thiserror::Error)]
pub enum WsConfigError {
    #[error("{0}")]
    Tls(String),
    #[error("websocket requires TLS configuration")]
    TlsRequired,
    #[error("unable to parse allowed origin: {0}")]
    Origin(String),
    #[error("unable to parse allowed origin {0:?}: allowed origins must be absolute URLs with http or https scheme")]
    OriginScheme(String),
    #[error("unable to parse allowed origin {0:?}: host is required")]
    OriginHost(String),
}

impl WsServer {
    /// Validates the block as nats-server does (`validateWebsocketOptions`).
    pub fn new(o: &WebsocketOptions) -> Result<WsServer, WsConfigError> {
        let tls = match &o.tls {
            Some(t) => Some(Arc::new(
                rnats_core::tls::server_config(t).map_err(WsConfigError::Tls)?,
            )),
            None if o.no_tls => None,
            None => return Err(WsConfigError::TlsRequired),
        };
        let mut allowed = Vec::new();
        for ao in &o.allowed_origins {
            let origin =
                handshake::parse_origin(ao).map_err(|e| WsConfigError::Origin(e.to_string()))?;
            if origin.scheme != "http" && origin.scheme != "https" {
                return Err(WsConfigError::OriginScheme(ao.clone()));
            }
            if origin.host.is_empty() {
                return Err(WsConfigError::OriginHost(ao.clone()));
            }
            allowed.push(origin);
        }
        Ok(WsServer {
            tls,
            origins: OriginPolicy {
                same_origin: o.same_origin,
                allowed,
            },
            compression: o.compression,
            handshake_timeout: o.handshake_timeout,
            host: o.host.clone().unwrap_or_else(|| "0.0.0.0".into()),
        })
    }

    /// `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "wss"
        } else {
            "ws"
        }
    }
}

/// The listener's settings if `opts` enables one.
pub fn configure(opts: &Options) -> Result<Option<WsServer>, WsConfigError> {
    if !opts.websocket.enabled() {
        return Ok(None);
    }
    WsServer::new(&opts.websocket).map(Some)
}

/// Registers the `websocket {}` block's validation with the config loader,
/// so a bad block is reported at its position in the file.
pub fn register() {
    rnats_core::config::set_websocket_check(|o| {
        WsServer::new(o).map(|_| ()).map_err(|e| e.to_string())
    });
}

/// The bound WebSocket port, ready to run beside the client port.
pub struct WsListener {
    ws: Arc<WsServer>,
    listener: TcpListener,
}

impl WsListener {
    /// Checks the settings and binds the port, if `opts` enables WebSocket.
    pub async fn bind(opts: &Options) -> std::io::Result<Option<WsListener>> {
        let Some(ws) = configure(opts).map_err(std::io::Error::other)? else {
            return Ok(None);
        };
        let wo = &opts.websocket;
        let port = if wo.random_port { 0 } else { wo.port };
        let listener = TcpListener::bind((ws.host.as_str(), port)).await?;
        Ok(Some(WsListener {
            ws: Arc::new(ws),
            listener,
        }))
    }

    /// The checked settings (scheme, host, TLS).
    pub fn settings(&self) -> &Arc<WsServer> {
        &self.ws
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts WebSocket clients until the server stops accepting.
    pub async fn run(self, state: Arc<ServerState>) {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        tokio::spawn(serve(state.clone(), self.ws.clone(), stream, addr));
                    }
                    Err(e) => {
                        tracing::error!("Error accepting websocket connection: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = state.accepting_stopped() => break,
            }
        }
    }
}

/// Serves one accepted WebSocket connection.
pub async fn serve(
    state: Arc<ServerState>,
    ws: Arc<WsServer>,
    stream: TcpStream,
    addr: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let limit = (!ws.handshake_timeout.is_zero()).then_some(ws.handshake_timeout);
    match &ws.tls {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
            let deadline = limit.unwrap_or(tls.opts.timeout);
            match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                Ok(Ok(s)) => upgrade(state, ws, s, addr, true, limit).await,
                Ok(Err(e)) => {
                    tracing::error!("websocket: TLS handshake error from {addr}: {e}")
                }
                Err(_) => tracing::debug!("websocket: TLS handshake timeout from {addr}"),
            }
        }
        None => upgrade(state, ws, stream, addr, false, limit).await,
    }
}

/// Reads the request head; returns it and any bytes read past it.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + i + 4;
            let rest = buf.split_off(end);
            buf.truncate(end - 4);
            return Ok((buf, rest));
        }
        if buf.len() > handshake::MAX_REQUEST {
            return Err(std::io::Error::other("request header too large"));
        }
    }
}

async fn upgrade<S>(
    state: Arc<ServerState>,
    ws: Arc<WsServer>,
    mut s: S,
    addr: SocketAddr,
    tls: bool,
    limit: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let head = match limit {
        Some(d) => match tokio::time::timeout(d, read_head(&mut s)).await {
            Ok(r) => r,
            Err(_) => return,
        },
        None => read_head(&mut s).await,
    };
    let Ok((head, rest)) = head else {
        return;
    };
    let refused = |reason: &str| {
        tracing::error!("{addr} - websocket handshake error: {reason}");
    };
    let Some(req) = Request::parse(&head) else {
        let _ = s.write_all(&handshake::http_error(400)).await;
        refused("malformed HTTP request");
        return;
    };
    let leaf = state.slot::<rnats_core::hooks::LeafStreamAcceptor>();
    let accepted =
        match handshake::upgrade_with(&req, &ws.origins, tls, ws.compression, leaf.is_some()) {
            Ok(a) => a,
            Err(r) => {
                let _ = s.write_all(&r.response).await;
                let _ = s.flush().await;
                let _ = s.shutdown().await;
                refused(&r.reason);
                return;
            }
        };
    if !rest.is_empty() {
        let _ = s.write_all(&handshake::http_error(400)).await;
        let _ = s.flush().await;
        refused("client sent data before handshake is complete");
        return;
    }
    if s.write_all(&accepted.response).await.is_err() || s.flush().await.is_err() {
        return;
    }
    let client = conn::new_client(&state, addr);
    if let (Some(leaf), true) = (leaf, req.path.ends_with("/leafnode")) {
        // A leaf node: the leaf feature runs it over the framed stream.
        let params = WsParams {
            compress: accepted.compress,
            masked: !accepted.no_masking,
            max_message: usize::MAX,
        };
        (leaf.0)(Box::new(WsStream::new(s, client, params, &rest)), addr);
        return;
    }
    let params = WsParams {
        compress: accepted.compress,
        masked: !accepted.no_masking,
        max_message: max_message(state.opts().max_payload),
    };
    let stream = WsStream::new(s, client.clone(), params, &rest);
    conn::serve_stream(state, client, stream).await;
}
