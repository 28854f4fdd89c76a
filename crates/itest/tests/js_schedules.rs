//! Message schedules (ADR-51) driven with async-nats: `@at` fires once and
//! purges its schedule, `@every` and cron (with seconds, in a time zone)
//! fire again with nats-server's headers, TTL/rollup/source reach the
//! produced message, a replaced or deleted schedule stops, every refusal
//! carries nats-server's error code, and a schedule due while the server was
//! SIGKILLed fires once after the restart. Each test also runs against the
//! reference nats-server (`RNATS_SERVER_BIN=<nats-server>`).

use std::time::Duration;

use async_nats::HeaderMap;
use base64::Engine;
use rnats_itest::{connect, js_server, start_jetstream, within};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(30);

/// A refused publish: subject, headers, expected `err_code`.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u64);

async fn api(nc: &async_nats::Client, subject: &str, body: Value) -> Value {
    let r = nc
        .request(subject.to_string(), body.to_string().into())
        .await
        .expect("api request");
    serde_json::from_slice(&r.payload).expect("api json")
}

async fn create(nc: &async_nats::Client, cfg: Value) {
    let name = cfg["name"].as_str().expect("name").to_string();
    let r = api(nc, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await;
    assert!(r["error"].is_null(), "create {name}: {r}");
}

/// Publishes with headers; the PubAck.
async fn publish(
    nc: &async_nats::Client,
    subject: &str,
    hdrs: &[(&str, &str)],
    body: &str,
) -> Value {
    let mut h = HeaderMap::new();
    for (k, v) in hdrs {
        h.insert(*k, *v);
    }
    let r = nc
        .request_with_headers(subject.to_string(), h, body.to_string().into())
        .await
        .expect("publish");
    serde_json::from_slice(&r.payload).expect("puback json")
}

fn err_code(ack: &Value) -> u64 {
    ack["error"]["err_code"].as_u64().unwrap_or(0)
}

/// A stored message: (seq, headers as (name, value) lines, body).
struct Msg {
    seq: u64,
    hdrs: Vec<(String, String)>,
    body: String,
}

impl Msg {
    fn header(&self, name: &str) -> Option<&str> {
        self.hdrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn get(nc: &async_nats::Client, stream: &str, req: Value) -> Option<Msg> {
    let r = api(nc, &format!("$JS.API.STREAM.MSG.GET.{stream}"), req).await;
    if !r["error"].is_null() {
        return None;
    }
    let b64 = |v: &Value| {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64");
        String::from_utf8(raw).expect("utf-8")
    };
    let hdrs = b64(&r["message"]["hdrs"])
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Msg {
        seq: r["message"]["seq"].as_u64().unwrap_or(0),
        hdrs,
        body: b64(&r["message"]["data"]),
    })
}

async fn last(nc: &async_nats::Client, stream: &str, subject: &str) -> Option<Msg> {
    get(nc, stream, json!({ "last_by_subj": subject })).await
}

/// Waits (polling) for a message on `subject` newer than `after`.
async fn wait_for(nc: &async_nats::Client, stream: &str, subject: &str, after: u64) -> Msg {
    loop {
        if let Some(m) = last(nc, stream, subject).await.filter(|m| m.seq > after) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages per subject in the stream.
async fn count(nc: &async_nats::Client, stream: &str, subject: &str) -> u64 {
    let r = api(
        nc,
        &format!("$JS.API.STREAM.INFO.{stream}"),
        json!({ "subjects_filter": subject }),
    )
    .await;
    r["state"]["subjects"][subject].as_u64().unwrap_or(0)
}

/// RFC 3339 in UTC, `secs` from now (whole seconds).
fn at_in(secs: u64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + secs;
    let (days, tod) = ((t / 86_400) as i64, t % 86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

fn sched_stream(name: &str, subjects: &[&str]) -> Value {
    json!({"name": name, "subjects": subjects, "storage": "memory",
           "allow_msg_schedules": true, "allow_msg_ttl": true})
}

/// Whether a `Nats-Schedule-Next` is a time in RFC 3339 (Go's RFC3339Nano).
fn is_rfc3339(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && (v.ends_with('Z') || b[b.len() - 3] == b':')
}

#[tokio::test]
async fn at_fires_once_then_its_schedule_is_purged() {
    let (server, _store) = js_server();
    within(LIMIT, "@at", async {
        let nc = connect(&server).await;
        create(&nc, sched_stream("S", &["s.>"])).await;
        let ack = publish(
            &nc,
            "s.sched",
            &[
                ("Nats-Schedule", &format!("@at {}", at_in(1))),
                ("Nats-Schedule-Target", "s.target"),
                ("Nats-Msg-Id", "m1"),
                ("Nats-Expected-Stream", "S"),
                ("Custom", "x"),
            ],
            "hello",
        )
        .await;
        assert_eq!(ack["seq"], 1, "{ack}");
        // The schedule is stored with a subject rollup added.
        let sched = last(&nc, "S", "s.sched").await.expect("schedule stored");
        assert_eq!(sched.header("Nats-Rollup"), Some("sub"));

        let m = wait_for(&nc, "S", "s.target", 0).await;
        assert_eq!(m.body, "hello");
        assert_eq!(m.header("Nats-Scheduler"), Some("s.sched"));
        assert_eq!(m.header("Nats-Schedule-Next"), Some("purge"));
        assert_eq!(m.header("Custom"), Some("x"));
        for gone in [
            "Nats-Schedule",
            "Nats-Schedule-Target",
            "Nats-Msg-Id",
            "Nats-Expected-Stream",
            "Nats-Rollup",
            "Nats-TTL",
        ] {
            assert_eq!(m.header(gone), None, "{gone}");
        }
        assert_eq!(
            count(&nc, "S", "s.sched").await,
            0,
            "one-shot schedule purged"
        );
        assert_eq!(count(&nc, "S", "s.target").await, 1);

        // A deleted schedule never fires.
        let ack = publish(
            &nc,
            "s.sched2",
            &[
                ("Nats-Schedule", &format!("@at {}", at_in(1))),
                ("Nats-Schedule-Target", "s.target2"),
            ],
            "",
        )
        .await;
        let seq = ack["seq"].as_u64().expect("seq");
        let del = api(&nc, "$JS.API.STREAM.MSG.DELETE.S", json!({"seq": seq})).await;
        assert_eq!(del["success"], true, "{del}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(count(&nc, "S", "s.target2").await, 0);
    })
    .await;
}

#[tokio::test]
async fn every_repeats_until_replaced_or_purged() {
    let (server, _store) = js_server();
    within(LIMIT, "@every", async {
        let nc = connect(&server).await;
        create(&nc, sched_stream("E", &["e.>"])).await;
        let every = [
            ("Nats-Schedule", "@every 1s"),
            ("Nats-Schedule-Target", "e.tick"),
        ];
        let ack = publish(&nc, "e.sched", &every, "tick").await;
        assert!(ack["error"].is_null(), "{ack}");
        let first = wait_for(&nc, "E", "e.tick", 0).await;
        let second = wait_for(&nc, "E", "e.tick", first.seq).await;
        for m in [&first, &second] {
            assert_eq!(m.body, "tick");
            assert_eq!(m.header("Nats-Scheduler"), Some("e.sched"));
            let next = m.header("Nats-Schedule-Next").expect("next");
            assert!(is_rfc3339(next) && next.ends_with('Z'), "{next}");
        }
        // The schedule stays while it repeats.
        assert_eq!(count(&nc, "E", "e.sched").await, 1);

        // Replaced (rollup) by a far-away schedule: no more ticks.
        let ack = publish(
            &nc,
            "e.sched",
            &[
                ("Nats-Schedule", "@every 1h"),
                ("Nats-Schedule-Target", "e.tick"),
            ],
            "",
        )
        .await;
        assert!(ack["error"].is_null(), "{ack}");
        assert_eq!(
            count(&nc, "E", "e.sched").await,
            1,
            "the old schedule was rolled up"
        );
        // A tick already being stored when the schedule was replaced may land.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ticks = count(&nc, "E", "e.tick").await;
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(count(&nc, "E", "e.tick").await, ticks);

        // A new fast schedule, then purged: it stops.
        publish(&nc, "e.sched", &every, "again").await;
        let m = wait_for(&nc, "E", "e.tick", second.seq).await;
        assert_eq!(m.body, "again");
        let purged = api(&nc, "$JS.API.STREAM.PURGE.E", json!({"filter": "e.sched"})).await;
        assert_eq!(purged["success"], true, "{purged}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ticks = count(&nc, "E", "e.tick").await;
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(count(&nc, "E", "e.tick").await, ticks);
    })
    .await;
}

#[tokio::test]
async fn cron_with_seconds_and_a_time_zone() {
    let (server, _store) = js_server();
    within(LIMIT, "cron", async {
        let nc = connect(&server).await;
        create(&nc, sched_stream("C", &["c.>"])).await;
        let ack = publish(
            &nc,
            "c.utc",
            &[
                ("Nats-Schedule", "*/1 * * * * *"),
                ("Nats-Schedule-Target", "c.out"),
            ],
            "u",
        )
        .await;
        assert!(ack["error"].is_null(), "{ack}");
        let ack = publish(
            &nc,
            "c.tz",
            &[
                ("Nats-Schedule", "* * * * * *"),
                ("Nats-Schedule-Time-Zone", "Asia/Kolkata"),
                ("Nats-Schedule-Target", "c.zoned"),
            ],
            "z",
        )
        .await;
        assert!(ack["error"].is_null(), "{ack}");
        let m = wait_for(&nc, "C", "c.out", 0).await;
        let next = m.header("Nats-Schedule-Next").expect("next").to_string();
        assert!(is_rfc3339(&next) && next.ends_with('Z'), "{next}");
        let again = wait_for(&nc, "C", "c.out", m.seq).await;
        assert_eq!(again.header("Nats-Scheduler"), Some("c.utc"));
        let z = wait_for(&nc, "C", "c.zoned", 0).await;
        let next = z.header("Nats-Schedule-Next").expect("next");
        assert!(is_rfc3339(next) && next.ends_with("+05:30"), "{next}");
        assert_eq!(z.body, "z");
    })
    .await;
}

#[tokio::test]
async fn ttl_rollup_and_source_reach_the_produced_message() {
    let (server, _store) = js_server();
    within(LIMIT, "ttl/source", async {
        let nc = connect(&server).await;
        create(&nc, sched_stream("T", &["t.>"])).await;
        let ack = publish(&nc, "t.src", &[("Src", "1"), ("Nats-TTL", "1h")], "latest").await;
        assert!(ack["error"].is_null(), "{ack}");
        let ack = publish(
            &nc,
            "t.sched",
            &[
                ("Nats-Schedule", &format!("@at {}", at_in(1))),
                ("Nats-Schedule-Target", "t.out"),
                ("Nats-Schedule-TTL", "5m"),
                ("Nats-Schedule-Rollup", "sub"),
                ("Nats-Schedule-Source", "t.src"),
            ],
            "own body",
        )
        .await;
        assert!(ack["error"].is_null(), "{ack}");
        let m = wait_for(&nc, "T", "t.out", 0).await;
        assert_eq!(m.body, "latest");
        assert_eq!(m.header("Src"), Some("1"));
        assert_eq!(m.header("Nats-TTL"), Some("5m"));
        assert_eq!(m.header("Nats-Rollup"), Some("sub"));
        assert_eq!(m.header("Nats-Scheduler"), Some("t.sched"));
        assert_eq!(m.header("Nats-Schedule-Next"), Some("purge"));

        // Without a message on the source, the schedule's own body is used.
        publish(
            &nc,
            "t.sched",
            &[
                ("Nats-Schedule", &format!("@at {}", at_in(0))),
                ("Nats-Schedule-Target", "t.out"),
                ("Nats-Schedule-Source", "t.none"),
            ],
            "fallback",
        )
        .await;
        let n = wait_for(&nc, "T", "t.out", m.seq).await;
        assert_eq!(n.body, "fallback");
    })
    .await;
}

#[tokio::test]
async fn invalid_schedules_get_nats_server_errors() {
    let (server, _store) = js_server();
    within(LIMIT, "errors", async {
        let nc = connect(&server).await;
        create(&nc, sched_stream("V", &["v.>"])).await;
        create(&nc, json!({"name": "N", "subjects": ["n.>"], "storage": "memory", "allow_msg_ttl": true})).await;
        create(&nc, json!({"name": "L", "subjects": ["l.>"], "storage": "memory", "allow_msg_schedules": true})).await;
        let at = format!("@at {}", at_in(3600));
        let t = ("Nats-Schedule-Target", "v.out");
        let cases: Vec<Case> = vec![
            ("n.s", vec![("Nats-Schedule", &at), ("Nats-Schedule-Target", "n.out")], 10188),
            ("n.s", vec![("Nats-Schedule", "bogus")], 10188),
            ("n.s", vec![("Nats-Schedule-Time-Zone", "Mars/Base")], 10188),
            ("n.s", vec![("Nats-Schedule-Next", "purge"), ("Nats-Scheduler", "n.x")], 10188),
            ("v.s", vec![("Nats-Schedule", "bogus"), t], 10189),
            ("v.s", vec![("Nats-Schedule", "@every 500ms"), t], 10189),
            ("v.s", vec![("Nats-Schedule", "* * * * *"), t], 10189),
            ("v.s", vec![("Nats-Schedule", "61 * * * * *"), t], 10189),
            ("v.s", vec![("Nats-Schedule", "@at 2026-01-01"), t], 10189),
            ("v.s", vec![("Nats-Schedule", "@every 1s"), ("Nats-Schedule-Time-Zone", "Europe/Amsterdam"), t], 10189),
            ("v.s", vec![("Nats-Schedule", &at), ("Nats-Schedule-Time-Zone", "UTC"), t], 10189),
            ("v.s", vec![("Nats-Schedule", "@daily"), ("Nats-Schedule-Time-Zone", "Mars/Base"), t], 10223),
            ("v.s", vec![("Nats-Schedule", "@daily"), ("Nats-Schedule-Time-Zone", ""), t], 10223),
            ("v.s", vec![("Nats-Schedule", &at)], 10190),
            ("v.s", vec![("Nats-Schedule", &at), ("Nats-Schedule-Target", "v.s")], 10190),
            ("v.s", vec![("Nats-Schedule", &at), ("Nats-Schedule-Target", "v.*")], 10190),
            ("v.s", vec![("Nats-Schedule", &at), ("Nats-Schedule-Target", "elsewhere")], 10190),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Schedule-TTL", "500ms")], 10191),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Schedule-TTL", "soon")], 10191),
            ("l.s", vec![("Nats-Schedule", &at), ("Nats-Schedule-Target", "l.out"), ("Nats-Schedule-TTL", "5m")], 10166),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Schedule-Rollup", "all")], 10192),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Rollup", "all")], 10192),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Schedule-Source", "v.out")], 10203),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Schedule-Source", "v.s")], 10203),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Schedule-Source", "v.>")], 10203),
            ("v.s", vec![("Nats-Schedule", &at), t, ("Nats-Schedule-Source", "other")], 10203),
            ("v.s", vec![("Nats-Scheduler", "v.x")], 10212),
            ("v.s", vec![("Nats-Schedule-Next", "2030-01-01T00:00:00Z"), ("Nats-Scheduler", "v.x")], 10212),
            ("v.s", vec![("Nats-Schedule-Next", "purge")], 10212),
            ("v.s", vec![("Nats-Schedule-Next", "purge"), ("Nats-Scheduler", "v.s")], 10212),
            ("v.s", vec![("Nats-Schedule-Next", "purge"), ("Nats-Scheduler", "v.*")], 10212),
        ];
        for (subject, hdrs, code) in &cases {
            let ack = publish(&nc, subject, hdrs, "").await;
            assert_eq!(err_code(&ack), *code, "{subject} {hdrs:?}: {ack}");
        }
        // A purge naming a subject whose last message is not a schedule.
        publish(&nc, "v.plain", &[], "x").await;
        let ack = publish(&nc, "v.s", &[("Nats-Schedule-Next", "purge"), ("Nats-Scheduler", "v.plain")], "").await;
        assert_eq!(err_code(&ack), 10212, "{ack}");
        // ..but a client may purge a real schedule, or a subject with no messages.
        let ack = publish(&nc, "v.live", &[("Nats-Schedule", &at), t], "").await;
        assert!(ack["error"].is_null(), "{ack}");
        let ack = publish(&nc, "v.s", &[("Nats-Schedule-Next", "purge"), ("Nats-Scheduler", "v.live")], "").await;
        assert!(ack["error"].is_null(), "{ack}");
        assert_eq!(count(&nc, "V", "v.live").await, 0, "schedule purged by the client");
        let ack = publish(&nc, "v.s", &[("Nats-Schedule-Next", "purge"), ("Nats-Scheduler", "v.none")], "").await;
        assert!(ack["error"].is_null(), "{ack}");
        // Headers a stream without schedules does not look at.
        let ack = publish(&nc, "n.s", &[("Nats-Schedule-Target", "n.out")], "").await;
        assert!(ack["error"].is_null(), "{ack}");

        // Schedules can be turned on by an update (and then work), not off.
        let off = api(
            &nc,
            "$JS.API.STREAM.UPDATE.V",
            json!({"name": "V", "subjects": ["v.>"], "storage": "memory", "allow_msg_ttl": true}),
        )
        .await;
        assert_eq!(off["error"]["err_code"], 10052, "{off}");
        assert_eq!(off["error"]["description"], "message schedules can not be disabled");
        let on = api(
            &nc,
            "$JS.API.STREAM.UPDATE.N",
            json!({"name": "N", "subjects": ["n.>"], "storage": "memory", "allow_msg_ttl": true, "allow_msg_schedules": true}),
        )
        .await;
        assert!(on["error"].is_null(), "{on}");
        let ack = publish(
            &nc,
            "n.s",
            &[("Nats-Schedule", &format!("@at {}", at_in(0))), ("Nats-Schedule-Target", "n.out")],
            "now on",
        )
        .await;
        assert!(ack["error"].is_null(), "{ack}");
        assert_eq!(wait_for(&nc, "N", "n.out", 0).await.body, "now on");
    })
    .await;
}

