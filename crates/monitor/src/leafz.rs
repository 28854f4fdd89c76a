//! `/leafz` (and `$SYS.REQ.SERVER.PING.LEAFZ`) and the `/varz` leaf
//! section, shaped as nats-server's `Leafz` and `LeafNodeOptsVarz`, from
//! the leaf feature's snapshots.

use std::sync::Arc;

use serde::Serialize;

use rnats_core::server::ServerState;
use rnats_leaf::leafz::LeafzConn;

#[derive(Serialize)]
pub struct Leafz {
    pub server_id: String,
    pub now: String,
    pub leafnodes: u64,
    pub leafs: Vec<LeafzConn>,
}

/// The `/leafz` body; `subs` lists each connection's interest, `account`
/// keeps one account's connections.
pub fn build(state: &ServerState, subs: bool, account: Option<&str>) -> Leafz {
    let leafs = rnats_leaf::of(state)
        .map(|l| rnats_leaf::leafz::snapshot(&l, subs, account))
        .unwrap_or_default();
    Leafz {
        server_id: state.server_id.clone(),
        now: crate::go_time(&chrono::Utc::now()),
        leafnodes: leafs.len() as u64,
        leafs,
    }
}

/// Connected leaf nodes, for `/varz` and STATSZ.
pub fn count(state: &ServerState) -> u64 {
    rnats_leaf::of(state).map_or(0, |l| l.connections().len() as u64)
}

/// Leaf connections bound to `account` (account CONNS events, `/accstatz`).
pub fn count_in(state: &ServerState, account: &rnats_core::account::Account) -> u64 {
    rnats_leaf::of(state).map_or(0, |l| {
        l.connections()
            .iter()
            .filter(|c| std::ptr::eq(Arc::as_ptr(&c.account()), account))
            .count() as u64
    })
}

#[derive(Serialize, Default)]
pub struct DenyRules {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
}

#[derive(Serialize)]
pub struct RemoteLeafVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<DenyRules>,
}

/// `/varz` `leaf`: empty without a `leafnodes {}` block.
#[derive(Serialize, Default)]
pub struct LeafVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u16,
    #[serde(skip_serializing_if = "is_zero_f", serialize_with = "crate::go_f64")]
    pub auth_timeout: f64,
    #[serde(skip_serializing_if = "is_zero_f", serialize_with = "crate::go_f64")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<RemoteLeafVarz>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

fn is_zero_f(n: &f64) -> bool {
    *n == 0.0
}

pub fn varz(state: &ServerState) -> LeafVarz {
    let opts = state.opts();
    let Some(lo) = &opts.leafnode else {
        return LeafVarz::default();
    };
    let port = rnats_leaf::of(state)
        .and_then(|l| l.listen)
        .map_or(lo.port, |a| a.port());
    let tls_timeout = lo.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64());
    LeafVarz {
        host: lo.host.clone(),
        port,
        auth_timeout: lo.auth_timeout.map_or(tls_timeout, |t| t.as_secs_f64()),
        tls_timeout,
        tls_required: lo.tls.is_some() && lo.accept,
        tls_verify: lo.tls.as_ref().is_some_and(|t| t.verify) && lo.accept,
        remotes: lo
            .remotes
            .iter()
            .map(|r| RemoteLeafVarz {
                local_account: r.local_account.clone().unwrap_or_else(|| "$G".into()),
                urls: r
                    .urls
                    .iter()
                    .map(|u| {
                        format!(
                            "{}:{}",
                            u.host_str().unwrap_or(""),
                            u.port().unwrap_or(rnats_leaf::dial::DEFAULT_PORT)
                        )
                    })
                    .collect(),
                deny: (!r.deny_imports.is_empty() || !r.deny_exports.is_empty()).then(|| {
                    DenyRules {
                        exports: r.deny_exports.clone(),
                        imports: r.deny_imports.clone(),
                    }
                }),
            })
            .collect(),
    }
}
