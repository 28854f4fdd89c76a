//! Stream snapshot and restore (`$JS.API.STREAM.SNAPSHOT` / `RESTORE`) with
//! raw requests: a round trip between rnats servers, across rnats and the
//! reference nats-server in both directions, damaged archives refused without
//! a half-restored stream, and the snapshot's flow control.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rnats_itest::cluster::reference_or_skip;
use rnats_itest::{connect, js_server, within, Server};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

async fn api(c: &async_nats::Client, subject: &str, body: Value) -> Value {
    let msg = within(
        T,
        subject,
        c.request(subject.to_string(), Bytes::from(body.to_string())),
    )
    .await
    .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&msg.payload).expect("JSON answer")
}

/// Takes a snapshot, acking every chunk; returns the answer and the archive.
async fn snapshot(c: &async_nats::Client, stream: &str, extra: Value) -> (Value, Vec<u8>) {
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    let mut req = json!({ "deliver_subject": inbox });
    if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    let resp = api(c, &format!("$JS.API.STREAM.SNAPSHOT.{stream}"), req).await;
    assert!(resp.get("error").is_none(), "snapshot refused: {resp}");
    let mut data = Vec::new();
    loop {
        let m = within(T, "snapshot chunk", sub.next())
            .await
            .expect("chunk");
        if m.payload.is_empty() {
            // nats-server marks the end 204 once a full chunk went out, and
            // sends it bare when the whole archive fit in one short chunk.
            let status = m.status.map(|s| s.as_u16());
            assert!(
                matches!(status, None | Some(204)),
                "end of snapshot: {status:?}"
            );
            break;
        }
        data.extend_from_slice(&m.payload);
        // nats-server sends a short last chunk without an ack subject.
        if let Some(reply) = m.reply {
            c.publish(reply, Bytes::new()).await.unwrap();
        }
    }
    (resp, data)
}

/// Restores `data` with the snapshot's config and state; returns the final answer.
async fn restore(c: &async_nats::Client, meta: &Value, data: &[u8]) -> Value {
    let name = meta["config"]["name"].as_str().unwrap();
    let resp = api(
        c,
        &format!("$JS.API.STREAM.RESTORE.{name}"),
        json!({ "config": meta["config"], "state": meta["state"] }),
    )
    .await;
    assert_eq!(
        resp["type"],
        "io.nats.jetstream.api.v1.stream_restore_response"
    );
    let deliver = resp["deliver_subject"]
        .as_str()
        .unwrap_or_else(|| panic!("no deliver subject: {resp}"))
        .to_string();
    assert!(deliver.starts_with(&format!("$JS.SNAPSHOT.RESTORE.{name}.")));
    for chunk in data.chunks(4096) {
        let ack = within(
            T,
            "chunk ack",
            c.request(deliver.clone(), Bytes::copy_from_slice(chunk)),
        )
        .await
        .unwrap();
        assert!(ack.payload.is_empty(), "chunk refused: {:?}", ack.payload);
    }
    let done = within(T, "restore end", c.request(deliver, Bytes::new()))
        .await
        .unwrap();
    serde_json::from_slice(&done.payload).unwrap()
}

