//! `kv`: JetStream key/value buckets through async-nats' KV API.

use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use clap::{Args, Subcommand};
use futures::TryStreamExt;
use serde_json::json;

use crate::conn::{ConnOpts, Js};
use crate::output::{ibytes, num, parse_bytes, parse_duration, print_json, Table};
use crate::stream::{confirm, list_streams, show_info, stream_info, Storage};

#[derive(Subcommand, Debug)]
pub enum KvCmd {
    /// Adds a new KV Store Bucket
    #[command(visible_aliases = ["new"])]
    Add(AddArgs),
    /// Puts a value into a key
    Put(PutArgs),
    /// Gets a value for a key
    Get(GetArgs),
    /// Deletes a key or the entire bucket
    Del(KeyArgs),
    /// Deletes a key from the bucket, clearing history
    Purge(KeyArgs),
    /// List available buckets or the keys in a bucket
    #[command(visible_aliases = ["list"])]
    Ls(LsArgs),
    /// Shows the full history for a key
    History(HistoryArgs),
    /// View the status of a KV store
    #[command(visible_aliases = ["info"])]
    Status(StatusArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The name of the bucket
    pub bucket: String,
    /// How many historic values to keep per key
    #[arg(long, default_value_t = 1)]
    pub history: i64,
    /// How long to keep values for
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// How many replicas of the data to store
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Maximum size of any value
    #[arg(long, allow_hyphen_values = true)]
    pub max_value_size: Option<String>,
    /// Maximum size of the bucket
    #[arg(long, allow_hyphen_values = true)]
    pub max_bucket_size: Option<String>,
    /// Storage backend to use (file, memory)
    #[arg(long, value_enum)]
    pub storage: Option<Storage>,
    /// A description for the bucket
    #[arg(long)]
    pub description: Option<String>,
    /// Compress the bucket data
    #[arg(long)]
    pub compress: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PutArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on
    pub key: String,
    /// The value to store, when empty reads STDIN
    pub value: Option<String>,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on
    pub key: String,
    /// Show only the value string
    #[arg(long)]
    pub raw: bool,
    /// Gets a specific revision
    #[arg(long)]
    pub revision: Option<u64>,
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on (for `del`, the whole bucket when absent)
    pub key: Option<String>,
    /// Act without confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// The bucket to list the keys of
    pub bucket: Option<String>,
    /// Show just the bucket names
    #[arg(short = 'n', long)]
    pub names: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on
    pub key: String,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The bucket to act on
    pub bucket: String,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

pub async fn run(conn: &ConnOpts, cmd: KvCmd) -> Result<()> {
    let js = conn.jetstream().await?;
    match cmd {
        KvCmd::Add(a) => add(&js, a).await,
        KvCmd::Put(a) => {
            let store = bucket(&js, &a.bucket).await?;
            let value = match a.value {
                Some(v) => v.into_bytes(),
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin().read_to_end(&mut buf)?;
                    buf
                }
            };
            store
                .put(&a.key, Bytes::from(value.clone()))
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!("{}", String::from_utf8_lossy(&value));
            Ok(())
        }
        KvCmd::Get(a) => {
            let store = bucket(&js, &a.bucket).await?;
            let entry = match a.revision {
                Some(r) => store.entry_for_revision(&a.key, r).await,
                None => store.entry(&a.key).await,
            }
            .map_err(|e| anyhow!("{e}"))?;
            let e = entry
                .filter(|e| e.operation == Operation::Put)
                .ok_or_else(|| anyhow!("nats: key not found"))?;
            if a.raw {
                println!("{}", String::from_utf8_lossy(&e.value));
            } else {
                println!(
                    "{} > {} revision: {} created @ {}\n",
                    e.bucket,
                    e.key,
                    e.revision,
                    created(&e)
                );
                println!("{}", String::from_utf8_lossy(&e.value));
            }
            Ok(())
        }
        KvCmd::Del(a) => {
            match &a.key {
                Some(k) => {
                    if !a.force && !confirm(&format!("Delete key {} > {}", a.bucket, k))? {
                        return Ok(());
                    }
                    let store = bucket(&js, &a.bucket).await?;
                    store.delete(k).await.map_err(|e| anyhow!("{e}"))?;
                }
                None => {
                    if !a.force && !confirm(&format!("Delete bucket {}", a.bucket))? {
                        return Ok(());
                    }
                    js.api(&format!("STREAM.DELETE.KV_{}", a.bucket), None)
                        .await
                        .context("could not delete bucket")?;
                }
            }
            Ok(())
        }
        KvCmd::Purge(a) => {
            let k = a.key.ok_or_else(|| anyhow!("a key is required"))?;
            if !a.force && !confirm(&format!("Purge key {} > {}", a.bucket, k))? {
                return Ok(());
            }
            let store = bucket(&js, &a.bucket).await?;
            store.purge(&k).await.map_err(|e| anyhow!("{e}"))?;
            Ok(())
        }
        KvCmd::Ls(a) => ls(&js, a).await,
        KvCmd::History(a) => history(&js, a).await,
        KvCmd::Status(a) => {
            let info = stream_info(&js, &format!("KV_{}", a.bucket)).await?;
            if a.json {
                print_json(&info);
            } else {
                show_info(&format!("KV_{}", a.bucket), &info, false);
            }
            Ok(())
        }
    }
}

fn created(e: &kv::Entry) -> String {
    chrono::DateTime::from_timestamp(e.created.unix_timestamp(), e.created.nanosecond())
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%d %b %y %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default()
}

async fn bucket(js: &Js, name: &str) -> Result<kv::Store> {
    js.ctx
        .get_key_value(name)
        .await
        .map_err(|e| anyhow!("could not load bucket {name}: {e}"))
}

async fn add(js: &Js, a: AddArgs) -> Result<()> {
    let storage = match a.storage.unwrap_or(Storage::File) {
        Storage::File | Storage::F => async_nats::jetstream::stream::StorageType::File,
        Storage::Memory | Storage::M => async_nats::jetstream::stream::StorageType::Memory,
    };
    let max_value_size = match &a.max_value_size {
        Some(s) => parse_bytes(s).map_err(|e| anyhow!(e))? as i32,
        None => -1,
    };
    let max_bytes = match &a.max_bucket_size {
        Some(s) => parse_bytes(s).map_err(|e| anyhow!(e))?,
        None => -1,
    };
    let cfg = kv::Config {
        bucket: a.bucket.clone(),
        description: a.description.clone().unwrap_or_default(),
        history: a.history,
        max_age: a.ttl.unwrap_or_default(),
        max_value_size,
        max_bytes,
        storage,
        num_replicas: a.replicas,
        compression: a.compress,
        ..Default::default()
    };
    js.ctx
        .create_key_value(cfg)
        .await
        .map_err(|e| anyhow!("could not create bucket: {e}"))?;
    let info = stream_info(js, &format!("KV_{}", a.bucket)).await?;
    if a.json {
        print_json(&info);
    } else {
        show_info(&format!("KV_{}", a.bucket), &info, false);
    }
    Ok(())
}

async fn ls(js: &Js, a: LsArgs) -> Result<()> {
    if let Some(b) = &a.bucket {
        let store = bucket(js, b).await?;
        let mut keys: Vec<String> = store
            .keys()
            .await
            .map_err(|e| anyhow!("{e}"))?
            .try_collect()
            .await
            .map_err(|e| anyhow!("{e}"))?;
        keys.sort();
        if a.json {
            print_json(&json!(keys));
        } else if keys.is_empty() {
            println!("No keys found in bucket");
        } else {
            for k in keys {
                println!("{k}");
            }
        }
        return Ok(());
    }
    let mut streams: Vec<_> = list_streams(js, None)
        .await?
        .into_iter()
        .filter(|s| {
            s["config"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("KV_"))
        })
        .collect();
    streams.sort_by(|x, y| {
        x["config"]["name"]
            .as_str()
            .cmp(&y["config"]["name"].as_str())
    });
    let names: Vec<String> = streams
        .iter()
        .map(|s| s["config"]["name"].as_str().unwrap_or("")[3..].to_string())
        .collect();
    if a.json {
        print_json(&json!(names));
        return Ok(());
    }
    if a.names {
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    if streams.is_empty() {
        println!("No Key-Value buckets found");
        return Ok(());
    }
    let mut t = Table::new(
        "Key-Value Buckets",
        &[
            "Bucket",
            "Description",
            "Created",
            "Size",
            "Values",
            "Last Update",
        ],
    );
    for (s, n) in streams.iter().zip(names) {
        t.row(vec![
            n,
            s["config"]["description"].as_str().unwrap_or("").into(),
            s["created"]
                .as_str()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|c| {
                    c.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default(),
            ibytes(s["state"]["bytes"].as_u64().unwrap_or(0)),
            num(s["state"]["messages"].as_u64().unwrap_or(0)),
            s["state"]["last_ts"].as_str().unwrap_or("").to_string(),
        ]);
    }
    println!("{}", t.render());
    Ok(())
}

async fn history(js: &Js, a: HistoryArgs) -> Result<()> {
    let store = bucket(js, &a.bucket).await?;
    let entries: Vec<kv::Entry> = store
        .history(&a.key)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .try_collect()
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let op = |o: &Operation| match o {
        Operation::Put => "PUT",
        Operation::Delete => "DEL",
        Operation::Purge => "PURGE",
    };
    if a.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "bucket": e.bucket, "key": e.key, "revision": e.revision,
                    "operation": op(&e.operation),
                    "value": String::from_utf8_lossy(&e.value),
                })
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    let mut t = Table::new(
        format!("History for {} > {}", a.bucket, a.key),
        &["Key", "Revision", "Op", "Created", "Length", "Value"],
    );
    for e in &entries {
        let mut val = String::from_utf8_lossy(&e.value).to_string();
        if val.chars().count() > 40 {
            val = val.chars().take(37).collect::<String>() + "...";
        }
        t.row(vec![
            e.key.clone(),
            e.revision.to_string(),
            op(&e.operation).into(),
            created(e),
            num(e.value.len()),
            val,
        ]);
    }
    println!("{}", t.render());
    Ok(())
}
