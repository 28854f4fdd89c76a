//! Answers to `$SYS.REQ.SERVER.*` and `$SYS.REQ.ACCOUNT.*` requests: the
//! request body (JSON, optional) holds the endpoint's options plus the
//! server filter every endpoint shares; the data comes from the same
//! builders as the HTTP monitoring endpoints.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::envelope::ApiError;
use super::Sys;
use crate::connz::{self, ConnState, ConnzOptions, SortOpt};
use crate::health::{self, HealthzOptions};
use crate::misc;
use crate::{jsz, routez, subsz, varz};
use rnats_core::server::ServerState;

/// A server-wide endpoint (`$SYS.REQ.SERVER.PING.<name>` and
/// `$SYS.REQ.SERVER.<id>.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEndpoint {
    Statsz,
    Idz,
    Varz,
    Subsz,
    Connz,
    Routez,
    Gatewayz,
    Leafz,
    Accountz,
    Jsz,
    Healthz,
}

impl ServerEndpoint {
    pub const ALL: [ServerEndpoint; 11] = [
        ServerEndpoint::Statsz,
        ServerEndpoint::Idz,
        ServerEndpoint::Varz,
        ServerEndpoint::Subsz,
        ServerEndpoint::Connz,
        ServerEndpoint::Routez,
        ServerEndpoint::Gatewayz,
        ServerEndpoint::Leafz,
        ServerEndpoint::Accountz,
        ServerEndpoint::Jsz,
        ServerEndpoint::Healthz,
    ];

    /// The subject token.
    pub fn name(self) -> &'static str {
        match self {
            ServerEndpoint::Statsz => "STATSZ",
            ServerEndpoint::Idz => "IDZ",
            ServerEndpoint::Varz => "VARZ",
            ServerEndpoint::Subsz => "SUBSZ",
            ServerEndpoint::Connz => "CONNZ",
            ServerEndpoint::Routez => "ROUTEZ",
            ServerEndpoint::Gatewayz => "GATEWAYZ",
            ServerEndpoint::Leafz => "LEAFZ",
            ServerEndpoint::Accountz => "ACCOUNTZ",
            ServerEndpoint::Jsz => "JSZ",
            ServerEndpoint::Healthz => "HEALTHZ",
        }
    }
}

/// A per-account endpoint (`$SYS.REQ.ACCOUNT.<acc>.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountEndpoint {
    Subsz,
    Connz,
    Leafz,
    Jsz,
    Info,
    Statz,
    Conns,
}

impl AccountEndpoint {
    pub const ALL: [AccountEndpoint; 7] = [
        AccountEndpoint::Subsz,
        AccountEndpoint::Connz,
        AccountEndpoint::Leafz,
        AccountEndpoint::Jsz,
        AccountEndpoint::Info,
        AccountEndpoint::Statz,
        AccountEndpoint::Conns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AccountEndpoint::Subsz => "SUBSZ",
            AccountEndpoint::Connz => "CONNZ",
            AccountEndpoint::Leafz => "LEAFZ",
            AccountEndpoint::Jsz => "JSZ",
            AccountEndpoint::Info => "INFO",
            AccountEndpoint::Statz => "STATZ",
            AccountEndpoint::Conns => "CONNS",
        }
    }
}

/// What a request handler decided.
pub enum Outcome {
    /// The `data` of the envelope, already JSON (kept in its struct's field order).
    Data(String),
    /// The request could not be decoded: the envelope's `error`.
    Error(ApiError),
    /// The endpoint failed: `error`, with `data: null` as nats-server sends it.
    Failed(ApiError),
    /// A body sent as is (IDZ, CONNS, STATSZ have their own shapes).
    Raw(Vec<u8>),
    /// Not for this server (filtered out, or nothing to report): no reply.
    Skip,
}

/// The filter every request body may carry; a request that does not match
/// this server gets no answer from it (another server would answer).
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct EventFilter {
    server_name: String,
    cluster: String,
    host: String,
    exact_match: bool,
    tags: Vec<String>,
    domain: String,
}

impl EventFilter {
    /// True when the request is addressed to other servers.
    pub fn excludes(&self, state: &ServerState) -> bool {
        let opts = state.opts();
        let cluster = opts
            .cluster
            .as_ref()
            .and_then(|c| c.name.clone())
            .unwrap_or_default();
        let differs = |want: &str, have: &str| {
            !want.is_empty()
                && if self.exact_match {
                    want != have
                } else {
                    !have.contains(want)
                }
        };
        if differs(&self.server_name, &state.server_name)
            || differs(&self.host, &opts.host)
            || differs(&self.cluster, &cluster)
        {
            return true;
        }
        // rnats has no server tags: a tag filter matches no server.
        if !self.tags.is_empty() {
            return true;
        }
        !self.domain.is_empty() && opts.jetstream_domain.as_deref() != Some(self.domain.as_str())
    }
}

/// A request body: the endpoint's options with the filter alongside.
#[derive(Deserialize, Default)]
struct Body<T> {
    #[serde(flatten)]
    filter: EventFilter,
    #[serde(flatten)]
    opts: T,
}

