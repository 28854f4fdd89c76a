//! The server <-> server protocol of cluster routes, as nats-server 2.x
//! speaks it (route.go), with no I/O: parsing what a peer sends and encoding
//! what we send, so rnats and Go servers can share one cluster.
//!
//! A route carries `INFO`/`CONNECT` (JSON bodies in [`RouteInfo`] and
//! [`RouteConnect`]), `PING`/`PONG`, interest (`RS+ <acc> <subject> [<queue>
//! <weight>]`, `RS- <acc> <subject> [<queue>]`) and messages (`RMSG <acc>
//! <subject> [reply] <size>`, or with the queue groups the receiver must
//! serve: `RMSG <acc> <subject> + <reply> <q1> <q2> <size>` / `| <q1> <size>`;
//! `HMSG` adds a header size before the total size). On a route dedicated to
//! one account (route pooling's pinned accounts) the account is left out of
//! every protocol line; the parser is told so and reports `account: None`.
//!
//! Like the client parser it is stateless between calls and borrows from the
//! read buffer; nothing is consumed until an operation is complete.

use bytes::{BufMut, BytesMut};
use memchr::memchr;
use serde::{Deserialize, Serialize};

use crate::parse::{bad_args, is_ws, parse_size, split_args, take_payload, ParseError};

