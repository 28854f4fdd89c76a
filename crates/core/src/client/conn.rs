//! The read side of a client connection: reads into one growing buffer,
//! parses every complete operation in it, executes each one (CONNECT, PUB,
//! SUB, ...), and at the end of the batch wakes the writers of everyone who got
//! a message. Also owns the connection's lifetime: registration, the writer
//! task, and cleanup of its subscriptions when it ends.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use rnats_proto::{encode, ClientOp, ConnectOptions, ParseError, Parser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::writer::{self, WriterConfig};
use super::{ClientShared, CloseReason};
use crate::account::Account;
use crate::router::{self, Batch, MatchCache, Message};
use crate::server::ServerState;
use crate::subscription::{SubRef, Subscription};

/// Smallest and largest read sizes: idle connections stay small, busy ones
/// read 64 KiB at a time (as nats-server does).
const MIN_READ: usize = 512;
const MAX_READ: usize = 64 * 1024;

/// Runs one client connection to completion.
pub async fn serve(state: Arc<ServerState>, stream: TcpStream, addr: SocketAddr) {
    if let Some(tls) = state.client_tls.clone() {
        return serve_tls(state, stream, addr, tls).await;
    }
    // Plain TCP, the hot path: the socket's own halves, no lock between them.
    let client = new_client(&state, addr);
    let (rd, wr) = stream.into_split();
    client.out.send_now(&state.info_line(&client));
    run(state, client, rd, wr).await;
}

/// A new client's shared state, with the next connection id.
pub fn new_client(state: &ServerState, addr: SocketAddr) -> Arc<ClientShared> {
    let cid = state.next_cid();
    Arc::new(ClientShared::new(
        cid,
        addr,
        state.opts().max_pending,
        state.accounts.global().clone(),
    ))
}

/// Runs a connection over any byte stream (a WebSocket's decoded frames):
/// queues the INFO and splits the stream between the reader and the writer.
pub async fn serve_stream<S>(state: Arc<ServerState>, client: Arc<ClientShared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    client.out.send_now(&state.info_line(&client));
    let (rd, wr) = tokio::io::split(stream);
    run(state, client, rd, wr).await;
}

