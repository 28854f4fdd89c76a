//! Operator-mode credentials over time: a connection whose user JWT (or
//! account JWT) expires is closed with nats-server's `-ERR`, and the client
//! can come back with fresh credentials; JWTs in the first (v1) format, as
//! older tooling issued them, are accepted with the same meaning. Every test
//! passes against the reference nats-server too (`RNATS_SERVER_BIN`).

use std::time::Duration;

use async_nats::ConnectOptions;
use base64::Engine;
use futures::StreamExt;
use nkeys::KeyPair;
use rnats_itest::{next_msg, sync, within, RawClient, Server};
use rnats_server::jwt::claims::{AccountClaims, OperatorClaims, UserClaims};
use rnats_server::jwt::{encode, encode_v1, now};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

/// An operator with a system account and account A (expiring at
/// `account_exp`, 0 = never), served from a MEMORY resolver.
struct Org {
    server: Server,
    a: KeyPair,
}

fn org(account_exp: i64) -> Org {
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let a = KeyPair::new_account();
    let mut opc = OperatorClaims {
        sub: op.public_key(),
        name: "OP".into(),
        ..Default::default()
    };
    opc.nats.system_account = sys.public_key();
    opc.nats.kind = "operator".into();
    opc.nats.version = 2;
    let op_jwt = encode(&mut opc, &op);
    let account = |kp: &KeyPair, name: &str, exp: i64| {
        let mut c = AccountClaims {
            sub: kp.public_key(),
            name: name.into(),
            exp,
            ..Default::default()
        };
        c.nats.kind = "account".into();
        c.nats.version = 2;
        encode(&mut c, &op)
    };
    let config = format!(
        "operator: {op_jwt}\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n  {sys}: {sys_jwt}\n  {a_pub}: {a_jwt}\n}}\n",
        sys = sys.public_key(),
        sys_jwt = account(&sys, "SYS", 0),
        a_pub = a.public_key(),
        a_jwt = account(&a, "A", account_exp),
    );
    Org {
        server: Server::start_with_config(&config),
        a,
    }
}

fn user_jwt(user: &KeyPair, issuer: &KeyPair, exp: i64) -> String {
    let mut c = UserClaims {
        sub: user.public_key(),
        name: "u".into(),
        exp,
        ..Default::default()
    };
    encode(&mut c, issuer)
}

fn creds_text(jwt: &str, user: &KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expect("seed")
    )
}

/// Logs in over a raw socket (signing the INFO nonce) so the test sees the
/// exact bytes the server sends when the credentials run out.
async fn raw_login(server: &Server, jwt: &str, user: &KeyPair) -> RawClient {
    let mut raw = RawClient::connect(server.port()).await;
    let nonce = raw.info()["nonce"].as_str().expect("nonce").to_string();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(user.sign(nonce.as_bytes()).expect("sign"));
    let connect = json!({"jwt": jwt, "sig": sig, "verbose": false, "pedantic": false,
                         "protocol": 1, "headers": true});
    raw.handshake_with(&connect.to_string()).await;
    raw
}

async fn expect_closed_with(raw: &mut RawClient, err: &str) {
    let (seen, closed) = raw.wait_closed(Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&seen);
    assert!(closed, "connection still open; got {text:?}");
    assert!(
        text.contains(&format!("-ERR '{err}'")),
        "expected -ERR '{err}', got {text:?}"
    );
}

#[tokio::test]
async fn a_user_whose_jwt_expires_is_disconnected_and_can_come_back() {
    let org = org(0);
    within(LIMIT, "user expiry", async {
        let user = KeyPair::new_user();
        let mut raw = raw_login(&org.server, &user_jwt(&user, &org.a, now() + 2), &user).await;
        expect_closed_with(&mut raw, "User Authentication Expired").await;

        // The same user with a renewed JWT is served again.
        let fresh = creds_text(&user_jwt(&user, &org.a, now() + 3600), &user);
        let nc = ConnectOptions::with_credentials(&fresh)
            .expect("creds")
            .connect(org.server.url())
            .await
            .expect("fresh credentials connect");
        let mut sub = nc.subscribe("back").await.expect("sub");
        nc.publish("back", "ok".into()).await.expect("pub");
        assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"ok");
    })
    .await;
}

