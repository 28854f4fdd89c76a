//! TLS on the client port (and on the WebSocket port): certificates are made
//! at test time with rcgen (a CA, a server certificate for 127.0.0.1 and
//! localhost, a client certificate, and a client certificate from another CA).
//! async-nats connects with the CA as its root; a plaintext client on the TLS
//! port is closed after the INFO (nats-server sends no `-ERR`: the close
//! happens inside the TLS handshake); `verify` refuses clients without a
//! trusted certificate; `handshake_first` works with `tls_first()`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::ConnectOptions;
use bytes::Bytes;
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rnats_itest::{free_port, next_msg, sync, within, RawClient, Server};
use tokio::io::AsyncReadExt;

const LIMIT: Duration = Duration::from_secs(30);

/// PEM files for one test, in a temporary directory.
struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    (p.self_signed(&key).unwrap(), key)
}

fn leaf(
    names: &[&str],
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, KeyPair),
) -> (String, String) {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca = make_ca("rnats test CA");
    let (sc, sk) = leaf(
        &["127.0.0.1", "localhost"],
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    let (cc, ck) = leaf(&[], "client", ExtendedKeyUsagePurpose::ClientAuth, &ca);
    let rogue_ca = make_ca("rogue CA");
    let (rc, rk) = leaf(&[], "rogue", ExtendedKeyUsagePurpose::ClientAuth, &rogue_ca);
    Certs {
        ca: write("ca.pem", &ca.0.pem()),
        server_cert: write("server.pem", &sc),
        server_key: write("server-key.pem", &sk),
        client_cert: write("client.pem", &cc),
        client_key: write("client-key.pem", &ck),
        rogue_cert: write("rogue.pem", &rc),
        rogue_key: write("rogue-key.pem", &rk),
        _dir: dir,
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn tls_block(c: &Certs, extra: &str) -> String {
    format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  {extra}\n}}\n",
        p(&c.server_cert),
        p(&c.server_key),
        p(&c.ca)
    )
}

fn tls_url(server: &Server) -> String {
    format!("tls://127.0.0.1:{}", server.port())
}

async fn assert_pubsub(client: &async_nats::Client, subject: &str) {
    let mut sub = client.subscribe(subject.to_string()).await.unwrap();
    sync(client).await;
    for i in 0..100u32 {
        client
            .publish(subject.to_string(), Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(next_msg(&mut sub).await.payload, format!("m{i}").as_bytes());
    }
    // A payload bigger than one TLS record.
    let big = Bytes::from(vec![b'x'; 200_000]);
    client
        .publish(subject.to_string(), big.clone())
        .await
        .unwrap();
    assert_eq!(next_msg(&mut sub).await.payload, big);

    let mut service = client.subscribe(format!("{subject}.svc")).await.unwrap();
    let responder = client.clone();
    let task = tokio::spawn(async move {
        if let Some(m) = service.next().await {
            responder
                .publish(m.reply.unwrap(), Bytes::from_static(b"pong"))
                .await
                .unwrap();
        }
    });
    sync(client).await;
    let reply = client
        .request(format!("{subject}.svc"), Bytes::from_static(b"ping"))
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"pong");
    task.await.unwrap();
}

fn tls_options(c: &Certs) -> ConnectOptions {
    ConnectOptions::new()
        .add_root_certificates(c.ca.clone())
        .require_tls(true)
}

#[tokio::test]
async fn pubsub_over_tls() {
    let c = certs();
    let server = Server::start_with_config(&tls_block(&c, ""));
    assert!(
        server.wait_for_log(
            "TLS required for client connections",
            Duration::from_secs(2)
        ),
        "{}",
        server.log()
    );
    within(LIMIT, "pub/sub over TLS", async {
        let client = tls_options(&c).connect(tls_url(&server)).await.unwrap();
        assert_pubsub(&client, "tls.basic").await;
        // A second connection: messages cross between TLS clients.
        let other = tls_options(&c).connect(tls_url(&server)).await.unwrap();
        let mut sub = other.subscribe("tls.cross").await.unwrap();
        rnats_itest::sync(&other).await;
        client
            .publish("tls.cross", Bytes::from_static(b"hi"))
            .await
            .unwrap();
        client.flush().await.unwrap();
        assert_eq!(&next_msg(&mut sub).await.payload[..], b"hi");
    })
    .await;
}

#[tokio::test]
async fn tls_flags() {
    let c = certs();
    let (cert, key) = (p(&c.server_cert), p(&c.server_key));
    let server = Server::start(&["--tls", "--tlscert", &cert, "--tlskey", &key]);
    within(LIMIT, "TLS from flags", async {
        let client = tls_options(&c).connect(tls_url(&server)).await.unwrap();
        assert_pubsub(&client, "tls.flags").await;
    })
    .await;
}

