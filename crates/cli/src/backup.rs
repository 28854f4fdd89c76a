//! `stream backup|restore`: JetStream snapshots over the network, laid out
//! as the nats CLI does (a directory with `backup.json`, the stream's config
//! and state, and `stream.tar.s2`, the server's archive byte for byte), so
//! backups move between this CLI and `nats`, and between servers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::conn::Js;

const META_FILE: &str = "backup.json";
const DATA_FILE: &str = "stream.tar.s2";
/// What the nats CLI sends per restore chunk.
const RESTORE_CHUNK: usize = 64 * 1024;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Stream to back up
    pub stream: String,
    /// Directory to write the backup to
    pub target: PathBuf,
    /// Leave the consumers out of the backup
    #[arg(long = "no-consumers")]
    pub no_consumers: bool,
    /// Ask the server to check the stream before the snapshot
    #[arg(long)]
    pub check: bool,
    /// Size of the chunks the server sends (bytes)
    #[arg(long = "chunk-size", default_value_t = 128 * 1024)]
    pub chunk_size: usize,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Directory holding a backup made by `stream backup` (or `nats stream backup`)
    pub source: PathBuf,
}

pub async fn backup(js: &Js, a: BackupArgs) -> Result<()> {
    std::fs::create_dir_all(&a.target)
        .with_context(|| format!("cannot create {}", a.target.display()))?;
    let inbox = js.client.new_inbox();
    // Subscribed before asking, so no chunk can be missed.
    let mut sub = js.client.subscribe(inbox.clone()).await?;
    let req = json!({
        "deliver_subject": inbox,
        "no_consumers": a.no_consumers,
        "chunk_size": a.chunk_size,
        "jsck": a.check,
    });
    let resp = js
        .api(&format!("STREAM.SNAPSHOT.{}", a.stream), Some(&req))
        .await?;
    let mut data = Vec::new();
    let mut chunks = 0u64;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .map_err(|_| anyhow!("snapshot stalled: no data from the server for 10s"))?
            .ok_or_else(|| anyhow!("connection closed during the snapshot"))?;
        if msg.payload.is_empty() {
            // The end: its status says whether the snapshot is whole.
            if let Some(status) = msg.status {
                if status.as_u16() != 204 {
                    let why = msg
                        .description
                        .clone()
                        .unwrap_or_else(|| status.to_string());
                    bail!("snapshot failed: {why}");
                }
            }
            break;
        }
        data.extend_from_slice(&msg.payload);
        chunks += 1;
        if let Some(reply) = msg.reply {
            js.client.publish(reply, bytes::Bytes::new()).await?;
        }
    }
    let meta = json!({ "config": resp.get("config"), "state": resp.get("state") });
    std::fs::write(a.target.join(DATA_FILE), &data)?;
    std::fs::write(a.target.join(META_FILE), serde_json::to_vec_pretty(&meta)?)?;
    println!(
        "Received {} bytes of compressed data in {chunks} chunks for stream {:?}",
        data.len(),
        a.stream
    );
    Ok(())
}

pub async fn restore(js: &Js, a: RestoreArgs) -> Result<()> {
    let meta_path = a.source.join(META_FILE);
    let meta: Value = serde_json::from_slice(
        &std::fs::read(&meta_path)
            .with_context(|| format!("cannot read {}", meta_path.display()))?,
    )
    .with_context(|| format!("invalid {}", meta_path.display()))?;
    let name = meta
        .pointer("/config/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("{} names no stream", meta_path.display()))?
        .to_string();
    let data_path = a.source.join(DATA_FILE);
    let data = std::fs::read(&data_path)
        .with_context(|| format!("cannot read {}", data_path.display()))?;
    let resp = js
        .api(&format!("STREAM.RESTORE.{name}"), Some(&meta))
        .await?;
    let deliver = resp
        .get("deliver_subject")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("the server gave no subject to restore to"))?
        .to_string();
    for chunk in data.chunks(RESTORE_CHUNK) {
        let ack = js
            .client
            .request(deliver.clone(), bytes::Bytes::copy_from_slice(chunk))
            .await
            .map_err(|e| anyhow!("restore failed while sending: {e}"))?;
        if !ack.payload.is_empty() {
            bail!("restore failed: {}", String::from_utf8_lossy(&ack.payload));
        }
    }
    // The server restores after the last chunk; that can take a while.
    let done = js
        .client
        .send_request(
            deliver,
            async_nats::Request::new()
                .payload(bytes::Bytes::new())
                .timeout(Some(Duration::from_secs(3600))),
        )
        .await
        .map_err(|e| anyhow!("restore failed: {e}"))?;
    let result: Value = serde_json::from_slice(&done.payload).context("invalid restore result")?;
    if let Some(err) = result.get("error") {
        bail!(
            "restore failed: {} ({})",
            err.get("description")
                .and_then(Value::as_str)
                .unwrap_or("unknown error"),
            err.get("err_code").and_then(Value::as_u64).unwrap_or(0)
        );
    }
    let msgs = result
        .pointer("/state/messages")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    println!("Restored stream {name:?} with {msgs} messages");
    Ok(())
}
