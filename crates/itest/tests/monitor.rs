//! HTTP monitoring (`-m`): `/varz`, `/connz`, `/subsz`, `/healthz`, `/jsz`
//! and the small endpoints, checked against traffic the test drives itself
//! (raw protocol clients where exact counts matter, async-nats for
//! JetStream), plus the ports file and the startup log line.

use std::time::Duration;

use rnats_itest::{connect, start_jetstream, within, RawClient, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);
const T: Duration = Duration::from_secs(5);

/// The monitoring port, read from the `Starting http monitor on` log line.
fn monitor_port(server: &Server) -> u16 {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("Starting http monitor on "))
        .unwrap_or_else(|| panic!("no monitor log line in:\n{log}"));
    line.rsplit(':').next().unwrap().trim().parse().unwrap()
}

fn start(extra: &[&str]) -> (Server, u16) {
    let mut args = vec!["-m", "-1"];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    let p = monitor_port(&s);
    (s, p)
}

struct Http {
    status: u16,
    headers: String,
    body: String,
}

/// A bare `GET` over HTTP/1.0.
async fn get(port: u16, path: &str) -> Http {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect monitor");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut raw))
        .await
        .expect("monitor response in time")
        .unwrap();
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("http head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Http {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

async fn get_json(port: u16, path: &str) -> Value {
    let r = get(port, path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert!(r.headers.contains("content-type: application/json"));
    assert!(r.headers.contains("access-control-allow-origin: *"));
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

/// Polls `path` until `pred` holds (counters are published per read batch).
async fn poll_json(port: u16, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let v = get_json(port, path).await;
        if pred(&v) || tokio::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn raw(server: &Server, name: &str) -> (RawClient, u64) {
    let mut c = RawClient::connect(server.port()).await;
    let cid = c.info()["client_id"].as_u64().unwrap();
    c.handshake_with(&format!(
        r#"{{"verbose":false,"pedantic":false,"protocol":1,"name":"{name}","lang":"raw","version":"9.9"}}"#
    ))
    .await;
    (c, cid)
}

async fn ping(c: &mut RawClient) {
    c.send(b"PING\r\n").await;
    let (got, closed) = c.read_until_contains(b"PONG\r\n", T).await;
    assert!(!closed, "closed: {:?}", String::from_utf8_lossy(&got));
}

fn conn_by_cid(connz: &Value, cid: u64) -> &Value {
    connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cid"] == cid)
        .unwrap_or_else(|| panic!("cid {cid} not in {connz}"))
}

#[tokio::test]
async fn varz_reports_config_and_traffic() {
    let (server, mport) = start(&[]);
    assert!(server
        .log()
        .contains(&format!("Starting http monitor on 0.0.0.0:{mport}")));
    within(LIMIT, "varz", async {
        // The server's own (`$SYS`) subscriptions count too, as in nats-server.
        let base = get_json(mport, "/varz").await["subscriptions"]
            .as_u64()
            .unwrap();
        let (mut sub, _) = raw(&server, "sub").await;
        let (mut pubc, _) = raw(&server, "pub").await;
        sub.send(b"SUB v.* 1\r\n").await;
        ping(&mut sub).await;
        pubc.send(b"PUB v.a 5\r\nhello\r\nPUB v.b 10\r\n0123456789\r\nPUB nobody 3\r\nabc\r\n")
            .await;
        ping(&mut pubc).await;
        let v = poll_json(mport, "/varz", |v| v["out_msgs"] == 2).await;
        assert_eq!(v["in_msgs"], 3);
        assert_eq!(v["in_bytes"], 18);
        assert_eq!(v["in_client_msgs"], 3);
        assert_eq!(v["out_msgs"], 2);
        assert_eq!(v["out_bytes"], 15);
        assert_eq!(v["connections"], 2);
        assert_eq!(v["total_connections"], 2);
        assert_eq!(v["subscriptions"], base + 1);
        assert_eq!(v["version"], "2.15.0");
        assert_eq!(v["proto"], 1);
        assert_eq!(v["port"], server.port());
        // Started with `-m -1`: reported as configured, like nats-server.
        assert_eq!(v["http_port"], -1);
        assert_eq!(v["server_id"], sub.info()["server_id"]);
        assert_eq!(v["max_payload"], 1048576);
        assert_eq!(v["ping_interval"], 120_000_000_000u64);
        assert_eq!(v["write_deadline"], 10_000_000_000u64);
        assert_eq!(v["auth_timeout"], 2);
        assert_eq!(v["max_connections"], 65536);
        assert_eq!(v["jetstream"], serde_json::json!({}));
        assert!(v["mem"].as_i64().unwrap() > 0);
        assert!(v["cores"].as_u64().unwrap() >= 1);
        assert!(v["uptime"].as_str().unwrap().ends_with('s'));
        assert!(v["start"].as_str().unwrap().ends_with('Z'));
        assert!(v["http_req_stats"]["/varz"].as_u64().unwrap() >= 1);
        assert_eq!(v["slow_consumer_stats"]["clients"], 0);

        // Closed connections still count in total_connections.
        drop(pubc);
        let v = poll_json(mport, "/varz", |v| v["connections"] == 1).await;
        assert_eq!(v["connections"], 1);
        assert_eq!(v["total_connections"], 2);
    })
    .await;
}

#[tokio::test]
async fn connz_lists_sorts_pages_and_filters() {
    let (server, mport) = start(&[]);
    within(LIMIT, "connz", async {
        let (mut a, cid_a) = raw(&server, "alpha").await;
        let (mut b, cid_b) = raw(&server, "beta").await;
        let (mut c, cid_c) = raw(&server, "gamma").await;
        b.send(b"SUB foo 1\r\nSUB bar.* q 2\r\n").await;
        ping(&mut b).await;
        a.send(b"PUB foo 2\r\nhi\r\nPUB bar.x 3\r\nabc\r\nPUB zzz 1\r\nz\r\n")
            .await;
        ping(&mut a).await;
        c.send(b"SUB only.c 7\r\n").await;
        ping(&mut c).await;

        let v = poll_json(mport, "/connz", |v| conn_by_cid(v, cid_b)["out_msgs"] == 2).await;
        assert_eq!(v["num_connections"], 3);
        assert_eq!(v["total"], 3);
        assert_eq!(v["limit"], 1024);
        let cids: Vec<u64> = v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cid"].as_u64().unwrap())
            .collect();
        assert_eq!(cids, vec![cid_a, cid_b, cid_c], "sorted by cid");
        let ca = conn_by_cid(&v, cid_a);
        assert_eq!(ca["name"], "alpha");
        assert_eq!(ca["lang"], "raw");
        assert_eq!(ca["version"], "9.9");
        assert_eq!(ca["kind"], "Client");
        assert_eq!(ca["type"], "nats");
        assert_eq!(ca["ip"], "127.0.0.1");
        assert_eq!(ca["in_msgs"], 3);
        assert_eq!(ca["in_bytes"], 6);
        assert_eq!(ca["out_msgs"], 0);
        assert_eq!(ca["subscriptions"], 0);
        assert!(ca.get("subscriptions_list").is_none());
        let cb = conn_by_cid(&v, cid_b);
        assert_eq!(cb["out_msgs"], 2);
        assert_eq!(cb["out_bytes"], 5);
        assert_eq!(cb["in_msgs"], 0);
        assert_eq!(cb["subscriptions"], 2);
        assert_eq!(cb["pending_bytes"], 0);

        let first = |v: &Value| v["connections"][0]["cid"].as_u64().unwrap();
        assert_eq!(
            first(&get_json(mport, "/connz?sort=msgs_from").await),
            cid_a
        );
        assert_eq!(
            first(&get_json(mport, "/connz?sort=bytes_from").await),
            cid_a
        );
        assert_eq!(first(&get_json(mport, "/connz?sort=msgs_to").await), cid_b);
        assert_eq!(first(&get_json(mport, "/connz?sort=bytes_to").await), cid_b);
        assert_eq!(first(&get_json(mport, "/connz?sort=subs").await), cid_b);
        assert_eq!(first(&get_json(mport, "/connz?sort=last").await), cid_c);
        // Uptime ascending: the newest connection first.
        assert_eq!(first(&get_json(mport, "/connz?sort=uptime").await), cid_c);

        let page = get_json(mport, "/connz?limit=1&offset=1").await;
        assert_eq!(page["num_connections"], 1);
        assert_eq!(page["total"], 3);
        assert_eq!(page["offset"], 1);
        assert_eq!(page["limit"], 1);
        assert_eq!(first(&page), cid_b);
        let past = get_json(mport, "/connz?offset=10").await;
        assert_eq!(past["num_connections"], 0);
        assert_eq!(past["connections"], serde_json::json!([]));

        let one = get_json(mport, &format!("/connz?cid={cid_b}")).await;
        assert_eq!(one["num_connections"], 1);
        assert_eq!(one["limit"], 1);
        assert_eq!(first(&one), cid_b);

        let subs = get_json(mport, &format!("/connz?cid={cid_b}&subs=1")).await;
        let mut list: Vec<String> = subs["connections"][0]["subscriptions_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        list.sort();
        assert_eq!(list, vec!["bar.*", "foo"]);
        let det = get_json(mport, &format!("/connz?cid={cid_b}&subs=detail")).await;
        let det = det["connections"][0]["subscriptions_list_detail"]
            .as_array()
            .unwrap()
            .clone();
        let q = det.iter().find(|d| d["subject"] == "bar.*").unwrap();
        assert_eq!(q["qgroup"], "q");
        assert_eq!(q["sid"], "2");
        assert_eq!(q["msgs"], 1);
        assert_eq!(q["cid"], cid_b);

        // Closed connections.
        drop(c);
        let closed = poll_json(mport, "/connz?state=closed", |v| v["total"] == 1).await;
        assert_eq!(closed["num_connections"], 1);
        let cc = &closed["connections"][0];
        assert_eq!(cc["cid"], cid_c);
        assert_eq!(cc["name"], "gamma");
        assert_eq!(cc["reason"], "Client Closed");
        assert_eq!(cc["subscriptions"], 1);
        assert!(cc["stop"].as_str().unwrap().ends_with('Z'));
        let open = get_json(mport, "/connz").await;
        assert_eq!(open["total"], 2);
        let all = get_json(mport, "/connz?state=all").await;
        assert_eq!(all["total"], 3);
        assert_eq!(all["num_connections"], 3);
        let by_cid = get_json(mport, &format!("/connz?state=closed&cid={cid_c}")).await;
        assert_eq!(first(&by_cid), cid_c);
        let stop = get_json(mport, "/connz?state=closed&sort=stop").await;
        assert_eq!(first(&stop), cid_c);

        // Bad parameters answer 400 with nats-server's texts.
        let r = get(mport, "/connz?sort=nope").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body, "invalid sorting option: nope");
        let r = get(mport, "/connz?sort=stop").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body, "sort by stop only valid on closed connections");
        let r = get(mport, "/connz?limit=x").await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        let r = get(mport, "/connz?state=bogus").await;
        assert_eq!(r.status, 400);
        drop((a, b));
    })
    .await;
}

#[tokio::test]
async fn connz_shows_async_nats_client() {
    let (server, mport) = start(&[]);
    within(LIMIT, "connz async-nats", async {
        let client = async_nats::ConnectOptions::new()
            .name("itest-monitor")
            .connect(server.url())
            .await
            .unwrap();
        let cid = client.server_info().client_id;
        let v = poll_json(mport, "/connz", |v| v["num_connections"] == 1).await;
        let c = conn_by_cid(&v, cid);
        assert_eq!(c["name"], "itest-monitor");
        assert_eq!(c["lang"], "rust");
        assert!(!c["version"].as_str().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn subsz_counts_lists_and_tests() {
    let (server, mport) = start(&[]);
    within(LIMIT, "subsz", async {
        // The server's own (`$SYS`) subscriptions count too, as in nats-server.
        let v = get_json(mport, "/subsz").await;
        let base = v["num_subscriptions"].as_u64().unwrap();
        let base_inserts = v["num_inserts"].as_u64().unwrap();
        let (mut a, cid) = raw(&server, "a").await;
        a.send(b"SUB foo.* 1\r\nSUB foo.> 2\r\nSUB baz 3\r\nSUB foo.bar g 4\r\n")
            .await;
        ping(&mut a).await;
        let v = get_json(mport, "/subsz").await;
        assert_eq!(v["num_subscriptions"], base + 4);
        assert_eq!(v["num_inserts"], base_inserts + 4);
        assert_eq!(v["num_removes"], 0);
        assert!(v.get("subscriptions_list").is_none());
        a.send(b"UNSUB 3\r\n").await;
        ping(&mut a).await;
        let v = get_json(mport, "/subsz").await;
        assert_eq!(v["num_subscriptions"], base + 3);
        assert_eq!(v["num_inserts"], base_inserts + 4);
        assert_eq!(v["num_removes"], 1);

        let v = get_json(mport, "/subsz?subs=1").await;
        let total = base + 3;
        assert_eq!(v["total"], total);
        let list = v["subscriptions_list"].as_array().unwrap();
        assert_eq!(list.len() as u64, total);
        // The server's own live in the system account, as in nats-server.
        assert!(list
            .iter()
            .all(|s| s["account"] == "$G" || s["account"] == "$SYS"));
        assert!(list
            .iter()
            .filter(|s| s["cid"] == cid)
            .all(|s| s["account"] == "$G"));
        assert_eq!(list.iter().filter(|s| s["cid"] == cid).count(), 3);

        let v = get_json(mport, "/subsz?subs=1&test=foo.bar").await;
        assert_eq!(v["total"], 3);
        let v = get_json(mport, "/subsz?subs=1&test=foo.bar.baz").await;
        assert_eq!(v["total"], 1);
        assert_eq!(v["subscriptions_list"][0]["subject"], "foo.\u{3e}");
        let v = get_json(
            mport,
            &format!("/subsz?subs=1&limit=2&offset={}", total - 1),
        )
        .await;
        assert_eq!(v["subscriptions_list"].as_array().unwrap().len(), 1);

        let r = get(mport, "/subsz?test=foo.*").await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            "invalid test subject, must be valid publish subject: foo.*"
        );
        // Go's encoder escapes '>' in strings.
        let r = get(mport, "/subsz?subs=1").await;
        assert!(r.body.contains(r#""foo.\u003e""#), "{}", r.body);
    })
    .await;
}

#[tokio::test]
async fn healthz_without_and_with_jetstream() {
    let (_server, mport) = start(&[]);
    within(LIMIT, "healthz", async {
        for q in ["", "?js-enabled-only=true", "?js-server-only=1"] {
            let r = get(mport, &format!("/healthz{q}")).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.body, r#"{"status":"ok"}"#);
        }
        let r = get(mport, "/healthz?stream=S").await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            r#"{"status":"error","error":"\"account\" must not be empty when checking stream health"}"#
        );
        let r = get(mport, "/healthz?js-enabled-only=maybe").await;
        assert_eq!(r.status, 400);
    })
    .await;

    let store = tempfile::tempdir().unwrap();
    let server = start_jetstream(store.path(), &["-m", "-1"]);
    let mport = monitor_port(&server);
    within(LIMIT, "healthz js", async {
        let js = async_nats::jetstream::new(connect(&server).await);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let r = get(mport, "/healthz").await;
        assert_eq!((r.status, r.body.as_str()), (200, r#"{"status":"ok"}"#));
        let r = get(mport, "/healthz?account=$G&stream=S").await;
        assert_eq!((r.status, r.body.as_str()), (200, r#"{"status":"ok"}"#));
        let r = get(mport, "/healthz?account=$G&stream=NOPE").await;
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body,
            r#"{"status":"unavailable","error":"JetStream stream \"NOPE\" not found on account \"$G\""}"#
        );
        let r = get(mport, "/healthz?account=$G&stream=NOPE&details=1").await;
        assert_eq!(r.status, 404);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errors"][0]["type"], "STREAM");
    })
    .await;
}

#[tokio::test]
async fn jsz_counts_streams_and_messages() {
    let (_plain, mport) = start(&[]);
    within(LIMIT, "jsz disabled", async {
        let v = get_json(mport, "/jsz").await;
        assert_eq!(v["disabled"], true);
        assert_eq!(v["streams"], 0);
        assert_eq!(
            v["config"],
            serde_json::json!({"max_memory": 0, "max_storage": 0})
        );
    })
    .await;

    let store = tempfile::tempdir().unwrap();
    let server = start_jetstream(store.path(), &["-m", "-1"]);
    let mport = monitor_port(&server);
    within(LIMIT, "jsz", async {
        let js = async_nats::jetstream::new(connect(&server).await);
        for (name, storage) in [
            ("MEM", async_nats::jetstream::stream::StorageType::Memory),
            ("FILE", async_nats::jetstream::stream::StorageType::File),
        ] {
            js.create_stream(async_nats::jetstream::stream::Config {
                name: name.into(),
                subjects: vec![format!("{}.>", name.to_lowercase())],
                storage,
                ..Default::default()
            })
            .await
            .unwrap();
        }
        for i in 0..3 {
            js.publish(format!("file.{i}"), "payload".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        js.publish("mem.x", "m".into())
            .await
            .unwrap()
            .await
            .unwrap();

        let v = get_json(mport, "/jsz").await;
        assert!(v.get("disabled").is_none());
        assert_eq!(v["streams"], 2);
        assert_eq!(v["messages"], 4);
        assert_eq!(v["consumers"], 0);
        assert_eq!(v["accounts"], 1);
        assert_eq!(v["total"], 1);
        assert_eq!(v["api"]["level"], 5);
        assert!(v["api"]["total"].as_u64().unwrap() >= 2);
        assert!(v["storage"].as_u64().unwrap() > 0);
        assert!(v["memory"].as_u64().unwrap() > 0);
        assert_eq!(
            v["bytes"].as_u64().unwrap(),
            v["storage"].as_u64().unwrap() + v["memory"].as_u64().unwrap()
        );
        assert!(v["config"]["store_dir"]
            .as_str()
            .unwrap()
            .ends_with("jetstream"));
        assert!(v.get("account_details").is_none());

        let v = get_json(mport, "/jsz?streams=1").await;
        let acc = &v["account_details"][0];
        assert_eq!(acc["name"], "$G");
        let details = acc["stream_detail"].as_array().unwrap();
        assert_eq!(details.len(), 2);
        let file = details.iter().find(|d| d["name"] == "FILE").unwrap();
        assert_eq!(file["state"]["messages"], 3);
        assert_eq!(file["state"]["first_seq"], 1);
        assert_eq!(file["state"]["last_seq"], 3);
        assert!(file.get("config").is_none());
        let v = get_json(mport, "/jsz?streams=1&config=1").await;
        let file = v["account_details"][0]["stream_detail"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "FILE")
            .unwrap()
            .clone();
        assert_eq!(file["config"]["storage"], "file");
        let v = get_json(mport, "/jsz?acc=$G").await;
        assert_eq!(v["account_details"][0]["id"], "$G");
        assert!(v["account_details"][0].get("stream_detail").is_none());

        let varz = get_json(mport, "/varz").await;
        assert_eq!(varz["jetstream"]["stats"]["accounts"], 1);
        assert!(varz["jetstream"]["config"]["max_storage"].as_i64().unwrap() > 0);
    })
    .await;
}

#[tokio::test]
async fn index_and_small_endpoints() {
    let (_server, mport) = start(&[]);
    within(LIMIT, "small endpoints", async {
        let r = get(mport, "/").await;
        assert_eq!(r.status, 200);
        assert!(r.headers.contains("content-type: text/html"));
        for ep in [
            "varz", "connz", "subsz", "jsz", "healthz", "routez", "leafz",
        ] {
            assert!(r.body.contains(&format!("<a href=./{ep}")), "{ep}");
        }
        let r = get(mport, "/nope").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body, "404 page not found\n");

        let v = get_json(mport, "/routez").await;
        assert_eq!(v["num_routes"], 0);
        assert_eq!(v["routes"], serde_json::json!([]));
        let v = get_json(mport, "/gatewayz").await;
        assert_eq!(v["outbound_gateways"], serde_json::json!({}));
        assert_eq!(v["inbound_gateways"], serde_json::json!({}));
        let v = get_json(mport, "/leafz").await;
        assert_eq!(v["leafnodes"], 0);
        assert_eq!(v["leafs"], serde_json::json!([]));
        let v = get_json(mport, "/accountz").await;
        assert_eq!(v["accounts"], serde_json::json!(["$G", "$SYS"]));
        assert_eq!(v["system_account"], "$SYS");
        let v = get_json(mport, "/accountz?acc=$G").await;
        assert_eq!(v["account_detail"]["account_name"], "$G");
        let r = get(mport, "/accountz?acc=NOPE").await;
        assert_eq!(r.status, 400);
        let v = get_json(mport, "/accstatz").await;
        assert_eq!(v["account_statz"], serde_json::json!([]));
        let v = get_json(mport, "/accstatz?unused=1").await;
        assert_eq!(v["account_statz"][0]["acc"], "$G");
        assert_eq!(v["account_statz"][1]["acc"], "$SYS");

        let v = get_json(mport, "/varz").await;
        let stats = &v["http_req_stats"];
        for p in [
            "/",
            "/routez",
            "/gatewayz",
            "/leafz",
            "/accountz",
            "/accstatz",
            "/varz",
        ] {
            assert!(stats[p].as_u64().unwrap() >= 1, "{p} counted: {stats}");
        }
    })
    .await;
}

#[tokio::test]
async fn ports_file_lists_monitoring_url() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap().to_string();
    let (server, mport) = start(&["--ports_file_dir", &dir_s]);
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(".ports"))
        .expect("ports file");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
    assert_eq!(
        v["nats"],
        serde_json::json!([format!("nats://127.0.0.1:{}", server.port())])
    );
    assert_eq!(
        v["monitoring"],
        serde_json::json!([format!("http://127.0.0.1:{mport}")])
    );
}

#[test]
fn monitor_port_in_use_is_fatal() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = std::process::Command::new(rnats_itest::server_bin())
        .args(["-a", "127.0.0.1", "-p", "-1", "-m", &port])
        .output()
        .expect("run server");
    assert!(!out.status.success());
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains(&format!(
            "Can't start monitoring: can't listen to the monitor port: listen tcp 0.0.0.0:{port}: bind: address already in use"
        )),
        "{log}"
    );
}
