//! The server: shared state every connection sees ([`ServerState`]), the
//! accept loop, and the ways it ends (shutdown, lame-duck mode).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rnats_proto::ServerInfo;
use rnats_subject::{Sublist, SublistError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::client::{conn, ClientShared, CloseReason};
use crate::options::Options;
use crate::stats::Counters;
use crate::subscription::SubRef;

/// State shared by all connections.
pub struct ServerState {
    pub opts: Options,
    pub server_id: String,
    pub server_name: String,
    /// The INFO sent to clients, without the per-client fields.
    pub info: ServerInfo,
    pub sublist: RwLock<Sublist<SubRef>>,
    /// Mirrors the sublist's generation so match caches can check it without a lock.
    generation: AtomicU64,
    pub clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    next_cid: AtomicU64,
    pub counters: Counters,
    pub lame_duck: AtomicBool,
    pub started: Instant,
    /// Set when the accept loop must stop (shutdown or lame duck).
    stop_accepting: Notify,
}

impl ServerState {
    pub fn sublist_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn add_subscription(&self, sub: &SubRef) -> Result<(), SublistError> {
        let mut sl = self.sublist.write();
        sl.insert(&sub.subject, sub.queue.as_deref(), sub.clone())?;
        self.generation.store(sl.generation(), Ordering::Release);
        Ok(())
    }

    /// Removes a subscription from the index and from its client's sid map.
    pub fn remove_subscription(&self, sub: &SubRef) {
        {
            let mut sl = self.sublist.write();
            if sl.remove(&sub.subject, sub.queue.as_deref(), sub) {
                self.generation.store(sl.generation(), Ordering::Release);
            }
        }
        let mut subs = sub.client.subs.lock();
        if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, &sub.0)) {
            subs.remove(&sub.sid);
        }
    }

    /// Removes many subscriptions under one lock (a closing connection's).
    pub fn remove_subscriptions(&self, subs: &[SubRef]) {
        let mut sl = self.sublist.write();
        for s in subs {
            sl.remove(&s.subject, s.queue.as_deref(), s);
        }
        self.generation.store(sl.generation(), Ordering::Release);
    }

    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    pub fn num_clients(&self) -> usize {
        self.clients.lock().len()
    }

    /// The `INFO` body for one client.
    pub fn client_info(&self, client: &ClientShared) -> ServerInfo {
        let mut info = self.info.clone();
        info.client_id = client.cid;
        info.client_ip = client.addr.ip().to_string();
        info.ldm = self.lame_duck.load(Ordering::Relaxed);
        info
    }

    /// The `INFO` line for one client.
    pub fn info_line(&self, client: &ClientShared) -> Vec<u8> {
        self.client_info(client).to_line()
    }
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
        let listener = TcpListener::bind((opts.host.as_str(), port)).await?;
        let local = listener.local_addr()?;
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
            max_payload: opts.max_payload,
            api_lvl: 5,
            ..ServerInfo::default()
        };
        let state = Arc::new(ServerState {
            server_id,
            server_name,
            info,
            sublist: RwLock::new(Sublist::new()),
            generation: AtomicU64::new(0),
            clients: Mutex::new(HashMap::new()),
            next_cid: AtomicU64::new(1),
            counters: Counters::default(),
            lame_duck: AtomicBool::new(false),
            started: Instant::now(),
            stop_accepting: Notify::new(),
            opts,
        });
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
                _ = state.stop_accepting.notified() => break,
            }
        }
    }
}

fn spawn_client(state: &Arc<ServerState>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(conn::serve(state.clone(), stream, addr));
}

/// Closes every client and stops accepting; used on SIGTERM/SIGINT.
pub fn shutdown(state: &ServerState) {
    state.stop_accepting.notify_one();
    let clients: Vec<_> = state.clients.lock().values().cloned().collect();
    for c in clients {
        c.close(CloseReason::ServerShutdown);
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
    state.stop_accepting.notify_one();
    let clients: Vec<_> = state.clients.lock().values().cloned().collect();
    for c in &clients {
        c.out.send_now(&state.info_line(c));
    }
    let grace = state.opts.lame_duck_grace_period;
    let duration = state.opts.lame_duck_duration.saturating_sub(grace);
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
