//! rnats-server as a library: the binary in `main.rs` is a thin shell around it.
//!
//! How one `PUB` travels: `client::conn` reads bytes and parses them with
//! `rnats_proto`; `router` looks up interest in the account's sublist (with a
//! per-connection match cache) and appends a `MSG` frame into each subscriber's
//! `client::outbound` buffer; each connection's writer task flushes its buffer
//! with one write per batch. `server` owns the listener, the connection
//! registry, lame-duck mode and shutdown.

pub mod account;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod jetstream;
pub mod jwt;
pub mod logfile;
pub mod logging;
pub mod monitor;
pub mod options;
pub mod reload;
pub mod router;
pub mod server;
pub mod signals;
pub mod stats;
pub mod subscription;
pub mod sysacc;
pub mod tls;
pub mod websocket;

/// The nats-server version whose behaviour we match; clients gate features on it.
pub const NATS_COMPAT_VERSION: &str = "2.15.0";
/// rnats's own version.
pub const RNATS_VERSION: &str = env!("CARGO_PKG_VERSION");
