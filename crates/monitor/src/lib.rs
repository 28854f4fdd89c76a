//! HTTP monitoring (`-m <port>`, `http: host:port`): the router, the
//! listener, and what every endpoint shares — request counting for
//! `http_req_stats`, query decoding with nats-server's error texts, and JSON
//! written the way Go's `json.MarshalIndent` writes it (two-space indent,
//! struct field order, `<>&` escaped, whole floats without a fraction).
//!
//! Endpoints live in their own files: `varz`, `connz`, `routez`, `subsz`,
//! `jsz`, `health` and `misc` (index page, gatewayz, leafz, accountz,
//! accstatz). Handlers only take short read locks and copy what they need.
//!
//! The `$SYS` services ([`sysacc`]) answer from the same data builders.

#![deny(unsafe_code)]

pub mod sysacc;

pub mod connz;
pub mod dashboard;
pub mod gatewayz;
pub mod health;
pub mod jsz;
pub mod leafz;
pub mod metrics;
pub mod misc;
pub mod procstat;
pub mod routez;
pub mod subsz;
pub mod varz;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use serde::Serialize;

pub use rnats_core::gofmt::{go_f64, go_json, go_json_pretty, go_time, uptime};
use rnats_core::server::ServerState;

/// Shared by all monitoring handlers.
pub struct Monitor {
    pub state: Arc<ServerState>,
    /// The port actually bound (differs from the option for `-m -1`/`0`).
    pub port: u16,
    req_stats: Mutex<BTreeMap<&'static str, u64>>,
    cpu: Mutex<varz::CpuSampler>,
}

impl Monitor {
    /// A monitor for `state`; `port` is the HTTP port it serves (0: none, as
    /// for the one answering `$SYS` requests).
    pub fn new(state: Arc<ServerState>, port: u16) -> Monitor {
        Monitor {
            state,
            port,
            req_stats: Mutex::new(BTreeMap::new()),
            cpu: Mutex::new(varz::CpuSampler::default()),
        }
    }

    /// (cpu percent, resident bytes), sampled as `/varz` does.
    pub fn cpu_mem(&self) -> (f64, i64) {
        self.cpu.lock().sample(self.state.started)
    }

    /// Counts one request to `path` (before answering, as nats-server does).
    pub fn count(&self, path: &'static str) {
        *self.req_stats.lock().entry(path).or_insert(0) += 1;
    }

    pub fn req_stats(&self) -> BTreeMap<&'static str, u64> {
        self.req_stats.lock().clone()
    }
}

/// Why monitoring could not start (worded as nats-server exits with it).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(
        "Can't start monitoring: can't listen to the monitor port: listen tcp {addr}: {reason}"
    )]
    Listen { addr: String, reason: String },
}

/// Binds the monitoring port (if configured) and serves it on the current
/// runtime. Returns the bound port (None without a monitoring port).
pub async fn start(state: &Arc<ServerState>) -> Result<Option<u16>, MonitorError> {
    let opts = state.opts();
    let Some(port) = opts.http_port else {
        return Ok(None);
    };
    let host = opts.http_host.clone();
    let hp = join_host_port(&host, port);
    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            return Err(MonitorError::Listen {
                addr: hp,
                reason: bind_error_text(&e),
            })
        }
    };
    let bound = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    tracing::info!("Starting http monitor on {}", join_host_port(&host, bound));
    let monitor = Arc::new(Monitor::new(state.clone(), bound));
    let app = router(monitor);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("Error serving the http monitor: {e}");
        }
    });
    Ok(Some(bound))
}

/// The endpoints, as nats-server registers them.
pub fn router(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/", get(misc::root))
        .route("/varz", get(varz::handle))
        .route("/connz", get(connz::handle))
        .route("/routez", get(routez::handle))
        .route("/gatewayz", get(gatewayz::handle))
        .route("/leafz", get(misc::leafz))
        .route("/subsz", get(subsz::handle))
        .route("/subscriptionsz", get(subsz::handle))
        .route("/accountz", get(misc::accountz))
        .route("/accstatz", get(misc::accstatz))
        .route("/jsz", get(jsz::handle))
        .route("/healthz", get(health::handle))
        .route("/metrics", get(metrics::handle))
        .route("/dashboard", get(dashboard::handle))
        .fallback(not_found)
        .with_state(monitor)
}

async fn not_found() -> Response {
    let mut r = text(StatusCode::NOT_FOUND, "404 page not found\n".into());
    r.headers_mut().insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn bind_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "bind: address already in use".into(),
        std::io::ErrorKind::PermissionDenied => "bind: permission denied".into(),
        _ => e.to_string(),
    }
}

pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// A 200 with `body` serialized as Go's `json.MarshalIndent(v, "", "  ")`.
pub fn json_ok<T: Serialize>(body: &T) -> Response {
    json_response(StatusCode::OK, go_json_pretty(body))
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// A plain-text answer (nats-server's 400s and Go's 404).
pub fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub fn bad_request(msg: impl Into<String>) -> Response {
    text(StatusCode::BAD_REQUEST, msg.into())
}

// ---------------------------------------------------------------------------
// Query parameters, decoded as nats-server decodes them
// ---------------------------------------------------------------------------

/// The query string's parameters; like Go's `Query().Get`, the first value wins.
/// A rejected request (boxed: a `Response` is large).
pub type Reject = Box<Response>;

pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Query(map)
    }

    /// The value, or `""` when absent.
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }

    /// Go's `strconv.ParseBool`; absent or empty is `false`.
    pub fn bool(&self, key: &str) -> Result<bool, Reject> {
        match self.get(key) {
            "" => Ok(false),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            other => Err(Box::new(bad_request(format!(
                "Error decoding boolean for '{key}': strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(other)
            )))),
        }
    }

    /// Go's `strconv.Atoi`; absent or empty is 0.
    pub fn int(&self, key: &str) -> Result<i64, Reject> {
        match self.get(key) {
            "" => Ok(0),
            v => v.parse::<i64>().map_err(|e| {
                let why = if matches!(
                    e.kind(),
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                ) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                Box::new(bad_request(format!(
                    "Error decoding int for '{key}': strconv.Atoi: parsing {}: {why}",
                    go_quote(v)
                )))
            }),
        }
    }

    /// Go's `strconv.ParseUint(v, 10, 64)`; absent or empty is 0.
    pub fn uint(&self, key: &str) -> Result<u64, Reject> {
        match self.get(key) {
            "" => Ok(0),
            v => v.parse::<u64>().map_err(|e| {
                let why = if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                Box::new(bad_request(format!(
                    "Error decoding uint64 for '{key}': strconv.ParseUint: parsing {}: {why}",
                    go_quote(v)
                )))
            }),
        }
    }
}

/// Go's `%q` for the plain strings that show up in these errors.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("subs=1&limit=x&subs=0&acc=%24G"));
        assert_eq!(q.bool("subs").ok(), Some(true));
        assert_eq!(q.get("acc"), "$G");
        assert!(q.int("limit").is_err());
        assert_eq!(q.int("offset").ok(), Some(0));
    }
}
