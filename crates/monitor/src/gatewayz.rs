//! `/gatewayz` (and `$SYS.REQ.SERVER.PING.GATEWAYZ`): this server's gateway
//! connections in nats-server's `Gatewayz` shape — outbound ones by remote
//! gateway name, inbound ones as lists per name, each with its connection
//! (`ConnInfo` fields) and, with `accs=1`, the accounts and their interest
//! mode. Also the `/varz` `gateway` section. The data comes from
//! `rnats_gateway::gatewayz`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use rnats_gateway::gatewayz::ConnSnapshot;
use serde::Serialize;

use super::misc::MsgBytes;
use super::{go_f64, go_time, json_ok, uptime, Monitor, Query};
use rnats_core::server::ServerState;

/// nats-server's `gatewayMaxRUnsubBeforeSwitch`, shown per account.
const INTEREST_ONLY_THRESHOLD: u32 = 1000;

#[derive(Serialize)]
pub struct Gatewayz {
    pub server_id: String,
    pub now: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u16,
    pub outbound_gateways: BTreeMap<String, RemoteGatewayz>,
    pub inbound_gateways: BTreeMap<String, Vec<RemoteGatewayz>>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

#[derive(Serialize)]
pub struct RemoteGatewayz {
    pub configured: bool,
    pub connection: GwConnInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountGatewayz>,
}

/// The `ConnInfo` fields nats-server fills for a gateway connection.
#[derive(Serialize)]
pub struct GwConnInfo {
    pub cid: u64,
    pub kind: &'static str,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    pub pending_bytes: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Serialize)]
pub struct AccountGatewayz {
    pub name: String,
    pub interest_mode: &'static str,
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub no_interest_count: usize,
    pub interest_only_threshold: u32,
}

fn conn_info(c: &ConnSnapshot, now: DateTime<Utc>) -> GwConnInfo {
    let since = |t: DateTime<Utc>| uptime((now - t).to_std().unwrap_or_default());
    let last = c.start + chrono::Duration::milliseconds(c.last_in_ms as i64);
    GwConnInfo {
        cid: c.cid,
        kind: "Gateway",
        ip: c.ip.clone(),
        port: c.port,
        start: go_time(&c.start),
        last_activity: go_time(&last),
        rtt: "0s".into(),
        uptime: since(c.start),
        idle: since(last),
        pending_bytes: c.pending_bytes,
        in_msgs: c.in_msgs,
        out_msgs: c.out_msgs,
        in_bytes: c.in_bytes,
        out_bytes: c.out_bytes,
        subscriptions: c.subscriptions,
        name: c.server_id.clone(),
    }
}

fn remote(c: &ConnSnapshot, now: DateTime<Utc>, accs: bool) -> RemoteGatewayz {
    RemoteGatewayz {
        configured: c.configured,
        connection: conn_info(c, now),
        accounts: if accs {
            c.accounts
                .iter()
                .map(|(name, mode, ni)| AccountGatewayz {
                    name: name.clone(),
                    interest_mode: mode,
                    no_interest_count: *ni,
                    interest_only_threshold: INTEREST_ONLY_THRESHOLD,
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// `/gatewayz` options: `gw_name` (one remote), `accs` (accounts).
#[derive(Debug, Clone, Default)]
pub struct GatewayzOptions {
    pub name: String,
    pub accs: bool,
}

pub fn build(state: &ServerState, opts: &GatewayzOptions) -> Gatewayz {
    let now = Utc::now();
    let mut z = Gatewayz {
        server_id: state.server_id.clone(),
        now: go_time(&now),
        name: String::new(),
        host: String::new(),
        port: 0,
        outbound_gateways: BTreeMap::new(),
        inbound_gateways: BTreeMap::new(),
    };
    let Some(gw) = rnats_gateway::of(state) else {
        return z;
    };
    let s = rnats_gateway::gatewayz::summary(&gw);
    z.name = s.name;
    (z.host, z.port) = split_url(&gw.url);
    let wanted = |name: &str| opts.name.is_empty() || opts.name == name;
    for c in rnats_gateway::gatewayz::outbound(&gw) {
        if wanted(&c.gateway) {
            z.outbound_gateways
                .insert(c.gateway.clone(), remote(&c, now, opts.accs));
        }
    }
    for c in rnats_gateway::gatewayz::inbound(&gw) {
        if wanted(&c.gateway) {
            z.inbound_gateways
                .entry(c.gateway.clone())
                .or_default()
                .push(remote(&c, now, opts.accs));
        }
    }
    z
}

fn split_url(url: &str) -> (String, u16) {
    match url.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(0),
        ),
        None => (url.to_string(), 0),
    }
}

pub async fn handle(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let accs = match q.bool("accs") {
        Ok(b) => b,
        Err(r) => return *r,
    };
    m.count("/gatewayz");
    let opts = GatewayzOptions {
        name: q.get("gw_name").to_string(),
        accs: accs || !q.get("acc_name").is_empty(),
    };
    json_ok(&build(&m.state, &opts))
}

/// The `/varz` `gateway` section (empty without gateways).
#[derive(Serialize, Default)]
pub struct GatewayVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u16,
    #[serde(serialize_with = "go_f64", skip_serializing_if = "is_zero_f64")]
    pub auth_timeout: f64,
    #[serde(serialize_with = "go_f64", skip_serializing_if = "is_zero_f64")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub advertise: String,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub connect_retries: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<RemoteGatewayVarz>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reject_unknown: bool,
}

#[derive(Serialize)]
pub struct RemoteGatewayVarz {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl GatewayVarz {
    pub fn of(state: &ServerState) -> GatewayVarz {
        let Some(gw) = rnats_gateway::of(state) else {
            return GatewayVarz::default();
        };
        let s = rnats_gateway::gatewayz::summary(&gw);
        GatewayVarz {
            name: s.name,
            host: s.host,
            port: s.port,
            auth_timeout: s.auth_timeout,
            tls_timeout: s.tls_timeout,
            advertise: s.advertise,
            connect_retries: s.connect_retries,
            gateways: s
                .gateways
                .into_iter()
                .map(|(name, urls)| RemoteGatewayVarz {
                    name,
                    // Go shows each URL's host:port.
                    urls: urls
                        .iter()
                        .map(|u| {
                            u.rsplit("://")
                                .next()
                                .unwrap_or(u)
                                .rsplit('@')
                                .next()
                                .unwrap_or(u)
                                .to_string()
                        })
                        .collect(),
                })
                .collect(),
            reject_unknown: s.reject_unknown,
        }
    }
}

/// STATSZ `gateways`: one entry per outbound gateway (nats-server's `GatewayStat`).
#[derive(Serialize)]
pub struct GatewayStat {
    pub gwid: u64,
    pub name: String,
    pub sent: MsgBytes,
    pub received: MsgBytes,
    pub inbound_connections: usize,
}

pub fn stats(state: &ServerState) -> Vec<GatewayStat> {
    let Some(gw) = rnats_gateway::of(state) else {
        return Vec::new();
    };
    let inbound = rnats_gateway::gatewayz::inbound(&gw);
    rnats_gateway::gatewayz::outbound(&gw)
        .into_iter()
        .map(|c| {
            let ins: Vec<&ConnSnapshot> =
                inbound.iter().filter(|i| i.gateway == c.gateway).collect();
            GatewayStat {
                gwid: c.cid,
                sent: MsgBytes {
                    msgs: c.out_msgs,
                    bytes: c.out_bytes,
                },
                received: MsgBytes {
                    msgs: ins.iter().map(|i| i.in_msgs).sum(),
                    bytes: ins.iter().map(|i| i.in_bytes).sum(),
                },
                inbound_connections: ins.len(),
                name: c.gateway,
            }
        })
        .collect()
}
