//! `/varz`: the server's configuration, process usage (RSS and CPU from
//! `/proc/self/stat`, as nats-server's `pse` reads them) and traffic
//! counters, in nats-server's `Varz` field order.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use super::{go_f64, go_time, json_ok, jsz, uptime, Monitor};
use rnats_core::server::ServerState;

/// Empty objects nats-server sends for subsystems that are not configured.
#[derive(Serialize, Default)]
pub struct Empty {}

#[derive(Serialize, Default)]
pub struct JetStreamVarz {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<jsz::JsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<jsz::JsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<jsz::JsLimits>,
}

#[derive(Serialize)]
pub struct PerKind {
    pub clients: u64,
    pub routes: u64,
    pub gateways: u64,
    pub leafs: u64,
}

#[derive(Serialize, Default)]
pub struct DiskIoWaitStats {
    pub waiters: i64,
    pub waits: u64,
    pub wait_time: u64,
    pub max_wait_time: u64,
}

/// nats-server's `ClusterOptsVarz`: empty (`{}`) without a `cluster {}`,
/// just the name for a block that only names the cluster.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct ClusterVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub cluster_port: u16,
    /// Seconds.
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_f64")]
    pub auth_timeout: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Seconds.
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_f64")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub pool_size: i32,
}

impl ClusterVarz {
    pub fn of(state: &ServerState) -> ClusterVarz {
        let opts = state.opts();
        let Some(o) = opts.cluster.as_ref() else {
            return ClusterVarz::default();
        };
        let Some(cluster) = rnats_cluster::of(state) else {
            // A `cluster {}` without a port only names the cluster.
            return ClusterVarz {
                name: o.name.clone().unwrap_or_default(),
                ..ClusterVarz::default()
            };
        };
        let s = rnats_cluster::routez::summary(&cluster);
        ClusterVarz {
            name: s.name,
            addr: s.host,
            cluster_port: s.port,
            auth_timeout: s.auth_timeout_secs,
            urls: s.urls,
            tls_timeout: o.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64()),
            tls_required: s.tls_required,
            // nats-server always verifies route certificates.
            tls_verify: s.tls_required,
            pool_size: s.pool_size,
        }
    }
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize)]
pub struct Varz {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: u32,
    pub go: String,
    pub host: String,
    pub port: u16,
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// The URLs clients are told about (own first), when clustered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    pub max_connections: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_subscriptions: usize,
    /// Nanoseconds, as Go marshals a `time.Duration`.
    pub ping_interval: u64,
    pub ping_max: u32,
    pub http_host: String,
    /// As configured: `-m -1` (a random port) shows as -1, as in nats-server.
    pub http_port: i32,
    pub http_base_path: String,
    pub https_port: u16,
    /// Seconds.
    #[serde(serialize_with = "go_f64")]
    pub auth_timeout: f64,
    pub max_control_line: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub cluster: ClusterVarz,
    pub gateway: crate::gatewayz::GatewayVarz,
    pub leaf: crate::leafz::LeafVarz,
    pub mqtt: Empty,
    pub websocket: Empty,
    pub jetstream: JetStreamVarz,
    #[serde(serialize_with = "go_f64")]
    pub tls_timeout: f64,
    pub write_deadline: u64,
    pub start: String,
    pub now: String,
    pub uptime: String,
    pub mem: i64,
    pub cores: usize,
    pub gomaxprocs: usize,
    #[serde(serialize_with = "go_f64")]
    pub cpu: f64,
    pub connections: usize,
    pub total_connections: u64,
    /// Route connections (pooled and pinned ones each count).
    pub routes: u64,
    /// Peer servers with at least one route.
    pub remotes: u64,
    pub leafnodes: u64,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub in_client_msgs: u64,
    pub in_client_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub out_client_msgs: u64,
    pub out_client_bytes: u64,
    pub slow_consumers: u64,
    pub stale_connections: u64,
    pub stalled_clients: u64,
    pub subscriptions: usize,
    pub http_req_stats: BTreeMap<&'static str, u64>,
    pub config_load_time: String,
    pub config_digest: String,
    pub system_account: String,
    pub slow_consumer_stats: PerKind,
    pub stale_connection_stats: PerKind,
    pub disk_io_wait_stats: DiskIoWaitStats,
}

pub async fn handle(State(m): State<Arc<Monitor>>) -> Response {
    m.count("/varz");
    json_ok(&build(&m))
}

