//! Owns [`ConfError`], the single error type of this crate: syntax errors,
//! variable and include failures, and typed-accessor mismatches. Every
//! variant that relates to a place in a file carries a [`Pos`] and renders as
//! `file:line:col: message`.

use std::io;
use std::path::PathBuf;

use crate::value::Pos;

/// Everything that can go wrong while reading a configuration or while
/// converting one of its values with a typed accessor.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfError {
    /// Malformed input: unexpected character, unterminated string, map,
    /// array or block, bad escape, bad number, and so on.
    #[error("{pos}: {msg}")]
    Syntax {
        /// Where the problem is (for unterminated constructs: where they open).
        pos: Pos,
        /// What was expected and what was found.
        msg: String,
    },

    /// `$NAME` is neither a key defined earlier in the same or an enclosing
    /// map nor an environment variable.
    #[error("{pos}: undefined variable '${name}': not defined earlier in this or an enclosing block, nor in the environment")]
    UndefinedVariable {
        /// Position of the reference.
        pos: Pos,
        /// The name without the `$`.
        name: String,
    },

    /// Environment variables whose values refer to each other in a loop.
    #[error("{pos}: variable reference cycle through environment variable '${name}'")]
    VariableCycle {
        /// Position of the reference.
        pos: Pos,
        /// The variable met a second time.
        name: String,
    },

    /// The value of an environment variable used as `$NAME` does not parse.
    #[error("{pos}: in the value of environment variable '${name}': {source}")]
    EnvVariable {
        /// Position of the reference.
        pos: Pos,
        /// The environment variable.
        name: String,
        /// What went wrong while parsing its value.
        source: Box<ConfError>,
    },

    /// A file includes itself, directly or through other files.
    #[error("{pos}: include cycle: {}", chain_display(.chain))]
    IncludeCycle {
        /// Position of the `include` that closes the cycle.
        pos: Pos,
        /// The files of the cycle, first and last being the same file.
        chain: Vec<PathBuf>,
    },

    /// An included file cannot be read (missing, unreadable, a directory).
    #[error("{pos}: cannot read include file '{}': {message}", .path.display())]
    Include {
        /// Position of the `include` directive.
        pos: Pos,
        /// The path as resolved against the including file's directory.
        path: PathBuf,
        /// The kind of I/O failure.
        kind: io::ErrorKind,
        /// The operating system's message.
        message: String,
    },

    /// The top-level file given to [`crate::parse_file`] cannot be read.
    #[error("cannot read config file '{}': {message}", .path.display())]
    Io {
        /// The path given.
        path: PathBuf,
        /// The kind of I/O failure.
        kind: io::ErrorKind,
        /// The operating system's message.
        message: String,
    },

    /// `include` met while includes are disabled (see
    /// [`crate::Parser::disable_includes`]).
    #[error("{pos}: include directives are disabled")]
    IncludesDisabled {
        /// Position of the `include` directive.
        pos: Pos,
    },

    /// Maps, arrays, includes and environment-variable values nested deeper
    /// than the parser's limit.
    #[error("{pos}: nesting is deeper than the limit of {limit} levels")]
    TooDeep {
        /// Where the limit was exceeded.
        pos: Pos,
        /// The limit in force.
        limit: u32,
    },

    /// A typed accessor was used on a value of another type.
    #[error("{pos}: expected {expected}, found {found}")]
    Type {
        /// Position of the value.
        pos: Pos,
        /// E.g. "an integer".
        expected: &'static str,
        /// E.g. "a string".
        found: &'static str,
    },

    /// A typed accessor got the right type but an unusable value
    /// (e.g. `as_duration` on `"5 minutes"`).
    #[error("{pos}: {msg}")]
    Invalid {
        /// Position of the value.
        pos: Pos,
        /// Why the value is unusable.
        msg: String,
    },
}

fn chain_display(chain: &[PathBuf]) -> String {
    chain
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

impl ConfError {
    /// The position the error refers to, if it refers to one.
    pub fn pos(&self) -> Option<&Pos> {
        match self {
            ConfError::Syntax { pos, .. }
            | ConfError::UndefinedVariable { pos, .. }
            | ConfError::VariableCycle { pos, .. }
            | ConfError::EnvVariable { pos, .. }
            | ConfError::IncludeCycle { pos, .. }
            | ConfError::Include { pos, .. }
            | ConfError::IncludesDisabled { pos }
            | ConfError::TooDeep { pos, .. }
            | ConfError::Type { pos, .. }
            | ConfError::Invalid { pos, .. } => Some(pos),
            ConfError::Io { .. } => None,
        }
    }

    pub(crate) fn syntax(pos: Pos, msg: impl Into<String>) -> Self {
        ConfError::Syntax {
            pos,
            msg: msg.into(),
        }
    }
}
