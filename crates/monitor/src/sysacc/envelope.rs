//! The JSON wrappers nats-server puts around everything it says on `$SYS`
//! subjects: the `server` object identifying the sender (with a per-message
//! sequence number and time), and the `{"server", "data"|"error"}` envelope
//! of request responses.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::go_time;
use rnats_core::server::ServerState;

/// nats-server's capability bits: JetStream enabled, binary stream
/// snapshots, NRG traffic in the asset account. The last two describe
/// clustering details a single server trivially "supports"; nats-server
/// always sets them, so tools comparing flags see the same value.
const FLAG_JETSTREAM: u64 = 1;
const FLAGS_ALWAYS: u64 = 2 | 4;

/// The sending server, as every `$SYS` message carries it (`ServerInfo`).
#[derive(Serialize, Clone, Debug)]
pub struct SysServerInfo {
    pub name: String,
    pub host: String,
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    pub ver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub feature_flags: BTreeMap<&'static str, bool>,
    pub jetstream: bool,
    pub flags: u64,
    pub seq: u64,
    pub time: String,
}

impl SysServerInfo {
    /// Describes `state` now, stamped with message sequence `seq`.
    pub fn of(state: &ServerState, seq: u64) -> SysServerInfo {
        let opts = state.opts();
        let jetstream = state.slot::<rnats_jetstream::JetStream>().is_some();
        SysServerInfo {
            name: state.server_name.clone(),
            host: opts.host.clone(),
            id: state.server_id.clone(),
            cluster: opts
                .cluster
                .as_ref()
                .and_then(|c| c.name.clone())
                .unwrap_or_default(),
            domain: opts.jetstream_domain.clone().unwrap_or_default(),
            ver: rnats_core::NATS_COMPAT_VERSION.into(),
            tags: Vec::new(),
            feature_flags: BTreeMap::from([
                ("js_ack_fc_v2", false),
                ("js_api_reply_v2", false),
                ("js_raft_delete_range", true),
                ("js_snapshot_sources", false),
            ]),
            jetstream,
            flags: FLAGS_ALWAYS | if jetstream { FLAG_JETSTREAM } else { 0 },
            seq,
            time: go_time(&chrono::Utc::now()),
        }
    }
}

/// The `error` object of a failed request (an HTTP-like status code).
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub description: String,
}

/// `{"server": ..., "data": ...}` or `{"server": ..., "error": ...}`.
#[derive(Serialize)]
pub struct ApiResponse<T: Serialize> {
    pub server: SysServerInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// `{"server": ..., "statsz": ...}`: statsz has its own key, for history's sake.
#[derive(Serialize)]
pub struct StatszMsg<T: Serialize> {
    pub server: SysServerInfo,
    pub statsz: T,
}

/// The `type`/`id`/`timestamp` head of typed events (connect, disconnect...).
#[derive(Serialize)]
pub struct TypedEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub timestamp: String,
}

impl TypedEvent {
    pub fn new(kind: &'static str, at: &chrono::DateTime<chrono::Utc>) -> TypedEvent {
        TypedEvent {
            kind,
            id: rnats_core::ids::next(),
            timestamp: go_time(at),
        }
    }
}