pub fn build(m: &Monitor) -> Varz {
    let state = &m.state;
    let opts = state.opts();
    let (cpu, mem) = m.cpu.lock().sample(state.started);
    let now = chrono::Utc::now();
    let c = &state.counters;
    let in_msgs = c.in_msgs.load(Ordering::Relaxed);
    let in_bytes = c.in_bytes.load(Ordering::Relaxed);
    let out_msgs = c.out_msgs.load(Ordering::Relaxed);
    let out_bytes = c.out_bytes.load(Ordering::Relaxed);
    let slow = c.slow_consumers.load(Ordering::Relaxed);
    let connections = state.num_clients();
    let routes = crate::routez::snapshots(state);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jetstream = match state.slot::<rnats_jetstream::JetStream>() {
        Some(js) => JetStreamVarz {
            config: Some(jsz::JsConfig::of(state, &js)),
            stats: Some(jsz::JsStats::of(&js)),
            limits: Some(jsz::JsLimits::default()),
        },
        None => JetStreamVarz::default(),
    };
    Varz {
        server_id: state.server_id.clone(),
        server_name: state.server_name.clone(),
        version: rnats_core::NATS_COMPAT_VERSION.into(),
        proto: 1,
        go: format!("rnats {}", rnats_core::RNATS_VERSION),
        host: opts.host.clone(),
        port: m.client_port(),
        auth_required: opts.auth.required(),
        connect_urls: state.connect_urls(),
        max_connections: opts.max_connections,
        max_subscriptions: opts.max_subscriptions,
        ping_interval: opts.ping_interval.as_nanos() as u64,
        ping_max: opts.ping_max,
        http_host: opts.http_host.clone(),
        http_port: match opts.http_port {
            // The options keep `-m -1` as 0 (nats-server would not start
            // monitoring on 0 at all).
            Some(0) | None => -1,
            Some(p) => i32::from(p),
        },
        http_base_path: String::new(),
        https_port: 0,
        auth_timeout: opts.auth_timeout.as_secs_f64(),
        max_control_line: opts.max_control_line,
        max_payload: opts.max_payload,
        max_pending: opts.max_pending,
        cluster: ClusterVarz::of(state),
        gateway: crate::gatewayz::GatewayVarz::of(state),
        leaf: crate::leafz::varz(state),
        mqtt: Empty {},
        websocket: Empty {},
        jetstream,
        tls_timeout: 2.0,
        write_deadline: opts.write_deadline.as_nanos() as u64,
        start: go_time(&state.started_wall),
        now: go_time(&now),
        uptime: uptime(state.started.elapsed()),
        mem,
        cores,
        gomaxprocs: cores,
        cpu,
        connections,
        total_connections: connections as u64 + state.closed.total(),
        routes: routes.len() as u64,
        remotes: routes
            .iter()
            .map(|r| r.remote_id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64,
        leafnodes: crate::leafz::count(state),
        in_msgs,
        in_bytes,
        in_client_msgs: in_msgs,
        in_client_bytes: in_bytes,
        out_msgs,
        out_bytes,
        out_client_msgs: out_msgs,
        out_client_bytes: out_bytes,
        slow_consumers: slow,
        stale_connections: 0,
        stalled_clients: 0,
        subscriptions: state.accounts.num_subscriptions(),
        http_req_stats: m.req_stats(),
        config_load_time: go_time(&state.config_load_time.lock()),
        config_digest: String::new(),
        system_account: state.accounts.system().name.clone(),
        slow_consumer_stats: PerKind {
            clients: slow,
            routes: 0,
            gateways: 0,
            leafs: 0,
        },
        stale_connection_stats: PerKind {
            clients: 0,
            routes: 0,
            gateways: 0,
            leafs: 0,
        },
        disk_io_wait_stats: DiskIoWaitStats::default(),
    }
}

impl Monitor {
    /// The client port as the INFO advertises it.
    pub fn client_port(&self) -> u16 {
        self.state.client_info(&self.state.system_client).port
    }
}

/// CPU percentage over the time since the previous sample (at least a
/// second apart, like nats-server's periodic sampler), one decimal.
#[derive(Default)]
pub struct CpuSampler {
    last: Option<(Instant, u64)>,
    pcpu: f64,
}

impl CpuSampler {
    /// (cpu percent, resident bytes).
    pub fn sample(&mut self, process_start: Instant) -> (f64, i64) {
        let Some((ticks, rss_pages)) = crate::procstat::read() else {
            return (0.0, 0);
        };
        let now = Instant::now();
        let (since, base) = self.last.unwrap_or((process_start, 0));
        let secs = now.duration_since(since).as_secs_f64();
        if self.last.is_none() || secs >= 1.0 {
            if secs > 0.0 {
                let hz = crate::procstat::clock_ticks();
                let pct = (ticks.saturating_sub(base)) as f64 / hz / secs * 100.0;
                self.pcpu = (pct * 10.0).round() / 10.0;
            }
            self.last = Some((now, ticks));
        }
        (self.pcpu, rss_pages * crate::procstat::page_size())
    }
}
