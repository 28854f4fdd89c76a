//! `/metrics` (Prometheus text format) and `/dashboard`: the exposition is
//! read over a raw HTTP/1.0 socket, parsed by a small strict parser below
//! (families whole, `# TYPE` before samples, label escapes), and its values
//! are checked against the traffic the test drove: core counters against
//! raw-protocol publishes, stream and consumer numbers against a JetStream
//! stream with a pull consumer in a known state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{self, pull, AckPolicy},
    stream,
};
use bytes::Bytes;
use futures::TryStreamExt;
use rnats_itest::{connect, free_port, start_jetstream, within, RawClient, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);
const T: Duration = Duration::from_secs(5);

fn start() -> (Server, u16, tempfile::TempDir) {
    let store = tempfile::tempdir().expect("temp store dir");
    let mport = free_port();
    let p = mport.to_string();
    let server = start_jetstream(store.path(), &["-m", &p]);
    (server, mport, store)
}

/// A bare `GET` over HTTP/1.0: (status, lower-cased head, body).
async fn get(port: u16, path: &str) -> (u16, String, String) {
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
    (status, head.to_ascii_lowercase(), body.to_string())
}

// ---------------------------------------------------------------------------
// A strict little parser for the text exposition format
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        let mut current: Option<String> = None;
        let mut seen_families = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let at = || format!("line {}: {line:?}", n + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(valid_name(name), "{}", at());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
                assert!(valid_name(name), "{}", at());
                assert!(
                    ["counter", "gauge", "untyped", "summary", "histogram"].contains(&kind),
                    "{}",
                    at()
                );
                assert!(
                    seen_families.insert(name.to_string()),
                    "family {name} written twice ({})",
                    at()
                );
                e.types.insert(name.to_string(), kind.to_string());
                current = Some(name.to_string());
                continue;
            }
            assert!(!line.starts_with('#'), "stray comment {}", at());
            let (name, rest) = match line.find(['{', ' ']) {
                Some(i) => line.split_at(i),
                None => panic!("no value {}", at()),
            };
            assert!(valid_name(name), "{}", at());
            assert_eq!(
                current.as_deref(),
                Some(name),
                "sample outside its family {}",
                at()
            );
            let (labels, rest) = if let Some(r) = rest.strip_prefix('{') {
                parse_labels(r).unwrap_or_else(|| panic!("bad labels {}", at()))
            } else {
                (BTreeMap::new(), rest)
            };
            let value = rest.trim_start();
            let value: f64 = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value {}", at())),
            };
            e.samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        e
    }

    /// The value of the one sample of `name` whose labels include `want`.
    fn get(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let hits: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert_eq!(hits.len(), 1, "{name} {want:?}: {hits:?}");
        hits[0].value
    }

    /// The sample of `name` labelled exactly `want` (the connz totals).
    fn exact(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hits: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert_eq!(hits.len(), 1, "{name} {want:?}: {hits:?}");
        hits[0].value
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y"}` -> (labels, the rest after `}`).
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut out = BTreeMap::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Some((out, rest));
        }
        let (k, rest) = s.split_once("=\"")?;
        if !valid_name(k) || k.contains(':') {
            return None;
        }
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    '\\' => v.push('\\'),
                    '"' => v.push('"'),
                    'n' => v.push('\n'),
                    _ => return None,
                },
                '"' => break i,
                c => v.push(c),
            }
        };
        if out.insert(k.to_string(), v).is_some() {
            return None;
        }
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

