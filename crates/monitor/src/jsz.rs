//! `/jsz`: JetStream usage and configuration, with per-account and
//! per-stream detail on request (`accounts`, `streams`, `consumers`,
//! `config`, `acc`, `offset`, `limit`), in nats-server's `JSInfo` order.
//! Also the `config`/`stats`/`limits` objects `/varz` embeds.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Serialize;

use super::{go_time, json_ok, Monitor, Query, Reject};
use rnats_core::server::ServerState;
use rnats_jetstream::types::StreamConfig;
use rnats_jetstream::{JetStream, JsAccount};
/// The JetStream API level rnats implements.
const API_LEVEL: u32 = 5;

#[derive(Serialize, Default)]
pub struct JsConfig {
    pub max_memory: i64,
    pub max_storage: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub store_dir: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub sync_interval: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub sync_always: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(skip_serializing_if = "is_false")]
    pub strict: bool,
}

impl JsConfig {
    pub fn of(state: &ServerState, js: &JetStream) -> JsConfig {
        let opts = state.opts();
        JsConfig {
            max_memory: js.max_memory,
            max_storage: js.max_store,
            store_dir: js.store_dir.display().to_string(),
            sync_interval: opts.sync_interval.as_nanos() as u64,
            sync_always: opts.sync_always,
            domain: opts.jetstream_domain.clone().unwrap_or_default(),
            strict: true,
        }
    }
}

#[derive(Serialize, Default)]
pub struct ApiStats {
    pub level: u32,
    pub total: u64,
    pub errors: u64,
}

#[derive(Serialize, Default)]
pub struct JsStats {
    pub memory: u64,
    pub storage: u64,
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub accounts: u64,
    pub ha_assets: u64,
    pub api: ApiStats,
    /// rnats: damaged ranges found in stream files since start (omitted at 0).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub corrupt_records: u64,
}

impl JsStats {
    /// The server-wide numbers (all accounts with JetStream).
    pub fn of(js: &JetStream) -> JsStats {
        let (memory, storage) = js.usage();
        let (reserved_memory, reserved_storage) = js.reserved();
        let (total, errors) = js.api_counts();
        JsStats {
            memory,
            storage,
            reserved_memory: reserved_memory as u64,
            reserved_storage: reserved_storage as u64,
            accounts: js.accounts().len() as u64,
            ha_assets: 0,
            api: ApiStats {
                level: API_LEVEL,
                total,
                errors,
            },
            corrupt_records: js.corruption_events(),
        }
    }

    /// One account's numbers in `/jsz` account details: nats-server shows
    /// the account's limits as its reservations (-1 as uint64 when unlimited).
    fn of_account(js: &JsAccount) -> JsStats {
        let (memory, storage) = js.usage();
        JsStats {
            memory,
            storage,
            reserved_memory: js.limits.max_memory as u64,
            reserved_storage: js.limits.max_file as u64,
            accounts: 0,
            ha_assets: 0,
            api: ApiStats {
                level: 0,
                total: js.api_total.load(Ordering::Relaxed),
                errors: js.api_errors.load(Ordering::Relaxed),
            },
            corrupt_records: js.corruption_events.load(Ordering::Relaxed),
        }
    }
}

/// What a default nats-server reports as its JetStream limits.
#[derive(Serialize)]
pub struct JsLimits {
    pub default_max_consumers: u64,
}

impl Default for JsLimits {
    fn default() -> Self {
        JsLimits {
            default_max_consumers: 1000,
        }
    }
}

#[derive(Serialize)]
pub struct StreamStateOut {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: String,
    pub last_seq: u64,
    pub last_ts: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub num_subjects: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub num_deleted: u64,
    pub consumer_count: u64,
    /// rnats: damaged ranges found in this stream's files since start (omitted at 0).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub corrupt_records: u64,
}

#[derive(Serialize)]
pub struct StreamCluster {
    pub leader: String,
}

#[derive(Serialize)]
pub struct StreamDetail {
    pub name: String,
    pub created: String,
    pub cluster: StreamCluster,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<StreamConfig>,
    pub state: StreamStateOut,
    /// With `consumers=1`: each consumer's info, as nats-server sends it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumer_detail: Vec<rnats_jetstream::types::ConsumerInfo>,
}

#[derive(Serialize)]
pub struct AccountDetail {
    pub name: String,
    pub id: String,
    #[serde(flatten)]
    pub stats: JsStats,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stream_detail: Vec<StreamDetail>,
}

#[derive(Serialize)]
pub struct Jsz {
    #[serde(flatten)]
    pub stats: JsStats,
    pub server_id: String,
    pub now: String,
    #[serde(skip_serializing_if = "is_false")]
    pub disabled: bool,
    pub config: JsConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<JsLimits>,
    pub streams: u64,
    pub consumers: u64,
    pub messages: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub account_details: Vec<AccountDetail>,
    pub total: u64,
}

