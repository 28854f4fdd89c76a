//! The bridges between accounts, built from `imports` at startup.
//!
//! - A **stream import** is an internal subscription in the exporting
//!   account on the imported subject; what it receives is re-published in
//!   the importing account under the local subject (prefix or `to` mapping).
//! - A **service import** is an internal subscription in the importing
//!   account on the local subject; a request it receives is re-published in
//!   the exporting account with a fresh reply subject `_R_.<token>`, and the
//!   exporter's internal `_R_.>` subscription carries the answer back to
//!   the requester's real reply subject in the importing account. Singleton
//!   services close the route on the first answer; streamed ones keep it
//!   until the export's response threshold.
//!
//! Forwarding runs on the publisher's task (as every internal handler); a
//! depth guard stops import cycles from recursing forever.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rnats_subject::Transform;

use super::config::{imp_dest, imp_source, ImportConfig, ResponseType};
use super::Account;
use crate::client::ClientShared;
use crate::router::Message;
use crate::server::ServerState;
use crate::subscription::InternalHandler;

/// Reply routes in flight, by `_R_.` subject.
#[derive(Default)]
pub struct ResponseMap {
    routes: HashMap<Box<[u8]>, ResponseRoute>,
    /// When the map was last swept of expired routes.
    swept: Option<Instant>,
}

struct ResponseRoute {
    to: Weak<Account>,
    reply: Box<[u8]>,
    response: ResponseType,
    expires: Instant,
}

impl ResponseMap {
    fn insert(&mut self, token: Box<[u8]>, route: ResponseRoute) {
        let now = Instant::now();
        if self.routes.len() > 1024
            && self
                .swept
                .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
        {
            self.routes.retain(|_, r| r.expires > now);
            self.swept = Some(now);
        }
        self.routes.insert(token, route);
    }

    /// The route for an answer, removed when it was a singleton's.
    fn take(&mut self, token: &[u8]) -> Option<(Arc<Account>, Box<[u8]>)> {
        let now = Instant::now();
        let r = self.routes.get(token)?;
        if r.expires <= now {
            self.routes.remove(token);
            return None;
        }
        let out = (r.to.upgrade()?, r.reply.clone());
        if r.response == ResponseType::Singleton {
            self.routes.remove(token);
        }
        Some(out)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// The prefix of reply subjects minted for service imports.
const REPLY_PREFIX: &str = "_R_.";

thread_local! {
    static DEPTH: Cell<u8> = const { Cell::new(0) };
}

/// Import chains deeper than this are cycles: stop forwarding.
const MAX_DEPTH: u8 = 8;

/// Runs `f` one import hop deeper, or not at all past the limit.
fn hop(f: impl FnOnce()) {
    DEPTH.with(|d| {
        let depth = d.get();
        if depth >= MAX_DEPTH {
            return;
        }
        d.set(depth + 1);
        f();
        d.set(depth);
    });
}

/// Installs the forwarders for every configured import.
pub fn install(state: &Arc<ServerState>, importer: &Arc<Account>, imports: &[ImportConfig]) {
    for imp in imports {
        let Some(exporter) = state.accounts.get(&imp.account) else {
            tracing::warn!("account {:?} not found for import", imp.account);
            continue;
        };
        let transform = match Transform::new(&imp_source(imp), &imp_dest(imp)) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("import {:?} not installed: {e}", imp.subject);
                continue;
            }
        };
        let result = if imp.service {
            ensure_response_sub(state, &exporter);
            let response = exporter
                .service_export(&imp.subject)
                .and_then(|e| e.service.clone())
                .unwrap_or(super::config::ServiceExport {
                    response: ResponseType::Singleton,
                    threshold: Duration::from_secs(120),
                });
            let handler = Arc::new(ServiceImport {
                state: Arc::downgrade(state),
                importer: Arc::downgrade(importer),
                exporter: Arc::downgrade(&exporter),
                transform,
                response: response.response,
                threshold: response.threshold,
                next: AtomicU64::new(0),
            });
            state.subscribe_local_in(importer, &imp.local_subject(), None, handler)
        } else {
            let handler = Arc::new(StreamImport {
                state: Arc::downgrade(state),
                importer: Arc::downgrade(importer),
                transform,
            });
            state.subscribe_local_in(&exporter, &imp.subject, None, handler)
        };
        if let Err(e) = result {
            tracing::warn!("import {:?} not installed: {e}", imp.subject);
        }
    }
}

/// Re-publishes what the exporter's subject receives in the importer.
struct StreamImport {
    state: Weak<ServerState>,
    importer: Weak<Account>,
    transform: Transform,
}

