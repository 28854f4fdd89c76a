//! `/healthz`: `{"status":"ok"}`, or why not, following nats-server's
//! single-server checks: `js-enabled-only`, `js-server-only`, `details`,
//! and `account`/`stream`/`consumer` to check that stored assets were
//! recovered (a stream directory on disk with no running stream is unhealthy).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{go_json, json_response, Monitor, Query, Reject};
use rnats_core::server::ServerState;

#[derive(Serialize, Debug)]
pub struct HealthzError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stream: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consumer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Serialize, Debug)]
pub struct HealthStatus {
    pub status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<HealthzError>,
    #[serde(skip)]
    pub code: u16,
}

#[derive(Default)]
pub struct HealthzOptions {
    pub js_enabled_only: bool,
    pub js_server_only: bool,
    pub details: bool,
    pub account: String,
    pub stream: String,
    pub consumer: String,
}

pub async fn handle(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    m.count("/healthz");
    let q = Query::parse(q.as_deref());
    let parsed = (|| -> Result<HealthzOptions, Reject> {
        let js_enabled = q.bool("js-enabled")?;
        if js_enabled {
            tracing::warn!("Healthcheck: js-enabled deprecated, use js-enabled-only instead");
        }
        let js_enabled_only = q.bool("js-enabled-only")? || js_enabled;
        let js_server_only = q.bool("js-server-only")?;
        q.bool("js-meta-only")?;
        let details = q.bool("details")?;
        Ok(HealthzOptions {
            js_enabled_only,
            js_server_only,
            details,
            account: q.get("account").into(),
            stream: q.get("stream").into(),
            consumer: q.get("consumer").into(),
        })
    })();
    let opts = match parsed {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let hs = healthz(&m.state, &opts);
    if !hs.error.is_empty() {
        tracing::warn!("Healthcheck failed: {:?}", hs.error);
    } else if !hs.errors.is_empty() {
        tracing::warn!("Healthcheck failed: {} errors", hs.errors.len());
    }
    let code = StatusCode::from_u16(hs.code).unwrap_or(StatusCode::OK);
    json_response(code, go_json(&hs))
}

/// One failed check: in `details` mode it joins the list, otherwise it is
/// the answer.
struct Check {
    hs: HealthStatus,
    details: bool,
}

impl Check {
    fn fail(&mut self, status: &'static str, err: HealthzError) {
        if self.details {
            self.hs.errors.push(err);
        } else {
            self.hs.status = status;
            self.hs.error = err.error;
        }
    }

    fn finish(mut self) -> HealthStatus {
        if self.details {
            self.hs.status = if self.hs.errors.is_empty() {
                "ok"
            } else {
                "error"
            };
        }
        if self.hs.code == 0 {
            self.hs.code = if !self.hs.error.is_empty() || !self.hs.errors.is_empty() {
                503
            } else {
                200
            };
        }
        self.hs
    }
}

fn err(kind: &'static str, account: &str, stream: &str, consumer: &str, e: String) -> HealthzError {
    HealthzError {
        kind,
        account: account.into(),
        stream: stream.into(),
        consumer: consumer.into(),
        error: e,
    }
}

pub fn healthz(state: &ServerState, opts: &HealthzOptions) -> HealthStatus {
    let mut c = Check {
        hs: HealthStatus {
            status: "ok",
            error: String::new(),
            errors: Vec::new(),
            code: 0,
        },
        details: opts.details,
    };
    const NA: &str = "unavailable";
    if opts.account.is_empty() && !opts.stream.is_empty() {
        c.hs.code = 400;
        let e = "\"account\" must not be empty when checking stream health".to_string();
        c.fail("error", err("BAD_REQUEST", "", "", "", e));
        return c.finish();
    }
    if opts.stream.is_empty() && !opts.consumer.is_empty() {
        c.hs.code = 400;
        let e = "\"stream\" must not be empty when checking consumer health".to_string();
        c.fail("error", err("BAD_REQUEST", "", "", "", e));
        return c.finish();
    }
    if opts.js_server_only || !state.opts().jetstream {
        return c.finish();
    }
    let Some(js) = state.slot::<rnats_jetstream::JetStream>() else {
        c.hs.code = 503;
        c.fail(
            NA,
            err("JETSTREAM", "", "", "", "JetStream not enabled".into()),
        );
        return c.finish();
    };
    if opts.js_enabled_only {
        return c.finish();
    }

    // Every stream stored on disk must be running.
    let (mut acc_found, mut stream_found) = (false, false);
    let mut accounts: Vec<String> = std::fs::read_dir(&js.store_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    accounts.sort();
    for acc in accounts.iter().filter(|a| !a.starts_with('.')) {
        if !opts.account.is_empty() {
            if *acc != opts.account {
                continue;
            }
            acc_found = true;
        }
        let Some(acc_js) = js.account(acc) else {
            let e = format!("JetStream account '{acc}' could not be resolved");
            c.fail(NA, err("ACCOUNT", acc, "", "", e));
            if !opts.details {
                return c.finish();
            }
            continue;
        };
        let mut streams: Vec<String> = std::fs::read_dir(js.store_dir.join(acc).join("streams"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        streams.sort();
        for name in &streams {
            if !opts.stream.is_empty() {
                if *name != opts.stream {
                    continue;
                }
                stream_found = true;
            }
            if acc_js.stream(name).is_none() {
                let e = format!("JetStream stream '{acc} > {name}' could not be recovered");
                c.fail(NA, err("STREAM", acc, name, "", e));
                if !opts.details {
                    return c.finish();
                }
                continue;
            }
            if stream_found {
                break;
            }
        }
        if acc_found {
            break;
        }
    }
    if !opts.account.is_empty() && !acc_found {
        c.hs.code = 404;
        let e = format!("JetStream account {:?} not found", opts.account);
        c.hs.errors.clear();
        c.fail(NA, err("ACCOUNT", &opts.account, "", "", e));
        return c.finish();
    }
    if !opts.stream.is_empty() && !stream_found {
        c.hs.code = 404;
        let e = format!(
            "JetStream stream {:?} not found on account {:?}",
            opts.stream, opts.account
        );
        c.hs.errors.clear();
        c.fail(NA, err("STREAM", &opts.account, &opts.stream, "", e));
        return c.finish();
    }
    if !opts.consumer.is_empty() {
        // Consumers are not looked up yet: none is ever found.
        c.hs.code = 404;
        let e = format!(
            "JetStream consumer {:?} not found for stream {:?} on account {:?}",
            opts.consumer, opts.stream, opts.account
        );
        c.hs.errors.clear();
        c.fail(
            NA,
            err("CONSUMER", &opts.account, &opts.stream, &opts.consumer, e),
        );
    }
    c.finish()
}
