//! Authentication from `authorization {}` (users lists, bcrypt, nkeys,
//! `no_auth_user`) and per-user permissions, seen through async-nats:
//! right credentials connect and work, wrong ones get an authorization
//! error; a permission violation is a `ServerError` event with nats-server's
//! text while the connection keeps working; `allow_responses` lets a
//! responder answer requests it could not publish to otherwise; a config
//! reload re-checks connected clients.

use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, Event, ServerError};
use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{next_msg, server_bin, sync, within, RawClient, Server};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const LIMIT: Duration = Duration::from_secs(30);
/// bcrypt of "pw-secret" and "tok-secret" (cost 4).
const PW_HASH: &str = "$2b$04$4lFCg3r3lKgNJugO5HWEw.nxWWLtyfvvrNLJ5QlzXBiuoNEsNLal.";
const TOKEN_HASH: &str = "$2b$04$CDQQsEwz.CdpQ.avLTIiDuiQufxgT/rpN6nj1pjE9CofZZlB4hBPy";

fn assert_auth_error(res: Result<async_nats::Client, async_nats::ConnectError>, what: &str) {
    match res {
        Ok(_) => panic!("{what}: connect unexpectedly succeeded"),
        Err(e) => assert_eq!(
            e.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {e}"
        ),
    }
}

/// Connects and returns a stream of the server errors the client is sent.
async fn connect_watching(
    opts: ConnectOptions,
    url: &str,
) -> (async_nats::Client, UnboundedReceiver<ServerError>) {
    let (tx, rx) = unbounded_channel();
    let client = opts
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(e) = e {
                    let _ = tx.send(e);
                }
            }
        })
        .connect(url)
        .await
        .expect("connect");
    (client, rx)
}

async fn next_error(rx: &mut UnboundedReceiver<ServerError>) -> String {
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(ServerError::Other(text))) => text,
        other => panic!("expected a server error, got {other:?}"),
    }
}

async fn pass(
    user: &str,
    pw: &str,
    url: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    ConnectOptions::with_user_and_password(user.into(), pw.into())
        .connect(url)
        .await
}

