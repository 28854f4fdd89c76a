//! Operator mode (decentralized JWT auth) with a MEMORY resolver: users log
//! in with `.creds` contents through async-nats, land in their account, get
//! the permissions their JWT carries, and share subjects only through the
//! exports and imports of the account JWTs. Each broken credential (foreign
//! signer, expiry, revocation, missing JWT) is refused.

use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions};
use bytes::Bytes;
use futures::StreamExt;
use nkeys::KeyPair;
use rnats_itest::{next_msg, sync, within, Server};
use rnats_server::jwt::claims::{
    AccountClaims, JwtExport, JwtImport, OperatorClaims, Permission, UserClaims,
};
use rnats_server::jwt::{encode, now};

const LIMIT: Duration = Duration::from_secs(20);

struct Org {
    server: Server,
    a: KeyPair,
    b: KeyPair,
    signer: KeyPair,
}

fn account(kp: &KeyPair, name: &str, edit: impl FnOnce(&mut AccountClaims)) -> AccountClaims {
    let mut c = AccountClaims {
        sub: kp.public_key(),
        name: name.into(),
        ..Default::default()
    };
    c.nats.kind = "account".into();
    c.nats.version = 2;
    edit(&mut c);
    c
}

/// Operator, system account, account A (exports `news.>`, revokes one user,
/// has a signing key) and account B (imports A's news under `a.`).
fn org(revoked: &str) -> Org {
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let a = KeyPair::new_account();
    let b = KeyPair::new_account();
    let signer = KeyPair::new_account();
    let mut opc = OperatorClaims {
        sub: op.public_key(),
        name: "OP".into(),
        ..Default::default()
    };
    opc.nats.system_account = sys.public_key();
    opc.nats.kind = "operator".into();
    opc.nats.version = 2;
    let op_jwt = encode(&mut opc, &op);
    let sys_jwt = encode(&mut account(&sys, "SYS", |_| {}), &op);
    let a_pub = a.public_key();
    let revoked = revoked.to_string();
    let signer_pub = signer.public_key();
    let a_jwt = encode(
        &mut account(&a, "A", |c| {
            c.nats.exports.push(JwtExport {
                subject: "news.>".into(),
                kind: "stream".into(),
                ..Default::default()
            });
            c.nats.revocations.insert(revoked, now() + 3600);
            c.nats
                .signing_keys
                .push(rnats_server::jwt::claims::SigningKey {
                    key: signer_pub,
                    scope: None,
                });
        }),
        &op,
    );
    let b_jwt = encode(
        &mut account(&b, "B", |c| {
            c.nats.imports.push(JwtImport {
                subject: "news.>".into(),
                account: a_pub.clone(),
                to: "a".into(),
                kind: "stream".into(),
                ..Default::default()
            });
        }),
        &op,
    );
    let config = format!(
        "operator: {op_jwt}\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n  {sys}: {sys_jwt}\n  {a}: {a_jwt}\n  {b}: {b_jwt}\n}}\n",
        sys = sys.public_key(),
        a = a.public_key(),
        b = b.public_key(),
    );
    Org {
        server: Server::start_with_config(&config),
        a,
        b,
        signer,
    }
}

/// `.creds` text for a user signed by `issuer`.
fn creds(user: &KeyPair, issuer: &KeyPair, edit: impl FnOnce(&mut UserClaims)) -> String {
    let mut c = UserClaims {
        sub: user.public_key(),
        name: "u".into(),
        ..Default::default()
    };
    edit(&mut c);
    let jwt = encode(&mut c, issuer);
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expect("seed")
    )
}

async fn login(
    server: &Server,
    creds: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    ConnectOptions::with_credentials(creds)
        .expect("creds parse")
        .connect(server.url())
        .await
}

fn refused(res: Result<async_nats::Client, async_nats::ConnectError>, what: &str) {
    match res {
        Ok(_) => panic!("{what}: connected"),
        Err(e) => assert_eq!(
            e.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {e}"
        ),
    }
}

