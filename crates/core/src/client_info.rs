//! nats-server's `ClientInfo`: who a client is, as `$SYS` connect and
//! disconnect events and JetStream API audit advisories both report it.
//! One struct, nats-server's field names and order, empty fields left out.

use serde::Serialize;

use crate::client::ClientShared;
use crate::gofmt::go_time;
use crate::server::ServerState;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub start: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub id: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub acc: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ver: String,
    /// The server the client is connected to (audit advisories).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// When it disconnected (disconnect events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name_tag: String,
    pub kind: &'static str,
    pub client_type: &'static str,
}

impl ClientInfo {
    /// What a client connection says about itself.
    pub fn of(state: &ServerState, c: &ClientShared) -> ClientInfo {
        let meta = c.meta.lock().clone();
        ClientInfo {
            start: go_time(&state.wall_time(c.started)),
            host: c.addr.ip().to_string(),
            id: c.cid,
            acc: c.account_name(),
            user: meta.user,
            name: meta.name,
            lang: meta.lang,
            ver: meta.version,
            kind: "Client",
            client_type: "nats",
            ..ClientInfo::default()
        }
    }
}
