//! The connection side of auth. [`ConnAuth`] lives in the reading task and
//! answers "may this client publish/subscribe here?" (a connection without
//! permissions answers from one `None` check). [`SharedAuth`] lives in
//! `ClientShared`, reachable from other tasks: the INFO nonce, the reply
//! subjects this client may answer (`allow_responses`, recorded when a
//! request is delivered to it), and the nudge to re-check after a reload.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ahash::AHashMap;
use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use rnats_proto::ConnectOptions;
use tokio::sync::Notify;

use super::permissions::{CompiledPerms, PubCache, ResponsePermission};
use super::{authenticate, AuthError, Authenticated};
use crate::client::ClientShared;
use crate::options::Options;
use crate::server::ServerState;
use crate::subscription::{SubRef, Subscription};

/// Recorded reply grants before a prune (nats-server's `replyPermLimit`).
const REPLY_PRUNE_COUNT: usize = 4096;
/// And at least this often (nats-server's `replyPruneTime`).
const REPLY_PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Auth state other tasks reach through the connection's `ClientShared`.
#[derive(Default)]
pub struct SharedAuth {
    nonce: OnceLock<String>,
    /// Set while the user has `allow_responses`: deliveries then record
    /// their reply subjects (one relaxed load otherwise).
    tracks_replies: AtomicBool,
    /// The permissions in force, for the delivery side.
    perms: ArcSwapOption<CompiledPerms>,
    replies: Mutex<ReplyGrants>,
    /// Signalled by a config reload: re-authenticate and re-check.
    pub recheck: Notify,
}

struct ReplyGrants {
    granted: AHashMap<Box<[u8]>, Grant>,
    since_prune: usize,
    last_prune: Instant,
}

impl Default for ReplyGrants {
    fn default() -> Self {
        ReplyGrants {
            granted: AHashMap::new(),
            since_prune: 0,
            last_prune: Instant::now(),
        }
    }
}

struct Grant {
    at: Instant,
    used: i64,
}

fn expired(limits: &ResponsePermission, g: &Grant, now: Instant) -> bool {
    (limits.max_msgs > 0 && g.used >= limits.max_msgs)
        || limits
            .expires
            .is_some_and(|ttl| now.duration_since(g.at) > ttl)
}

impl SharedAuth {
    /// This connection's nonce (made on first use); `None` when the OS
    /// random source failed, and then the connection must be refused.
    pub fn nonce(&self) -> Option<&str> {
        if let Some(n) = self.nonce.get() {
            return Some(n);
        }
        match super::nkey::new_nonce() {
            Ok(n) => Some(self.nonce.get_or_init(|| n)),
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        }
    }

    fn install(&self, perms: Option<Arc<CompiledPerms>>) {
        let tracks = perms.as_ref().is_some_and(|p| p.response.is_some());
        self.perms.store(perms);
        if !tracks {
            self.replies.lock().granted.clear();
        }
        self.tracks_replies.store(tracks, Ordering::Release);
    }

    /// A message with `reply` was delivered to this client: with
    /// `allow_responses`, it may now publish to `reply` (if it could not anyway).
    #[inline]
    pub fn on_delivery(&self, reply: &[u8]) {
        if !self.tracks_replies.load(Ordering::Relaxed) {
            return;
        }
        let Some(perms) = self.perms.load_full() else {
            return;
        };
        let Some(limits) = perms.response else {
            return;
        };
        if perms.publish_allowed(reply) {
            return;
        }
        let now = Instant::now();
        let mut r = self.replies.lock();
        r.granted.insert(reply.into(), Grant { at: now, used: 0 });
        r.since_prune += 1;
        if r.since_prune > REPLY_PRUNE_COUNT || now.duration_since(r.last_prune) > REPLY_PRUNE_EVERY
        {
            r.granted.retain(|_, g| !expired(&limits, g, now));
            r.since_prune = 0;
            r.last_prune = now;
        }
    }

