//! What `/gatewayz` and `/varz` show about gateways: plain snapshots the
//! monitor crate turns into nats-server's JSON.

use std::sync::atomic::Ordering;

use crate::Gateway;

/// One gateway connection.
#[derive(Debug, Clone)]
pub struct ConnSnapshot {
    pub gateway: String,
    pub configured: bool,
    pub cid: u64,
    pub ip: String,
    pub port: u16,
    pub server_name: String,
    pub server_id: String,
    /// Milliseconds after `start` of the last read.
    pub last_in_ms: u64,
    pub start: chrono::DateTime<chrono::Utc>,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
    pub pending_bytes: usize,
    /// Accounts with their interest mode and no-interest count.
    pub accounts: Vec<(String, &'static str, usize)>,
}

fn snap(g: &Gateway, c: &crate::conn::GwConn) -> ConnSnapshot {
    let gateway = c.remote_gateway();
    let configured = g.remotes.lock().get(&gateway).is_some_and(|r| !r.implicit);
    let (out_msgs, out_bytes) = c.client.out.out_counts();
    let accounts = if c.outbound {
        c.sink
            .modes
            .snapshot()
            .into_iter()
            .map(|(a, m, n)| (a, m.as_str(), n))
            .collect()
    } else {
        c.switched_accounts()
            .into_iter()
            .map(|a| (a, crate::optimistic::Mode::InterestOnly.as_str(), 0))
            .collect()
    };
    let (server_name, server_id) = {
        let r = c.remote.lock();
        (r.name.clone(), r.id.clone())
    };
    ConnSnapshot {
        configured,
        cid: c.client.cid,
        ip: c.client.addr.ip().to_string(),
        port: c.client.addr.port(),
        server_name,
        server_id,
        last_in_ms: c.client.last_in_ms.load(Ordering::Relaxed),
        start: c.started,
        in_msgs: c.client.in_msgs.load(Ordering::Relaxed),
        out_msgs,
        in_bytes: c.client.in_bytes.load(Ordering::Relaxed),
        out_bytes,
        subscriptions: c.client.subs.lock().len(),
        pending_bytes: c.client.out.pending(),
        accounts,
        gateway,
    }
}

/// Outbound connections (one per remote gateway), sorted by name.
pub fn outbound(g: &Gateway) -> Vec<ConnSnapshot> {
    g.outbound_conns()
        .iter()
        .filter(|c| c.registered.load(Ordering::Acquire))
        .map(|c| snap(g, c))
        .collect()
}

/// Inbound connections.
pub fn inbound(g: &Gateway) -> Vec<ConnSnapshot> {
    g.inbound_conns().iter().map(|c| snap(g, c)).collect()
}

/// `/varz` `gateway` section.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub auth_timeout: f64,
    pub tls_timeout: f64,
    pub advertise: String,
    pub connect_retries: u32,
    pub reject_unknown: bool,
    /// Configured remotes with their URLs.
    pub gateways: Vec<(String, Vec<String>)>,
}

pub fn summary(g: &Gateway) -> Summary {
    Summary {
        name: g.name().to_string(),
        host: g.opts.host.clone(),
        port: g.listen.port(),
        auth_timeout: g.opts.auth_timeout.as_secs_f64(),
        tls_timeout: g.opts.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64()),
        advertise: g.opts.advertise.clone().unwrap_or_default(),
        connect_retries: g.opts.connect_retries,
        reject_unknown: g.opts.reject_unknown,
        gateways: g
            .opts
            .gateways
            .iter()
            .map(|r| (r.name.clone(), r.urls.clone()))
            .collect(),
    }
}
