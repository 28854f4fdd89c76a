//! Core publish/subscribe: plain delivery, `*` and `>` wildcards (matching and
//! non-matching subjects), many subjects on one connection, a payload of
//! exactly max_payload, exact preservation of binary payloads (including CRLF
//! and protocol-looking bytes), and per-publisher ordering.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::{connect, next_msg, sync, within, Server};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn publish_subscribe_basic() {
    let server = Server::start(&[]);
    within(LIMIT, "publish_subscribe_basic", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut sub = sub_client.subscribe("greet.hello").await.unwrap();
        sync(&sub_client).await;

        pub_client
            .publish("greet.hello", Bytes::from_static(b"world"))
            .await
            .unwrap();
        sync(&pub_client).await;

        let m = next_msg(&mut sub).await;
        assert_eq!(m.subject.as_str(), "greet.hello");
        assert_eq!(&m.payload[..], b"world");
        assert!(m.reply.is_none());
        assert!(m.headers.is_none());
    })
    .await;
}

/// Publish each subject in `subjects`, then `sentinel` (which must match the
/// subscription); return the subjects received up to and including the
/// sentinel. Since one publisher's messages are delivered in order, any
/// wrongly matched subject would show up before the sentinel.
async fn received_subjects(
    server: &Server,
    filter: &str,
    subjects: &[&str],
    sentinel: &str,
) -> Vec<String> {
    let sub_client = connect(server).await;
    let pub_client = connect(server).await;
    let mut sub = sub_client.subscribe(filter.to_owned()).await.unwrap();
    sync(&sub_client).await;
    for s in subjects {
        pub_client
            .publish(s.to_string(), Bytes::from(s.to_string()))
            .await
            .unwrap();
    }
    pub_client
        .publish(sentinel.to_owned(), Bytes::from_static(b"sentinel"))
        .await
        .unwrap();
    sync(&pub_client).await;

    let mut got = Vec::new();
    loop {
        let m = next_msg(&mut sub).await;
        if m.subject.starts_with("_ITEST.") {
            // The harness' own round-trip messages, seen by `>`.
            continue;
        }
        if &m.payload[..] != b"sentinel" {
            assert_eq!(m.payload, m.subject.as_bytes(), "payload matches subject");
        }
        got.push(m.subject.to_string());
        if m.subject.as_str() == sentinel {
            return got;
        }
    }
}

#[tokio::test]
async fn star_wildcard_matches_exactly_one_token() {
    let server = Server::start(&[]);
    within(LIMIT, "star wildcard", async {
        let got = received_subjects(
            &server,
            "foo.*",
            &[
                "foo.bar",     // match
                "foo",         // too short
                "foo.bar.baz", // too long
                "bar.foo",     // wrong first token
                "foo.baz",     // match
                "food.bar",    // token prefix is not a match
                "fo.bar",
            ],
            "foo.end",
        )
        .await;
        assert_eq!(got, vec!["foo.bar", "foo.baz", "foo.end"]);

        let got = received_subjects(
            &server,
            "a.*.c",
            &["a.b.c", "a.c", "a.b.b.c", "a.x.c", "a.b.c.d", "b.b.c"],
            "a.end.c",
        )
        .await;
        assert_eq!(got, vec!["a.b.c", "a.x.c", "a.end.c"]);
    })
    .await;
}

#[tokio::test]
async fn gt_wildcard_matches_one_or_more_tokens() {
    let server = Server::start(&[]);
    within(LIMIT, "gt wildcard", async {
        let got = received_subjects(
            &server,
            "foo.>",
            &[
                "foo",
                "foo.a",
                "foo.a.b",
                "foo.a.b.c.d.e",
                "bar.a",
                "foox.a",
                "a.foo.b",
            ],
            "foo.end",
        )
        .await;
        assert_eq!(got, vec!["foo.a", "foo.a.b", "foo.a.b.c.d.e", "foo.end"]);

        let got = received_subjects(
            &server,
            "*.mid.>",
            &[
                "x.mid",
                "x.mid.y",
                "x.y.mid.z",
                "mid.y",
                "q.mid.y.z",
                "x.midd.y",
            ],
            "e.mid.end",
        )
        .await;
        assert_eq!(got, vec!["x.mid.y", "q.mid.y.z", "e.mid.end"]);

        // A full wildcard sees everything.
        let got = received_subjects(&server, ">", &["a", "a.b", "x.y.z"], "end").await;
        assert_eq!(got, vec!["a", "a.b", "x.y.z", "end"]);
    })
    .await;
}

#[tokio::test]
async fn overlapping_subscriptions_each_get_a_copy() {
    let server = Server::start(&[]);
    within(LIMIT, "overlapping subscriptions", async {
        let c = connect(&server).await;
        let mut exact = c.subscribe("o.a.b").await.unwrap();
        let mut star = c.subscribe("o.*.b").await.unwrap();
        let mut gt = c.subscribe("o.>").await.unwrap();
        sync(&c).await;
        c.publish("o.a.b", Bytes::from_static(b"x")).await.unwrap();
        c.publish("o.end.b", Bytes::from_static(b"y"))
            .await
            .unwrap();
        sync(&c).await;

        assert_eq!(next_msg(&mut exact).await.subject.as_str(), "o.a.b");
        assert_eq!(next_msg(&mut star).await.subject.as_str(), "o.a.b");
        assert_eq!(next_msg(&mut star).await.subject.as_str(), "o.end.b");
        assert_eq!(next_msg(&mut gt).await.subject.as_str(), "o.a.b");
        assert_eq!(next_msg(&mut gt).await.subject.as_str(), "o.end.b");
        // `exact` must not receive o.end.b: publish another exact match and
        // check it is the next thing seen.
        c.publish("o.a.b", Bytes::from_static(b"z")).await.unwrap();
        let m = next_msg(&mut exact).await;
        assert_eq!(&m.payload[..], b"z");
    })
    .await;
}

