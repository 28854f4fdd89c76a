//! The system account's services: `$SYS.REQ.*` requests answered with the
//! monitoring data (`$SYS.REQ.SERVER.PING[.<EP>]`, `$SYS.REQ.SERVER.<id>.<EP>`,
//! `$SYS.REQ.ACCOUNT.<acc>.<EP>`), and the events the server publishes
//! (`$SYS.SERVER.<id>.STATSZ` heartbeats, `.SHUTDOWN`, `.LAMEDUCK`,
//! `$SYS.ACCOUNT.<acc>.CONNECT`/`DISCONNECT`).
//!
//! Everything lives in the system account (`system_account`, `$SYS` by
//! default), so only its users see it. Like nats-server, every other account
//! also gets a few services of its own (nats-server's default system
//! imports): `$SYS.REQ.ACCOUNT.PING.CONNZ`, `$SYS.REQ.SERVER.PING.CONNZ`,
//! `$SYS.REQ.ACCOUNT.PING.STATZ` answer about that account, and
//! `$SYS.REQ.USER.INFO` about the requesting user (see [`account_added`]).
//!
//! Requests are answered on a spawned task, like nats-server's
//! `noInlineCallback`, so building `/connz` never runs on a publisher's read loop.

pub mod claims;
pub mod envelope;
pub mod events;
pub mod requests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use rnats_subject::SublistError;

use crate::Monitor;
use envelope::{ApiResponse, SysServerInfo};
use requests::{AccountEndpoint, Outcome, ServerEndpoint};
use rnats_core::account::Account;
use rnats_core::client::ClientShared;
use rnats_core::router::Message;
use rnats_core::server::ServerState;
use rnats_core::subscription::{InternalHandler, SubRef};

/// The system services of one server.
pub struct Sys {
    server: Weak<ServerState>,
    /// The account whose subjects carry the requests and events.
    pub account: Arc<Account>,
    /// Numbers every message this server sends on `$SYS` (`server.seq`).
    seq: AtomicU64,
    /// Held from numbering a message to publishing it, so messages leave in
    /// `seq` order (peers in a cluster drop and log out-of-order updates).
    /// Reentrant: a publish may trigger another on the same thread.
    pub order: parking_lot::ReentrantMutex<()>,
    /// Data builders shared with HTTP monitoring (and a CPU sampler of its own).
    pub monitor: Monitor,
}