/// The client port with TLS: INFO in plaintext, then the handshake (or the
/// handshake first with `handshake_first`), as nats-server does.
async fn serve_tls(
    state: Arc<ServerState>,
    mut stream: TcpStream,
    addr: SocketAddr,
    tls: Arc<crate::tls::TlsServer>,
) {
    let client = new_client(&state, addr);
    let opts = state.opts();
    let mut tls_first = tls.opts.handshake_first;
    if let Some(delay) = tls.opts.handshake_first_fallback.filter(|_| tls_first) {
        // `handshake_first: auto`: a client that says nothing for a moment
        // is waiting for the INFO.
        let mut b = [0u8; 1];
        let spoke = matches!(
            tokio::time::timeout(delay, stream.peek(&mut b)).await,
            Ok(Ok(n)) if n > 0
        );
        tls_first = spoke;
    }
    if !tls_first {
        let info = state.info_line(&client);
        let sent = tokio::time::timeout(opts.write_deadline, stream.write_all(&info)).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
    tracing::debug!(
        "{} - Starting TLS client connection handshake",
        client.log_prefix()
    );
    let started = tokio::time::Instant::now();
    let handshake_failed = |what: &str| {
        tracing::debug!("{} - {what}", client.log_prefix());
        tracing::debug!(
            "{} - Client connection closed: TLS Handshake Failure",
            client.log_prefix()
        );
    };
    // A TLS ClientHello starts with 0x16. Look before handing the socket to
    // rustls: a plaintext client is closed without a TLS alert (as Go's
    // crypto/tls does), or served in plaintext under `allow_non_tls`.
    let mut b = [0u8; 1];
    match tokio::time::timeout(tls.opts.timeout, stream.peek(&mut b)).await {
        Err(_) => return handshake_failed("TLS handshake timeout"),
        Ok(Ok(1)) if b[0] == 0x16 => {}
        Ok(Ok(1)) if opts.allow_non_tls && !tls_first => {
            let (rd, wr) = stream.into_split();
            run(state, client, rd, wr).await;
            return;
        }
        Ok(Ok(1)) => {
            return handshake_failed(
                "TLS handshake error: tls: first record does not look like a TLS handshake",
            )
        }
        Ok(_) => return handshake_failed("TLS handshake error: EOF"),
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let left = tls.opts.timeout.saturating_sub(started.elapsed());
    let tls_stream = match tokio::time::timeout(left, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            if crate::tls::is_probe_error(&e) {
                tracing::debug!("{} - TLS handshake error: {e}", client.log_prefix());
            } else {
                tracing::error!("{} - TLS handshake error: {e}", client.log_prefix());
            }
            tracing::debug!(
                "{} - Client connection closed: TLS Handshake Failure",
                client.log_prefix()
            );
            return;
        }
        Err(_) => return handshake_failed("TLS handshake timeout"),
    };
    if tls_first {
        let mut info = state.client_info(&client);
        info.tls_required = true;
        client.out.send_now(&info.to_line());
    }
    let (rd, wr) = tokio::io::split(tls_stream);
    run(state, client, rd, crate::tls::FlushingWriter::new(wr)).await;
}

/// Registers the client, runs its writer and reads until the connection
/// ends, then cleans up. The INFO must already be sent or queued.
async fn run<R, W>(state: Arc<ServerState>, client: Arc<ClientShared>, rd: R, wr: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cid = client.cid;
    let opts = state.opts();
    let over_limit = {
        let mut clients = state.clients.lock();
        let over = clients.len() >= opts.max_connections;
        if !over {
            clients.insert(cid, client.clone());
        }
        over
    };
    let cfg = WriterConfig {
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        write_deadline: opts.write_deadline,
        auth_timeout: opts.auth.required().then_some(opts.auth_timeout),
    };
    let writer = tokio::spawn(writer::run(client.clone(), wr, cfg));
    if over_limit {
        tracing::error!("{} - maximum connections exceeded", client.log_prefix());
        client
            .out
            .send_now(b"-ERR 'maximum connections exceeded'\r\n");
        client.close(CloseReason::MaxConnectionsExceeded);
        let _ = writer.await;
        return;
    }
    tracing::debug!("{} - Client connection created", client.log_prefix());
    if opts.auth.has_nkeys() && client.auth.nonce().is_none() {
        // Fail closed: a client that must sign a nonce cannot be served without one.
        tracing::error!(
            "{} - refusing connection: no nonce could be generated",
            client.log_prefix()
        );
        client.close(CloseReason::AuthenticationViolation);
        let _ = writer.await;
        return;
    }

    let mut conn = Conn::new(state.clone(), client.clone());
    let reason = conn.read_loop(rd).await;
    client.close(reason);
    let reason = writer.await.unwrap_or(reason);
    state.record_closed(&client, reason);
    conn.cleanup();
    if client.connected.load(Ordering::Acquire) {
        state.raise(|h| h.client_disconnected(&state, &client, reason));
    }
    tracing::debug!(
        "{} - Client connection closed: {:?}",
        client.log_prefix(),
        reason
    );
}

/// nats-server's fast-producer stall: a publisher whose messages pushed a
/// receiver past its stall gate waits (2 ms per receiver, 10 ms per read at
/// most) for it to drain, instead of outrunning it until it is cut off.
async fn stall_for(receivers: &[Arc<ClientShared>]) {
    const EACH: std::time::Duration = std::time::Duration::from_millis(2);
    const TOTAL: std::time::Duration = std::time::Duration::from_millis(10);
    let start = tokio::time::Instant::now();
    for r in receivers {
        let left = TOTAL.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        let _ = tokio::time::timeout(EACH.min(left), r.out.drained()).await;
    }
}

/// Per-connection state owned by the read side.
struct Conn {
    state: Arc<ServerState>,
    client: Arc<ClientShared>,
    parser: Parser,
    connect: ConnectOptions,
    cache: MatchCache,
    /// The account this connection publishes and subscribes in.
    account: Arc<Account>,
    /// Counted in the account's connections (released on close).
    counted: bool,
    /// Per-connection bounds from the account's (or JWT user's) limits.
    limit_subs: Option<usize>,
    limit_payload: Option<usize>,
    batch: Batch,
    auth_required: bool,
    trace: bool,
    connect_info_sent: bool,
    /// The options generation the limits above were taken from.
    opts_generation: u64,
    /// AUTH: who the client is and what it may publish/subscribe (`crate::auth`).
    auth: crate::auth::session::ConnAuth,
    /// Closes the connection when its JWT credentials expire (`expiry.rs`).
    expiry: Option<tokio::task::JoinHandle<()>>,
}

/// Ends the connection; `Some(text)` is sent as `-ERR 'text'` first.
struct Close(CloseReason, Option<&'static str>);

impl Conn {
    fn new(state: Arc<ServerState>, client: Arc<ClientShared>) -> Self {
        let opts = state.opts();
        let parser = Parser {
            max_payload: opts.max_payload,
            max_control_line: opts.max_control_line,
            headers: false,
        };
        let account = client.account.load_full();
        Conn {
            account,
            counted: false,
            limit_subs: None,
            limit_payload: None,
            auth_required: opts.auth.required(),
            trace: opts.trace,
            connect_info_sent: false,
            opts_generation: state.opts_generation(),
            state,
            client,
            parser,
            connect: ConnectOptions::default(),
            cache: MatchCache::default(),
            batch: Batch::default(),
            auth: Default::default(),
            expiry: None,
        }
    }

    async fn read_loop<R: AsyncRead + Unpin>(&mut self, mut rd: R) -> CloseReason {
        let mut buf = BytesMut::with_capacity(MIN_READ);
        let mut read_size = MIN_READ;
        loop {
            if buf.is_empty() && buf.capacity() > 4 * read_size {
                buf = BytesMut::with_capacity(read_size);
            } else {
                buf.reserve(read_size);
            }
            // Read at most `read_size`: a batch is processed before its
            // writers are woken, so it must stay small (as nats-server's).
            let mut limited = (&mut rd).take(read_size as u64);
            let n = tokio::select! {
                r = limited.read_buf(&mut buf) => match r {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(n) => n,
                    Err(_) => return CloseReason::ReadError,
                },
                _ = self.client.stop_reading.notified() => {
                    return self.client.out.close_reason().unwrap_or(CloseReason::ServerShutdown);
                }
                // AUTH: a config reload changed the users; check this client again.
                _ = self.client.auth.recheck.notified() => {
                    if let Err(Close(reason, err)) = self.recheck_auth() {
                        if let Some(text) = err {
                            let mut line = BytesMut::new();
                            encode::err(&mut line, text);
                            self.client.out.send_now(&line);
                        }
                        return reason;
                    }
                    continue;
                }
            };
            let ms = self.client.started.elapsed().as_millis() as u64;
            self.client.last_in_ms.store(ms, Ordering::Relaxed);

            let result = self.process(&buf);
            let used = match result {
                Ok(used) => used,
                Err(_) => 0,
            };
            buf.advance(used);
            self.client.add_in(&self.batch.counts);
            let stalled = std::mem::take(&mut self.batch.stalled);
            let woke = self.batch.finish(&self.state);
            if !stalled.is_empty() {
                stall_for(&stalled).await;
            }
            if let Err(Close(reason, err)) = result {
                if let Some(text) = err {
                    let mut line = BytesMut::new();
                    encode::err(&mut line, text);
                    self.client.out.send_now(&line);
                }
                return reason;
            }
            if woke {
                // The writers just woken sit in this worker's LIFO slot, which
                // other workers cannot steal: let them write before we read
                // again, or a busy publisher starves its own subscribers.
                tokio::task::yield_now().await;
            }
            if n >= read_size && read_size < MAX_READ {
                read_size *= 2;
            } else if n < read_size / 4 && read_size > MIN_READ {
                read_size /= 2;
            }
        }
    }

    /// Takes new limits after a config reload.
    fn refresh_options(&mut self) {
        let generation = self.state.opts_generation();
        if generation == self.opts_generation {
            return;
        }
        self.opts_generation = generation;
        let opts = self.state.opts();
        self.parser.max_payload = self
            .limit_payload
            .map_or(opts.max_payload, |l| l.min(opts.max_payload));
        self.parser.max_control_line = opts.max_control_line;
        self.auth_required = opts.auth.required();
        self.trace = opts.trace;
    }

    /// Executes every complete operation in `buf`; returns the bytes used.
    fn process(&mut self, buf: &[u8]) -> Result<usize, Close> {
        self.refresh_options();
        let mut pos = 0;
        loop {
            match self.parser.parse(&buf[pos..]) {
                Ok(Some((op, used))) => {
                    pos += used;
                    self.handle(op)?;
                }
                Ok(None) => return Ok(pos),
                Err(e) => return Err(self.parse_error(e)),
            }
        }
    }

    fn parse_error(&self, e: ParseError) -> Close {
        let reason = match e {
            ParseError::MaxPayload { .. } => CloseReason::MaxPayloadExceeded,
            ParseError::MaxControlLine { .. } => CloseReason::MaxControlLineExceeded,
            ParseError::UnknownOp => CloseReason::ParseError,
            _ => CloseReason::ProtocolViolation,
        };
        match e {
            ParseError::UnknownOp => {
                tracing::error!("{} - Client parser ERROR", self.client.log_prefix())
            }
            _ => tracing::error!("{} - {e}", self.client.log_prefix()),
        }
        Close(reason, e.client_error())
    }

    fn handle(&mut self, op: ClientOp<'_>) -> Result<(), Close> {
        if self.trace {
            tracing::trace!("{} - <<- [{}]", self.client.log_prefix(), op_summary(&op));
        }
        if self.auth_required
            && !self.client.connected.load(Ordering::Relaxed)
            && !matches!(op, ClientOp::Connect(_))
        {
            return Err(self.auth_violation(None));
        }
        match op {
            ClientOp::Connect(json) => self.on_connect(json),
            ClientOp::Pub {
                subject,
                reply,
                payload,
            } => {
                self.on_pub(subject, reply, None, payload);
                Ok(())
            }
            ClientOp::HPub {
                subject,
                reply,
                headers,
                payload,
            } => {
                self.on_pub(subject, reply, Some(headers), payload);
                Ok(())
            }
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => {
                self.on_sub(subject, queue, sid);
                Ok(())
            }
            ClientOp::Unsub { sid, max } => {
                self.on_unsub(sid, max);
                Ok(())
            }
            ClientOp::Ping => {
                self.client.out.send_now(encode::PONG);
                // Cluster updates (async INFO) only after the first PONG, as
                // nats-server: clients expect the PONG to come before any INFO
                // while connecting (nats-py stalls otherwise).
                if self.connect.protocol() >= 1 && self.client.connected.load(Ordering::Relaxed) {
                    self.client.async_info.store(true, Ordering::Relaxed);
                }
                // Protocol-1 clients learn their account from an INFO that
                // follows the PONG to their first PING after CONNECT.
                if !self.connect_info_sent
                    && self.connect.protocol() >= 1
                    && self.client.connected.load(Ordering::Relaxed)
                {
                    self.connect_info_sent = true;
                    let mut info = self.state.client_info(&self.client);
                    info.connect_info = true;
                    info.remote_account = self.account.name.clone();
                    self.client.out.send_now(&info.to_line());
                }
                Ok(())
            }
            ClientOp::Pong => {
                self.client.pings_out.store(0, Ordering::Relaxed);
                Ok(())
            }
            ClientOp::Ok | ClientOp::Info(_) => Ok(()),
            ClientOp::Err(_) => Err(Close(CloseReason::ClientClosed, None)),
        }
    }

    /// AUTH: logs like nats-server (`authentication error - User "a"`, the
    /// reason at debug level) and closes with `Authorization Violation`.
    fn auth_violation(&self, err: Option<crate::auth::AuthError>) -> Close {
        match err {
            Some(e) => {
                // After a reload the client is still labelled as its old user.
                let label = self
                    .auth
                    .label()
                    .map(|l| format!("{l} - "))
                    .unwrap_or_default();
                tracing::debug!("{} - {}", self.client.log_prefix(), e.reason);
                tracing::error!("{} - {label}{e}", self.client.log_prefix());
            }
            None => tracing::error!("{} - authentication error", self.client.log_prefix()),
        }
        Close(
            CloseReason::AuthenticationViolation,
            Some("Authorization Violation"),
        )
    }

    fn on_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        let connect = match ConnectOptions::from_json(json) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{} - {e}", self.client.log_prefix());
                return Err(Close(CloseReason::ProtocolViolation, None));
            }
        };
        // AUTH: authenticate and install the user's permissions, then bind
        // the account the user belongs to.
        let opts = self.state.opts();
        if self.state.operator.is_some() {
            if let Err(e) = self.login_jwt(&connect) {
                return Err(self.auth_violation(Some(e)));
            }
        } else if let Err(e) = self.auth.login(&opts, &connect, &self.client.auth) {
            return Err(self.auth_violation(Some(e)));
        }
        let account = self.auth.user().and_then(|u| u.account.clone());
        if let Some(name) = account {
            if !self.bind_account(&name) {
                tracing::error!("{} - account {name:?} not found", self.client.log_prefix());
                return Err(self.auth_violation(None));
            }
        }
        self.apply_account_limits()?;
        if !(0..=1).contains(&connect.protocol()) {
            tracing::error!("{} - invalid client protocol", self.client.log_prefix());
            return Err(Close(
                CloseReason::BadClientProtocolVersion,
                Some("invalid client protocol"),
            ));
        }
        if connect.no_responders() && !connect.headers() {
            tracing::error!(
                "{} - no responders requires headers support",
                self.client.log_prefix()
            );
            return Err(Close(
                CloseReason::NoRespondersRequiresHeaders,
                Some("no responders requires headers support"),
            ));
        }
        self.parser.headers = connect.headers();

        self.client.echo.store(connect.echo(), Ordering::Relaxed);
        self.client
            .headers
            .store(connect.headers(), Ordering::Relaxed);
        {
            let mut meta = self.client.meta.lock();
            // A JWT user (set at login) is known by its public key.
            let jwt_user = meta.jwt_user.take();
            *meta = super::ClientMeta {
                user: match (&connect.user, &jwt_user) {
                    (Some(u), _) => u.clone(),
                    (None, Some((key, _))) => key.clone(),
                    (None, None) => String::new(),
                },
                name: connect.name.clone().unwrap_or_default(),
                lang: connect.lang.clone().unwrap_or_default(),
                version: connect.version.clone().unwrap_or_default(),
                jwt_user,
            };
        }
        if !self.client.connected.swap(true, Ordering::AcqRel) {
            self.state
                .raise(|h| h.client_connected(&self.state, &self.client));
        }
        if connect.verbose() {
            self.client.out.send_now(encode::OK);
        }
        self.connect = connect;
        Ok(())
    }

    /// Operator mode: checks the client's user JWT and nonce signature, and
    /// registers the account it belongs to on first use.
    fn login_jwt(&mut self, connect: &ConnectOptions) -> Result<(), crate::auth::AuthError> {
        let fail = |e: crate::jwt::JwtError| {
            tracing::debug!("JWT authentication failed: {e}");
            crate::auth::AuthError {
                who: None,
                reason: crate::auth::Reason::JwtRejected,
            }
        };
        let Some(op) = self.state.operator.as_ref() else {
            return Err(fail(crate::jwt::JwtError::NoJwt));
        };
        let verified = crate::jwt::authenticate(
            &op.trust,
            &op.resolver,
            connect.jwt.as_deref(),
            self.client
                .auth
                .nonce()
                .ok_or(crate::jwt::JwtError::BadNonceSignature)
                .map_err(fail)?
                .as_bytes(),
            connect.sig.as_deref(),
        )
        .map_err(|e| {
            tracing::warn!(
                "{} - JWT authentication failed: {e}",
                self.client.log_prefix()
            );
            fail(e)
        })?;
        let account = crate::account::from_jwt::bind(&self.state, &verified.account);
        self.client.meta.lock().jwt_user = Some((verified.user.sub.clone(), verified.user.iat));
        let user = crate::auth::User {
            name: verified.user.sub.clone(),
            credential: crate::auth::Credential::Nkey,
            permissions: crate::jwt::to_auth_permissions(&verified.permissions),
            account: Some(account.name.clone()),
        };
        self.auth.login_as(Arc::new(user), &self.client.auth);
        self.limit_subs = crate::account::bound(verified.user.nats.subs);
        self.limit_payload = crate::account::bound(verified.user.nats.payload);
        if let Some(old) = self.expiry.take() {
            old.abort();
        }
        self.expiry = super::expiry::watch(
            &self.state,
            &self.client,
            verified.user.exp,
            verified.account.sub.clone(),
            verified.account.exp,
        );
        Ok(())
    }

    /// Counts the connection against its account's `max_connections` and
    /// takes the account's subscription and payload bounds (tighter ones
    /// from a JWT user stay).
    fn apply_account_limits(&mut self) -> Result<(), Close> {
        if !self.counted {
            if !self.account.admit_client() {
                tracing::error!(
                    "{} - maximum account active connections exceeded",
                    self.client.log_prefix()
                );
                return Err(Close(
                    CloseReason::MaxAccountConnectionsExceeded,
                    Some("maximum account active connections exceeded"),
                ));
            }
            self.counted = true;
        }
        let l = self.account.limits;
        let tighter = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        self.limit_subs = tighter(self.limit_subs, crate::account::bound(l.max_subscriptions));
        self.limit_payload = tighter(self.limit_payload, crate::account::bound(l.max_payload));
        if let Some(p) = self.limit_payload {
            self.parser.max_payload = self.parser.max_payload.min(p);
        }
        Ok(())
    }

    /// Binds the connection to `account` (before it has any subscriptions).
    fn bind_account(&mut self, name: &str) -> bool {
        let Some(account) = self.state.accounts.get(name) else {
            return false;
        };
        if !Arc::ptr_eq(&account, &self.account) {
            self.account = account.clone();
            self.client.account.store(account);
            self.cache = MatchCache::default();
        }
        true
    }

    fn on_pub(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        self.batch.counts.in_msgs += 1;
        self.batch.counts.in_bytes += (payload.len() + headers.map_or(0, <[u8]>::len)) as u64;
        if self.connect.pedantic() && !rnats_subject::is_valid_literal_subject(subject) {
            self.client
                .out
                .send_now(b"-ERR 'Invalid Publish Subject'\r\n");
        }
        // AUTH: publish permissions (free for clients without any).
        if !self.auth.may_publish(&self.client.auth, subject) {
            self.permission_violation(crate::auth::session::publish_violation(subject));
            return;
        }
        if self.connect.verbose() {
            self.client.out.send_now(encode::OK);
        }
        // Subject mappings of the account (none: no cost beyond the check).
        let mapped = self.account.map_subject(subject);
        let subject = mapped.as_deref().map_or(subject, str::as_bytes);
        let msg = Message {
            subject,
            route: None,
            reply,
            headers,
            payload,
        };
        let delivered = router::route(
            &self.state,
            &self.account,
            &mut self.cache,
            &self.client,
            &msg,
            &mut self.batch,
        );
        if !delivered && self.connect.no_responders() {
            if let Some(reply) = reply {
                router::no_responders(&self.account, &self.client, subject, reply, &mut self.batch);
            }
        }
    }

    fn on_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        // AUTH: subscribe permissions, queue groups included.
        if !self.auth.may_subscribe(subject, queue) {
            let v = crate::auth::session::subscribe_violation(subject, queue, sid);
            self.permission_violation(v);
            return;
        }
        let max_subs = match (self.state.opts().max_subscriptions, self.limit_subs) {
            (0, Some(l)) => l,
            (s, Some(l)) => s.min(l),
            (s, None) => s,
        };
        let sub = {
            let subs = self.client.subs.lock();
            if max_subs > 0 && subs.len() >= max_subs {
                drop(subs);
                tracing::error!(
                    "{} - maximum subscriptions exceeded",
                    self.client.log_prefix()
                );
                self.client
                    .out
                    .send_now(b"-ERR 'maximum subscriptions exceeded'\r\n");
                return;
            }
            if subs.contains_key(sid) {
                None
            } else {
                let sub = Subscription::new(
                    self.client.clone(),
                    self.account.clone(),
                    subject,
                    queue,
                    sid,
                );
                sub.deny_filter
                    .set(self.auth.delivery_filter(subject, queue.is_some()));
                Some(SubRef(Arc::new(sub)))
            }
        };
        if let Some(sub) = sub {
            if self.state.add_subscription(&sub).is_err() {
                self.client.out.send_now(b"-ERR 'Invalid Subject'\r\n");
                return;
            }
            self.client.subs.lock().insert(sid.into(), sub.0.clone());
        }
        if self.connect.verbose() {
            self.client.out.send_now(encode::OK);
        }
    }

    fn on_unsub(&mut self, sid: &[u8], max: Option<u64>) {
        let sub = self.client.subs.lock().get(sid).cloned();
        if let Some(sub) = sub {
            let delivered = sub.delivered.load(Ordering::Relaxed);
            match max {
                Some(m) if m > 0 && m > delivered => sub.max.store(m, Ordering::Relaxed),
                _ => self.state.remove_subscription(&SubRef(sub)),
            }
        }
        if self.connect.verbose() {
            self.client.out.send_now(encode::OK);
        }
    }

    /// AUTH: `-ERR 'Permissions Violation for ...'`; the connection stays.
    fn permission_violation(&self, v: crate::auth::session::Violation) {
        let label = self
            .auth
            .label()
            .map(|l| format!("{l} - "))
            .unwrap_or_default();
        tracing::error!("{} - {label}{}", self.client.log_prefix(), v.log);
        self.client.out.send_now(&v.err_line());
    }

    /// AUTH: after a config reload, authenticate again with the CONNECT we
    /// have (closing the client if that fails, as nats-server does) and drop
    /// subscriptions the new permissions no longer allow.
    fn recheck_auth(&mut self) -> Result<(), Close> {
        if !self.client.connected.load(Ordering::Acquire) {
            return Ok(());
        }
        let opts = self.state.opts();
        let connect = self.connect.clone();
        let result = if self.state.operator.is_some() {
            self.login_jwt(&connect)
        } else {
            self.auth.login(&opts, &connect, &self.client.auth)
        };
        if let Err(e) = result {
            return Err(self.auth_violation(Some(e)));
        }
        // A user moved to another account must reconnect to get there.
        let account = self.auth.user().and_then(|u| u.account.clone());
        if account.as_deref().unwrap_or(crate::account::GLOBAL) != self.account.name {
            return Err(self.auth_violation(None));
        }
        self.auth
            .recheck_subs(&self.state, &self.client, &self.connect);
        Ok(())
    }

    /// Removes this connection's subscriptions and registration.
    fn cleanup(&mut self) {
        if let Some(t) = self.expiry.take() {
            t.abort();
        }
        let subs: Vec<SubRef> = self
            .client
            .subs
            .lock()
            .drain()
            .map(|(_, s)| SubRef(s))
            .collect();
        if !subs.is_empty() {
            self.state.remove_subscriptions(&subs);
        }
        self.state.clients.lock().remove(&self.client.cid);
        if self.counted {
            self.account.release_client();
        }
    }
}

