//! Authentication from the command line: `--user/--pass` and `--auth` token,
//! with right credentials (connect and work), wrong or missing credentials
//! (connect fails with an authorization error), and the raw protocol view
//! (`-ERR 'Authorization Violation'` followed by a close).

use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions};
use bytes::Bytes;
use rnats_itest::{next_msg, sync, within, RawClient, Server};

const LIMIT: Duration = Duration::from_secs(20);

async fn assert_works(client: &async_nats::Client) {
    let mut sub = client.subscribe("auth.check").await.unwrap();
    sync(client).await;
    client
        .publish("auth.check", Bytes::from_static(b"in"))
        .await
        .unwrap();
    assert_eq!(&next_msg(&mut sub).await.payload[..], b"in");
}

fn assert_auth_error(res: Result<async_nats::Client, async_nats::ConnectError>, what: &str) {
    match res {
        Ok(_) => panic!("{what}: connect unexpectedly succeeded"),
        Err(e) => assert_eq!(
            e.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {e}"
        ),
    }
}

#[tokio::test]
async fn user_password() {
    let server = Server::start(&["--user", "a", "--pass", "b"]);
    within(LIMIT, "user/password", async {
        let ok = ConnectOptions::with_user_and_password("a".into(), "b".into())
            .connect(server.url())
            .await
            .expect("right credentials must connect");
        assert!(ok.server_info().auth_required);
        assert_works(&ok).await;

        assert_auth_error(
            ConnectOptions::with_user_and_password("a".into(), "wrong".into())
                .connect(server.url())
                .await,
            "wrong password",
        );
        assert_auth_error(
            ConnectOptions::with_user_and_password("nobody".into(), "b".into())
                .connect(server.url())
                .await,
            "wrong user",
        );
        assert_auth_error(
            ConnectOptions::new().connect(server.url()).await,
            "no credentials",
        );
        // The good connection is unaffected by the failed attempts.
        assert_works(&ok).await;
    })
    .await;
}

#[tokio::test]
async fn token() {
    let server = Server::start(&["--auth", "tok"]);
    within(LIMIT, "token", async {
        let ok = ConnectOptions::with_token("tok".into())
            .connect(server.url())
            .await
            .expect("right token must connect");
        assert!(ok.server_info().auth_required);
        assert_works(&ok).await;

        assert_auth_error(
            ConnectOptions::with_token("nope".into())
                .connect(server.url())
                .await,
            "wrong token",
        );
        assert_auth_error(
            ConnectOptions::new().connect(server.url()).await,
            "no token",
        );
    })
    .await;
}

#[tokio::test]
async fn raw_wrong_credentials() {
    let server = Server::start(&["--user", "a", "--pass", "b"]);
    within(LIMIT, "raw auth", async {
        let mut c = RawClient::connect(server.port()).await;
        assert_eq!(c.info()["auth_required"], true);
        c.send(b"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"x\"}\r\nPING\r\n")
            .await;
        let (out, closed) = c.wait_closed(Duration::from_secs(5)).await;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-ERR 'Authorization Violation'\r\n"
        );
        assert!(closed);

        let mut c = RawClient::connect(server.port()).await;
        c.handshake_with(r#"{"verbose":false,"pedantic":false,"user":"a","pass":"b"}"#)
            .await;
        c.send(b"SUB x 1\r\nPUB x 2\r\nok\r\nPING\r\n").await;
        let (out, closed) = c
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(!closed);
        assert_eq!(String::from_utf8_lossy(&out), "MSG x 1 2\r\nok\r\nPONG\r\n");
    })
    .await;
}
