//! Gateways (super-clusters): two 2-node clusters, `A` and `B`, joined by
//! gateways; rnats on both sides, and rnats `A` with a nats-server 2.15 `B`.
//! Messages both ways, unsubscribe, queue groups (the local cluster first,
//! then the remote one), request-reply across clusters (`_GR_` replies).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
#[path = "common/certs.rs"]
mod certs;

use rnats_itest::cluster::{free_ports, interest_barrier, Kind, NodeOpts, TestCluster};

/// The tests of this file run one at a time: each picks free ports for
/// its servers' listeners, and another test's many outgoing connections
/// could take one of them before the server binds it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two clusters whose servers all list both clusters' gateway URLs.
struct Super {
    a: TestCluster,
    b: TestCluster,
    gw_a: Vec<u16>,
}

fn gateway_block(name: &str, port: u16, a: &[u16], b: &[u16]) -> String {
    let urls = |ps: &[u16]| {
        ps.iter()
            .map(|p| format!("\"nats://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "gateway {{\n  name: \"{name}\"\n  listen: \"127.0.0.1:{port}\"\n  gateways: [\n    {{ name: \"A\", urls: [{}] }}\n    {{ name: \"B\", urls: [{}] }}\n  ]\n}}",
        urls(a),
        urls(b)
    )
}

fn cluster(
    name: &str,
    kinds: [Kind; 2],
    own: &[u16],
    a: &[u16],
    b: &[u16],
    extra: &[&[&str]; 2],
) -> TestCluster {
    let mut c = TestCluster::new(2);
    c.name = name.to_string();
    for (i, kind) in kinds.into_iter().enumerate() {
        let block = gateway_block(name, own[i], a, b);
        c.add(
            NodeOpts::new(kind)
                .server_name(&format!("{name}{i}"))
                .cluster_name(name)
                .routes_to(&[0, 1])
                .conf_lines(&[&block])
                .args(extra[i]),
        );
    }
    c
}

impl Super {
    fn start(a: [Kind; 2], b: [Kind; 2]) -> Super {
        Self::start_with(a, b, &[&[], &[]], &[&[], &[]])
    }

    fn start_with(
        a: [Kind; 2],
        b: [Kind; 2],
        extra_a: &[&[&str]; 2],
        extra_b: &[&[&str]; 2],
    ) -> Super {
        let gwa = free_ports(2);
        let gwb = free_ports(2);
        let ca = cluster("A", a, &gwa, &gwa, &gwb, extra_a);
        let cb = cluster("B", b, &gwb, &gwa, &gwb, extra_b);
        Super {
            a: ca,
            b: cb,
            gw_a: gwa,
        }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.a.logs(), self.b.logs())
    }
}

async fn formed(s: &Super) {
    s.a.assert_formed().await;
    s.b.assert_formed().await;
    // Every server reaches every server of the other cluster.
    for i in 0..2 {
        for j in 0..2 {
            let x = s.a.connect(i).await;
            let y = s.b.connect(j).await;
            interest_barrier(&x, &y).await;
            interest_barrier(&y, &x).await;
        }
    }
}

async fn next(sub: &mut async_nats::Subscriber, what: &str) -> async_nats::Message {
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(m)) => m,
        _ => panic!("{what}: nothing received within 5s"),
    }
}

/// Messages both ways; after an unsubscribe (and a barrier proving the
/// `RS-` arrived) a publish reaches nobody: the marker after it comes first.
async fn messages_both_ways(s: &Super) {
    let a0 = s.a.connect(0).await;
    let b1 = s.b.connect(1).await;
    let mut sub_b = b1.subscribe("gw.b.>").await.unwrap();
    interest_barrier(&a0, &b1).await;
    a0.publish("gw.b.1", Bytes::from_static(b"hello b"))
        .await
        .unwrap();
    let m = next(&mut sub_b, "a0 -> b1").await;
    assert_eq!(m.subject.as_str(), "gw.b.1");
    assert_eq!(&m.payload[..], b"hello b");

    let a1 = s.a.connect(1).await;
    let b0 = s.b.connect(0).await;
    let mut sub_a = a1.subscribe("gw.a").await.unwrap();
    interest_barrier(&b0, &a1).await;
    let mut h = async_nats::HeaderMap::new();
    h.insert("X-Gw", "1");
    b0.publish_with_headers("gw.a", h, Bytes::from_static(b"hello a"))
        .await
        .unwrap();
    let m = next(&mut sub_a, "b0 -> a1").await;
    assert_eq!(&m.payload[..], b"hello a");
    assert_eq!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("X-Gw"))
            .map(|v| v.as_str()),
        Some("1")
    );

    // Unsubscribe stops the traffic.
    sub_b.unsubscribe().await.unwrap();
    let mut marker = b1.subscribe("gw.marker").await.unwrap();
    interest_barrier(&a0, &b1).await;
    let mut sub_b2 = b1.subscribe("gw.b.2").await.unwrap();
    interest_barrier(&a0, &b1).await;
    a0.publish("gw.b.1", Bytes::from_static(b"late"))
        .await
        .unwrap();
    a0.publish("gw.b.2", Bytes::from_static(b"second"))
        .await
        .unwrap();
    a0.publish("gw.marker", Bytes::new()).await.unwrap();
    let m = next(&mut sub_b2, "after unsubscribe").await;
    assert_eq!(&m.payload[..], b"second");
    next(&mut marker, "marker").await;
}

