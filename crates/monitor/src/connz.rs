//! `/connz`: open and recently closed client connections, with nats-server's
//! options (`sort`, `offset`, `limit`, `subs=1|detail`, `cid`,
//! `state=open|closed|all`, `auth=true` for user and account, `acc=` one
//! account's connections) and `ConnInfo` field order.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{bad_request, go_time, json_ok, uptime, Monitor, Query, Reject};
use rnats_core::client::ClientShared;
use rnats_core::closed::{reason_text, ClosedClient, SubSnapshot};
use rnats_core::server::ServerState;

/// nats-server's `DefaultConnListSize`.
pub const DEFAULT_LIMIT: i64 = 1024;

#[derive(Serialize, Clone)]
pub struct SubDetail {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account_tag: String,
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub qgroup: String,
    pub sid: String,
    pub msgs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub cid: u64,
}

impl SubDetail {
    pub fn of(s: &SubSnapshot, account: bool) -> SubDetail {
        let acc = if account { s.account.as_str() } else { "" };
        SubDetail {
            account: acc.into(),
            account_tag: acc.into(),
            subject: s.subject.clone(),
            qgroup: s.queue.clone().unwrap_or_default(),
            sid: s.sid.clone(),
            msgs: s.msgs,
            max: s.max,
            cid: s.cid,
        }
    }
}

#[derive(Serialize)]
pub struct ConnInfo {
    pub cid: u64,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub kind_type: &'static str,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: &'static str,
    pub rtt: &'static str,
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
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// These three only with `auth=true`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub authorized_user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name_tag: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
    /// Sort keys that are not shown as such.
    #[serde(skip)]
    keys: Keys,
}

