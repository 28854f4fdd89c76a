//! Queue groups: 4 queue subscribers on separate connections share 4,000
//! messages so that each message is delivered exactly once to the group and
//! every member gets a fair share (15%..35%), while a plain subscriber on the
//! same subject receives all 4,000 in order.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, sync, within, Server};

const N: u32 = 4_000;
const MEMBERS: usize = 4;

#[tokio::test]
async fn queue_group_delivers_each_message_once_and_fairly() {
    let server = Server::start(&[]);
    within(Duration::from_secs(30), "queue group", async {
        // Each member also subscribes to a plain "done" subject. The publisher
        // sends "done" after the work messages; since one publisher's messages
        // reach each connection in order, once a member sees "done" every
        // work message routed to it is already queued in its subscription.
        let mut members = Vec::new();
        for _ in 0..MEMBERS {
            let c = connect(&server).await;
            let q = c.queue_subscribe("work", "workers".into()).await.unwrap();
            let done = c.subscribe("done").await.unwrap();
            sync(&c).await;
            members.push(tokio::spawn(async move {
                let (mut q, mut done) = (q, done);
                let mut got = Vec::new();
                loop {
                    tokio::select! {
                        biased;
                        m = q.next() => {
                            let m = m.expect("queue subscription ended");
                            got.push(u32::from_be_bytes(m.payload[..].try_into().unwrap()));
                        }
                        d = done.next() => {
                            d.expect("done subscription ended");
                            break;
                        }
                    }
                }
                drop(c);
                got
            }));
        }

        let observer = connect(&server).await;
        let mut all = observer.subscribe("work").await.unwrap();
        sync(&observer).await;

        let publisher = connect(&server).await;
        for i in 0..N {
            publisher
                .publish("work", Bytes::from(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
        }
        publisher
            .publish("done", Bytes::from_static(b"done"))
            .await
            .unwrap();
        sync(&publisher).await;

        // The plain subscriber gets every message, in order.
        for i in 0..N {
            let m = all.next().await.expect("observer subscription ended");
            assert_eq!(u32::from_be_bytes(m.payload[..].try_into().unwrap()), i);
        }

        let mut seen = vec![0u32; N as usize];
        let mut shares = Vec::new();
        for m in members {
            let got = m.await.unwrap();
            shares.push(got.len());
            for seq in got {
                seen[seq as usize] += 1;
            }
        }
        let total: usize = shares.iter().sum();
        assert_eq!(
            total, N as usize,
            "total deliveries to the group; shares {shares:?}"
        );
        for (seq, count) in seen.iter().enumerate() {
            assert_eq!(
                *count, 1,
                "message {seq} delivered {count} times to the group"
            );
        }
        let lo = N as usize * 15 / 100;
        let hi = N as usize * 35 / 100;
        for s in &shares {
            assert!(
                (lo..=hi).contains(s),
                "unfair share: {shares:?} (each must be within {lo}..={hi})"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn queue_groups_are_independent() {
    // Two different groups on the same subject each get every message once.
    let server = Server::start(&[]);
    within(Duration::from_secs(20), "independent groups", async {
        let c = connect(&server).await;
        let mut a1 = c.queue_subscribe("jobs", "a".into()).await.unwrap();
        let mut a2 = c.queue_subscribe("jobs", "a".into()).await.unwrap();
        let mut b1 = c.queue_subscribe("jobs", "b".into()).await.unwrap();
        sync(&c).await;
        let p = connect(&server).await;
        for i in 0..100u32 {
            p.publish("jobs", Bytes::from(i.to_string())).await.unwrap();
        }
        sync(&p).await;
        // Group b has a single member: it gets all 100 in order.
        for i in 0..100u32 {
            let m = b1.next().await.unwrap();
            assert_eq!(m.payload, i.to_string().as_bytes());
        }
        // Group a: the two members together get exactly 100 distinct.
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 100 {
            tokio::select! {
                Some(m) = a1.next() => assert!(seen.insert(m.payload), "duplicate in group a"),
                Some(m) = a2.next() => assert!(seen.insert(m.payload), "duplicate in group a"),
            }
        }
    })
    .await;
}
