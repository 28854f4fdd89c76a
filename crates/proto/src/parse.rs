//! The client -> server half of the protocol: turning bytes into [`ClientOp`]s.
//!
//! The parser is stateless between calls: it looks at the unconsumed bytes of a
//! read buffer, and either yields one complete operation together with the number
//! of bytes it used, or says it needs more. Operations borrow from the buffer, so
//! the hot path (`PUB` -> route -> copy into subscribers' outbound buffers) never
//! allocates. Because nothing is consumed until an operation is complete, every
//! split of the same byte stream yields the same operations.
//!
//! Errors follow nats-server: some are reported to the client with an `-ERR`
//! before the connection closes ([`ParseError::client_error`]), others close it
//! silently (bad argument counts, bad sizes, bad `CONNECT` JSON).

use memchr::memchr;

/// nats-server's default `max_control_line`.
pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
/// nats-server's default `max_payload` (1 MiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// One operation sent by a client. Slices point into the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp<'a> {
    /// `CONNECT <json>`: the raw JSON, decoded by [`crate::ConnectOptions::from_json`].
    Connect(&'a [u8]),
    /// `PUB <subject> [reply] <size>` and its payload.
    Pub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        payload: &'a [u8],
    },
    /// `HPUB <subject> [reply] <hdr size> <total size>`: `headers` is the
    /// `NATS/1.0` block (with its blank line), `payload` follows it.
    HPub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        headers: &'a [u8],
        payload: &'a [u8],
    },
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max]`: `max` is `None` when absent or not a valid number,
    /// which (as in nats-server) means "unsubscribe now".
    Unsub {
        sid: &'a [u8],
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// `+OK` from a client: ignored by the server.
    Ok,
    /// `-ERR` from a client: the server closes the connection.
    Err(&'a [u8]),
    /// `INFO` from a client: ignored by the server.
    Info(&'a [u8]),
}

/// Why a byte stream could not be parsed. Every variant ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown protocol operation")]
    UnknownOp,
    #[error("maximum control line exceeded: {len} vs {max}")]
    MaxControlLine { len: usize, max: usize },
    #[error("maximum payload exceeded: {size} vs {max}")]
    MaxPayload { size: usize, max: usize },
    #[error("message headers not supported")]
    HeadersNotSupported,
    /// Wrong argument count or a malformed size; the text is for the log.
    #[error("{0}")]
    BadArgs(String),
}

impl ParseError {
    /// The `-ERR` text nats-server sends for this error, or `None` when it
    /// closes the connection without one.
    pub fn client_error(&self) -> Option<&'static str> {
        match self {
            ParseError::UnknownOp => Some("Unknown Protocol Operation"),
            ParseError::MaxControlLine { .. } => Some("maximum control line exceeded"),
            ParseError::MaxPayload { .. } => Some("Maximum Payload Violation"),
            ParseError::HeadersNotSupported | ParseError::BadArgs(_) => None,
        }
    }
}

/// The limits a parser enforces; the server updates `headers` after `CONNECT`.
#[derive(Debug, Clone)]
pub struct Parser {
    pub max_payload: usize,
    pub max_control_line: usize,
    /// Whether `HPUB` is allowed (the client asked for headers in `CONNECT`).
    pub headers: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            headers: false,
        }
    }
}

/// The operations a client may send, in the order we test for them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verb {
    Pub,
    HPub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Ok,
    Err,
    Info,
}

const VERBS: &[(&[u8], Verb)] = &[
    (b"PUB", Verb::Pub),
    (b"HPUB", Verb::HPub),
    (b"SUB", Verb::Sub),
    (b"UNSUB", Verb::Unsub),
    (b"PING", Verb::Ping),
    (b"PONG", Verb::Pong),
    (b"CONNECT", Verb::Connect),
    (b"+OK", Verb::Ok),
    (b"-ERR", Verb::Err),
    (b"INFO", Verb::Info),
];

pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl Parser {
    /// Parses one operation from the front of `buf`.
    ///
    /// Returns the operation and how many bytes it spans, `Ok(None)` when `buf`
    /// holds only part of an operation, or the error that ends the connection.
    pub fn parse<'a>(&self, buf: &'a [u8]) -> Result<Option<(ClientOp<'a>, usize)>, ParseError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let Some(nl) = memchr(b'\n', buf) else {
            return self.check_partial_line(buf).map(|()| None);
        };
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let line = &buf[..line_end];
        let after_line = nl + 1;

        let word_end = line.iter().position(|&b| is_ws(b)).unwrap_or(line.len());
        let verb = lookup_verb(&line[..word_end]).ok_or(ParseError::UnknownOp)?;
        let has_ws = word_end < line.len();
        let mut arg = &line[word_end..];
        while let Some((&b, rest)) = arg.split_first() {
            if !is_ws(b) {
                break;
            }
            arg = rest;
        }
        if arg.len() > self.max_control_line {
            return Err(ParseError::MaxControlLine {
                len: arg.len(),
                max: self.max_control_line,
            });
        }

        let op = match verb {
            Verb::Ping => ClientOp::Ping,
            Verb::Pong => ClientOp::Pong,
            Verb::Ok => ClientOp::Ok,
            Verb::Err => ClientOp::Err(arg),
            Verb::Info => ClientOp::Info(arg),
            // A bare CONNECT is an empty (invalid) JSON body, not a parse error.
            Verb::Connect => ClientOp::Connect(arg),
            _ if !has_ws => return Err(ParseError::UnknownOp),
            Verb::Sub => parse_sub(arg)?,
            Verb::Unsub => parse_unsub(arg)?,
            Verb::Pub => return self.parse_pub(buf, arg, after_line),
            Verb::HPub => return self.parse_hpub(buf, arg, after_line),
        };
        Ok(Some((op, after_line)))
    }

    /// A line without its newline yet: reject it early if it cannot become a
    /// valid operation or has grown past the control-line limit.
    fn check_partial_line(&self, buf: &[u8]) -> Result<(), ParseError> {
        let word_end = buf.iter().position(|&b| is_ws(b) || b == b'\r');
        let word = &buf[..word_end.unwrap_or(buf.len())];
        let possible = VERBS.iter().any(|(name, _)| {
            if word_end.is_some() {
                name.eq_ignore_ascii_case(word)
            } else {
                word.len() <= name.len() && name[..word.len()].eq_ignore_ascii_case(word)
            }
        });
        if !possible {
            return Err(ParseError::UnknownOp);
        }
        // Measure what the complete line's argument would be measured as, so
        // that refusing early agrees with refusing once the line is complete.
        let mut arg = &buf[word_end.unwrap_or(buf.len())..];
        while let Some((&b, rest)) = arg.split_first() {
            if !is_ws(b) {
                break;
            }
            arg = rest;
        }
        let arg_len = arg.len() - usize::from(arg.last() == Some(&b'\r'));
        if arg_len > self.max_control_line {
            return Err(ParseError::MaxControlLine {
                len: arg_len,
                max: self.max_control_line,
            });
        }
        Ok(())
    }

    fn parse_pub<'a>(
        &self,
        buf: &'a [u8],
        arg: &'a [u8],
        start: usize,
    ) -> Result<Option<(ClientOp<'a>, usize)>, ParseError> {
        let mut args = [&arg[..0]; 3];
        let (subject, reply, size) = match split_args(arg, &mut args) {
            Some(2) => (args[0], None, args[1]),
            Some(3) => (args[0], Some(args[1]), args[2]),
            _ => return Err(bad_args("processPub Parse Error", arg)),
        };
        let size =
            parse_size(size).ok_or_else(|| bad_args("processPub Bad or Missing Size", arg))?;
        if size > self.max_payload {
            return Err(ParseError::MaxPayload {
                size,
                max: self.max_payload,
            });
        }
        let Some(payload) = take_payload(buf, start, size)? else {
            return Ok(None);
        };
        let op = ClientOp::Pub {
            subject,
            reply,
            payload,
        };
        Ok(Some((op, start + size + 2)))
    }

    fn parse_hpub<'a>(
        &self,
        buf: &'a [u8],
        arg: &'a [u8],
        start: usize,
    ) -> Result<Option<(ClientOp<'a>, usize)>, ParseError> {
        if !self.headers {
            return Err(ParseError::HeadersNotSupported);
        }
        let mut args = [&arg[..0]; 4];
        let (subject, reply, hdr, total) = match split_args(arg, &mut args) {
            Some(3) => (args[0], None, args[1], args[2]),
            Some(4) => (args[0], Some(args[1]), args[2], args[3]),
            _ => return Err(bad_args("processHeaderPub Parse Error", arg)),
        };
        let hdr = parse_size(hdr)
            .ok_or_else(|| bad_args("processHeaderPub Bad or Missing Header Size", arg))?;
        let total = parse_size(total)
            .ok_or_else(|| bad_args("processHeaderPub Bad or Missing Total Size", arg))?;
        if hdr > total {
            return Err(bad_args(
                "processHeaderPub Header Size larger then TotalSize",
                arg,
            ));
        }
        if total > self.max_payload {
            return Err(ParseError::MaxPayload {
                size: total,
                max: self.max_payload,
            });
        }
        let Some(msg) = take_payload(buf, start, total)? else {
            return Ok(None);
        };
        let (headers, payload) = msg.split_at(hdr);
        let op = ClientOp::HPub {
            subject,
            reply,
            headers,
            payload,
        };
        Ok(Some((op, start + total + 2)))
    }
}

fn lookup_verb(word: &[u8]) -> Option<Verb> {
    VERBS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|&(_, v)| v)
}

fn parse_sub(arg: &[u8]) -> Result<ClientOp<'_>, ParseError> {
    let mut args = [&arg[..0]; 3];
    match split_args(arg, &mut args) {
        Some(2) => Ok(ClientOp::Sub {
            subject: args[0],
            queue: None,
            sid: args[1],
        }),
        Some(3) => Ok(ClientOp::Sub {
            subject: args[0],
            queue: Some(args[1]),
            sid: args[2],
        }),
        _ => Err(bad_args("processSub Parse Error", arg)),
    }
}

fn parse_unsub(arg: &[u8]) -> Result<ClientOp<'_>, ParseError> {
    let mut args = [&arg[..0]; 2];
    match split_args(arg, &mut args) {
        Some(1) => Ok(ClientOp::Unsub {
            sid: args[0],
            max: None,
        }),
        Some(2) => Ok(ClientOp::Unsub {
            sid: args[0],
            max: parse_size(args[1]).map(|n| n as u64),
        }),
        _ => Err(bad_args("processUnsub Parse Error", arg)),
    }
}

/// The payload of `size` bytes starting at `start`, which must be followed by
/// `\r\n`; `None` until all of it has arrived.
pub(crate) fn take_payload(
    buf: &[u8],
    start: usize,
    size: usize,
) -> Result<Option<&[u8]>, ParseError> {
    let end = start + size;
    // Check each terminator byte as soon as it arrives, as nats-server does.
    match buf.get(end) {
        None => return Ok(None),
        Some(b'\r') => {}
        Some(_) => return Err(ParseError::UnknownOp),
    }
    match buf.get(end + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(&buf[start..end])),
        Some(_) => Err(ParseError::UnknownOp),
    }
}

/// Splits on spaces and tabs into `out`; returns the count, or `None` when
/// there are more arguments than `out` holds (or none at all).
pub(crate) fn split_args<'a>(arg: &'a [u8], out: &mut [&'a [u8]]) -> Option<usize> {
    let mut n = 0;
    for part in arg.split(|&b| is_ws(b)).filter(|p| !p.is_empty()) {
        *out.get_mut(n)? = part;
        n += 1;
    }
    (n > 0).then_some(n)
}

/// A decimal size as nats-server reads it: 1 to 9 ASCII digits, nothing else.
pub fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > 9 {
        return None;
    }
    d.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + (b - b'0') as usize)
    })
}

pub(crate) fn bad_args(what: &str, arg: &[u8]) -> ParseError {
    ParseError::BadArgs(format!("{what}: {:?}", String::from_utf8_lossy(arg)))
}

#[cfg(test)]
mod tests;
