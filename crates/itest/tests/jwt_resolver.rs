//! Operator mode with a `full` directory resolver, driven as `nsc push`
//! does: account JWTs pushed on `$SYS.REQ.CLAIMS.UPDATE` /
//! `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE` are verified, stored in the
//! directory and applied (a revocation closes the user's live connection);
//! `CLAIMS.LOOKUP`, `CLAIMS.LIST` and `CLAIMS.DELETE` (operator-signed,
//! only with `allow_delete`) answer in nats-server's shapes.

use std::time::Duration;

use async_nats::ConnectOptions;
use bytes::Bytes;
use nkeys::KeyPair;
use rnats_itest::{within, Server};
use rnats_server::jwt::claims::{AccountClaims, Claims, OperatorClaims, UserClaims};
use rnats_server::jwt::{encode, now};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);

fn account(kp: &KeyPair, name: &str) -> AccountClaims {
    let mut c = AccountClaims {
        sub: kp.public_key(),
        name: name.into(),
        ..Default::default()
    };
    c.nats.kind = "account".into();
    c.nats.version = 2;
    c
}

fn creds(user: &KeyPair, issuer: &KeyPair) -> String {
    let mut c = UserClaims {
        sub: user.public_key(),
        name: "u".into(),
        ..Default::default()
    };
    // Issued a little in the past so a revocation "now" covers it.
    c.iat = now() - 10;
    let jwt = encode(&mut c, issuer);
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expect("seed")
    )
}

struct Org {
    server: Server,
    dir: tempfile::TempDir,
    op: KeyPair,
    sys: KeyPair,
    a: KeyPair,
}

/// Operator with system account SYS and account A, both in the resolver
/// directory before start.
fn org(allow_delete: bool) -> Org {
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
    let dir = tempfile::tempdir().expect("resolver dir");
    for (kp, name) in [(&sys, "SYS"), (&a, "A")] {
        let jwt = encode(&mut account(kp, name), &op);
        std::fs::write(dir.path().join(format!("{}.jwt", kp.public_key())), jwt)
            .expect("write account jwt");
    }
    let config = format!(
        "operator: {op_jwt}\nsystem_account: {}\nresolver: {{ type: full, dir: {:?}, allow_delete: {allow_delete} }}\n",
        sys.public_key(),
        dir.path(),
    );
    Org {
        server: Server::start_with_config(&config),
        dir,
        op,
        sys,
        a,
    }
}

async fn login(server: &Server, creds: &str) -> async_nats::Client {
    ConnectOptions::with_credentials(creds)
        .expect("creds parse")
        .connect(server.url())
        .await
        .expect("login")
}

async fn request(c: &async_nats::Client, subject: &str, body: String) -> Value {
    let m = c
        .request(subject.to_string(), Bytes::from(body))
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&m.payload).unwrap_or_else(|e| panic!("{subject}: {e}"))
}

#[tokio::test]
async fn pushed_revocation_disconnects_the_user_and_is_stored() {
    let org = org(false);
    within(LIMIT, "claims update", async {
        let sysc = login(&org.server, &creds(&KeyPair::new_user(), &org.sys)).await;
        let victim_key = KeyPair::new_user();
        let victim = login(&org.server, &creds(&victim_key, &org.a)).await;
        let bystander = login(&org.server, &creds(&KeyPair::new_user(), &org.a)).await;

        let mut updated = account(&org.a, "A");
        updated
            .nats
            .revocations
            .insert(victim_key.public_key(), now());
        let jwt = encode(&mut updated, &org.op);
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", org.a.public_key());
        let v = request(&sysc, &subject, jwt.clone()).await;
        assert_eq!(v["data"]["account"], org.a.public_key().as_str(), "{v}");
        assert_eq!(v["data"]["code"], 200, "{v}");
        assert_eq!(v["data"]["message"], "jwt updated", "{v}");
        assert!(v["server"]["id"].is_string(), "{v}");

        // Stored in the directory, and served back by LOOKUP.
        let path = org.dir.path().join(format!("{}.jwt", org.a.public_key()));
        let stored = std::fs::read_to_string(&path).expect("stored jwt");
        assert_eq!(stored.trim(), jwt);
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", org.a.public_key());
        let m = sysc.request(subject, Bytes::new()).await.expect("lookup");
        assert_eq!(m.payload.as_ref(), jwt.as_bytes());

        // The revoked user's connection is closed; the other stays.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while victim.connection_state() == async_nats::connection::State::Connected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "victim still connected"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bystander.flush().await.expect("bystander still connected");

        // A JWT for another account under this account's subject is refused.
        let other = encode(&mut account(&KeyPair::new_account(), "X"), &org.op);
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", org.a.public_key());
        let v = request(&sysc, &subject, other).await;
        assert_eq!(v["error"]["code"], 500, "{v}");
        assert_eq!(
            v["error"]["description"],
            "jwt update resulted in error - subject does not match jwt content",
            "{v}"
        );
        // One not signed by the operator: rnats refuses to store it.
        // nats-server stores it and only refuses it when the account is
        // next loaded, so this part is rnats-only.
        if std::env::var_os("RNATS_SERVER_BIN").is_none() {
            let rogue = KeyPair::new_operator();
            let forged = encode(&mut account(&org.a, "A"), &rogue);
            let v = request(&sysc, "$SYS.REQ.CLAIMS.UPDATE", forged).await;
            assert_eq!(v["error"]["code"], 500, "{v}");
            assert_eq!(std::fs::read_to_string(&path).expect("jwt").trim(), jwt);
        }
    })
    .await;
}