#[tokio::test]
async fn many_subjects() {
    const N: usize = 500;
    let server = Server::start(&[]);
    within(LIMIT, "many subjects", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut subs = Vec::with_capacity(N);
        for i in 0..N {
            subs.push(sub_client.subscribe(format!("many.{i}")).await.unwrap());
        }
        sync(&sub_client).await;
        for i in 0..N {
            pub_client
                .publish(format!("many.{i}"), Bytes::from(i.to_string()))
                .await
                .unwrap();
        }
        sync(&pub_client).await;
        for (i, sub) in subs.iter_mut().enumerate() {
            let m = next_msg(sub).await;
            assert_eq!(m.subject.as_str(), format!("many.{i}"));
            assert_eq!(m.payload, i.to_string().as_bytes());
        }
        // A wildcard subscriber on the side sees all N distinct subjects.
        let mut all = sub_client.subscribe("many.*").await.unwrap();
        sync(&sub_client).await;
        for i in 0..N {
            pub_client
                .publish(format!("many.{i}"), Bytes::new())
                .await
                .unwrap();
        }
        sync(&pub_client).await;
        let mut seen = HashSet::new();
        for _ in 0..N {
            seen.insert(next_msg(&mut all).await.subject.to_string());
        }
        assert_eq!(seen.len(), N);
    })
    .await;
}

#[tokio::test]
async fn payload_of_exactly_max_payload_arrives_intact() {
    let server = Server::start(&[]);
    within(LIMIT, "max payload message", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let max = pub_client.server_info().max_payload;
        assert_eq!(max, 1024 * 1024);
        let mut sub = sub_client.subscribe("big").await.unwrap();
        sync(&sub_client).await;

        // Non-trivial pattern so that shifted or truncated data is detected.
        let payload: Vec<u8> = (0..max)
            .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        let payload = Bytes::from(payload);
        pub_client.publish("big", payload.clone()).await.unwrap();
        let near: Bytes = payload.slice(..max - 7);
        pub_client.publish("big", near.clone()).await.unwrap();
        sync(&pub_client).await;

        let m = next_msg(&mut sub).await;
        assert_eq!(m.payload.len(), max);
        assert!(m.payload == payload, "max-size payload corrupted");
        let m = next_msg(&mut sub).await;
        assert_eq!(m.payload.len(), max - 7);
        assert!(m.payload == near, "near-max payload corrupted");
    })
    .await;
}

#[tokio::test]
async fn binary_payload_bytes_preserved() {
    let server = Server::start(&[]);
    within(LIMIT, "binary payloads", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut sub = sub_client.subscribe("bin").await.unwrap();
        sync(&sub_client).await;

        let all_bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let payloads: Vec<Bytes> = vec![
            Bytes::from_static(b""),
            Bytes::from_static(b"\r\n"),
            Bytes::from_static(b"\r\nPUB bin 5\r\nhello\r\n"),
            Bytes::from_static(b"MSG bin 1 3\r\nabc\r\n\r\n"),
            Bytes::from_static(b"\0\0\0\r"),
            Bytes::from_static(b"\n\r"),
            Bytes::from_static(b"trailing cr\r"),
            Bytes::from_static(b"PING\r\n"),
            Bytes::from_static("ütf-8 ☃ 🚀".as_bytes()),
            Bytes::from(all_bytes),
        ];
        for p in &payloads {
            pub_client.publish("bin", p.clone()).await.unwrap();
        }
        sync(&pub_client).await;
        for p in &payloads {
            let m = next_msg(&mut sub).await;
            assert_eq!(&m.payload[..], &p[..]);
        }
    })
    .await;
}

#[tokio::test]
async fn ordering_from_one_publisher_is_preserved() {
    const N: u32 = 10_000;
    let server = Server::start(&[]);
    within(LIMIT, "ordering", async {
        let sub_client = connect(&server).await;
        let pub_client = connect(&server).await;
        let mut sub = sub_client.subscribe("ord").await.unwrap();
        sync(&sub_client).await;
        let publisher = {
            let pub_client = pub_client.clone();
            tokio::spawn(async move {
                for i in 0..N {
                    pub_client
                        .publish("ord", Bytes::from(i.to_be_bytes().to_vec()))
                        .await
                        .unwrap();
                }
                sync(&pub_client).await;
            })
        };
        for expected in 0..N {
            let m = sub
                .next()
                .await
                .expect("subscription ended before all messages");
            let got = u32::from_be_bytes(m.payload[..].try_into().unwrap());
            assert_eq!(got, expected, "out of order delivery");
        }
        publisher.await.unwrap();
    })
    .await;
}