/// A queue group with members in both clusters: the publisher's cluster
/// serves every message; with its member gone, the remote cluster does.
async fn queue_prefers_local(s: &Super) {
    let a0 = s.a.connect(0).await;
    let a1 = s.a.connect(1).await;
    let b0 = s.b.connect(0).await;
    let mut qa = a1.queue_subscribe("gw.q", "workers".into()).await.unwrap();
    let mut qb = b0.queue_subscribe("gw.q", "workers".into()).await.unwrap();
    interest_barrier(&a0, &a1).await;
    interest_barrier(&a0, &b0).await;
    let n = 20;
    for i in 0..n {
        a0.publish("gw.q", Bytes::from(format!("{i}")))
            .await
            .unwrap();
    }
    for i in 0..n {
        let m = next(&mut qa, "local queue member").await;
        assert_eq!(m.payload, Bytes::from(format!("{i}")));
    }
    // Failover: the local member leaves; the remote cluster's takes over.
    qa.unsubscribe().await.unwrap();
    interest_barrier(&a0, &a1).await;
    for i in 0..n {
        a0.publish("gw.q", Bytes::from(format!("r{i}")))
            .await
            .unwrap();
    }
    for i in 0..n {
        let m = next(&mut qb, "remote queue member").await;
        assert_eq!(m.payload, Bytes::from(format!("r{i}")));
    }
}

/// `client.request` across clusters, both ways.
async fn request_reply(s: &Super) {
    for (req_side, resp_side) in [(&s.a, &s.b), (&s.b, &s.a)] {
        let requester = req_side.connect(0).await;
        let responder = resp_side.connect(1).await;
        let mut svc = responder.subscribe("gw.svc").await.unwrap();
        let r2 = responder.clone();
        let task = tokio::spawn(async move {
            while let Some(m) = svc.next().await {
                if let Some(reply) = m.reply {
                    let mut body = b"re: ".to_vec();
                    body.extend_from_slice(&m.payload);
                    r2.publish(reply, body.into()).await.unwrap();
                    r2.flush().await.unwrap();
                }
            }
        });
        interest_barrier(&requester, &responder).await;
        for i in 0..3 {
            let resp = tokio::time::timeout(
                Duration::from_secs(5),
                requester.request("gw.svc", Bytes::from(format!("q{i}"))),
            )
            .await
            .expect("request timed out")
            .expect("request failed");
            assert_eq!(resp.payload, Bytes::from(format!("re: q{i}")));
        }
        task.abort();
    }
}