/// A file stream with headers, several subjects, deleted messages (also the
/// last) and a durable with delivered, acked and pending messages.
async fn populate(c: &async_nats::Client) {
    let created = api(
        c,
        "$JS.API.STREAM.CREATE.SNAP",
        json!({"name": "SNAP", "subjects": ["snap.>"], "storage": "file"}),
    )
    .await;
    assert!(created.get("error").is_none(), "{created}");
    let js = async_nats::jetstream::new(c.clone());
    for i in 1..=10u32 {
        let mut h = async_nats::HeaderMap::new();
        h.insert("X-Index", i.to_string().as_str());
        let subject = if i % 2 == 0 {
            "snap.even"
        } else {
            "snap.odd.x"
        };
        js.publish_with_headers(subject, h, Bytes::from(format!("msg-{i}")))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    for seq in [3, 10] {
        let d = api(c, "$JS.API.STREAM.MSG.DELETE.SNAP", json!({ "seq": seq })).await;
        assert_eq!(d["success"], true, "{d}");
    }
    let cons = api(
        c,
        "$JS.API.CONSUMER.CREATE.SNAP.D",
        json!({"stream_name": "SNAP", "config": {"durable_name": "D", "ack_policy": "explicit", "ack_wait": 60_000_000_000u64}}),
    )
    .await;
    assert!(cons.get("error").is_none(), "{cons}");
    // Deliver 4 (seqs 1, 2, 4, 5), ack the first two: floor 2, 2 pending.
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply(
        "$JS.API.CONSUMER.MSG.NEXT.SNAP.D",
        inbox,
        Bytes::from(r#"{"batch":4}"#),
    )
    .await
    .unwrap();
    for i in 0..4 {
        let m = within(T, "pull", sub.next()).await.unwrap();
        if i < 2 {
            let ack = within(T, "ack", c.request(m.reply.unwrap(), Bytes::from("+ACK"))).await;
            assert!(ack.is_ok());
        }
    }
}

/// What must survive a round trip: state, every message, the consumer.
async fn fingerprint(c: &async_nats::Client) -> Value {
    let info = api(c, "$JS.API.STREAM.INFO.SNAP", json!({})).await;
    let st = &info["state"];
    let mut msgs = Vec::new();
    for seq in 1..=10u64 {
        let m = api(c, "$JS.API.STREAM.MSG.GET.SNAP", json!({ "seq": seq })).await;
        let m = &m["message"];
        msgs.push(json!([m["seq"], m["subject"], m["hdrs"], m["data"]]));
    }
    let ci = api(c, "$JS.API.CONSUMER.INFO.SNAP.D", json!({})).await;
    json!({
        "state": [st["messages"], st["first_seq"], st["last_seq"], st["num_deleted"], st["num_subjects"]],
        "msgs": msgs,
        "consumer": [
            ci["delivered"]["consumer_seq"], ci["delivered"]["stream_seq"],
            ci["ack_floor"]["consumer_seq"], ci["ack_floor"]["stream_seq"],
            ci["num_ack_pending"], ci["config"]["ack_policy"],
        ],
    })
}

async fn round_trip(from: &Server, to: &Server) {
    let a = connect(from).await;
    populate(&a).await;
    let before = fingerprint(&a).await;
    let (meta, data) = snapshot(&a, "SNAP", json!({"chunk_size": 1024})).await;
    assert_eq!(meta["state"]["last_seq"], 10, "{meta}");
    assert_eq!(meta["config"]["name"], "SNAP");
    let b = connect(to).await;
    let done = restore(&b, &meta, &data).await;
    assert_eq!(
        done["type"],
        "io.nats.jetstream.api.v1.stream_create_response"
    );
    assert!(done.get("error").is_none(), "restore failed: {done}");
    assert_eq!(done["state"]["messages"], 8, "{done}");
    assert_eq!(fingerprint(&b).await, before);
    // Restoring over the stream now there is refused.
    let again = api(
        &b,
        "$JS.API.STREAM.RESTORE.SNAP",
        json!({"config": meta["config"], "state": meta["state"]}),
    )
    .await;
    assert_eq!(again["error"]["err_code"], 10130, "{again}");
    // New messages continue after the restored last sequence.
    let js = async_nats::jetstream::new(b.clone());
    let ack = js
        .publish("snap.new", Bytes::from("n"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 11);
}

#[tokio::test]
async fn snapshot_restores_into_a_fresh_rnats() {
    let (from, _d1) = js_server();
    let (to, _d2) = js_server();
    round_trip(&from, &to).await;
}

fn reference(bin: &std::path::Path, dir: &std::path::Path) -> Server {
    let port = rnats_itest::free_port().to_string();
    let args = [
        "-js",
        "-sd",
        dir.to_str().unwrap(),
        "-a",
        "127.0.0.1",
        "-p",
        &port,
    ];
    Server::try_launch_bin(bin, &args).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn backups_move_between_nats_server_and_rnats() {
    let Some(bin) = reference_or_skip("backups_move_between_nats_server_and_rnats") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let ns = reference(&bin, d.path());
    let (rn, _d2) = js_server();
    // nats-server's backup restored into rnats.
    round_trip(&ns, &rn).await;
    // Larger, compressible messages: nats-server's S2 copies and repeats.
    let a = connect(&ns).await;
    let created = api(
        &a,
        "$JS.API.STREAM.CREATE.TEXT",
        json!({"name": "TEXT", "subjects": ["text"], "storage": "file"}),
    )
    .await;
    assert!(created.get("error").is_none(), "{created}");
    let js = async_nats::jetstream::new(a.clone());
    let body = |i: usize| -> String {
        (0..400)
            .map(|j| {
                format!(
                    "line {} of message {i}: {};",
                    j * 7 % 13,
                    "abc".repeat(j % 5)
                )
            })
            .collect()
    };
    for i in 0..30 {
        js.publish("text", Bytes::from(body(i)))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (meta, data) = snapshot(&a, "TEXT", json!({})).await;
    let raw: usize = (0..30).map(|i| body(i).len()).sum();
    assert!(
        data.len() * 3 < raw,
        "expected compressed blocks: {} of {raw}",
        data.len()
    );
    let b = connect(&rn).await;
    let done = restore(&b, &meta, &data).await;
    assert_eq!(done["state"]["messages"], 30, "{done}");
    for seq in [1u64, 17, 30] {
        let m = api(&b, "$JS.API.STREAM.MSG.GET.TEXT", json!({ "seq": seq })).await;
        let orig = api(&a, "$JS.API.STREAM.MSG.GET.TEXT", json!({ "seq": seq })).await;
        assert_eq!(m["message"]["data"], orig["message"]["data"], "seq {seq}");
    }
    // And rnats's into a fresh nats-server.
    let d3 = tempfile::tempdir().unwrap();
    let ns2 = reference(&bin, d3.path());
    let (rn2, _d4) = js_server();
    round_trip(&rn2, &ns2).await;
}

#[tokio::test]
async fn damaged_archives_are_refused_without_a_stream() {
    let (server, _d) = js_server();
    let c = connect(&server).await;
    populate(&c).await;
    let (meta, data) = snapshot(&c, "SNAP", json!({})).await;
    let deleted = api(&c, "$JS.API.STREAM.DELETE.SNAP", json!({})).await;
    assert_eq!(deleted["success"], true);
    let truncated = &data[..data.len() - 20];
    let mut flipped = data.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    for (what, bad) in [
        ("truncated", truncated.to_vec()),
        ("flipped", flipped),
        ("garbage", b"this is not a snapshot at all".to_vec()),
    ] {
        let done = restore(&c, &meta, &bad).await;
        assert_eq!(done["error"]["err_code"], 10062, "{what}: {done}");
        assert_eq!(
            done["type"],
            "io.nats.jetstream.api.v1.stream_create_response"
        );
        let info = api(&c, "$JS.API.STREAM.INFO.SNAP", json!({})).await;
        assert_eq!(
            info["error"]["err_code"], 10059,
            "{what} left a stream: {info}"
        );
    }
    // The intact archive still restores.
    let done = restore(&c, &meta, &data).await;
    assert!(done.get("error").is_none(), "{done}");
    // Requests nats-server refuses before any chunk.
    let wrong = api(
        &c,
        "$JS.API.STREAM.RESTORE.OTHER",
        json!({"config": meta["config"], "state": meta["state"]}),
    )
    .await;
    assert_eq!(wrong["error"]["err_code"], 10056, "{wrong}");
    let bad_subject = api(
        &c,
        "$JS.API.STREAM.SNAPSHOT.SNAP",
        json!({"deliver_subject": "a.*"}),
    )
    .await;
    assert_eq!(bad_subject["error"]["err_code"], 10015, "{bad_subject}");
    let missing = api(
        &c,
        "$JS.API.STREAM.SNAPSHOT.NOPE",
        json!({"deliver_subject": "x"}),
    )
    .await;
    assert_eq!(missing["error"]["err_code"], 10059, "{missing}");
}

#[tokio::test]
async fn an_unacked_snapshot_stalls_instead_of_buffering() {
    let (server, _d) = js_server();
    let c = connect(&server).await;
    let created = api(
        &c,
        "$JS.API.STREAM.CREATE.BIG",
        json!({"name": "BIG", "subjects": ["big"], "storage": "file"}),
    )
    .await;
    assert!(created.get("error").is_none());
    let js = async_nats::jetstream::new(c.clone());
    for i in 0..20u32 {
        let body: Vec<u8> = (0..4096u32)
            .map(|j| (j.wrapping_mul(31) ^ i) as u8)
            .collect();
        js.publish("big", Bytes::from(body))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    // A window of one 1 KiB chunk: nothing more comes until it is acked.
    let resp = api(
        &c,
        "$JS.API.STREAM.SNAPSHOT.BIG",
        json!({"deliver_subject": inbox, "chunk_size": 1024, "window_size": 1024}),
    )
    .await;
    assert!(resp.get("error").is_none(), "{resp}");
    let first = within(T, "first chunk", sub.next()).await.unwrap();
    assert_eq!(first.payload.len(), 1024);
    let idle = tokio::time::timeout(Duration::from_millis(700), sub.next()).await;
    assert!(idle.is_err(), "a chunk came without an ack");
    // Acking resumes it, one chunk per ack, to the end.
    let mut reply = first.reply.unwrap();
    let mut chunks = 1;
    loop {
        c.publish(reply, Bytes::new()).await.unwrap();
        let m = within(T, "next chunk", sub.next()).await.unwrap();
        if m.payload.is_empty() {
            assert_eq!(m.status.map(|s| s.as_u16()), Some(204));
            break;
        }
        chunks += 1;
        match m.reply {
            Some(r) => reply = r,
            // The short last chunk needs no ack; the end follows.
            None => {
                let end = within(T, "end", sub.next()).await.unwrap();
                assert!(end.payload.is_empty());
                assert_eq!(end.status.map(|s| s.as_u16()), Some(204));
                break;
            }
        }
    }
    assert!(chunks > 40, "20 x 4 KiB in 1 KiB chunks, got {chunks}");
}

#[tokio::test]
async fn a_restore_over_the_account_limit_is_stopped() {
    let (from, _d) = js_server();
    let c = connect(&from).await;
    let created = api(
        &c,
        "$JS.API.STREAM.CREATE.BIG",
        json!({"name": "BIG", "subjects": ["big"], "storage": "file"}),
    )
    .await;
    assert!(created.get("error").is_none());
    let js = async_nats::jetstream::new(c.clone());
    for i in 0..10u32 {
        let body: Vec<u8> = (0..8192u32)
            .map(|j| (j.wrapping_mul(2654435761) >> (i % 7)) as u8)
            .collect();
        js.publish("big", Bytes::from(body))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (meta, data) = snapshot(&c, "BIG", json!({})).await;
    let store = tempfile::tempdir().unwrap();
    let limited = Server::start_with_config(&format!(
        "jetstream {{ store_dir: \"{}\" }}\naccounts {{ L: {{ jetstream: {{ max_file: 16384 }}, users: [{{user: l, password: l}}] }} }}\n",
        store.path().display()
    ));
    let l = async_nats::ConnectOptions::with_user_and_password("l".into(), "l".into())
        .connect(limited.url())
        .await
        .unwrap();
    let resp = api(
        &l,
        "$JS.API.STREAM.RESTORE.BIG",
        json!({"config": meta["config"], "state": meta["state"]}),
    )
    .await;
    let deliver = resp["deliver_subject"]
        .as_str()
        .expect("deliver subject")
        .to_string();
    let mut refused = None;
    for chunk in data.chunks(4096) {
        let ack = within(
            T,
            "chunk ack",
            l.request(deliver.clone(), Bytes::copy_from_slice(chunk)),
        )
        .await
        .unwrap();
        if !ack.payload.is_empty() {
            refused = Some(serde_json::from_slice::<Value>(&ack.payload).unwrap());
            break;
        }
    }
    let refused = refused.expect("the archive was taken past the limit");
    assert_eq!(refused["error"]["err_code"], 10062, "{refused}");
    let info = api(&l, "$JS.API.STREAM.INFO.BIG", json!({})).await;
    assert_eq!(info["error"]["err_code"], 10059, "{info}");
}
