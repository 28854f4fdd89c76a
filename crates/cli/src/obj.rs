//! `object|obj`: JetStream object store buckets through async-nats' object
//! store API (chunked `$O.<bucket>.C.*` messages plus `$O.<bucket>.M.*` meta).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use async_nats::jetstream::object_store::{self, ObjectInfo, ObjectMetadata, ObjectStore};
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use crate::conn::{ConnOpts, Js};
use crate::output::{human_duration, ibytes, num, parse_bytes, parse_duration, print_json};
use crate::output::{Columns, Table};
use crate::progress::Progress;
use crate::stream::{confirm, list_streams, stream_info, ts, Storage};

/// Objects at least this big get a progress bar (on a terminal).
const PROGRESS_MIN: u64 = 1024 * 1024;

#[derive(Subcommand, Debug)]
pub enum ObjCmd {
    /// Adds a new Object Store Bucket
    #[command(visible_aliases = ["new"])]
    Add(AddArgs),
    /// Puts a file into the store
    Put(PutArgs),
    /// Retrieves a file from the store
    Get(GetArgs),
    /// List buckets or contents of a specific bucket
    #[command(visible_aliases = ["list"])]
    Ls(LsArgs),
    /// Get information about a bucket or object
    #[command(visible_aliases = ["status"])]
    Info(ObjArgs),
    /// Removes a bucket or object
    #[command(visible_aliases = ["del"])]
    Rm(RmArgs),
    /// Watch a bucket for changes
    Watch(BucketArg),
    /// Seals a bucket preventing further updates
    Seal(SealArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The bucket name
    pub bucket: String,
    /// How long to keep objects for
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// Maximum size of the bucket
    #[arg(long, allow_hyphen_values = true)]
    pub max_bucket_size: Option<String>,
    /// Storage backend to use (file, memory)
    #[arg(long, value_enum)]
    pub storage: Option<Storage>,
    /// How many replicas of the data to store
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// A description for the bucket
    #[arg(long)]
    pub description: Option<String>,
    /// Compress the bucket data
    #[arg(long)]
    pub compress: bool,
}

#[derive(Args, Debug)]
pub struct PutArgs {
    /// The bucket name
    pub bucket: String,
    /// The file to put (standard input when absent)
    pub file: Option<std::path::PathBuf>,
    /// Override the name supplied to the object store
    #[arg(long)]
    pub name: Option<String>,
    /// Sets an optional description for the object
    #[arg(long)]
    pub description: Option<String>,
    /// Disables the progress bar
    #[arg(long)]
    pub no_progress: bool,
    /// Act without confirmation when replacing an object
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The bucket name
    pub bucket: String,
    /// The object name
    pub name: String,
    /// Override the output file name (`-` for standard output)
    #[arg(short = 'O', long)]
    pub output: Option<String>,
    /// Disables the progress bar
    #[arg(long)]
    pub no_progress: bool,
    /// Overwrite existing files
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// The bucket to list (all buckets when absent)
    pub bucket: Option<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ObjArgs {
    /// The bucket name
    pub bucket: String,
    /// The object name (the bucket when absent)
    pub name: Option<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// The bucket name
    pub bucket: String,
    /// The object to remove (the whole bucket when absent)
    pub name: Option<String>,
    /// Act without confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct BucketArg {
    /// The bucket name
    pub bucket: String,
}

#[derive(Args, Debug)]
pub struct SealArgs {
    /// The bucket name
    pub bucket: String,
    /// Act without confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub async fn run(conn: &ConnOpts, cmd: ObjCmd) -> Result<()> {
    let js = conn.jetstream().await?;
    match cmd {
        ObjCmd::Add(a) => add(&js, a).await,
        ObjCmd::Put(a) => put(&js, a).await,
        ObjCmd::Get(a) => get(&js, a).await,
        ObjCmd::Ls(a) => ls(&js, a).await,
        ObjCmd::Info(a) => match &a.name {
            Some(n) => {
                let info = bucket(&js, &a.bucket)
                    .await?
                    .info(n)
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                if a.json {
                    print_json(&serde_json::to_value(&info)?);
                } else {
                    show_object(&info);
                }
                Ok(())
            }
            None => {
                let info = stream_info(&js, &format!("OBJ_{}", a.bucket))
                    .await
                    .with_context(|| format!("could not find bucket {}", a.bucket))?;
                if a.json {
                    print_json(&info);
                } else {
                    show_bucket(&a.bucket, &info);
                }
                Ok(())
            }
        },
        ObjCmd::Rm(a) => match &a.name {
            Some(n) => {
                let store = bucket(&js, &a.bucket).await?;
                if !a.force && !confirm(&format!("Delete object {} > {}", a.bucket, n))? {
                    return Ok(());
                }
                store.delete(n).await.map_err(|e| anyhow!("{e}"))?;
                Ok(())
            }
            None => {
                if !a.force && !confirm(&format!("Delete bucket {}", a.bucket))? {
                    return Ok(());
                }
                js.ctx
                    .delete_object_store(&a.bucket)
                    .await
                    .map_err(|e| anyhow!("could not delete bucket {}: {e}", a.bucket))?;
                Ok(())
            }
        },
        ObjCmd::Watch(a) => {
            let store = bucket(&js, &a.bucket).await?;
            let mut w = store.watch().await.map_err(|e| anyhow!("{e}"))?;
            while let Some(item) = w.next().await {
                let info = item.map_err(|e| anyhow!("{e}"))?;
                let when = match mtime(&info) {
                    t if t.is_empty() => chrono::Local::now().format("%F %T").to_string(),
                    t => t,
                };
                let op = if info.deleted { "DEL" } else { "PUT" };
                println!(
                    "[{when}] {op} {}: {} ({})",
                    info.bucket,
                    info.name,
                    ibytes(info.size as u64)
                );
            }
            Ok(())
        }
        ObjCmd::Seal(a) => {
            if !a.force
                && !confirm(&format!(
                    "Really seal Bucket {}, sealed buckets can not be unsealed or modified",
                    a.bucket
                ))?
            {
                return Ok(());
            }
            let mut store = bucket(&js, &a.bucket).await?;
            store.seal().await.map_err(|e| anyhow!("{e}"))?;
            println!("{} has been sealed", a.bucket);
            let info = stream_info(&js, &format!("OBJ_{}", a.bucket)).await?;
            show_bucket(&a.bucket, &info);
            Ok(())
        }
    }
}

async fn bucket(js: &Js, name: &str) -> Result<ObjectStore> {
    js.ctx
        .get_object_store(name)
        .await
        .map_err(|e| anyhow!("could not find bucket {name}: {e}"))
}

async fn add(js: &Js, a: AddArgs) -> Result<()> {
    let storage = match a.storage.unwrap_or(Storage::File) {
        Storage::File | Storage::F => async_nats::jetstream::stream::StorageType::File,
        Storage::Memory | Storage::M => async_nats::jetstream::stream::StorageType::Memory,
    };
    let max_bytes = match &a.max_bucket_size {
        Some(s) => parse_bytes(s).map_err(|e| anyhow!(e))?,
        None => -1,
    };
    js.ctx
        .create_object_store(object_store::Config {
            bucket: a.bucket.clone(),
            description: a.description,
            max_age: a.ttl.unwrap_or_default(),
            max_bytes,
            storage,
            num_replicas: a.replicas,
            compression: a.compress,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("could not create bucket {}: {e}", a.bucket))?;
    let info = stream_info(js, &format!("OBJ_{}", a.bucket)).await?;
    show_bucket(&a.bucket, &info);
    Ok(())
}

/// Counts bytes read through it into a progress bar.
struct Counting<R> {
    inner: R,
    bar: Progress,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.bar.add(n);
        r
    }
}

async fn put(js: &Js, a: PutArgs) -> Result<()> {
    let name = match (&a.name, &a.file) {
        (Some(n), _) => n.clone(),
        (None, Some(f)) => f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("cannot name an object after {}", f.display()))?,
        (None, None) => bail!("--name is required when reading from standard input"),
    };
    let store = bucket(js, &a.bucket).await?;
    if !a.force {
        if let Ok(existing) = store.info(&name).await {
            if !existing.deleted
                && !confirm(&format!(
                    "Replace existing file {} > {}",
                    a.bucket, existing.name
                ))?
            {
                return Ok(());
            }
        }
    }
    let meta = ObjectMetadata {
        name: name.clone(),
        description: a.description.clone(),
        ..Default::default()
    };
    let started = Instant::now();
    let info = match &a.file {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("could not open {}", path.display()))?;
            let size = file.metadata().await?.len();
            let bar = Progress::new(
                name.clone(),
                size,
                true,
                !a.no_progress && size >= PROGRESS_MIN,
            );
            let mut reader = Counting { inner: file, bar };
            let info = store.put(meta, &mut reader).await;
            reader.bar.finish();
            info
        }
        None => store.put(meta, &mut tokio::io::stdin()).await,
    }
    .map_err(|e| anyhow!("could not put {name}: {e}"))?;
    // Timing goes to stderr so stdout stays the object info.
    crate::output::log(format!(
        "Stored {} in {}",
        ibytes(info.size as u64),
        human_duration(started.elapsed())
    ));
    show_object(&info);
    Ok(())
}

