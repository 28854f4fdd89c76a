//! The server: shared state every connection sees ([`ServerState`]), the
//! accept loop, and the ways it ends (shutdown, lame-duck mode).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use rnats_proto::ServerInfo;
use rnats_subject::SublistError;
use tokio::net::{TcpListener, TcpStream};

use crate::account::{Account, Accounts};
use crate::client::{conn, ClientShared, CloseReason};
use crate::hooks::{Hooks, Slots};
use crate::options::Options;
use crate::router::{self, Batch, MatchCache, Message};
use crate::stats::Counters;
use crate::subscription::{InternalHandler, SubRef, Subscription};

/// State shared by all connections.
pub struct ServerState {
    /// The options in force; replaced as a whole by a config reload.
    opts: ArcSwap<Options>,
    opts_generation: AtomicU64,
    pub server_id: String,
    pub server_name: String,
    /// The INFO sent to clients, without the per-client fields.
    info: ArcSwap<ServerInfo>,
    /// Every account, each with its own subject space.
    pub accounts: Accounts,
    /// Operator mode (JWT authentication), when configured.
    pub operator: Option<crate::account::from_jwt::OperatorMode>,
    /// Exporting accounts whose `_R_.>` reply router is installed.
    pub(crate) response_subs: Mutex<std::collections::HashSet<String>>,
    pub clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    next_cid: AtomicU64,
    pub counters: Counters,
    pub lame_duck: AtomicBool,
    pub started: Instant,
    /// The pseudo-connection that owns internal subscriptions and publishes
    /// the server's own messages (API responses, acks).
    pub system_client: Arc<ClientShared>,
    /// Features waiting for a client to subscribe (see `watch_interest`).
    interest_watchers: RwLock<Vec<WatchedSubject>>,
    /// Becomes true when the accept loops must stop (shutdown or lame duck).
    stop_accepting: tokio::sync::watch::Sender<bool>,
    /// Becomes true once the client port's listener is closed.
    client_port_closed: tokio::sync::watch::Sender<bool>,
    /// The wall-clock time of `started` (monitoring reports times as dates).
    pub started_wall: chrono::DateTime<chrono::Utc>,
    /// When the options were last loaded or reloaded (`/varz`).
    pub config_load_time: Mutex<chrono::DateTime<chrono::Utc>>,
    /// Recently closed clients, for `/connz?state=closed`.
    pub closed: crate::closed::ClosedRing,
    /// TLS on the client port (built at startup; not reloaded).
    pub client_tls: Option<Arc<crate::tls::TlsServer>>,
    /// The features' event hooks (see [`crate::hooks`]).
    hooks: ArcSwap<Vec<Arc<dyn Hooks>>>,
    /// The features' own state, one value per type (see [`crate::hooks`]).
    slots: Slots,
}

impl ServerState {
    /// Registers a feature's event hooks; they run in registration order.
    pub fn add_hooks(&self, hooks: Arc<dyn Hooks>) {
        self.hooks.rcu(|old| {
            let mut v = Vec::clone(old);
            v.push(hooks.clone());
            v
        });
    }

    /// Raises an event: calls `f` with each registered hook.
    pub fn raise(&self, f: impl Fn(&dyn Hooks)) {
        for h in self.hooks.load().iter() {
            f(h.as_ref());
        }
    }

