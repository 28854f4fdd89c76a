//! `/metrics`: the Prometheus text exposition format (version 0.0.4),
//! written by hand so the names are exactly prometheus-nats-exporter's and
//! the community Grafana dashboards (NATS 2279, JetStream 14725) work
//! against rnats without an exporter in between. `docs/METRICS.md` lists
//! every family and the exporter name it stands for.
//!
//! - `gnatsd_varz_*`: every number in `/varz`, flattened the way the
//!   exporter's generic collector flattens it (`jetstream.stats.memory` ->
//!   `gnatsd_varz_jetstream_stats_memory`), plus its string "label" fields.
//! - `gnatsd_connz_*`: the exporter's `connz_detailed` collector: totals
//!   labelled only `server_id`, and per-connection samples (the first
//!   [`MAX_CONNECTIONS`] by cid) labelled `cid`, `name`, ...
//! - `gnatsd_routez_*`: the exporter's routez collector: `num_routes` and
//!   per-route samples labelled `rid` (plus `remote_id`, `remote_name`).
//! - `gnatsd_subsz_*`, `gnatsd_healthz_*`: as the exporter's.
//! - `jetstream_server_*`, `jetstream_account_*`, `jetstream_stream_*`,
//!   `jetstream_consumer_*`: the exporter's jsz collector, with its labels.
//! - `process_*`: the usual process metrics for the server itself.
//!
//! Everything is read when scraped: handlers take the same short locks the
//! JSON endpoints take.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{health, routez, subsz, varz, Monitor};
use rnats_core::client::ClientShared;
use rnats_core::server::ServerState;

/// At most this many connections get per-connection `gnatsd_connz_*`
/// samples (lowest cids first); the totals always cover all of them.
pub const MAX_CONNECTIONS: usize = 1000;

/// The only account.
const ACCOUNT: &str = "$G";

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn handle(State(m): State<Arc<Monitor>>) -> Response {
    m.count("/metrics");
    let body = render(&m);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

/// The whole exposition.
pub fn render(m: &Monitor) -> String {
    let state = &m.state;
    let mut out = Exposition::default();
    let server = labels(&[("server_id", &state.server_id)]);
    varz_metrics(&mut out, m, &server);
    connz_metrics(&mut out, state, &server);
    routez_metrics(&mut out, state, &server);
    subsz_metrics(&mut out, state, &server);
    healthz_metrics(&mut out, state, &server);
    jetstream_metrics(&mut out, state);
    process_metrics(&mut out, state);
    out.text
}

// ---------------------------------------------------------------------------
// The text format
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

/// Families are written whole, one after the other, as the format asks.
#[derive(Default)]
pub struct Exposition {
    pub text: String,
}

impl Exposition {
    /// One family: `# HELP`, `# TYPE`, then each `(rendered labels, value)`.
    /// A family without samples is left out.
    pub fn family<'a>(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let t = &mut self.text;
        let _ = writeln!(t, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(t, "# TYPE {name} {}", kind.as_str());
        for (labels, v) in samples {
            let _ = writeln!(t, "{name}{labels} {}", value(v));
        }
    }

    /// A family with one sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, labels: &str, v: f64) {
        self.family(name, kind, help, [(labels, v)]);
    }
}

/// `{a="x",b="y"}` with the values escaped; `""` for no labels.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut s = String::with_capacity(16 * pairs.len());
    s.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Whole numbers without a fraction (exact up to 2^53), others in Rust's
/// shortest round-trip decimal form; the special values as the format
/// spells them.
pub fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A metric name from `/varz`-style keys: `[a-zA-Z0-9_:]`, other bytes as
/// `_`, runs of `_` folded, no leading or trailing `_` (the exporter's
/// `fqName`).
pub fn metric_name(parts: &[&str]) -> String {
    let joined = parts.join("_");
    let mut s = String::with_capacity(joined.len());
    for c in joined.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if c == '_' && s.ends_with('_') {
            continue;
        }
        s.push(c);
    }
    s.trim_matches('_').to_string()
}

// ---------------------------------------------------------------------------
// /varz
// ---------------------------------------------------------------------------

