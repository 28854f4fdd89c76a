//! JetStream per account, through async-nats: each account with JetStream
//! has its own streams and API in its own subject space; account limits
//! (`max_mem`, `max_file`, `max_streams`, `max_consumers`) are refused with
//! nats-server's error codes; an account without JetStream gets
//! "JetStream not enabled for account"; operator-mode accounts get
//! JetStream from their JWT limits. Every test here also passes against
//! nats-server (`RNATS_SERVER_BIN`).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use futures::StreamExt;
use nkeys::KeyPair;
use rnats_itest::{file_config, mem_config, within, Server};
use rnats_server::jwt::claims::{AccountClaims, OperatorClaims, UserClaims};
use rnats_server::jwt::encode;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// Accounts A (JetStream, unlimited), B (JetStream with small limits) and
/// C (no JetStream, the no-auth user's account), storing in `store`.
fn config(store: &std::path::Path) -> String {
    format!(
        r#"
jetstream {{ store_dir: "{}" }}
accounts {{
  A: {{ jetstream: enabled, users: [{{user: a, password: a}}] }}
  B: {{
    jetstream: {{ max_mem: 1M, max_file: 1M, max_streams: 2, max_consumers: 1 }}
    users: [{{user: b, password: b}}]
  }}
  C: {{ users: [{{user: c, password: c}}] }}
}}
no_auth_user: c
"#,
        store.display()
    )
}

async fn connect_as(server: &Server, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
        .connect(server.url())
        .await
        .expect("connect")
}

/// A raw API request (an empty body for `Null`): the JSON answer.
async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    let body = match body {
        Value::Null => Bytes::new(),
        v => Bytes::from(v.to_string()),
    };
    let msg = client
        .request(subject.to_string(), body)
        .await
        .expect("api request");
    serde_json::from_slice(&msg.payload).expect("json answer")
}

fn err_code(v: &Value) -> (i64, i64) {
    (
        v["error"]["code"].as_i64().unwrap_or(0),
        v["error"]["err_code"].as_i64().unwrap_or(0),
    )
}

/// Messages of a stream, in order, through a pull consumer.
async fn payloads(js: &jetstream::Context, stream: &str, n: usize) -> Vec<Bytes> {
    let s = js.get_stream(stream).await.expect("stream");
    let c = s
        .create_consumer(pull::Config::default())
        .await
        .expect("consumer");
    let mut batch = c
        .fetch()
        .max_messages(n + 1)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .expect("fetch");
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.expect("message");
        out.push(m.payload.clone());
    }
    out
}

