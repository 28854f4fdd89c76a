//! Message headers (HPUB/HMSG): headers round-trip with their payload,
//! multi-value headers keep their order, header-only messages (empty payload)
//! arrive, and the raw HMSG frame carries exact header/total sizes.

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use rnats_itest::{connect, next_msg, sync, within, RawClient, Server};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn headers_round_trip() {
    let server = Server::start(&[]);
    within(LIMIT, "headers round trip", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut sub = sub_client.subscribe("hdr.rt").await.unwrap();
        sync(&sub_client).await;

        let mut headers = HeaderMap::new();
        headers.insert("X-Trace-Id", "abc-123");
        headers.insert("Content-Type", "application/json");
        headers.insert("X-Empty-ish", " spaced value ");
        pub_client
            .publish_with_headers("hdr.rt", headers, Bytes::from_static(b"{\"k\":1}"))
            .await
            .unwrap();
        sync(&pub_client).await;

        let m = next_msg(&mut sub).await;
        assert_eq!(&m.payload[..], b"{\"k\":1}");
        let h = m.headers.expect("message has headers");
        assert_eq!(h.get("X-Trace-Id").map(|v| v.as_str()), Some("abc-123"));
        assert_eq!(
            h.get("Content-Type").map(|v| v.as_str()),
            Some("application/json")
        );
        assert!(h.get("X-Empty-ish").is_some());
        assert!(h.get("X-Missing").is_none());
    })
    .await;
}

#[tokio::test]
async fn multi_value_header_order_preserved() {
    let server = Server::start(&[]);
    within(LIMIT, "multi-value headers", async {
        let c = connect(&server).await;
        let mut sub = c.subscribe("hdr.multi").await.unwrap();
        sync(&c).await;

        let mut headers = HeaderMap::new();
        for v in ["one", "two", "three", "four"] {
            headers.append("X-Multi", v);
        }
        headers.insert("X-Single", "solo");
        c.publish_with_headers("hdr.multi", headers, Bytes::from_static(b"p"))
            .await
            .unwrap();
        sync(&c).await;

        let m = next_msg(&mut sub).await;
        let h = m.headers.expect("message has headers");
        let values: Vec<&str> = h.get_all("X-Multi").map(|v| v.as_str()).collect();
        assert_eq!(values, vec!["one", "two", "three", "four"]);
        assert_eq!(h.get("X-Single").map(|v| v.as_str()), Some("solo"));
        assert_eq!(&m.payload[..], b"p");
    })
    .await;
}

#[tokio::test]
async fn header_only_message() {
    let server = Server::start(&[]);
    within(LIMIT, "header-only message", async {
        let c = connect(&server).await;
        let mut sub = c.subscribe("hdr.only").await.unwrap();
        sync(&c).await;

        let mut headers = HeaderMap::new();
        headers.insert("X-Only", "headers");
        c.publish_with_headers("hdr.only", headers, Bytes::new())
            .await
            .unwrap();
        sync(&c).await;

        let m = next_msg(&mut sub).await;
        assert!(m.payload.is_empty(), "payload {:?}", m.payload);
        let h = m.headers.expect("message has headers");
        assert_eq!(h.get("X-Only").map(|v| v.as_str()), Some("headers"));
    })
    .await;
}

#[tokio::test]
async fn raw_hpub_hmsg_frame_is_exact() {
    let server = Server::start(&[]);
    within(LIMIT, "raw HPUB/HMSG", async {
        let mut sub = RawClient::connect(server.port()).await;
        assert_eq!(sub.info()["headers"], serde_json::Value::Bool(true));
        // Headers must be enabled in CONNECT to receive HMSG.
        sub.handshake_with(r#"{"verbose":false,"pedantic":false,"headers":true,"protocol":1}"#)
            .await;
        sub.send(b"SUB h.raw 3\r\nPING\r\n").await;
        let (out, _) = sub
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert_eq!(out, b"PONG\r\n");

        let mut publ = RawClient::connect(server.port()).await;
        publ.handshake_with(r#"{"verbose":false,"pedantic":false,"headers":true,"protocol":1}"#)
            .await;
        let hdr: &[u8] = b"NATS/1.0\r\nA: 1\r\nA: 2\r\nB: x\r\n\r\n";
        let payload: &[u8] = b"body\r\nmore";
        let mut frame = format!(
            "HPUB h.raw reply.to {} {}\r\n",
            hdr.len(),
            hdr.len() + payload.len()
        )
        .into_bytes();
        frame.extend_from_slice(hdr);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        // Header-only message too.
        frame.extend_from_slice(format!("HPUB h.raw {} {}\r\n", hdr.len(), hdr.len()).as_bytes());
        frame.extend_from_slice(hdr);
        frame.extend_from_slice(b"\r\n");
        publ.send(&frame).await;

        let mut want = format!(
            "HMSG h.raw 3 reply.to {} {}\r\n",
            hdr.len(),
            hdr.len() + payload.len()
        )
        .into_bytes();
        want.extend_from_slice(hdr);
        want.extend_from_slice(payload);
        want.extend_from_slice(b"\r\n");
        want.extend_from_slice(format!("HMSG h.raw 3 {} {}\r\n", hdr.len(), hdr.len()).as_bytes());
        want.extend_from_slice(hdr);
        want.extend_from_slice(b"\r\n");

        let (out, closed) = sub.read_until_contains(&want, Duration::from_secs(5)).await;
        assert!(!closed);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want)
        );
    })
    .await;
}