/// What the exporter skips (`objectToMetrics`'s `skipFQN`).
const VARZ_SKIP: &[&str] = &[
    "leaf",
    "trusted_operators_claim",
    "cluster_tls_timeout",
    "cluster_cluster_port",
    "cluster_auth_timeout",
    "gateway_port",
    "gateway_auth_timeout",
    "gateway_tls_timeout",
    "gateway_connect_retries",
];

/// String fields the exporter turns into metrics (`labelKeys`): times as
/// epoch milliseconds, the rest as a `value` label on a constant 1.
const VARZ_LABEL_KEYS: &[&str] = &[
    "server_id",
    "server_name",
    "version",
    "domain",
    "leader",
    "name",
    "start",
    "config_load_time",
];

/// Fields that only grow (the exporter calls every varz field a gauge;
/// rate() works on both).
fn varz_kind(fqn: &str) -> Kind {
    const COUNTERS: &[&str] = &[
        "total_connections",
        "in_msgs",
        "in_bytes",
        "in_client_msgs",
        "in_client_bytes",
        "out_msgs",
        "out_bytes",
        "out_client_msgs",
        "out_client_bytes",
        "slow_consumers",
        "stale_connections",
        "stalled_clients",
        "jetstream_stats_api_total",
        "jetstream_stats_api_errors",
        "disk_io_wait_stats_waits",
        "disk_io_wait_stats_wait_time",
    ];
    if COUNTERS.contains(&fqn)
        || fqn.starts_with("http_req_stats_")
        || fqn.starts_with("slow_consumer_stats_")
        || fqn.starts_with("stale_connection_stats_")
    {
        Kind::Counter
    } else {
        Kind::Gauge
    }
}

fn varz_help(fqn: &str) -> String {
    let h = match fqn {
        "connections" => "Number of open client connections",
        "total_connections" => "Client connections accepted since the server started",
        "subscriptions" => "Number of subscriptions in the sublist",
        "in_msgs" => "Messages received from clients",
        "in_bytes" => "Payload bytes received from clients",
        "out_msgs" => "Messages delivered to clients",
        "out_bytes" => "Payload bytes delivered to clients",
        "slow_consumers" => "Connections closed as slow consumers",
        "mem" => "Resident memory of the server process, bytes",
        "cpu" => "CPU use of the server process, percent of one core",
        "cores" => "CPU cores available",
        "max_payload" => "Largest payload a client may publish, bytes",
        "max_connections" => "Configured connection limit",
        "max_pending" => "Per-connection outbound buffer limit, bytes",
        "start" => "When the server started, Unix epoch milliseconds",
        "config_load_time" => "When the configuration was last loaded, Unix epoch milliseconds",
        "jetstream_stats_memory" => "JetStream memory storage in use, bytes",
        "jetstream_stats_storage" => "JetStream file storage in use, bytes",
        "jetstream_stats_api_total" => "JetStream API requests handled",
        "jetstream_stats_api_errors" => "JetStream API requests answered with an error",
        "jetstream_config_max_memory" => "JetStream memory storage limit, bytes",
        "jetstream_config_max_storage" => "JetStream file storage limit, bytes",
        _ => "",
    };
    if h.is_empty() {
        format!("{fqn} from /varz")
    } else {
        h.to_string()
    }
}

fn varz_metrics(out: &mut Exposition, m: &Monitor, server: &str) {
    let v = serde_json::to_value(varz::build(m)).unwrap_or(Value::Null);
    let mut flat = Vec::new();
    if let Value::Object(map) = &v {
        flatten(map, &mut Vec::new(), &mut flat);
    }
    let server_id = &m.state.server_id;
    for (fqn, leaf) in flat {
        let name = format!("gnatsd_varz_{fqn}");
        match leaf {
            Leaf::Number(n) => {
                out.single(&name, varz_kind(&fqn), &varz_help(&fqn), server, n);
            }
            Leaf::Time(ms) => out.single(&name, Kind::Gauge, &varz_help(&fqn), server, ms),
            Leaf::Text(s) => {
                let l = labels(&[("server_id", server_id), ("value", &s)]);
                out.single(&name, Kind::Gauge, &format!("{fqn} from /varz"), &l, 1.0);
            }
        }
    }
    let uptime = m.state.started.elapsed().as_secs_f64();
    out.single(
        "gnatsd_varz_uptime_seconds",
        Kind::Gauge,
        "Seconds since the server started (rnats; the exporter has only gnatsd_varz_start)",
        server,
        (uptime * 1000.0).round() / 1000.0,
    );
}

