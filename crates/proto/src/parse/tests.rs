//! Parser tests: every operation, the nats-server error classes, and a property
//! test that any split of a byte stream parses to the same operations.

use super::*;
use proptest::prelude::*;

fn parser() -> Parser {
    Parser {
        headers: true,
        ..Parser::default()
    }
}

/// Parses every complete operation in `buf` (owned copies, for comparison).
fn parse_all(p: &Parser, mut buf: &[u8]) -> (Vec<String>, Option<ParseError>, usize) {
    let mut ops = Vec::new();
    let mut used = 0;
    loop {
        match p.parse(buf) {
            Ok(Some((op, n))) => {
                ops.push(format!("{op:?}"));
                buf = &buf[n..];
                used += n;
            }
            Ok(None) => return (ops, None, used),
            Err(e) => return (ops, Some(e), used),
        }
    }
}

fn one(input: &[u8]) -> Result<Option<(ClientOp<'_>, usize)>, ParseError> {
    parser().parse(input)
}

#[test]
fn pub_with_and_without_reply() {
    let (op, n) = one(b"PUB foo 5\r\nhello\r\nrest").unwrap().unwrap();
    assert_eq!(
        op,
        ClientOp::Pub {
            subject: b"foo",
            reply: None,
            payload: b"hello"
        }
    );
    assert_eq!(n, 18);
    let (op, _) = one(b"pub foo\tbar  2\r\nhi\r\n").unwrap().unwrap();
    assert_eq!(
        op,
        ClientOp::Pub {
            subject: b"foo",
            reply: Some(b"bar"),
            payload: b"hi"
        }
    );
}

#[test]
fn payload_may_contain_crlf_and_be_empty() {
    let (op, _) = one(b"PUB a 4\r\n\r\n\r\n\r\n").unwrap().unwrap();
    assert_eq!(
        op,
        ClientOp::Pub {
            subject: b"a",
            reply: None,
            payload: b"\r\n\r\n"
        }
    );
    let (op, n) = one(b"PUB a 0\r\n\r\n").unwrap().unwrap();
    assert_eq!(
        op,
        ClientOp::Pub {
            subject: b"a",
            reply: None,
            payload: b""
        }
    );
    assert_eq!(n, 11);
}

#[test]
fn hpub_splits_headers_from_payload() {
    let msg = b"HPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
    let (op, n) = one(msg).unwrap().unwrap();
    assert_eq!(
        op,
        ClientOp::HPub {
            subject: b"foo",
            reply: Some(b"r"),
            headers: b"NATS/1.0\r\n\r\n",
            payload: b"hi"
        }
    );
    assert_eq!(n, msg.len());
}

