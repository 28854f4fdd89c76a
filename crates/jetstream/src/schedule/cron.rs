//! Next-fire computation for message schedules, with nats-server's semantics
//! (its `parseMsgSchedule`/`parseCron`): `@at <RFC3339>`, `@every <Go
//! duration>`, the predefined `@yearly`.. `@hourly`, and 6-field cron with
//! seconds, walked in a time zone the way Go's `time` package does (its
//! `time.Date` normalisation across DST gaps and overlaps decides the instant,
//! so a cron crate with other DST rules would fire at different times).

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use chrono_tz::Tz;

const NANOS: i64 = 1_000_000_000;

/// A schedule pattern (or `@at` time) nats-server would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message schedules pattern is invalid")]
pub struct InvalidPattern;

/// A schedule's time zone (`Nats-Schedule-Time-Zone`); `None` is UTC.
pub type Zone = Option<Tz>;

/// Resolves an IANA zone name as Go's `time.LoadLocation` does (`UTC` and
/// `Local` included; the server runs its schedules in UTC as its local zone).
pub fn load_zone(name: &str) -> Option<Tz> {
    match name {
        "" => None,
        "UTC" | "Local" => Some(Tz::UTC),
        _ => name.parse::<Tz>().ok(),
    }
}

/// When a schedule fires next, as nats-server computes it at `ts` (unix nanos)
/// with the clock at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// No `Nats-Schedule` pattern (or `@at` Go's zero time): not a schedule.
    None,
    /// Fires at this instant (unix nanos; `offset`: seconds east of UTC the
    /// time is shown in); `repeat` if it fires again afterwards.
    At {
        nanos: i64,
        offset: i32,
        repeat: bool,
    },
}

/// nats-server's `parseMsgSchedule`: `Err(InvalidPattern)` for an invalid pattern.
pub fn next_fire(pattern: &str, zone: Zone, ts: i64, now: i64) -> Result<Next, InvalidPattern> {
    if pattern.is_empty() {
        return Ok(Next::None);
    }
    if let Some(at) = pattern.strip_prefix("@at ") {
        if zone.is_some() {
            return Err(InvalidPattern);
        }
        let t = parse_rfc3339(at)?;
        // Go's zero time means "no schedule".
        if t.timestamp() == -62_135_596_800 && t.timestamp_subsec_nanos() == 0 {
            return Ok(Next::None);
        }
        return Ok(Next::At {
            nanos: t.timestamp_nanos_opt().unwrap_or(i64::MAX),
            offset: t.offset().local_minus_utc(),
            repeat: false,
        });
    }
    if let Some(every) = pattern.strip_prefix("@every ") {
        if zone.is_some() {
            return Err(InvalidPattern);
        }
        let dur = parse_go_duration(every).ok_or(InvalidPattern)?;
        if dur < NANOS {
            return Err(InvalidPattern);
        }
        let mut next = round_second(ts).saturating_add(dur);
        if next < now {
            next = round_second(now).saturating_add(dur);
        }
        return Ok(Next::At {
            nanos: next,
            offset: 0,
            repeat: true,
        });
    }
    let pattern = match pattern {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        other => other,
    };
    let spec = Spec::parse(pattern)?;
    let mut next = spec.next_after(zone, ts)?;
    if next < now {
        next = spec.next_after(zone, round_second(now))?;
    }
    let secs = next.div_euclid(NANOS);
    Ok(Next::At {
        nanos: next,
        offset: offset_at(zone, secs) as i32,
        repeat: true,
    })
}

/// Go's `Time.Format(time.RFC3339Nano)` of an instant shown at `offset`.
pub fn format_rfc3339_nano(nanos: i64, offset: i32) -> String {
    let off = FixedOffset::east_opt(offset).unwrap_or(Utc.fix());
    let t = DateTime::from_timestamp_nanos(nanos).with_timezone(&off);
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = t.timestamp_subsec_nanos();
    if frac > 0 {
        let digits = format!(".{frac:09}");
        s.push_str(digits.trim_end_matches('0'));
    }
    if offset == 0 {
        s.push('Z');
    } else {
        s.push_str(&t.format("%:z").to_string());
    }
    s
}

/// Go's `time.Parse(time.RFC3339, ..)` (fractional seconds accepted, `T`
/// and `Z` upper case only).
pub fn parse_rfc3339(s: &str) -> Result<DateTime<FixedOffset>, InvalidPattern> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b.ends_with(b"z") {
        return Err(InvalidPattern);
    }
    DateTime::parse_from_rfc3339(s).map_err(|_| InvalidPattern)
}

