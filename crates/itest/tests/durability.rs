//! Durability beyond nats-server: a damaged record in a stream's block file
//! costs that record alone (the rest is served, in order, and the damage is
//! reported), the offline `--check-store` finds the damage without changing
//! anything, and a confirmed (double) ack survives a SIGKILL.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream::Config};
use futures::StreamExt;
use rnats_itest::{server_bin, start_jetstream, within};

const LIMIT: Duration = Duration::from_secs(40);

fn blocks(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "blk") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn check_store(dir: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(server_bin())
        .arg("--check-store")
        .arg(dir)
        .output()
        .expect("run --check-store");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn a_flipped_byte_costs_one_record_and_is_reported() {
    if std::env::var("RNATS_SERVER_BIN").is_ok_and(|b| !b.contains("rnats")) {
        eprintln!("skipping: --check-store and corruption reporting are rnats features");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let mut server = start_jetstream(store.path(), &[]);
    within(LIMIT, "corruption", async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = jetstream::new(client);
        js.create_stream(Config {
            name: "DUR".into(),
            subjects: vec!["dur.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        for i in 0..500u32 {
            js.publish("dur.x", format!("message-{i:04}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    })
    .await;
    server.signal(libc::SIGTERM);
    server
        .wait_exit(Duration::from_secs(10))
        .expect("clean exit");

    let (ok, text) = check_store(store.path());
    assert!(ok, "clean store reported damaged:\n{text}");
    assert!(text.contains("500 messages"), "{text}");

    // Flip one byte in the middle of the (only) block.
    let blk = blocks(store.path()).pop().expect("a block file");
    let mut data = std::fs::read(&blk).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x5a;
    std::fs::write(&blk, &data).unwrap();
    let (ok, text) = check_store(store.path());
    assert!(!ok, "damage not found:\n{text}");
    assert!(text.contains("damaged"), "{text}");
    assert_eq!(
        std::fs::read(&blk).unwrap(),
        data,
        "--check-store changed the file"
    );

    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "after corruption", async {
        assert!(
            server.wait_for_log("damaged data", Duration::from_secs(5)),
            "no warning in log:\n{}",
            server.log()
        );
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = jetstream::new(client);
        let mut stream = js.get_stream("DUR").await.unwrap();
        let info = stream.info().await.unwrap().clone();
        assert!(
            (499..=500).contains(&info.state.messages),
            "lost more than one record: {:?}",
            info.state
        );
        // Everything left is intact and in order.
        let c: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("R".into()),
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut msgs = c.fetch().max_messages(600).messages().await.unwrap();
        let mut last = None;
        let mut n = 0;
        while let Some(m) = msgs.next().await {
            let m = m.unwrap();
            let text = String::from_utf8(m.payload.to_vec()).unwrap();
            let i: u32 = text.strip_prefix("message-").unwrap().parse().unwrap();
            assert!(
                last.is_none_or(|l| i > l),
                "out of order: {i} after {last:?}"
            );
            last = Some(i);
            n += 1;
        }
        assert_eq!(n as u64, info.state.messages);
    })
    .await;
}

#[tokio::test]
async fn confirmed_acks_survive_sigkill() {
    let store = tempfile::tempdir().unwrap();
    let mut server = start_jetstream(store.path(), &[]);
    let acked = within(LIMIT, "confirmed acks", async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = jetstream::new(client);
        let stream = js
            .create_stream(Config {
                name: "CA".into(),
                subjects: vec!["ca.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        for i in 0..100u32 {
            js.publish("ca.x", i.to_string().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let c: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("W".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut msgs = c.fetch().max_messages(60).messages().await.unwrap();
        let mut acked = Vec::new();
        while let Some(m) = msgs.next().await {
            let m = m.unwrap();
            m.double_ack().await.unwrap();
            acked.push(m.info().unwrap().stream_sequence);
        }
        acked
    })
    .await;
    assert_eq!(acked.len(), 60);
    // No grace period: the confirmation itself must mean "on disk".
    server.kill();
    let server = start_jetstream(store.path(), &[]);
    within(LIMIT, "after kill", async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = jetstream::new(client);
        let stream = js.get_stream("CA").await.unwrap();
        let c: consumer::PullConsumer = stream.get_consumer("W").await.unwrap();
        let mut msgs = c.fetch().max_messages(100).messages().await.unwrap();
        while let Some(m) = msgs.next().await {
            let seq = m.unwrap().info().unwrap().stream_sequence;
            assert!(
                !acked.contains(&seq),
                "confirmed ack of seq {seq} was undone"
            );
        }
    })
    .await;
}

/// xorshift: the same damage for the same seed, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

fn consumer_state(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with(format!("obs/{name}/state.json")) {
                return p;
            }
        }
    }
    panic!("no state.json for consumer {name} under {}", dir.display());
}

/// The `/jsz` total of damaged records, through the monitor port in the log.
async fn jsz_corrupt_records(server: &rnats_itest::Server) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let log = server.log();
    let port: u16 = log
        .lines()
        .find(|l| l.contains("Starting http monitor on "))
        .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no monitor line in:\n{log}"));
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /jsz HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str::<serde_json::Value>(body).unwrap()["corrupt_records"].clone()
}

/// For several seeds: a stopped server's block file and a durable's state file each get a
/// byte flipped at a random offset. After restart every message outside the damaged record
/// is served in order, the consumer never skips a message it was not acked for (it may
/// redeliver: it falls back to its previous saved state), and both damages are reported.
#[tokio::test]
async fn random_damage_to_blocks_and_consumer_state_costs_only_the_damaged_record() {
    if std::env::var("RNATS_SERVER_BIN").is_ok_and(|b| !b.contains("rnats")) {
        eprintln!("skipping: corruption reporting and state checksums are rnats features");
        return;
    }
    const N: u64 = 300;
    for seed in 1..=8u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let store = tempfile::tempdir().unwrap();
        let mut server = start_jetstream(store.path(), &[]);
        let acked = within(LIMIT, "fill and ack", async {
            let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
            let stream = js
                .create_stream(Config {
                    name: "RD".into(),
                    subjects: vec!["rd.>".into()],
                    ..Default::default()
                })
                .await
                .unwrap();
            for i in 1..=N {
                js.publish("rd.x", format!("message-{i:04}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
            let c: consumer::PullConsumer = stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some("C".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_millis(500),
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut msgs = c.fetch().max_messages(150).messages().await.unwrap();
            let mut acked = std::collections::BTreeSet::new();
            while let Some(m) = msgs.next().await {
                let m = m.unwrap();
                let seq = m.info().unwrap().stream_sequence;
                if seq % 3 != 0 {
                    m.double_ack().await.unwrap();
                    acked.insert(seq);
                }
            }
            acked
        })
        .await;
        server.signal(libc::SIGTERM);
        server
            .wait_exit(Duration::from_secs(10))
            .expect("clean exit");

        let blk = blocks(store.path()).pop().expect("a block file");
        let mut data = std::fs::read(&blk).unwrap();
        let at = rng.below(data.len());
        data[at] ^= 1 + rng.below(255) as u8;
        std::fs::write(&blk, &data).unwrap();
        let state = consumer_state(store.path(), "C");
        let mut data = std::fs::read(&state).unwrap();
        // Not the final newline: turning it into other whitespace changes nothing.
        let sat = rng.below(data.len() - 1);
        data[sat] ^= 1 + rng.below(255) as u8;
        std::fs::write(&state, &data).unwrap();
        let what = format!("seed {seed}: block byte {at}, state byte {sat}");

        let server = start_jetstream(store.path(), &["-m", "-1"]);
        within(LIMIT, "after damage", async {
            assert!(
                server.wait_for_log("damaged data", Duration::from_secs(5)),
                "{what}: no block damage in log:\n{}",
                server.log()
            );
            assert!(
                server.wait_for_log("Consumer state in", Duration::from_secs(5)),
                "{what}: no consumer state damage in log:\n{}",
                server.log()
            );
            assert_eq!(jsz_corrupt_records(&server).await, 2, "{what}");
            let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
            let stream = js.get_stream("RD").await.unwrap();
            // Every message but (at most) the damaged one, intact and in order.
            let all: consumer::PullConsumer = stream
                .create_consumer(consumer::pull::Config {
                    ack_policy: consumer::AckPolicy::None,
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut msgs = all.fetch().max_messages(400).messages().await.unwrap();
            let mut present = Vec::new();
            while let Some(m) = msgs.next().await {
                let m = m.unwrap();
                let seq = m.info().unwrap().stream_sequence;
                assert_eq!(
                    m.payload,
                    format!("message-{seq:04}").as_bytes(),
                    "{what}: content of {seq}"
                );
                assert!(present.last().is_none_or(|l| *l < seq), "{what}: order");
                present.push(seq);
            }
            assert!(
                present.len() as u64 >= N - 1,
                "{what}: only {}",
                present.len()
            );
            // The durable owes every present message it was not confirmed-acked for.
            let owed: std::collections::BTreeSet<u64> = present
                .iter()
                .copied()
                .filter(|s| !acked.contains(s))
                .collect();
            let c: consumer::PullConsumer = stream.get_consumer("C").await.unwrap();
            let mut got = std::collections::BTreeSet::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while !owed.is_subset(&got) && std::time::Instant::now() < deadline {
                let mut msgs = c
                    .fetch()
                    .max_messages(400)
                    .expires(Duration::from_secs(1))
                    .messages()
                    .await
                    .unwrap();
                while let Some(m) = msgs.next().await {
                    let m = m.unwrap();
                    got.insert(m.info().unwrap().stream_sequence);
                    m.ack().await.unwrap();
                }
            }
            let skipped: Vec<_> = owed.difference(&got).collect();
            assert!(skipped.is_empty(), "{what}: never delivered {skipped:?}");
        })
        .await;
    }
}
