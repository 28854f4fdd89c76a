//! What the server says on its own on `$SYS`: statsz (as heartbeat and as
//! the answer to pings), client connect/disconnect events, the account
//! connection counts that go with them, and the IDZ identity. Shapes follow
//! nats-server's `ServerStatsMsg`, `ConnectEventMsg`, `DisconnectEventMsg`
//! and `AccountNumConns`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rnats_core::client_info::ClientInfo;
use serde::Serialize;

use super::envelope::{StatszMsg, SysServerInfo, TypedEvent};
use super::Sys;
use crate::misc::{self, MsgBytes};
use crate::{go_f64, go_json, go_time, varz};
use rnats_core::account::Account;
use rnats_core::client::{ClientShared, CloseReason};
use rnats_core::server::ServerState;

/// How often statsz is broadcast once the server has settled.
pub const STATSZ_INTERVAL: Duration = Duration::from_secs(10);
/// The first broadcast comes this soon after start; the gap doubles up to
/// [`STATSZ_INTERVAL`], as nats-server does.
pub const STATSZ_FIRST: Duration = Duration::from_millis(250);

#[derive(Serialize)]
pub struct SlowConsumersStats {
    pub clients: u64,
    pub routes: u64,
    pub gateways: u64,
    pub leafs: u64,
}

/// nats-server's `ServerStats`, in its field order.
#[derive(Serialize)]
pub struct ServerStats {
    pub start: String,
    pub mem: i64,
    pub cores: usize,
    #[serde(serialize_with = "go_f64")]
    pub cpu: f64,
    pub connections: usize,
    pub total_connections: u64,
    pub active_accounts: usize,
    pub subscriptions: usize,
    pub sent: MsgBytes,
    pub sent_to_clients: MsgBytes,
    pub received: MsgBytes,
    pub received_from_clients: MsgBytes,
    pub slow_consumers: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_consumer_stats: Option<SlowConsumersStats>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<crate::gatewayz::GatewayStat>,
    pub active_servers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jetstream: Option<varz::JetStreamVarz>,
    pub gomaxprocs: usize,
}

impl ServerStats {
    pub fn of(sys: &Sys, state: &ServerState) -> ServerStats {
        let (cpu, mem) = sys.monitor.cpu_mem();
        let c = &state.counters;
        let connections = state.num_clients();
        let slow = c.slow_consumers.load(Ordering::Relaxed);
        let in_ = MsgBytes {
            msgs: c.in_msgs.load(Ordering::Relaxed),
            bytes: c.in_bytes.load(Ordering::Relaxed),
        };
        let out = MsgBytes {
            msgs: c.out_msgs.load(Ordering::Relaxed),
            bytes: c.out_bytes.load(Ordering::Relaxed),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jetstream = state.slot::<rnats_jetstream::JetStream>().map(|js| {
            let js = &js;
            let mut config = crate::jsz::JsConfig::of(state, js);
            // nats-server leaves the store directory out of statsz.
            config.store_dir.clear();
            varz::JetStreamVarz {
                config: Some(config),
                stats: Some(crate::jsz::JsStats::of(js)),
                limits: Some(crate::jsz::JsLimits::default()),
            }
        });
        ServerStats {
            start: go_time(&state.started_wall),
            mem,
            cores,
            cpu,
            connections,
            total_connections: connections as u64 + state.closed.total(),
            active_accounts: state
                .accounts
                .all()
                .iter()
                .filter(|a| misc::account_conns(state, a) > 0)
                .count(),
            subscriptions: state.accounts.num_subscriptions(),
            sent: MsgBytes {
                msgs: out.msgs,
                bytes: out.bytes,
            },
            sent_to_clients: out,
            received: MsgBytes {
                msgs: in_.msgs,
                bytes: in_.bytes,
            },
            received_from_clients: in_,
            slow_consumers: slow,
            slow_consumer_stats: (slow > 0).then_some(SlowConsumersStats {
                clients: slow,
                routes: 0,
                gateways: 0,
                leafs: 0,
            }),
            gateways: crate::gatewayz::stats(state),
            active_servers: 1,
            jetstream,
            gomaxprocs: cores,
        }
    }
}

impl Sys {
    /// `{"server": ..., "statsz": ...}`.
    pub fn statsz_msg(&self, state: &ServerState) -> Vec<u8> {
        let msg = StatszMsg {
            server: self.server_info(state),
            statsz: ServerStats::of(self, state),
        };
        go_json(&msg).into_bytes()
    }

    /// `AccountNumConns` for `account`.
    pub fn account_conns_msg(&self, state: &ServerState, account: &Account) -> Vec<u8> {
        #[derive(Serialize)]
        struct AccountNumConns {
            #[serde(flatten)]
            event: TypedEvent,
            server: SysServerInfo,
            #[serde(flatten)]
            stat: misc::AccountStat,
        }
        let msg = AccountNumConns {
            event: TypedEvent::new(
                "io.nats.server.advisory.v1.account_connections",
                &chrono::Utc::now(),
            ),
            server: self.server_info(state),
            stat: misc::account_stat(state, account),
        };
        go_json(&msg).into_bytes()
    }