enum Leaf {
    Number(f64),
    Time(f64),
    Text(String),
}

/// The exporter's `objectToMetrics`: numbers at any depth, label-key
/// strings, objects recursed into; arrays and booleans left out.
fn flatten(
    map: &serde_json::Map<String, Value>,
    path: &mut Vec<String>,
    out: &mut Vec<(String, Leaf)>,
) {
    for (k, v) in map {
        path.push(k.clone());
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let fqn = metric_name(&parts);
        if !VARZ_SKIP.contains(&fqn.as_str()) {
            match v {
                Value::Number(n) => {
                    if let Some(f) = n.as_f64() {
                        out.push((fqn, Leaf::Number(f)));
                    }
                }
                Value::String(s) if VARZ_LABEL_KEYS.contains(&k.as_str()) => {
                    match chrono::DateTime::parse_from_rfc3339(s) {
                        Ok(t) => out.push((fqn, Leaf::Time(t.timestamp_millis() as f64))),
                        Err(_) => out.push((fqn, Leaf::Text(s.clone()))),
                    }
                }
                Value::Object(inner) => flatten(inner, path, out),
                _ => {}
            }
        }
        path.pop();
    }
}

// ---------------------------------------------------------------------------
// /connz
// ---------------------------------------------------------------------------

struct ConnRow {
    labels: String,
    pending_bytes: f64,
    subscriptions: f64,
    in_msgs: f64,
    out_msgs: f64,
    in_bytes: f64,
    out_bytes: f64,
    start_ms: f64,
    last_ms: f64,
    uptime_ms: f64,
    idle_ms: f64,
}

fn conn_row(state: &ServerState, c: &ClientShared, now: chrono::DateTime<chrono::Utc>) -> ConnRow {
    let start = state.wall_time(c.started);
    let last = start + chrono::Duration::milliseconds(c.last_in_ms.load(Ordering::Relaxed) as i64);
    let (out_msgs, out_bytes) = c.out.out_counts();
    let meta = c.meta.lock().clone();
    let subs = c.subs.lock().len();
    let cid = c.cid.to_string();
    let port = c.addr.port().to_string();
    let ip = c.addr.ip().to_string();
    ConnRow {
        labels: labels(&[
            ("server_id", &state.server_id),
            ("cid", &cid),
            ("kind", "Client"),
            ("type", "nats"),
            ("ip", &ip),
            ("port", &port),
            ("name", &meta.name),
            ("name_tag", ""),
            ("account", ACCOUNT),
            ("account_id", ACCOUNT),
            ("lang", &meta.lang),
            ("version", &meta.version),
            ("tls_version", ""),
            ("tls_cipher_suite", ""),
        ]),
        pending_bytes: c.out.pending() as f64,
        subscriptions: subs as f64,
        in_msgs: c.in_msgs.load(Ordering::Relaxed) as f64,
        out_msgs: out_msgs as f64,
        in_bytes: c.in_bytes.load(Ordering::Relaxed) as f64,
        out_bytes: out_bytes as f64,
        start_ms: start.timestamp_millis() as f64,
        last_ms: last.timestamp_millis() as f64,
        uptime_ms: (now - start).num_milliseconds().max(0) as f64,
        idle_ms: (now - last).num_milliseconds().max(0) as f64,
    }
}