#[test]
fn hpub_needs_headers_enabled() {
    let p = Parser::default();
    assert_eq!(
        p.parse(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
        Err(ParseError::HeadersNotSupported)
    );
}

#[test]
fn hpub_header_larger_than_total_is_bad() {
    assert!(matches!(
        one(b"HPUB foo 30 2\r\nhi\r\n"),
        Err(ParseError::BadArgs(_))
    ));
}

#[test]
fn sub_unsub_and_simple_ops() {
    assert_eq!(
        one(b"SUB foo.* q 7\r\n").unwrap().unwrap().0,
        ClientOp::Sub {
            subject: b"foo.*",
            queue: Some(b"q"),
            sid: b"7"
        }
    );
    assert_eq!(
        one(b"sub  foo   1  \r\n").unwrap().unwrap().0,
        ClientOp::Sub {
            subject: b"foo",
            queue: None,
            sid: b"1"
        }
    );
    assert_eq!(
        one(b"UNSUB 1 10\r\n").unwrap().unwrap().0,
        ClientOp::Unsub {
            sid: b"1",
            max: Some(10)
        }
    );
    assert_eq!(
        one(b"UNSUB 1 x\r\n").unwrap().unwrap().0,
        ClientOp::Unsub {
            sid: b"1",
            max: None
        }
    );
    assert_eq!(one(b"PING\r\n").unwrap().unwrap(), (ClientOp::Ping, 6));
    assert_eq!(one(b"pong\n").unwrap().unwrap(), (ClientOp::Pong, 5));
    assert_eq!(one(b"+OK\r\n").unwrap().unwrap().0, ClientOp::Ok);
    assert_eq!(
        one(b"-ERR 'x'\r\n").unwrap().unwrap().0,
        ClientOp::Err(b"'x'")
    );
    assert_eq!(
        one(b"CONNECT {\"verbose\":false}\r\n").unwrap().unwrap().0,
        ClientOp::Connect(b"{\"verbose\":false}")
    );
}

#[test]
fn errors_match_nats_server_classes() {
    assert_eq!(one(b"FOO BAR\r\n"), Err(ParseError::UnknownOp));
    assert_eq!(one(b"\r\n"), Err(ParseError::UnknownOp));
    assert_eq!(one(b"MSG foo 1 2\r\nhi\r\n"), Err(ParseError::UnknownOp));
    assert_eq!(one(b"UNSUB\r\n"), Err(ParseError::UnknownOp));
    assert_eq!(one(b"PUB\r\n"), Err(ParseError::UnknownOp));
    // The payload must be followed by CRLF.
    assert_eq!(one(b"PUB foo 2\r\nhello\r\n"), Err(ParseError::UnknownOp));
    assert_eq!(one(b"PUB foo 2\r\nhi\nPING\n"), Err(ParseError::UnknownOp));
    assert!(matches!(one(b"PUB foo\r\n"), Err(ParseError::BadArgs(_))));
    assert!(matches!(one(b"PUB foo x\r\n"), Err(ParseError::BadArgs(_))));
    assert!(matches!(
        one(b"PUB foo -1\r\n"),
        Err(ParseError::BadArgs(_))
    ));
    assert!(matches!(one(b"PUB  2\r\n"), Err(ParseError::BadArgs(_))));
    assert!(matches!(one(b"SUB foo\r\n"), Err(ParseError::BadArgs(_))));
    assert!(matches!(
        one(b"SUB a b c d\r\n"),
        Err(ParseError::BadArgs(_))
    ));
    assert_eq!(
        one(b"PUB foo 99999999\r\n"),
        Err(ParseError::MaxPayload {
            size: 99999999,
            max: DEFAULT_MAX_PAYLOAD
        })
    );
    let mut long = b"SUB ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 5000));
    long.extend(b" 1\r\n");
    assert!(matches!(one(&long), Err(ParseError::MaxControlLine { .. })));
    // Without its newline yet, a long line is refused before it is complete.
    assert!(matches!(
        one(&long[..4200]),
        Err(ParseError::MaxControlLine { .. })
    ));
}

#[test]
fn garbage_is_rejected_before_its_newline() {
    assert_eq!(one(b"GET / HTTP/1.1"), Err(ParseError::UnknownOp));
    assert_eq!(one(b"PUBLISH foo"), Err(ParseError::UnknownOp));
    assert_eq!(one(b"PU").unwrap(), None);
    assert_eq!(one(b"pub foo 3").unwrap(), None);
}

#[test]
fn lf_only_control_lines_are_accepted() {
    let (ops, err, _) = parse_all(&parser(), b"SUB foo 1\nPING\n");
    assert_eq!(ops.len(), 2);
    assert_eq!(err, None);
}

#[test]
fn incomplete_payload_waits() {
    assert_eq!(one(b"PUB foo 5\r\nhel").unwrap(), None);
    assert_eq!(one(b"PUB foo 5\r\nhello").unwrap(), None);
    assert_eq!(one(b"PUB foo 5\r\nhello\r").unwrap(), None);
}

#[test]
fn parse_size_rules() {
    assert_eq!(parse_size(b"0"), Some(0));
    assert_eq!(parse_size(b"123456789"), Some(123456789));
    assert_eq!(parse_size(b"1234567890"), None);
    assert_eq!(parse_size(b""), None);
    assert_eq!(parse_size(b"+1"), None);
}

fn arb_op() -> impl Strategy<Value = Vec<u8>> {
    let subject = "[a-z]{1,6}(\\.[a-z*>]{1,4}){0,3}";
    prop_oneof![
        (
            subject,
            proptest::option::of("[A-Z_]{1,8}"),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(s, r, p)| {
                let mut v = match r {
                    Some(r) => format!("PUB {s} {r} {}\r\n", p.len()).into_bytes(),
                    None => format!("PUB {s} {}\r\n", p.len()).into_bytes(),
                };
                v.extend(p);
                v.extend(b"\r\n");
                v
            }),
        (subject, proptest::collection::vec(any::<u8>(), 0..32)).prop_map(|(s, p)| {
            let hdr = b"NATS/1.0\r\nA: b\r\n\r\n";
            let mut v = format!("HPUB {s} {} {}\r\n", hdr.len(), hdr.len() + p.len()).into_bytes();
            v.extend(hdr);
            v.extend(p);
            v.extend(b"\r\n");
            v
        }),
        (subject, "[0-9]{1,4}").prop_map(|(s, sid)| format!("SUB {s} {sid}\r\n").into_bytes()),
        (subject, "[0-9]{1,4}").prop_map(|(s, sid)| format!("sub {s} q {sid}\n").into_bytes()),
        "[0-9]{1,4}".prop_map(|sid| format!("UNSUB {sid} 3\r\n").into_bytes()),
        Just(b"PING\r\n".to_vec()),
        Just(b"PONG\r\n".to_vec()),
        Just(b"CONNECT {\"verbose\":false}\r\n".to_vec()),
    ]
}

proptest! {
    /// Feeding the stream in arbitrary chunks, as reads would deliver it,
    /// yields exactly the operations of parsing it whole.
    #[test]
    fn any_split_parses_the_same(
        ops in proptest::collection::vec(arb_op(), 1..20),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let stream: Vec<u8> = ops.concat();
        let p = parser();
        let (whole, err, used) = parse_all(&p, &stream);
        prop_assert_eq!(err, None);
        prop_assert_eq!(used, stream.len());
        prop_assert_eq!(whole.len(), ops.len());

        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let mut fed = 0;
        for cut in cuts {
            buf.extend_from_slice(&stream[fed..cut]);
            fed = cut;
            let (ops, err, used) = parse_all(&p, &buf);
            prop_assert_eq!(err, None);
            got.extend(ops);
            buf.drain(..used);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, whole);
    }

    /// Arbitrary bytes never panic, and a reported length never exceeds the input.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let p = parser();
        if let Ok(Some((_, n))) = p.parse(&data) {
            prop_assert!(n <= data.len());
        }
    }
}
