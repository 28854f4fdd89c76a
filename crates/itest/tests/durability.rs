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
