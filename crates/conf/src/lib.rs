//! Parser for the nats-server configuration file language.
//!
//! This crate reads the files nats-server users already have; it knows
//! nothing about what the keys mean. The language, as implemented by
//! nats-server's `conf` package and reproduced here:
//!
//! - Comments start with `#` or `//` and run to the end of the line.
//! - Entries are `key = value`, `key: value` or `key value`, separated by
//!   newlines, `;` or `,`. Keys may be quoted (`"a b"` or `'a b'`). A key
//!   defined twice in one map: the later value wins.
//! - Maps are `{ ... }`; the top level is an implicit map, which may itself be
//!   wrapped in braces, so JSON files parse too. Arrays are `[ ... ]` with
//!   elements separated by commas or newlines; a trailing comma is allowed.
//! - Strings are `"double quoted"` (escapes `\t \n \r \" \\ \xHH`),
//!   `'single quoted'` (no escapes), unquoted (running to white space, `,`,
//!   `;`, `]` or `}`), or block strings: `(` then lines of raw text up to a
//!   `)` alone at the start of a line.
//! - `true`/`false`/`yes`/`no`/`on`/`off` (any case, unquoted) are booleans.
//! - Integers may carry a size suffix, case-insensitive: `k`, `m`, `g`, `t`,
//!   `p`, `e` are powers of 1000; `kb`/`ki`/`kib` (and likewise for the
//!   others) are powers of 1024. So `1k` = 1000 and `1KB` = 1024.
//! - Floats are `digits.digits`. `1.2.3.4` and `127.0.0.1:4222` are strings.
//! - Date-times are `YYYY-MM-DDTHH:MM:SSZ`.
//! - Durations are not a separate type: `10s` and `"1h30m"` are strings (but
//!   `2m` is the integer 2000000). See [`Spanned::as_duration`].
//! - `$NAME` (unquoted) refers to a key defined earlier in the same or an
//!   enclosing map, else to the environment variable `NAME`, whose text is
//!   parsed as a value. An undefined variable is an error. `${NAME}` is not
//!   variable syntax.
//! - `include path` (path bare or quoted) merges the keys of another file into
//!   the current map; the path is relative to the including file's directory.
//!
//! ```
//! use std::time::Duration;
//!
//! let conf = rnats_conf::parse_str(r#"
//!     # Server settings
//!     port: 4222
//!     max_payload = 1MB
//!     ping_interval "2m"
//!     jetstream {
//!         store_dir: /data/nats
//!         max_memory_store: 1G
//!     }
//!     PASS: s3cr3t
//!     authorization { users = [ { user: alice, password: $PASS } ] }
//! "#).unwrap();
//!
//! assert_eq!(conf.get("port").unwrap().as_int().unwrap(), 4222);
//! assert_eq!(conf.get("max_payload").unwrap().as_int().unwrap(), 1024 * 1024);
//! assert_eq!(conf.get("ping_interval").unwrap().as_duration().unwrap(), Duration::from_secs(120));
//! let js = conf.get("jetstream").unwrap().as_map().unwrap();
//! assert_eq!(js.get("max_memory_store").unwrap().as_size().unwrap(), 1_000_000_000);
//! let users = conf.get("authorization").unwrap().as_map().unwrap().get("users").unwrap();
//! let alice = users.as_array().unwrap()[0].as_map().unwrap();
//! assert_eq!(alice.get("password").unwrap().as_str().unwrap(), "s3cr3t");
//!
//! let err = rnats_conf::parse_str("a {\n  b = \n}").unwrap_err();
//! assert_eq!(err.to_string(), "<string>:3:1: expected a value for key 'b', found '}'");
//! ```

#![forbid(unsafe_code)]

mod duration;
mod error;
mod lexer;
mod parser;
mod value;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use duration::parse_duration;
pub use error::ConfError;
pub use parser::Parser;
pub use value::{DateTime, Entry, Map, Pos, Spanned, Value};

/// Parses configuration text with default settings: variables fall back to
/// the process environment and `include` paths are relative to the current
/// directory.
pub fn parse_str(src: &str) -> Result<Map, ConfError> {
    Parser::new().parse_str(src)
}

/// Reads and parses a configuration file with default settings; `include`
/// paths are relative to the file's directory.
pub fn parse_file(path: impl AsRef<Path>) -> Result<Map, ConfError> {
    Parser::new().parse_file(path)
}
