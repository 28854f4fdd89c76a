//! rnats-core: the NATS server without its features. It accepts client
//! connections, parses and executes the protocol, routes messages through
//! each account's sublist, authenticates (users, nkeys, JWT) and keeps
//! statistics. Features (JetStream, monitoring, `$SYS`, WebSocket) live in
//! their own crates and plug in through [`hooks`].
//!
//! How one `PUB` travels: `client::conn` reads bytes and parses them with
//! `rnats_proto`; `router` looks up interest in the account's sublist (with a
//! per-connection match cache) and appends a `MSG` frame into each subscriber's
//! `client::outbound` buffer; each connection's writer task flushes its buffer
//! with one write per batch. `server` owns the listener, the connection
//! registry, lame-duck mode and shutdown.

#![forbid(unsafe_code)]

pub mod account;
pub mod auth;
pub mod client;
pub mod client_info;
pub mod closed;
pub mod config;
pub mod gofmt;
pub mod hooks;
pub mod ids;
pub mod jwt;
pub mod options;
pub mod router;
pub mod server;
pub mod stats;
pub mod subscription;
pub mod tls;

/// The nats-server version whose behaviour we match; clients gate features on it.
pub const NATS_COMPAT_VERSION: &str = "2.15.0";
/// rnats's own version.
pub const RNATS_VERSION: &str = env!("CARGO_PKG_VERSION");
