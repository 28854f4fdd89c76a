//! Accounts from the config file: isolation (the same subject in two
//! accounts never crosses), stream exports/imports with a prefix and with a
//! `to` mapping, service exports/imports for request-reply (singleton and
//! streamed responses), and nats-server's config errors for bad imports.

use std::time::Duration;

use async_nats::ConnectOptions;
use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{next_msg, sync, within, Server};

const LIMIT: Duration = Duration::from_secs(20);

const CONFIG: &str = r#"
accounts {
  A {
    users = [{user: a, password: a}]
    exports = [
      {stream: "news.>"}
      {service: "time.>"}
      {service: "feed", response: stream}
      {stream: "private.>", accounts: [C]}
    ]
  }
  B {
    users = [{user: b, password: b}]
    imports = [
      {stream: {account: A, subject: "news.>"}, prefix: "a"}
      {service: {account: A, subject: "time.>"}, to: "clock.>"}
      {service: {account: A, subject: "feed"}}
    ]
  }
  C {
    users = [{user: c, password: c}]
    imports = [{stream: {account: A, subject: "private.>"}, to: "from_a.>"}]
  }
}
"#;

async fn login(server: &Server, user: &str) -> async_nats::Client {
    ConnectOptions::with_user_and_password(user.into(), user.into())
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"))
}

async fn nothing_within(sub: &mut async_nats::Subscriber, wait: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(wait, sub.next()).await {
        panic!("unexpected message on {}: {:?}", m.subject, m.payload);
    }
}

#[tokio::test]
async fn same_subject_in_two_accounts_never_crosses() {
    let server = Server::start_with_config(CONFIG);
    within(LIMIT, "isolation", async {
        let a = login(&server, "a").await;
        let b = login(&server, "b").await;
        let mut in_a = a.subscribe("shared.subject").await.unwrap();
        let mut in_b = b.subscribe("shared.subject").await.unwrap();
        sync(&a).await;
        sync(&b).await;
        a.publish("shared.subject", Bytes::from_static(b"from a"))
            .await
            .unwrap();
        a.flush().await.unwrap();
        assert_eq!(&next_msg(&mut in_a).await.payload[..], b"from a");
        nothing_within(&mut in_b, Duration::from_millis(300)).await;
        b.publish("shared.subject", Bytes::from_static(b"from b"))
            .await
            .unwrap();
        assert_eq!(&next_msg(&mut in_b).await.payload[..], b"from b");
        nothing_within(&mut in_a, Duration::from_millis(300)).await;
    })
    .await;
}

#[tokio::test]
async fn stream_import_with_prefix_and_mapping() {
    let server = Server::start_with_config(CONFIG);
    within(LIMIT, "stream imports", async {
        let a = login(&server, "a").await;
        let b = login(&server, "b").await;
        let c = login(&server, "c").await;
        let mut b_news = b.subscribe("a.news.>").await.unwrap();
        let mut b_plain = b.subscribe("news.>").await.unwrap();
        let mut c_private = c.subscribe("from_a.>").await.unwrap();
        sync(&b).await;
        sync(&c).await;
        let mut b_private = b.subscribe(">").await.unwrap();
        // The catch-all sees the barrier's own message first.
        sync(&b).await;
        assert!(next_msg(&mut b_private)
            .await
            .subject
            .starts_with("_ITEST.sync."));
        a.publish("news.sport", Bytes::from_static(b"goal"))
            .await
            .unwrap();
        a.publish("private.x.y", Bytes::from_static(b"secret"))
            .await
            .unwrap();
        a.flush().await.unwrap();
        let m = next_msg(&mut b_news).await;
        assert_eq!(
            (m.subject.as_str(), &m.payload[..]),
            ("a.news.sport", &b"goal"[..])
        );
        let m = next_msg(&mut c_private).await;
        assert_eq!(
            (m.subject.as_str(), &m.payload[..]),
            ("from_a.x.y", &b"secret"[..])
        );
        // B's catch-all sees the prefixed news only, never A's private export.
        let m = next_msg(&mut b_private).await;
        assert_eq!(m.subject.as_str(), "a.news.sport");
        nothing_within(&mut b_private, Duration::from_millis(300)).await;
        nothing_within(&mut b_plain, Duration::from_millis(10)).await;
    })
    .await;
}

#[tokio::test]
async fn service_import_request_reply_across_accounts() {
    let server = Server::start_with_config(CONFIG);
    within(LIMIT, "service imports", async {
        let a = login(&server, "a").await;
        let b = login(&server, "b").await;
        let mut svc = a.subscribe("time.>").await.unwrap();
        sync(&a).await;
        let responder = {
            let a = a.clone();
            tokio::spawn(async move {
                while let Some(m) = svc.next().await {
                    let reply = m.reply.clone().expect("request has a reply");
                    // The exporter sees its own subject and a minted reply, never B's inbox.
                    assert!(reply.starts_with("_R_."), "reply {reply}");
                    let answer = format!("{} {}", m.subject, String::from_utf8_lossy(&m.payload));
                    a.publish(reply, answer.into()).await.unwrap();
                }
            })
        };
        for zone in ["utc", "kst"] {
            let resp = b
                .request(format!("clock.{zone}"), Bytes::from_static(b"now?"))
                .await
                .expect("answered across the import");
            assert_eq!(
                String::from_utf8_lossy(&resp.payload),
                format!("time.{zone} now?")
            );
        }
        responder.abort();
    })
    .await;
}

