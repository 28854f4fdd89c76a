//! Slow consumers: with `max_pending: 65536` (and `max_payload: 65536`,
//! since nats-server rejects max_payload > max_pending) a raw subscriber that
//! never reads is disconnected by the server, while a normal async-nats
//! subscriber on the same subject receives every message and the publisher's
//! round trip completes promptly (the stuck reader must not stall it).
//!
//! The same 64 KiB limit applies to the good subscriber, so the publisher
//! paces itself in 32 KiB batches, waiting for the good subscriber to catch
//! up before sending the next; the stuck reader's backlog still grows without
//! bound (past the kernel socket buffers) until the server cuts it off.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, sync, within, RawClient, Server};

const MSGS: usize = 1_000;
const SIZE: usize = 8 * 1024;
// Half of max_pending per burst: a healthy reader must not sit at the limit.
const BATCH: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_reader_is_cut_off_others_unaffected() {
    // nats-server refuses a max_pending below max_payload, so lower both.
    let server = Server::start_with_config("max_payload: 65536\nmax_pending: 65536\n");
    within(Duration::from_secs(40), "slow consumer", async {
        // A small receive buffer so the kernel soaks up little of the backlog.
        let mut stuck = RawClient::connect_with_recv_buffer(server.port(), 4096).await;
        stuck.handshake().await;
        stuck.send(b"SUB slow.subj 1\r\nPING\r\n").await;
        let (out, _) = stuck
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert_eq!(out, b"PONG\r\n");
        // From here on `stuck` does not read until the end of the test.

        let good = connect(&server).await;
        let mut sub = good.subscribe("slow.subj").await.unwrap();
        sync(&good).await;
        let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
        let reader = tokio::spawn(async move {
            let mut n = 0usize;
            while n < MSGS {
                let m = sub.next().await.expect("good subscription ended");
                assert_eq!(m.payload.len(), SIZE);
                assert_eq!(&m.payload[..8], &(n as u64).to_be_bytes());
                n += 1;
                let _ = progress_tx.send(n);
            }
            n
        });

        let publisher = connect(&server).await;
        let started = Instant::now();
        for i in 0..MSGS {
            let mut p = vec![0xA5u8; SIZE];
            p[..8].copy_from_slice(&(i as u64).to_be_bytes());
            publisher
                .publish("slow.subj", Bytes::from(p))
                .await
                .unwrap();
            if (i + 1) % BATCH == 0 {
                // Let the good subscriber catch up (it is bounded by
                // max_pending too); the stuck one never does.
                within(
                    Duration::from_secs(10),
                    "good subscriber falling behind",
                    progress.wait_for(|n| *n > i),
                )
                .await
                .expect("good subscriber task ended");
            }
        }
        publisher.flush().await.unwrap();
        // A full round trip on the publisher's connection: the server has
        // processed (and fanned out) every message.
        within(
            Duration::from_secs(10),
            "publisher round trip stalled behind a slow consumer",
            sync(&publisher),
        )
        .await;
        let publish_time = started.elapsed();
        eprintln!("published {MSGS} x {SIZE} B in {publish_time:?}");

        let n = tokio::time::timeout(Duration::from_secs(15), reader)
            .await
            .expect("good subscriber did not get all messages in time")
            .unwrap();
        assert_eq!(n, MSGS);

        // The stuck reader was disconnected: reading now drains whatever the
        // kernel buffered and then hits EOF/reset.
        let (data, closed) = stuck.wait_closed(Duration::from_secs(10)).await;
        assert!(
            closed,
            "slow consumer was not disconnected ({} bytes read)",
            data.len()
        );
        eprintln!("stuck reader got {} bytes before being cut off", data.len());
        for l in server
            .log()
            .lines()
            .filter(|l| l.contains("Slow") || l.contains("slow"))
        {
            eprintln!("server log: {l}");
        }
        assert!(
            data.len() < MSGS * SIZE,
            "slow consumer got everything ({} bytes) yet was expected to be cut off",
            data.len()
        );
        assert!(
            publish_time < Duration::from_secs(10),
            "publishing took {publish_time:?}"
        );
    })
    .await;
}