async fn scrape(port: u16) -> Exposition {
    let (status, head, body) = get(port, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Exposition::parse(&body)
}

/// Scrapes until `pred` holds (counters are published per read batch).
async fn scrape_until(port: u16, pred: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let e = scrape(port).await;
        if pred(&e) || tokio::time::Instant::now() > deadline {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn raw(server: &Server, name: &str) -> (RawClient, String) {
    let mut c = RawClient::connect(server.port()).await;
    let name = serde_json::to_string(name).unwrap();
    c.handshake_with(&format!(
        r#"{{"verbose":false,"pedantic":false,"name":{name},"lang":"raw","version":"1"}}"#
    ))
    .await;
    let cid = c.info()["client_id"].as_u64().unwrap().to_string();
    (c, cid)
}

async fn ping(c: &mut RawClient) {
    c.send(b"PING\r\n").await;
    let (got, _) = c.read_until_contains(b"PONG\r\n", T).await;
    assert!(got.ends_with(b"PONG\r\n"), "no PONG: {got:?}");
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn core_counters_match_traffic() {
    let (server, mport, _store) = start();
    within(LIMIT, "metrics core", async {
        let (mut sub, sub_cid) = raw(&server, "sub \"one\"").await;
        let (mut publ, pub_cid) = raw(&server, "pub").await;
        sub.send(b"SUB m.> 1\r\n").await;
        ping(&mut sub).await;
        // 7 messages with payloads of 1..=7 bytes, all delivered, and one
        // to nobody.
        let mut burst = Vec::new();
        for i in 1..=7usize {
            burst.extend_from_slice(format!("PUB m.{i} {i}\r\n{}\r\n", "x".repeat(i)).as_bytes());
        }
        burst.extend_from_slice(b"PUB nobody 3\r\nabc\r\n");
        publ.send(&burst).await;
        ping(&mut publ).await;
        let (got, _) = sub.read_until_contains(b"MSG m.7 1 7\r\n", T).await;
        assert!(
            got.ends_with(b"MSG m.7 1 7\r\n"),
            "subscriber got the burst"
        );

        let e = scrape_until(mport, |e| {
            e.has("gnatsd_varz_out_msgs")
                && e.get("gnatsd_varz_out_msgs", &[]) >= 7.0
                && e.get("gnatsd_varz_in_msgs", &[]) >= 8.0
        })
        .await;
        let sid = server_id(&e);
        let srv = [("server_id", sid.as_str())];
        let in_bytes = (1..=7).sum::<usize>() as f64 + 3.0;
        let out_bytes = (1..=7).sum::<usize>() as f64;
        assert_eq!(e.exact("gnatsd_varz_in_msgs", &srv), 8.0);
        assert_eq!(e.exact("gnatsd_varz_in_bytes", &srv), in_bytes);
        assert_eq!(e.exact("gnatsd_varz_out_msgs", &srv), 7.0);
        assert_eq!(e.exact("gnatsd_varz_out_bytes", &srv), out_bytes);
        assert_eq!(e.exact("gnatsd_varz_connections", &srv), 2.0);
        assert_eq!(e.exact("gnatsd_varz_total_connections", &srv), 2.0);
        assert_eq!(e.exact("gnatsd_varz_slow_consumers", &srv), 0.0);
        assert_eq!(e.exact("gnatsd_varz_max_payload", &srv), 1048576.0);
        assert!(e.exact("gnatsd_varz_mem", &srv) > 0.0);
        assert!(e.exact("gnatsd_varz_start", &srv) > 1.6e12, "epoch ms");
        assert!(e.exact("gnatsd_varz_jetstream_config_max_memory", &srv) > 0.0);
        assert_eq!(e.get("gnatsd_varz_version", &[("value", "2.15.0")]), 1.0);
        assert_eq!(e.types["gnatsd_varz_in_msgs"], "counter");
        assert_eq!(e.types["gnatsd_varz_connections"], "gauge");

        // Per connection, and the totals (labelled server_id only).
        let c = |cid: &str| [("cid", cid.to_string())];
        let by = |name: &str, cid: &str| {
            let l = c(cid);
            e.get(name, &[(l[0].0, l[0].1.as_str())])
        };
        assert_eq!(by("gnatsd_connz_in_msgs", &pub_cid), 8.0);
        assert_eq!(by("gnatsd_connz_in_bytes", &pub_cid), in_bytes);
        assert_eq!(by("gnatsd_connz_out_msgs", &sub_cid), 7.0);
        assert_eq!(by("gnatsd_connz_out_bytes", &sub_cid), out_bytes);
        assert_eq!(by("gnatsd_connz_subscriptions", &sub_cid), 1.0);
        assert_eq!(by("gnatsd_connz_in_msgs", &sub_cid), 0.0);
        assert_eq!(
            e.get(
                "gnatsd_connz_in_msgs",
                &[("cid", &sub_cid), ("name", "sub \"one\""), ("lang", "raw")]
            ),
            0.0
        );
        assert_eq!(e.exact("gnatsd_connz_in_msgs", &srv), 8.0);
        assert_eq!(e.exact("gnatsd_connz_out_msgs", &srv), 7.0);
        assert_eq!(e.exact("gnatsd_connz_total", &srv), 2.0);
        assert_eq!(e.exact("gnatsd_connz_num_connections", &srv), 2.0);
        assert!(by("gnatsd_connz_start", &sub_cid) > 1.6e12);

        assert_eq!(e.exact("gnatsd_healthz_status", &srv), 0.0);
        assert_eq!(
            e.get("gnatsd_healthz_status_value", &[("value", "ok")]),
            1.0
        );
        assert!(e.has("gnatsd_subsz_num_subscriptions"));
        assert!(e.has("process_cpu_seconds_total"));
        assert!(e.has("process_resident_memory_bytes"));
        assert_eq!(
            e.get(
                "jetstream_server_jetstream_disabled",
                &[("server_id", &sid)]
            ),
            0.0
        );

        // The scrape shows in /varz's request counts.
        let again = scrape(mport).await;
        assert!(again.get("gnatsd_varz_http_req_stats_metrics", &[]) >= 1.0);
        drop((sub, publ));
    })
    .await;
}

fn server_id(e: &Exposition) -> String {
    e.samples
        .iter()
        .find(|s| s.name == "gnatsd_varz_server_id")
        .and_then(|s| s.labels.get("value").cloned())
        .expect("gnatsd_varz_server_id")
}

#[tokio::test]
async fn stream_and_consumer_values() {
    let (server, mport, _store) = start();
    within(LIMIT, "metrics jetstream", async {
        let js = jetstream::new(connect(&server).await);
        let orders = js
            .create_stream(stream::Config {
                name: "ORDERS".into(),
                subjects: vec!["orders.>".into()],
                max_messages: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        js.create_stream(stream::Config {
            name: "EMPTY".into(),
            subjects: vec!["empty.>".into()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();
        for i in 0..10 {
            js.publish(
                format!("orders.{}", i % 3),
                Bytes::from(format!("order-{i}")),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
        let worker: consumer::PullConsumer = orders
            .create_consumer(pull::Config {
                durable_name: Some("worker".into()),
                description: Some("does \"work\"".into()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap();
        orders
            .create_consumer(pull::Config {
                durable_name: Some("idle".into()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap();
        let msgs: Vec<jetstream::Message> = worker
            .fetch()
            .max_messages(4)
            .messages()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(msgs.len(), 4);
        msgs[0].double_ack().await.unwrap();

        let e = scrape(mport).await;
        let (_, _, jsz) = get(mport, "/jsz?streams=1").await;
        let jsz: serde_json::Value = serde_json::from_str(&jsz).unwrap();
        let detail = &jsz["account_details"][0]["stream_detail"];
        let orders_bytes = detail
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "ORDERS")
            .unwrap()["state"]["bytes"]
            .as_f64()
            .unwrap();

        let s = [("stream_name", "ORDERS"), ("account", "$G")];
        assert_eq!(e.get("jetstream_stream_total_messages", &s), 10.0);
        assert_eq!(e.get("jetstream_stream_total_bytes", &s), orders_bytes);
        assert!(orders_bytes > 0.0);
        assert_eq!(e.get("jetstream_stream_first_seq", &s), 1.0);
        assert_eq!(e.get("jetstream_stream_last_seq", &s), 10.0);
        assert_eq!(e.get("jetstream_stream_consumer_count", &s), 2.0);
        assert_eq!(e.get("jetstream_stream_subject_count", &s), 3.0);
        assert_eq!(e.get("jetstream_stream_limit_messages", &s), 1000.0);
        assert_eq!(e.get("jetstream_stream_limit_bytes", &s), -1.0);
        let empty = [("stream_name", "EMPTY")];
        assert_eq!(e.get("jetstream_stream_total_messages", &empty), 0.0);
        assert_eq!(e.get("jetstream_stream_consumer_count", &empty), 0.0);

        let w = [("stream_name", "ORDERS"), ("consumer_name", "worker")];
        assert_eq!(e.get("jetstream_consumer_num_pending", &w), 6.0);
        assert_eq!(e.get("jetstream_consumer_num_ack_pending", &w), 3.0);
        assert_eq!(e.get("jetstream_consumer_num_redelivered", &w), 0.0);
        assert_eq!(e.get("jetstream_consumer_delivered_stream_seq", &w), 4.0);
        assert_eq!(e.get("jetstream_consumer_delivered_consumer_seq", &w), 4.0);
        assert_eq!(e.get("jetstream_consumer_ack_floor_stream_seq", &w), 1.0);
        assert_eq!(e.get("jetstream_consumer_ack_floor_consumer_seq", &w), 1.0);
        assert!(e.get("jetstream_consumer_last_delivery_seconds", &w) >= 0.0);
        assert_eq!(
            e.get(
                "jetstream_consumer_num_pending",
                &[
                    ("consumer_name", "worker"),
                    ("consumer_desc", "does \"work\"")
                ]
            ),
            6.0
        );
        let idle = [("stream_name", "ORDERS"), ("consumer_name", "idle")];
        assert_eq!(e.get("jetstream_consumer_num_pending", &idle), 10.0);
        assert_eq!(e.get("jetstream_consumer_num_ack_pending", &idle), 0.0);
        assert_eq!(e.get("jetstream_consumer_delivered_stream_seq", &idle), 0.0);

        assert_eq!(e.get("jetstream_server_total_streams", &[]), 2.0);
        assert_eq!(e.get("jetstream_server_total_consumers", &[]), 2.0);
        assert_eq!(e.get("jetstream_server_total_messages", &[]), 10.0);
        assert_eq!(
            e.get("jetstream_server_total_message_bytes", &[]),
            orders_bytes
        );
        assert_eq!(
            e.get("jetstream_account_storage_used", &[("account", "$G")]),
            orders_bytes
        );
        // Two stream and two consumer creations at least.
        assert!(e.get("gnatsd_varz_jetstream_stats_api_total", &[]) >= 4.0);
        assert_eq!(
            e.get("gnatsd_varz_jetstream_stats_storage", &[]),
            orders_bytes
        );
        assert_eq!(e.types["jetstream_consumer_num_pending"], "gauge");
    })
    .await;
}

#[tokio::test]
async fn dashboard_page_is_served() {
    let (_server, mport, _store) = start();
    within(LIMIT, "dashboard", async {
        let (status, head, body) = get(mport, "/dashboard").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/html; charset=utf-8"),
            "{head}"
        );
        assert!(body.starts_with("<!DOCTYPE html>"));
        for id in [
            "in-msgs-rate",
            "out-msgs-rate",
            "in-bytes-rate",
            "out-bytes-rate",
            "streams",
        ] {
            assert!(body.contains(&format!("id=\"{id}\"")), "{id}");
        }
        // Relative URLs only, and nothing fetched from elsewhere.
        assert!(body.contains("getJSON(\"varz\")"));
        assert!(!body.contains("http://") && !body.contains("https://") && !body.contains("src="));
    })
    .await;
}
