//! The server's INFO as seen by async-nats (`client.server_info()`) and by a
//! raw client: server_id, version 2.x, proto 1, headers, max_payload,
//! client_id, and `-n NAME` setting server_name.

use std::time::Duration;

use rnats_itest::{connect, within, RawClient, Server};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn server_info_fields() {
    let server = Server::start(&[]);
    within(LIMIT, "server info", async {
        let client = connect(&server).await;
        let info = client.server_info();
        assert!(!info.server_id.is_empty(), "server_id empty");
        // Without -n the server name defaults to the server id.
        assert_eq!(info.server_name, info.server_id);
        assert!(info.version.starts_with("2."), "version {}", info.version);
        assert_eq!(info.proto, 1);
        assert!(info.headers, "headers not supported");
        assert_eq!(info.max_payload, 1_048_576);
        assert!(info.client_id > 0, "client_id {}", info.client_id);
        assert!(!info.auth_required);
        assert!(!info.tls_required);
        assert!(!info.lame_duck_mode);
        assert_eq!(info.port, server.port());
        assert_eq!(info.host, "127.0.0.1");

        // A second connection gets a different client id.
        let other = connect(&server).await;
        assert_ne!(other.server_info().client_id, info.client_id);
        assert_eq!(other.server_info().server_id, info.server_id);
    })
    .await;
}

#[tokio::test]
async fn raw_info_line() {
    let server = Server::start(&[]);
    within(LIMIT, "raw info", async {
        let c = RawClient::connect(server.port()).await;
        let info = c.info();
        assert!(info["server_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(info["version"].as_str().unwrap().starts_with("2."));
        assert_eq!(info["proto"], 1);
        assert_eq!(info["headers"], true);
        assert_eq!(info["max_payload"], 1_048_576);
        assert!(info["client_id"].as_u64().unwrap() > 0);
        assert_eq!(info["port"], server.port());
    })
    .await;
}

#[tokio::test]
async fn server_name_flag() {
    let server = Server::start(&["-n", "itest-server-name"]);
    within(LIMIT, "server name", async {
        let client = connect(&server).await;
        assert_eq!(client.server_info().server_name, "itest-server-name");
    })
    .await;
}

#[tokio::test]
async fn connect_info_after_first_pong() {
    // nats-server 2.15 answers the first PING after CONNECT from a client
    // with "protocol":1 with PONG followed by an extra INFO carrying
    // "connect_info":true and the bound account; protocol 0 clients get none.
    let server = Server::start(&[]);
    within(LIMIT, "connect_info INFO", async {
        let mut c = RawClient::connect(server.port()).await;
        c.send(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\nPING\r\n",
        )
        .await;
        let (mut out, closed) = c
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(!closed);
        let (more, closed) = c
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(!closed);
        out.extend_from_slice(&more);
        let text = String::from_utf8_lossy(&out).into_owned();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 4, "{text:?}");
        assert_eq!(lines[0], "PONG");
        let info: serde_json::Value = serde_json::from_str(
            lines[1]
                .strip_prefix("INFO ")
                .unwrap_or_else(|| panic!("expected INFO after first PONG: {text:?}")),
        )
        .unwrap();
        assert_eq!(info["connect_info"], true);
        assert_eq!(info["remote_account"], "$G");
        assert_eq!(info["server_id"], c.info()["server_id"]);
        assert_eq!(lines[2], "PONG");

        let mut c0 = RawClient::connect(server.port()).await;
        c0.send(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":0}\r\nPING\r\nPING\r\n",
        )
        .await;
        let (out, closed) = c0
            .read_until_contains(b"PONG\r\nPONG\r\n", Duration::from_secs(5))
            .await;
        assert!(!closed);
        assert_eq!(out, b"PONG\r\nPONG\r\n");
    })
    .await;
}