/// One operation a peer sent on a route. Slices point into the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp<'a> {
    Info(&'a [u8]),
    Connect(&'a [u8]),
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    /// `RS+`: interest in `subject` (a queue group with its member weight).
    Sub {
        account: Option<&'a [u8]>,
        subject: &'a [u8],
        queue: Option<(&'a [u8], u32)>,
    },
    /// `RS-`: no more interest.
    Unsub {
        account: Option<&'a [u8]>,
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// `LS+ <origin> ...`: interest on behalf of a leaf cluster (only sent
    /// to peers that announced `lnoc`).
    LeafSub {
        origin: &'a [u8],
        account: Option<&'a [u8]>,
        subject: &'a [u8],
        queue: Option<(&'a [u8], u32)>,
    },
    /// `LS- [<origin>] ...` (the origin only with `lnocu`).
    LeafUnsub {
        account: Option<&'a [u8]>,
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// `RMSG`/`HMSG` (and `LMSG`, whose origin is dropped): a routed message.
    Msg(RoutedMsg<'a>),
}

/// A routed message. `queues` is the space-separated list of queue groups
/// the receiver should pick a member of (empty: plain subscribers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedMsg<'a> {
    pub account: Option<&'a [u8]>,
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub queues: Vec<&'a [u8]>,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// How a route connection is parsed.
#[derive(Debug, Clone)]
pub struct RouteParser {
    /// A route dedicated to one account: protocols leave the account out.
    pub account_in_proto: bool,
    /// The peer sends the origin in `LS-` (it announced `lnocu`).
    pub leaf_unsub_origin: bool,
    /// Control lines longer than this end the connection (nats-server: 16
    /// times the client `max_control_line`).
    pub max_control_line: usize,
    /// Messages larger than this end the connection.
    pub max_payload: usize,
}

impl Default for RouteParser {
    fn default() -> Self {
        RouteParser {
            account_in_proto: true,
            leaf_unsub_origin: false,
            max_control_line: 16 * crate::parse::DEFAULT_MAX_CONTROL_LINE,
            max_payload: 64 * 1024 * 1024,
        }
    }
}

impl RouteParser {
    /// Parses one operation from the front of `buf`: the operation and how
    /// many bytes it spans, `Ok(None)` when more bytes are needed, or the
    /// error that ends the connection.
    pub fn parse<'a>(&self, buf: &'a [u8]) -> Result<Option<(RouteOp<'a>, usize)>, ParseError> {
        let Some(nl) = memchr(b'\n', buf) else {
            if buf.len() > self.max_control_line + 16 {
                return Err(ParseError::MaxControlLine {
                    len: buf.len(),
                    max: self.max_control_line,
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
        if arg.len() > self.max_control_line {
            return Err(ParseError::MaxControlLine {
                len: arg.len(),
                max: self.max_control_line,
            });
        }
        let is = |name: &[u8]| word.eq_ignore_ascii_case(name);
        let op = if is(b"RMSG") {
            return self.parse_msg(buf, arg, after, false, false);
        } else if is(b"HMSG") {
            return self.parse_msg(buf, arg, after, true, false);
        } else if is(b"LMSG") {
            return self.parse_msg(buf, arg, after, true, true);
        } else if is(b"RS+") {
            let (account, subject, queue) = self.parse_sub(arg, false)?;
            RouteOp::Sub {
                account,
                subject,
                queue,
            }
        } else if is(b"RS-") {
            let (account, subject, queue) = self.parse_unsub(arg, false)?;
            RouteOp::Unsub {
                account,
                subject,
                queue,
            }
        } else if is(b"LS+") {
            let mut parts = arg.splitn(2, |&b| is_ws(b));
            let origin = parts.next().filter(|o| !o.is_empty());
            let (Some(origin), Some(rest)) = (origin, parts.next()) else {
                return Err(bad_args("processRemoteSub Parse Error", arg));
            };
            let (account, subject, queue) = self.parse_sub(rest, false)?;
            RouteOp::LeafSub {
                origin,
                account,
                subject,
                queue,
            }
        } else if is(b"LS-") {
            let (account, subject, queue) = self.parse_unsub(arg, self.leaf_unsub_origin)?;
            RouteOp::LeafUnsub {
                account,
                subject,
                queue,
            }
        } else if is(b"PING") {
            RouteOp::Ping
        } else if is(b"PONG") {
            RouteOp::Pong
        } else if is(b"INFO") {
            RouteOp::Info(arg)
        } else if is(b"CONNECT") {
            RouteOp::Connect(arg)
        } else if is(b"+OK") {
            RouteOp::Ok
        } else if is(b"-ERR") {
            RouteOp::Err(arg)
        } else {
            return Err(ParseError::UnknownOp);
        };
        Ok(Some((op, after)))
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn parse_sub<'a>(
        &self,
        arg: &'a [u8],
        _origin: bool,
    ) -> Result<(Option<&'a [u8]>, &'a [u8], Option<(&'a [u8], u32)>), ParseError> {
        let mut a = [&arg[..0]; 4];
        let n =
            split_args(arg, &mut a).ok_or_else(|| bad_args("processRemoteSub Parse Error", arg))?;
        let skip = usize::from(self.account_in_proto);
        let account = self.account_in_proto.then_some(a[0]);
        match n.checked_sub(skip) {
            Some(1) => Ok((account, a[skip], None)),
            Some(3) => {
                let weight = parse_size(a[skip + 2]).unwrap_or(1).max(1) as u32;
                Ok((account, a[skip], Some((a[skip + 1], weight))))
            }
            _ => Err(bad_args("processRemoteSub Parse Error", arg)),
        }
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn parse_unsub<'a>(
        &self,
        arg: &'a [u8],
        origin: bool,
    ) -> Result<(Option<&'a [u8]>, &'a [u8], Option<&'a [u8]>), ParseError> {
        let mut a = [&arg[..0]; 4];
        let n = split_args(arg, &mut a)
            .ok_or_else(|| bad_args("processRemoteUnsub Parse Error", arg))?;
        let skip = usize::from(origin) + usize::from(self.account_in_proto);
        let account = self.account_in_proto.then(|| a[skip - 1]);
        match n.checked_sub(skip) {
            Some(1) => Ok((account, a[skip], None)),
            Some(2) => Ok((account, a[skip], Some(a[skip + 1]))),
            _ => Err(bad_args("processRemoteUnsub Parse Error", arg)),
        }
    }

    /// `RMSG`, `HMSG` and `LMSG` (`origin`: a leading origin cluster, and a
    /// header size always present).
    pub(crate) fn parse_msg<'a>(
        &self,
        buf: &'a [u8],
        arg: &'a [u8],
        start: usize,
        headers: bool,
        origin: bool,
    ) -> Result<Option<(RouteOp<'a>, usize)>, ParseError> {
        let what = match (headers, origin) {
            (_, true) => "processRoutedOriginClusterMsgArgs",
            (true, _) => "processRoutedHeaderMsgArgs",
            _ => "processRoutedMsgArgs",
        };
        let mut args: Vec<&'a [u8]> = arg.split(|&b| is_ws(b)).filter(|p| !p.is_empty()).collect();
        if origin && !args.is_empty() {
            args.remove(0);
        }
        let account = if self.account_in_proto {
            if args.is_empty() {
                return Err(bad_args(&format!("{what} Parse Error"), arg));
            }
            Some(args.remove(0))
        } else {
            None
        };
        // Now: subject [indicator/reply ...] [hdr] size.
        let sizes = if headers { 2 } else { 1 };
        if args.len() < 1 + sizes {
            return Err(bad_args(&format!("{what} Parse Error"), arg));
        }
        let subject = args[0];
        let middle = &args[1..args.len() - sizes];
        let (reply, queues) = match middle {
            [] => (None, Vec::new()),
            [reply] => (Some(*reply), Vec::new()),
            [ind, rest @ ..] => match *ind {
                b"+" if !rest.is_empty() => (Some(rest[0]), rest[1..].to_vec()),
                b"|" => (None, rest.to_vec()),
                _ => {
                    return Err(bad_args(
                        &format!("{what} Bad or Missing Reply Indicator"),
                        arg,
                    ))
                }
            },
        };
        let total = parse_size(args[args.len() - 1])
            .ok_or_else(|| bad_args(&format!("{what} Bad or Missing Size"), arg))?;
        let hdr = if headers {
            let h = parse_size(args[args.len() - 2])
                .ok_or_else(|| bad_args(&format!("{what} Bad or Missing Header Size"), arg))?;
            if h > total {
                return Err(bad_args(
                    &format!("{what} Header Size larger then TotalSize"),
                    arg,
                ));
            }
            Some(h)
        } else {
            None
        };
        if total > self.max_payload {
            return Err(ParseError::MaxPayload {
                size: total,
                max: self.max_payload,
            });
        }
        let Some(body) = take_payload(buf, start, total)? else {
            return Ok(None);
        };
        let (headers, payload) = match hdr {
            // An LMSG always names a header size; zero means none.
            Some(0) if origin => (None, body),
            Some(h) => (Some(&body[..h]), &body[h..]),
            None => (None, body),
        };
        let msg = RoutedMsg {
            account,
            subject,
            reply,
            queues,
            headers,
            payload,
        };
        Ok(Some((RouteOp::Msg(msg), start + total + 2)))
    }
}

/// Appends `RS+ [<acc> ]<subject>[ <queue> <weight>]\r\n`.
pub fn sub(
    out: &mut BytesMut,
    account: Option<&[u8]>,
    subject: &[u8],
    queue: Option<(&[u8], u32)>,
) {
    out.put_slice(b"RS+ ");
    if let Some(a) = account {
        out.put_slice(a);
        out.put_u8(b' ');
    }
    out.put_slice(subject);
    if let Some((q, w)) = queue {
        out.put_u8(b' ');
        out.put_slice(q);
        out.put_u8(b' ');
        out.put_slice(itoa::Buffer::new().format(w).as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Appends `RS- [<acc> ]<subject>[ <queue>]\r\n`.
pub fn unsub(out: &mut BytesMut, account: Option<&[u8]>, subject: &[u8], queue: Option<&[u8]>) {
    out.put_slice(b"RS- ");
    if let Some(a) = account {
        out.put_slice(a);
        out.put_u8(b' ');
    }
    out.put_slice(subject);
    if let Some(q) = queue {
        out.put_u8(b' ');
        out.put_slice(q);
    }
    out.put_slice(b"\r\n");
}

/// Appends a routed message: `RMSG` (or `HMSG` with headers) with the
/// account (unless the route is dedicated to it), the reply and the queue
/// groups the peer must serve, then the body.
#[allow(clippy::too_many_arguments)]
pub fn msg(
    out: &mut BytesMut,
    account: Option<&[u8]>,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[&[u8]],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let hdr_len = headers.map_or(0, <[u8]>::len);
    out.reserve(
        subject.len()
            + account.map_or(0, |a| a.len() + 1)
            + reply.map_or(0, |r| r.len() + 3)
            + queues.iter().map(|q| q.len() + 1).sum::<usize>()
            + hdr_len
            + payload.len()
            + 32,
    );
    out.put_slice(if headers.is_some() {
        b"HMSG "
    } else {
        b"RMSG "
    });
    if let Some(a) = account {
        out.put_slice(a);
        out.put_u8(b' ');
    }
    out.put_slice(subject);
    out.put_u8(b' ');
    if !queues.is_empty() {
        match reply {
            Some(r) => {
                out.put_slice(b"+ ");
                out.put_slice(r);
                out.put_u8(b' ');
            }
            None => out.put_slice(b"| "),
        }
        for q in queues {
            out.put_slice(q);
            out.put_u8(b' ');
        }
    } else if let Some(r) = reply {
        out.put_slice(r);
        out.put_u8(b' ');
    }
    let mut n = itoa::Buffer::new();
    if headers.is_some() {
        out.put_slice(n.format(hdr_len).as_bytes());
        out.put_u8(b' ');
    }
    out.put_slice(n.format(hdr_len + payload.len()).as_bytes());
    out.put_slice(b"\r\n");
    if let Some(h) = headers {
        out.put_slice(h);
    }
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Route permissions a server announces (`import`/`export`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectPermission {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// The `INFO` a server sends on a route, with nats-server's field names and
/// omission rules. Unknown fields from newer peers are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    #[serde(rename = "server_id", default)]
    pub id: String,
    #[serde(rename = "server_name", default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub proto: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    #[serde(default)]
    pub go: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub headers: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(default)]
    pub max_payload: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// `nats-route://host:port/` where peers can reach this server.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(rename = "cluster_dynamic", default, skip_serializing_if = "is_false")]
    pub dynamic: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    #[serde(rename = "ldm", default, skip_serializing_if = "is_false")]
    pub lame_duck_mode: bool,
    /// Absent: the peer does not support route compression.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub compression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lnoc: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lnocu: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub route_pool_size: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub route_pool_idx: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub route_account: String,
    #[serde(
        rename = "route_acc_add_reqid",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub route_acc_req_id: String,
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub gossip_mode: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leafnode_urls: Vec<String>,
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

impl RouteInfo {
    /// The complete `INFO {...}\r\n` line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = b"INFO ".to_vec();
        // Plain strings, numbers and bools: serializing cannot fail.
        serde_json::to_writer(&mut line, self).unwrap_or_default();
        line.extend_from_slice(b"\r\n");
        line
    }
}

/// The `CONNECT` a soliciting server sends on a route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConnect {
    #[serde(default)]
    pub echo: bool,
    #[serde(default)]
    pub verbose: bool,
    #[serde(default)]
    pub pedantic: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pass: String,
    #[serde(rename = "tls_required", default)]
    pub tls: bool,
    #[serde(default)]
    pub headers: bool,
    /// The soliciting server's id.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub cluster: String,
    #[serde(rename = "cluster_dynamic", default, skip_serializing_if = "is_false")]
    pub dynamic: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lnoc: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lnocu: bool,
    /// Set by a gateway that dialled the route port by mistake.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// Set by a client that dialled the route port by mistake.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lang: String,
}

impl RouteConnect {
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = b"CONNECT ".to_vec();
        serde_json::to_writer(&mut line, self).unwrap_or_default();
        line.extend_from_slice(b"\r\n");
        line
    }
}

/// nats-server's route pool index for an account: FNV-1a of the name
/// modulo the pool size (0 for pools of one or none), the same on every server.
pub fn pool_index(pool_size: u32, account: &str) -> u32 {
    if pool_size <= 1 {
        return 0;
    }
    let mut h: u32 = 0x811c_9dc5;
    for &b in account.as_bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h % pool_size
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(p: &RouteParser, s: &[u8]) -> RouteOp<'static> {
        let s: &'static [u8] = Box::leak(s.to_vec().into_boxed_slice());
        let (op, n) = p.parse(s).expect("parses").expect("complete");
        assert_eq!(
            n,
            s.len(),
            "consumed all of {:?}",
            String::from_utf8_lossy(s)
        );
        op
    }

    #[test]
    fn interest_lines() {
        let p = RouteParser::default();
        assert_eq!(
            one(&p, b"RS+ $G foo.>\r\n"),
            RouteOp::Sub {
                account: Some(b"$G"),
                subject: b"foo.>",
                queue: None
            }
        );
        assert_eq!(
            one(&p, b"RS+ ACC foo q 3\r\n"),
            RouteOp::Sub {
                account: Some(b"ACC"),
                subject: b"foo",
                queue: Some((b"q", 3))
            }
        );
        assert_eq!(
            one(&p, b"RS- $G foo q\r\n"),
            RouteOp::Unsub {
                account: Some(b"$G"),
                subject: b"foo",
                queue: Some(b"q")
            }
        );
        let pinned = RouteParser {
            account_in_proto: false,
            ..Default::default()
        };
        assert_eq!(
            one(&pinned, b"RS+ foo\r\n"),
            RouteOp::Sub {
                account: None,
                subject: b"foo",
                queue: None
            }
        );
        assert!(p.parse(b"RS+ $G\r\n").is_err());
        assert!(p.parse(b"RS+ $G a b\r\n").is_err());
        assert!(p.parse(b"RS- $G a b c\r\n").is_err());
    }

    #[test]
    fn messages_in_every_form() {
        let p = RouteParser::default();
        let RouteOp::Msg(m) = one(&p, b"RMSG $G foo 5\r\nhello\r\n") else {
            panic!()
        };
        assert_eq!(
            (m.account, m.subject, m.reply),
            (Some(&b"$G"[..]), &b"foo"[..], None)
        );
        assert_eq!(m.payload, b"hello");
        let RouteOp::Msg(m) = one(&p, b"RMSG $G foo _INBOX.1 2\r\nhi\r\n") else {
            panic!()
        };
        assert_eq!(m.reply, Some(&b"_INBOX.1"[..]));
        assert!(m.queues.is_empty());
        let RouteOp::Msg(m) = one(&p, b"RMSG $G foo + r q1 q2 2\r\nhi\r\n") else {
            panic!()
        };
        assert_eq!(m.reply, Some(&b"r"[..]));
        assert_eq!(m.queues, vec![&b"q1"[..], &b"q2"[..]]);
        let RouteOp::Msg(m) = one(&p, b"RMSG $G foo | q1 2\r\nhi\r\n") else {
            panic!()
        };
        assert_eq!((m.reply, m.queues.len()), (None, 1));
        let RouteOp::Msg(m) = one(&p, b"HMSG $G foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n") else {
            panic!()
        };
        assert_eq!(m.headers, Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!((m.reply, m.payload), (Some(&b"r"[..]), &b"hi"[..]));
        let RouteOp::Msg(m) = one(&p, b"LMSG LEAF $G foo | q 0 2\r\nhi\r\n") else {
            panic!()
        };
        assert_eq!((m.headers, m.queues.len()), (None, 1));
        // Partial input waits; a bad indicator or a bad size ends the route.
        assert_eq!(p.parse(b"RMSG $G foo 5\r\nhel").unwrap(), None);
        assert!(p.parse(b"RMSG $G foo x r q 2\r\nhi\r\n").is_err());
        assert!(p.parse(b"RMSG $G foo -1\r\n").is_err());
        assert!(p.parse(b"HMSG $G foo 9 2\r\nhi\r\n").is_err());
        assert!(p.parse(b"RMSG $G foo 2\r\nhiX\n").is_err());
    }

    #[test]
    fn encoders_round_trip_through_the_parser() {
        let p = RouteParser::default();
        let mut out = BytesMut::new();
        sub(&mut out, Some(b"A"), b"x.*", Some((b"q", 2)));
        unsub(&mut out, Some(b"A"), b"x.*", Some(b"q"));
        msg(
            &mut out,
            Some(b"A"),
            b"x.y",
            Some(b"r"),
            &[b"q", b"w"],
            Some(b"NATS/1.0\r\n\r\n"),
            b"p",
        );
        msg(&mut out, Some(b"A"), b"x.y", None, &[], None, b"");
        let mut buf = &out[..];
        let mut ops = Vec::new();
        while let Some((op, n)) = p.parse(buf).unwrap() {
            ops.push(format!("{op:?}"));
            buf = &buf[n..];
        }
        assert_eq!(ops.len(), 4);
        assert!(ops[2].contains("queues: [[113], [119]]"), "{}", ops[2]);
    }

    #[test]
    fn pool_index_matches_nats_server() {
        // Go's hash/fnv New32a: "a" -> 0xe40c292c, "foobar" -> 0xbf9cf968.
        assert_eq!(pool_index(1, "anything"), 0);
        assert_eq!(pool_index(0, "anything"), 0);
        assert_eq!(pool_index(1_000_000, "a"), 0xe40c_292c % 1_000_000);
        assert_eq!(pool_index(1_000_003, "foobar"), 0xbf9c_f968 % 1_000_003);
    }

    #[test]
    fn info_and_connect_bodies() {
        let info = RouteInfo {
            id: "NABC".into(),
            name: "n1".into(),
            cluster: "C".into(),
            route_pool_size: 3,
            headers: true,
            ..Default::default()
        };
        let line = info.to_line();
        let text = String::from_utf8(line).unwrap();
        assert!(text.starts_with("INFO {\"server_id\":\"NABC\",\"server_name\":\"n1\""));
        assert!(text.contains("\"route_pool_size\":3"));
        assert!(!text.contains("route_pool_idx"));
        let back: RouteInfo =
            serde_json::from_str(text.trim_start_matches("INFO ").trim_end()).unwrap();
        assert_eq!(back, info);
        let c: RouteConnect = serde_json::from_str(
            r#"{"echo":true,"verbose":false,"pedantic":false,"tls_required":false,"headers":true,"name":"NX","cluster":"C","lnoc":true,"future":1}"#,
        )
        .unwrap();
        assert!(c.lnoc && c.headers && c.name == "NX");
    }
}
