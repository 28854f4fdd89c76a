//! What monitoring shows about the cluster: each route connection with its
//! peer, traffic and interest (`/routez`), and the cluster section of
//! `/varz`. Data only; the monitor crate renders it in nats-server's JSON.

use std::sync::atomic::Ordering;

use crate::Cluster;

/// One route connection.
#[derive(Debug, Clone)]
pub struct RouteSnapshot {
    pub rid: u64,
    pub remote_id: String,
    pub remote_name: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    pub ip: String,
    pub port: u16,
    pub start: chrono::DateTime<chrono::Utc>,
    /// Milliseconds since the connection started when it last received bytes.
    pub last_in_ms: u64,
    pub pending_bytes: usize,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    /// The peer's interest on this connection (`account subject [queue]`).
    pub subscriptions: Vec<String>,
    /// The pinned account this connection is dedicated to, if any.
    pub account: Option<String>,
    pub pool_idx: Option<usize>,
}

/// Every registered route, by rid.
pub fn routes(cluster: &Cluster) -> Vec<RouteSnapshot> {
    let routes = {
        let peers = cluster.peers.lock();
        let mut v: Vec<_> = peers
            .all_routes()
            .into_iter()
            .filter(|r| r.registered.load(Ordering::Acquire))
            .collect();
        v.sort_by_key(|r| r.rid());
        v
    };
    routes
        .iter()
        .map(|r| {
            let remote = r.remote.lock().clone();
            let (out_msgs, out_bytes) = r.client.out.out_counts();
            let mut subscriptions: Vec<String> = r
                .client
                .subs
                .lock()
                .keys()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            subscriptions.sort();
            let account = r.origin.account.clone().or_else(|| {
                (!remote.info.route_account.is_empty()).then(|| remote.info.route_account.clone())
            });
            RouteSnapshot {
                rid: r.rid(),
                remote_id: remote.id.clone(),
                remote_name: remote.name.clone(),
                did_solicit: r.origin.solicited,
                is_configured: r.origin.explicit,
                ip: r.client.addr.ip().to_string(),
                port: r.client.addr.port(),
                start: r.started,
                last_in_ms: r.client.last_in_ms.load(Ordering::Relaxed),
                pending_bytes: r.client.out.pending(),
                in_msgs: r.client.in_msgs.load(Ordering::Relaxed),
                in_bytes: r.client.in_bytes.load(Ordering::Relaxed),
                out_msgs,
                out_bytes,
                subscriptions,
                account,
                pool_idx: remote.pool_idx,
            }
        })
        .collect()
}

/// The `cluster` section of `/varz`.
#[derive(Debug, Clone)]
pub struct ClusterSummary {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Configured route URLs (without credentials).
    pub urls: Vec<String>,
    pub pool_size: i32,
    pub no_advertise: bool,
    pub auth_timeout_secs: f64,
    pub tls_required: bool,
}

pub fn summary(cluster: &Cluster) -> ClusterSummary {
    let o = &cluster.opts;
    ClusterSummary {
        name: cluster.name(),
        host: o.host.clone(),
        port: cluster.listen.port(),
        urls: o
            .routes
            .iter()
            .filter_map(|r| url::Url::parse(r).ok())
            .filter_map(|u| Some(crate::gossip::join_host_port(u.host_str()?, u.port()?)))
            .collect(),
        pool_size: o.pool_size,
        no_advertise: o.no_advertise,
        auth_timeout_secs: o.auth_timeout.as_secs_f64(),
        tls_required: o.tls.is_some(),
    }
}