    /// Uses one response grant for `subject`, if there is a live one.
    fn take_response(&self, limits: &ResponsePermission, subject: &[u8]) -> bool {
        let now = Instant::now();
        let mut r = self.replies.lock();
        let Some(g) = r.granted.get_mut(subject) else {
            return false;
        };
        g.used += 1;
        let over = limits.max_msgs > 0 && g.used > limits.max_msgs;
        if over
            || limits
                .expires
                .is_some_and(|ttl| now.duration_since(g.at) > ttl)
        {
            r.granted.remove(subject);
            return false;
        }
        true
    }
}

/// The read side's view: who the client is and what it may do.
#[derive(Default)]
pub struct ConnAuth {
    session: Option<Authenticated>,
    perms: Option<Arc<CompiledPerms>>,
    pub_cache: PubCache,
}

impl ConnAuth {
    /// Authenticates a CONNECT (when the server requires it) and installs
    /// the user's permissions. Also used to re-check after a reload.
    pub fn login(
        &mut self,
        opts: &Options,
        connect: &ConnectOptions,
        shared: &SharedAuth,
    ) -> Result<(), AuthError> {
        let session = if opts.auth.required() {
            let nonce = if opts.auth.has_nkeys() {
                // Fail closed: without a nonce no signature can be checked.
                Some(shared.nonce().ok_or(AuthError {
                    who: None,
                    reason: super::Reason::NonceUnavailable,
                })?)
            } else {
                None
            };
            Some(authenticate(
                &opts.auth,
                opts.no_auth_user.as_deref(),
                connect,
                nonce,
            )?)
        } else {
            None
        };
        self.perms = session
            .as_ref()
            .and_then(Authenticated::permissions)
            .map(|p| Arc::new(CompiledPerms::new(p)));
        self.session = session;
        self.pub_cache.clear();
        shared.install(self.perms.clone());
        Ok(())
    }

    /// Installs a user authenticated elsewhere (operator mode's JWTs).
    pub fn login_as(&mut self, user: Arc<super::User>, shared: &SharedAuth) {
        let session = Authenticated { user: Some(user) };
        self.perms = session
            .permissions()
            .map(|p| Arc::new(CompiledPerms::new(p)));
        self.session = Some(session);
        self.pub_cache.clear();
        shared.install(self.perms.clone());
    }

    /// `"$G/user:a"`-style label nats-server puts in a client's log lines.
    pub fn label(&self) -> Option<String> {
        let user = self.session.as_ref()?.user.as_ref()?;
        let account = user.account.as_deref().unwrap_or("$G");
        Some(format!("\"{account}/{}\"", user.label()))
    }

    /// The configured user this client authenticated as.
    pub fn user(&self) -> Option<&Arc<super::User>> {
        self.session.as_ref()?.user.as_ref()
    }

    /// May this client publish to `subject`? Free without permissions.
    #[inline]
    pub fn may_publish(&mut self, shared: &SharedAuth, subject: &[u8]) -> bool {
        let Some(perms) = &self.perms else {
            return true;
        };
        if !perms.restricts_publish() || self.pub_cache.check(perms, subject) {
            return true;
        }
        perms
            .response
            .as_ref()
            .is_some_and(|limits| shared.take_response(limits, subject))
    }

    /// May this client subscribe to `subject` (in `queue`)?
    #[inline]
    pub fn may_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.perms
            .as_ref()
            .is_none_or(|p| p.subscribe_allowed(subject, queue))
    }

    /// The filter a new subscription needs at delivery time, if a deny
    /// entry could reach it through a wildcard or queue.
    pub fn delivery_filter(&self, subject: &[u8], queue: bool) -> Option<Arc<CompiledPerms>> {
        self.perms
            .as_ref()
            .filter(|p| p.needs_delivery_filter(subject, queue))
            .cloned()
    }
}