#[tokio::test]
async fn an_official_client_is_told_its_credentials_expired() {
    let org = org(0);
    within(LIMIT, "client event", async {
        let user = KeyPair::new_user();
        let creds = creds_text(&user_jwt(&user, &org.a, now() + 2), &user);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _nc = ConnectOptions::with_credentials(&creds)
            .expect("creds")
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(e.to_string());
                }
            })
            .connect(org.server.url())
            .await
            .expect("connect");
        loop {
            let e = rx.recv().await.expect("events");
            if e.to_lowercase().contains("user authentication expired") {
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn an_expiring_account_disconnects_its_users() {
    let org = org(now() + 3);
    within(LIMIT, "account expiry", async {
        let user = KeyPair::new_user();
        let mut raw = raw_login(&org.server, &user_jwt(&user, &org.a, 0), &user).await;
        expect_closed_with(&mut raw, "Account Authentication Expired").await;
    })
    .await;
}

/// The v1 format: header `{"typ":"jwt","alg":"ed25519"}`, `type` at the top
/// level, the signature over the claims alone — operator, account and user.
#[tokio::test]
async fn v1_operator_account_and_user_jwts_are_accepted() {
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let a = KeyPair::new_account();
    let b = KeyPair::new_account();
    let claims = |kp: &KeyPair, name: &str, kind: &str, nats: serde_json::Value| {
        json!({"jti": format!("J{}", kp.public_key()), "iat": now(), "sub": kp.public_key(),
               "name": name, "type": kind, "nats": nats})
    };
    let op_jwt = encode_v1(
        claims(
            &op,
            "OP",
            "operator",
            json!({"system_account": sys.public_key()}),
        ),
        &op,
    );
    let unlimited = json!({"subs": -1, "conn": -1, "leaf": -1, "imports": -1, "exports": -1,
                           "data": -1, "payload": -1, "wildcards": true});
    let sys_jwt = encode_v1(
        claims(&sys, "SYS", "account", json!({"limits": unlimited})),
        &op,
    );
    let a_jwt = encode_v1(
        claims(
            &a,
            "A",
            "account",
            json!({"limits": unlimited,
            "exports": [{"name": "news", "subject": "news.>", "type": "stream"}]}),
        ),
        &op,
    );
    let b_jwt = encode_v1(
        claims(
            &b,
            "B",
            "account",
            json!({"limits": unlimited,
            "imports": [{"name": "news", "subject": "news.>", "account": a.public_key(),
                         "type": "stream"}]}),
        ),
        &op,
    );
    let config = format!(
        "operator: {op_jwt}\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n  {sys}: {sys_jwt}\n  {a_pub}: {a_jwt}\n  {b_pub}: {b_jwt}\n}}\n",
        sys = sys.public_key(),
        a_pub = a.public_key(),
        b_pub = b.public_key(),
    );
    let server = Server::start_with_config(&config);
    within(LIMIT, "v1 jwts", async {
        let v1_user = |acc: &KeyPair, allow: &str| {
            let u = KeyPair::new_user();
            let jwt = encode_v1(
                claims(
                    &u,
                    "u",
                    "user",
                    json!({"pub": {"allow": [allow, "_ITEST.>"]}, "sub": {}}),
                ),
                acc,
            );
            creds_text(&jwt, &u)
        };
        let ua = ConnectOptions::with_credentials(&v1_user(&a, "news.>"))
            .expect("creds")
            .connect(server.url())
            .await
            .expect("v1 user of A connects");
        let ub = ConnectOptions::with_credentials(&v1_user(&b, "nothing"))
            .expect("creds")
            .connect(server.url())
            .await
            .expect("v1 user of B connects");
        // B sees A's export through its v1 import.
        let mut sub = ub.subscribe("news.>").await.expect("sub");
        sync(&ub).await;
        ua.publish("news.today", "hello".into()).await.expect("pub");
        let m = next_msg(&mut sub).await;
        assert_eq!(m.payload.as_ref(), b"hello");
        // The v1 user's permissions apply.
        let mut errs = ua.subscribe("other").await.expect("sub");
        ua.publish("other", "no".into()).await.expect("pub");
        sync(&ua).await;
        let got = tokio::time::timeout(Duration::from_millis(300), errs.next()).await;
        assert!(
            got.is_err(),
            "publish outside the v1 allow list was delivered"
        );
    })
    .await;
}