#[tokio::test]
async fn a_schedule_due_during_a_kill_fires_once_after_restart() {
    let store = tempfile::tempdir().expect("store");
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "restart", async {
        let nc = connect(&server).await;
        let mut cfg = sched_stream("R", &["r.>"]);
        cfg["storage"] = json!("file");
        create(&nc, cfg).await;
        let ack = publish(
            &nc,
            "r.sched",
            &[
                ("Nats-Schedule", &format!("@at {}", at_in(2))),
                ("Nats-Schedule-Target", "r.out"),
            ],
            "late",
        )
        .await;
        assert!(ack["error"].is_null(), "{ack}");
        let ack = publish(
            &nc,
            "r.every",
            &[
                ("Nats-Schedule", "@every 1h"),
                ("Nats-Schedule-Target", "r.hourly"),
            ],
            "",
        )
        .await;
        assert!(ack["error"].is_null(), "{ack}");
    })
    .await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "after restart", async {
        let nc = connect(&server).await;
        let m = wait_for(&nc, "R", "r.out", 0).await;
        assert_eq!(m.body, "late");
        assert_eq!(m.header("Nats-Schedule-Next"), Some("purge"));
        assert_eq!(count(&nc, "R", "r.sched").await, 0);
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(count(&nc, "R", "r.out").await, 1, "fired once");
        // The repeating schedule survived, not yet due.
        assert_eq!(count(&nc, "R", "r.every").await, 1);
        assert_eq!(count(&nc, "R", "r.hourly").await, 0);
    })
    .await;
}

