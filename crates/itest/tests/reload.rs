//! Configuration reload (SIGHUP): a limit changes for new and existing
//! connections without dropping them; a change that cannot be applied live
//! (the server name) is refused with nats-server's message and the server keeps
//! running on the old configuration.

use std::time::Duration;

use rnats_itest::{contains, within, RawClient, Server};

#[tokio::test]
async fn sighup_applies_new_limits_without_dropping_clients() {
    let server = Server::start_with_config("max_payload: 1024\n");
    within(Duration::from_secs(20), "reload", async {
        let mut old = RawClient::connect(server.port()).await;
        assert_eq!(old.info()["max_payload"], 1024);
        old.handshake().await;

        let path = server.config_path().expect("config file").to_path_buf();
        std::fs::write(&path, "max_payload: 2048\n").unwrap();
        server.signal(libc::SIGHUP);
        assert!(
            server.wait_for_log("Reloaded server configuration", Duration::from_secs(5)),
            "no reload line in log:\n{}",
            server.log()
        );

        let fresh = RawClient::connect(server.port()).await;
        assert_eq!(fresh.info()["max_payload"], 2048);

        // The old connection is still up and now takes the larger payload.
        let payload = vec![b'x'; 1500];
        let mut frame = b"SUB big 1\r\n".to_vec();
        frame.extend_from_slice(format!("PUB big {}\r\n", payload.len()).as_bytes());
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(b"\r\nPING\r\n");
        old.send(&frame).await;
        let (out, closed) = old
            .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
            .await;
        assert!(
            !closed,
            "old connection dropped: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(
            contains(&out, b"MSG big 1 1500\r\n"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    })
    .await;
}

#[tokio::test]
async fn reload_refuses_a_port_change_and_keeps_running() {
    let server = Server::start_with_config("max_payload: 1024\n");
    within(Duration::from_secs(20), "bad reload", async {
        let path = server.config_path().expect("config file").to_path_buf();
        // Host and port come from the command line, which wins; change the name.
        std::fs::write(&path, "max_payload: 1024\nserver_name: renamed\n").unwrap();
        server.signal(libc::SIGHUP);
        assert!(
            server.wait_for_log(
                "config reload not supported for ServerName",
                Duration::from_secs(5)
            ),
            "no refusal in log:\n{}",
            server.log()
        );
        let mut c = RawClient::connect(server.port()).await;
        assert_eq!(c.info()["max_payload"], 1024);
        c.handshake().await;
    })
    .await;
}
