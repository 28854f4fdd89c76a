//! The leaf node protocol, as nats-server 2.x speaks it (leafnode.go), with
//! no I/O. A leaf connection is bound to one account on each side, so no
//! line names an account: interest is `LS+ <subject> [<queue> <weight>]` /
//! `LS- <subject> [<queue>]`, messages `LMSG <subject> [reply] <size>` (or
//! with the queue groups the receiver must serve: `LMSG <subject> + <reply>
//! <q1> .. <size>` / `| <q1> .. <size>`) and `HMSG` with a header size
//! before the total. The hub sends `INFO` first; the spoke answers
//! `CONNECT` ([`LeafConnect`]); the hub confirms with a second `INFO`
//! carrying `connect_info`.

use bytes::{BufMut, BytesMut};
use memchr::memchr;
use serde::{Deserialize, Serialize};

use crate::parse::{is_ws, ParseError};
use crate::route::{RouteParser, RoutedMsg};

/// One operation a leaf peer sent. Slices point into the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafOp<'a> {
    Info(&'a [u8]),
    Connect(&'a [u8]),
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    Sub {
        subject: &'a [u8],
        queue: Option<(&'a [u8], u32)>,
    },
    Unsub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// `account` is always `None`.
    Msg(RoutedMsg<'a>),
}

/// Parses a leaf connection's input (stateless between calls).
#[derive(Debug, Clone)]
pub struct LeafParser {
    inner: RouteParser,
}

impl LeafParser {
    pub fn new(max_control_line: usize, max_payload: usize) -> Self {
        LeafParser {
            inner: RouteParser {
                account_in_proto: false,
                leaf_unsub_origin: false,
                max_control_line,
                max_payload,
            },
        }
    }

    /// One operation from the front of `buf` and the bytes it spans;
    /// `Ok(None)` when more bytes are needed.
    pub fn parse<'a>(&self, buf: &'a [u8]) -> Result<Option<(LeafOp<'a>, usize)>, ParseError> {
        let max = self.inner.max_control_line;
        let Some(nl) = memchr(b'\n', buf) else {
            if buf.len() > max + 16 {
                return Err(ParseError::MaxControlLine {
                    len: buf.len(),
                    max,
                });
            }
            return Ok(None);
        };
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let line = &buf[..line_end];
        let after = nl + 1;
        let word_end = line.iter().position(|&b| is_ws(b)).unwrap_or(line.len());
        let word = &line[..word_end];
        let mut arg = &line[word_end..];
        while let Some((&b, rest)) = arg.split_first() {
            if !is_ws(b) {
                break;
            }
            arg = rest;
        }
        let is = |name: &[u8]| word.eq_ignore_ascii_case(name);
        let wrap = |r: Result<Option<(crate::route::RouteOp<'a>, usize)>, ParseError>| {
            r.map(|o| {
                o.map(|(op, n)| match op {
                    crate::route::RouteOp::Msg(m) => (LeafOp::Msg(m), n),
                    _ => (LeafOp::Ok, n),
                })
            })
        };
        let op = if is(b"LMSG") {
            return wrap(self.inner.parse_msg(buf, arg, after, false, false));
        } else if is(b"HMSG") {
            return wrap(self.inner.parse_msg(buf, arg, after, true, false));
        } else if is(b"LS+") {
            let (_, subject, queue) = self.inner.parse_sub(arg, false)?;
            LeafOp::Sub { subject, queue }
        } else if is(b"LS-") {
            let (_, subject, queue) = self.inner.parse_unsub(arg, false)?;
            LeafOp::Unsub { subject, queue }
        } else if is(b"PING") {
            LeafOp::Ping
        } else if is(b"PONG") {
            LeafOp::Pong
        } else if is(b"INFO") {
            LeafOp::Info(arg)
        } else if is(b"CONNECT") {
            LeafOp::Connect(arg)
        } else if is(b"+OK") {
            LeafOp::Ok
        } else if is(b"-ERR") {
            LeafOp::Err(arg)
        } else {
            return Err(ParseError::UnknownOp);
        };
        Ok(Some((op, after)))
    }
}

/// Appends `LS+ <subject>[ <queue> <weight>]\r\n`.
pub fn sub(out: &mut BytesMut, subject: &[u8], queue: Option<(&[u8], u32)>) {
    out.put_slice(b"LS+ ");
    out.put_slice(subject);
    if let Some((q, w)) = queue {
        out.put_u8(b' ');
        out.put_slice(q);
        out.put_u8(b' ');
        out.put_slice(itoa::Buffer::new().format(w).as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Appends `LS- <subject>[ <queue>]\r\n`.
pub fn unsub(out: &mut BytesMut, subject: &[u8], queue: Option<&[u8]>) {
    out.put_slice(b"LS- ");
    out.put_slice(subject);
    if let Some(q) = queue {
        out.put_u8(b' ');
        out.put_slice(q);
    }
    out.put_slice(b"\r\n");
}

/// Appends a message for a leaf: `LMSG` (or `HMSG` with headers) with the
/// reply and the queue groups the peer must serve, then the body.
pub fn msg(
    out: &mut BytesMut,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[&[u8]],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let start = out.len();
    crate::route::msg(out, None, subject, reply, queues, headers, payload);
    if headers.is_none() {
        // The route encoder wrote `RMSG`; a leaf reads `LMSG`.
        out[start] = b'L';
    }
}

/// A JetStream delivery travels to its inbox with the message's own subject
/// after an `@` in the `$JS.ACK...` reply (nats-server does this across
/// routes and leaf connections alike): where that `@` is, after at least 8
/// dots.
pub fn js_ack_deliver_idx(reply: &[u8]) -> Option<usize> {
    if !reply.starts_with(b"$JS.ACK.") {
        return None;
    }
    let mut dots = 0;
    for (i, &b) in reply.iter().enumerate() {
        match b {
            b'.' => dots += 1,
            b'@' if dots >= 8 => return Some(i),
            _ => {}
        }
    }
    None
}

/// A permission list as nats-server sends it in a leaf `INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafPermission {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// The `INFO` a hub sends on its leaf node port (nats-server's `Info`, the
/// fields leaf connections use).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeafInfo {
    #[serde(rename = "server_id", default)]
    pub id: String,
    #[serde(rename = "server_name", default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub proto: i32,
    #[serde(rename = "go", default)]
    pub go_version: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub headers: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
    #[serde(default)]
    pub max_payload: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jetstream: bool,
    #[serde(rename = "client_id", default, skip_serializing_if = "is_zero")]
    pub cid: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connect_info: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    #[serde(
        rename = "acc_is_sys",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub is_system_account: bool,
    #[serde(rename = "api_lvl", default, skip_serializing_if = "is_zero_i")]
    pub api_level: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<LeafPermission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<LeafPermission>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub info_on_connect: bool,
    /// `None` when absent: a Go spoke takes a leaf INFO without it as a
    /// connection to the wrong port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leafnode_urls: Option<Vec<String>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i(n: &i32) -> bool {
    *n == 0
}

impl LeafInfo {
    /// `INFO {...}\r\n`.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = b"INFO ".to_vec();
        v.extend_from_slice(&serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec()));
        v.extend_from_slice(b"\r\n");
        v
    }
}

/// The `CONNECT` a spoke sends (nats-server's `leafConnectInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeafConnect {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nkey: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwt: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sig: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pass: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_token: String,
    #[serde(
        rename = "server_id",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "is_hub", default, skip_serializing_if = "std::ops::Not::not")]
    pub hub: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headers: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jetstream: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_pub: Vec<String>,
    #[serde(
        rename = "compress_mode",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub compression: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    #[serde(rename = "protocol", default, skip_serializing_if = "is_zero_i")]
    pub proto: i32,
    /// Set by clients only: a client on the leaf port.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lang: String,
}