    /// The feature state of type `T`, if the feature set it.
    pub fn slot<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.slots.get::<T>()
    }

    /// Stores a feature's state; false if one of that type was already set.
    pub fn set_slot<T: std::any::Any + Send + Sync>(&self, value: Arc<T>) -> bool {
        self.slots.set(value)
    }

    /// Tells every accept loop (the client port's and the features') to stop.
    pub fn stop_accepting(&self) {
        self.stop_accepting.send_replace(true);
    }

    /// Resolves once the accept loops must stop.
    pub async fn accepting_stopped(&self) {
        let mut rx = self.stop_accepting.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// The options in force now.
    pub fn opts(&self) -> Arc<Options> {
        self.opts.load_full()
    }

    /// Installs reloaded options (already checked by `reload`).
    pub fn set_opts(&self, opts: Options) {
        let mut info = (*self.info.load_full()).clone();
        info.auth_required = opts.auth.required();
        info.max_payload = opts.max_payload;
        self.info.store(Arc::new(info));
        self.opts.store(Arc::new(opts));
        self.opts_generation.fetch_add(1, Ordering::Release);
        *self.config_load_time.lock() = chrono::Utc::now();
    }

    /// Remembers a client that just closed (with its subscriptions, which
    /// must not have been removed yet) for `/connz?state=closed`.
    pub fn record_closed(&self, client: &ClientShared, reason: CloseReason) {
        let closed = crate::closed::ClosedClient::snapshot(self, client, reason);
        self.closed.push(closed);
    }

    /// The wall-clock time of a moment measured on the monotonic clock.
    pub fn wall_time(&self, at: Instant) -> chrono::DateTime<chrono::Utc> {
        let since = at.saturating_duration_since(self.started);
        self.started_wall + chrono::Duration::from_std(since).unwrap_or_default()
    }

    /// Changes whenever the options are replaced, so connections can pick up
    /// new limits without a lock on their hot path.
    pub fn opts_generation(&self) -> u64 {
        self.opts_generation.load(Ordering::Acquire)
    }

    pub fn add_subscription(&self, sub: &SubRef) -> Result<(), SublistError> {
        sub.account.insert(sub)?;
        if own_interest(sub) {
            self.raise(|h| h.interest_changed(self, sub, true));
        } else if sub.remote.is_some() {
            self.raise(|h| h.peer_interest_changed(self, sub, true));
        }
        // A leaf node's interest is a subscriber too (a push consumer's
        // deliver subject may be served across a leaf connection).
        if sub.internal.is_none()
            && (sub.remote.is_none() || sub.client.kind == crate::client::ConnKind::Leaf)
        {
            self.notify_interest(&sub.subject);
        }
        Ok(())
    }

    /// Asks to be told when a client subscribes to something matching
    /// `subject` (a push consumer waiting for its deliver subject).
    pub fn watch_interest(&self, subject: &str, watcher: std::sync::Weak<dyn InterestWatcher>) {
        let mut w = self.interest_watchers.write();
        w.retain(|(_, x)| x.strong_count() > 0);
        w.push((subject.as_bytes().into(), watcher));
    }

    fn notify_interest(&self, sub_subject: &[u8]) {
        let hits: Vec<Arc<dyn InterestWatcher>> = {
            let w = self.interest_watchers.read();
            if w.is_empty() {
                return;
            }
            w.iter()
                .filter(|(s, _)| rnats_subject::matches(sub_subject, s))
                .filter_map(|(_, x)| x.upgrade())
                .collect()
        };
        for h in hits {
            h.interest_appeared();
        }
    }

    /// Removes a subscription from the index and from its client's sid map.
    pub fn remove_subscription(&self, sub: &SubRef) {
        if sub.account.remove(sub) {
            if own_interest(sub) {
                self.raise(|h| h.interest_changed(self, sub, false));
            } else if sub.remote.is_some() {
                self.raise(|h| h.peer_interest_changed(self, sub, false));
            }
        }
        let mut subs = sub.client.subs.lock();
        if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, &sub.0)) {
            subs.remove(&sub.sid);
        }
    }

    /// Removes many subscriptions of one account under one lock (a closing connection's).
    pub fn remove_subscriptions(&self, subs: &[SubRef]) {
        let Some(first) = subs.first() else {
            return;
        };
        let removed: Vec<&SubRef> = if subs.iter().all(|s| Arc::ptr_eq(&s.account, &first.account))
        {
            first.account.remove_many(subs)
        } else {
            subs.iter().filter(|s| s.account.remove(s)).collect()
        };
        for s in removed {
            if own_interest(s) {
                self.raise(|h| h.interest_changed(self, s, false));
            } else if s.remote.is_some() {
                self.raise(|h| h.peer_interest_changed(self, s, false));
            }
        }
    }

    /// Subscribes a server feature to `subject` in the global account.
    pub fn subscribe_internal(
        &self,
        subject: &str,
        queue: Option<&str>,
        handler: Arc<dyn InternalHandler>,
    ) -> Result<SubRef, SublistError> {
        let global = self.accounts.global().clone();
        self.subscribe_internal_in(&global, subject, queue, handler)
    }

    /// Subscribes a server feature to `subject` in `account`.
    pub fn subscribe_internal_in(
        &self,
        account: &Arc<Account>,
        subject: &str,
        queue: Option<&str>,
        handler: Arc<dyn InternalHandler>,
    ) -> Result<SubRef, SublistError> {
        self.subscribe_internal_with(account, subject, queue, handler, false)
    }

    /// Like [`Self::subscribe_internal_in`], for interest peers must not
    /// hear about (see `Subscription::local_only`).
    pub fn subscribe_local_in(
        &self,
        account: &Arc<Account>,
        subject: &str,
        queue: Option<&str>,
        handler: Arc<dyn InternalHandler>,
    ) -> Result<SubRef, SublistError> {
        self.subscribe_internal_with(account, subject, queue, handler, true)
    }

    fn subscribe_internal_with(
        &self,
        account: &Arc<Account>,
        subject: &str,
        queue: Option<&str>,
        handler: Arc<dyn InternalHandler>,
        local_only: bool,
    ) -> Result<SubRef, SublistError> {
        let sid = format!("i{}", self.next_cid());
        let mut sub = Subscription::new(
            self.system_client.clone(),
            account.clone(),
            subject.as_bytes(),
            queue.map(str::as_bytes),
            sid.as_bytes(),
        );
        sub.internal = Some(handler);
        sub.local_only = local_only;
        let sub = SubRef(Arc::new(sub));
        self.add_subscription(&sub)?;
        self.system_client
            .subs
            .lock()
            .insert(sub.sid.clone(), sub.0.clone());
        Ok(sub)
    }

    /// Publishes a message from the server into `account` (imports);
    /// returns whether anyone received it.
    pub fn publish_in(
        &self,
        account: &Account,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> bool {
        self.publish_message_in(
            account,
            &Message {
                subject,
                route: None,
                reply,
                headers,
                payload,
            },
        )
    }

    /// Publishes `msg` into `account`; a `route` is matched against
    /// subscriptions while receivers see `subject` (JetStream deliveries to
    /// an inbox carry the stored message's subject).
    pub fn publish_message_in(&self, account: &Account, msg: &Message<'_>) -> bool {
        let mut cache = MatchCache::default();
        let mut batch = Batch::default();
        let delivered = router::route(
            self,
            account,
            &mut cache,
            &self.system_client,
            msg,
            &mut batch,
        );
        batch.finish(self);
        delivered
    }

    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    pub fn num_clients(&self) -> usize {
        self.clients.lock().len()
    }

    /// The `INFO` body for one client.
    pub fn client_info(&self, client: &ClientShared) -> ServerInfo {
        let mut info = (*self.info.load_full()).clone();
        info.client_id = client.cid;
        info.client_ip = client.addr.ip().to_string();
        info.ldm = self.lame_duck.load(Ordering::Relaxed);
        if self.opts().auth.has_nkeys() {
            // Empty when the OS random source failed: `run` refuses the client.
            info.nonce = client.auth.nonce().unwrap_or_default().to_string();
        }
        info
    }

    /// The cluster changed (a peer joined or left, or a name was adopted):
    /// clients get the new `connect_urls` (every server they may reconnect
    /// to) and cluster name in an INFO at once, if they understand one.
    pub fn set_cluster_info(&self, cluster: &str, connect_urls: Vec<String>) {
        let mut info = (*self.info.load_full()).clone();
        if info.cluster == cluster && info.connect_urls == connect_urls {
            return;
        }
        info.cluster = cluster.to_string();
        info.connect_urls = connect_urls;
        self.info.store(Arc::new(info));
        let clients: Vec<_> = self.clients.lock().values().cloned().collect();
        for c in clients {
            if c.async_info.load(Ordering::Relaxed) && c.kind == crate::client::ConnKind::Client {
                c.out.send_now(&self.info_line(&c));
            }
        }
    }

    /// The port clients connect to (the one actually bound).
    pub fn client_port(&self) -> u16 {
        self.info.load().port
    }

    /// The `connect_urls` clients are told about now.
    pub fn connect_urls(&self) -> Vec<String> {
        self.info.load().connect_urls.clone()
    }

    /// The `INFO` line for one client.
    pub fn info_line(&self, client: &ClientShared) -> Vec<u8> {
        self.client_info(client).to_line()
    }
}

