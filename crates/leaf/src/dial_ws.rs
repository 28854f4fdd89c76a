//! Dialling a hub's WebSocket port (`ws://` / `wss://` remotes), as
//! nats-server's spoke does: an HTTP upgrade on `/leafnode`, then the leaf
//! protocol inside binary frames (masked, as a client's must be). A small
//! bridge turns the frames into the plain byte stream the connection reads
//! and writes.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::{Buf, BufMut, BytesMut};
use rnats_core::server::ServerState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::conn::{self, LeafConn, Origin};
use crate::dial::{read_info, DialError};
use crate::Leafs;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Frames larger than this end the connection (a hub never sends more than
/// a maximum payload plus its protocol line in one).
const MAX_FRAME: usize = 128 * 1024 * 1024;

pub(crate) async fn connect(
    leafs: &Arc<Leafs>,
    state: &Arc<ServerState>,
    idx: usize,
    url: &url::Url,
    host: &str,
) -> Result<Arc<LeafConn>, DialError> {
    let tls = url.scheme().eq_ignore_ascii_case("wss");
    let port = url.port().unwrap_or(if tls { 443 } else { 80 });
    let stream = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect((host, port)))
        .await
        .map_err(|_| DialError::Timeout)??;
    let _ = stream.set_nodelay(true);
    let addr = stream.peer_addr()?;
    let remote = &leafs.opts.remotes[idx];
    let app = if tls {
        let t = remote.tls.clone().unwrap_or_default();
        let client = crate::dial::client_tls(&t).map_err(DialError::Other)?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| DialError::Other("invalid server name".into()))?;
        let s = tokio::time::timeout(
            t.timeout,
            tokio_rustls::TlsConnector::from(client).connect(name, stream),
        )
        .await
        .map_err(|_| DialError::Other("TLS handshake timeout".into()))??;
        upgrade(s, url, host, port).await?
    } else {
        upgrade(stream, url, host, port).await?
    };
    let mut app = app;
    let (pre, info) = read_info(&mut app).await?;
    let connect = conn::spoke_connect(leafs, state, idx, url, &info)
        .map_err(DialError::Other)?
        .to_line();
    let start = conn::Start {
        leafs: leafs.clone(),
        state: state.clone(),
        addr,
        origin: Origin {
            remote: Some(idx),
            url: Some(url.clone()),
        },
        pre,
        connect: Some(connect),
        info_sent: None,
    };
    let (rd, wr) = tokio::io::split(app);
    Ok(conn::run(start, rd, wr).await)
}

/// The HTTP upgrade; returns our end of the byte-stream bridge.
async fn upgrade<S>(
    mut s: S,
    url: &url::Url,
    host: &str,
    port: u16,
) -> Result<DuplexStream, DialError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut raw = [0u8; 16];
    for b in raw.iter_mut() {
        *b = fastrand::u8(..);
    }
    let key = base64::engine::general_purpose::STANDARD.encode(raw);
    let base = url.path().trim_matches('/');
    let path = if base.is_empty() {
        "/leafnode".to_string()
    } else {
        format!("/{base}/leafnode")
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(1024);
    let head_end = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(i + 4);
            }
            if buf.len() > 16 * 1024 || s.read_buf(&mut buf).await? == 0 {
                return Err(DialError::Other("invalid websocket handshake".into()));
            }
        }
    })
    .await
    .map_err(|_| DialError::Timeout)??;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let accept = {
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{key}{GUID}").as_bytes(),
        );
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    };
    if !head.starts_with("http/1.1 101")
        || !head.contains(&format!(
            "sec-websocket-accept: {}",
            accept.to_ascii_lowercase()
        ))
    {
        return Err(DialError::Other("invalid websocket connection".into()));
    }
    buf.advance(head_end);
    let (app, bridge) = tokio::io::duplex(64 * 1024);
    let (srd, swr) = tokio::io::split(s);
    let (brd, bwr) = tokio::io::split(bridge);
    let (pong_tx, pong_rx) = mpsc::unbounded_channel();
    tokio::spawn(read_frames(srd, bwr, buf, pong_tx));
    tokio::spawn(write_frames(swr, brd, pong_rx));
    Ok(app)
}

/// Socket -> bridge: frame payloads become the byte stream.
async fn read_frames<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut sock: R,
    mut out: W,
    mut buf: BytesMut,
    pongs: mpsc::UnboundedSender<Vec<u8>>,
) {
    loop {
        match decode(&mut buf) {
            Ok(Some((0..=2, payload))) => {
                if out.write_all(&payload).await.is_err() {
                    return;
                }
            }
            Ok(Some((8, _))) => return,
            Ok(Some((9, payload))) => {
                let _ = pongs.send(payload);
            }
            Ok(Some(_)) => {}
            Ok(None) => match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            Err(()) => return,
        }
    }
}

/// One frame from the front of `buf` (opcode, unmasked payload).
fn decode(buf: &mut BytesMut) -> Result<Option<(u8, Vec<u8>)>, ()> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let opcode = buf[0] & 0x0f;
    if buf[0] & 0x40 != 0 {
        // Compressed frames: we never offer permessage-deflate.
        return Err(());
    }
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (usize::try_from(u64::from_be_bytes(b)).map_err(|_| ())?, 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if len > MAX_FRAME {
        return Err(());
    }
    if buf.len() < at + len {
        return Ok(None);
    }
    buf.advance(at);
    let mut payload = buf.split_to(len).to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Ok(Some((opcode, payload)))
}

/// Bridge -> socket: bytes written by the connection go out as masked
/// binary frames; pings are answered.
async fn write_frames<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(
    mut sock: W,
    mut input: R,
    mut pongs: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let (opcode, data) = tokio::select! {
            r = input.read(&mut chunk) => match r {
                Ok(0) | Err(_) => (8u8, Vec::new()),
                Ok(n) => (2u8, chunk[..n].to_vec()),
            },
            Some(p) = pongs.recv() => (10u8, p),
        };
        let frame = encode(opcode, &data);
        if sock.write_all(&frame).await.is_err() || sock.flush().await.is_err() || opcode == 8 {
            let _ = sock.shutdown().await;
            return;
        }
    }
}

fn encode(opcode: u8, data: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(data.len() + 14);
    out.put_u8(0x80 | opcode);
    match data.len() {
        n if n < 126 => out.put_u8(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.put_u8(0x80 | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(0x80 | 127);
            out.put_u64(n as u64);
        }
    }
    let mask = fastrand::u32(..).to_be_bytes();
    out.put_slice(&mask);
    out.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for len in [0usize, 5, 125, 126, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = encode(2, &data);
            let (op, got) = decode(&mut buf).unwrap().unwrap();
            assert_eq!((op, got), (2, data));
            assert!(buf.is_empty());
        }
        let mut partial = BytesMut::from(&encode(2, b"hello")[..4]);
        assert_eq!(decode(&mut partial), Ok(None));
    }
}
