//! The system account's services: `$SYS.REQ.*` requests answered with the
//! monitoring data (`$SYS.REQ.SERVER.PING[.<EP>]`, `$SYS.REQ.SERVER.<id>.<EP>`,
//! `$SYS.REQ.ACCOUNT.<acc>.<EP>`), and the events the server publishes
//! (`$SYS.SERVER.<id>.STATSZ` heartbeats, `.SHUTDOWN`, `.LAMEDUCK`,
//! `$SYS.ACCOUNT.<acc>.CONNECT`/`DISCONNECT`).
//!
//! rnats has no accounts yet, so these live in the global account. Every
//! subscription is made in [`Sys::start`] through [`Sys::subscribe`], and
//! every message goes out through [`Sys::publish`]: moving them into a real
//! system account means changing those two methods (they already carry the
//! account name).
//!
//! Requests are answered on a spawned task, like nats-server's
//! `noInlineCallback`, so building `/connz` never runs on a publisher's read loop.

pub mod envelope;
pub mod events;
pub mod requests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use rnats_subject::SublistError;

use crate::monitor::Monitor;
use crate::router::Message;
use crate::server::ServerState;
use crate::subscription::{InternalHandler, SubRef};
use envelope::{ApiResponse, SysServerInfo};
use requests::{AccountEndpoint, Outcome, ServerEndpoint};

/// The account the system subjects live in until accounts exist.
const SYSTEM_ACCOUNT: &str = "$G";

/// The system services of one server.
pub struct Sys {
    server: Weak<ServerState>,
    /// The account whose subjects carry the requests and events.
    pub account: String,
    /// Numbers every message this server sends on `$SYS` (`server.seq`).
    seq: AtomicU64,
    /// Data builders shared with HTTP monitoring (and a CPU sampler of its own).
    pub monitor: Monitor,
}

impl Sys {
    /// Subscribes the request handlers, starts the statsz heartbeat, and
    /// registers itself in `state.sys`.
    pub fn start(state: &Arc<ServerState>) -> Result<Arc<Sys>, SublistError> {
        let sys = Arc::new(Sys {
            server: Arc::downgrade(state),
            account: SYSTEM_ACCOUNT.into(),
            seq: AtomicU64::new(0),
            monitor: Monitor::new(state.clone(), 0),
        });
        let id = &state.server_id;
        let handler = |route| Arc::new(Handler::new(&sys, route));
        sys.subscribe(state, "$SYS.REQ.SERVER.PING", handler(Route::StatszPing))?;
        for ep in ServerEndpoint::ALL {
            let h = handler(Route::Server(ep));
            let name = ep.name();
            sys.subscribe(state, &format!("$SYS.REQ.SERVER.PING.{name}"), h.clone())?;
            sys.subscribe(state, &format!("$SYS.REQ.SERVER.{id}.{name}"), h)?;
        }
        for ep in AccountEndpoint::ALL {
            let name = ep.name();
            let subject = format!("$SYS.REQ.ACCOUNT.*.{name}");
            sys.subscribe(state, &subject, handler(Route::Account(ep)))?;
        }
        sys.subscribe(
            state,
            "$SYS.REQ.ACCOUNT.PING.STATZ",
            handler(Route::AccountPingStatz),
        )?;
        let _ = state.sys.set(sys.clone());
        tokio::spawn(heartbeat(Arc::downgrade(&sys)));
        Ok(sys)
    }

    /// The one place system subscriptions are made.
    fn subscribe(
        &self,
        state: &ServerState,
        subject: &str,
        handler: Arc<dyn InternalHandler>,
    ) -> Result<SubRef, SublistError> {
        state.subscribe_internal(subject, None, handler)
    }

    /// The one place system messages are sent.
    pub fn publish(&self, state: &ServerState, subject: &str, reply: Option<&str>, body: &[u8]) {
        state.publish_internal(subject.as_bytes(), reply.map(str::as_bytes), None, body);
    }

    /// Whether anyone subscribes to `subject` in the system account (events
    /// are not even built otherwise).
    pub fn has_interest(&self, state: &ServerState, subject: &str) -> bool {
        state.accounts.global().has_interest(subject.as_bytes())
    }