#[tokio::test]
async fn same_stream_name_in_two_accounts_stays_apart() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&config(store.path()));
    within(LIMIT, "two accounts", async {
        let a = jetstream::new(connect_as(&server, "a").await);
        let b = jetstream::new(connect_as(&server, "b").await);
        a.create_stream(mem_config("ORDERS", &["orders.>"]))
            .await
            .expect("A creates ORDERS");
        b.create_stream(mem_config("ORDERS", &["orders.>"]))
            .await
            .expect("B creates ORDERS too");
        for p in ["a1", "a2"] {
            a.publish("orders.x", Bytes::from(p))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let ack = b
            .publish("orders.x", Bytes::from("b1"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.sequence, 1, "B's stream counts its own messages");

        assert_eq!(payloads(&a, "ORDERS", 2).await, vec!["a1", "a2"]);
        assert_eq!(payloads(&b, "ORDERS", 1).await, vec!["b1"]);

        // Each account's API reports its own streams and consumers only.
        let ia = api(&a.client(), "$JS.API.INFO", Value::Null).await;
        let ib = api(&b.client(), "$JS.API.INFO", Value::Null).await;
        assert_eq!(
            (ia["streams"].as_i64(), ia["consumers"].as_i64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            (ib["streams"].as_i64(), ib["consumers"].as_i64()),
            (Some(1), Some(1))
        );
        a.delete_stream("ORDERS")
            .await
            .expect("A deletes its ORDERS");
        let info = b
            .get_stream("ORDERS")
            .await
            .expect("B's ORDERS remains")
            .cached_info()
            .clone();
        assert_eq!(info.state.messages, 1);
    })
    .await;
}

#[tokio::test]
async fn account_limits_are_refused_with_nats_server_errors() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&config(store.path()));
    within(LIMIT, "account limits", async {
        let client = connect_as(&server, "b").await;
        let info = api(&client, "$JS.API.INFO", Value::Null).await;
        let limits = &info["limits"];
        assert_eq!(
            (
                limits["max_memory"].as_i64(),
                limits["max_storage"].as_i64(),
                limits["max_streams"].as_i64(),
                limits["max_consumers"].as_i64()
            ),
            (Some(1_000_000), Some(1_000_000), Some(2), Some(1))
        );

        let create = |name: &str, storage: &str, max_bytes: i64| {
            let body = serde_json::json!({
                "name": name, "subjects": [name.to_lowercase()],
                "storage": storage, "max_bytes": max_bytes,
            });
            (format!("$JS.API.STREAM.CREATE.{name}"), body)
        };
        let (s, b) = create("S0", "memory", 1000);
        assert!(api(&client, &s, b).await["error"].is_null());
        let (s, b) = create("S1", "memory", 1000);
        assert!(api(&client, &s, b).await["error"].is_null());
        let (s, b) = create("S2", "memory", 1000);
        let r = api(&client, &s, b).await;
        assert_eq!(err_code(&r), (400, 10027), "third stream: {r}");
        assert_eq!(r["error"]["description"], "maximum number of streams reached");

        let r = api(&client, "$JS.API.STREAM.DELETE.S1", Value::Null).await;
        assert_eq!(r["success"], true);
        let (s, b) = create("BIG", "memory", 2 << 20);
        let r = api(&client, &s, b).await;
        assert_eq!(err_code(&r), (500, 10028), "memory over the account's: {r}");
        let (s, b) = create("BIG", "file", 2 << 20);
        let r = api(&client, &s, b).await;
        assert_eq!(err_code(&r), (500, 10047), "file over the account's: {r}");

        let consumer = |name: &str| {
            (
                format!("$JS.API.CONSUMER.CREATE.S0.{name}"),
                serde_json::json!({"stream_name": "S0", "config": {"durable_name": name, "name": name}}),
            )
        };
        let (s, b) = consumer("c1");
        assert!(api(&client, &s, b).await["error"].is_null());
        let (s, b) = consumer("c2");
        let r = api(&client, &s, b).await;
        assert_eq!(err_code(&r), (400, 10026), "second consumer: {r}");
        assert_eq!(r["error"]["description"], "maximum consumers limit reached");

        // Storing past the account's memory is refused per message.
        let r = api(&client, "$JS.API.STREAM.DELETE.S0", Value::Null).await;
        assert_eq!(r["success"], true);
        let (s, b) = create("M", "memory", -1);
        assert!(api(&client, &s, b).await["error"].is_null());
        let mut refused = None;
        for i in 0..12 {
            let ack = client
                .request("m", Bytes::from(vec![b'x'; 100_000]))
                .await
                .expect("pub ack");
            let v: Value = serde_json::from_slice(&ack.payload).unwrap();
            if !v["error"].is_null() {
                refused = Some((i, v));
                break;
            }
        }
        let (i, v) = refused.expect("the account's memory limit stops publishes");
        assert_eq!(i, 9, "nine 100 KB messages fit in 1 MB");
        assert_eq!(err_code(&v), (400, 10002));
        assert_eq!(v["error"]["description"], "resource limits exceeded for account");

        let info = api(&client, "$JS.API.INFO", Value::Null).await;
        assert_eq!(info["streams"], 1);
        assert!(info["memory"].as_u64().unwrap() > 900_000, "{info}");
    })
    .await;
}

#[tokio::test]
async fn restart_keeps_each_accounts_streams() {
    let store = tempfile::tempdir().unwrap();
    let conf = config(store.path());
    let mut server = Server::start_with_config(&conf);
    within(LIMIT, "before restart", async {
        let a = jetstream::new(connect_as(&server, "a").await);
        let b = jetstream::new(connect_as(&server, "b").await);
        a.create_stream(file_config("KEEP", &["keep"]))
            .await
            .unwrap();
        b.create_stream(file_config("KEEP", &["keep"]))
            .await
            .unwrap();
        for _ in 0..3 {
            a.publish("keep", Bytes::from("a"))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        b.publish("keep", Bytes::from("b"))
            .await
            .unwrap()
            .await
            .unwrap();
    })
    .await;
    server.kill();
    let server = Server::start_with_config(&conf);
    within(LIMIT, "after restart", async {
        let a = jetstream::new(connect_as(&server, "a").await);
        let b = jetstream::new(connect_as(&server, "b").await);
        let mut sa = a.get_stream("KEEP").await.expect("A's stream recovered");
        let mut sb = b.get_stream("KEEP").await.expect("B's stream recovered");
        assert_eq!(sa.info().await.unwrap().state.messages, 3);
        assert_eq!(sb.info().await.unwrap().state.messages, 1);
        assert_eq!(payloads(&b, "KEEP", 1).await, vec!["b"]);
    })
    .await;
}

#[tokio::test]
async fn account_without_jetstream_is_told_so() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&config(store.path()));
    within(LIMIT, "no jetstream", async {
        let client = connect_as(&server, "c").await;
        let r = api(&client, "$JS.API.INFO", Value::Null).await;
        assert_eq!(r["type"], "io.nats.jetstream.api.v1.account_info_response");
        assert_eq!(err_code(&r), (503, 10039));
        assert_eq!(
            r["error"]["description"],
            "JetStream not enabled for account"
        );
        let body = serde_json::json!({"name": "S", "subjects": ["s"]});
        let r = api(&client, "$JS.API.STREAM.CREATE.S", body).await;
        assert_eq!(r["type"], "io.nats.jetstream.api.v1.stream_create_response");
        assert_eq!(err_code(&r), (503, 10039));
        let r = api(&client, "$JS.API.STREAM.NAMES", Value::Null).await;
        assert_eq!(r["type"], "io.nats.jetstream.api.v1.stream_names_response");
        assert_eq!(err_code(&r), (503, 10039));
        // async-nats surfaces it as an error of its own.
        let js = jetstream::new(client.clone());
        assert!(js.create_stream(mem_config("S", &["s"])).await.is_err());
        // Pulls find no responders, as with nats-server.
        let r = client
            .request("$JS.API.CONSUMER.MSG.NEXT.S.c", Bytes::new())
            .await;
        assert!(r.is_err(), "no responders for a pull");
    })
    .await;
}

