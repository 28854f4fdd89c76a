//! Many clients: 1,000 concurrent async-nats connections each subscribe to
//! their own subject, one publisher sends one message to each, and every
//! connection receives exactly its own message.

use std::time::Duration;

use bytes::Bytes;
use futures::{stream, StreamExt};
use rnats_itest::{next_msg, raise_nofile_limit, sync, within, Server};

const CONNS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_connections() {
    // Each connection needs a descriptor here and one in the server (which
    // inherits this process's limit).
    let limit = raise_nofile_limit(8192);
    assert!(
        limit >= 2 * CONNS as u64 + 100,
        "RLIMIT_NOFILE too low: {limit}"
    );
    let server = Server::start(&[]);
    let url = server.url();
    within(Duration::from_secs(45), "1000 connections", async {
        let clients: Vec<(usize, async_nats::Client, async_nats::Subscriber)> =
            stream::iter(0..CONNS)
                .map(|i| {
                    let url = url.clone();
                    async move {
                        let c = async_nats::ConnectOptions::new()
                            .subscription_capacity(16)
                            .connect(url)
                            .await
                            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
                        let s = c.subscribe(format!("conn.{i}")).await.unwrap();
                        sync(&c).await;
                        (i, c, s)
                    }
                })
                .buffer_unordered(100)
                .collect()
                .await;
        assert_eq!(clients.len(), CONNS);

        // Distinct client ids.
        let mut ids: Vec<u64> = clients
            .iter()
            .map(|(_, c, _)| c.server_info().client_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CONNS, "client ids are not unique");

        let publisher = async_nats::connect(&url).await.unwrap();
        for i in 0..CONNS {
            publisher
                .publish(format!("conn.{i}"), Bytes::from(format!("hello {i}")))
                .await
                .unwrap();
        }
        sync(&publisher).await;

        let received = stream::iter(clients)
            .map(|(i, c, mut s)| async move {
                let m = next_msg(&mut s).await;
                assert_eq!(m.subject.as_str(), format!("conn.{i}"));
                assert_eq!(m.payload, format!("hello {i}").as_bytes());
                drop(c);
                1usize
            })
            .buffer_unordered(CONNS)
            .fold(0, |a, b| async move { a + b })
            .await;
        assert_eq!(received, CONNS);
    })
    .await;
}