impl ConnAuth {
    /// After a reload: removes the client's subscriptions its new
    /// permissions forbid, telling it (`... (sid "1")`) and logging each,
    /// as nats-server does, and renews the delivery filters of the rest.
    pub fn recheck_subs(
        &self,
        state: &ServerState,
        client: &ClientShared,
        connect: &ConnectOptions,
    ) {
        let mut subs: Vec<Arc<Subscription>> = client.subs.lock().values().cloned().collect();
        subs.sort_by(|a, b| a.sid.cmp(&b.sid));
        let who = super::who(connect).unwrap_or_else(|| "User \"N/A\"".into());
        for sub in subs {
            if self.may_subscribe(&sub.subject, sub.queue.as_deref()) {
                sub.deny_filter
                    .set(self.delivery_filter(&sub.subject, sub.queue.is_some()));
                continue;
            }
            state.remove_subscription(&SubRef(sub.clone()));
            let s = String::from_utf8_lossy(&sub.subject);
            let sid = String::from_utf8_lossy(&sub.sid);
            let (err, note) = match sub.queue.as_deref().map(String::from_utf8_lossy) {
                None => (
                    format!("Subscription to {s:?} (sid {sid:?})"),
                    format!("Removed sub {s:?} (sid {sid:?}) for {who} - not authorized"),
                ),
                Some(q) => (
                    format!("Subscription to {s:?} using queue {q:?} (sid {sid:?})"),
                    format!(
                        "Removed sub {s:?} using queue {q:?} (sid {sid:?}) for {who} - not authorized"
                    ),
                ),
            };
            tracing::info!("{note}");
            client
                .out
                .send_now(&Violation { err, log: note }.err_line());
        }
    }
}

/// A subscription's delivery-time deny check: set when the owner's deny
/// permissions overlap a wildcard or queue subscription (nats-server's
/// `mperms`). Unset, it costs one relaxed load per delivery.
#[derive(Default)]
pub struct DenyFilter {
    on: AtomicBool,
    perms: ArcSwapOption<CompiledPerms>,
}

impl DenyFilter {
    pub fn set(&self, perms: Option<Arc<CompiledPerms>>) {
        let on = perms.is_some();
        self.perms.store(perms);
        self.on.store(on, Ordering::Release);
    }

    /// Whether a message on `subject` must not reach this subscription.
    #[inline]
    pub fn denies(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if !self.on.load(Ordering::Relaxed) {
            return false;
        }
        self.perms
            .load()
            .as_ref()
            .is_some_and(|p| p.delivery_denied(subject, queue))
    }
}

/// A refused operation: what the client is told and what is logged.
pub struct Violation {
    /// Follows `Permissions Violation for ` in the `-ERR`.
    pub err: String,
    pub log: String,
}

impl Violation {
    pub fn err_line(&self) -> Vec<u8> {
        format!("-ERR 'Permissions Violation for {}'\r\n", self.err).into_bytes()
    }
}

/// nats-server's texts for a refused PUB.
pub fn publish_violation(subject: &[u8]) -> Violation {
    let s = String::from_utf8_lossy(subject);
    Violation {
        err: format!("Publish to {s:?}"),
        log: format!("Publish Violation - Subject {s:?}"),
    }
}

/// nats-server's texts for a refused SUB (with or without a queue group).
pub fn subscribe_violation(subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) -> Violation {
    let s = String::from_utf8_lossy(subject);
    let sid = String::from_utf8_lossy(sid);
    match queue.map(String::from_utf8_lossy) {
        None => Violation {
            err: format!("Subscription to {s:?}"),
            log: format!("Subscription Violation - Subject {s:?}, SID {sid}"),
        },
        Some(q) => Violation {
            err: format!("Subscription to {s:?} using queue {q:?}"),
            log: format!("Subscription Violation - Subject {s:?}, Queue: {q:?}, SID {sid}"),
        },
    }
}
