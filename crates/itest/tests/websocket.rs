//! The WebSocket listener: async-nats over `ws://` (pub/sub, request/reply)
//! with compression on and off, and a raw WebSocket client for what
//! async-nats does not show: permessage-deflate frames both ways, PING/PONG
//! and CLOSE control frames, and the Origin check (403).

use std::time::Duration;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures::StreamExt;
use rnats_itest::{free_port, next_msg, sync, within, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(30);

fn start(ws_extra: &str) -> (Server, u16) {
    let ws_port = free_port();
    let server = Server::start_with_config(&format!(
        "websocket {{\n  port: {ws_port}\n  no_tls: true\n  {ws_extra}\n}}\n"
    ));
    assert!(
        server.wait_for_log(
            &format!("Listening for websocket clients on ws://0.0.0.0:{ws_port}"),
            Duration::from_secs(2)
        ),
        "{}",
        server.log()
    );
    (server, ws_port)
}

async fn pubsub_and_request(ws_port: u16) {
    let url = format!("ws://127.0.0.1:{ws_port}");
    let client = async_nats::connect(url.clone()).await.unwrap();
    let mut sub = client.subscribe("ws.subject").await.unwrap();
    sync(&client).await;
    for i in 0..50u32 {
        client
            .publish("ws.subject", Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    for i in 0..50u32 {
        assert_eq!(next_msg(&mut sub).await.payload, format!("m{i}").as_bytes());
    }
    let big = Bytes::from((0..300_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    client.publish("ws.subject", big.clone()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.payload, big);

    // Request/reply across a WebSocket client and a second one.
    let responder = async_nats::connect(url).await.unwrap();
    let mut service = responder.subscribe("ws.svc").await.unwrap();
    sync(&responder).await;
    let task = tokio::spawn(async move {
        for _ in 0..3 {
            let m = service.next().await.unwrap();
            let mut body = b"re:".to_vec();
            body.extend_from_slice(&m.payload);
            responder
                .publish(m.reply.unwrap(), Bytes::from(body))
                .await
                .unwrap();
        }
        responder
    });
    for i in 0..3 {
        let r = client
            .request("ws.svc", Bytes::from(format!("q{i}")))
            .await
            .unwrap();
        assert_eq!(r.payload, format!("re:q{i}").as_bytes());
    }
    task.await.unwrap();
}

#[tokio::test]
async fn pubsub_without_compression() {
    let (_server, ws_port) = start("");
    within(LIMIT, "websocket pub/sub", pubsub_and_request(ws_port)).await;
}

#[tokio::test]
async fn pubsub_with_compression() {
    let (_server, ws_port) = start("compression: true");
    within(
        LIMIT,
        "websocket pub/sub, compression on",
        pubsub_and_request(ws_port),
    )
    .await;
}

#[tokio::test]
async fn websocket_and_tcp_clients_meet() {
    let (server, ws_port) = start("compression: true");
    within(LIMIT, "ws <-> tcp", async {
        let tcp = rnats_itest::connect(&server).await;
        let ws = async_nats::connect(format!("ws://127.0.0.1:{ws_port}"))
            .await
            .unwrap();
        let mut sub = tcp.subscribe("mix").await.unwrap();
        sync(&tcp).await;
        ws.publish("mix", Bytes::from_static(b"from ws"))
            .await
            .unwrap();
        ws.flush().await.unwrap();
        assert_eq!(&next_msg(&mut sub).await.payload[..], b"from ws");
    })
    .await;
}

/// A minimal WebSocket client over TCP.
struct RawWs {
    s: TcpStream,
    buf: Vec<u8>,
    deflate: bool,
}

struct Frame {
    opcode: u8,
    compressed: bool,
    payload: Vec<u8>,
}

fn request(extra: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends an upgrade request; returns the response head and the stream.
async fn upgrade(port: u16, extra: &str) -> (String, RawWs) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request(extra).as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            let rest = buf[i + 4..].to_vec();
            let deflate = head.to_ascii_lowercase().contains("permessage-deflate");
            return (
                head,
                RawWs {
                    s,
                    buf: rest,
                    deflate,
                },
            );
        }
        let n = s.read(&mut tmp).await.unwrap();
        assert!(
            n > 0,
            "closed during the handshake: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(input.len() * 8 + 1024);
    loop {
        out.reserve(64 * 1024);
        d.decompress_vec(
            &input[d.total_in() as usize..],
            &mut out,
            FlushDecompress::Sync,
        )
        .unwrap();
        if d.total_in() as usize >= input.len() && out.len() < out.capacity() {
            return out;
        }
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        out.reserve(64 * 1024);
        c.compress_vec(
            &data[c.total_in() as usize..],
            &mut out,
            FlushCompress::Sync,
        )
        .unwrap();
        if c.total_in() as usize >= data.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0x00, 0x00, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

impl RawWs {
    async fn send_frame(&mut self, opcode: u8, compressed: bool, payload: &[u8]) {
        let mut f = vec![0x80 | opcode | if compressed { 0x40 } else { 0 }];
        let len = payload.len();
        if len <= 125 {
            f.push(0x80 | len as u8);
        } else if len < 65536 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.s.write_all(&f).await.unwrap();
    }

    /// Sends NATS protocol text, compressed when agreed.
    async fn send(&mut self, text: &[u8]) {
        if self.deflate {
            let z = deflate(text);
            self.send_frame(2, true, &z).await;
        } else {
            self.send_frame(2, false, text).await;
        }
    }

    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 2 {
                let b0 = self.buf[0];
                let b1 = self.buf[1];
                assert_eq!(b1 & 0x80, 0, "server frames are not masked");
                let (len, hdr) = match b1 & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    l => (l as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= hdr + len {
                    let payload = self.buf[hdr..hdr + len].to_vec();
                    self.buf.drain(..hdr + len);
                    return Some(Frame {
                        opcode: b0 & 0x0f,
                        compressed: b0 & 0x40 != 0,
                        payload,
                    });
                }
            }
            let mut tmp = [0u8; 65536];
            let n = self.s.read(&mut tmp).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// Reads data frames until their text contains `needle`; returns the
    /// text and whether any frame was compressed.
    async fn read_until(&mut self, needle: &str) -> (String, bool) {
        let mut text = String::new();
        let mut any_compressed = false;
        while !text.contains(needle) {
            let f = self
                .frame()
                .await
                .unwrap_or_else(|| panic!("closed before {needle:?}; got {text:?}"));
            assert_eq!(f.opcode, 2, "data comes in binary frames");
            let data = if f.compressed {
                any_compressed = true;
                inflate(&f.payload)
            } else {
                f.payload
            };
            text.push_str(&String::from_utf8_lossy(&data));
        }
        (text, any_compressed)
    }
}

#[tokio::test]
async fn raw_permessage_deflate() {
    let (_server, ws_port) = start("compression: true");
    within(LIMIT, "raw compressed websocket", async {
        let (head, mut ws) = upgrade(ws_port, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.contains("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            "{head}"
        );
        let (info, compressed) = ws.read_until("\r\n").await;
        assert!(info.starts_with("INFO {"), "{info}");
        assert!(compressed, "the INFO is big enough to be compressed");

        let payload = "y".repeat(5000);
        ws.send(
            format!(
                "CONNECT {{\"verbose\":false,\"protocol\":1}}\r\nSUB z 1\r\nPUB z {}\r\n{payload}\r\nPING\r\n",
                payload.len()
            )
            .as_bytes(),
        )
        .await;
        let (text, compressed) = ws.read_until("PONG\r\n").await;
        assert!(text.contains(&format!("MSG z 1 5000\r\n{payload}\r\n")), "{text}");
        assert!(compressed, "a 5000-byte message is sent compressed");

        // PING control frame -> PONG with the same payload.
        ws.send_frame(9, false, b"hello").await;
        let f = ws.frame().await.unwrap();
        assert_eq!((f.opcode, &f.payload[..]), (10, &b"hello"[..]));

        // CLOSE -> CLOSE echoing the status, then the server closes.
        ws.send_frame(8, false, &1000u16.to_be_bytes()).await;
        let f = ws.frame().await.unwrap();
        assert_eq!(f.opcode, 8);
        assert_eq!(&f.payload[..2], &1000u16.to_be_bytes());
        assert!(ws.frame().await.is_none(), "the server closes after CLOSE");
    })
    .await;
}

#[tokio::test]
async fn raw_uncompressed_when_not_offered() {
    let (_server, ws_port) = start("compression: true");
    within(LIMIT, "raw websocket, no deflate offered", async {
        let (head, mut ws) = upgrade(ws_port, "").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(!head.contains("permessage-deflate"), "{head}");
        let (_, compressed) = ws.read_until("\r\n").await;
        assert!(!compressed);
        ws.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await;
        ws.read_until("PONG\r\n").await;
        // An unmasked frame is a protocol error: the connection ends (with a
        // CLOSE 1002 if it gets out first; nats-server may reset instead).
        ws.s.write_all(&[0x82, 0x06]).await.unwrap();
        ws.s.write_all(b"PING\r\n").await.unwrap();
        while let Some(f) = ws.frame().await {
            assert_eq!(f.opcode, 8, "only a CLOSE may follow");
            assert_eq!(&f.payload[..2], &1002u16.to_be_bytes());
        }
    })
    .await;
}

#[tokio::test]
async fn disallowed_origin_is_refused() {
    let (_server, ws_port) = start("allowed_origins: [\"http://good.example\"]");
    within(LIMIT, "origin check", async {
        let (head, _) = upgrade(ws_port, "Origin: http://evil.example\r\n").await;
        assert!(head.starts_with("HTTP/1.1 403 Forbidden"), "{head}");
        let (head, _) = upgrade(ws_port, "Origin: http://good.example\r\n").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // No Origin at all (a non-browser client) is accepted.
        let (head, _) = upgrade(ws_port, "").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    })
    .await;
}

#[tokio::test]
async fn bad_handshakes() {
    let (_server, ws_port) = start("");
    within(LIMIT, "bad handshakes", async {
        let mut s = TcpStream::connect(("127.0.0.1", ws_port)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 400 Bad Request"), "{head}");

        let mut s = TcpStream::connect(("127.0.0.1", ws_port)).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 405 Method Not Allowed"), "{head}");
    })
    .await;
}
