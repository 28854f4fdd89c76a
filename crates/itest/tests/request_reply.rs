//! Request/reply: a single request, 100 concurrent in-flight requests each
//! answered correctly, the no-responders status (503) when nobody subscribes,
//! a timeout when a subscriber never answers, and reply subjects seen by a
//! raw publisher/subscriber pair.

use std::time::{Duration, Instant};

use async_nats::{RequestErrorKind, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, sync, within, RawClient, Server};

const LIMIT: Duration = Duration::from_secs(20);

/// Spawn a responder that answers each request with `reply_prefix + payload`.
fn spawn_responder(client: async_nats::Client, mut sub: Subscriber, reply_prefix: &'static str) {
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let reply = m.reply.expect("request carries a reply subject");
            let mut body = reply_prefix.as_bytes().to_vec();
            body.extend_from_slice(&m.payload);
            client.publish(reply, Bytes::from(body)).await.unwrap();
        }
    });
}

#[tokio::test]
async fn request_gets_response() {
    let server = Server::start(&[]);
    within(LIMIT, "request", async {
        let responder = connect(&server).await;
        let sub = responder.subscribe("svc.echo").await.unwrap();
        sync(&responder).await;
        spawn_responder(responder, sub, "re:");

        let requester = connect(&server).await;
        let resp = requester
            .request("svc.echo", Bytes::from_static(b"ping"))
            .await
            .unwrap();
        assert_eq!(&resp.payload[..], b"re:ping");
        // The response is delivered on the requester's inbox.
        assert!(
            resp.subject.starts_with("_INBOX."),
            "subject {}",
            resp.subject
        );
    })
    .await;
}

#[tokio::test]
async fn hundred_concurrent_requests() {
    let server = Server::start(&[]);
    within(LIMIT, "concurrent requests", async {
        let responder = connect(&server).await;
        let sub = responder.subscribe("svc.concurrent").await.unwrap();
        sync(&responder).await;
        spawn_responder(responder, sub, "ok-");

        let requester = connect(&server).await;
        let futs = (0..100).map(|i| {
            let requester = requester.clone();
            async move {
                let resp = requester
                    .request("svc.concurrent", Bytes::from(i.to_string()))
                    .await
                    .unwrap_or_else(|e| panic!("request {i} failed: {e}"));
                (i, resp)
            }
        });
        let results = futures::future::join_all(futs).await;
        assert_eq!(results.len(), 100);
        for (i, resp) in results {
            assert_eq!(resp.payload, format!("ok-{i}").as_bytes());
        }
    })
    .await;
}

#[tokio::test]
async fn request_with_no_responders() {
    let server = Server::start(&[]);
    within(LIMIT, "no responders", async {
        let client = connect(&server).await;
        let started = Instant::now();
        let err = client
            .request("svc.nobody.home", Bytes::from_static(b"anyone?"))
            .await
            .expect_err("request without responders must fail");
        assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
        // No-responders is an immediate answer from the server, not a timeout.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no-responders took {:?}",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn request_times_out_when_responder_is_silent() {
    let server = Server::start(&[]);
    within(LIMIT, "request timeout", async {
        let silent = connect(&server).await;
        let mut sub = silent.subscribe("svc.silent").await.unwrap();
        sync(&silent).await;

        let client = connect(&server).await;
        let started = Instant::now();
        let req = async_nats::Request::new()
            .payload(Bytes::from_static(b"hello?"))
            .timeout(Some(Duration::from_millis(500)));
        let err = client
            .send_request("svc.silent", req)
            .await
            .expect_err("request to a silent responder must time out");
        assert_eq!(err.kind(), RequestErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= Duration::from_millis(450));
        // The silent responder did receive the request.
        let m = rnats_itest::next_msg(&mut sub).await;
        assert_eq!(&m.payload[..], b"hello?");
        assert!(m.reply.is_some());
    })
    .await;
}

#[tokio::test]
async fn raw_reply_subject_is_forwarded() {
    let server = Server::start(&[]);
    within(LIMIT, "raw reply subject", async {
        let mut sub = RawClient::connect(server.port()).await;
        sub.handshake().await;
        sub.send(b"SUB rr.q 7\r\nPING\r\n").await;
        let (out, _) = sub
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert_eq!(out, b"PONG\r\n");

        let mut publ = RawClient::connect(server.port()).await;
        publ.handshake().await;
        publ.send(b"PUB rr.q my.reply.box 5\r\nhello\r\n").await;

        let want: &[u8] = b"MSG rr.q 7 my.reply.box 5\r\nhello\r\n";
        let (out, closed) = sub.read_until_contains(want, Duration::from_secs(5)).await;
        assert!(!closed);
        assert_eq!(out, want);
    })
    .await;
}