#[tokio::test]
async fn service_import_without_responder_is_no_responders() {
    let server = Server::start_with_config(CONFIG);
    within(LIMIT, "no responders", async {
        let b = login(&server, "b").await;
        let err = b
            .request("clock.x", Bytes::from_static(b"?"))
            .await
            .expect_err("nobody serves time in A");
        assert_eq!(
            err.kind(),
            async_nats::RequestErrorKind::NoResponders,
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn streamed_service_responses_all_arrive() {
    let server = Server::start_with_config(CONFIG);
    within(LIMIT, "stream responses", async {
        let a = login(&server, "a").await;
        let b = login(&server, "b").await;
        let mut svc = a.subscribe("feed").await.unwrap();
        sync(&a).await;
        let inbox = b.new_inbox();
        let mut answers = b.subscribe(inbox.clone()).await.unwrap();
        sync(&b).await;
        b.publish_with_reply("feed", inbox, Bytes::from_static(b"go"))
            .await
            .unwrap();
        let req = next_msg(&mut svc).await;
        let reply = req.reply.expect("reply");
        for i in 0..3 {
            a.publish(reply.clone(), format!("part {i}").into())
                .await
                .unwrap();
        }
        for i in 0..3 {
            let m = next_msg(&mut answers).await;
            assert_eq!(String::from_utf8_lossy(&m.payload), format!("part {i}"));
        }
    })
    .await;
}

#[tokio::test]
async fn singleton_service_route_closes_after_the_first_answer() {
    let server = Server::start_with_config(CONFIG);
    within(LIMIT, "singleton", async {
        let a = login(&server, "a").await;
        let b = login(&server, "b").await;
        let mut svc = a.subscribe("time.>").await.unwrap();
        sync(&a).await;
        let inbox = b.new_inbox();
        let mut answers = b.subscribe(inbox.clone()).await.unwrap();
        sync(&b).await;
        b.publish_with_reply("clock.x", inbox, Bytes::from_static(b"?"))
            .await
            .unwrap();
        let reply = next_msg(&mut svc).await.reply.expect("reply");
        a.publish(reply.clone(), "one".into()).await.unwrap();
        a.publish(reply.clone(), "two".into()).await.unwrap();
        assert_eq!(&next_msg(&mut answers).await.payload[..], b"one");
        nothing_within(&mut answers, Duration::from_millis(300)).await;
    })
    .await;
}

#[test]
fn bad_imports_fail_like_nats_server() {
    let cases = [
        (
            "accounts { A { users = [{user: a, password: a}], imports = [{stream: {account: B, subject: \"x.>\"}}] }, B {} }",
            "Error adding stream import \"x.>\": stream import not authorized",
        ),
        (
            "accounts { A { imports = [{service: {account: Z, subject: \"x\"}}] } }",
            "\"Z\" account not defined for service import",
        ),
    ];
    for (config, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.conf");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(rnats_itest::server_bin())
            .args(["-t", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{config} accepted");
        assert!(text.contains(want), "{config}: {text}");
    }
}

#[tokio::test]
async fn account_limits_bound_connections_subscriptions_and_payload() {
    let server = Server::start_with_config(
        r#"
accounts {
  L {
    users = [{user: l, password: l}]
    limits { max_connections: 1, max_subscriptions: 2, max_payload: 100 }
  }
}
"#,
    );
    within(LIMIT, "account limits", async {
        let first = login(&server, "l").await;
        // The second connection of the account is refused.
        let mut raw = rnats_itest::RawClient::connect(server.port()).await;
        raw.send(b"CONNECT {\"user\":\"l\",\"pass\":\"l\",\"verbose\":false}\r\nPING\r\n")
            .await;
        let (out, closed) = raw.wait_closed(Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("-ERR 'maximum account active connections exceeded'"),
            "{text}"
        );
        assert!(closed, "{text}");
        // Subscriptions beyond the account's bound are refused.
        let mut raw = rnats_itest::RawClient::connect(server.port()).await;
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        raw.send(
            b"CONNECT {\"user\":\"l\",\"pass\":\"l\",\"verbose\":false}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n",
        )
        .await;
        let (out, _) = raw
            .read_until_contains(b"PONG", Duration::from_secs(5))
            .await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("-ERR 'maximum subscriptions exceeded'"), "{text}");
        // A payload over the account's max_payload closes the connection.
        let mut body = b"PUB a 101\r\n".to_vec();
        body.extend_from_slice(&[b'x'; 101]);
        body.extend_from_slice(b"\r\n");
        raw.send(&body).await;
        let (out, closed) = raw.wait_closed(Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("-ERR 'Maximum Payload Violation'"), "{text}");
        assert!(closed);
    })
    .await;
}