    /// Broadcasts statsz on `$SYS.SERVER.<id>.STATSZ` if anyone listens.
    pub fn broadcast_statsz(&self, state: &ServerState) {
        let subject = format!("$SYS.SERVER.{}.STATSZ", state.server_id);
        let _order = self.order.lock();
        if self.has_interest(state, &subject) {
            let body = self.statsz_msg(state);
            self.publish(state, &subject, None, &body);
        }
    }
}

/// The IDZ answer: just who this server is.
pub fn idz(state: &ServerState) -> Vec<u8> {
    #[derive(Serialize)]
    struct ServerId<'a> {
        name: &'a str,
        host: &'a str,
        id: &'a str,
    }
    let opts = state.opts();
    go_json(&ServerId {
        name: &state.server_name,
        host: &opts.host,
        id: &state.server_id,
    })
    .into_bytes()
}

/// nats-server's `ClientInfo` as connect/disconnect events fill it.
fn client_info(state: &ServerState, c: &ClientShared, stop: Option<String>) -> ClientInfo {
    let info = ClientInfo::of(state, c);
    ClientInfo {
        name_tag: info.acc.clone(),
        stop,
        ..info
    }
}

/// Publishes `$SYS.ACCOUNT.<acc>.CONNECT` for a client whose CONNECT was accepted.
pub fn client_connected(state: &ServerState, c: &ClientShared) {
    let Some(sys) = state.slot::<crate::sysacc::Sys>() else {
        return;
    };
    let _order = sys.order.lock();
    let account = c.account.load_full();
    let subject = format!("$SYS.ACCOUNT.{}.CONNECT", account.name);
    // nats-server announces the new count first.
    account_conns_changed(&sys, state, &account);
    if sys.has_interest(state, &subject) {
        #[derive(Serialize)]
        struct ConnectEventMsg {
            #[serde(flatten)]
            event: TypedEvent,
            server: SysServerInfo,
            client: ClientInfo,
        }
        let msg = ConnectEventMsg {
            event: TypedEvent::new(
                "io.nats.server.advisory.v1.client_connect",
                &chrono::Utc::now(),
            ),
            server: sys.server_info(state),
            client: client_info(state, c, None),
        };
        sys.publish(state, &subject, None, go_json(&msg).as_bytes());
    }
}

/// Publishes `$SYS.ACCOUNT.<acc>.DISCONNECT` for a client that had connected.
pub fn client_disconnected(state: &ServerState, c: &ClientShared, reason: CloseReason) {
    let Some(sys) = state.slot::<crate::sysacc::Sys>() else {
        return;
    };
    let account = c.account.load_full();
    // Keep what the client did in its account's totals once it is gone.
    let (out_msgs, out_bytes) = c.out.out_counts();
    account.traffic.add(
        c.in_msgs.load(Ordering::Relaxed),
        c.in_bytes.load(Ordering::Relaxed),
        out_msgs,
        out_bytes,
    );
    let subject = format!("$SYS.ACCOUNT.{}.DISCONNECT", account.name);
    let _order = sys.order.lock();
    account_conns_changed(&sys, state, &account);
    if sys.has_interest(state, &subject) {
        #[derive(Serialize)]
        struct DisconnectEventMsg {
            #[serde(flatten)]
            event: TypedEvent,
            server: SysServerInfo,
            client: ClientInfo,
            sent: MsgBytes,
            received: MsgBytes,
            reason: &'static str,
        }
        let now = chrono::Utc::now();
        let msg = DisconnectEventMsg {
            event: TypedEvent::new("io.nats.server.advisory.v1.client_disconnect", &now),
            server: sys.server_info(state),
            client: client_info(state, c, Some(go_time(&now))),
            // From the client's point of view: what it sent us.
            sent: MsgBytes {
                msgs: c.in_msgs.load(Ordering::Relaxed),
                bytes: c.in_bytes.load(Ordering::Relaxed),
            },
            received: MsgBytes {
                msgs: out_msgs,
                bytes: out_bytes,
            },
            reason: rnats_core::closed::reason_text(reason),
        };
        sys.publish(state, &subject, None, go_json(&msg).as_bytes());
    }
}

/// The account's connection count changed: nats-server tells both the old
/// and the new subject for it.
fn account_conns_changed(sys: &Sys, state: &ServerState, account: &Account) {
    let _order = sys.order.lock();
    let subjects = [
        format!("$SYS.SERVER.ACCOUNT.{}.CONNS", account.name),
        format!("$SYS.ACCOUNT.{}.SERVER.CONNS", account.name),
    ];
    for s in subjects {
        if sys.has_interest(state, &s) {
            let body = sys.account_conns_msg(state, account);
            sys.publish(state, &s, None, &body);
        }
    }
}