/// Go's `time.ParseDuration` in nanos (negatives are refused, which is what
/// the under-a-second rule would do with them anyway).
fn parse_go_duration(s: &str) -> Option<i64> {
    rnats_conf::parse_duration(s)
        .ok()
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Go's `Time.Round(time.Second)`: halves away from zero.
fn round_second(nanos: i64) -> i64 {
    let r = nanos.rem_euclid(NANOS);
    if r + r < NANOS {
        nanos - r
    } else {
        nanos.saturating_add(NANOS - r)
    }
}

/// Seconds east of UTC in `zone` at unix second `secs`.
fn offset_at(zone: Zone, secs: i64) -> i64 {
    match zone {
        None => 0,
        Some(tz) => DateTime::from_timestamp(secs, 0)
            .map(|t| {
                tz.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc() as i64
            })
            .unwrap_or(0),
    }
}

/// A wall-clock reading in a zone.
#[derive(Debug, Clone, Copy)]
struct Local {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    weekday: i64,
}

fn local(zone: Zone, secs: i64) -> Local {
    let l = secs + offset_at(zone, secs);
    let days = l.div_euclid(86_400);
    let tod = l.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Local {
        year,
        month,
        day,
        hour: tod / 3600,
        minute: tod / 60 % 60,
        second: tod % 60,
        weekday: (days + 4).rem_euclid(7),
    }
}

/// Go's `time.Date` in `zone`: out-of-range fields carry over, and a wall time
/// in a DST gap or overlap takes the offset Go's lookup picks.
fn date(zone: Zone, year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> i64 {
    let m0 = month - 1;
    let (y, m) = (year + m0.div_euclid(12), m0.rem_euclid(12) + 1);
    let unix = (days_from_civil(y, m, 1) + day - 1) * 86_400 + hour * 3600 + min * 60 + sec;
    let guess = unix - offset_at(zone, unix);
    unix - offset_at(zone, guess)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const STAR: u64 = 1 << 63;

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [&'static str],
    first_name: u64,
}

const SECONDS: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    first_name: 0,
};
const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    first_name: 0,
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    first_name: 0,
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    first_name: 0,
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    first_name: 1,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    first_name: 0,
};

/// A parsed 6-field cron pattern: one bit per allowed value, plus [`STAR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    second: u64,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

impl Spec {
    pub fn parse(pattern: &str) -> Result<Spec, InvalidPattern> {
        let f: Vec<&str> = pattern.split_whitespace().collect();
        if f.len() != 6 {
            return Err(InvalidPattern);
        }
        Ok(Spec {
            second: field(f[0], &SECONDS)?,
            minute: field(f[1], &MINUTES)?,
            hour: field(f[2], &HOURS)?,
            dom: field(f[3], &DOM)?,
            month: field(f[4], &MONTHS)?,
            dow: field(f[5], &DOW)?,
        })
    }

    fn day_matches(&self, l: &Local) -> bool {
        let dom = (1u64 << l.day) & self.dom > 0;
        let dow = (1u64 << l.weekday) & self.dow > 0;
        if self.dom & STAR > 0 || self.dow & STAR > 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching instant after `ts` (unix nanos), as nanos; the
    /// walk is Go's: whole fields step in the zone's wall clock, hours,
    /// minutes and seconds in absolute time. Errs past five years.
    pub fn next_after(&self, zone: Zone, ts: i64) -> Result<i64, InvalidPattern> {
        let mut t = ts.div_euclid(NANOS) + 1;
        let mut truncated = false;
        let year_limit = local(zone, t).year + 5;
        'wrap: loop {
            let mut l = local(zone, t);
            if l.year > year_limit {
                return Err(InvalidPattern);
            }
            while (1u64 << l.month) & self.month == 0 {
                if !truncated {
                    truncated = true;
                    t = date(zone, l.year, l.month, 1, 0, 0, 0);
                    l = local(zone, t);
                }
                t = date(zone, l.year, l.month + 1, l.day, l.hour, l.minute, l.second);
                l = local(zone, t);
                if l.month == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&l) {
                if !truncated {
                    truncated = true;
                    t = date(zone, l.year, l.month, l.day, 0, 0, 0);
                    l = local(zone, t);
                }
                t = date(zone, l.year, l.month, l.day + 1, l.hour, l.minute, l.second);
                l = local(zone, t);
                if l.day == 1 {
                    continue 'wrap;
                }
            }
            while (1u64 << l.hour) & self.hour == 0 {
                if !truncated {
                    truncated = true;
                    t = date(zone, l.year, l.month, l.day, l.hour, 0, 0);
                }
                t += 3600;
                l = local(zone, t);
                if l.hour == 0 {
                    continue 'wrap;
                }
            }
            while (1u64 << l.minute) & self.minute == 0 {
                if !truncated {
                    truncated = true;
                    t -= t.rem_euclid(60);
                }
                t += 60;
                l = local(zone, t);
                if l.minute == 0 {
                    continue 'wrap;
                }
            }
            while (1u64 << l.second) & self.second == 0 {
                truncated = true;
                t += 1;
                l = local(zone, t);
                if l.second == 0 {
                    continue 'wrap;
                }
            }
            return t.checked_mul(NANOS).ok_or(InvalidPattern);
        }
    }
}

/// A comma-separated list of ranges (empty items skipped, as Go's FieldsFunc).
fn field(s: &str, b: &Bounds) -> Result<u64, InvalidPattern> {
    let mut bits = 0;
    for expr in s.split(',').filter(|e| !e.is_empty()) {
        bits |= range(expr, b)?;
    }
    Ok(bits)
}

/// `number | number "-" number [ "/" step ]`, `*` or `?` for the whole range.
fn range(expr: &str, b: &Bounds) -> Result<u64, InvalidPattern> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut extra);
    if low_high[0] == "*" || low_high[0] == "?" {
        (start, end, extra) = (b.min, b.max, STAR);
    } else {
        start = int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(InvalidPattern),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(InvalidPattern),
    };
    if start < b.min || end > b.max || start > end || step == 0 {
        return Err(InvalidPattern);
    }
    let mut bits = 0u64;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i += step;
    }
    Ok(bits | extra)
}

fn int_or_name(expr: &str, b: &Bounds) -> Result<u64, InvalidPattern> {
    let lower = expr.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u64 + b.first_name);
    }
    int(expr)
}

/// Go's `strconv.Atoi`, refusing negatives.
fn int(expr: &str) -> Result<u64, InvalidPattern> {
    let n: i64 = expr.parse().map_err(|_| InvalidPattern)?;
    u64::try_from(n).map_err(|_| InvalidPattern)
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