async fn get(js: &Js, a: GetArgs) -> Result<()> {
    let store = bucket(js, &a.bucket).await?;
    let mut obj = store
        .get(&a.name)
        .await
        .map_err(|e| anyhow!("could not get {} > {}: {e}", a.bucket, a.name))?;
    let size = obj.info().size as u64;
    let started = Instant::now();
    let to_stdout = a.output.as_deref() == Some("-");
    let mut bar = Progress::new(
        a.name.clone(),
        size,
        true,
        !a.no_progress && size >= PROGRESS_MIN,
    );
    let mut buf = vec![0u8; 128 * 1024];
    if to_stdout {
        let mut out = tokio::io::stdout();
        loop {
            let n = obj.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).await?;
            bar.add(n as u64);
        }
        out.flush().await?;
        return Ok(());
    }
    // Like the nats CLI, the default file is the object's base name here.
    let path = match &a.output {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let base = std::path::Path::new(&a.name)
                .file_name()
                .ok_or_else(|| anyhow!("cannot derive a file name from {:?}", a.name))?;
            std::path::PathBuf::from(base)
        }
    };
    if path.exists() && !a.force {
        bail!(
            "{} already exists, use --force to overwrite",
            path.display()
        );
    }
    let mut file = tokio::fs::File::create(&path)
        .await
        .with_context(|| format!("could not create {}", path.display()))?;
    let mut written = 0u64;
    loop {
        let n = obj.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).await?;
        written += n as u64;
        bar.add(n as u64);
    }
    file.flush().await?;
    bar.finish();
    println!(
        "Wrote: {} to {} in {}",
        ibytes(written),
        path.display(),
        human_duration(started.elapsed())
    );
    Ok(())
}