#[tokio::test]
async fn new_accounts_are_listed_and_deleted_by_the_operator() {
    let org = org(true);
    within(LIMIT, "claims list and delete", async {
        let sysc = login(&org.server, &creds(&KeyPair::new_user(), &org.sys)).await;
        let fresh = KeyPair::new_account();
        let jwt = encode(&mut account(&fresh, "NEW"), &org.op);
        let v = request(&sysc, "$SYS.REQ.CLAIMS.UPDATE", jwt).await;
        assert_eq!(v["data"]["account"], fresh.public_key().as_str(), "{v}");
        assert_eq!(v["data"]["code"], 200, "{v}");
        // Users of the pushed account can log in right away.
        let _u = login(&org.server, &creds(&KeyPair::new_user(), &fresh)).await;

        let v = request(&sysc, "$SYS.REQ.CLAIMS.LIST", String::new()).await;
        let list: Vec<&str> = v["data"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for k in [org.sys.public_key(), org.a.public_key(), fresh.public_key()] {
            assert!(list.contains(&k.as_str()), "{k} missing from {v}");
        }

        // Delete: a generic JWT self-signed by the operator.
        let mut req: Claims<Value> = Claims {
            sub: org.op.public_key(),
            nats: serde_json::json!({"accounts": [fresh.public_key()]}),
            ..Default::default()
        };
        let token = encode(&mut req, &org.op);
        let v = request(&sysc, "$SYS.REQ.CLAIMS.DELETE", token).await;
        assert_eq!(v["data"]["code"], 200, "{v}");
        assert_eq!(v["data"]["message"], "deleted 1 accounts", "{v}");
        let path = org.dir.path().join(format!("{}.jwt", fresh.public_key()));
        assert!(!path.exists(), "deleted account's JWT still stored");

        // Signed by an account instead: refused.
        let mut req: Claims<Value> = Claims {
            sub: org.a.public_key(),
            nats: serde_json::json!({"accounts": [org.a.public_key()]}),
            ..Default::default()
        };
        let token = encode(&mut req, &org.a);
        let v = request(&sysc, "$SYS.REQ.CLAIMS.DELETE", token).await;
        assert_eq!(v["error"]["code"], 500, "{v}");
        assert_eq!(
            v["error"]["description"],
            format!(
                "delete accounts request by {} failed - not trusted",
                org.a.public_key()
            ),
            "{v}"
        );
    })
    .await;
}

#[tokio::test]
async fn delete_needs_allow_delete() {
    let org = org(false);
    within(LIMIT, "no delete", async {
        let sysc = login(&org.server, &creds(&KeyPair::new_user(), &org.sys)).await;
        let mut req: Claims<Value> = Claims {
            sub: org.op.public_key(),
            nats: serde_json::json!({"accounts": [org.a.public_key()]}),
            ..Default::default()
        };
        let token = encode(&mut req, &org.op);
        let v = request(&sysc, "$SYS.REQ.CLAIMS.DELETE", token).await;
        assert_eq!(v["error"]["code"], 500, "{v}");
        assert!(
            v["error"]["description"]
                .as_str()
                .is_some_and(|d| d.ends_with("delete must be enabled in server config")),
            "{v}"
        );
        let stored = org.dir.path().join(format!("{}.jwt", org.a.public_key()));
        assert!(stored.exists(), "a refused delete removed the JWT");
    })
    .await;
}
