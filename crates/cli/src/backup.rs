//! `stream backup|restore`: JetStream snapshots. rnats-server does not offer
//! `$JS.API.STREAM.SNAPSHOT`/`RESTORE`, and this CLI does not speak the
//! snapshot chunk protocol yet, so both verbs explain that and exit non-zero.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use crate::conn::Js;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Stream to back up
    pub stream: String,
    /// Directory to write the backup to
    pub target: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Directory holding a backup made by `nats stream backup`
    pub source: std::path::PathBuf,
}

pub async fn backup(js: &Js, a: BackupArgs) -> Result<()> {
    // Probe: a server with snapshots answers; rnats-server stays silent.
    // The deliver subject has no subscriber, so a real server's snapshot
    // stalls and is abandoned on its side; nothing is written here.
    let probe = Js {
        client: js.client.clone(),
        ctx: js.ctx.clone(),
        timeout: js.timeout.min(Duration::from_secs(2)),
    };
    let req = json!({ "deliver_subject": probe.client.new_inbox(), "chunk_size": 128 * 1024 });
    match probe
        .api(&format!("STREAM.SNAPSHOT.{}", a.stream), Some(&req))
        .await
    {
        Ok(_) => bail!(
            "the server supports snapshots but rnats cannot receive them yet; use `nats stream backup`"
        ),
        Err(e) if e.downcast_ref::<crate::conn::ApiError>().is_some() => Err(e),
        Err(_) => bail!(
            "stream backup needs server snapshots ($JS.API.STREAM.SNAPSHOT) and this server does not support them"
        ),
    }
}

pub async fn restore(_js: &Js, a: RestoreArgs) -> Result<()> {
    bail!(
        "cannot restore {}: stream restore needs server snapshots ($JS.API.STREAM.RESTORE), which rnats does not support",
        a.source.display()
    )
}
