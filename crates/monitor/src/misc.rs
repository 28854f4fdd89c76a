//! The small endpoints: the HTML index at `/`, `/accountz` and `/accstatz`
//! (every account, or one with `acc=`), and the `/leafz` handler (its data is
//! built in `leafz`; `/gatewayz` and `/routez` have their own files).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::subsz::SublistStats;
use super::{bad_request, go_time, json_ok, Monitor, Query};
use rnats_core::account::Account;
use rnats_core::client::ClientShared;
use rnats_core::server::ServerState;

pub const GLOBAL_ACCOUNT: &str = "$G";

/// nats-server's index page, byte for byte.
const INDEX_HTML: &str = r##"<html lang="en">
	<head>
	<link rel="shortcut icon" href="https://nats.io/favicon.ico">
	<style type="text/css">
		body { font-family: ui-sans-serif,system-ui,-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif; font-size: 18; font-weight: light-bold; margin-left: 32px }
		a { display:block; margin-left: 7px; padding-bottom: 6px; color: rgb(72 72 92); text-decoration: none }
		a:hover { font-weight: 600; color: rgb(59 50 202) }
		a.help { display:inline; font-weight: 600; color: rgb(59 50 202); font-size: 20}
		a.last { padding-bottom: 16px }
		a.version { font-size: 14; font-weight: 400; width: 312px; text-align: right; margin-top: -2rem }
		a.version:hover { color: rgb(22 22 32) }
		.endpoint { font-size: 12px; color: #999; font-family: monospace; display: none }
		a:hover .endpoint { display: inline }

	</style>
	</head>
	<body>
   <svg xmlns="http://www.w3.org/2000/svg" role="img" width="325" height="110" viewBox="-4.14 -3.89 436.28 119.03"><style>.st1{fill:#fff}.st2{fill:#34a574}</style><path fill="#27aae1" d="M4.3 84.6h42.2L70.7 107V84.6H103v-80H4.3v80zm15.9-61.3h18.5l35.6 33.2V23.3h11.8v42.9H68.2L32 32.4v33.8H20.2V23.3z"/><path d="M32 32.4l36.2 33.8h17.9V23.3H74.3v33.2L38.7 23.3H20.2v42.9H32z" class="st1"/><path d="M159.8 30.7L147 49h25.6z" class="st2"/><path d="M111.3 84.6H210v-80h-98.7v80zm41-61.5H168l30.8 43.2h-14.1l-5.8-8.3h-38.1l-5.8 8.3h-13.5l30.8-43.2z" class="st2"/><path d="M140.8 57.9h38.1l5.8 8.3h14.1L168 23.1h-15.7l-30.8 43.2H135l5.8-8.4zm19-27.2L172.6 49H147l12.8-18.3z" class="st1"/><path fill="#375c93" d="M218.3 84.6H317v-80h-98.7v80zm15.5-61.3h66.7V33h-27.2v33.2h-12.2V33h-27.3v-9.7z"/><path d="M261.1 66.2h12.2V33h27.2v-9.7h-66.7V33h27.3z" class="st1"/><path fill="#8dc63f" d="M325.3 4.6v80H424v-80h-98.7zm76.5 56.7c-3.2 3.2-10.2 5.7-26.8 5.7-12.3 0-24.1-1.9-30.7-4.7v-10c6.3 2.8 20.1 5.5 30.7 5.5 9.3 0 15.8-.3 17.5-2.1.6-.6.7-1.3.7-2 0-.8-.2-1.3-.7-1.8-1-1-2.6-1.7-17.4-2.1-15.7-.4-23.4-2-27-5.6-1.7-1.7-2.6-4.4-2.6-7.5 0-3.3.6-6.2 3.3-8.9 3.6-3.6 10.7-5.3 25.1-5.3 10.8 0 21.6 1.7 27.3 4v10.1c-6.5-2.8-17.8-4.8-27.2-4.8-10.4 0-14.8.6-16.2 2-.5.5-.8 1.1-.8 1.9 0 .9.2 1.5.7 2 1.3 1.3 6.1 1.7 17.3 1.9 16.4.4 23.5 1.8 27 5.2 1.8 1.8 2.8 4.7 2.8 7.7.1 3.2-.6 6.4-3 8.8z"/><path d="M375.2 39.5c-11.2-.2-16-.6-17.3-1.9-.5-.5-.7-1.1-.7-2 0-.8.3-1.4.8-1.9 1.3-1.3 5.8-2 16.2-2 9.4 0 20.7 2 27.2 4.8v-10c-5.7-2.3-16.6-4-27.3-4-14.5 0-21.6 1.8-25.1 5.3-2.7 2.7-3.3 5.6-3.3 8.9 0 3.1 1 5.8 2.6 7.5 3.6 3.6 11.3 5.2 27 5.6 14.8.4 16.4 1.1 17.4 2.1.5.5.7 1 .7 1.8 0 .7-.1 1.3-.7 2-1.8 1.8-8.3 2.1-17.5 2.1-10.6 0-24.3-2.6-30.7-5.5v10.1c6.6 2.8 18.4 4.7 30.7 4.7 16.6 0 23.6-2.5 26.8-5.7 2.4-2.4 3.1-5.6 3.1-8.9 0-3.1-1-5.9-2.8-7.7-3.6-3.5-10.7-4.9-27.1-5.3z" class="st1"/></svg>

	<a href=https://github.com/nats-io/nats-server/tree/v{VERSION} class='version'>v{VERSION}</a>

	</div>
	<br/>
	<a href=./varz>General<span class="endpoint"> /varz</span></a>
	<a href=./jsz>JetStream<span class="endpoint"> /jsz</span></a>
	<a href=./connz>Connections<span class="endpoint"> /connz</span></a>
	<a href=./accountz>Accounts<span class="endpoint"> /accountz</span></a>
	<a href=./accstatz>Account Stats<span class="endpoint"> /accstatz</span></a>
	<a href=./subsz>Subscriptions<span class="endpoint"> /subsz</span></a>
	<a href=./routez>Routes<span class="endpoint"> /routez</span></a>
	<a href=./leafz>LeafNodes<span class="endpoint"> /leafz</span></a>
	<a href=./gatewayz>Gateways<span class="endpoint"> /gatewayz</span></a>
	<a href=./raftz>Raft Groups<span class="endpoint"> /raftz</span></a>
	<a href=./healthz>Health Probe<span class="endpoint"> /healthz</span></a>
	<a href=./debug/vars class=last>Expvar<span class="endpoint"> /debug/vars</span></a>
    <a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring class="help">Help</a>
  </body>
</html>"##;

pub async fn root(State(m): State<Arc<Monitor>>) -> Response {
    m.count("/");
    let body = INDEX_HTML.replace("{VERSION}", rnats_core::NATS_COMPAT_VERSION);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

pub use super::leafz::Leafz;

pub async fn leafz(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    m.count("/leafz");
    let query = Query::parse(q.as_deref());
    let subs = match query.bool("subs") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let account = Some(query.get("acc").to_string()).filter(|a| !a.is_empty());
    json_ok(&super::leafz::build(&m.state, subs, account.as_deref()))
}

/// An export as `/accountz` shows it (nats-server's `jwt.Export` fields).
#[derive(Serialize)]
pub struct ExtExport {
    pub subject: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_accounts: Vec<String>,
}

/// An import as `/accountz` shows it.
#[derive(Serialize)]
pub struct ExtImport {
    pub subject: String,
    pub account: String,
    pub to: String,
    pub local_subject: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub invalid: bool,
    pub share: bool,
    pub tracking: bool,
}

#[derive(Serialize)]
pub struct AccountInfo {
    pub account_name: String,
    pub update_time: String,
    pub expired: bool,
    pub complete: bool,
    pub jetstream_enabled: bool,
    pub leafnode_connections: u64,
    pub client_connections: usize,
    pub subscriptions: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExtExport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<ExtImport>,
    pub name_tag: String,
    pub sublist_stats: SublistStats,
}

#[derive(Serialize)]
pub struct Accountz {
    pub server_id: String,
    pub now: String,
    pub system_account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_detail: Option<AccountInfo>,
}

pub async fn accountz(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    m.count("/accountz");
    let q = Query::parse(q.as_deref());
    match build_accountz(&m.state, q.get("acc")) {
        Ok(az) => json_ok(&az),
        Err(e) => bad_request(e),
    }
}

/// The account list (`acc` empty) or one account's detail.
pub fn build_accountz(state: &ServerState, acc: &str) -> Result<Accountz, String> {
    let mut az = Accountz {
        server_id: state.server_id.clone(),
        now: go_time(&chrono::Utc::now()),
        system_account: state.accounts.system().name.clone(),
        accounts: None,
        account_detail: None,
    };
    match acc {
        "" => {
            let names = state
                .accounts
                .all()
                .iter()
                .map(|a| a.name.clone())
                .collect();
            az.accounts = Some(names);
        }
        _ => az.account_detail = Some(account_info(state, acc)?),
    }
    Ok(az)
}

/// One account's detail.
pub fn account_info(state: &ServerState, acc: &str) -> Result<AccountInfo, String> {
    let Some(account) = state.accounts.get(acc) else {
        return Err(format!("Account {acc} does not exist"));
    };
    let stats = SublistStats::of_accounts(std::slice::from_ref(&account));
    let exports = account
        .exports
        .iter()
        .map(|e| ExtExport {
            subject: e.subject.clone(),
            kind: if e.is_service() { "service" } else { "stream" },
            response_type: e.service.as_ref().map(|s| response_type(s.response)),
            approved_accounts: e.accounts.clone(),
        })
        .collect();
    let mut imports = Vec::new();
    if !Arc::ptr_eq(&account, state.accounts.system())
        && state.slot::<crate::sysacc::Sys>().is_some()
    {
        for (remote, local, share) in crate::sysacc::system_imports(&account.name) {
            imports.push(ExtImport {
                subject: remote,
                account: state.accounts.system().name.clone(),
                to: local.into(),
                local_subject: local.into(),
                kind: "service",
                invalid: false,
                share,
                tracking: false,
            });
        }
    }
    for imp in &account.imports {
        let local = imp.local_subject();
        imports.push(ExtImport {
            subject: imp.subject.clone(),
            account: imp.account.clone(),
            to: local.clone(),
            local_subject: local,
            kind: if imp.service { "service" } else { "stream" },
            invalid: false,
            share: false,
            tracking: false,
        });
    }
    let js = account.name == GLOBAL_ACCOUNT && state.slot::<rnats_jetstream::JetStream>().is_some();
    Ok(AccountInfo {
        account_name: account.name.clone(),
        update_time: go_time(&account.updated),
        expired: false,
        complete: true,
        jetstream_enabled: js || account.jetstream.is_some(),
        leafnode_connections: 0,
        client_connections: account_conns(state, &account),
        subscriptions: stats.num_subscriptions,
        exports,
        imports,
        name_tag: account.name.clone(),
        sublist_stats: stats,
    })
}

fn response_type(r: rnats_core::account::ResponseType) -> &'static str {
    match r {
        rnats_core::account::ResponseType::Singleton => "Singleton",
        rnats_core::account::ResponseType::Stream => "Stream",
        rnats_core::account::ResponseType::Chunked => "Chunked",
    }
}

/// The clients connected to `account` right now.
pub fn account_clients(state: &ServerState, account: &Account) -> Vec<Arc<ClientShared>> {
    let clients = state.clients.lock();
    clients
        .values()
        .filter(|c| std::ptr::eq(Arc::as_ptr(&c.account.load()), account))
        .cloned()
        .collect()
}

/// How many clients are connected to `account`.
pub fn account_conns(state: &ServerState, account: &Account) -> usize {
    account_clients(state, account).len()
}

#[derive(Serialize)]
pub struct MsgBytes {
    pub msgs: u64,
    pub bytes: u64,
}

#[derive(Serialize)]
pub struct DataStats {
    pub msgs: u64,
    pub bytes: u64,
    pub gateways: MsgBytes,
    pub routes: MsgBytes,
    pub leafs: MsgBytes,
}

impl DataStats {
    pub fn local(msgs: u64, bytes: u64) -> DataStats {
        let zero = || MsgBytes { msgs: 0, bytes: 0 };
        DataStats {
            msgs,
            bytes,
            gateways: zero(),
            routes: zero(),
            leafs: zero(),
        }
    }
}

#[derive(Serialize)]
pub struct AccountStat {
    pub acc: String,
    pub name: String,
    pub conns: usize,
    pub leafnodes: u64,
    pub total_conns: usize,
    pub num_subscriptions: u64,
    pub sent: DataStats,
    pub received: DataStats,
    pub slow_consumers: u64,
}

#[derive(Serialize)]
pub struct AccountStatz {
    pub server_id: String,
    pub now: String,
    pub account_statz: Vec<AccountStat>,
}

pub async fn accstatz(State(m): State<Arc<Monitor>>, RawQuery(q): RawQuery) -> Response {
    m.count("/accstatz");
    let q = Query::parse(q.as_deref());
    let unused = match q.bool("unused") {
        Ok(u) => u,
        Err(r) => return *r,
    };
    // `acc=A,B` narrows the list.
    let wanted: Vec<&str> = q.get("acc").split(',').filter(|a| !a.is_empty()).collect();
    let mut out = accounts_statz(&m.state, None, unused);
    if !wanted.is_empty() {
        out.account_statz
            .retain(|s| wanted.contains(&s.acc.as_str()));
    }
    json_ok(&out)
}

/// Statistics of one account (`only`) or all, leaving out accounts without
/// connections unless `unused`.
pub fn accounts_statz(state: &ServerState, only: Option<&str>, unused: bool) -> AccountStatz {
    let accounts = match only {
        Some(name) => state.accounts.get(name).into_iter().collect(),
        None => state.accounts.all(),
    };
    AccountStatz {
        server_id: state.server_id.clone(),
        now: go_time(&chrono::Utc::now()),
        account_statz: accounts
            .iter()
            .map(|a| account_stat(state, a))
            .filter(|s| unused || s.total_conns > 0)
            .collect(),
    }
}

/// An account's traffic and connection counts: its departed clients' totals
/// plus its live ones'.
pub fn account_stat(state: &ServerState, account: &Account) -> AccountStat {
    let clients = account_clients(state, account);
    let t = &account.traffic;
    let (mut in_msgs, mut in_bytes) = (
        t.in_msgs.load(Ordering::Relaxed),
        t.in_bytes.load(Ordering::Relaxed),
    );
    let (mut out_msgs, mut out_bytes) = (
        t.out_msgs.load(Ordering::Relaxed),
        t.out_bytes.load(Ordering::Relaxed),
    );
    for c in &clients {
        in_msgs += c.in_msgs.load(Ordering::Relaxed);
        in_bytes += c.in_bytes.load(Ordering::Relaxed);
        let (m, b) = c.out.out_counts();
        out_msgs += m;
        out_bytes += b;
    }
    let conns = clients.len();
    let leafnodes = super::leafz::count_in(state, account);
    AccountStat {
        acc: account.name.clone(),
        name: account.name.clone(),
        conns,
        leafnodes,
        total_conns: conns + leafnodes as usize,
        num_subscriptions: account.num_subscriptions() as u64,
        sent: DataStats::local(out_msgs, out_bytes),
        received: DataStats::local(in_msgs, in_bytes),
        slow_consumers: 0,
    }
}