#[tokio::test]
async fn users_list_with_bcrypt_password() {
    let server = Server::start_with_config(&format!(
        "authorization {{ users = [ {{user: plain, password: p1}}, {{user: hashed, password: \"{PW_HASH}\"}} ] }}"
    ));
    within(LIMIT, "users", async {
        let ok = pass("plain", "p1", &server.url())
            .await
            .expect("plain user");
        assert!(ok.server_info().auth_required);
        assert!(ok.server_info().nonce.is_empty(), "no nkey users: no nonce");
        let hashed = pass("hashed", "pw-secret", &server.url())
            .await
            .expect("bcrypt password must match its clear text");
        sync(&hashed).await;
        assert_auth_error(
            pass("hashed", PW_HASH, &server.url()).await,
            "the hash itself",
        );
        assert_auth_error(pass("hashed", "pw-secreT", &server.url()).await, "wrong pw");
        assert_auth_error(pass("plain", "p2", &server.url()).await, "wrong plain pw");
        assert_auth_error(pass("nobody", "p1", &server.url()).await, "unknown user");
        assert_auth_error(
            ConnectOptions::new().connect(server.url()).await,
            "no credentials",
        );
    })
    .await;
    assert!(
        server
            .log()
            .contains("authentication error - User \"nobody\""),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn bcrypt_token() {
    let server = Server::start_with_config(&format!("authorization {{ token: \"{TOKEN_HASH}\" }}"));
    within(LIMIT, "bcrypt token", async {
        let ok = ConnectOptions::with_token("tok-secret".into())
            .connect(server.url())
            .await
            .expect("right token");
        sync(&ok).await;
        assert_auth_error(
            ConnectOptions::with_token("tok-secre".into())
                .connect(server.url())
                .await,
            "wrong token",
        );
    })
    .await;
    // The same hash given with --auth.
    let server = Server::start(&["--auth", TOKEN_HASH]);
    within(LIMIT, "bcrypt --auth", async {
        let ok = ConnectOptions::with_token("tok-secret".into())
            .connect(server.url())
            .await
            .expect("right token");
        sync(&ok).await;
        assert_auth_error(
            ConnectOptions::with_token(TOKEN_HASH.into())
                .connect(server.url())
                .await,
            "the hash itself",
        );
    })
    .await;
}

#[tokio::test]
async fn nkey_users_sign_the_nonce() {
    let alice = nkeys::KeyPair::new_user();
    let mallory = nkeys::KeyPair::new_user();
    let server = Server::start_with_config(&format!(
        "authorization {{ users = [ {{nkey: {}}}, {{user: u, password: p}} ] }}",
        alice.public_key()
    ));
    within(LIMIT, "nkeys", async {
        let ok = ConnectOptions::with_nkey(alice.seed().unwrap())
            .connect(server.url())
            .await
            .expect("the configured nkey must connect");
        let nonce = ok.server_info().nonce.clone();
        assert!(nonce.len() >= 11, "{nonce}");
        let mut sub = ok.subscribe("nk.x").await.unwrap();
        sync(&ok).await;
        ok.publish("nk.x", Bytes::from_static(b"hi")).await.unwrap();
        assert_eq!(&next_msg(&mut sub).await.payload[..], b"hi");

        assert_auth_error(
            ConnectOptions::with_nkey(mallory.seed().unwrap())
                .connect(server.url())
                .await,
            "unknown nkey",
        );
        // Password users still work next to nkey users.
        pass("u", "p", &server.url()).await.expect("password user");

        // Each connection gets its own nonce; a signature over another
        // connection's nonce is refused.
        let mut a = RawClient::connect(server.port()).await;
        let b = RawClient::connect(server.port()).await;
        let (na, nb) = (a.info()["nonce"].clone(), b.info()["nonce"].clone());
        assert_ne!(na, nb);
        let sig = alice.sign(nb.as_str().unwrap().as_bytes()).unwrap();
        let sig = sig_b64(&sig);
        a.send(
            format!(
                "CONNECT {{\"verbose\":false,\"nkey\":\"{}\",\"sig\":\"{sig}\"}}\r\nPING\r\n",
                alice.public_key()
            )
            .as_bytes(),
        )
        .await;
        let (out, closed) = a.wait_closed(Duration::from_secs(5)).await;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-ERR 'Authorization Violation'\r\n"
        );
        assert!(closed);
    })
    .await;
    let needle = format!("authentication error - Nkey \"{}\"", mallory.public_key());
    assert!(
        server.wait_for_log(&needle, Duration::from_secs(5)),
        "{}",
        server.log()
    );
}

/// base64url without padding, as clients send `sig`.
fn sig_b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

const PERMS_CONF: &str = r#"
# _ITEST.> is the harness's sync barrier subject.
authorization {
  users = [
    # Without its own permissions admin would get the defaults below.
    { user: admin, password: admin, permissions: { publish: ">", subscribe: ">" } }
    { user: a, password: a, permissions: {
        publish: { allow: ["a.>", "_INBOX.>", "_ITEST.>"], deny: ["a.secret.>"] }
        subscribe: { allow: ["a.>", "_INBOX.>", "_ITEST.>", "work.* workers"], deny: ["a.hidden"] }
    } }
    { user: svc, password: svc, permissions: {
        publish: "_ITEST.>"
        subscribe: ["svc.>", "_ITEST.>"]
        allow_responses: { max: 1, expires: "1m" }
    } }
    { user: guest }
  ]
  default_permissions: { publish: ["guest.>", "_ITEST.>"], subscribe: ["guest.>", "_ITEST.>"] }
}
no_auth_user: guest
"#;

#[tokio::test]
async fn publish_and_subscribe_permissions() {
    let server = Server::start_with_config(PERMS_CONF);
    within(LIMIT, "permissions", async {
        let url = server.url();
        let admin = pass("admin", "admin", &url).await.unwrap();
        let mut seen = admin.subscribe("a.>").await.unwrap();
        sync(&admin).await;
        let (a, mut errors) = connect_watching(
            ConnectOptions::with_user_and_password("a".into(), "a".into()),
            &url,
        )
        .await;

        // Refused publishes: an error each, nothing delivered.
        a.publish("b.x", Bytes::from_static(b"no")).await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Publish to \"b.x\""
        );
        a.publish("a.secret.k", Bytes::from_static(b"no"))
            .await
            .unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Publish to \"a.secret.k\""
        );
        // Allowed publish is delivered, and it is the first thing admin sees.
        a.publish("a.ok", Bytes::from_static(b"yes")).await.unwrap();
        let m = next_msg(&mut seen).await;
        assert_eq!((m.subject.as_str(), &m.payload[..]), ("a.ok", &b"yes"[..]));

        // Refused subscriptions.
        let _denied = a.subscribe("b.>").await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Subscription to \"b.>\""
        );
        let _hidden = a.subscribe("a.hidden").await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Subscription to \"a.hidden\""
        );
        let _wrong_q = a.queue_subscribe("work.x", "others".into()).await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Subscription to \"work.x\" using queue \"others\""
        );
        let _plain = a.subscribe("work.x").await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Subscription to \"work.x\""
        );
        // The queue named in the permission works.
        let mut workers = a.queue_subscribe("work.x", "workers".into()).await.unwrap();
        // A wildcard subscription does not receive a denied subject.
        let mut wide = a.subscribe("a.*").await.unwrap();
        sync(&a).await;
        admin
            .publish("work.x", Bytes::from_static(b"job"))
            .await
            .unwrap();
        admin
            .publish("a.hidden", Bytes::from_static(b"hidden"))
            .await
            .unwrap();
        admin
            .publish("a.shown", Bytes::from_static(b"shown"))
            .await
            .unwrap();
        assert_eq!(&next_msg(&mut workers).await.payload[..], b"job");
        assert_eq!(&next_msg(&mut wide).await.payload[..], b"shown");

        // After all that the connection is still up and working.
        assert_eq!(
            a.connection_state(),
            async_nats::connection::State::Connected
        );
        a.publish("a.after", Bytes::from_static(b"alive"))
            .await
            .unwrap();
        // admin's a.> also saw its own a.hidden and a.shown.
        let subjects: Vec<String> = [
            next_msg(&mut seen).await,
            next_msg(&mut seen).await,
            next_msg(&mut seen).await,
        ]
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
        assert_eq!(subjects, ["a.hidden", "a.shown", "a.after"]);
        assert!(errors.try_recv().is_err(), "no further errors expected");
    })
    .await;
    // Log lines reach the captured output asynchronously.
    for needle in [
        "\"$G/user:a\" - Publish Violation - Subject \"b.x\"",
        "Subscription Violation - Subject \"work.x\", Queue: \"others\", SID",
    ] {
        assert!(
            server.wait_for_log(needle, Duration::from_secs(5)),
            "{needle} not in {}",
            server.log()
        );
    }
}