impl Sys {
    /// Subscribes the request handlers, starts the statsz heartbeat, and
    /// registers itself in `state.sys`.
    pub fn start(state: &Arc<ServerState>) -> Result<Arc<Sys>, SublistError> {
        let sys = Arc::new(Sys {
            server: Arc::downgrade(state),
            account: state.accounts.system().clone(),
            seq: AtomicU64::new(0),
            order: parking_lot::ReentrantMutex::new(()),
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
        sys.subscribe(state, USER_INFO, handler(Route::UserInfo))?;
        if claims::enabled(state) {
            for (subject, route) in claims::SUBJECTS {
                sys.subscribe(state, subject, handler(Route::Claims(route)))?;
            }
        }
        state.set_slot(sys.clone());
        state.add_hooks(Arc::new(SysHooks));
        for acc in state.accounts.all() {
            account_added(state, &acc);
        }
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
        state.subscribe_internal_in(&self.account, subject, None, handler)
    }

    /// The one place system messages are sent.
    pub fn publish(&self, state: &ServerState, subject: &str, reply: Option<&str>, body: &[u8]) {
        state.publish_in(
            &self.account,
            subject.as_bytes(),
            reply.map(str::as_bytes),
            None,
            body,
        );
    }

    /// Whether anyone subscribes to `subject` in the system account (events
    /// are not even built otherwise).
    pub fn has_interest(&self, _state: &ServerState, subject: &str) -> bool {
        self.account.has_interest(subject.as_bytes())
    }

    /// The `server` object for the next message.
    pub fn server_info(&self, state: &ServerState) -> SysServerInfo {
        SysServerInfo::of(state, self.seq.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn respond(&self, state: &ServerState, reply: &str, outcome: Outcome) {
        self.respond_in(state, &self.account, reply, outcome)
    }

    /// Answers a request made in `account` (the system account, or one of
    /// the services every account gets).
    fn respond_in(&self, state: &ServerState, account: &Account, reply: &str, outcome: Outcome) {
        let _order = self.order.lock();
        let body = match outcome {
            Outcome::Skip => return,
            Outcome::Raw(b) => b,
            Outcome::Data(data) => {
                let server = crate::go_json(&self.server_info(state));
                format!("{{\"server\":{server},\"data\":{data}}}").into_bytes()
            }
            Outcome::Error(e) => crate::go_json(&ApiResponse::<()> {
                server: self.server_info(state),
                data: None,
                error: Some(e),
            })
            .into_bytes(),
            // The endpoint itself failed: nats-server sends `"data": null` too.
            Outcome::Failed(e) => crate::go_json(&ApiResponse {
                server: self.server_info(state),
                data: Some(()),
                error: Some(e),
            })
            .into_bytes(),
        };
        state.publish_in(account, reply.as_bytes(), None, None, &body);
    }

    fn handle(&self, req: Request) {
        let Request {
            route,
            subject,
            reply,
            body,
            requester,
        } = req;
        let (subject, reply, body) = (subject.as_str(), reply.as_deref(), body.as_slice());
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
                let out = requests::account(self, state, ep, acc, body);
                self.respond(state, r, out);
            }
            Route::AccountPingStatz => {
                if let Some(r) = reply {
                    let out = requests::account_ping_statz(state, body);
                    self.respond(state, r, out);
                }
            }
            Route::UserInfo => {
                if let (Some(r), Some(who)) = (reply, requester) {
                    let out = requests::user_info(&who);
                    self.respond_in(state, &who.account, r, out);
                }
            }
            Route::Claims(route) => self.handle_claims(state, route, subject, reply, body),
            Route::Own(ep, account) => {
                let (Some(r), Some(account)) = (reply, account.upgrade()) else {
                    return;
                };
                let out = requests::account(self, state, ep, &account.name, body);
                self.respond_in(state, &account, r, out);
            }
        }
    }
}

/// The subject users ask about themselves on.
const USER_INFO: &str = "$SYS.REQ.USER.INFO";

/// Gives a (non-system) account the `$SYS` services nats-server imports into
/// every account: its own CONNZ and STATZ under the PING subjects, and
/// `$SYS.REQ.USER.INFO`. Called for each account at start and for accounts
/// registered later (operator mode).
pub fn account_added(state: &ServerState, account: &Arc<Account>) {
    let Some(sys) = state.slot::<crate::sysacc::Sys>() else {
        return;
    };
    if Arc::ptr_eq(account, &sys.account) {
        return;
    }
    let own = |ep| {
        Arc::new(Handler::new(&sys, Route::Own(ep, Arc::downgrade(account))))
            as Arc<dyn InternalHandler>
    };
    let subs = [
        ("$SYS.REQ.ACCOUNT.PING.CONNZ", own(AccountEndpoint::Connz)),
        ("$SYS.REQ.SERVER.PING.CONNZ", own(AccountEndpoint::Connz)),
        ("$SYS.REQ.ACCOUNT.PING.STATZ", own(AccountEndpoint::Statz)),
        (
            USER_INFO,
            Arc::new(Handler::new(&sys, Route::UserInfo)) as Arc<dyn InternalHandler>,
        ),
    ];
    for (subject, handler) in subs {
        // USER.INFO answers about the requester, whom only its own server
        // knows; the PING services answer on every server of a cluster.
        let result = if subject == USER_INFO {
            state.subscribe_local_in(account, subject, None, handler)
        } else {
            state.subscribe_internal_in(account, subject, None, handler)
        };
        if let Err(e) = result {
            tracing::error!(
                "Error setting up system service import {subject} for account {}: {e}",
                account.name
            );
        }
    }
}

/// The imports [`account_added`] gives `account`, as `/accountz` lists them:
/// (remote subject, local subject, shares the requester's details).
pub fn system_imports(account: &str) -> [(String, &'static str, bool); 4] {
    let connz = format!("$SYS.REQ.ACCOUNT.{account}.CONNZ");
    [
        (connz.clone(), "$SYS.REQ.ACCOUNT.PING.CONNZ", false),
        (connz, "$SYS.REQ.SERVER.PING.CONNZ", false),
        (
            format!("$SYS.REQ.ACCOUNT.{account}.STATZ"),
            "$SYS.REQ.ACCOUNT.PING.STATZ",
            false,
        ),
        (format!("$SYS.REQ.USER.{account}.INFO"), USER_INFO, true),
    ]
}

/// Who made a request, for the services that answer about the requester.
pub struct Requester {
    pub user: String,
    pub account: Arc<Account>,
}

impl Requester {
    fn of(c: &ClientShared) -> Requester {
        Requester {
            user: c.meta.lock().user.clone(),
            account: c.account.load_full(),
        }
    }
}

/// One request, owned so it can move to the answering task.
struct Request {
    route: Route,
    subject: String,
    reply: Option<String>,
    body: Vec<u8>,
    requester: Option<Requester>,
}

/// Tells subscribers this server is going away (`$SYS.SERVER.<id>.SHUTDOWN`).
pub fn shutdown_event(state: &ServerState) {
    server_event(state, "SHUTDOWN");
}

/// Tells subscribers this server entered lame-duck mode (`$SYS.SERVER.<id>.LAMEDUCK`).
pub fn lame_duck_event(state: &ServerState) {
    server_event(state, "LAMEDUCK");
}

/// `$SYS`'s side of the core's events: connect/disconnect events, the
/// per-account services, and the lame-duck event. (The shutdown event is
/// sent by the binary before JetStream stops, see `shutdown_event`.)
struct SysHooks;

impl rnats_core::hooks::Hooks for SysHooks {
    fn client_connected(&self, state: &ServerState, client: &Arc<ClientShared>) {
        events::client_connected(state, client);
    }

    fn client_disconnected(
        &self,
        state: &ServerState,
        client: &Arc<ClientShared>,
        reason: rnats_core::client::CloseReason,
    ) {
        events::client_disconnected(state, client, reason);
    }

    fn account_added(&self, state: &Arc<ServerState>, account: &Arc<Account>) {
        account_added(state, account);
    }

    fn lame_duck(&self, state: &ServerState) {
        lame_duck_event(state);
    }
}

fn server_event(state: &ServerState, what: &str) {
    let Some(sys) = state.slot::<crate::sysacc::Sys>() else {
        return;
    };
    let subject = format!("$SYS.SERVER.{}.{what}", state.server_id);
    let _order = sys.order.lock();
    let body = crate::go_json(&sys.server_info(state));
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

#[derive(Clone, Debug)]
enum Route {
    /// `$SYS.REQ.SERVER.PING`: statsz, the historical subject.
    StatszPing,
    Server(ServerEndpoint),
    Account(AccountEndpoint),
    AccountPingStatz,
    /// `$SYS.REQ.USER.INFO`, in any account.
    UserInfo,
    /// An account's own CONNZ/STATZ, asked from inside that account.
    Own(AccountEndpoint, Weak<Account>),
    /// The resolver's account-JWT services.
    Claims(claims::ClaimsRoute),
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

impl Handler {
    fn dispatch(&self, requester: Option<Requester>, msg: &Message<'_>) {
        let Some(sys) = self.sys.upgrade() else {
            return;
        };
        let req = Request {
            route: self.route.clone(),
            subject: String::from_utf8_lossy(msg.subject).into_owned(),
            reply: msg.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            body: msg.payload.to_vec(),
            requester,
        };
        let run = move || sys.handle(req);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { run() });
            }
            Err(_) => run(),
        }
    }
}

impl InternalHandler for Handler {
    fn deliver(&self, msg: &Message<'_>) {
        self.dispatch(None, msg)
    }

    fn deliver_from(&self, publisher: &ClientShared, msg: &Message<'_>) -> bool {
        let requester = matches!(self.route, Route::UserInfo).then(|| Requester::of(publisher));
        self.dispatch(requester, msg);
        true
    }
}