impl LeafConnect {
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = b"CONNECT ".to_vec();
        v.extend_from_slice(&serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec()));
        v.extend_from_slice(b"\r\n");
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> LeafOp<'_> {
        LeafParser::new(4096, 1 << 20)
            .parse(buf)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn parses_leaf_frames() {
        assert_eq!(
            one(b"LS+ foo q 3\r\n"),
            LeafOp::Sub {
                subject: b"foo",
                queue: Some((b"q", 3))
            }
        );
        assert_eq!(
            one(b"LS- foo\r\n"),
            LeafOp::Unsub {
                subject: b"foo",
                queue: None
            }
        );
        let LeafOp::Msg(m) = one(b"LMSG foo + r q1 q2 2\r\nhi\r\n") else {
            panic!()
        };
        assert_eq!(
            (m.subject, m.reply, m.queues, m.payload),
            (
                &b"foo"[..],
                Some(&b"r"[..]),
                vec![&b"q1"[..], b"q2"],
                &b"hi"[..]
            )
        );
        let LeafOp::Msg(m) = one(b"HMSG foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n") else {
            panic!()
        };
        assert_eq!(m.headers, Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!(m.payload, b"hi");
    }

    #[test]
    fn encodes_lmsg() {
        let mut b = BytesMut::new();
        msg(&mut b, b"foo", Some(b"r"), &[b"q"], None, b"hi");
        assert_eq!(&b[..], b"LMSG foo + r q 2\r\nhi\r\n");
        let mut b = BytesMut::new();
        sub(&mut b, b"foo", Some((b"q", 2)));
        assert_eq!(&b[..], b"LS+ foo q 2\r\n");
    }
}