    /// The `server` object for the next message.
    pub fn server_info(&self, state: &ServerState) -> SysServerInfo {
        SysServerInfo::of(state, self.seq.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn respond(&self, state: &ServerState, reply: &str, outcome: Outcome) {
        let body = match outcome {
            Outcome::Skip => return,
            Outcome::Raw(b) => b,
            Outcome::Data(data) => {
                let server = crate::monitor::go_json(&self.server_info(state));
                format!("{{\"server\":{server},\"data\":{data}}}").into_bytes()
            }
            Outcome::Error(e) => crate::monitor::go_json(&ApiResponse::<()> {
                server: self.server_info(state),
                data: None,
                error: Some(e),
            })
            .into_bytes(),
            // The endpoint itself failed: nats-server sends `"data": null` too.
            Outcome::Failed(e) => crate::monitor::go_json(&ApiResponse {
                server: self.server_info(state),
                data: Some(()),
                error: Some(e),
            })
            .into_bytes(),
        };
        self.publish(state, reply, None, &body);
    }

    fn handle(&self, route: Route, subject: &str, reply: Option<&str>, body: &[u8]) {
        let Some(state) = self.server.upgrade() else {
            return;
        };
        let state = &*state;
        match route {
            Route::StatszPing | Route::Server(ServerEndpoint::Statsz) => {
                match reply {
                    Some(r) => {
                        let out = requests::server(self, state, ServerEndpoint::Statsz, body);
                        self.respond(state, r, out);
                    }
                    // No reply: the answer goes out as a regular broadcast.
                    None => self.broadcast_statsz(state),
                }
            }
            Route::Server(ep) => {
                if let Some(r) = reply {
                    let out = requests::server(self, state, ep, body);
                    self.respond(state, r, out);
                }
            }
            Route::Account(ep) => {
                let Some(r) = reply else { return };
                // `$SYS.REQ.ACCOUNT.<acc>.<EP>`: exactly five tokens.
                let tokens: Vec<&str> = subject.split('.').collect();
                let [_, _, _, acc, _] = tokens.as_slice() else {
                    return;
                };
                if *acc == "PING" && ep == AccountEndpoint::Statz {
                    // Served by its own subscription.
                    return;
                }
                // A client in the global account asking about "its" account.
                let acc = if *acc == "PING" { SYSTEM_ACCOUNT } else { acc };
                let out = requests::account(self, state, ep, acc, body);
                self.respond(state, r, out);
            }
            Route::AccountPingStatz => {
                if let Some(r) = reply {
                    let out = requests::account_ping_statz(state, body);
                    self.respond(state, r, out);
                }
            }
        }
    }
}

/// Tells subscribers this server is going away (`$SYS.SERVER.<id>.SHUTDOWN`).
pub fn shutdown_event(state: &ServerState) {
    server_event(state, "SHUTDOWN");
}

/// Tells subscribers this server entered lame-duck mode (`$SYS.SERVER.<id>.LAMEDUCK`).
pub fn lame_duck_event(state: &ServerState) {
    server_event(state, "LAMEDUCK");
}

fn server_event(state: &ServerState, what: &str) {
    let Some(sys) = state.sys.get() else { return };
    let subject = format!("$SYS.SERVER.{}.{what}", state.server_id);
    let body = crate::monitor::go_json(&sys.server_info(state));
    sys.publish(state, &subject, None, body.as_bytes());
}

/// Sends statsz every [`events::STATSZ_INTERVAL`], more often right after start.
async fn heartbeat(sys: Weak<Sys>) {
    let mut gap = events::STATSZ_FIRST;
    loop {
        tokio::time::sleep(gap).await;
        let Some(sys) = sys.upgrade() else { return };
        let Some(state) = sys.server.upgrade() else {
            return;
        };
        sys.broadcast_statsz(&state);
        gap = (gap * 2).min(events::STATSZ_INTERVAL);
    }
}

#[derive(Clone, Copy, Debug)]
enum Route {
    /// `$SYS.REQ.SERVER.PING`: statsz, the historical subject.
    StatszPing,
    Server(ServerEndpoint),
    Account(AccountEndpoint),
    AccountPingStatz,
}

/// Receives one kind of request and answers it on its own task.
struct Handler {
    sys: Weak<Sys>,
    route: Route,
}

impl Handler {
    fn new(sys: &Arc<Sys>, route: Route) -> Handler {
        Handler {
            sys: Arc::downgrade(sys),
            route,
        }
    }
}

impl InternalHandler for Handler {
    fn deliver(&self, msg: &Message<'_>) {
        let Some(sys) = self.sys.upgrade() else {
            return;
        };
        let route = self.route;
        let subject = String::from_utf8_lossy(msg.subject).into_owned();
        let reply = msg.reply.map(|r| String::from_utf8_lossy(r).into_owned());
        let body = msg.payload.to_vec();
        let run = move || sys.handle(route, &subject, reply.as_deref(), &body);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { run() });
            }
            Err(_) => run(),
        }
    }
}
