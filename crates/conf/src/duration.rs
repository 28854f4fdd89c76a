//! Owns [`parse_duration`]: Go's `time.ParseDuration` syntax, which is what
//! nats-server applies to duration options written as strings (`"2m"`,
//! `10s`, `1h30m`, `1.5h`, `500ms`, `1us`, `1µs`, `1ns`).
//!
//! Semantics follow Go: an optional sign, then one or more
//! `<decimal><unit>` groups where the decimal may have a fraction, and unit is
//! one of `ns`, `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`. The
//! bare string `0` is zero. The total must fit in an `i64` of nanoseconds.
//! Because [`std::time::Duration`] cannot be negative, negative durations
//! (other than `-0`) are rejected here.

use std::time::Duration;

const MAX_NANOS: u64 = 1 << 63;

/// Parses a Go duration string. The error is a human-readable reason.
///
/// ```
/// use std::time::Duration;
/// use rnats_conf::parse_duration;
/// assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(parse_duration("10").is_err()); // a unit is required
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration \"{input}\"");
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let (int_part, rest, int_digits) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        // Fraction.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_digits = 0;
        if let Some(rest) = s.strip_prefix('.') {
            let (f, sc, rest, n) = leading_fraction(rest);
            frac = f;
            scale = sc;
            frac_digits = n;
            s = rest;
        }
        if int_digits == 0 && frac_digits == 0 {
            return Err(invalid());
        }
        // Unit: everything up to the next '.' or digit.
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("missing unit in duration \"{input}\""));
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_str {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => {
                return Err(format!(
                    "unknown unit \"{unit_str}\" in duration \"{input}\""
                ))
            }
        };
        if int_part > MAX_NANOS / unit {
            return Err(invalid());
        }
        let mut v = int_part * unit;
        if frac > 0 {
            // Same float computation as Go, so results agree to the nanosecond.
            let add = (frac as f64 * (unit as f64 / scale)) as u64;
            v = v.checked_add(add).ok_or_else(invalid)?;
            if v > MAX_NANOS {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > MAX_NANOS {
            return Err(invalid());
        }
    }
    if negative {
        if total == 0 {
            return Ok(Duration::ZERO);
        }
        return Err(format!("negative duration \"{input}\" is not allowed here"));
    }
    if total > MAX_NANOS - 1 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total))
}

/// Consumes leading ASCII digits. Returns the value, the rest and the digit
/// count, or `None` on overflow past 2^63.
fn leading_int(s: &str) -> Option<(u64, &str, usize)> {
    let bytes = s.as_bytes();
    let mut x: u64 = 0;
    let mut i = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        if x > (MAX_NANOS - 1) / 10 {
            return None;
        }
        x = x * 10 + u64::from(bytes[i] - b'0');
        if x > MAX_NANOS {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..], i))
}

/// Consumes leading fraction digits; digits that would overflow are dropped
/// (precision loss, not an error), as Go does.
fn leading_fraction(s: &str) -> (u64, f64, &str, usize) {
    let bytes = s.as_bytes();
    let mut x: u64 = 0;
    let mut scale = 1.0;
    let mut overflow = false;
    let mut i = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        if !overflow {
            if x > (MAX_NANOS - 1) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(bytes[i] - b'0');
                if y > MAX_NANOS {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, &s[i..], i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn go_forms() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1us"), Duration::from_micros(1));
        assert_eq!(ok("1\u{b5}s"), Duration::from_micros(1));
        assert_eq!(ok("1\u{3bc}s"), Duration::from_micros(1));
        assert_eq!(ok("1ns"), Duration::from_nanos(1));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("1.000000001s"), Duration::new(1, 1));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h1m1s1ms1us1ns"), Duration::new(3661, 1_001_001));
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
        // The largest Go duration.
        assert_eq!(
            ok("9223372036854775807ns"),
            Duration::from_nanos(i64::MAX as u64)
        );
    }

    #[test]
    fn go_rejects() {
        for bad in [
            "",
            "10",
            "s",
            ".s",
            "1x",
            "1.5",
            "-1s",
            "1h-5m",
            "3000000h",
            "9223372036854775808ns",
            "1 s",
            " 1s",
            "1s ",
            "++1s",
            "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5d")
            .unwrap_err()
            .contains("unknown unit \"d\""));
    }
}
