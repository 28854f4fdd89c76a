//! Go-style formatting shared by every JSON body the server sends
//! (monitoring, `$SYS`, JetStream API and advisories): `encoding/json`'s
//! escaping and float form, `time.Time`'s RFC 3339 form, and
//! nats-server's uptime text. One place, so all bodies agree byte for byte.

use serde::Serialize;

/// Pretty JSON as Go writes it.
pub fn go_json_pretty<T: Serialize>(v: &T) -> String {
    go_escape(serde_json::to_string_pretty(v).unwrap_or_default())
}

/// Compact JSON as Go's `json.Marshal` writes it.
pub fn go_json<T: Serialize>(v: &T) -> String {
    go_escape(serde_json::to_string(v).unwrap_or_default())
}

/// Go's encoder escapes `<`, `>` and `&` (they only occur inside strings).
fn go_escape(s: String) -> String {
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `float64` JSON form: whole numbers without a fraction (`1`, not `1.0`).
pub fn go_f64<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// Go's `time.Time` JSON form of a Unix time in nanoseconds; 0 or less is
/// Go's zero time.
pub fn go_time_nanos(nanos: i64) -> String {
    if nanos <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    go_time(&chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(
        nanos,
    ))
}

/// Go's `time.Time` JSON form: RFC 3339, fraction with trailing zeros trimmed.
pub fn go_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    let frac = t.timestamp_subsec_nanos();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if frac == 0 {
        format!("{base}Z")
    } else {
        let digits = format!("{frac:09}");
        format!("{base}.{}Z", digits.trim_end_matches('0'))
    }
}

/// nats-server's `myUptime`: `1y2d3h4m5s`, leading zero units left out.
pub fn uptime(d: std::time::Duration) -> String {
    let tsecs = d.as_secs();
    let tmins = tsecs / 60;
    let thrs = tmins / 60;
    let tdays = thrs / 24;
    let tyrs = tdays / 365;
    if tyrs > 0 {
        format!(
            "{tyrs}y{}d{}h{}m{}s",
            tdays % 365,
            thrs % 24,
            tmins % 60,
            tsecs % 60
        )
    } else if tdays > 0 {
        format!("{tdays}d{}h{}m{}s", thrs % 24, tmins % 60, tsecs % 60)
    } else if thrs > 0 {
        format!("{thrs}h{}m{}s", tmins % 60, tsecs % 60)
    } else if tmins > 0 {
        format!("{tmins}m{}s", tsecs % 60)
    } else {
        format!("{tsecs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_like_go() {
        use std::time::Duration;
        assert_eq!(uptime(Duration::from_millis(999)), "0s");
        assert_eq!(uptime(Duration::from_secs(62)), "1m2s");
        assert_eq!(uptime(Duration::from_secs(3600 + 5)), "1h0m5s");
        assert_eq!(uptime(Duration::from_secs(86400 * 2 + 61)), "2d0h1m1s");
        assert_eq!(uptime(Duration::from_secs(86400 * 366)), "1y1d0h0m0s");
    }

    #[test]
    fn json_like_go() {
        #[derive(Serialize)]
        struct T {
            #[serde(serialize_with = "go_f64")]
            a: f64,
            #[serde(serialize_with = "go_f64")]
            b: f64,
            s: &'static str,
        }
        let v = T {
            a: 0.0,
            b: 0.25,
            s: "$JS.API.>&<",
        };
        assert_eq!(
            go_json_pretty(&v),
            "{\n  \"a\": 0,\n  \"b\": 0.25,\n  \"s\": \"$JS.API.\\u003e\\u0026\\u003c\"\n}"
        );
    }

    #[test]
    fn times_like_go() {
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 120_000_000)
            .unwrap_or_default();
        assert_eq!(go_time(&t), "2023-11-14T22:13:20.12Z");
    }
}