async fn ls(js: &Js, a: LsArgs) -> Result<()> {
    let Some(b) = &a.bucket else {
        let mut streams: Vec<Value> = list_streams(js, None)
            .await?
            .into_iter()
            .filter(|s| {
                s["config"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("OBJ_"))
            })
            .collect();
        streams.sort_by(|x, y| {
            x["config"]["name"]
                .as_str()
                .cmp(&y["config"]["name"].as_str())
        });
        let name = |s: &Value| {
            s["config"]["name"]
                .as_str()
                .and_then(|n| n.strip_prefix("OBJ_"))
                .unwrap_or("")
                .to_string()
        };
        if a.json {
            print_json(&json!(streams.iter().map(name).collect::<Vec<_>>()));
        } else if streams.is_empty() {
            println!("No Object Store buckets found");
        } else {
            let mut t = Table::new(
                "Object Store Buckets",
                &["Bucket", "Description", "Created", "Size", "Last Update"],
            );
            for s in &streams {
                t.row(vec![
                    name(s),
                    s["config"]["description"].as_str().unwrap_or("").into(),
                    ts(&s["created"]).unwrap_or_default(),
                    ibytes(s["state"]["bytes"].as_u64().unwrap_or(0)),
                    ts(&s["state"]["last_ts"]).unwrap_or_default(),
                ]);
            }
            println!("{}", t.render());
        }
        return Ok(());
    };
    let store = bucket(js, b).await?;
    let mut list = store.list().await.map_err(|e| anyhow!("{e}"))?;
    let mut objs: Vec<ObjectInfo> = Vec::new();
    while let Some(o) = list.next().await {
        objs.push(o.map_err(|e| anyhow!("{e}"))?);
    }
    objs.sort_by(|x, y| x.name.cmp(&y.name));
    if a.json {
        print_json(&serde_json::to_value(&objs)?);
    } else if objs.is_empty() {
        println!("No entries found");
    } else {
        let mut t = Table::new("Bucket Contents", &["Name", "Size", "Time"]);
        for o in &objs {
            t.row(vec![o.name.clone(), ibytes(o.size as u64), mtime(o)]);
        }
        println!("{}", t.render());
    }
    Ok(())
}