/// A subject being watched for client interest, and who to tell.
type WatchedSubject = (Box<[u8]>, std::sync::Weak<dyn InterestWatcher>);

/// Told when a client subscribes to a watched subject.
pub trait InterestWatcher: Send + Sync {
    fn interest_appeared(&self);
}

/// A bound server, ready to run.
pub struct Server {
    state: Arc<ServerState>,
    listener: TcpListener,
}

impl Server {
    /// Binds the client port and prepares the shared state.
    pub async fn bind(opts: Options) -> std::io::Result<Server> {
        let port = if opts.random_port { 0 } else { opts.port };
        let client_tls = match &opts.tls {
            Some(t) => Some(Arc::new(
                crate::tls::server_config(t).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        let listener = TcpListener::bind((opts.host.as_str(), port)).await?;
        let local = listener.local_addr()?;
        let tls_on = client_tls.is_some();
        let server_id = nkeys::KeyPair::new_server().public_key();
        let server_name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        let info = ServerInfo {
            server_id: server_id.clone(),
            server_name: server_name.clone(),
            version: crate::NATS_COMPAT_VERSION.into(),
            proto: 1,
            go: format!("rnats {}", crate::RNATS_VERSION),
            host: opts.host.clone(),
            port: local.port(),
            headers: true,
            auth_required: opts.auth.required(),
            tls_required: tls_on && !opts.allow_non_tls,
            tls_available: tls_on && opts.allow_non_tls,
            tls_verify: client_tls.as_ref().is_some_and(|t| t.opts.verify),
            max_payload: opts.max_payload,
            api_lvl: 5,
            jetstream: opts.jetstream,
            domain: opts.jetstream_domain.clone().unwrap_or_default(),
            ..ServerInfo::default()
        };
        let started_wall = chrono::Utc::now();
        let operator = crate::account::from_jwt::OperatorMode::from_options(&opts)?;
        let system_name = match &operator {
            Some(op) => op.system_account(&opts),
            None => opts.system_account.clone(),
        };
        let accounts =
            Accounts::from_configs(&opts.accounts, system_name.as_deref(), &opts.mappings);
        let system_client = Arc::new(ClientShared::new(
            0,
            SocketAddr::from(([0, 0, 0, 0], 0)),
            usize::MAX,
            accounts.system().clone(),
        ));
        let state = Arc::new(ServerState {
            started_wall,
            config_load_time: Mutex::new(started_wall),
            closed: crate::closed::ClosedRing::default(),
            client_tls,
            hooks: ArcSwap::from_pointee(Vec::new()),
            slots: Slots::default(),
            server_id,
            server_name,
            info: ArcSwap::from_pointee(info),
            accounts,
            operator,
            response_subs: Mutex::new(Default::default()),
            clients: Mutex::new(HashMap::new()),
            next_cid: AtomicU64::new(1),
            counters: Counters::default(),
            lame_duck: AtomicBool::new(false),
            started: Instant::now(),
            interest_watchers: RwLock::new(Vec::new()),
            system_client,
            stop_accepting: tokio::sync::watch::Sender::new(false),
            client_port_closed: tokio::sync::watch::Sender::new(false),
            opts: ArcSwap::from_pointee(opts),
            opts_generation: AtomicU64::new(0),
        });
        for c in &state.opts().accounts {
            if let Some(acc) = state.accounts.get(&c.name) {
                crate::account::imports::install(&state, &acc, &c.imports);
            }
        }
        Ok(Server { state, listener })
    }

    pub fn state(&self) -> Arc<ServerState> {
        self.state.clone()
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts clients until told to stop accepting.
    pub async fn run(self) {
        let Server { state, listener } = self;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => spawn_client(&state, stream, addr),
                    Err(e) => {
                        // Out of descriptors and similar: back off instead of spinning.
                        tracing::error!("Error accepting client connection: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = state.accepting_stopped() => break,
            }
        }
        drop(listener);
        state.client_port_closed.send_replace(true);
    }
}

fn spawn_client(state: &Arc<ServerState>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(conn::serve(state.clone(), stream, addr));
}

/// Closes every client and stops accepting; used on SIGTERM/SIGINT.
pub fn shutdown(state: &ServerState) {
    state.stop_accepting();
    state.raise(|h| h.shutdown(state));
    let clients: Vec<_> = state.clients.lock().values().cloned().collect();
    for c in clients {
        c.close(CloseReason::ServerShutdown);
    }
}

/// After [`shutdown`]: waits (at most `max`) until every connection has flushed its last
/// bytes and unregistered, so the process can exit as soon as they are gone.
pub async fn clients_gone(state: &ServerState, max: Duration) {
    let deadline = tokio::time::Instant::now() + max;
    while !state.clients.lock().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Lame-duck mode: stop accepting, tell clients (INFO with `ldm: true`) so
/// they reconnect elsewhere, wait the grace period, then close the clients
/// spread over the rest of `lame_duck_duration`.
pub async fn lame_duck(state: Arc<ServerState>) {
    if state.lame_duck.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::info!("Entering lame duck mode, stop accepting new clients");
    state.raise(|h| h.lame_duck(&state));
    state.stop_accepting();
    // As nats-server: the listener is closed before clients are told, so a
    // client that reconnects on the news is refused here.
    let mut closed = state.client_port_closed.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(1), closed.wait_for(|c| *c)).await;
    let clients: Vec<_> = state.clients.lock().values().cloned().collect();
    for c in &clients {
        c.out.send_now(&state.info_line(c));
    }
    let opts = state.opts();
    let grace = opts.lame_duck_grace_period;
    let duration = opts.lame_duck_duration.saturating_sub(grace);
    tokio::time::sleep(grace).await;
    let clients: Vec<_> = state.clients.lock().values().cloned().collect();
    if !clients.is_empty() {
        tracing::info!("Closing existing clients");
        let step = duration / clients.len() as u32;
        for c in clients {
            c.close(CloseReason::LameDuckMode);
            tokio::time::sleep(step.min(Duration::from_secs(1))).await;
        }
    }
}

impl ServerState {
    /// Publishes many server messages into `account` with one match cache
    /// and one wake-up per receiving connection (a consumer delivering a batch).
    pub fn publish_internal_many_in<'a>(
        &self,
        account: &Account,
        msgs: impl IntoIterator<Item = Message<'a>>,
    ) {
        let mut cache = MatchCache::default();
        let mut batch = Batch::default();
        for msg in msgs {
            router::route(
                self,
                account,
                &mut cache,
                &self.system_client,
                &msg,
                &mut batch,
            );
        }
        batch.finish(self);
    }
}

/// Interest this server speaks for to its cluster (`Hooks::interest_changed`):
/// its own subscriptions, and those of leaf nodes it is the hub of
/// (nats-server routes a leaf's interest; a spoke's hub interest stays).
fn own_interest(sub: &SubRef) -> bool {
    match &sub.remote {
        None => !sub.local_only,
        Some(_) => {
            sub.client.kind == crate::client::ConnKind::Leaf
                && !sub.client.leaf_spoke.load(Ordering::Relaxed)
        }
    }
}