/// Publishes message `seq` of atomic batch `id` (committing it when
/// `commit`); the reply body ("" for a staged message).
async fn batch_msg(
    nc: &async_nats::Client,
    subject: &str,
    id: &str,
    seq: u64,
    commit: bool,
    extra: &[(&str, &str)],
) -> String {
    let mut h = HeaderMap::new();
    h.insert("Nats-Batch-Id", id);
    h.insert("Nats-Batch-Sequence", seq.to_string().as_str());
    if commit {
        h.insert("Nats-Batch-Commit", "1");
    }
    for (k, v) in extra {
        h.insert(*k, *v);
    }
    let r = nc
        .request_with_headers(subject.to_string(), h, "b".into())
        .await
        .expect("batch publish");
    String::from_utf8(r.payload.to_vec()).expect("utf-8")
}

fn reply_code(reply: &str) -> u64 {
    err_code(&serde_json::from_str(reply).unwrap_or_default())
}

#[tokio::test]
async fn atomic_batches_check_and_store_schedules() {
    let (server, _store) = js_server();
    within(LIMIT, "batches", async {
        let nc = connect(&server).await;
        let mut cfg = sched_stream("A", &["a.>"]);
        cfg["allow_atomic"] = json!(true);
        create(&nc, cfg).await;
        // A schedule in a batch fires like a published one.
        let at = format!("@at {}", at_in(1));
        let r = batch_msg(
            &nc,
            "a.sched",
            "b1",
            1,
            false,
            &[("Nats-Schedule", &at), ("Nats-Schedule-Target", "a.out")],
        )
        .await;
        assert_eq!(r, "");
        let r = batch_msg(&nc, "a.x", "b1", 2, true, &[]).await;
        assert_eq!(reply_code(&r), 0, "{r}");
        let sched = last(&nc, "A", "a.sched").await.expect("schedule stored");
        assert_eq!(sched.header("Nats-Rollup"), Some("sub"));
        let m = wait_for(&nc, "A", "a.out", 0).await;
        assert_eq!(m.header("Nats-Scheduler"), Some("a.sched"));

        // A schedule written earlier in the batch may be purged by the commit.
        let later = format!("@at {}", at_in(3600));
        batch_msg(
            &nc,
            "a.s2",
            "b2",
            1,
            false,
            &[("Nats-Schedule", &later), ("Nats-Schedule-Target", "a.out")],
        )
        .await;
        let r = batch_msg(
            &nc,
            "a.y",
            "b2",
            2,
            true,
            &[("Nats-Schedule-Next", "purge"), ("Nats-Scheduler", "a.s2")],
        )
        .await;
        assert_eq!(reply_code(&r), 0, "{r}");
        assert_eq!(count(&nc, "A", "a.s2").await, 0);

        // ..but not a plain message written earlier in the batch.
        batch_msg(&nc, "a.plain", "b3", 1, false, &[]).await;
        let r = batch_msg(
            &nc,
            "a.z",
            "b3",
            2,
            true,
            &[
                ("Nats-Schedule-Next", "purge"),
                ("Nats-Scheduler", "a.plain"),
            ],
        )
        .await;
        assert_eq!(reply_code(&r), 10212, "{r}");
        // An invalid schedule refuses the whole batch.
        batch_msg(&nc, "a.ok", "b4", 1, false, &[]).await;
        let r = batch_msg(
            &nc,
            "a.s3",
            "b4",
            2,
            true,
            &[
                ("Nats-Schedule", &later),
                ("Nats-Schedule-Target", "elsewhere"),
            ],
        )
        .await;
        assert_eq!(reply_code(&r), 10190, "{r}");
        assert_eq!(count(&nc, "A", "a.ok").await, 0);
    })
    .await;
}