/// Local `YYYY-MM-DD HH:MM:SS` of an object's modification time, read
/// through its JSON form so it does not depend on async-nats' time backend.
fn mtime(o: &ObjectInfo) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| ts(&v["mtime"]))
        .unwrap_or_default()
}

/// `SHA-256=<base64url>` as the nats CLI shows it: `SHA-256 <hex>`.
fn digest(d: &str) -> String {
    use base64::Engine as _;
    match d.split_once('=') {
        Some((alg, b64)) => match base64::engine::general_purpose::URL_SAFE.decode(b64) {
            Ok(raw) => format!(
                "{alg} {}",
                raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            Err(_) => d.to_string(),
        },
        None => d.to_string(),
    }
}

fn show_object(o: &ObjectInfo) {
    let mut c = Columns::new(format!("Object information for {} > {}", o.bucket, o.name));
    c.row_if(
        o.description.as_deref().is_some_and(|d| !d.is_empty()),
        "Description",
        o.description.clone().unwrap_or_default(),
    );
    c.row("Size", ibytes(o.size as u64));
    c.row("Modification Time", mtime(o));
    c.row("Chunks", num(o.chunks));
    c.row(
        "Digest",
        o.digest.as_deref().map(digest).unwrap_or_default(),
    );
    c.row_if(o.deleted, "Deleted", "true");
    print!("{}", c.render());
}

fn show_bucket(name: &str, info: &Value) {
    let cfg = &info["config"];
    let mut c = Columns::new(format!("{name} Object Store Status"));
    c.row("Bucket Name", name);
    c.row_if(
        cfg["description"].as_str().is_some_and(|d| !d.is_empty()),
        "Description",
        cfg["description"].as_str().unwrap_or(""),
    );
    c.row("Replicas", num(cfg["num_replicas"].as_u64().unwrap_or(1)));
    let ttl = cfg["max_age"].as_i64().unwrap_or(0);
    c.row(
        "TTL",
        if ttl == 0 {
            "unlimited".to_string()
        } else {
            crate::output::nanos(ttl)
        },
    );
    c.row(
        "Sealed",
        cfg["sealed"].as_bool().unwrap_or(false).to_string(),
    );
    c.row("Size", ibytes(info["state"]["bytes"].as_u64().unwrap_or(0)));
    let max = cfg["max_bytes"].as_i64().unwrap_or(-1);
    c.row(
        "Maximum Bucket Size",
        if max < 0 {
            "unlimited".into()
        } else {
            ibytes(max as u64)
        },
    );
    c.row("Backing Store Kind", "JetStream");
    c.row("JetStream Stream", format!("OBJ_{name}"));
    c.row("Storage", cfg["storage"].as_str().unwrap_or("file"));
    print!("{}", c.render());
}
