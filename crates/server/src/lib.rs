//! rnats-server as a library: the composition root. It parses flags
//! ([`cli`]) and the config file, sets up logging, wires the feature crates
//! (clustering, JetStream, monitoring and `$SYS`, WebSocket) onto `rnats-core`, and
//! handles signals and reloads. The binary in `main.rs` is a thin shell
//! around it.
//!
//! The feature and core modules are re-exported under their old paths
//! (`rnats_server::jwt`, `rnats_server::websocket::frame`, ...) so tests,
//! fuzz targets and tools keep one import path.

pub mod cli;
pub mod logfile;
pub mod logging;
pub mod reload;
pub mod signals;

pub use rnats_cluster as cluster;
pub use rnats_core::{
    account, auth, client, closed, config, gofmt, hooks, jwt, options, router, server, stats,
    subscription, tls, NATS_COMPAT_VERSION, RNATS_VERSION,
};
pub use rnats_gateway as gateway;
pub use rnats_jetstream as jetstream;
pub use rnats_leaf as leaf;
pub use rnats_monitor as monitor;
pub use rnats_monitor::sysacc;
pub use rnats_websocket as websocket;