/// A short, printable form of an operation for protocol tracing.
fn op_summary(op: &ClientOp<'_>) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match op {
        ClientOp::Connect(j) => format!("CONNECT {}", s(j)),
        ClientOp::Pub {
            subject,
            reply,
            payload,
        } => {
            format!(
                "PUB {} {}{}",
                s(subject),
                reply.map(|r| s(r) + " ").unwrap_or_default(),
                payload.len()
            )
        }
        ClientOp::HPub {
            subject,
            reply,
            headers,
            payload,
        } => format!(
            "HPUB {} {}{} {}",
            s(subject),
            reply.map(|r| s(r) + " ").unwrap_or_default(),
            headers.len(),
            headers.len() + payload.len()
        ),
        ClientOp::Sub {
            subject,
            queue,
            sid,
        } => {
            format!(
                "SUB {} {}{}",
                s(subject),
                queue.map(|q| s(q) + " ").unwrap_or_default(),
                s(sid)
            )
        }
        ClientOp::Unsub { sid, max } => format!(
            "UNSUB {}{}",
            s(sid),
            max.map(|m| format!(" {m}")).unwrap_or_default()
        ),
        ClientOp::Ping => "PING".into(),
        ClientOp::Pong => "PONG".into(),
        ClientOp::Ok => "+OK".into(),
        ClientOp::Err(e) => format!("-ERR {}", s(e)),
        ClientOp::Info(i) => format!("INFO {}", s(i)),
    }
}
