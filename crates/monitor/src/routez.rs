//! `/routez`: every route connection to the other servers of the cluster,
//! in nats-server's `Routez`/`RouteInfo` shape (`subs=1` adds each route's
//! `subscriptions_list`, `subs=detail` its `subscriptions_list_detail`).
//! Without a cluster: `num_routes: 0` and an empty `routes` list, as
//! nats-server answers. The data comes from `rnats_cluster::routez`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Serialize;

use super::connz::SubDetail;
use super::{go_time, json_ok, uptime, Monitor, Query};
use rnats_cluster::routez::RouteSnapshot;
use rnats_core::auth::SubjectPermission;
use rnats_core::server::ServerState;

/// What `/routez` is asked for (nats-server's `RoutezOptions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoutezOptions {
    pub subs: bool,
    pub subs_detail: bool,
}

/// Go's `SubjectPermission` as JSON (`allow`/`deny`, each left out when empty).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct PermissionJson {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl PermissionJson {
    pub fn of(p: &SubjectPermission) -> PermissionJson {
        PermissionJson {
            allow: p.allow.clone().unwrap_or_default(),
            deny: p.deny.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct RouteInfo {
    pub rid: u64,
    pub remote_id: String,
    pub remote_name: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    /// Left out: rnats does not measure route round trips yet.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    pub pending_size: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// rnats neither offers nor accepts route compression: always `off`
    /// (what nats-server shows when compression was not negotiated).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub compression: String,
}

#[derive(Serialize)]
pub struct Routez {
    pub server_id: String,
    pub server_name: String,
    pub now: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<PermissionJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<PermissionJson>,
    pub num_routes: usize,
    pub routes: Vec<RouteInfo>,
}

pub async fn handle(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    // nats-server's `decodeSubs`: `subs=detail` (any case), else a bool.
    let subs_detail = q.get("subs").eq_ignore_ascii_case("detail");
    let subs = if subs_detail {
        false
    } else {
        match q.bool("subs") {
            Ok(b) => b,
            Err(r) => return *r,
        }
    };
    m.count("/routez");
    json_ok(&build(&m.state, RoutezOptions { subs, subs_detail }))
}

/// The route snapshots of this server (none without a cluster).
pub fn snapshots(state: &ServerState) -> Vec<RouteSnapshot> {
    rnats_cluster::of(state)
        .map(|c| rnats_cluster::routez::routes(&c))
        .unwrap_or_default()
}

pub fn build(state: &ServerState, opts: RoutezOptions) -> Routez {
    let now = chrono::Utc::now();
    let routes: Vec<RouteInfo> = snapshots(state)
        .iter()
        .map(|r| route_info(r, now, opts))
        .collect();
    let o = state.opts();
    let perms = o.cluster.as_ref();
    Routez {
        server_id: state.server_id.clone(),
        server_name: state.server_name.clone(),
        now: go_time(&now),
        import: perms
            .and_then(|c| c.import.as_ref())
            .map(PermissionJson::of),
        export: perms
            .and_then(|c| c.export.as_ref())
            .map(PermissionJson::of),
        num_routes: routes.len(),
        routes,
    }
}

/// One subscription key of a route (`account subject [queue]`), split.
fn split_key(key: &str) -> (&str, &str, &str) {
    let mut it = key.splitn(3, ' ');
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(s), q) => (a, s, q.unwrap_or("")),
        (Some(s), None, _) => ("", s, ""),
        _ => ("", "", ""),
    }
}

pub fn last_activity(r: &RouteSnapshot) -> chrono::DateTime<chrono::Utc> {
    r.start + chrono::Duration::milliseconds(r.last_in_ms as i64)
}

fn since(now: chrono::DateTime<chrono::Utc>, t: chrono::DateTime<chrono::Utc>) -> String {
    uptime((now - t).to_std().unwrap_or_default())
}

