//! Unsubscribing: `unsubscribe_after(n)` delivers exactly n messages and the
//! server drops the interest afterwards, `unsubscribe()` stops delivery
//! (observed through no-responders), the raw `UNSUB <sid> <max>` form, and
//! draining a subscription and a whole client delivers what was already sent.

use std::time::Duration;

use async_nats::RequestErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, next_msg, sync, within, RawClient, Server};

const LIMIT: Duration = Duration::from_secs(20);

/// Assert that the server has no interest left on `subject` (a request gets an
/// immediate no-responders status).
async fn assert_no_interest(client: &async_nats::Client, subject: &'static str) {
    let err = client
        .request(subject, Bytes::from_static(b"?"))
        .await
        .expect_err("expected no responders");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
}

#[tokio::test]
async fn unsubscribe_after_delivers_exactly_n() {
    let server = Server::start(&[]);
    within(LIMIT, "unsubscribe_after", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut sub = sub_client.subscribe("unsub.after").await.unwrap();
        sub.unsubscribe_after(5).await.unwrap();
        sync(&sub_client).await;

        for i in 0..10u32 {
            pub_client
                .publish("unsub.after", Bytes::from(i.to_string()))
                .await
                .unwrap();
        }
        sync(&pub_client).await;

        for i in 0..5u32 {
            let m = next_msg(&mut sub).await;
            assert_eq!(m.payload, i.to_string().as_bytes());
        }
        // Then the stream ends.
        let end = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("subscription did not end after its max");
        assert!(end.is_none(), "got a message past the max: {end:?}");
        // And the server dropped its interest.
        assert_no_interest(&pub_client, "unsub.after").await;
    })
    .await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = Server::start(&[]);
    within(LIMIT, "unsubscribe", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut sub = sub_client.subscribe("unsub.now").await.unwrap();
        let mut other = sub_client.subscribe("unsub.now").await.unwrap();
        sync(&sub_client).await;

        pub_client
            .publish("unsub.now", Bytes::from_static(b"first"))
            .await
            .unwrap();
        sync(&pub_client).await;
        assert_eq!(&next_msg(&mut sub).await.payload[..], b"first");
        assert_eq!(&next_msg(&mut other).await.payload[..], b"first");

        sub.unsubscribe().await.unwrap();
        sync(&sub_client).await;
        pub_client
            .publish("unsub.now", Bytes::from_static(b"second"))
            .await
            .unwrap();
        sync(&pub_client).await;
        // The remaining subscription still gets messages...
        assert_eq!(&next_msg(&mut other).await.payload[..], b"second");
        // ...and after removing it too, nobody is interested.
        other.unsubscribe().await.unwrap();
        sync(&sub_client).await;
        assert_no_interest(&pub_client, "unsub.now").await;
        assert!(sub.next().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn raw_unsub_with_max() {
    let server = Server::start(&[]);
    within(LIMIT, "raw UNSUB max", async {
        let mut c = RawClient::connect(server.port()).await;
        c.handshake().await;
        c.send(b"SUB raw.u 1\r\nSUB raw.u 2\r\nUNSUB 1 2\r\nUNSUB 2\r\n")
            .await;
        c.send(b"PUB raw.u 1\r\na\r\nPUB raw.u 1\r\nb\r\nPUB raw.u 1\r\nc\r\nPING\r\n")
            .await;
        let (out, closed) = c
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(!closed);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "MSG raw.u 1 1\r\na\r\nMSG raw.u 1 1\r\nb\r\nPONG\r\n"
        );
        // UNSUB of an unknown sid is silently accepted.
        c.send(b"UNSUB 99\r\nPING\r\n").await;
        let (out, closed) = c
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(!closed);
        assert_eq!(out, b"PONG\r\n");
    })
    .await;
}

#[tokio::test]
async fn drain_subscription_delivers_pending_then_ends() {
    let server = Server::start(&[]);
    within(LIMIT, "subscription drain", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut sub = sub_client.subscribe("drain.sub").await.unwrap();
        let mut barrier = sub_client.subscribe("drain.barrier").await.unwrap();
        sync(&sub_client).await;
        for i in 0..100u32 {
            pub_client
                .publish("drain.sub", Bytes::from(i.to_string()))
                .await
                .unwrap();
        }
        pub_client
            .publish("drain.barrier", Bytes::new())
            .await
            .unwrap();
        sync(&pub_client).await;
        // Messages from one publisher arrive in order, so once the barrier
        // is here all 100 are queued client-side, none consumed yet.
        next_msg(&mut barrier).await;

        sub.drain().await.unwrap();
        let mut rest = Vec::new();
        while let Some(m) = sub.next().await {
            rest.push(m.payload);
        }
        assert_eq!(rest.len(), 100);
        for (i, p) in rest.iter().enumerate() {
            assert_eq!(p, i.to_string().as_bytes());
        }
        assert_no_interest(&pub_client, "drain.sub").await;
    })
    .await;
}

#[tokio::test]
async fn drain_client_closes_subscriptions() {
    let server = Server::start(&[]);
    within(LIMIT, "client drain", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut s1 = sub_client.subscribe("drain.c1").await.unwrap();
        let mut s2 = sub_client.subscribe("drain.c2").await.unwrap();
        let mut barrier = sub_client.subscribe("drain.barrier").await.unwrap();
        sync(&sub_client).await;
        pub_client
            .publish("drain.c1", Bytes::from_static(b"x"))
            .await
            .unwrap();
        pub_client
            .publish("drain.c2", Bytes::from_static(b"y"))
            .await
            .unwrap();
        pub_client
            .publish("drain.barrier", Bytes::new())
            .await
            .unwrap();
        sync(&pub_client).await;
        next_msg(&mut barrier).await;
        assert_eq!(&next_msg(&mut s1).await.payload[..], b"x");

        sub_client.drain().await.unwrap();
        // s2's already-sent message is still delivered, then both end.
        let mut got = Vec::new();
        while let Some(m) = s2.next().await {
            got.push(m.payload);
        }
        assert_eq!(got, vec![Bytes::from_static(b"y")]);
        assert!(s1.next().await.is_none());
        assert_no_interest(&pub_client, "drain.c1").await;
        assert_no_interest(&pub_client, "drain.c2").await;
    })
    .await;
}
