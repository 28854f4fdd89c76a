//! The `$SYS` services through async-nats: `$SYS.REQ.SERVER.PING[.<EP>]`,
//! `$SYS.REQ.SERVER.<id>.<EP>` and `$SYS.REQ.ACCOUNT.<acc>.<EP>` answered in
//! nats-server's envelope, client connect/disconnect events, statsz
//! heartbeats and the shutdown event.
//!
//! rnats has no accounts yet and serves these in the global account, so a
//! plain client can reach them; nats-server serves them only to the system
//! account, so these tests are rnats-only as written (the shapes were
//! compared by hand against nats-server with a `system_account` config).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, next_msg, sync, within, Server};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

async fn request(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    let msg = client
        .request(subject.to_string(), Bytes::from(body.to_string()))
        .await
        .unwrap_or_else(|e| panic!("request {subject}: {e}"));
    serde_json::from_slice(&msg.payload)
        .unwrap_or_else(|e| panic!("{subject}: not JSON ({e}): {:?}", msg.payload))
}

/// Checks the `server` object every `$SYS` message carries.
fn assert_server(v: &Value, id: &str) {
    let s = &v["server"];
    assert_eq!(s["id"], id, "server.id in {v}");
    assert_eq!(s["ver"], "2.15.0");
    assert!(s["name"].is_string() && s["host"].is_string(), "{v}");
    assert!(s["seq"].as_u64().is_some_and(|n| n > 0), "seq in {v}");
    assert!(s["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
}

fn server_id(client: &async_nats::Client) -> String {
    client.server_info().server_id
}

#[tokio::test]
async fn ping_answers_statsz_that_counts_my_messages() {
    let server = Server::start(&[]);
    within(LIMIT, "statsz", async {
        let c = connect(&server).await;
        for _ in 0..25 {
            c.publish("sys.count", Bytes::from_static(b"12345"))
                .await
                .unwrap();
        }
        sync(&c).await;
        let id = server_id(&c);
        for subject in ["$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.STATSZ"] {
            let v = request(&c, subject, "").await;
            assert_server(&v, &id);
            let st = &v["statsz"];
            assert!(st["received"]["msgs"].as_u64().unwrap() >= 25, "{v}");
            assert!(st["received"]["bytes"].as_u64().unwrap() >= 125, "{v}");
            assert!(st["connections"].as_u64().unwrap() >= 1, "{v}");
            assert!(st["subscriptions"].as_u64().unwrap() >= 1, "{v}");
            assert!(st["start"].is_string() && st["mem"].as_i64().unwrap() > 0);
        }
        // Like nats-server: the server-wide name is STATSZ, not STATZ.
        let err = c
            .request("$SYS.REQ.SERVER.PING.STATZ", Bytes::new())
            .await
            .expect_err("no responders");
        assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    })
    .await;
}

#[tokio::test]
async fn connz_lists_my_connection_and_its_subscriptions() {
    let server = Server::start(&[]);
    within(LIMIT, "connz", async {
        let c = async_nats::ConnectOptions::new()
            .name("sys-connz-test")
            .connect(server.url())
            .await
            .unwrap();
        let _sub = c.subscribe("sys.watched.subject").await.unwrap();
        sync(&c).await;
        let id = server_id(&c);
        for subject in [
            "$SYS.REQ.SERVER.PING.CONNZ".to_string(),
            format!("$SYS.REQ.SERVER.{id}.CONNZ"),
        ] {
            let v = request(&c, &subject, r#"{"subscriptions":true}"#).await;
            assert_server(&v, &id);
            assert!(v.get("error").is_none(), "{v}");
            let conns = v["data"]["connections"].as_array().expect("connections");
            let mine = conns
                .iter()
                .find(|x| x["name"] == "sys-connz-test")
                .unwrap_or_else(|| panic!("my connection missing from {v}"));
            let subs = mine["subscriptions_list"].as_array().expect("subs list");
            assert!(subs.iter().any(|s| s == "sys.watched.subject"), "{mine}");
        }
    })
    .await;
}

#[tokio::test]
async fn every_server_endpoint_answers_in_the_envelope() {
    let store = tempfile::tempdir().unwrap();
    let server = rnats_itest::start_jetstream(store.path(), &[]);
    within(LIMIT, "endpoints", async {
        let c = connect(&server).await;
        let id = server_id(&c);
        let checks: [(&str, &str, &str); 8] = [
            ("VARZ", "/server_id", id.as_str()),
            ("SUBSZ", "/server_id", id.as_str()),
            ("ROUTEZ", "/num_routes", "0"),
            ("GATEWAYZ", "/server_id", id.as_str()),
            ("LEAFZ", "/leafnodes", "0"),
            ("ACCOUNTZ", "/accounts/0", "$G"),
            ("JSZ", "/config/strict", "true"),
            ("HEALTHZ", "/status", "ok"),
        ];
        for (ep, pointer, want) in checks {
            let v = request(&c, &format!("$SYS.REQ.SERVER.PING.{ep}"), "").await;
            assert_server(&v, &id);
            assert!(v.get("error").is_none(), "{ep}: {v}");
            let got = v["data"].pointer(pointer).unwrap_or(&Value::Null);
            let got = match got {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(got, want, "{ep}{pointer} in {v}");
        }
        // HEALTHZ keeps the status code in its data, unlike the HTTP endpoint.
        let v = request(&c, "$SYS.REQ.SERVER.PING.HEALTHZ", "").await;
        assert_eq!(v["data"]["status_code"], 200);
        // IDZ is bare: just who the server is.
        let v = request(&c, &format!("$SYS.REQ.SERVER.{id}.IDZ"), "").await;
        assert_eq!(v["id"], id.as_str());
        assert!(v.get("server").is_none(), "{v}");
    })
    .await;
}

#[tokio::test]
async fn account_endpoints_for_the_global_account() {
    let store = tempfile::tempdir().unwrap();
    let server = rnats_itest::start_jetstream(store.path(), &[]);
    within(LIMIT, "account endpoints", async {
        let c = connect(&server).await;
        let _sub = c.subscribe("acct.sub.here").await.unwrap();
        sync(&c).await;
        let id = server_id(&c);

        let v = request(&c, "$SYS.REQ.ACCOUNT.$G.INFO", "").await;
        assert_server(&v, &id);
        assert_eq!(v["data"]["account_name"], "$G");
        assert!(v["data"]["client_connections"].as_u64().unwrap() >= 1);

        let v = request(&c, "$SYS.REQ.ACCOUNT.$G.SUBSZ", "").await;
        let list = v["data"]["subscriptions_list"].as_array().expect("list");
        assert!(list.iter().any(|s| s["subject"] == "acct.sub.here"), "{v}");

        let v = request(&c, "$SYS.REQ.ACCOUNT.$G.STATZ", "").await;
        assert_eq!(v["data"]["account_statz"][0]["acc"], "$G", "{v}");
        assert!(v["data"]["account_statz"][0]["conns"].as_u64().unwrap() >= 1);

        let v = request(&c, "$SYS.REQ.ACCOUNT.$G.JSZ", "").await;
        assert_eq!(v["data"]["name"], "$G", "{v}");

        let v = request(&c, "$SYS.REQ.ACCOUNT.$G.CONNS", "").await;
        assert_eq!(v["type"], "io.nats.server.advisory.v1.account_connections");
        assert!(v["conns"].as_u64().unwrap() >= 1, "{v}");

        let v = request(&c, "$SYS.REQ.ACCOUNT.$G.CONNZ", "").await;
        assert!(v["data"]["num_connections"].as_u64().unwrap() >= 1, "{v}");

        // An unknown account: an error with `data: null`, as nats-server sends.
        let v = request(&c, "$SYS.REQ.ACCOUNT.NOPE.INFO", "").await;
        assert_server(&v, &id);
        assert_eq!(v["error"]["code"], 500, "{v}");
        assert_eq!(v["error"]["description"], "Account NOPE does not exist");
        assert!(v.get("data").is_some_and(Value::is_null), "{v}");
    })
    .await;
}

#[tokio::test]
async fn bad_bodies_get_an_error_and_filters_silence_the_server() {
    let server = Server::start(&[]);
    within(LIMIT, "bodies", async {
        let c = connect(&server).await;
        let id = server_id(&c);
        let v = request(&c, "$SYS.REQ.SERVER.PING.VARZ", "{bad").await;
        assert_server(&v, &id);
        assert_eq!(v["error"]["code"], 400, "{v}");
        assert!(v.get("data").is_none(), "{v}");

        // A filter naming another server: no answer at all.
        let quiet = tokio::time::timeout(
            Duration::from_millis(700),
            c.request(
                "$SYS.REQ.SERVER.PING.VARZ",
                Bytes::from_static(br#"{"server_name":"not-this-one","exact_match":true}"#),
            ),
        )
        .await;
        assert!(
            !matches!(quiet, Ok(Ok(_))),
            "a filtered request was answered"
        );
        // A filter naming this server is answered.
        let name = c.server_info().server_name;
        let body = format!(r#"{{"server_name":"{name}"}}"#);
        let v = request(&c, "$SYS.REQ.SERVER.PING.VARZ", &body).await;
        assert_eq!(v["data"]["server_name"], name.as_str(), "{v}");
    })
    .await;
}

#[tokio::test]
async fn connect_and_disconnect_events_are_published() {
    let server = Server::start(&[]);
    within(LIMIT, "events", async {
        let watcher = connect(&server).await;
        let mut connects = watcher.subscribe("$SYS.ACCOUNT.*.CONNECT").await.unwrap();
        let mut disconnects = watcher
            .subscribe("$SYS.ACCOUNT.*.DISCONNECT")
            .await
            .unwrap();
        sync(&watcher).await;

        let other = async_nats::ConnectOptions::new()
            .name("sys-event-client")
            .connect(server.url())
            .await
            .unwrap();
        let m = next_msg(&mut connects).await;
        assert_eq!(m.subject.as_str(), "$SYS.ACCOUNT.$G.CONNECT");
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["type"], "io.nats.server.advisory.v1.client_connect");
        assert_eq!(v["client"]["name"], "sys-event-client");
        assert_eq!(v["client"]["acc"], "$G");
        assert_eq!(v["client"]["kind"], "Client");
        assert_server(&v, &server_id(&watcher));
        let cid = v["client"]["id"].as_u64().expect("client id");

        for _ in 0..3 {
            other
                .publish("sys.ev", Bytes::from_static(b"abcd"))
                .await
                .unwrap();
        }
        sync(&other).await;
        drop(other);
        let m = next_msg(&mut disconnects).await;
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["type"], "io.nats.server.advisory.v1.client_disconnect");
        assert_eq!(v["client"]["id"], cid);
        assert_eq!(v["client"]["name"], "sys-event-client");
        assert!(v["client"]["stop"].is_string(), "{v}");
        // 3 publishes plus the sync round trip's one.
        assert_eq!(v["sent"]["msgs"], 4, "{v}");
        assert_eq!(v["sent"]["bytes"], 12, "{v}");
        assert_eq!(v["reason"], "Client Closed", "{v}");
    })
    .await;
}

#[tokio::test]
async fn statsz_heartbeats_and_a_shutdown_event() {
    let mut server = Server::start(&[]);
    within(LIMIT, "heartbeat", async {
        let c = connect(&server).await;
        let id = server_id(&c);
        let mut beats = c.subscribe("$SYS.SERVER.*.STATSZ").await.unwrap();
        let mut shutdown = c.subscribe("$SYS.SERVER.*.SHUTDOWN").await.unwrap();
        sync(&c).await;
        // The first beats come quickly after start (250ms, doubling).
        let m = next_msg(&mut beats).await;
        assert_eq!(m.subject.as_str(), format!("$SYS.SERVER.{id}.STATSZ"));
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_server(&v, &id);
        assert!(v["statsz"]["connections"].as_u64().unwrap() >= 1, "{v}");

        server.signal(libc::SIGTERM);
        let m = tokio::time::timeout(Duration::from_secs(5), shutdown.next())
            .await
            .expect("shutdown event in time")
            .expect("shutdown event");
        assert_eq!(m.subject.as_str(), format!("$SYS.SERVER.{id}.SHUTDOWN"));
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["id"], id.as_str(), "{v}");
    })
    .await;
    let _ = server.wait_exit(Duration::from_secs(5));
}
