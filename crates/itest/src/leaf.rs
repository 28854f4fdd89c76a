//! Helpers for the leaf node tests: start a hub or a leaf of either
//! implementation (rnats or the reference nats-server) from a config
//! snippet, and wait until interest crosses the leaf connection.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::{free_port, Server};

/// Which implementation a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Rnats,
    Reference,
}

/// A running node and the config file it was started with.
pub struct Node {
    pub server: Server,
    pub kind: Impl,
    pub config: tempfile::NamedTempFile,
    /// The client port (kept across restarts).
    pub port: u16,
}

impl Node {
    /// Starts `kind` on a fresh client port with `config` (which may use
    /// the placeholder `{port}` for the client port).
    pub fn start(kind: Impl, reference: Option<&PathBuf>, config: &str) -> Node {
        let port = free_port();
        Self::start_on(kind, reference, config, port)
    }

    pub fn start_on(kind: Impl, reference: Option<&PathBuf>, config: &str, port: u16) -> Node {
        let mut f = tempfile::Builder::new()
            .prefix("rnats-leaf-")
            .suffix(".conf")
            .tempfile()
            .expect("temp config");
        f.write_all(config.as_bytes()).expect("write config");
        f.flush().expect("flush config");
        let server = launch(kind, reference, f.path(), port);
        Node {
            server,
            kind,
            config: f,
            port,
        }
    }

    /// Stops the node and starts it again with the same config and port.
    pub fn restart(&mut self, reference: Option<&PathBuf>) {
        self.server.kill();
        self.server = launch(self.kind, reference, self.config.path(), self.port);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }
}

fn launch(kind: Impl, reference: Option<&PathBuf>, config: &std::path::Path, port: u16) -> Server {
    let port_s = port.to_string();
    let cfg = config.to_str().expect("utf-8 path");
    let args = ["-a", "127.0.0.1", "-p", &port_s, "-c", cfg];
    let bin = match kind {
        Impl::Rnats => crate::server_bin(),
        Impl::Reference => reference.expect("reference binary").clone(),
    };
    let mut last = String::new();
    for _ in 0..3 {
        match Server::try_launch_bin(&bin, &args) {
            Ok(s) => return s,
            Err(e) => {
                last = e;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    panic!("{last}");
}

/// Waits until a subscription made on `to` receives what `from` publishes
/// (interest crossed the leaf connection, in that direction). Returns
/// false if it never did within `limit`.
pub async fn crosses(from: &async_nats::Client, to: &async_nats::Client, limit: Duration) -> bool {
    use futures::StreamExt;
    let subject = format!("_LEAFPROBE.{}", to.new_inbox().replace("_INBOX.", ""));
    let mut sub = to
        .subscribe(subject.clone())
        .await
        .expect("probe subscribe");
    crate::sync(to).await;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        from.publish(subject.clone(), bytes::Bytes::new())
            .await
            .expect("probe publish");
        from.flush().await.expect("probe flush");
        match tokio::time::timeout(Duration::from_millis(50), sub.next()).await {
            Ok(Some(_)) => return true,
            Ok(None) => return false,
            Err(_) if tokio::time::Instant::now() >= deadline => return false,
            Err(_) => {}
        }
    }
}
