//! The `$SYS` services through async-nats: `$SYS.REQ.SERVER.PING[.<EP>]`,
//! `$SYS.REQ.SERVER.<id>.<EP>` and `$SYS.REQ.ACCOUNT.<acc>.<EP>` answered in
//! nats-server's envelope, client connect/disconnect events, statsz
//! heartbeats and the shutdown event.
//!
//! Every test runs with nats-server's setup: a system account `SYS` (user
//! `sys`) whose users alone see `$SYS.REQ.*`, and an application account
//! `APP` (user `a`) that only gets its own services (the default system
//! imports). They pass against nats-server too (`RNATS_SERVER_BIN`).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{next_msg, sync, within, Server};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

const ACCOUNTS: &str = r#"
accounts {
  SYS { users = [{user: sys, password: sys}] }
  APP { users = [{user: a, password: a}] }
}
system_account: SYS
"#;

fn sys_server() -> Server {
    Server::start_with_config(ACCOUNTS)
}

/// The same with JetStream, its store in `dir`.
fn sys_server_js(dir: &std::path::Path) -> Server {
    let text = format!("{ACCOUNTS}\njetstream {{ store_dir: {:?} }}\n", dir);
    Server::start_with_config(&text)
}

async fn as_user(server: &Server, user: &str, name: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
        .name(name)
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

async fn connect(server: &Server) -> async_nats::Client {
    as_user(server, "sys", "sys-test").await
}

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
    let server = sys_server();
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
    let server = sys_server();
    within(LIMIT, "connz", async {
        let c = as_user(&server, "sys", "sys-connz-test").await;
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
    let server = sys_server_js(store.path());
    within(LIMIT, "endpoints", async {
        let c = connect(&server).await;
        let id = server_id(&c);
        let checks: [(&str, &str, &str); 8] = [
            ("VARZ", "/server_id", id.as_str()),
            ("SUBSZ", "/server_id", id.as_str()),
            ("ROUTEZ", "/num_routes", "0"),
            ("GATEWAYZ", "/server_id", id.as_str()),
            ("LEAFZ", "/leafnodes", "0"),
            ("ACCOUNTZ", "/system_account", "SYS"),
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
async fn account_endpoints_for_any_account() {
    let store = tempfile::tempdir().unwrap();
    let server = sys_server_js(store.path());
    within(LIMIT, "account endpoints", async {
        let c = connect(&server).await;
        let app = as_user(&server, "a", "app-client").await;
        let _sub = app.subscribe("acct.sub.here").await.unwrap();
        sync(&app).await;
        let id = server_id(&c);

        let v = request(&c, "$SYS.REQ.ACCOUNT.APP.INFO", "").await;
        assert_server(&v, &id);
        assert_eq!(v["data"]["account_name"], "APP");
        assert_eq!(v["data"]["client_connections"], 1, "{v}");
        let imports = v["data"]["imports"].as_array().expect("imports");
        assert!(
            imports
                .iter()
                .any(|i| i["local_subject"] == "$SYS.REQ.USER.INFO" && i["share"] == true),
            "{v}"
        );

        let v = request(&c, "$SYS.REQ.ACCOUNT.APP.SUBSZ", "").await;
        let list = v["data"]["subscriptions_list"].as_array().expect("list");
        assert!(list.iter().any(|s| s["subject"] == "acct.sub.here"), "{v}");
        assert!(list.iter().all(|s| s["account"] == "APP"), "{v}");

        let v = request(&c, "$SYS.REQ.ACCOUNT.APP.STATZ", "").await;
        assert_eq!(v["data"]["account_statz"][0]["acc"], "APP", "{v}");
        assert_eq!(v["data"]["account_statz"][0]["conns"], 1, "{v}");

        // Every account with connections, from the system account.
        let v = request(&c, "$SYS.REQ.ACCOUNT.PING.STATZ", "").await;
        let accs: Vec<&str> = v["data"]["account_statz"]
            .as_array()
            .expect("account_statz")
            .iter()
            .filter_map(|a| a["acc"].as_str())
            .collect();
        assert!(accs.contains(&"APP") && accs.contains(&"SYS"), "{v}");

        // Per-account JSZ depends on which accounts have JetStream (another
        // feature's work): here only that it answers in the envelope.
        let v = request(&c, "$SYS.REQ.ACCOUNT.APP.JSZ", "").await;
        assert_server(&v, &id);

        let v = request(&c, "$SYS.REQ.ACCOUNT.APP.CONNS", "").await;
        assert_eq!(v["type"], "io.nats.server.advisory.v1.account_connections");
        assert_eq!(v["acc"], "APP", "{v}");
        assert_eq!(v["conns"], 1, "{v}");

        let v = request(&c, "$SYS.REQ.ACCOUNT.APP.CONNZ", "").await;
        assert_eq!(v["data"]["num_connections"], 1, "{v}");
        assert_eq!(v["data"]["connections"][0]["name"], "app-client", "{v}");

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
    let server = sys_server();
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
    let server = sys_server();
    within(LIMIT, "events", async {
        let watcher = connect(&server).await;
        let mut connects = watcher.subscribe("$SYS.ACCOUNT.*.CONNECT").await.unwrap();
        let mut disconnects = watcher
            .subscribe("$SYS.ACCOUNT.*.DISCONNECT")
            .await
            .unwrap();
        sync(&watcher).await;

        let mut conns = watcher
            .subscribe("$SYS.ACCOUNT.APP.SERVER.CONNS")
            .await
            .unwrap();
        sync(&watcher).await;
        let other = as_user(&server, "a", "sys-event-client").await;
        let m = next_msg(&mut connects).await;
        assert_eq!(m.subject.as_str(), "$SYS.ACCOUNT.APP.CONNECT");
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["type"], "io.nats.server.advisory.v1.client_connect");
        assert_eq!(v["client"]["name"], "sys-event-client");
        assert_eq!(v["client"]["acc"], "APP");
        assert_eq!(v["client"]["name_tag"], "APP");
        assert_eq!(v["client"]["user"], "a");
        let m = next_msg(&mut conns).await;
        let n: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(n["acc"], "APP", "{n}");
        assert_eq!(n["conns"], 1, "{n}");
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
        assert_eq!(m.subject.as_str(), "$SYS.ACCOUNT.APP.DISCONNECT");
        let m = next_msg(&mut conns).await;
        let n: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(n["conns"], 0, "{n}");
    })
    .await;
}

#[tokio::test]
async fn statsz_heartbeats_and_a_shutdown_event() {
    let mut server = sys_server();
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

#[tokio::test]
async fn other_accounts_only_get_their_own_services() {
    let server = sys_server();
    within(LIMIT, "default imports", async {
        let app = as_user(&server, "a", "app-own").await;
        let _sys = connect(&server).await;
        let id = server_id(&app);
        // Server-wide and other accounts' requests do not exist here.
        for subject in [
            "$SYS.REQ.SERVER.PING",
            "$SYS.REQ.SERVER.PING.VARZ",
            "$SYS.REQ.ACCOUNT.APP.INFO",
            "$SYS.REQ.ACCOUNT.SYS.CONNZ",
        ] {
            let err = app.request(subject, Bytes::new()).await.expect_err(subject);
            assert_eq!(
                err.kind(),
                async_nats::RequestErrorKind::NoResponders,
                "{subject}"
            );
        }
        // Its own connections, under both PING subjects.
        for subject in ["$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ"] {
            let v = request(&app, subject, "").await;
            assert_server(&v, &id);
            let conns = v["data"]["connections"].as_array().expect("connections");
            assert_eq!(conns.len(), 1, "{subject}: {v}");
            assert_eq!(conns[0]["name"], "app-own", "{v}");
        }
        let v = request(&app, "$SYS.REQ.ACCOUNT.PING.STATZ", "").await;
        let stats = v["data"]["account_statz"].as_array().expect("statz");
        assert_eq!(stats.len(), 1, "{v}");
        assert_eq!(stats[0]["acc"], "APP", "{v}");
        // And who it is.
        let v = request(&app, "$SYS.REQ.USER.INFO", "").await;
        assert_eq!(v["data"]["user"], "a", "{v}");
        assert_eq!(v["data"]["account"], "APP", "{v}");
        assert_eq!(v["data"]["account_name"], "APP", "{v}");
    })
    .await;
}
