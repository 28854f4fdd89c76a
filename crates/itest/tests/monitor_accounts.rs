//! HTTP monitoring across accounts: `/connz` (`auth=true` shows each
//! connection's user and account, `acc=` keeps one account's), `/subsz?acc=`,
//! `/accountz` (every account, `acc=` one account's exports, imports and
//! sublist), `/accstatz` (accounts with connections, `unused=true` all) and
//! `/varz` subscriptions over all accounts. Same config as nats-server's
//! tests would use; passes against it too (`RNATS_SERVER_BIN`).

use std::time::Duration;

use rnats_itest::{sync, within, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
http: "127.0.0.1:-1"
accounts {
  SYS { users = [{user: sys, password: sys}] }
  APP {
    users = [{user: a, password: a}]
    exports = [{service: "svc.>"}, {stream: "st.>"}]
  }
  B {
    users = [{user: b, password: b}]
    imports = [{service: {account: APP, subject: "svc.>"}}]
  }
}
system_account: SYS
"#;

fn monitor_port(server: &Server) -> u16 {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("Starting http monitor on "))
        .unwrap_or_else(|| panic!("no monitor log line in:\n{log}"));
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line}"))
}

/// `GET path` over HTTP/1.0: (status, body).
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect monitor");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("http head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_string())
}

async fn get_json(port: u16, path: &str) -> Value {
    let (status, body) = get(port, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

async fn as_user(server: &Server, user: &str) -> async_nats::Client {
    let c = async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
        .name(format!("{user}-conn"))
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    sync(&c).await;
    c
}

#[tokio::test]
async fn connz_shows_accounts_and_filters_by_one() {
    let server = Server::start_with_config(CONFIG);
    let port = monitor_port(&server);
    within(LIMIT, "connz accounts", async {
        let _a = as_user(&server, "a").await;
        let _b = as_user(&server, "b").await;

        let v = get_json(port, "/connz?auth=true").await;
        let conns = v["connections"].as_array().expect("connections");
        assert_eq!(conns.len(), 2, "{v}");
        for c in conns {
            let user = c["authorized_user"].as_str().expect("authorized_user");
            let want = if user == "a" { "APP" } else { "B" };
            assert_eq!(c["account"], want, "{c}");
            assert_eq!(c["name_tag"], want, "{c}");
        }
        // Without auth=true the identity stays out.
        let v = get_json(port, "/connz").await;
        assert!(v["connections"][0].get("account").is_none(), "{v}");
        assert!(v["connections"][0].get("authorized_user").is_none(), "{v}");

        let v = get_json(port, "/connz?acc=APP").await;
        assert_eq!(v["num_connections"], 1, "{v}");
        assert_eq!(v["total"], 1, "{v}");
        assert_eq!(v["connections"][0]["name"], "a-conn", "{v}");
        let v = get_json(port, "/connz?acc=SYS").await;
        assert_eq!(v["num_connections"], 0, "{v}");
    })
    .await;
}

#[tokio::test]
async fn accountz_lists_every_account_and_details_one() {
    let server = Server::start_with_config(CONFIG);
    let port = monitor_port(&server);
    within(LIMIT, "accountz", async {
        let _a = as_user(&server, "a").await;
        let v = get_json(port, "/accountz").await;
        assert_eq!(v["system_account"], "SYS", "{v}");
        let mut names: Vec<&str> = v["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["$G", "APP", "B", "SYS"], "{v}");

        let v = get_json(port, "/accountz?acc=APP").await;
        let d = &v["account_detail"];
        assert_eq!(d["account_name"], "APP", "{v}");
        assert_eq!(d["client_connections"], 1, "{v}");
        assert_eq!(
            d["exports"][0],
            serde_json::json!({"subject": "svc.>", "type": "service", "response_type": "Singleton"}),
            "{v}"
        );
        assert_eq!(
            d["exports"][1],
            serde_json::json!({"subject": "st.>", "type": "stream"}),
            "{v}"
        );
        // The default system imports, USER.INFO sharing the requester.
        let imports = d["imports"].as_array().expect("imports");
        assert_eq!(imports.len(), 4, "{v}");
        let user_info = imports
            .iter()
            .find(|i| i["local_subject"] == "$SYS.REQ.USER.INFO")
            .expect("user info import");
        assert_eq!(user_info["subject"], "$SYS.REQ.USER.APP.INFO");
        assert_eq!(user_info["account"], "SYS");
        assert_eq!(user_info["share"], true);
        // The account's own subscriptions include the 4 imports'.
        assert!(d["sublist_stats"]["num_subscriptions"].as_u64() >= Some(4), "{v}");

        let v = get_json(port, "/accountz?acc=B").await;
        let imports = v["account_detail"]["imports"].as_array().expect("imports");
        let svc = imports
            .iter()
            .find(|i| i["account"] == "APP")
            .unwrap_or_else(|| panic!("B's import of APP in {v}"));
        assert_eq!(svc["subject"], "svc.>");
        assert_eq!(svc["type"], "service");

        let (status, body) = get(port, "/accountz?acc=NOPE").await;
        assert_eq!(status, 400);
        assert!(body.contains("Account NOPE does not exist"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn accstatz_subsz_and_varz_per_account() {
    let server = Server::start_with_config(CONFIG);
    let port = monitor_port(&server);
    within(LIMIT, "accstatz", async {
        let a = as_user(&server, "a").await;
        let _sub = a.subscribe("only.in.app").await.expect("subscribe");
        sync(&a).await;

        let v = get_json(port, "/accstatz").await;
        let stats = v["account_statz"].as_array().expect("account_statz");
        assert_eq!(stats.len(), 1, "only APP has connections: {v}");
        assert_eq!(stats[0]["acc"], "APP");
        assert_eq!(stats[0]["conns"], 1);
        assert!(stats[0]["received"]["msgs"].as_u64() >= Some(2), "{v}");

        let v = get_json(port, "/accstatz?unused=true").await;
        let accs: Vec<&str> = v["account_statz"]
            .as_array()
            .expect("account_statz")
            .iter()
            .filter_map(|s| s["acc"].as_str())
            .collect();
        for want in ["$G", "APP", "B", "SYS"] {
            assert!(accs.contains(&want), "{want} missing: {v}");
        }

        let v = get_json(port, "/subsz?acc=APP&subs=1").await;
        let list = v["subscriptions_list"].as_array().expect("subscriptions");
        assert!(list.iter().any(|s| s["subject"] == "only.in.app"), "{v}");
        assert!(list.iter().all(|s| s["account"] == "APP"), "{v}");
        let v = get_json(port, "/subsz?acc=B&subs=1").await;
        let list = v["subscriptions_list"].as_array().expect("subscriptions");
        assert!(list.iter().all(|s| s["subject"] != "only.in.app"), "{v}");

        // /varz counts every account's subscriptions.
        let all = get_json(port, "/subsz").await["num_subscriptions"]
            .as_u64()
            .expect("count");
        let app = get_json(port, "/subsz?acc=APP").await["num_subscriptions"]
            .as_u64()
            .expect("count");
        let varz = get_json(port, "/varz").await;
        assert!(all > app, "all {all} app {app}");
        assert_eq!(varz["subscriptions"].as_u64(), Some(all), "{varz}");
        assert_eq!(varz["system_account"], "SYS");
    })
    .await;
}