#[tokio::test]
async fn no_auth_user_gets_its_permissions() {
    let server = Server::start_with_config(PERMS_CONF);
    within(LIMIT, "no_auth_user", async {
        let (guest, mut errors) = connect_watching(ConnectOptions::new(), &server.url()).await;
        let mut sub = guest.subscribe("guest.room").await.unwrap();
        sync(&guest).await;
        guest
            .publish("guest.room", Bytes::from_static(b"hi"))
            .await
            .unwrap();
        assert_eq!(&next_msg(&mut sub).await.payload[..], b"hi");
        guest.publish("a.x", Bytes::new()).await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Publish to \"a.x\""
        );
        // Credentials that are wrong are still refused.
        assert_auth_error(pass("a", "wrong", &server.url()).await, "wrong password");
    })
    .await;
}

#[tokio::test]
async fn allow_responses_grants_one_reply() {
    let server = Server::start_with_config(PERMS_CONF);
    within(LIMIT, "allow_responses", async {
        let url = server.url();
        let admin = pass("admin", "admin", &url).await.unwrap();
        let (svc, mut errors) = connect_watching(
            ConnectOptions::with_user_and_password("svc".into(), "svc".into()),
            &url,
        )
        .await;
        let mut requests = svc.subscribe("svc.time").await.unwrap();
        sync(&svc).await;

        let pending = tokio::spawn({
            let admin = admin.clone();
            async move { admin.request("svc.time", Bytes::from_static(b"?")).await }
        });
        let req = next_msg(&mut requests).await;
        let reply = req.reply.clone().expect("request has a reply subject");
        svc.publish(reply.clone(), Bytes::from_static(b"noon"))
            .await
            .unwrap();
        let answer = pending.await.unwrap().expect("the response must arrive");
        assert_eq!(&answer.payload[..], b"noon");

        // max: 1 — a second response to the same reply is refused.
        svc.publish(reply.clone(), Bytes::from_static(b"again"))
            .await
            .unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            format!("Permissions Violation for Publish to \"{reply}\"")
        );
        // And so is anything that is not a response.
        svc.publish("svc.time", Bytes::new()).await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Publish to \"svc.time\""
        );
        // Still connected; a second request can be answered.
        let pending = tokio::spawn({
            let admin = admin.clone();
            async move { admin.request("svc.time", Bytes::from_static(b"?")).await }
        });
        let req = next_msg(&mut requests).await;
        svc.publish(req.reply.unwrap(), Bytes::from_static(b"one"))
            .await
            .unwrap();
        assert_eq!(&pending.await.unwrap().unwrap().payload[..], b"one");
    })
    .await;
}