/// Decodes the body (empty means defaults); `Err` is the answer to send.
fn decode<T: DeserializeOwned + Default>(state: &ServerState, body: &[u8]) -> Result<T, Outcome> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    match serde_json::from_slice::<Body<T>>(body) {
        Ok(b) if b.filter.excludes(state) => Err(Outcome::Skip),
        Ok(b) => Ok(b.opts),
        Err(e) => Err(Outcome::Error(ApiError {
            code: 400,
            description: e.to_string(),
        })),
    }
}

fn data<T: Serialize>(v: &T) -> Outcome {
    Outcome::Data(crate::go_json(v))
}

fn internal_error(description: String) -> Outcome {
    Outcome::Failed(ApiError {
        code: 500,
        description,
    })
}

macro_rules! try_decode {
    ($state:expr, $body:expr) => {
        match decode($state, $body) {
            Ok(o) => o,
            Err(out) => return out,
        }
    };
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NoOptions {}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SubszReq {
    offset: i64,
    limit: i64,
    subscriptions: bool,
    account: String,
    test: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConnzReq {
    sort: String,
    auth: bool,
    subscriptions: bool,
    subscriptions_detail: bool,
    offset: i64,
    limit: i64,
    cid: u64,
    /// 0 open, 1 closed, 2 any (nats-server's `ConnState`).
    state: u8,
    acc: String,
}

/// nats-server's `RoutezOptions`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RoutezReq {
    subscriptions: bool,
    subscriptions_detail: bool,
}

/// nats-server's `GatewayzOptions`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct GatewayzReq {
    name: String,
    accounts: bool,
    account_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountzReq {
    account: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JszReq {
    account: String,
    accounts: bool,
    streams: bool,
    consumer: bool,
    config: bool,
    offset: i64,
    limit: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HealthzReq {
    #[serde(rename = "js-enabled")]
    js_enabled: bool,
    #[serde(rename = "js-enabled-only")]
    js_enabled_only: bool,
    #[serde(rename = "js-server-only")]
    js_server_only: bool,
    account: String,
    stream: String,
    consumer: String,
    details: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountStatzReq {
    include_unused: bool,
}

/// `/healthz`'s answer with the status code nats-server keeps in `$SYS` replies.
#[derive(Serialize)]
struct HealthzData {
    #[serde(flatten)]
    status: health::HealthStatus,
    status_code: u16,
}

pub fn server(sys: &Sys, state: &ServerState, ep: ServerEndpoint, body: &[u8]) -> Outcome {
    match ep {
        ServerEndpoint::Idz => Outcome::Raw(super::events::idz(state)),
        ServerEndpoint::Statsz => {
            let _: NoOptions = try_decode!(state, body);
            Outcome::Raw(sys.statsz_msg(state))
        }
        ServerEndpoint::Varz => {
            let _: NoOptions = try_decode!(state, body);
            data(&varz::build(&sys.monitor))
        }
        ServerEndpoint::Subsz => {
            let o: SubszReq = try_decode!(state, body);
            subsz_data(state, o)
        }
        ServerEndpoint::Connz => {
            let o: ConnzReq = try_decode!(state, body);
            connz_data(state, o)
        }
        ServerEndpoint::Routez => {
            let o: RoutezReq = try_decode!(state, body);
            let opts = routez::RoutezOptions {
                subs: o.subscriptions && !o.subscriptions_detail,
                subs_detail: o.subscriptions_detail,
            };
            data(&routez::build(state, opts))
        }
        ServerEndpoint::Gatewayz => {
            let o: GatewayzReq = try_decode!(state, body);
            let opts = crate::gatewayz::GatewayzOptions {
                name: o.name,
                accs: o.accounts || !o.account_name.is_empty(),
            };
            data(&crate::gatewayz::build(state, &opts))
        }
        ServerEndpoint::Leafz => {
            let _: NoOptions = try_decode!(state, body);
            leafz_data(state)
        }
        ServerEndpoint::Accountz => {
            let o: AccountzReq = try_decode!(state, body);
            match misc::build_accountz(state, &o.account) {
                Ok(az) => data(&az),
                Err(e) => internal_error(e),
            }
        }
        ServerEndpoint::Jsz => {
            let o: JszReq = try_decode!(state, body);
            data(&jsz::build(state, jsz_options(o)))
        }
        ServerEndpoint::Healthz => {
            let o: HealthzReq = try_decode!(state, body);
            let opts = HealthzOptions {
                js_enabled_only: o.js_enabled_only || o.js_enabled,
                js_server_only: o.js_server_only,
                details: o.details,
                account: o.account,
                stream: o.stream,
                consumer: o.consumer,
            };
            let status = health::healthz(state, &opts);
            let status_code = status.code;
            data(&HealthzData {
                status,
                status_code,
            })
        }
    }
}

pub fn account(
    sys: &Sys,
    state: &ServerState,
    ep: AccountEndpoint,
    acc: &str,
    body: &[u8],
) -> Outcome {
    match ep {
        AccountEndpoint::Subsz => {
            let mut o: SubszReq = try_decode!(state, body);
            o.subscriptions = true;
            o.account = acc.into();
            subsz_data(state, o)
        }
        AccountEndpoint::Connz => {
            let mut o: ConnzReq = try_decode!(state, body);
            o.acc = acc.into();
            connz_data(state, o)
        }
        AccountEndpoint::Leafz => {
            let _: NoOptions = try_decode!(state, body);
            leafz_data(state)
        }
        AccountEndpoint::Jsz => {
            let mut o: JszReq = try_decode!(state, body);
            o.account = acc.into();
            let Some(js) = state.slot::<rnats_jetstream::JetStream>() else {
                return internal_error("jetstream not enabled".into());
            };
            if js.account(acc).is_none() && state.accounts.get(acc).is_none() {
                return internal_error(format!("account {acc:?} not found"));
            }
            let mut js = jsz::build(state, jsz_options(o));
            match js.account_details.pop() {
                Some(detail) => data(&detail),
                None => internal_error(format!("account {acc:?} not jetstream enabled")),
            }
        }
        AccountEndpoint::Info => {
            let _: NoOptions = try_decode!(state, body);
            match misc::account_info(state, acc) {
                Ok(info) => data(&info),
                Err(e) => internal_error(e),
            }
        }
        AccountEndpoint::Statz => {
            let o: AccountStatzReq = try_decode!(state, body);
            account_statz(state, acc, o.include_unused)
        }
        AccountEndpoint::Conns => {
            // The requester learns about this server's connections in the
            // account; servers without any stay silent.
            match state.accounts.get(acc) {
                Some(a) if misc::account_conns(state, &a) > 0 => {
                    Outcome::Raw(sys.account_conns_msg(state, &a))
                }
                _ => Outcome::Skip,
            }
        }
    }
}

/// `$SYS.REQ.ACCOUNT.PING.STATZ` in the system account: every account with
/// connections (all of them with `include_unused`).
pub fn account_ping_statz(state: &ServerState, body: &[u8]) -> Outcome {
    let o: AccountStatzReq = try_decode!(state, body);
    let stats = misc::accounts_statz(state, None, o.include_unused);
    if stats.account_statz.is_empty() {
        return Outcome::Skip;
    }
    data(&stats)
}

fn account_statz(state: &ServerState, acc: &str, include_unused: bool) -> Outcome {
    let stats = misc::accounts_statz(state, Some(acc), include_unused);
    if stats.account_statz.is_empty() {
        return Outcome::Skip;
    }
    data(&stats)
}

/// `$SYS.REQ.USER.INFO`: who the requester is.
pub fn user_info(who: &super::Requester) -> Outcome {
    #[derive(Serialize)]
    struct UserInfo<'a> {
        user: &'a str,
        account: &'a str,
        account_name: &'a str,
    }
    data(&UserInfo {
        user: &who.user,
        account: &who.account.name,
        account_name: &who.account.name,
    })
}

fn subsz_data(state: &ServerState, o: SubszReq) -> Outcome {
    let test = o.test.as_str();
    if !test.is_empty() && !rnats_subject::is_valid_literal_subject(test.as_bytes()) {
        return internal_error(format!(
            "invalid test subject, must be valid publish subject: {test}"
        ));
    }
    data(&subsz::build(
        state,
        o.subscriptions,
        o.offset,
        o.limit,
        test,
        &o.account,
    ))
}

fn connz_data(state: &ServerState, o: ConnzReq) -> Outcome {
    let Some(sort) = SortOpt::parse(&o.sort) else {
        return internal_error(format!("invalid sorting option: {}", o.sort));
    };
    let opts = ConnzOptions {
        auth: o.auth,
        account: o.acc,
        sort,
        subs: o.subscriptions && !o.subscriptions_detail,
        subs_detail: o.subscriptions_detail,
        offset: o.offset,
        limit: o.limit,
        cid: o.cid,
        state: match o.state {
            1 => ConnState::Closed,
            2 => ConnState::All,
            _ => ConnState::Open,
        },
    };
    match connz::build(state, opts) {
        Ok(c) => data(&c),
        Err(e) => internal_error(e),
    }
}

fn leafz_data(state: &ServerState) -> Outcome {
    data(&crate::leafz::build(state, false, None))
}

fn jsz_options(o: JszReq) -> jsz::JszOptions {
    jsz::JszOptions {
        account: o.account,
        accounts: o.accounts,
        streams: o.streams,
        consumers: o.consumer,
        config: o.config,
        offset: o.offset,
        limit: o.limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_with_filter_and_options() {
        let b: Body<ConnzReq> =
            serde_json::from_slice(br#"{"server_name":"x","subscriptions":true,"state":1}"#)
                .unwrap_or_default();
        assert_eq!(b.filter.server_name, "x");
        assert!(b.opts.subscriptions);
        assert_eq!(b.opts.state, 1);
    }

    #[test]
    fn bad_body_is_an_error() {
        assert!(serde_json::from_slice::<Body<NoOptions>>(b"{bad").is_err());
    }
}
