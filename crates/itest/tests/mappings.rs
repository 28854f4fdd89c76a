//! Subject mappings from the config file: plain, wildcard reordering, the
//! ADR-30 functions (partition hashing must land in nats-server's buckets),
//! weighted splits, and per-account mappings. Passes against the reference
//! nats-server too (`RNATS_SERVER_BIN`).

use std::time::Duration;

use async_nats::ConnectOptions;
use bytes::Bytes;
use rnats_itest::{connect, next_msg, sync, within, Server};

const LIMIT: Duration = Duration::from_secs(20);

fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[tokio::test]
async fn mapped_publishes_arrive_under_the_destination() {
    let server = Server::start_with_config(
        r#"
mappings {
  "plain": "mapped.plain"
  "orders.*.*": "shipped.$2.$1"
  "part.*.*": "p.{{partition(10,1,2)}}.{{wildcard(1)}}"
  "cut.*": "c.{{splitFromLeft(1,2)}}"
  "half": [{destination: "h.a", weight: 50%}, {destination: "h.b", weight: 50%}]
}
"#,
    );
    within(LIMIT, "mappings", async {
        let nc = connect(&server).await;
        let mut all = nc.subscribe(">").await.unwrap();
        sync(&nc).await;
        let _ = next_msg(&mut all).await; // the barrier's own message
        for s in [
            "plain",
            "orders.eu.42",
            "part.x.y",
            "part.abc.def",
            "cut.abcd",
        ] {
            nc.publish(s, Bytes::from_static(b"m")).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(next_msg(&mut all).await.subject.to_string());
        }
        assert_eq!(
            got,
            vec![
                "mapped.plain".to_string(),
                "shipped.42.eu".to_string(),
                format!("p.{}.x", fnv1a(b"xy") % 10),
                format!("p.{}.abc", fnv1a(b"abcdef") % 10),
                "c.ab.cd".to_string(),
            ]
        );
        let (mut a, mut b) = (0, 0);
        for _ in 0..200 {
            nc.publish("half", Bytes::new()).await.unwrap();
        }
        for _ in 0..200 {
            match next_msg(&mut all).await.subject.as_str() {
                "h.a" => a += 1,
                "h.b" => b += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert!(a > 50 && b > 50, "a={a} b={b}");
    })
    .await;
}

#[tokio::test]
async fn account_mappings_apply_only_in_their_account() {
    let server = Server::start_with_config(
        r#"
accounts {
  A { users = [{user: a, password: a}], mappings { "in": "out.a" } }
  B { users = [{user: b, password: b}] }
}
"#,
    );
    within(LIMIT, "account mappings", async {
        let login = |u: &'static str| {
            ConnectOptions::with_user_and_password(u.into(), u.into()).connect(server.url())
        };
        let a = login("a").await.unwrap();
        let b = login("b").await.unwrap();
        let mut a_out = a.subscribe("out.a").await.unwrap();
        let mut b_in = b.subscribe("in").await.unwrap();
        sync(&a).await;
        sync(&b).await;
        a.publish("in", Bytes::from_static(b"1")).await.unwrap();
        b.publish("in", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(&next_msg(&mut a_out).await.payload[..], b"1");
        assert_eq!(&next_msg(&mut b_in).await.payload[..], b"2");
    })
    .await;
}
