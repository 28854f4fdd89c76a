//! Distributed counters (ADR-49, nats-server 2.12): on a stream with
//! `allow_msg_counter`, a publish carries `Nats-Incr: <integer>` and no body;
//! the stream stores the subject's new total as `{"val":"<total>"}` and
//! answers it in the PubAck. Totals are arbitrary-precision, as in Go's
//! `big.Int`. A stream sourcing counters keeps, in `Nats-Counter-Sources`,
//! the last total seen from each origin stream and subject, and adds only the
//! difference, so aggregating several counters stays exact.

use std::collections::BTreeMap;

use num_bigint::BigInt;
use serde::{Deserialize, Serialize};

use crate::errors::{JsError, JsErrorKind};
use crate::headers;

pub const INCR: &str = "Nats-Incr";
pub const COUNTER_SOURCES: &str = "Nats-Counter-Sources";

/// The body of a counter message.
#[derive(Serialize, Deserialize)]
struct CounterValue {
    val: String,
}

/// Last total seen per origin stream, then per origin subject.
type CounterSources = BTreeMap<String, BTreeMap<String, String>>;

/// A counter message ready to store: its headers, body and new total.
#[derive(Debug, PartialEq)]
pub struct Counted {
    pub hdrs: Vec<u8>,
    pub payload: Vec<u8>,
    pub value: String,
}

/// The increment in `Nats-Incr`, if the header is there and not empty.
/// Like Go's `big.Int.SetString(_, 10)`: an optional sign and decimal digits.
pub fn increment(hdrs: &[u8]) -> Result<Option<BigInt>, JsError> {
    let Some(v) = headers::get(hdrs, INCR).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let digits = v
        .strip_prefix(b"+")
        .or_else(|| v.strip_prefix(b"-"))
        .unwrap_or(v);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(JsError::new(JsErrorKind::MessageIncrInvalid));
    }
    BigInt::parse_bytes(v, 10)
        .map(Some)
        .ok_or_else(|| JsError::new(JsErrorKind::MessageIncrInvalid))
}

/// The checks a client's increment must pass (a sourced one is taken as is).
pub fn check_publish(hdrs: &[u8], payload: &[u8], allowed: bool) -> Result<(), JsError> {
    if !allowed {
        return Err(JsError::new(JsErrorKind::MessageIncrDisabled));
    }
    if !payload.is_empty() {
        return Err(JsError::new(JsErrorKind::MessageIncrPayload));
    }
    // A counter is not compatible with rollups or optimistic concurrency.
    let conflicting = [
        headers::ROLLUP,
        headers::EXPECTED_STREAM,
        headers::EXPECTED_LAST_MSG_ID,
        headers::EXPECTED_LAST_SUBJ_SEQ_SUBJECT,
        headers::EXPECTED_LAST_SEQ,
        headers::EXPECTED_LAST_SUBJ_SEQ,
    ];
    if conflicting
        .iter()
        .any(|h| headers::get(hdrs, h).is_some_and(|v| !v.is_empty()))
    {
        return Err(JsError::new(JsErrorKind::MessageIncrInvalid));
    }
    Ok(())
}

/// Applies `incr` to the subject's last message (`last`: its headers and
/// body, if any). `hdrs`/`payload` are the incoming message's; a sourced
/// message (with `Nats-Stream-Source`) carries its origin's total in its body.
pub fn apply(
    last: Option<(&[u8], &[u8])>,
    subject: &str,
    hdrs: &[u8],
    payload: &[u8],
    mut incr: BigInt,
) -> Result<Counted, JsError> {
    let broken = || JsError::new(JsErrorKind::MessageCounterBroken);
    let mut total = BigInt::default();
    let mut sources = CounterSources::new();
    if let Some((lh, lp)) = last {
        total = parse_total(lp).ok_or_else(broken)?;
        if let Some(s) = headers::get(lh, COUNTER_SOURCES).filter(|s| !s.is_empty()) {
            sources = serde_json::from_slice(s).map_err(|_| broken())?;
        }
    }
    let mut hdrs = hdrs.to_vec();
    if let Some(src) = headers::get_str(&hdrs, headers::STREAM_SOURCE) {
        let fields: Vec<&str> = src.split(' ').collect();
        let origin = fields.first().copied().unwrap_or_default().to_string();
        let origin_subject = fields.get(4).copied().unwrap_or(subject).to_string();
        let sourced = parse_total(payload).ok_or_else(broken)?;
        let seen = sources.entry(origin).or_default();
        let previous = seen
            .insert(origin_subject, sourced.to_string())
            .and_then(|p| p.parse::<BigInt>().ok())
            .unwrap_or_default();
        incr = sourced - previous;
        hdrs = headers::set(&hdrs, INCR, &incr.to_string());
    }
    total += incr;
    let value = total.to_string();
    let payload = serde_json::to_vec(&CounterValue { val: value.clone() }).map_err(|_| broken())?;
    if !sources.is_empty() {
        let body = serde_json::to_string(&sources).map_err(|_| broken())?;
        hdrs = headers::set(&hdrs, COUNTER_SOURCES, &body);
    }
    Ok(Counted {
        hdrs,
        payload,
        value,
    })
}