#[derive(Default, Clone, Copy)]
struct Keys {
    start: DateTime<Utc>,
    last: DateTime<Utc>,
    stop: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
pub struct Connz {
    pub server_id: String,
    pub now: String,
    pub num_connections: usize,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub connections: Vec<ConnInfo>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnState {
    Open,
    Closed,
    All,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SortOpt {
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
    Rtt,
}

impl SortOpt {
    pub fn parse(s: &str) -> Option<SortOpt> {
        Some(match s {
            "" | "cid" => SortOpt::Cid,
            "start" => SortOpt::Start,
            "subs" => SortOpt::Subs,
            "pending" => SortOpt::Pending,
            "msgs_to" => SortOpt::MsgsTo,
            "msgs_from" => SortOpt::MsgsFrom,
            "bytes_to" => SortOpt::BytesTo,
            "bytes_from" => SortOpt::BytesFrom,
            "last" => SortOpt::Last,
            "idle" => SortOpt::Idle,
            "uptime" => SortOpt::Uptime,
            "stop" => SortOpt::Stop,
            "reason" => SortOpt::Reason,
            "rtt" => SortOpt::Rtt,
            _ => return None,
        })
    }
}

pub struct ConnzOptions {
    pub sort: SortOpt,
    pub subs: bool,
    pub subs_detail: bool,
    pub offset: i64,
    pub limit: i64,
    pub cid: u64,
    pub state: ConnState,
    /// Show each connection's user and account.
    pub auth: bool,
    /// Only connections of this account (`acc=`), when not empty.
    pub account: String,
}

pub async fn handle(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let parsed = (|| -> Result<(String, ConnzOptions), Reject> {
        let sort = q.get("sort").to_string();
        let auth = q.bool("auth")?;
        let subs_detail = q.get("subs").eq_ignore_ascii_case("detail");
        let subs = if subs_detail { false } else { q.bool("subs")? };
        let offset = q.int("offset")?;
        let limit = q.int("limit")?;
        let cid = q.uint("cid")?;
        let state = match q.get("state").to_ascii_lowercase().as_str() {
            "" | "open" => ConnState::Open,
            "closed" => ConnState::Closed,
            "any" | "all" => ConnState::All,
            other => {
                return Err(Box::new(bad_request(format!(
                    "Error decoding state for {other}"
                ))));
            }
        };
        Ok((
            sort,
            ConnzOptions {
                sort: SortOpt::Cid,
                subs,
                subs_detail,
                offset,
                limit,
                cid,
                state,
                auth,
                account: q.get("acc").to_string(),
            },
        ))
    })();
    let (sort, mut opts) = match parsed {
        Ok(v) => v,
        Err(r) => return *r,
    };
    m.count("/connz");
    opts.sort = match SortOpt::parse(&sort) {
        Some(s) => s,
        None => return bad_request(format!("invalid sorting option: {sort}")),
    };
    match build(&m.state, opts) {
        Ok(c) => json_ok(&c),
        Err(e) => bad_request(e),
    }
}

pub fn build(state: &ServerState, opts: ConnzOptions) -> Result<Connz, String> {
    if opts.sort == SortOpt::Stop && opts.state != ConnState::Closed {
        return Err("sort by stop only valid on closed connections".into());
    }
    if opts.sort == SortOpt::Reason && opts.state != ConnState::Closed {
        return Err("sort by reason only valid on closed connections".into());
    }
    let offset = opts.offset.max(0) as usize;
    let mut limit = if opts.limit <= 0 {
        DEFAULT_LIMIT
    } else {
        opts.limit
    } as usize;
    if opts.cid > 0 {
        limit = 1;
    }
    let now_t = Utc::now();
    let mut conns = Connz {
        server_id: state.server_id.clone(),
        now: go_time(&now_t),
        num_connections: 0,
        total: 0,
        offset,
        limit,
        connections: Vec::new(),
    };

    let want_open = matches!(opts.state, ConnState::Open | ConnState::All);
    let want_closed = matches!(opts.state, ConnState::Closed | ConnState::All);
    // Copy the registry under its lock; snapshot each client outside it.
    let in_account = |name: &str| opts.account.is_empty() || opts.account == name;
    let mut open: Vec<Arc<ClientShared>> = if want_open {
        let clients = state.clients.lock();
        let mut list: Vec<Arc<ClientShared>> = if opts.cid > 0 {
            clients.get(&opts.cid).cloned().into_iter().collect()
        } else {
            clients.values().cloned().collect()
        };
        drop(clients);
        list.retain(|c| in_account(&c.account.load().name));
        conns.total += list.len();
        list
    } else {
        Vec::new()
    };
    let mut closed = if want_closed {
        let mut list = state.closed.list();
        list.retain(|c| in_account(&c.account));
        conns.total += list.len();
        list
    } else {
        Vec::new()
    };
    if opts.cid > 0 {
        if !open.is_empty() {
            closed.clear();
        } else {
            closed.retain(|c| c.cid == opts.cid);
            closed.truncate(1);
        }
    }
    let mut infos: Vec<ConnInfo> = Vec::with_capacity(open.len() + closed.len());
    open.sort_by_key(|c| c.cid);
    for c in &open {
        infos.push(open_info(state, c, now_t, &opts));
    }
    for c in &closed {
        infos.push(closed_info(c, &opts));
    }
    let total_clients = if opts.cid > 0 {
        infos.len()
    } else {
        conns.total
    };

    sort(&mut infos, opts.sort, now_t);
    let max_index = total_clients.min(infos.len());
    let minoff = offset.min(max_index);
    let maxoff = minoff + limit.min(max_index - minoff);
    conns.connections = infos.drain(minoff..maxoff).collect();
    conns.num_connections = conns.connections.len();
    Ok(conns)
}

fn open_info(
    state: &ServerState,
    c: &ClientShared,
    now: DateTime<Utc>,
    opts: &ConnzOptions,
) -> ConnInfo {
    let start = state.wall_time(c.started);
    let last = start + chrono::Duration::milliseconds(c.last_in_ms.load(Ordering::Relaxed) as i64);
    let (out_msgs, out_bytes) = c.out.out_counts();
    let meta = c.meta.lock().clone();
    let (num_subs, mut subs): (usize, Vec<SubSnapshot>) = {
        let map = c.subs.lock();
        let list = if opts.subs || opts.subs_detail {
            map.values().map(|s| SubSnapshot::of(s)).collect()
        } else {
            Vec::new()
        };
        (map.len(), list)
    };
    subs.sort_by(|a, b| a.sid.cmp(&b.sid));
    let mut info = ConnInfo {
        cid: c.cid,
        kind: "Client",
        kind_type: "nats",
        ip: c.addr.ip().to_string(),
        port: c.addr.port(),
        start: go_time(&start),
        last_activity: go_time(&last),
        stop: None,
        reason: "",
        rtt: "0s",
        uptime: uptime((now - start).to_std().unwrap_or_default()),
        idle: uptime((now - last).to_std().unwrap_or_default()),
        pending_bytes: c.out.pending(),
        in_msgs: c.in_msgs.load(Ordering::Relaxed),
        out_msgs,
        in_bytes: c.in_bytes.load(Ordering::Relaxed),
        out_bytes,
        subscriptions: num_subs,
        name: meta.name,
        lang: meta.lang,
        version: meta.version,
        authorized_user: String::new(),
        account: String::new(),
        name_tag: String::new(),
        subscriptions_list: Vec::new(),
        subscriptions_list_detail: Vec::new(),
        keys: Keys {
            start,
            last,
            stop: None,
        },
    };
    if opts.auth {
        info.authorized_user = meta.user;
        info.account = c.account_name();
        info.name_tag = info.account.clone();
    }
    fill_subs(&mut info, &subs, opts);
    info
}

fn closed_info(c: &ClosedClient, opts: &ConnzOptions) -> ConnInfo {
    let mut info = ConnInfo {
        cid: c.cid,
        kind: "Client",
        kind_type: "nats",
        ip: c.ip.clone(),
        port: c.port,
        start: go_time(&c.start),
        last_activity: go_time(&c.last_activity),
        stop: Some(go_time(&c.stop)),
        reason: reason_text(c.reason),
        rtt: "0s",
        uptime: uptime((c.stop - c.start).to_std().unwrap_or_default()),
        idle: uptime((c.stop - c.last_activity).to_std().unwrap_or_default()),
        pending_bytes: 0,
        in_msgs: c.in_msgs,
        out_msgs: c.out_msgs,
        in_bytes: c.in_bytes,
        out_bytes: c.out_bytes,
        subscriptions: c.subs.len(),
        name: c.name.clone(),
        lang: c.lang.clone(),
        version: c.version.clone(),
        authorized_user: String::new(),
        account: String::new(),
        name_tag: String::new(),
        subscriptions_list: Vec::new(),
        subscriptions_list_detail: Vec::new(),
        keys: Keys {
            start: c.start,
            last: c.last_activity,
            stop: Some(c.stop),
        },
    };
    if opts.auth {
        info.authorized_user = c.user.clone();
        info.account = c.account.clone();
        info.name_tag = c.account.clone();
    }
    fill_subs(&mut info, &c.subs, opts);
    info
}

fn fill_subs(info: &mut ConnInfo, subs: &[SubSnapshot], opts: &ConnzOptions) {
    if opts.subs_detail {
        info.subscriptions_list_detail = subs.iter().map(|s| SubDetail::of(s, false)).collect();
    } else if opts.subs {
        info.subscriptions_list = subs.iter().map(|s| s.subject.clone()).collect();
    }
}

/// nats-server's orders: by cid/start and uptime ascending, reason
/// ascending, everything else descending. Ties keep cid order.
fn sort(infos: &mut [ConnInfo], by: SortOpt, now: DateTime<Utc>) {
    infos.sort_by_key(|c| c.cid);
    let up = |c: &ConnInfo| c.keys.stop.unwrap_or(now) - c.keys.start;
    match by {
        SortOpt::Cid | SortOpt::Start => {}
        SortOpt::Subs => infos.sort_by_key(|c| std::cmp::Reverse(c.subscriptions)),
        SortOpt::Pending => infos.sort_by_key(|c| std::cmp::Reverse(c.pending_bytes)),
        SortOpt::MsgsTo => infos.sort_by_key(|c| std::cmp::Reverse(c.out_msgs)),
        SortOpt::MsgsFrom => infos.sort_by_key(|c| std::cmp::Reverse(c.in_msgs)),
        SortOpt::BytesTo => infos.sort_by_key(|c| std::cmp::Reverse(c.out_bytes)),
        SortOpt::BytesFrom => infos.sort_by_key(|c| std::cmp::Reverse(c.in_bytes)),
        SortOpt::Last => infos.sort_by_key(|c| std::cmp::Reverse(c.keys.last)),
        // Longest idle first: the oldest last activity.
        SortOpt::Idle => infos.sort_by_key(|c| c.keys.last),
        SortOpt::Uptime => infos.sort_by_key(|c| up(c)),
        SortOpt::Stop => infos.sort_by_key(|c| std::cmp::Reverse(c.keys.stop)),
        SortOpt::Reason => infos.sort_by_key(|c| c.reason),
        // RTT is not measured (always 0s): cid order.
        SortOpt::Rtt => {}
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
