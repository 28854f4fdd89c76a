//! Echo suppression: a connection created with `ConnectOptions::no_echo()`
//! does not receive its own publications (but does receive others'), while a
//! normal connection receives everything including its own messages; also the
//! raw `"echo":false` CONNECT option.

use std::time::Duration;

use bytes::Bytes;
use rnats_itest::{connect, next_msg, sync, sync_no_echo, within, RawClient, Server};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn no_echo_connection_skips_own_messages() {
    let server = Server::start(&[]);
    within(LIMIT, "no_echo", async {
        let quiet = async_nats::ConnectOptions::new()
            .no_echo()
            .connect(server.url())
            .await
            .unwrap();
        let normal = connect(&server).await;
        let mut quiet_sub = quiet.subscribe("echo.t").await.unwrap();
        let mut normal_sub = normal.subscribe("echo.t").await.unwrap();
        sync_no_echo(&quiet).await;
        sync(&normal).await;

        // The no-echo connection publishes: only the other connection sees it.
        quiet
            .publish("echo.t", Bytes::from_static(b"from-quiet"))
            .await
            .unwrap();
        sync_no_echo(&quiet).await;
        assert_eq!(&next_msg(&mut normal_sub).await.payload[..], b"from-quiet");

        // Now the normal connection publishes (strictly after the server
        // routed "from-quiet"). If "from-quiet" had been echoed, the no-echo
        // subscriber would see it first.
        normal
            .publish("echo.t", Bytes::from_static(b"from-normal"))
            .await
            .unwrap();
        sync(&normal).await;
        assert_eq!(&next_msg(&mut quiet_sub).await.payload[..], b"from-normal");
        // A normal connection does get its own message back.
        assert_eq!(&next_msg(&mut normal_sub).await.payload[..], b"from-normal");
    })
    .await;
}

#[tokio::test]
async fn raw_echo_false() {
    let server = Server::start(&[]);
    within(LIMIT, "raw echo false", async {
        let mut c = RawClient::connect(server.port()).await;
        c.handshake_with(r#"{"verbose":false,"pedantic":false,"echo":false,"protocol":1}"#)
            .await;
        c.send(b"SUB e.raw 1\r\nPUB e.raw 4\r\nself\r\nPING\r\n")
            .await;
        let (out, closed) = c
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(!closed);
        assert_eq!(out, b"PONG\r\n", "own message echoed despite echo:false");

        // The default (echo on) delivers own messages.
        let mut d = RawClient::connect(server.port()).await;
        d.handshake().await;
        d.send(b"SUB e.raw 1\r\nPUB e.raw 4\r\nself\r\nPING\r\n")
            .await;
        let (out, _) = d
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "MSG e.raw 1 4\r\nself\r\nPONG\r\n"
        );
    })
    .await;
}