fn account_claims(kp: &KeyPair, name: &str, js: bool) -> AccountClaims {
    let mut c = AccountClaims {
        sub: kp.public_key(),
        name: name.into(),
        ..Default::default()
    };
    c.nats.kind = "account".into();
    c.nats.version = 2;
    if js {
        c.nats.limits.mem_storage = 1 << 20;
        c.nats.limits.disk_storage = 1 << 20;
        c.nats.limits.streams = 1;
        c.nats.limits.consumer = -1;
    }
    c
}

fn creds(user: &KeyPair, issuer: &KeyPair) -> String {
    let mut c = UserClaims {
        sub: user.public_key(),
        name: "u".into(),
        ..Default::default()
    };
    let jwt = encode(&mut c, issuer);
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expect("seed")
    )
}

#[tokio::test]
async fn operator_account_gets_jetstream_from_its_jwt() {
    let store = tempfile::tempdir().unwrap();
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let with_js = KeyPair::new_account();
    let without = KeyPair::new_account();
    let mut opc = OperatorClaims {
        sub: op.public_key(),
        name: "OP".into(),
        ..Default::default()
    };
    opc.nats.system_account = sys.public_key();
    opc.nats.kind = "operator".into();
    opc.nats.version = 2;
    let op_jwt = encode(&mut opc, &op);
    let sys_jwt = encode(&mut account_claims(&sys, "SYS", false), &op);
    let js_jwt = encode(&mut account_claims(&with_js, "JS", true), &op);
    let plain_jwt = encode(&mut account_claims(&without, "PLAIN", false), &op);
    let conf = format!(
        "operator: {op_jwt}\nsystem_account: {s}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {s}: {sys_jwt}\n  {j}: {js_jwt}\n  {p}: {plain_jwt}\n}}\n\
         jetstream {{ store_dir: \"{dir}\" }}\n",
        s = sys.public_key(),
        j = with_js.public_key(),
        p = without.public_key(),
        dir = store.path().display(),
    );
    let server = Server::start_with_config(&conf);
    within(LIMIT, "operator jetstream", async {
        let login = |issuer: &KeyPair| {
            let c = creds(&KeyPair::new_user(), issuer);
            let url = server.url();
            async move {
                async_nats::ConnectOptions::with_credentials(&c)
                    .expect("creds")
                    .connect(url)
                    .await
                    .expect("login")
            }
        };
        let client = login(&with_js).await;
        let js = jetstream::new(client.clone());
        js.create_stream(stream::Config {
            max_bytes: 1000,
            ..mem_config("S", &["s"])
        })
        .await
        .expect("a JetStream account creates a stream");
        let ack = js
            .publish("s", Bytes::from("x"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.sequence, 1);
        let info = api(&client, "$JS.API.INFO", Value::Null).await;
        assert_eq!(info["limits"]["max_streams"], 1, "{info}");
        assert_eq!(info["limits"]["max_memory"], 1 << 20, "{info}");
        let r = api(
            &client,
            "$JS.API.STREAM.CREATE.T",
            serde_json::json!({"name": "T", "subjects": ["t"], "storage": "memory"}),
        )
        .await;
        assert_eq!(err_code(&r), (400, 10027), "{r}");

        let plain = login(&without).await;
        let r = api(&plain, "$JS.API.INFO", Value::Null).await;
        assert_eq!(err_code(&r), (503, 10039), "{r}");
    })
    .await;
}
