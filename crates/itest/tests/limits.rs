//! Protocol limits and errors: the client refuses to publish more than
//! max_payload; a raw PUB over max_payload gets `-ERR 'Maximum Payload
//! Violation'` and is closed; SUB with an invalid subject gets `-ERR 'Invalid
//! Subject'` and stays open; in pedantic mode (the CONNECT default) PUB to a
//! wildcard subject gets `-ERR 'Invalid Publish Subject'`, stays open and is
//! still routed; verbose mode (also a default) acks with `+OK`; garbage gets `-ERR 'Unknown Protocol
//! Operation'` and is closed.

use std::time::Duration;

use async_nats::client::PublishErrorKind;
use bytes::Bytes;
use rnats_itest::{connect, sync, within, RawClient, Server};

const LIMIT: Duration = Duration::from_secs(20);
const QUIET: Duration = Duration::from_secs(3);

#[tokio::test]
async fn client_rejects_payload_over_max() {
    let server = Server::start(&[]);
    within(LIMIT, "client-side max payload", async {
        let client = connect(&server).await;
        let max = client.server_info().max_payload;
        assert_eq!(max, 1_048_576);
        let err = client
            .publish("too.big", Bytes::from(vec![0u8; max + 1]))
            .await
            .expect_err("publishing max_payload + 1 bytes must fail");
        assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded, "{err}");
        // The connection is still usable afterwards.
        client
            .publish("ok.size", Bytes::from(vec![0u8; 16]))
            .await
            .unwrap();
        sync(&client).await;
    })
    .await;
}

#[tokio::test]
async fn raw_oversized_pub_is_rejected_and_closed() {
    let server = Server::start(&[]);
    within(LIMIT, "raw max payload", async {
        let mut c = RawClient::connect(server.port()).await;
        c.handshake().await;
        // Only the header is needed: the size is checked before the payload.
        c.send(b"PUB too.big 1048577\r\n").await;
        let (out, closed) = c.wait_closed(QUIET).await;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-ERR 'Maximum Payload Violation'\r\n"
        );
        assert!(
            closed,
            "connection must be closed after a payload violation"
        );
    })
    .await;
}

#[tokio::test]
async fn raw_pub_of_exactly_max_payload_is_accepted() {
    let server = Server::start(&[]);
    within(LIMIT, "raw exact max payload", async {
        let mut c = RawClient::connect(server.port()).await;
        c.handshake().await;
        let mut frame = b"PUB exact.max 1048576\r\n".to_vec();
        frame.extend(std::iter::repeat_n(b'x', 1_048_576));
        frame.extend_from_slice(b"\r\nPING\r\n");
        c.send(&frame).await;
        let (out, closed) = c.read_until_contains(b"PONG\r\n", QUIET).await;
        assert!(!closed);
        assert_eq!(out, b"PONG\r\n");
    })
    .await;
}

#[tokio::test]
async fn raw_invalid_subject_sub_keeps_connection() {
    let server = Server::start(&[]);
    within(LIMIT, "invalid subject", async {
        let mut c = RawClient::connect(server.port()).await;
        c.handshake().await;
        for bad in ["foo..bar", "foo.", ".foo", "foo.>.bar", ">.foo"] {
            c.send(format!("SUB {bad} 1\r\nPING\r\n").as_bytes()).await;
            let (out, closed) = c.read_until_contains(b"PONG\r\n", QUIET).await;
            assert!(!closed, "connection closed after SUB {bad}");
            assert_eq!(
                String::from_utf8_lossy(&out),
                "-ERR 'Invalid Subject'\r\nPONG\r\n",
                "reply to SUB {bad}"
            );
        }
        // The connection still works: a valid subscription delivers.
        c.send(b"SUB good.subj 2\r\nPUB good.subj 2\r\nok\r\nPING\r\n")
            .await;
        let (out, closed) = c.read_until_contains(b"PONG\r\n", QUIET).await;
        assert!(!closed);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "MSG good.subj 2 2\r\nok\r\nPONG\r\n"
        );
    })
    .await;
}