fn connz_metrics(out: &mut Exposition, state: &ServerState, server: &str) {
    let mut clients: Vec<Arc<ClientShared>> = state.clients.lock().values().cloned().collect();
    clients.sort_by_key(|c| c.cid);
    let now = chrono::Utc::now();
    let rows: Vec<ConnRow> = clients.iter().map(|c| conn_row(state, c, now)).collect();
    let total = rows.len();
    let detailed = &rows[..total.min(MAX_CONNECTIONS)];
    let sum = |f: fn(&ConnRow) -> f64| rows.iter().map(f).sum::<f64>();

    out.single(
        "gnatsd_connz_num_connections",
        Kind::Gauge,
        "Connections with per-connection samples here",
        server,
        detailed.len() as f64,
    );
    out.single(
        "gnatsd_connz_total",
        Kind::Gauge,
        "Open client connections",
        server,
        total as f64,
    );
    out.single("gnatsd_connz_offset", Kind::Gauge, "offset", server, 0.0);
    out.single(
        "gnatsd_connz_limit",
        Kind::Gauge,
        "Most connections listed one by one",
        server,
        MAX_CONNECTIONS as f64,
    );

    type Field = fn(&ConnRow) -> f64;
    // Totals (labelled server_id only) then one sample per connection, in the
    // same family, as the exporter's connz_detailed collector writes them.
    let with_totals: [(&str, Kind, &str, Field); 6] = [
        (
            "pending_bytes",
            Kind::Gauge,
            "Bytes waiting to be written to the connection (no cid label: all connections)",
            |r| r.pending_bytes,
        ),
        (
            "subscriptions",
            Kind::Gauge,
            "Subscriptions of the connection (no cid label: all connections)",
            |r| r.subscriptions,
        ),
        (
            "in_bytes",
            Kind::Counter,
            "Payload bytes received from the connection (no cid label: all connections)",
            |r| r.in_bytes,
        ),
        (
            "out_bytes",
            Kind::Counter,
            "Payload bytes sent to the connection (no cid label: all connections)",
            |r| r.out_bytes,
        ),
        (
            "in_msgs",
            Kind::Counter,
            "Messages received from the connection (no cid label: all connections)",
            |r| r.in_msgs,
        ),
        (
            "out_msgs",
            Kind::Counter,
            "Messages sent to the connection (no cid label: all connections)",
            |r| r.out_msgs,
        ),
    ];
    for (name, kind, help, f) in with_totals {
        let totals = std::iter::once((server, sum(f)));
        let each = detailed.iter().map(|r| (r.labels.as_str(), f(r)));
        out.family(
            &format!("gnatsd_connz_{name}"),
            kind,
            help,
            totals.chain(each),
        );
    }
    let per_conn: [(&str, Kind, &str, Field); 5] = [
        (
            "start",
            Kind::Untyped,
            "epoch time at which the connection was started",
            |r| r.start_ms,
        ),
        (
            "last_activity",
            Kind::Untyped,
            "epoch time at which the last activity was registred",
            |r| r.last_ms,
        ),
        (
            "rtt",
            Kind::Gauge,
            "response time latency in microseconds",
            |_| 0.0,
        ),
        (
            "uptime",
            Kind::Untyped,
            "uptime duration in milliseconds",
            |r| r.uptime_ms,
        ),
        (
            "idle",
            Kind::Gauge,
            "idle time duration in milliseconds",
            |r| r.idle_ms,
        ),
    ];
    for (name, kind, help, f) in per_conn {
        let each = detailed.iter().map(|r| (r.labels.as_str(), f(r)));
        out.family(&format!("gnatsd_connz_{name}"), kind, help, each);
    }
}

// ---------------------------------------------------------------------------
// /subsz and /healthz
// ---------------------------------------------------------------------------