/// A third cluster `C` configured with gateway `A` only: `A` learns it from
/// the inbound connection, tells its route peers, and tells `C` about `B`
/// (gossip), so every server of the three clusters reaches every other.
async fn implicit_gateways(s: &Super, c_kind: Kind) {
    let port = free_ports(1)[0];
    let block = format!(
        "gateway {{\n  name: \"C\"\n  listen: \"127.0.0.1:{port}\"\n  gateways: [ {{ name: \"A\", urls: [\"nats://127.0.0.1:{}\"] }} ]\n}}",
        s.gw_a[0]
    );
    let mut c = TestCluster::new(1);
    c.name = "C".into();
    c.add(
        NodeOpts::new(c_kind)
            .server_name("C0")
            .cluster_name("C")
            .routes_to(&[0])
            .conf_lines(&[&block]),
    );
    let c0 = c.connect(0).await;
    for side in [&s.a, &s.b] {
        for i in 0..2 {
            let x = side.connect(i).await;
            for (from, to) in [(&x, &c0), (&c0, &x)] {
                let barrier = interest_barrier(from, to);
                if tokio::time::timeout(Duration::from_secs(8), barrier)
                    .await
                    .is_err()
                {
                    panic!(
                        "{}{i} and C0 do not reach each other\n{}\n{}",
                        side.name,
                        s.logs(),
                        c.logs()
                    );
                }
            }
        }
    }
    let errors = rnats_itest::cluster::error_lines(&c.logs());
    assert!(errors.is_empty(), "errors in C's log: {errors:?}");
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// The first non-empty `inbound_gateways[remote]` list among servers.
async fn some_inbound(http: &[u16], remote: &str) -> serde_json::Value {
    for &p in http {
        let v = rnats_itest::http::get_json(p, "/gatewayz?accs=1").await;
        if v["inbound_gateways"][remote]
            .as_array()
            .is_some_and(|l| !l.is_empty())
        {
            return v["inbound_gateways"][remote][0].clone();
        }
    }
    panic!("no server has an inbound gateway from {remote}");
}

/// `/gatewayz?accs=1` of rnats nodes (`A`) and nats-server nodes (`B`):
/// the same keys at every level, the right names, accounts interest-only;
/// and the `/varz` `gateway` section.
async fn gatewayz_shape(rnats_http: &[u16], reference_http: &[u16]) {
    use rnats_itest::http::get_json;
    let r = get_json(rnats_http[0], "/gatewayz?accs=1").await;
    let g = get_json(reference_http[0], "/gatewayz?accs=1").await;
    assert_eq!(r["name"], "A", "{r:#}");
    assert_eq!(g["name"], "B");
    assert_eq!(keys(&r), keys(&g), "top level: {r:#}\n{g:#}");
    let ro = &r["outbound_gateways"]["B"];
    let go = &g["outbound_gateways"]["A"];
    assert_eq!(ro["configured"], true, "{r:#}");
    assert_eq!(keys(ro), keys(go), "outbound: {r:#}\n{g:#}");
    assert_eq!(keys(&ro["connection"]), keys(&go["connection"]));
    assert_eq!(ro["connection"]["kind"], "Gateway");
    let racc = ro["accounts"].as_array().expect("rnats outbound accounts");
    let gacc = go["accounts"]
        .as_array()
        .expect("reference outbound accounts");
    assert!(
        racc.iter()
            .any(|a| a["name"] == "$G" && a["interest_mode"] == "Interest-Only"),
        "{r:#}"
    );
    let counts = ["num_subs", "num_queue_subs"];
    let without_counts = |v: &serde_json::Value| -> BTreeSet<String> {
        keys(v)
            .into_iter()
            .filter(|k| !counts.contains(&k.as_str()))
            .collect()
    };
    assert_eq!(without_counts(&racc[0]), without_counts(&gacc[0]));
    let ri = some_inbound(rnats_http, "B").await;
    let gi = some_inbound(reference_http, "A").await;
    assert_eq!(keys(&ri), keys(&gi), "inbound: {ri:#}\n{gi:#}");
    assert_eq!(keys(&ri["connection"]), keys(&gi["connection"]));
    let v = get_json(rnats_http[0], "/varz").await;
    let gv = get_json(reference_http[0], "/varz").await;
    assert_eq!(v["gateway"]["name"], "A");
    assert_eq!(keys(&v["gateway"]), keys(&gv["gateway"]), "varz gateway");
    assert_eq!(v["gateway"]["gateways"][0]["name"], "A");
}

/// Our cluster's gateway URLs reach every server (route INFO `gateway_url`):
/// the INFO on `A0`'s gateway port lists `A1`'s URL too.
async fn gateway_urls_gossiped(s: &Super) {
    use tokio::io::AsyncReadExt;
    let want: Vec<String> = s.gw_a.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", s.gw_a[0]))
            .await
            .unwrap();
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
            .await
            .expect("gateway INFO")
            .unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).to_string();
        let json = line.trim_start_matches("INFO ").trim();
        let info: serde_json::Value = serde_json::from_str(json).expect("INFO json");
        let urls: Vec<String> = info["gateway_urls"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(info["gateway"], "A");
        assert_eq!(info["gateway_iom"], true);
        if want.iter().all(|w| urls.contains(w)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gateway_urls {urls:?} lack {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server of `B` dies: `A`'s outbound connections to it are redialled to
/// the other one (its URL was configured or learned), and traffic resumes.
async fn remote_server_killed(s: &mut Super) {
    s.b.nodes[0].kill();
    let b1 = s.b.connect(1).await;
    for i in 0..2 {
        let a = s.a.connect(i).await;
        interest_barrier(&a, &b1).await;
        interest_barrier(&b1, &a).await;
    }
}

#[tokio::test]
async fn gateway_rnats_rnats() {
    let _serial = SERIAL.lock().await;
    let mut s = Super::start([Kind::Rnats; 2], [Kind::Rnats; 2]);
    formed(&s).await;
    messages_both_ways(&s).await;
    queue_prefers_local(&s).await;
    request_reply(&s).await;
    implicit_gateways(&s, Kind::Rnats).await;
    gateway_urls_gossiped(&s).await;
    let errors = rnats_itest::cluster::error_lines(&s.logs());
    assert!(errors.is_empty(), "errors in logs: {errors:?}");
    remote_server_killed(&mut s).await;
}

#[tokio::test]
async fn gateway_rnats_with_reference_cluster() {
    let _serial = SERIAL.lock().await;
    if rnats_itest::cluster::reference_or_skip("gateway_rnats_with_reference_cluster").is_none() {
        return;
    }
    let http = free_ports(4);
    let h: Vec<String> = http.iter().map(u16::to_string).collect();
    let s = Super::start_with(
        [Kind::Rnats; 2],
        [Kind::Reference; 2],
        &[&["-m", &h[0]], &["-m", &h[1]]],
        &[&["-m", &h[2]], &["-m", &h[3]]],
    );
    formed(&s).await;
    messages_both_ways(&s).await;
    queue_prefers_local(&s).await;
    request_reply(&s).await;
    implicit_gateways(&s, Kind::Reference).await;
    gatewayz_shape(&http[..2], &http[2..]).await;
    let errors = rnats_itest::cluster::error_lines(&s.logs());
    assert!(errors.is_empty(), "errors in logs: {errors:?}");
}

/// A bad `gateway {}` stops the server before it starts, with nats-server's
/// words (and the reference's, when present).
#[test]
fn gateway_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("gateway { port: 7299 }", "gateway has no name"),
        (
            "gateway { name: A }",
            "gateway \"A\" has no port specified (select -1 for random port)",
        ),
        (
            "gateway { name: A, port: 7299, gateways: [ {url: \"nats://127.0.0.1:1\"} ] }",
            "gateway in the list 0 has no name",
        ),
        (
            "gateway { name: A, port: 7299, gateways: [ {name: B} ] }",
            "gateway \"B\" has no URL",
        ),
    ];
    let reference = rnats_itest::cluster::reference_bin();
    if reference.is_none() {
        eprintln!("gateway_config_errors: reference nats-server missing, checking rnats only");
    }
    for (i, (conf, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.conf"));
        std::fs::write(&path, format!("port: -1\n{conf}\n")).unwrap();
        let bins = std::iter::once(rnats_itest::server_bin()).chain(reference.clone());
        for bin in bins {
            let out = std::process::Command::new(&bin)
                .arg("-c")
                .arg(&path)
                .output()
                .expect("run server");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{}: {conf} accepted", bin.display());
            assert!(
                err.lines()
                    .any(|l| l.ends_with(&format!("-server: {want}"))),
                "{}: {conf}: stderr {err}",
                bin.display()
            );
        }
    }
}

/// Reads from a raw gateway socket until `needle` arrives; returns all bytes
/// read up to it.
async fn read_until(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut Vec<u8>,
    needle: &[u8],
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pos) = rnats_itest::find(buf, needle) {
            return buf.drain(..pos + needle.len()).collect();
        }
        let mut tmp = [0u8; 8192];
        match tokio::time::timeout_at(deadline, rd.read(&mut tmp)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&tmp[..n]),
            _ => panic!(
                "gateway socket: {:?} not received; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(buf)
            ),
        }
    }
}