#[tokio::test]
async fn raw_pub_to_wildcard_subject_in_pedantic_mode() {
    let server = Server::start(&[]);
    within(LIMIT, "invalid publish subject", async {
        let mut sub = RawClient::connect(server.port()).await;
        sub.handshake().await;
        sub.send(b"SUB wc.> 1\r\nPING\r\n").await;
        let (out, _) = sub.read_until_contains(b"PONG\r\n", QUIET).await;
        assert_eq!(out, b"PONG\r\n");

        // Pedantic: the server complains but keeps the connection open and
        // (as nats-server does) still routes the message.
        let mut c = RawClient::connect(server.port()).await;
        c.handshake_with(r#"{"verbose":false,"pedantic":true,"protocol":1}"#)
            .await;
        c.send(b"PUB wc.* 1\r\nx\r\nPUB wc.> 1\r\ny\r\nPUB wc.ok 1\r\nz\r\nPING\r\n")
            .await;
        let (out, closed) = c.read_until_contains(b"PONG\r\n", QUIET).await;
        assert!(!closed);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-ERR 'Invalid Publish Subject'\r\n-ERR 'Invalid Publish Subject'\r\nPONG\r\n"
        );
        let (out, closed) = sub.read_until_contains(b"z\r\n", QUIET).await;
        assert!(!closed);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "MSG wc.* 1 1\r\nx\r\nMSG wc.> 1 1\r\ny\r\nMSG wc.ok 1 1\r\nz\r\n"
        );

        // Not pedantic: no complaint at all.
        let mut d = RawClient::connect(server.port()).await;
        d.handshake().await;
        d.send(b"PUB wc.* 1\r\nx\r\nPING\r\n").await;
        let (out, closed) = d.read_until_contains(b"PONG\r\n", QUIET).await;
        assert!(!closed);
        assert_eq!(out, b"PONG\r\n");
    })
    .await;
}

#[tokio::test]
async fn raw_connect_defaults_are_verbose_and_pedantic() {
    // A CONNECT that leaves out "verbose" and "pedantic" gets both: every
    // CONNECT/SUB/PUB is acknowledged with +OK and a wildcard publish is
    // flagged.
    let server = Server::start(&[]);
    within(LIMIT, "connect defaults", async {
        let mut c = RawClient::connect(server.port()).await;
        c.send(b"CONNECT {}\r\nSUB a 1\r\nPUB a 1\r\nx\r\nPUB a.* 1\r\ny\r\nPING\r\n")
            .await;
        let (out, closed) = c.read_until_contains(b"PONG\r\n", QUIET).await;
        assert!(!closed);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "+OK\r\n+OK\r\n+OK\r\nMSG a 1 1\r\nx\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nPONG\r\n"
        );
    })
    .await;
}

#[tokio::test]
async fn raw_garbage_is_rejected_and_closed() {
    let server = Server::start(&[]);
    within(LIMIT, "garbage", async {
        // After CONNECT.
        let mut c = RawClient::connect(server.port()).await;
        c.handshake().await;
        c.send(b"GARBAGE\r\n").await;
        let (out, closed) = c.wait_closed(QUIET).await;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-ERR 'Unknown Protocol Operation'\r\n"
        );
        assert!(closed, "connection must be closed after garbage");

        // As the very first thing, before CONNECT.
        let mut c = RawClient::connect(server.port()).await;
        c.send(b"HELLO WORLD\r\n").await;
        let (out, closed) = c.wait_closed(QUIET).await;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-ERR 'Unknown Protocol Operation'\r\n"
        );
        assert!(closed, "connection must be closed after garbage");

        // Others are unaffected.
        let client = connect(&server).await;
        sync(&client).await;
    })
    .await;
}