impl InternalHandler for StreamImport {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(state), Some(importer)) = (self.state.upgrade(), self.importer.upgrade()) else {
            return;
        };
        let Ok(subject) = std::str::from_utf8(msg.route.unwrap_or(msg.subject)) else {
            return;
        };
        let Some(local) = self.transform.apply(subject) else {
            return;
        };
        // A delivery routed to the subject (a push consumer's) keeps the
        // subject its receivers see.
        let forwarded = Message {
            subject: if msg.route.is_some() {
                msg.subject
            } else {
                local.as_bytes()
            },
            route: msg.route.map(|_| local.as_bytes()),
            reply: msg.reply,
            headers: msg.headers,
            payload: msg.payload,
        };
        hop(|| {
            state.publish_message_in(&importer, &forwarded);
        });
    }

    fn forwards_interest(&self, subject: &[u8]) -> Option<bool> {
        let importer = self.importer.upgrade()?;
        let local = std::str::from_utf8(subject)
            .ok()
            .and_then(|s| self.transform.apply(s));
        let mut live = false;
        // Import chains may loop: look at most as deep as messages travel.
        hop(|| {
            live = local.is_some_and(|l| importer.has_live_interest(l.as_bytes()));
        });
        Some(live)
    }
}

/// Carries a request from the importer to the exporter with a reply route back.
struct ServiceImport {
    state: Weak<ServerState>,
    importer: Weak<Account>,
    exporter: Weak<Account>,
    transform: Transform,
    response: ResponseType,
    threshold: Duration,
    next: AtomicU64,
}

impl ServiceImport {
    /// A fresh `_R_.` reply subject: random per import, counting per request.
    fn mint_reply(&self) -> Box<[u8]> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut s = String::with_capacity(24);
        s.push_str(REPLY_PREFIX);
        s.push_str(&crate::ids::short());
        s.push('.');
        s.push_str(&n.to_string());
        s.into_bytes().into_boxed_slice()
    }
}

impl InternalHandler for ServiceImport {
    fn deliver(&self, msg: &Message<'_>) {
        self.forward(msg);
    }

    fn deliver_from(&self, _publisher: &ClientShared, msg: &Message<'_>) -> bool {
        self.forward(msg)
    }
}

impl ServiceImport {
    /// Forwards a request; false when nobody in the exporter got it (the
    /// requester then gets no-responders, as from nats-server).
    fn forward(&self, msg: &Message<'_>) -> bool {
        let (Some(state), Some(importer), Some(exporter)) = (
            self.state.upgrade(),
            self.importer.upgrade(),
            self.exporter.upgrade(),
        ) else {
            return false;
        };
        let Ok(subject) = std::str::from_utf8(msg.route.unwrap_or(msg.subject)) else {
            return false;
        };
        let Some(remote) = self.transform.apply(subject) else {
            return false;
        };
        if !exporter.has_interest(remote.as_bytes()) {
            return false;
        }
        let reply = msg.reply.map(|orig| {
            let token = self.mint_reply();
            exporter.responses.lock().insert(
                token.clone(),
                ResponseRoute {
                    to: Arc::downgrade(&importer),
                    reply: orig.into(),
                    response: self.response,
                    expires: Instant::now() + self.threshold,
                },
            );
            token
        });
        let mut delivered = false;
        hop(|| {
            delivered = state.publish_in(
                &exporter,
                remote.as_bytes(),
                reply.as_deref(),
                msg.headers,
                msg.payload,
            );
        });
        if !delivered {
            if let Some(token) = &reply {
                exporter.responses.lock().routes.remove(token);
            }
        }
        delivered
    }
}

/// Carries answers published on `_R_.` subjects back to the requesters.
struct ResponseRouter {
    state: Weak<ServerState>,
    exporter: Weak<Account>,
}

impl InternalHandler for ResponseRouter {
    fn deliver(&self, msg: &Message<'_>) {
        let (Some(state), Some(exporter)) = (self.state.upgrade(), self.exporter.upgrade()) else {
            return;
        };
        // A JetStream delivery to the reply keeps its stored subject: the
        // reply token is then the route, not the subject.
        let token = msg.route.unwrap_or(msg.subject);
        let route = exporter.responses.lock().take(token);
        let Some((to, reply)) = route else {
            return;
        };
        let forwarded = Message {
            subject: if msg.route.is_some() {
                msg.subject
            } else {
                &reply
            },
            route: msg.route.map(|_| &reply[..]),
            reply: msg.reply,
            headers: msg.headers,
            payload: msg.payload,
        };
        hop(|| {
            state.publish_message_in(&to, &forwarded);
        });
    }
}

/// The exporter's `_R_.>` subscription, installed once per exporting account.
fn ensure_response_sub(state: &Arc<ServerState>, exporter: &Arc<Account>) {
    let mut installed = state.response_subs.lock();
    if installed.contains(&exporter.name) {
        return;
    }
    let handler = Arc::new(ResponseRouter {
        state: Arc::downgrade(state),
        exporter: Arc::downgrade(exporter),
    });
    match state.subscribe_internal_in(exporter, "_R_.>", None, handler) {
        Ok(_) => {
            installed.insert(exporter.name.clone());
        }
        Err(e) => tracing::warn!("service replies for {:?} not routed: {e}", exporter.name),
    }
}