#[tokio::test]
async fn users_land_in_their_accounts_and_share_only_exports() {
    let org = org("UNOBODY");
    within(LIMIT, "jwt accounts", async {
        let ua = login(&org.server, &creds(&KeyPair::new_user(), &org.a, |_| {}))
            .await
            .expect("user of A");
        let ub = login(&org.server, &creds(&KeyPair::new_user(), &org.b, |_| {}))
            .await
            .expect("user of B");
        let mut same_in_b = ub.subscribe("chat").await.unwrap();
        let mut news_in_b = ub.subscribe("a.news.>").await.unwrap();
        sync(&ub).await;
        ua.publish("chat", Bytes::from_static(b"private"))
            .await
            .unwrap();
        ua.publish("news.today", Bytes::from_static(b"public"))
            .await
            .unwrap();
        ua.flush().await.unwrap();
        let m = next_msg(&mut news_in_b).await;
        assert_eq!(
            (m.subject.as_str(), &m.payload[..]),
            ("a.news.today", &b"public"[..])
        );
        if let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(300), same_in_b.next()).await
        {
            panic!("account B saw A's {}", m.subject);
        }
        // The INFO after CONNECT names the account (its public key).
        let mut sub = ua.subscribe("x").await.unwrap();
        sync(&ua).await;
        ua.publish("x", Bytes::new()).await.unwrap();
        next_msg(&mut sub).await;
    })
    .await;
}

#[tokio::test]
async fn jwt_permissions_apply() {
    let org = org("UNOBODY");
    within(LIMIT, "jwt permissions", async {
        let user = KeyPair::new_user();
        let c = creds(&user, &org.a, |u| {
            u.nats.permissions.publish = Permission {
                allow: vec!["ok.>".into(), "_ITEST.>".into()],
                deny: vec![],
            };
        });
        let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
        let client = ConnectOptions::with_credentials(&c)
            .unwrap()
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = e {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(org.server.url())
            .await
            .expect("connects");
        let mut sub = client.subscribe(">").await.unwrap();
        sync(&client).await;
        let _ = next_msg(&mut sub).await; // the sync message
        client
            .publish("no.way", Bytes::from_static(b"x"))
            .await
            .unwrap();
        client
            .publish("ok.fine", Bytes::from_static(b"y"))
            .await
            .unwrap();
        let m = next_msg(&mut sub).await;
        assert_eq!(m.subject.as_str(), "ok.fine");
        let err = tokio::time::timeout(Duration::from_secs(5), errors.recv())
            .await
            .expect("violation reported")
            .expect("event");
        assert!(
            err.contains("Permissions Violation for Publish to \"no.way\""),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn broken_credentials_are_refused() {
    let revoked_user = KeyPair::new_user();
    let org = org(&revoked_user.public_key());
    within(LIMIT, "jwt refusals", async {
        // Signed by a key the account does not list.
        let stranger = KeyPair::new_account();
        refused(
            login(&org.server, &creds(&KeyPair::new_user(), &stranger, |u| {
                u.nats.issuer_account = org.a.public_key();
            }))
            .await,
            "foreign signer",
        );
        // Signed by the account's signing key: accepted.
        login(&org.server, &creds(&KeyPair::new_user(), &org.signer, |u| {
            u.nats.issuer_account = org.a.public_key();
        }))
        .await
        .expect("signing key user");
        refused(
            login(&org.server, &creds(&KeyPair::new_user(), &org.a, |u| u.exp = now() - 5)).await,
            "expired",
        );
        refused(
            login(&org.server, &creds(&revoked_user, &org.a, |_| {})).await,
            "revoked",
        );
        // No JWT at all.
        refused(async_nats::connect(org.server.url()).await, "anonymous");
        // A valid JWT whose nonce is signed with another key.
        let jwt_of_other = creds(&KeyPair::new_user(), &org.b, |_| {});
        let jwt_line = jwt_of_other.lines().nth(1).unwrap().to_string();
        let wrong_seed = KeyPair::new_user().seed().unwrap();
        let mismatched = format!(
            "-----BEGIN NATS USER JWT-----\n{jwt_line}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{wrong_seed}\n------END USER NKEY SEED------\n"
        );
        refused(login(&org.server, &mismatched).await, "wrong seed");
    })
    .await;
}
