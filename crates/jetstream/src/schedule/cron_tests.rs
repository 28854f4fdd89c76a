use super::*;
use proptest::prelude::*;

fn nanos(s: &str) -> i64 {
    parse_rfc3339(s).unwrap().timestamp_nanos_opt().unwrap()
}

fn cron_next(p: &str, zone: Zone, from: &str) -> String {
    match next_fire(p, zone, nanos(from), nanos(from)).unwrap() {
        Next::At { nanos, offset, .. } => format_rfc3339_nano(nanos, offset),
        Next::None => "none".into(),
    }
}

#[test]
fn predefined_and_cron() {
    let z = None;
    assert_eq!(
        cron_next("@hourly", z, "2026-01-01T10:20:30Z"),
        "2026-01-01T11:00:00Z"
    );
    assert_eq!(
        cron_next("@daily", z, "2026-01-01T10:20:30Z"),
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(
        cron_next("@midnight", z, "2026-01-01T00:00:00Z"),
        "2026-01-02T00:00:00Z"
    );
    // 2026-01-04 is a Sunday.
    assert_eq!(
        cron_next("@weekly", z, "2026-01-01T10:00:00Z"),
        "2026-01-04T00:00:00Z"
    );
    assert_eq!(
        cron_next("@monthly", z, "2026-01-31T10:00:00Z"),
        "2026-02-01T00:00:00Z"
    );
    assert_eq!(
        cron_next("@yearly", z, "2026-06-01T00:00:00Z"),
        "2027-01-01T00:00:00Z"
    );
    assert_eq!(
        cron_next("@annually", z, "2026-06-01T00:00:00Z"),
        "2027-01-01T00:00:00Z"
    );
    assert_eq!(
        cron_next("*/5 * * * * *", z, "2026-01-01T10:00:02Z"),
        "2026-01-01T10:00:05Z"
    );
    assert_eq!(
        cron_next("* * * * * *", z, "2026-01-01T10:00:02.5Z"),
        "2026-01-01T10:00:03Z"
    );
    assert_eq!(
        cron_next("0 0 12 * * mon-fri", z, "2026-01-02T13:00:00Z"),
        "2026-01-05T12:00:00Z"
    );
    assert_eq!(
        cron_next("0 0 0 29 feb *", z, "2026-01-01T00:00:00Z"),
        "2028-02-29T00:00:00Z"
    );
    // Day of month OR day of week when neither is a star.
    assert_eq!(
        cron_next("0 0 0 15 * 1", z, "2026-01-01T00:00:00Z"),
        "2026-01-05T00:00:00Z"
    );
    // Never within five years: refused.
    assert!(next_fire("0 0 0 31 2 *", z, 0, 0).is_err());
}

#[test]
fn invalid_patterns() {
    for p in [
        "* * * * *",
        "* * * * * * *",
        "60 * * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * * 13 *",
        "* * * * * 7",
        "5-1 * * * * *",
        "1-2-3 * * * * *",
        "*/0 * * * * *",
        "1/2/3 * * * * *",
        "x * * * * *",
        "-1 * * * * *",
        "@every 500ms",
        "@every x",
        "@at 2026-01-01",
        "@at 2026-01-01 10:00:00Z",
        "@at 2026-01-01t10:00:00Z",
        "@at 2026-02-30T10:00:00Z",
        "@yearly ",
        "@at",
    ] {
        assert!(next_fire(p, None, 0, 0).is_err(), "{p}");
    }
    let ams = load_zone("Europe/Amsterdam");
    assert!(ams.is_some());
    assert!(next_fire("@every 1s", ams, 0, 0).is_err());
    assert!(next_fire("@at 2026-01-01T00:00:00Z", ams, 0, 0).is_err());
    assert!(load_zone("Nowhere/Special").is_none());
    assert!(load_zone("europe/amsterdam").is_none());
}

#[test]
fn at_and_every() {
    let now = nanos("2026-01-01T10:00:00.4Z");
    assert_eq!(
        next_fire("@at 2026-01-01T11:00:00+01:00", None, now, now),
        Ok(Next::At {
            nanos: nanos("2026-01-01T10:00:00Z"),
            offset: 3600,
            repeat: false
        })
    );
    assert_eq!(
        next_fire("@at 0001-01-01T00:00:00Z", None, now, now),
        Ok(Next::None)
    );
    assert_eq!(next_fire("", None, now, now), Ok(Next::None));
    // Rounded to the second, then the interval.
    assert_eq!(
        next_fire("@every 1m", None, now, now),
        Ok(Next::At {
            nanos: nanos("2026-01-01T10:01:00Z"),
            offset: 0,
            repeat: true
        })
    );
    // A missed interval fires once, an interval after now.
    let old = nanos("2025-01-01T00:00:00Z");
    assert_eq!(
        next_fire("@every 2s", None, old, nanos("2026-01-01T10:00:00.6Z")),
        Ok(Next::At {
            nanos: nanos("2026-01-01T10:00:03Z"),
            offset: 0,
            repeat: true
        })
    );
}

#[test]
fn time_zones_and_dst() {
    let ams = load_zone("Europe/Amsterdam");
    assert_eq!(
        cron_next("0 0 9 * * *", ams, "2026-01-01T10:00:00Z"),
        "2026-01-02T09:00:00+01:00"
    );
    assert_eq!(
        cron_next("0 0 9 * * *", ams, "2026-07-01T10:00:00Z"),
        "2026-07-02T09:00:00+02:00"
    );
    // 02:30 does not exist on 2026-03-29 in Amsterdam: Go's walk skips that day.
    assert_eq!(
        cron_next("0 30 2 * * *", ams, "2026-03-28T12:00:00Z"),
        "2026-03-30T02:30:00+02:00"
    );
    // Across the spring-forward hour, hourly fires on the real hours.
    assert_eq!(
        cron_next("@hourly", ams, "2026-03-29T00:30:00Z"),
        "2026-03-29T03:00:00+02:00"
    );
    // 02:30 happens twice on 2026-10-25: the first (summer time) one fires.
    assert_eq!(
        cron_next("0 30 2 * * *", ams, "2026-10-24T12:00:00Z"),
        "2026-10-25T02:30:00+02:00"
    );
    // ..and then the second one too, as Go's hour-by-hour walk sees it again.
    assert_eq!(
        cron_next("0 30 2 * * *", ams, "2026-10-25T00:30:00Z"),
        "2026-10-25T02:30:00+01:00"
    );
    let ny = load_zone("America/New_York");
    assert_eq!(
        cron_next("@daily", ny, "2026-03-07T12:00:00Z"),
        "2026-03-08T00:00:00-05:00"
    );
    assert_eq!(
        cron_next("@daily", ny, "2026-03-08T12:00:00Z"),
        "2026-03-09T00:00:00-04:00"
    );
    assert_eq!(
        cron_next("@daily", load_zone("UTC"), "2026-03-08T12:00:00Z"),
        "2026-03-09T00:00:00Z"
    );
}

#[test]
fn formats_like_go() {
    assert_eq!(
        format_rfc3339_nano(1_500_000_000, 0),
        "1970-01-01T00:00:01.5Z"
    );
    assert_eq!(format_rfc3339_nano(0, -3600), "1969-12-31T23:00:00-01:00");
}

/// Checks a brute-force answer: every second from `ts+1` until the result
/// must not match (UTC), and the result must.
fn matches(spec: &Spec, secs: i64) -> bool {
    let l = local(None, secs);
    (1u64 << l.second) & spec.second > 0
        && (1u64 << l.minute) & spec.minute > 0
        && (1u64 << l.hour) & spec.hour > 0
        && (1u64 << l.month) & spec.month > 0
        && spec.day_matches(&l)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn next_is_the_first_match(
        sec in "(\\*|[0-5]?[0-9]|\\*/[1-9][0-9]?|[0-2][0-9]-[3-5][0-9])",
        min in "(\\*|[0-5]?[0-9]|\\*/[1-9])",
        hour in "(\\*|1?[0-9])",
        ts in 1_700_000_000i64..1_900_000_000,
    ) {
        let pattern = format!("{sec} {min} {hour} * * *");
        let spec = Spec::parse(&pattern).unwrap();
        let next = spec.next_after(None, ts * NANOS).unwrap() / NANOS;
        prop_assert!(next > ts);
        prop_assert!(matches(&spec, next), "{pattern} -> {next}");
        // Within a day everything in these patterns matches at least once.
        prop_assert!(next - ts <= 86_400 * 2);
        for s in ts + 1..next {
            prop_assert!(!matches(&spec, s), "{pattern}: {s} matched before {next}");
        }
    }

    #[test]
    fn zoned_next_matches_wall_clock(
        hour in 0i64..24, min in 0i64..60,
        ts in 1_700_000_000i64..1_900_000_000,
        zone in prop::sample::select(vec!["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]),
    ) {
        let zone = load_zone(zone);
        let spec = Spec::parse(&format!("0 {min} {hour} * * *")).unwrap();
        let next = spec.next_after(zone, ts * NANOS).unwrap() / NANOS;
        prop_assert!(next > ts);
        let l = local(zone, next);
        prop_assert_eq!((l.hour, l.minute, l.second), (hour, min, 0));
        prop_assert!(next - ts <= 86_400 * 3);
    }

    #[test]
    fn civil_round_trips(days in -1_000_000i64..1_000_000) {
        let (y, m, d) = civil_from_days(days);
        prop_assert_eq!(days_from_civil(y, m, d), days);
    }

    #[test]
    fn garbage_never_panics(p in "\\PC{0,40}") {
        let _ = next_fire(&p, None, 0, 0);
    }
}