/// The `/jsz` options.
#[derive(Default)]
pub struct JszOptions {
    pub account: String,
    pub accounts: bool,
    pub streams: bool,
    pub consumers: bool,
    pub config: bool,
    pub offset: i64,
    pub limit: i64,
}

pub async fn handle(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    m.count("/jsz");
    let q = Query::parse(q.as_deref());
    let parsed = (|| -> Result<JszOptions, Reject> {
        let accounts = q.bool("accounts")?;
        let streams = q.bool("streams")?;
        let consumers = q.bool("consumers")?;
        q.bool("direct-consumers")?;
        let config = q.bool("config")?;
        let offset = q.int("offset")?;
        let limit = q.int("limit")?;
        q.bool("leader-only")?;
        q.bool("raft")?;
        q.bool("stream-leader-only")?;
        Ok(JszOptions {
            account: q.get("acc").to_string(),
            accounts,
            streams,
            consumers,
            config,
            offset,
            limit,
        })
    })();
    match parsed {
        Ok(opts) => json_ok(&build(&m.state, opts)),
        Err(r) => *r,
    }
}

pub fn build(state: &ServerState, mut opts: JszOptions) -> Jsz {
    opts.offset = opts.offset.max(0);
    if opts.limit == 0 {
        opts.limit = 1024;
    }
    if opts.consumers {
        opts.streams = true;
    }
    if opts.streams && opts.account.is_empty() {
        opts.accounts = true;
    }
    let now = go_time(&chrono::Utc::now());
    let Some(js) = state.slot::<rnats_jetstream::JetStream>() else {
        return Jsz {
            stats: JsStats::default(),
            server_id: state.server_id.clone(),
            now,
            disabled: true,
            config: JsConfig::default(),
            limits: None,
            streams: 0,
            consumers: 0,
            messages: 0,
            bytes: 0,
            account_details: Vec::new(),
            total: 0,
        };
    };
    let accounts = js.accounts();
    let (mut messages, mut bytes, mut streams, mut consumers) = (0, 0, 0, 0);
    for a in &accounts {
        for s in a.streams() {
            let st = s.store.state();
            messages += st.msgs;
            bytes += st.bytes;
            streams += 1;
            consumers += s.consumers().len() as u64;
        }
    }
    let chosen: Vec<&Arc<JsAccount>> = if !opts.account.is_empty() {
        accounts
            .iter()
            .filter(|a| a.account.name == opts.account)
            .collect()
    } else if opts.accounts {
        accounts
            .iter()
            .skip(opts.offset as usize)
            .take(opts.limit.max(0) as usize)
            .collect()
    } else {
        Vec::new()
    };
    let account_details = chosen
        .into_iter()
        .map(|a| account_detail(state, a, &opts))
        .collect();
    Jsz {
        stats: JsStats::of(&js),
        server_id: state.server_id.clone(),
        now,
        disabled: false,
        config: JsConfig::of(state, &js),
        limits: Some(JsLimits::default()),
        streams,
        consumers,
        messages,
        bytes,
        account_details,
        total: accounts.len() as u64,
    }
}

/// One account's entry in `account_details`, with its streams on request.
fn account_detail(state: &ServerState, js: &JsAccount, opts: &JszOptions) -> AccountDetail {
    let mut detail = AccountDetail {
        name: js.account.name.clone(),
        id: js.account.name.clone(),
        stats: JsStats::of_account(js),
        stream_detail: Vec::new(),
    };
    if !opts.streams {
        return detail;
    }
    for s in js.streams() {
        let st = s.store.state();
        let config = opts.config.then(|| {
            let mut c = s.config();
            let required = rnats_jetstream::versioning::stream_required_level(&c);
            rnats_jetstream::versioning::set_metadata(&mut c.metadata, required, false);
            c
        });
        detail.stream_detail.push(StreamDetail {
            name: s.name.clone(),
            created: go_time(&s.created),
            cluster: StreamCluster {
                leader: state.server_name.clone(),
            },
            config,
            state: StreamStateOut {
                messages: st.msgs,
                bytes: st.bytes,
                first_seq: st.first_seq,
                first_ts: nanos_time(st.first_ts),
                last_seq: st.last_seq,
                last_ts: nanos_time(st.last_ts),
                num_subjects: st.num_subjects,
                num_deleted: st.num_deleted,
                consumer_count: s.consumers().len() as u64,
                corrupt_records: js.corrupt_records(&s.name),
            },
            consumer_detail: if opts.consumers {
                s.consumers()
                    .iter()
                    .map(|c| {
                        let mut info = c.info();
                        if !opts.config {
                            info.config = None;
                        }
                        info
                    })
                    .collect()
            } else {
                Vec::new()
            },
        });
    }
    detail
}

/// Unix nanoseconds as Go's time JSON (the zero time for 0).
fn nanos_time(nanos: i64) -> String {
    if nanos <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    go_time(&chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(
        nanos,
    ))
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}
