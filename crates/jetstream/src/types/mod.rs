//! The JetStream API's data types: everything a `$JS.API` request or response
//! carries, with nats-server's JSON field names, omission rules and defaults.
//!
//! - [`stream`]: `StreamConfig` (with nats-server's create-time defaulting and
//!   validation), `StreamState`, `StreamInfo` and their parts.
//! - [`consumer`]: `ConsumerConfig` (with its defaulting), `ConsumerInfo`,
//!   `SequenceInfo`, `PriorityGroupState`.
//! - [`account`]: `AccountInfo` and its limits/API stats.
//! - [`api`]: the `ApiResponse<T>` envelope, one body type per response (with
//!   its `io.nats.jetstream.api.v1.*` type string), the request types, and
//!   `PubAck`.
//!
//! Conventions, all as Go's `encoding/json` does for nats-server's structs:
//! durations are `i64` nanoseconds; times are RFC 3339 in UTC with up to nine
//! fraction digits, trailing zeros dropped (see [`time_fmt`]), and the zero
//! time is `0001-01-01T00:00:00Z`; `null` is accepted wherever Go would leave a
//! field at its zero value for it (lists, maps, strings).

pub mod account;
pub mod api;
pub mod consumer;
pub mod stream;

pub use account::*;
pub use api::*;
pub use consumer::*;
pub use stream::*;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// One second in nanoseconds, the unit of every duration on the wire.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;
/// One millisecond in nanoseconds.
pub const NANOS_PER_MILLI: i64 = 1_000_000;

/// Go's zero `time.Time`, `0001-01-01T00:00:00Z`, which nats-server sends for
/// "never" (e.g. `first_ts` of an empty stream).
pub fn zero_time() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether `t` is Go's zero time.
pub fn is_zero_time(t: &DateTime<Utc>) -> bool {
    *t == zero_time()
}

/// Time from Unix nanoseconds (what the stores keep); 0 means Go's zero time.
pub fn time_from_unix_nanos(nanos: i64) -> DateTime<Utc> {
    if nanos == 0 {
        zero_time()
    } else {
        DateTime::from_timestamp_nanos(nanos)
    }
}

/// Go's `time.Time` JSON form (`time.RFC3339Nano`), for `#[serde(with = ...)]`.
pub mod time_fmt {
    use super::*;

    /// `2026-11-26T13:01:06.810957123Z`; trailing zeros of the fraction (and
    /// the dot when it is zero) are dropped, as Go does.
    pub fn format(t: &DateTime<Utc>) -> String {
        let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
        let nanos = t.timestamp_subsec_nanos();
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push('Z');
        s
    }

    /// Any RFC 3339 time (with any offset), converted to UTC.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// `null` gives the zero time, as Go leaves the field untouched.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(zero_time()),
            Some(s) => parse(&s).map_err(serde::de::Error::custom),
        }
    }

    /// For `Option<DateTime<Utc>>` fields (Go `*time.Time`).
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => parse(&s).map(Some).map_err(serde::de::Error::custom),
            }
        }
    }
}

/// Deserializes `null` as the type's default (Go leaves nil slices/maps and
/// untouched strings for `null`).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Serializes an empty list as `null` (a nil Go slice without `omitempty`).
pub(crate) fn empty_as_null<S, T>(v: &[T], s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: serde::Serialize,
{
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

pub(crate) fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

pub(crate) fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// Whether two subjects (with wildcards) can match a common subject, like
/// nats-server's `SubjectsCollide`.
pub fn subjects_collide(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let ta: Vec<&str> = a.split('.').collect();
    let tb: Vec<&str> = b.split('.').collect();
    let (la, lb) = (ta.len(), tb.len());
    let a_fwc = ta.last() == Some(&">");
    let b_fwc = tb.last() == Some(&">");
    // Lengths must be compatible: equal, or the shorter one ends in '>'
    // covering at least one more token.
    if la != lb {
        let ok = (la < lb && a_fwc) || (lb < la && b_fwc);
        if !ok {
            return false;
        }
    }
    for (x, y) in ta.iter().zip(tb.iter()) {
        if *x == ">" || *y == ">" {
            return true;
        }
        if *x == "*" || *y == "*" {
            continue;
        }
        if x != y {
            return false;
        }
    }
    true
}

#[cfg(test)]
pub(crate) mod schema_check;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_format() {
        assert_eq!(time_fmt::format(&zero_time()), "0001-01-01T00:00:00Z");
        let t = time_fmt::parse("2026-11-26T13:24:26.54412404Z").unwrap();
        assert_eq!(time_fmt::format(&t), "2026-11-26T13:24:26.54412404Z");
        let t = time_fmt::parse("2026-11-26T13:01:06.810957123Z").unwrap();
        assert_eq!(time_fmt::format(&t), "2026-11-26T13:01:06.810957123Z");
        let t = time_fmt::parse("2099-01-01T00:00:00Z").unwrap();
        assert_eq!(time_fmt::format(&t), "2099-01-01T00:00:00Z");
        let t = time_fmt::parse("2020-01-02T05:04:05.5+02:00").unwrap();
        assert_eq!(time_fmt::format(&t), "2020-01-02T03:04:05.5Z");
        assert_eq!(time_from_unix_nanos(0), zero_time());
        assert_eq!(
            time_fmt::format(&time_from_unix_nanos(1_700_000_000_000_000_001)),
            "2023-11-14T22:13:20.000000001Z"
        );
    }

    #[test]
    fn collide() {
        assert!(subjects_collide("foo.*", "foo.bar"));
        assert!(subjects_collide("foo.>", "foo.bar.baz"));
        assert!(subjects_collide(">", "a"));
        assert!(subjects_collide("*.b", "a.*"));
        assert!(!subjects_collide("foo.>", "foo"));
        assert!(!subjects_collide("foo.*", "foo.bar.baz"));
        assert!(!subjects_collide("a.b", "a.c"));
        assert!(subjects_collide("a.*.c", "a.b.>"));
        assert!(!subjects_collide("a.*.c", "a.b.d"));
    }
}