#[tokio::test]
async fn plaintext_client_is_refused() {
    let c = certs();
    let server = Server::start_with_config(&tls_block(&c, ""));
    within(LIMIT, "plaintext client on a TLS port", async {
        let mut raw = RawClient::connect(server.port()).await;
        let info = raw.info();
        assert_eq!(info["tls_required"], true, "{info}");
        assert!(info.get("tls_verify").is_none(), "{info}");
        raw.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await;
        let (seen, closed) = raw.wait_closed(Duration::from_secs(5)).await;
        assert!(closed, "the server must close a plaintext client");
        assert!(
            !rnats_itest::contains(&seen, b"PONG"),
            "a plaintext client must not be served: {:?}",
            String::from_utf8_lossy(&seen)
        );

        // A client that sends nothing is closed after the TLS timeout.
        let mut raw = RawClient::connect(server.port()).await;
        let (_, closed) = raw.wait_closed(Duration::from_secs(5)).await;
        assert!(
            closed,
            "an idle plaintext client is closed after the TLS timeout"
        );

        // async-nats without a root for our CA cannot verify the server.
        let res = ConnectOptions::new()
            .require_tls(true)
            .connect(tls_url(&server))
            .await;
        assert!(res.is_err(), "connecting without trusting the CA must fail");
    })
    .await;
}

#[tokio::test]
async fn verify_requires_a_trusted_client_certificate() {
    let c = certs();
    let server = Server::start_with_config(&tls_block(&c, "verify: true"));
    within(LIMIT, "tls verify", async {
        let raw = RawClient::connect(server.port()).await;
        let info = raw.info();
        assert_eq!(info["tls_required"], true, "{info}");
        assert_eq!(info["tls_verify"], true, "{info}");

        let no_cert = tls_options(&c).connect(tls_url(&server)).await;
        assert!(
            no_cert.is_err(),
            "a client without a certificate must be refused"
        );

        let rogue = tls_options(&c)
            .add_client_certificate(c.rogue_cert.clone(), c.rogue_key.clone())
            .connect(tls_url(&server))
            .await;
        assert!(
            rogue.is_err(),
            "a certificate from another CA must be refused"
        );

        let ok = tls_options(&c)
            .add_client_certificate(c.client_cert.clone(), c.client_key.clone())
            .connect(tls_url(&server))
            .await
            .unwrap();
        assert_pubsub(&ok, "tls.verify").await;
    })
    .await;
}

#[tokio::test]
async fn handshake_first() {
    let c = certs();
    let server = Server::start_with_config(&tls_block(&c, "handshake_first: true"));
    within(LIMIT, "TLS handshake first", async {
        let client = tls_options(&c)
            .tls_first()
            .connect(tls_url(&server))
            .await
            .unwrap();
        assert_pubsub(&client, "tls.first").await;

        // The server says nothing before the client's TLS hello.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
        assert!(
            r.is_err(),
            "no INFO may come before the TLS handshake: {r:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn secure_websocket() {
    let c = certs();
    let ws_port = free_port();
    let conf = format!(
        "websocket {{\n  port: {ws_port}\n  tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n}}\n",
        p(&c.server_cert),
        p(&c.server_key)
    );
    let server = Server::start_with_config(&conf);
    assert!(
        server.wait_for_log(
            &format!("Listening for websocket clients on wss://0.0.0.0:{ws_port}"),
            Duration::from_secs(2)
        ),
        "{}",
        server.log()
    );
    within(LIMIT, "wss pub/sub", async {
        let client = ConnectOptions::new()
            .add_root_certificates(c.ca.clone())
            .connect(format!("wss://127.0.0.1:{ws_port}"))
            .await
            .unwrap();
        assert_pubsub(&client, "wss.basic").await;
    })
    .await;
}

/// A rough publish -> subscribe throughput figure over TLS (and plain TCP
/// for comparison) for the notes; run by hand, side by side:
/// `TLS_BENCH_MSGS=300000 RNATS_SERVER_BIN=<bin> cargo test --release -p rnats-itest --test tls throughput -- --nocapture`.
/// No timing assertions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput() {
    // A benchmark, not a test: it runs only when asked for.
    let Some(n) = std::env::var("TLS_BENCH_MSGS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        eprintln!("skipping the TLS throughput benchmark: set TLS_BENCH_MSGS=<count> to run it");
        return;
    };
    let c = certs();
    let size = 128;
    let server = Server::start_with_config(&tls_block(&c, ""));
    let plain = Server::start(&[]);
    for (name, opts, url) in [
        ("tls", tls_options(&c), tls_url(&server)),
        ("plain", ConnectOptions::new(), plain.url()),
    ] {
        let publisher = opts.connect(url.clone()).await.unwrap();
        // async-nats drops messages for a subscriber whose channel is full:
        // make it big enough for the whole run.
        let subscriber = if name == "tls" {
            tls_options(&c)
        } else {
            ConnectOptions::new()
        }
        .subscription_capacity(n + 1024)
        .connect(url)
        .await
        .unwrap();
        let mut sub = subscriber.subscribe("bench").await.unwrap();
        sync(&subscriber).await;
        let payload = Bytes::from(vec![b'x'; size]);
        let start = std::time::Instant::now();
        let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = got.clone();
        let recv = tokio::spawn(async move {
            for _ in 0..n {
                sub.next().await.unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        for _ in 0..n {
            publisher.publish("bench", payload.clone()).await.unwrap();
        }
        publisher.flush().await.unwrap();
        if tokio::time::timeout(Duration::from_secs(60), recv)
            .await
            .is_err()
        {
            panic!(
                "{name}: received {} of {n}; server log:\n{}",
                got.load(std::sync::atomic::Ordering::Relaxed),
                if name == "tls" {
                    server.log()
                } else {
                    plain.log()
                }
            );
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "BENCH {name}: {n} msgs x {size} B in {secs:.3}s = {:.0} msgs/s, {:.1} MB/s",
            n as f64 / secs,
            (n * size) as f64 / secs / 1e6
        );
    }
}