#[tokio::test]
async fn reload_applies_new_users_and_permissions() {
    let before = "authorization { users = [ {user: a, password: one}, {user: b, password: b} ] }\n";
    let server = Server::start_with_config(before);
    within(LIMIT, "reload", async {
        let url = server.url();
        let (a_events_tx, mut a_events) = unbounded_channel();
        let a = ConnectOptions::with_user_and_password("a".into(), "one".into())
            .max_reconnects(Some(1))
            .event_callback(move |e| {
                let tx = a_events_tx.clone();
                async move {
                    let _ = tx.send(e);
                }
            })
            .connect(&url)
            .await
            .unwrap();
        sync(&a).await;
        let (b, mut b_errors) = connect_watching(
            ConnectOptions::with_user_and_password("b".into(), "b".into()),
            &url,
        )
        .await;
        let mut b_sub = b.subscribe("open.x").await.unwrap();
        let mut b_kept = b.subscribe("kept.x").await.unwrap();
        sync(&b).await;

        // a's password changes; b loses the right to subscribe to open.>.
        let path = server.config_path().unwrap().to_path_buf();
        std::fs::write(
            &path,
            "authorization { users = [ {user: a, password: two}, \
             {user: b, password: b, permissions: { subscribe: { deny: \"open.>\" } } } ] }\n",
        )
        .unwrap();
        server.signal(libc::SIGHUP);
        assert!(
            server.wait_for_log("Reloaded server configuration", Duration::from_secs(5)),
            "{}",
            server.log()
        );

        // a is told and disconnected.
        let mut told = false;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), a_events.recv()).await
        {
            if matches!(e, Event::ServerError(ServerError::AuthorizationViolation)) {
                told = true;
                break;
            }
        }
        assert!(
            told,
            "a must get an authorization violation after the reload"
        );
        assert_auth_error(pass("a", "one", &url).await, "old password after reload");
        pass("a", "two", &url)
            .await
            .expect("new password after reload");

        // b stays, but its subscription to open.x is gone.
        assert_eq!(
            next_error(&mut b_errors).await,
            "Permissions Violation for Subscription to \"open.x\" (sid \"1\")"
        );
        let admin = pass("b", "b", &url).await.unwrap();
        admin.publish("open.x", Bytes::new()).await.unwrap();
        admin
            .publish("kept.x", Bytes::from_static(b"k"))
            .await
            .unwrap();
        assert_eq!(&next_msg(&mut b_kept).await.payload[..], b"k");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), b_sub.next())
                .await
                .map_or(true, |m| m.is_none()),
            "the removed subscription must not receive"
        );
    })
    .await;
}

#[test]
fn bad_auth_config_fails_to_load() {
    let cases = [
        (
            "authorization { users = [ {user: a, permissions: { publish: \"a\", bogus: 1 } } ] }",
            "Unknown field \"bogus\" parsing permissions",
        ),
        (
            "authorization { users = [ {nkey: UNOTAKEY} ] }",
            "Not a valid public nkey for a user",
        ),
        (
            "no_auth_user: ghost\nauthorization { users = [ {user: a, password: b} ] }",
            "no_auth_user: \"ghost\" not present as user or nkey",
        ),
    ];
    for (text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.conf");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(server_bin())
            .arg("-c")
            .arg(&path)
            .arg("-t")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}: must fail, got {all}");
        assert!(all.contains(want), "{text}: want {want:?} in {all}");
    }
}

#[tokio::test]
async fn jetstream_works_for_permissioned_users() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&format!(
        r#"
        jetstream {{ store_dir: "{}" }}
        authorization {{ users = [
          {{ user: js, password: js, permissions: {{
              publish: ["$JS.API.>", "$JS.ACK.>", "orders.>", "_ITEST.>"]
              subscribe: ["_INBOX.>", "_ITEST.>"]
          }} }}
          {{ user: nojs, password: nojs, permissions: {{ publish: {{ deny: "$JS.API.>" }} }} }}
        ] }}
        "#,
        store.path().display()
    ));
    within(LIMIT, "jetstream with permissions", async {
        let url = server.url();
        let client = pass("js", "js", &url).await.unwrap();
        let js = async_nats::jetstream::new(client.clone());
        let mut stream = js
            .create_stream(rnats_itest::mem_config("ORDERS", &["orders.>"]))
            .await
            .expect("the JetStream API answers a permitted user");
        // The PubAck comes back from the server's internal client.
        let ack = js
            .publish("orders.1", Bytes::from_static(b"o1"))
            .await
            .unwrap()
            .await
            .expect("publish ack");
        assert_eq!(ack.sequence, 1);
        assert_eq!(stream.info().await.unwrap().state.messages, 1);
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("c".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut msgs = consumer.fetch().max_messages(1).messages().await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), msgs.next())
            .await
            .expect("a message within 5s")
            .expect("one message")
            .expect("not an error");
        assert_eq!(&m.payload[..], b"o1");
        m.ack().await.expect("ack is a permitted publish");

        let (nojs, mut errors) = connect_watching(
            ConnectOptions::with_user_and_password("nojs".into(), "nojs".into()),
            &url,
        )
        .await;
        nojs.publish("$JS.API.INFO", Bytes::new()).await.unwrap();
        assert_eq!(
            next_error(&mut errors).await,
            "Permissions Violation for Publish to \"$JS.API.INFO\""
        );
        sync(&nojs).await;
    })
    .await;
}
