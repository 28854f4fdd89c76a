//! The NATS client protocol as nats-server 2.x speaks it, with no I/O.
//!
//! - [`parse`]: an incremental parser over the bytes a client sent. It borrows from
//!   the read buffer (no copies, no allocation) and only ever yields complete
//!   operations, so any split of the byte stream parses the same.
//! - [`encode`]: the server's frames (`MSG`, `HMSG`, `INFO`, `-ERR`, ...), appended
//!   straight into an outbound buffer.
//! - [`info`] and [`connect`]: the JSON bodies of `INFO` and `CONNECT`.
//! - [`route`]: the server <-> server protocol of cluster routes.

#![forbid(unsafe_code)]

pub mod connect;
pub mod encode;
pub mod info;
pub mod leaf;
pub mod parse;
pub mod route;

pub use connect::ConnectOptions;
pub use info::ServerInfo;
pub use parse::{ClientOp, ParseError, Parser};
