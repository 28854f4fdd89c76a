//! Subject delete markers (ADR-43) and the expiry rules around them.
//!
//! A stream with `subject_delete_marker_ttl` does not let a subject vanish
//! silently: when `max_age` or a message's own `Nats-TTL` removes the last
//! message of a subject, the stream stores an empty marker on that subject
//! instead (`Nats-Marker-Reason: MaxAge`, `Nats-TTL: <marker ttl>`,
//! `Nats-Rollup: sub`, so storing it also drops the expired message). The
//! marker expires by its own TTL; an expiring marker, or a KV purge marker,
//! is simply removed. As in nats-server v2.15, purges and message deletes
//! write no markers (the `Purge`/`Remove` reasons exist for clients only).
//!
//! Two rules that apply whenever per-message TTLs are on live here too:
//! a message with `Nats-TTL: never` outlives `max_age`, and with markers on
//! a TTL shorter than the marker TTL is raised to it (unless the stream keeps
//! one message per subject), so a marker cannot outlive what it replaces.

use super::headers;
use super::stream::{parse_ttl, Origin, Stream};

pub const MARKER_REASON: &str = "Nats-Marker-Reason";
pub const REASON_MAX_AGE: &str = "MaxAge";
const KV_OPERATION: &str = "KV-Operation";

/// Whether a message is itself a marker: one the server wrote, or a KV
/// purge (which already stands for "this key is gone").
pub fn is_marker(hdrs: &[u8]) -> bool {
    headers::get(hdrs, MARKER_REASON).is_some_and(|v| !v.is_empty())
        || headers::get(hdrs, KV_OPERATION) == Some(&b"PURGE"[..])
}

/// Whether a message opted out of expiry with `Nats-TTL: never`.
pub fn never_expires(hdrs: &[u8]) -> bool {
    matches!(headers::get_str(hdrs, headers::TTL).map(parse_ttl), Some(Ok(t)) if t < 0)
}

/// The header block of a marker left by an age or TTL expiry.
pub fn max_age_marker(ttl_secs: i64) -> Vec<u8> {
    headers::Builder::new()
        .add(MARKER_REASON, REASON_MAX_AGE)
        .add(headers::TTL, &go_duration_secs(ttl_secs))
        .add(headers::ROLLUP, "sub")
        .finish()
}

/// `hdrs` with its `Nats-TTL` replaced by `ttl_secs`, moved to the end as
/// nats-server does when it raises a TTL to the marker TTL.
pub fn with_ttl(hdrs: &[u8], ttl_secs: i64) -> Vec<u8> {
    let mut b = headers::Builder::new();
    for (k, v) in headers::lines(hdrs) {
        if k != headers::TTL.as_bytes() {
            b = b.add(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        }
    }
    b.add(headers::TTL, &ttl_secs.to_string()).finish()
}

/// Whole seconds the way Go prints a `time.Duration`: `2s`, `1m30s`, `1h0m0s`.
pub fn go_duration_secs(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Expires message `seq`: removes it, or — when markers are on
/// (`marker_ttl_secs > 0`) and it is the last message of its subject and
/// not a marker itself — replaces it with a marker.
pub(crate) fn expire_msg(stream: &Stream, seq: u64, marker_ttl_secs: i64) {
    let Ok(m) = stream.store.load(seq) else {
        return; // already gone (a rollup, a purge, an earlier expiry)
    };
    if marker_ttl_secs > 0 && !is_marker(&m.headers) && is_last_of_subject(stream, &m.subject) {
        let hdrs = max_age_marker(marker_ttl_secs);
        match stream.apply_sourced(&m.subject, &hdrs, b"", Origin::Internal) {
            Ok(_) => return,
            // Without room for the marker, expiry still has to happen.
            Err(e) => tracing::warn!(stream = %stream.name, subject = %m.subject,
                error = %e.description, "could not store subject delete marker"),
        }
    }
    let _ = stream.store.remove(seq, false);
}

fn is_last_of_subject(stream: &Stream, subject: &str) -> bool {
    stream
        .store
        .subjects_state(subject)
        .get(subject)
        .is_some_and(|s| s.msgs == 1)
}

/// `max_age` expiry message by message (needed once messages can carry
/// `Nats-TTL: never` or expiry can leave markers): walks from the oldest,
/// expiring each message older than `max_age` except the never-expiring
/// ones. Returns when the oldest young message comes of age, if any.
pub(crate) fn expire_by_age(
    stream: &Stream,
    now: i64,
    max_age: i64,
    marker_ttl_secs: i64,
) -> Option<i64> {
    let oldest_kept = now.saturating_sub(max_age);
    let mut seq = stream.store.state().first_seq;
    loop {
        let m = stream.store.load_next(">", seq).ok()?;
        if m.ts > oldest_kept {
            return Some(m.ts.saturating_add(max_age));
        }
        seq = m.seq + 1;
        if !never_expires(&m.headers) {
            expire_msg(stream, m.seq, marker_ttl_secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_secs(2), "2s");
        assert_eq!(go_duration_secs(90), "1m30s");
        assert_eq!(go_duration_secs(3600), "1h0m0s");
        assert_eq!(go_duration_secs(3661), "1h1m1s");
    }

    #[test]
    fn marker_headers_match_nats_server() {
        assert_eq!(
            max_age_marker(2),
            b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: 2s\r\nNats-Rollup: sub\r\n\r\n"
        );
    }

    #[test]
    fn what_counts_as_a_marker() {
        assert!(is_marker(&max_age_marker(5)));
        assert!(is_marker(b"NATS/1.0\r\nKV-Operation: PURGE\r\n\r\n"));
        assert!(!is_marker(b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"));
        assert!(!is_marker(b""));
    }

    #[test]
    fn raised_ttl_moves_to_the_end() {
        assert_eq!(
            with_ttl(b"NATS/1.0\r\nA: 1\r\nNats-TTL: 1\r\nB: 2\r\n\r\n", 5),
            b"NATS/1.0\r\nA: 1\r\nB: 2\r\nNats-TTL: 5\r\n\r\n"
        );
        assert!(never_expires(b"NATS/1.0\r\nNats-TTL: never\r\n\r\n"));
        assert!(!never_expires(b"NATS/1.0\r\nNats-TTL: 5\r\n\r\n"));
    }
}