pub fn route_info(
    r: &RouteSnapshot,
    now: chrono::DateTime<chrono::Utc>,
    opts: RoutezOptions,
) -> RouteInfo {
    let last = last_activity(r);
    let mut info = RouteInfo {
        rid: r.rid,
        remote_id: r.remote_id.clone(),
        remote_name: r.remote_name.clone(),
        did_solicit: r.did_solicit,
        is_configured: r.is_configured,
        ip: r.ip.clone(),
        port: r.port,
        start: go_time(&r.start),
        last_activity: go_time(&last),
        rtt: String::new(),
        uptime: since(now, r.start),
        idle: since(now, last),
        pending_size: r.pending_bytes,
        in_msgs: r.in_msgs,
        out_msgs: r.out_msgs,
        in_bytes: r.in_bytes,
        out_bytes: r.out_bytes,
        subscriptions: r.subscriptions.len() as u32,
        subscriptions_list: Vec::new(),
        subscriptions_list_detail: Vec::new(),
        account: r.account.clone().unwrap_or_default(),
        compression: "off".into(),
    };
    if opts.subs_detail {
        info.subscriptions_list_detail = r
            .subscriptions
            .iter()
            .map(|key| {
                let (_, subject, queue) = split_key(key);
                SubDetail {
                    account: String::new(),
                    account_tag: String::new(),
                    subject: subject.into(),
                    qgroup: queue.into(),
                    sid: key.clone(),
                    msgs: 0,
                    max: 0,
                    cid: r.rid,
                }
            })
            .collect();
    } else if opts.subs {
        info.subscriptions_list = r
            .subscriptions
            .iter()
            .map(|key| split_key(key).1.to_string())
            .collect();
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> RouteSnapshot {
        let start = chrono::DateTime::parse_from_rfc3339("2025-01-02T03:04:05.5Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        RouteSnapshot {
            rid: 7,
            remote_id: "NREMOTE".into(),
            remote_name: "B".into(),
            did_solicit: true,
            is_configured: true,
            ip: "127.0.0.1".into(),
            port: 6222,
            start,
            last_in_ms: 1500,
            pending_bytes: 3,
            in_msgs: 1,
            in_bytes: 2,
            out_msgs: 4,
            out_bytes: 5,
            subscriptions: vec!["$G foo".into(), "$G q.* workers".into()],
            account: None,
            pool_idx: Some(0),
        }
    }

    #[test]
    fn route_fields_in_nats_server_order() {
        let r = snapshot();
        let now = r.start + chrono::Duration::seconds(65);
        let info = route_info(&r, now, RoutezOptions::default());
        let json = rnats_core::gofmt::go_json(&info);
        let mut at = 0;
        for key in [
            "rid",
            "remote_id",
            "remote_name",
            "did_solicit",
            "is_configured",
            "ip",
            "port",
            "start",
            "last_activity",
            "uptime",
            "idle",
            "pending_size",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "subscriptions",
            "compression",
        ] {
            let pos = json[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing or out of order in {json}"));
            at += pos + 1;
        }
        for absent in ["rtt", "account", "subscriptions_list", "import", "export"] {
            assert!(
                !json.contains(&format!("\"{absent}\":")),
                "{absent} in {json}"
            );
        }
        assert_eq!(info.start, "2025-01-02T03:04:05.5Z");
        assert_eq!(info.last_activity, "2025-01-02T03:04:07Z");
        assert_eq!(info.uptime, "1m5s");
        assert_eq!(info.idle, "1m3s");
        assert_eq!(info.subscriptions, 2);
    }

    #[test]
    fn subscription_lists() {
        let r = snapshot();
        let subs = route_info(
            &r,
            r.start,
            RoutezOptions {
                subs: true,
                subs_detail: false,
            },
        );
        assert_eq!(subs.subscriptions_list, ["foo", "q.*"]);
        assert!(subs.subscriptions_list_detail.is_empty());
        let detail = route_info(
            &r,
            r.start,
            RoutezOptions {
                subs: false,
                subs_detail: true,
            },
        );
        assert!(detail.subscriptions_list.is_empty());
        assert_eq!(detail.subscriptions_list_detail[1].subject, "q.*");
        assert_eq!(detail.subscriptions_list_detail[1].qgroup, "workers");
        assert_eq!(detail.subscriptions_list_detail[1].cid, 7);
    }

    #[test]
    fn pinned_account_and_permissions() {
        let mut r = snapshot();
        r.account = Some("$SYS".into());
        let v = serde_json::to_value(route_info(&r, r.start, RoutezOptions::default()))
            .unwrap_or_default();
        assert_eq!(v["account"], "$SYS");
        let p = PermissionJson::of(&SubjectPermission {
            allow: Some(vec!["foo.>".into()]),
            deny: vec![],
        });
        assert_eq!(
            rnats_core::gofmt::go_json(&p),
            r#"{"allow":["foo.\u003e"]}"#
        );
    }
}