fn subsz_metrics(out: &mut Exposition, state: &ServerState, server: &str) {
    let v = serde_json::to_value(subsz::SublistStats::of(state)).unwrap_or(Value::Null);
    if let Value::Object(map) = v {
        for (k, v) in map {
            if let Some(n) = v.as_f64() {
                let kind = if matches!(k.as_str(), "num_inserts" | "num_removes" | "num_matches") {
                    Kind::Counter
                } else {
                    Kind::Gauge
                };
                out.single(
                    &format!("gnatsd_subsz_{k}"),
                    kind,
                    &format!("{k} from /subsz"),
                    server,
                    n,
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// /routez
// ---------------------------------------------------------------------------

/// The exporter's routez collector (`-routez`): the server's id, name and
/// route count, and per route an info gauge and its traffic. Per-route
/// samples carry the exporter's `server_id, rid` plus `remote_id` and
/// `remote_name`, so they can be read by peer without joining
/// `gnatsd_routez_route_info`.
fn routez_metrics(out: &mut Exposition, state: &ServerState, server: &str) {
    let server_id = &state.server_id;
    let routes = routez::snapshots(state);
    out.single(
        "gnatsd_routez_server_id",
        Kind::Gauge,
        "server_id",
        &labels(&[("server_id", server_id), ("value", server_id)]),
        1.0,
    );
    out.single(
        "gnatsd_routez_server_name",
        Kind::Gauge,
        "server_name",
        &labels(&[("server_id", server_id), ("value", &state.server_name)]),
        1.0,
    );
    out.single(
        "gnatsd_routez_num_routes",
        Kind::Gauge,
        "Route connections to other servers of the cluster",
        server,
        routes.len() as f64,
    );
    let now = chrono::Utc::now();
    let rows: Vec<(String, &rnats_cluster::routez::RouteSnapshot)> = routes
        .iter()
        .map(|r| {
            let rid = r.rid.to_string();
            let l = labels(&[
                ("server_id", server_id),
                ("rid", &rid),
                ("remote_id", &r.remote_id),
                ("remote_name", &r.remote_name),
            ]);
            (l, r)
        })
        .collect();
    let info: Vec<String> = routes
        .iter()
        .map(|r| {
            let rid = r.rid.to_string();
            labels(&[
                ("server_id", server_id),
                ("rid", &rid),
                ("remote_id", &r.remote_id),
                ("remote_name", &r.remote_name),
                ("account", r.account.as_deref().unwrap_or("")),
                ("ip", &r.ip),
                ("compression", "off"),
            ])
        })
        .collect();
    out.family(
        "gnatsd_routez_route_info",
        Kind::Gauge,
        "One per route connection, its peer in the labels",
        info.iter().map(|l| (l.as_str(), 1.0)),
    );
    type Field = fn(&rnats_cluster::routez::RouteSnapshot, chrono::DateTime<chrono::Utc>) -> f64;
    let families: [(&str, Kind, &str, Field); 7] = [
        (
            "gnatsd_routez_route_subscriptions",
            Kind::Gauge,
            "The peer's interest (subscriptions) on this route",
            |r, _| r.subscriptions.len() as f64,
        ),
        (
            "gnatsd_routez_route_uptime_seconds",
            Kind::Gauge,
            "Seconds since the route connected",
            |r, now| (now - r.start).num_milliseconds().max(0) as f64 / 1000.0,
        ),
        (
            "gnatsd_routez_route_in_msgs",
            Kind::Counter,
            "Messages received from the peer on this route",
            |r, _| r.in_msgs as f64,
        ),
        (
            "gnatsd_routez_route_out_msgs",
            Kind::Counter,
            "Messages sent to the peer on this route",
            |r, _| r.out_msgs as f64,
        ),
        (
            "gnatsd_routez_route_in_bytes",
            Kind::Counter,
            "Payload bytes received from the peer on this route",
            |r, _| r.in_bytes as f64,
        ),
        (
            "gnatsd_routez_route_out_bytes",
            Kind::Counter,
            "Payload bytes sent to the peer on this route",
            |r, _| r.out_bytes as f64,
        ),
        (
            "gnatsd_routez_route_pending_bytes",
            Kind::Gauge,
            "Bytes queued for the peer and not yet written (rnats; /routez pending_size)",
            |r, _| r.pending_bytes as f64,
        ),
    ];
    for (name, kind, help, f) in families {
        out.family(
            name,
            kind,
            help,
            rows.iter().map(|(l, r)| (l.as_str(), f(r, now))),
        );
    }
}

fn healthz_metrics(out: &mut Exposition, state: &ServerState, server: &str) {
    let h = health::healthz(state, &health::HealthzOptions::default());
    let ok = h.status == "ok";
    out.single(
        "gnatsd_healthz_status",
        Kind::Gauge,
        "status",
        server,
        if ok { 0.0 } else { 1.0 },
    );
    out.single(
        "gnatsd_healthz_status_value",
        Kind::Gauge,
        "status",
        &labels(&[("server_id", &state.server_id), ("value", h.status)]),
        if ok { 1.0 } else { 0.0 },
    );
}

// ---------------------------------------------------------------------------
// JetStream
// ---------------------------------------------------------------------------

struct StreamRow {
    labels: String,
    msgs: f64,
    bytes: f64,
    first_seq: f64,
    last_seq: f64,
    consumers: f64,
    subjects: f64,
    limit_bytes: f64,
    limit_msgs: f64,
    corrupt: f64,
}

struct ConsumerRow {
    labels: String,
    delivered_consumer_seq: f64,
    delivered_stream_seq: f64,
    last_delivery: Option<f64>,
    last_ack: Option<f64>,
    num_ack_pending: f64,
    num_redelivered: f64,
    num_waiting: f64,
    num_pending: f64,
    ack_floor_stream_seq: f64,
    ack_floor_consumer_seq: f64,
}

fn jetstream_metrics(out: &mut Exposition, state: &ServerState) {
    let opts = state.opts();
    let domain = opts.jetstream_domain.clone().unwrap_or_default();
    let name = state.server_name.as_str();
    let server_pairs: [(&str, &str); 6] = [
        ("server_id", &state.server_id),
        ("server_name", name),
        ("cluster", ""),
        ("domain", &domain),
        ("meta_leader", ""),
        ("is_meta_leader", "true"),
    ];
    let server = labels(&server_pairs);
    let Some(js) = state.slot::<rnats_jetstream::JetStream>() else {
        out.single(
            "jetstream_server_jetstream_disabled",
            Kind::Gauge,
            "JetStream disabled or not",
            &server,
            1.0,
        );
        return;
    };
    out.single(
        "jetstream_server_jetstream_disabled",
        Kind::Gauge,
        "JetStream disabled or not",
        &server,
        0.0,
    );

    // Every account's streams, by account then stream name.
    let accounts = js.accounts();
    let mut streams = Vec::new();
    for a in &accounts {
        let mut own = a.streams();
        own.sort_by(|x, y| x.name.cmp(&y.name));
        streams.extend(own.into_iter().map(|s| (a.clone(), s)));
    }
    let mut stream_rows = Vec::with_capacity(streams.len());
    let mut consumer_rows = Vec::new();
    let (mut total_msgs, mut total_bytes) = (0u64, 0u64);
    for (acc, s) in &streams {
        let acc_name = acc.account.name.as_str();
        let st = s.store.state();
        let cfg = s.config();
        let mut consumers = s.consumers();
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        total_msgs += st.msgs;
        total_bytes += st.bytes;
        let mut pairs: Vec<(&str, &str)> = server_pairs.to_vec();
        pairs.extend_from_slice(&[
            ("account", acc_name),
            ("account_name", acc_name),
            ("account_id", acc_name),
            ("stream_name", &s.name),
            ("stream_leader", name),
            ("is_stream_leader", "true"),
            ("stream_raft_group", ""),
        ]);
        stream_rows.push(StreamRow {
            labels: labels(&pairs),
            msgs: st.msgs as f64,
            bytes: st.bytes as f64,
            first_seq: st.first_seq as f64,
            last_seq: st.last_seq as f64,
            consumers: consumers.len() as f64,
            subjects: st.num_subjects as f64,
            limit_bytes: cfg.max_bytes as f64,
            limit_msgs: cfg.max_msgs as f64,
            corrupt: acc.corrupt_records(&s.name) as f64,
        });
        for c in &consumers {
            let info = c.info();
            let desc = info
                .config
                .as_ref()
                .map(|c| c.description.clone())
                .unwrap_or_default();
            let mut cpairs = pairs.clone();
            cpairs.extend_from_slice(&[
                ("consumer_name", &info.name),
                // A standalone server's consumer info has no cluster block:
                // the exporter leaves the leader empty and calls it leader.
                ("consumer_leader", ""),
                ("is_consumer_leader", "true"),
                ("consumer_desc", &desc),
            ]);
            let since = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| (info.ts - t).num_milliseconds() as f64 / 1000.0)
            };
            consumer_rows.push(ConsumerRow {
                labels: labels(&cpairs),
                delivered_consumer_seq: info.delivered.consumer_seq as f64,
                delivered_stream_seq: info.delivered.stream_seq as f64,
                last_delivery: since(info.delivered.last_active),
                last_ack: since(info.ack_floor.last_active),
                num_ack_pending: info.num_ack_pending as f64,
                num_redelivered: info.num_redelivered as f64,
                num_waiting: info.num_waiting as f64,
                num_pending: info.num_pending as f64,
                ack_floor_stream_seq: info.ack_floor.stream_seq as f64,
                ack_floor_consumer_seq: info.ack_floor.consumer_seq as f64,
            });
        }
    }

    let g = Kind::Gauge;
    out.single(
        "jetstream_server_max_memory",
        g,
        "JetStream Max Memory",
        &server,
        js.max_memory as f64,
    );
    out.single(
        "jetstream_server_max_storage",
        g,
        "JetStream Max Storage",
        &server,
        js.max_store as f64,
    );
    out.single(
        "jetstream_server_total_streams",
        g,
        "Total number of streams in JetStream",
        &server,
        streams.len() as f64,
    );
    out.single(
        "jetstream_server_total_consumers",
        g,
        "Total number of consumers in JetStream",
        &server,
        consumer_rows.len() as f64,
    );
    out.single(
        "jetstream_server_total_messages",
        g,
        "Total number of stored messages in JetStream",
        &server,
        total_msgs as f64,
    );
    out.single(
        "jetstream_server_total_message_bytes",
        g,
        "Total number of bytes stored in JetStream",
        &server,
        total_bytes as f64,
    );

    // One series per account; an unlimited account shows -1 where the
    // exporter shows nats-server's -1-as-uint64 (1.8e19).
    type AField = fn(&rnats_jetstream::JsAccount) -> f64;
    let account_fams: [(&str, &str, AField); 4] = [
        (
            "max_memory",
            "JetStream Account Max Memory in bytes (-1: no limit)",
            |a| a.limits.max_memory as f64,
        ),
        (
            "max_storage",
            "JetStream Account Max Storage in bytes (-1: no limit)",
            |a| a.limits.max_file as f64,
        ),
        (
            "storage_used",
            "Total number of bytes used by JetStream storage",
            |a| a.usage().1 as f64,
        ),
        (
            "memory_used",
            "Total number of bytes used by JetStream memory",
            |a| a.usage().0 as f64,
        ),
    ];
    let account_labels: Vec<String> = accounts
        .iter()
        .map(|a| {
            let n = a.account.name.as_str();
            let mut apairs: Vec<(&str, &str)> = server_pairs.to_vec();
            apairs.extend_from_slice(&[("account", n), ("account_name", n), ("account_id", n)]);
            labels(&apairs)
        })
        .collect();
    for (n, help, f) in account_fams {
        let rows = accounts
            .iter()
            .zip(&account_labels)
            .map(|(a, l)| (l.as_str(), f(a)));
        out.family(&format!("jetstream_account_{n}"), g, help, rows);
    }

    type SField = fn(&StreamRow) -> f64;
    let stream_fams: [(&str, &str, SField); 8] = [
        ("total_messages", "Total number of messages from a stream", |r| r.msgs),
        ("total_bytes", "Total stored bytes from a stream", |r| r.bytes),
        ("first_seq", "First sequence from a stream", |r| r.first_seq),
        ("last_seq", "Last sequence from a stream", |r| r.last_seq),
        ("consumer_count", "Total number of consumers from a stream", |r| r.consumers),
        ("subject_count", "Total number of subjects in a stream", |r| r.subjects),
        (
            "limit_bytes",
            "The maximum configured storage limit (in bytes) for a JetStream stream. A value of -1 indicates no limit.",
            |r| r.limit_bytes,
        ),
        (
            "limit_messages",
            "The maximum number of messages allowed in a JetStream stream as per its configuration. A value of -1 indicates no limit.",
            |r| r.limit_msgs,
        ),
    ];
    for (n, help, f) in stream_fams {
        let rows = stream_rows.iter().map(|r| (r.labels.as_str(), f(r)));
        out.family(&format!("jetstream_stream_{n}"), g, help, rows);
    }

    // rnats: storage damage found on recovery (see docs/METRICS.md).
    out.family(
        "jetstream_stream_corrupt_records_total",
        Kind::Counter,
        "Damaged ranges found in a stream's files since the server started (rnats)",
        stream_rows.iter().map(|r| (r.labels.as_str(), r.corrupt)),
    );
    out.single(
        "jetstream_server_corrupt_records_total",
        Kind::Counter,
        "Damaged ranges found in all stream files since the server started (rnats)",
        &server,
        js.corruption_events() as f64,
    );

    type CField = fn(&ConsumerRow) -> Option<f64>;
    let consumer_fams: [(&str, &str, CField); 10] = [
        (
            "delivered_consumer_seq",
            "Latest sequence number of a stream consumer",
            |r| Some(r.delivered_consumer_seq),
        ),
        (
            "delivered_stream_seq",
            "Latest sequence number of a stream",
            |r| Some(r.delivered_stream_seq),
        ),
        (
            "last_delivery_seconds",
            "Seconds since last message delivery to consumer",
            |r| r.last_delivery,
        ),
        (
            "last_ack_seconds",
            "Seconds since last ack from consumer",
            |r| r.last_ack,
        ),
        (
            "num_ack_pending",
            "Number of pending acks from a consumer",
            |r| Some(r.num_ack_pending),
        ),
        (
            "num_redelivered",
            "Number of redelivered messages from a consumer",
            |r| Some(r.num_redelivered),
        ),
        (
            "num_waiting",
            "Number of inflight fetch requests from a pull consumer",
            |r| Some(r.num_waiting),
        ),
        (
            "num_pending",
            "Number of pending messages from a consumer",
            |r| Some(r.num_pending),
        ),
        (
            "ack_floor_stream_seq",
            "Number of ack floor stream seq from a consumer",
            |r| Some(r.ack_floor_stream_seq),
        ),
        (
            "ack_floor_consumer_seq",
            "Number of ack floor consumer seq from a consumer",
            |r| Some(r.ack_floor_consumer_seq),
        ),
    ];
    for (n, help, f) in consumer_fams {
        let rows = consumer_rows
            .iter()
            .filter_map(|r| f(r).map(|v| (r.labels.as_str(), v)));
        out.family(&format!("jetstream_consumer_{n}"), g, help, rows);
    }
}

// ---------------------------------------------------------------------------
// The process
// ---------------------------------------------------------------------------

fn process_metrics(out: &mut Exposition, state: &ServerState) {
    if let Some((ticks, rss_pages)) = crate::procstat::read() {
        out.single(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            "",
            ticks as f64 / crate::procstat::clock_ticks(),
        );
        out.single(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            "",
            (rss_pages * crate::procstat::page_size()) as f64,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        out.single(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            "",
            dir.count() as f64,
        );
    }
    let start = state.started_wall.timestamp_millis() as f64 / 1000.0;
    out.single(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
        "",
        start,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_the_exporter() {
        assert_eq!(
            metric_name(&["http_req_stats", "/varz"]),
            "http_req_stats_varz"
        );
        assert_eq!(metric_name(&["http_req_stats", "/"]), "http_req_stats");
        assert_eq!(
            metric_name(&["jetstream", "stats", "api", "total"]),
            "jetstream_stats_api_total"
        );
    }

    #[test]
    fn text_format() {
        let mut e = Exposition::default();
        let l = labels(&[("a", "x\"y\\z\nw"), ("b", "")]);
        e.family(
            "m",
            Kind::Counter,
            "help\nme",
            [(l.as_str(), 3.0), ("", 0.5)],
        );
        e.family("empty", Kind::Gauge, "no samples", std::iter::empty());
        assert_eq!(
            e.text,
            "# HELP m help\\nme\n# TYPE m counter\nm{a=\"x\\\"y\\\\z\\nw\",b=\"\"} 3\nm 0.5\n"
        );
        assert_eq!(value(1.8446744073709552e19), "18446744073709552000");
        assert_eq!(value(-1.0), "-1");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(12.5), "12.5");
    }
}