/// The total in a counter body; an unparsable number counts as zero, as Go's
/// `SetString` leaves it (only a body that is not the JSON shape is broken).
fn parse_total(body: &[u8]) -> Option<BigInt> {
    let v: CounterValue = serde_json::from_slice(body).ok()?;
    Some(v.val.parse().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(lines: &[(&str, &str)]) -> Vec<u8> {
        lines
            .iter()
            .fold(headers::Builder::new(), |b, (k, v)| b.add(k, v))
            .finish()
    }

    #[test]
    fn increments_parse_like_go_big_int() {
        for (v, want) in [
            ("1", Some(1)),
            ("+7", Some(7)),
            ("-3", Some(-3)),
            ("0", Some(0)),
        ] {
            let got = increment(&hdr(&[(INCR, v)])).unwrap();
            assert_eq!(got, want.map(BigInt::from), "{v}");
        }
        for bad in ["x", "1.5", "--1", "+", "1_000", "0x10", "1e3"] {
            assert!(increment(&hdr(&[(INCR, bad)])).is_err(), "{bad}");
        }
        assert_eq!(increment(&hdr(&[("Other", "1")])).unwrap(), None);
        let big = "123456789012345678901234567890";
        assert_eq!(
            increment(&hdr(&[(INCR, big)]))
                .unwrap()
                .unwrap()
                .to_string(),
            big
        );
    }

    #[test]
    fn totals_add_up_and_survive_huge_values() {
        let h = hdr(&[(INCR, "5")]);
        let first = apply(None, "c", &h, b"", BigInt::from(5)).unwrap();
        assert_eq!(first.payload, br#"{"val":"5"}"#);
        assert_eq!(first.value, "5");
        let big: BigInt = "99999999999999999999999999".parse().unwrap();
        let next = apply(Some((&first.hdrs, &first.payload)), "c", &h, b"", big).unwrap();
        assert_eq!(next.value, "100000000000000000000000004");
        let down = apply(
            Some((b"", br#"{"val":"2"}"#)),
            "c",
            &h,
            b"",
            BigInt::from(-9),
        )
        .unwrap();
        assert_eq!(down.value, "-7");
    }

    #[test]
    fn a_broken_previous_value_is_refused() {
        let h = hdr(&[(INCR, "1")]);
        let err = apply(Some((b"", b"not json")), "c", &h, b"", BigInt::from(1)).unwrap_err();
        assert_eq!(err.err_code, JsErrorKind::MessageCounterBroken.err_code());
    }

    #[test]
    fn sourced_totals_add_the_difference_per_origin() {
        let src = |stream: &str, total: &str| {
            (
                hdr(&[
                    (INCR, "1"),
                    (headers::STREAM_SOURCE, &format!("{stream} 1 > > c.x")),
                ]),
                format!(r#"{{"val":"{total}"}}"#).into_bytes(),
            )
        };
        let (h, p) = src("A", "10");
        let a1 = apply(None, "c.x", &h, &p, BigInt::from(1)).unwrap();
        assert_eq!(a1.value, "10");
        assert_eq!(headers::get_str(&a1.hdrs, INCR), Some("10"));
        let (h, p) = src("B", "3");
        let b1 = apply(
            Some((&a1.hdrs, &a1.payload)),
            "c.x",
            &h,
            &p,
            BigInt::from(1),
        )
        .unwrap();
        assert_eq!(b1.value, "13");
        let (h, p) = src("A", "12");
        let a2 = apply(
            Some((&b1.hdrs, &b1.payload)),
            "c.x",
            &h,
            &p,
            BigInt::from(1),
        )
        .unwrap();
        assert_eq!(a2.value, "15");
        assert_eq!(headers::get_str(&a2.hdrs, INCR), Some("2"));
        assert_eq!(
            headers::get_str(&a2.hdrs, COUNTER_SOURCES),
            Some(r#"{"A":{"c.x":"12"},"B":{"c.x":"3"}}"#)
        );
    }

    #[test]
    fn client_increments_refuse_bodies_and_conflicting_headers() {
        let h = hdr(&[(INCR, "1")]);
        assert!(check_publish(&h, b"", true).is_ok());
        let code = |r: Result<(), JsError>| r.unwrap_err().err_code;
        assert_eq!(
            code(check_publish(&h, b"", false)),
            JsErrorKind::MessageIncrDisabled.err_code()
        );
        assert_eq!(
            code(check_publish(&h, b"x", true)),
            JsErrorKind::MessageIncrPayload.err_code()
        );
        let h = hdr(&[(INCR, "1"), (headers::EXPECTED_LAST_SEQ, "4")]);
        assert_eq!(
            code(check_publish(&h, b"", true)),
            JsErrorKind::MessageIncrInvalid.err_code()
        );
    }
}