/// Optimistic mode on the wire: a remote gateway (a raw socket playing a
/// server that does not promise interest-only mode) gets every message
/// until it answers `RS-`; after `INFO gateway_cmd` 2/3 around its `RS+`,
/// only the subjects it subscribed.
#[tokio::test]
async fn gateway_optimistic_mode_on_the_wire() {
    let _serial = SERIAL.lock().await;
    use tokio::io::AsyncWriteExt;
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fport = fake.local_addr().unwrap().port();
    let server = rnats_itest::Server::start_with_config(&format!(
        "gateway {{ name: A, listen: \"127.0.0.1:-1\", gateways: [ {{ name: X, url: \"nats://127.0.0.1:{fport}\" }} ] }}"
    ));
    let (sock, _) = tokio::time::timeout(Duration::from_secs(10), fake.accept())
        .await
        .expect("rnats dials the remote gateway")
        .unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let mut buf = Vec::new();
    wr.write_all(b"INFO {\"server_id\":\"FAKEX\",\"server_name\":\"x1\",\"proto\":1,\"headers\":true,\"gateway\":\"X\"}\r\n")
        .await
        .unwrap();
    let hello = read_until(&mut rd, &mut buf, b"\"gateway\":\"A\"").await;
    assert!(rnats_itest::contains(&hello, b"CONNECT {"), "{hello:?}");
    let client = rnats_itest::connect(&server).await;

    // Optimistic: everything goes.
    client.publish("foo", "1".into()).await.unwrap();
    client.flush().await.unwrap();
    read_until(&mut rd, &mut buf, b"RMSG $G foo 1\r\n1\r\n").await;

    // No interest in foo: it stops, bar still goes.
    wr.write_all(b"RS- $G foo\r\nPING\r\n").await.unwrap();
    read_until(&mut rd, &mut buf, b"PONG\r\n").await;
    client.publish("foo", "2".into()).await.unwrap();
    client.publish("bar", "3".into()).await.unwrap();
    client.flush().await.unwrap();
    let seen = read_until(&mut rd, &mut buf, b"RMSG $G bar 1\r\n3\r\n").await;
    assert!(
        !rnats_itest::contains(&seen, b"RMSG $G foo"),
        "{}",
        String::from_utf8_lossy(&seen)
    );

    // The remote switches $G to interest-only with its one subscription.
    wr.write_all(
        b"INFO {\"gateway\":\"X\",\"gateway_cmd\":2,\"gateway_cmd_payload\":\"JEc=\"}\r\nRS+ $G baz\r\nINFO {\"gateway\":\"X\",\"gateway_cmd\":3,\"gateway_cmd_payload\":\"JEc=\"}\r\nPING\r\n",
    )
    .await
    .unwrap();
    read_until(&mut rd, &mut buf, b"PONG\r\n").await;
    client.publish("bar", "4".into()).await.unwrap();
    client.publish("baz", "5".into()).await.unwrap();
    client.flush().await.unwrap();
    let seen = read_until(&mut rd, &mut buf, b"RMSG $G baz 1\r\n5\r\n").await;
    assert!(
        !rnats_itest::contains(&seen, b"RMSG $G bar"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
}

/// A one-server cluster `name` with `conf` (a `gateway {}` block).
fn single(name: &str, kind: Kind, conf: String) -> TestCluster {
    let mut c = TestCluster::new(1);
    c.name = name.to_string();
    c.add(
        NodeOpts::new(kind)
            .server_name(&format!("{name}0"))
            .cluster_name(name)
            .routes_to(&[0])
            .conf_lines(&[&conf]),
    );
    c
}

/// The reference as the other cluster when present, else rnats (said so).
fn reference_or_rnats(test: &str) -> Kind {
    if rnats_itest::cluster::reference_bin().is_some() {
        return Kind::Reference;
    }
    eprintln!("{test}: reference nats-server missing, the other cluster is rnats");
    Kind::Rnats
}

/// `a` logs `why` for `c`'s connection and never registers it.
async fn refused(a: &TestCluster, c: &TestCluster, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !a.logs().contains(why) {
        assert!(
            std::time::Instant::now() < deadline,
            "A did not log {why:?} for C:\n{}\n{}",
            a.logs(),
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !a.logs().contains("Inbound gateway connection from \"C\""),
        "{}",
        a.logs()
    );
}

/// `gateway { authorization }`: credentials in the remote URLs get in
/// (rnats with nats-server as `B` when present), wrong ones are refused.
#[tokio::test]
async fn gateway_authorization() {
    let _serial = SERIAL.lock().await;
    let b_kind = reference_or_rnats("gateway_authorization");
    let p = free_ports(3);
    let block = |name: &str, port: u16, remote: &str, creds: &str, rport: u16| {
        format!(
            "gateway {{\n  name: \"{name}\"\n  listen: \"127.0.0.1:{port}\"\n  authorization {{ user: gw, password: s3cret }}\n  gateways: [ {{ name: \"{remote}\", url: \"nats://{creds}@127.0.0.1:{rport}\" }} ]\n}}"
        )
    };
    let a = single("A", Kind::Rnats, block("A", p[0], "B", "gw:s3cret", p[1]));
    let b = single("B", b_kind, block("B", p[1], "A", "gw:s3cret", p[0]));
    let (ca, cb) = (a.connect(0).await, b.connect(0).await);
    interest_barrier(&ca, &cb).await;
    interest_barrier(&cb, &ca).await;
    let c = single("C", Kind::Rnats, block("C", p[2], "A", "gw:wrong", p[0]));
    refused(&a, &c, "authentication error").await;
}

/// Gateways over TLS (handshake first, certificates verified both ways):
/// rnats with nats-server (or rnats) as `B`; a cluster whose certificate
/// comes from another CA is refused.
#[tokio::test]
async fn gateway_tls() {
    let _serial = SERIAL.lock().await;
    let b_kind = reference_or_rnats("gateway_tls");
    let dir = tempfile::tempdir().unwrap();
    let good = certs::node_certs(dir.path(), "good");
    let rogue = certs::node_certs(dir.path(), "rogue");
    let p = free_ports(3);
    let block = |name: &str,
                 port: u16,
                 remote: &str,
                 rport: u16,
                 c: &(PathBuf, PathBuf, PathBuf)| {
        format!(
            "gateway {{\n  name: \"{name}\"\n  listen: \"127.0.0.1:{port}\"\n  tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", timeout: 3 }}\n  gateways: [ {{ name: \"{remote}\", url: \"nats://127.0.0.1:{rport}\" }} ]\n}}",
            c.0.display(),
            c.1.display(),
            c.2.display()
        )
    };
    let a = single("A", Kind::Rnats, block("A", p[0], "B", p[1], &good));
    let b = single("B", b_kind, block("B", p[1], "A", p[0], &good));
    let (ca, cb) = (a.connect(0).await, b.connect(0).await);
    interest_barrier(&ca, &cb).await;
    interest_barrier(&cb, &ca).await;
    let c = single("C", Kind::Rnats, block("C", p[2], "A", p[0], &rogue));
    refused(&a, &c, "TLS gateway handshake error").await;
}

/// A remote server named like a server of our cluster (here `A1`, in
/// cluster `B`) is refused by the other server of `A` too, which knows the
/// name from its route (nats-server's `isDuplicateServerName`).
#[tokio::test]
async fn gateway_duplicate_server_name_in_cluster() {
    let _serial = SERIAL.lock().await;
    let gwa = free_ports(2);
    let gwb = free_ports(2);
    let a = cluster("A", [Kind::Rnats; 2], &gwa, &gwa, &gwb, &[&[], &[]]);
    a.assert_formed().await;
    let mut b = TestCluster::new(2);
    b.name = "B".into();
    for (i, name) in ["B0", "A1"].into_iter().enumerate() {
        // B's servers know only A0's gateway URL.
        let block = gateway_block("B", gwb[i], &gwa[..1], &gwb);
        b.add(
            NodeOpts::new(Kind::Rnats)
                .server_name(name)
                .cluster_name("B")
                .routes_to(&[0, 1])
                .conf_lines(&[&block]),
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let a0_log = || a.nodes[0].log();
    while !a0_log().contains("Remote server has a duplicate name: \"A1\"") {
        assert!(
            std::time::Instant::now() < deadline,
            "A0 did not refuse B's \"A1\":\n{}\n{}",
            a.logs(),
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
