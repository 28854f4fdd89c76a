//! What `/leafz` shows (nats-server's `Leafz`/`LeafInfo`) and the `/varz`
//! leaf section.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::Leafs;

/// One leaf connection in `/leafz`.
#[derive(Debug, Clone, Serialize)]
pub struct LeafzConn {
    pub id: u64,
    pub name: String,
    pub is_spoke: bool,
    pub account: String,
    pub ip: String,
    pub port: u16,
    pub rtt: String,
    pub in_msgs: i64,
    pub out_msgs: i64,
    pub in_bytes: i64,
    pub out_bytes: i64,
    pub subscriptions: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list: Option<Vec<String>>,
}

/// A snapshot of the leaf connections; `subs` lists each one's interest.
pub fn snapshot(leafs: &Leafs, subs: bool, account: Option<&str>) -> Vec<LeafzConn> {
    leafs
        .connections()
        .iter()
        .filter(|c| account.is_none_or(|a| c.account().name == a))
        .map(|c| {
            let peer = c.peer.lock().clone();
            let list: Vec<String> = c
                .client
                .subs
                .lock()
                .values()
                .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
                .collect();
            let (out_msgs, out_bytes) = c.client.out.out_counts();
            LeafzConn {
                id: c.client.cid,
                name: peer.name,
                is_spoke: c.is_spoke(),
                account: c.account().name.clone(),
                ip: c.client.addr.ip().to_string(),
                port: c.client.addr.port(),
                rtt: "0s".into(),
                in_msgs: c.client.in_msgs.load(Ordering::Relaxed) as i64,
                out_msgs: out_msgs as i64,
                in_bytes: c.client.in_bytes.load(Ordering::Relaxed) as i64,
                out_bytes: out_bytes as i64,
                subscriptions: list.len() as u32,
                subscriptions_list: subs.then_some(list),
            }
        })
        .collect()
}
