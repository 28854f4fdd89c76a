//! Fuzzes the client protocol parser: arbitrary bytes, fed whole and in two
//! arbitrary pieces, must never panic, and must yield the same operations
//! either way (the parser consumes only complete operations).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnats_proto::Parser;

fn ops(p: &Parser, mut buf: &[u8]) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    loop {
        match p.parse(buf) {
            Ok(Some((op, n))) => {
                assert!(n > 0 && n <= buf.len());
                out.push(format!("{op:?}"));
                buf = &buf[n..];
            }
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let p = Parser {
        headers: data[0] & 1 == 1,
        max_payload: 4096,
        max_control_line: 256,
    };
    let data = &data[1..];
    let (whole, _) = ops(&p, data);
    // Feed as two reads: parse what the first holds, then the rest appended.
    let cut = data.len() / 2;
    let mut buf = data[..cut].to_vec();
    let mut got = Vec::new();
    let mut pos = 0;
    loop {
        match p.parse(&buf[pos..]) {
            Ok(Some((op, n))) => {
                got.push(format!("{op:?}"));
                pos += n;
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    buf.drain(..pos);
    buf.extend_from_slice(&data[cut..]);
    let (rest, _) = ops(&p, &buf);
    got.extend(rest);
    assert_eq!(got, whole);
});
