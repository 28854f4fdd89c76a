//! Account types: `AccountInfo` (the body of `$JS.API.INFO`, nats-server's
//! `JetStreamAccountStats`), `AccountLimits`, `ApiStats` and per-tier usage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{is_zero_u64, nullable};

/// An account's JetStream limits; -1 is unlimited. All fields are always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
    #[serde(default)]
    pub max_ack_pending: i64,
    #[serde(default)]
    pub memory_max_stream_bytes: i64,
    #[serde(default)]
    pub storage_max_stream_bytes: i64,
    #[serde(default)]
    pub max_bytes_required: bool,
}

impl Default for AccountLimits {
    /// No limits, as a standalone server with no account limits reports.
    fn default() -> Self {
        AccountLimits {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }
}

/// Usage and limits of an account, in total or for one tier (nats-server's `JetStreamTier`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TierInfo {
    pub memory: u64,
    pub storage: u64,
    #[serde(default)]
    pub reserved_memory: u64,
    #[serde(default)]
    pub reserved_storage: u64,
    pub streams: i64,
    pub consumers: i64,
    pub limits: AccountLimits,
}

/// API request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiStats {
    /// The JetStream API level implemented (nats-server 2.15: 5).
    #[serde(default)]
    pub level: i64,
    pub total: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub inflight: u64,
}

/// The API level nats-server 2.15 reports in `api.level`.
pub const JS_API_LEVEL: i64 = 5;

/// The body of an account info response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountInfo {
    #[serde(flatten)]
    pub total: TierInfo,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    pub api: ApiStats,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tiers: BTreeMap<String, TierInfo>,
}
