//! `stream` (`str`, `s`): JetStream stream management through the JSON API.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::conn::{ConnOpts, Js};
use crate::output::{
    ibytes, nanos, num, parse_bytes, parse_signed_duration, print_json, Columns, Table,
};
use crate::prompt::{go_duration, Prompter};

// Help shown for `?` at the `stream add` questions (the nats CLI's wording).
const HELP_SUBJECTS: &str = "Streams consume messages from subjects, this is a space or comma separated list that can include wildcards. Settable using --subjects";
const HELP_STORAGE: &str = "Streams are stored on the server, this can be one of many backends and all are usable in clustering mode. Settable using --storage";
const HELP_REPLICAS: &str =
    "When clustered, defines how many replicas of the data to store.  Settable using --replicas";
const HELP_RETENTION: &str = "Messages are retained either based on limits like size and age (Limits), as long as there are Consumers (Interest) or until any worker processed them (Work Queue)";
const HELP_DISCARD: &str = "Once the Stream reaches its limits of size or messages, the New policy will prevent further messages from being added while Old will delete old messages.";
const HELP_MAX_MSGS: &str = "Defines the amount of messages to keep in the store for this Stream, when exceeded oldest messages are removed, -1 for unlimited. Settable using --max-msgs";
const HELP_MAX_PER_SUBJECT: &str = "Defines the amount of messages to keep in the store for this Stream per unique subject, when exceeded oldest messages are removed, -1 for unlimited. Settable using --max-msgs-per-subject";
const HELP_MAX_BYTES: &str = "Defines the combined size of all messages in a Stream, when exceeded messages are removed or new ones are rejected, -1 for unlimited. Settable using --max-bytes";
const HELP_MAX_AGE: &str = "Defines the oldest messages that can be stored in the Stream, any messages older than this period will be removed, -1 for unlimited. Supports units (s)econds, (m)inutes, (h)ours, (y)ears, (M)onths, (d)ays. Settable using --max-age";
const HELP_MAX_MSG_SIZE: &str = "Defines the maximum size any single message may be to be accepted by the Stream. Settable using --max-msg-size";
const HELP_DUPE_WINDOW: &str = "Duplicate messages are identified by the Msg-Id headers and tracked within a window of this size. Supports units (s)econds, (m)inutes, (h)ours, (y)ears, (M)onths, (d)ays. Settable using --dupe-window";

#[derive(Subcommand, Debug)]
pub enum StreamCmd {
    /// Create a new stream
    #[command(visible_aliases = ["create", "new"])]
    Add(Box<AddArgs>),
    /// Stream information
    #[command(visible_aliases = ["nfo", "i"])]
    Info(InfoArgs),
    /// Stream state
    State(InfoArgs),
    /// List all known streams
    #[command(visible_aliases = ["list", "l"])]
    Ls(LsArgs),
    /// Removes a stream
    #[command(visible_aliases = ["delete", "del"])]
    Rm(RmArgs),
    /// Bulk removes messages from a stream
    Purge(PurgeArgs),
    /// Retrieves a specific message from a Stream
    Get(GetArgs),
    /// Securely removes an individual message from a stream
    Rmm(RmmArgs),
    /// Reports on stream statistics
    Report(ReportArgs),
    /// View messages in a stream
    View(crate::view::ViewArgs),
    /// Edits an existing stream (flags as `add`; only those given change)
    Edit(Box<crate::stream_edit::EditArgs>),
    /// Creates a new Stream based on the configuration of another
    #[command(name = "copy", visible_alias = "cp")]
    Copy(Box<crate::stream_edit::CpArgs>),
    /// Creates a backup of a Stream over the NATS network (needs server snapshots)
    Backup(crate::backup::BackupArgs),
    /// Restore a Stream over the NATS network (needs server snapshots)
    Restore(crate::backup::RestoreArgs),
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Storage {
    File,
    F,
    Memory,
    M,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Retention {
    Limits,
    Interest,
    Workq,
    Work,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Discard {
    New,
    Old,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Compression {
    None,
    S2,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Stream name
    pub stream: Option<String>,
    /// JSON file to read configuration from (a config or `str info -j` output)
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Save configuration instead of creating
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Accept default values for all prompts
    #[arg(long)]
    pub defaults: bool,
    /// Subjects that are consumed by the stream
    #[arg(long, value_name = "SUBJECTS", num_args = 1..)]
    pub subjects: Vec<String>,
    /// Sets a contextual description for the stream
    #[arg(long)]
    pub description: Option<String>,
    /// Storage backend to use (file, memory)
    #[arg(long, value_enum)]
    pub storage: Option<Storage>,
    /// Compression algorithm to use (file storage only)
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// When clustered, how many replicas of the data to create
    #[arg(long)]
    pub replicas: Option<i64>,
    /// Acknowledge publishes (default)
    #[arg(long, overrides_with = "no_ack")]
    pub ack: bool,
    /// Do not acknowledge publishes
    #[arg(long, overrides_with = "ack")]
    pub no_ack: bool,
    /// Defines a retention policy (limits, interest, work)
    #[arg(long, value_enum)]
    pub retention: Option<Retention>,
    /// Defines the discard policy (new, old)
    #[arg(long, value_enum)]
    pub discard: Option<Discard>,
    /// Sets the 'new' discard policy and applies it to every subject
    #[arg(long)]
    pub discard_per_subject: bool,
    /// Sets the starting sequence
    #[arg(long)]
    pub first_sequence: Option<u64>,
    /// Maximum age of messages to keep (e.g. 1y, 2h, -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub max_age: Option<String>,
    /// Maximum bytes to keep (e.g. 1GB, -1 for unlimited)
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    pub max_bytes: Option<String>,
    /// Maximum number of consumers to allow
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub max_consumers: i64,
    /// Maximum size any 1 message may be
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    pub max_msg_size: Option<String>,
    /// Maximum amount of messages to keep
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub max_msgs: i64,
    /// Maximum amount of messages to keep per subject
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub max_msgs_per_subject: i64,
    /// Duration of the duplicate message tracking window
    #[arg(long)]
    pub dupe_window: Option<String>,
    /// Allows roll-ups to be done by publishing messages with special headers
    #[arg(long, overrides_with = "no_allow_rollup")]
    pub allow_rollup: bool,
    #[arg(long, overrides_with = "allow_rollup", hide = true)]
    pub no_allow_rollup: bool,
    /// Deny messages from being deleted via the API
    #[arg(long, overrides_with = "no_deny_delete")]
    pub deny_delete: bool,
    #[arg(long, overrides_with = "deny_delete", hide = true)]
    pub no_deny_delete: bool,
    /// Deny entire stream or subject purges via the API
    #[arg(long, overrides_with = "no_deny_purge")]
    pub deny_purge: bool,
    #[arg(long, overrides_with = "deny_purge", hide = true)]
    pub no_deny_purge: bool,
    /// Allows fast, direct, access to stream data via the direct get API (default)
    #[arg(long, overrides_with = "no_allow_direct")]
    pub allow_direct: bool,
    /// Disables direct get access
    #[arg(long, overrides_with = "allow_direct")]
    pub no_allow_direct: bool,
    /// Allows per-message TTL handling
    #[arg(long)]
    pub allow_msg_ttl: bool,
    /// Adds metadata to the stream (key=value, repeatable)
    #[arg(long, value_name = "META")]
    pub metadata: Vec<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Stream to retrieve information for
    pub stream: String,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Shows only the stream state
    #[arg(long)]
    pub state: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Limit the list to streams with matching subjects
    #[arg(long)]
    pub subject: Option<String>,
    /// Show just the stream names
    #[arg(short = 'n', long)]
    pub names: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Include system streams
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stream name
    pub stream: String,
    /// Force removal without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// Stream name
    pub stream: String,
    /// Force removal without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Limits the purge to a specific subject
    #[arg(long)]
    pub subject: Option<String>,
    /// Purge up to but not including a specific message sequence
    #[arg(long)]
    pub seq: Option<u64>,
    /// Keeps a certain number of messages after the purge
    #[arg(long)]
    pub keep: Option<u64>,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// Stream name
    pub stream: String,
    /// Message Sequence to retrieve
    pub id: Option<u64>,
    /// Retrieves the message for a specific subject
    #[arg(short = 'S', long, value_name = "SUBJECT")]
    pub last_for: Option<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmmArgs {
    /// Stream name
    pub stream: String,
    /// Message Sequence to remove
    pub id: u64,
    /// Force removal without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Limit the report to streams with matching subjects
    #[arg(long)]
    pub subject: Option<String>,
    /// Sort by number of Consumers
    #[arg(short = 'o', long)]
    pub consumers: bool,
    /// Sort by number of Messages
    #[arg(short = 'm', long)]
    pub messages: bool,
    /// Sort by stream name
    #[arg(short = 'n', long)]
    pub name: bool,
    /// Show un-formatted numbers
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// A number formatter for the report.
type Fmt = fn(u64) -> String;

/// Ask for confirmation on a terminal; refuse when not interactive.
pub fn confirm(prompt: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{prompt}: refusing to continue without --force when not interactive");
    }
    print!("? {prompt} (y/N) ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Decode the base64 fields of the JetStream message API.
pub fn b64(s: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .context("invalid base64 in server response")
}

/// Strip the API `type` marker so `-j` prints the info object itself.
pub fn strip_type(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("type");
    }
    v
}

pub fn split_subjects(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|s| s.split([',', ' ']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Load a stream config from a file holding a config or a stream info.
pub fn load_config_file(path: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).context("invalid input")?;
    let mut cfg = match v.get("config") {
        Some(c) => c.clone(),
        None => v,
    };
    // Server-maintained `_nats.*` metadata is not part of a user config.
    if let Some(m) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|k, _| !k.starts_with("_nats"));
        if m.is_empty() {
            cfg.as_object_mut().map(|o| o.remove("metadata"));
        }
    }
    Ok(cfg)
}

pub fn dur_ns(s: &str, what: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(0);
    }
    let (neg, d) = parse_signed_duration(s).map_err(|e| anyhow!("invalid {what}: {e}"))?;
    Ok(if neg { 0 } else { d.as_nanos() as i64 })
}

/// A whole number answer (`-1` allowed).
pub fn parse_int(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("{s:?} is not a whole number"))
}

/// The stream config from `--config`, flags, and answers to the questions
/// flags left open.
fn build_config(a: &AddArgs, p: &mut Prompter) -> Result<Value> {
    if let Some(path) = &a.config {
        let mut cfg = load_config_file(path)?;
        let o = cfg
            .as_object_mut()
            .ok_or_else(|| anyhow!("invalid input: configuration is not a JSON object"))?;
        if let Some(n) = &a.stream {
            o.insert("name".into(), json!(n));
        }
        let subjects = split_subjects(&a.subjects);
        if !subjects.is_empty() {
            o.insert("subjects".into(), json!(subjects));
        }
        if let Some(d) = &a.description {
            o.insert("description".into(), json!(d));
        }
        if let Some(r) = a.replicas.filter(|r| *r > 0) {
            o.insert("num_replicas".into(), json!(r));
        }
        if o.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            bail!("a stream name is required");
        }
        return Ok(cfg);
    }
    let name = match &a.stream {
        Some(n) => n.clone(),
        None => p.required("Stream Name", "", "a stream name is required")?,
    };
    let mut subjects = split_subjects(&a.subjects);
    if subjects.is_empty() && p.interactive() {
        let s = p.required("Subjects", HELP_SUBJECTS, "subjects are required")?;
        subjects = split_subjects(&[s]);
    }
    let storage = match a.storage {
        Some(Storage::File | Storage::F) => "file".to_string(),
        Some(Storage::Memory | Storage::M) => "memory".to_string(),
        None => p.select("Storage", &["file", "memory"], "file", HELP_STORAGE)?,
    };
    let replicas = match a.replicas {
        Some(r) => r,
        None => p.parsed("Replication", "1", HELP_REPLICAS, parse_int)?,
    };
    if replicas <= 0 {
        bail!("replicas should be >= 1");
    }
    let retention = match a.retention {
        Some(Retention::Limits) => "limits",
        Some(Retention::Interest) => "interest",
        Some(Retention::Workq | Retention::Work) => "workqueue",
        None => match p
            .select(
                "Retention Policy",
                &["Limits", "Interest", "Work Queue"],
                "Limits",
                HELP_RETENTION,
            )?
            .as_str()
        {
            "Interest" => "interest",
            "Work Queue" => "workqueue",
            _ => "limits",
        },
    };
    let discard = match (a.discard_per_subject, a.discard) {
        (true, _) | (false, Some(Discard::New)) => "new",
        (false, Some(Discard::Old)) => "old",
        (false, None) => {
            let d = p.select("Discard Policy", &["New", "Old"], "Old", HELP_DISCARD)?;
            if d == "New" {
                "new"
            } else {
                "old"
            }
        }
    };
    let max_msgs = match a.max_msgs {
        0 => p.parsed("Stream Messages Limit", "-1", HELP_MAX_MSGS, parse_int)?,
        n => n,
    };
    let max_msgs_per_subject = match a.max_msgs_per_subject {
        0 if !subjects.is_empty() => p.parsed(
            "Per Subject Messages Limit",
            "-1",
            HELP_MAX_PER_SUBJECT,
            parse_int,
        )?,
        n => n,
    };
    let max_bytes = match &a.max_bytes {
        Some(s) => parse_bytes(s).map_err(|e| anyhow!(e))?,
        None => p.parsed("Total Stream Size", "-1", HELP_MAX_BYTES, parse_bytes)?,
    };
    let age_format = "maximum age limit format";
    let max_age = match &a.max_age {
        Some(s) => dur_ns(s, age_format)?,
        None => p.parsed("Message TTL", "-1", HELP_MAX_AGE, |s| {
            dur_ns(s, age_format).map_err(|e| e.to_string())
        })?,
    };
    let max_msg_size = match &a.max_msg_size {
        Some(s) => parse_bytes(s).map_err(|e| anyhow!(e))?,
        None => p.parsed("Max Message Size", "-1", HELP_MAX_MSG_SIZE, parse_bytes)?,
    };
    if max_msg_size > i32::MAX as i64 {
        bail!(
            "max value size {} is too big maximum is {}",
            num(max_msg_size),
            num(i32::MAX)
        );
    }
    let dupe_format = "duplicate window format";
    let dupe = match &a.dupe_window {
        Some(s) => dur_ns(s, dupe_format)?,
        None => {
            let two_min = 120_000_000_000i64;
            let default = if max_age > 0 && max_age < two_min {
                max_age
            } else {
                two_min
            };
            let default = go_duration(std::time::Duration::from_nanos(default as u64));
            p.parsed(
                "Duplicate tracking time window",
                &default,
                HELP_DUPE_WINDOW,
                |s| dur_ns(s, dupe_format).map_err(|e| e.to_string()),
            )?
        }
    };
    let allow_rollup = match (a.allow_rollup, a.no_allow_rollup) {
        (false, false) => p.confirm("Allow message Roll-ups", false)?,
        (set, _) => set,
    };
    let deny_delete = match (a.deny_delete, a.no_deny_delete) {
        (false, false) => !p.confirm("Allow message deletion", true)?,
        (set, _) => set,
    };
    let deny_purge = match (a.deny_purge, a.no_deny_purge) {
        (false, false) => !p.confirm("Allow purging subjects or the entire stream", true)?,
        (set, _) => set,
    };
    let mut cfg = json!({
        "name": name,
        "subjects": subjects,
        "retention": retention,
        "max_consumers": a.max_consumers,
        "max_msgs": if max_msgs <= 0 { -1 } else { max_msgs },
        "max_bytes": if max_bytes <= 0 { -1 } else { max_bytes },
        "max_age": max_age,
        "max_msgs_per_subject": if max_msgs_per_subject <= 0 { -1 } else { max_msgs_per_subject },
        "max_msg_size": if max_msg_size == 0 { -1 } else { max_msg_size },
        "discard": discard,
        "storage": storage,
        "num_replicas": replicas,
        "duplicate_window": dupe,
        "no_ack": a.no_ack,
        "allow_rollup_hdrs": allow_rollup,
        "deny_delete": deny_delete,
        "deny_purge": deny_purge,
        "allow_direct": !a.no_allow_direct,
        "mirror_direct": false,
        "sealed": false,
    });
    let o = cfg.as_object_mut().expect("object");
    if let Some(d) = &a.description {
        o.insert("description".into(), json!(d));
    }
    if a.discard_per_subject {
        o.insert("discard_new_per_subject".into(), json!(true));
    }
    if let Some(c) = a.compression {
        let c = match c {
            Compression::None => "none",
            Compression::S2 => "s2",
        };
        o.insert("compression".into(), json!(c));
    }
    if let Some(fs) = a.first_sequence {
        o.insert("first_seq".into(), json!(fs));
    }
    if a.allow_msg_ttl {
        o.insert("allow_msg_ttl".into(), json!(true));
    }
    if !a.metadata.is_empty() {
        let mut m = BTreeMap::new();
        for kv in &a.metadata {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid metadata {kv:?}, expected key=value"))?;
            m.insert(k.to_string(), v.to_string());
        }
        o.insert("metadata".into(), json!(m));
    }
    Ok(cfg)
}

pub async fn run(conn: &ConnOpts, cmd: StreamCmd) -> Result<()> {
    if let StreamCmd::Add(a) = &cmd {
        if let Some(out) = &a.output {
            let cfg = build_config(a, &mut Prompter::new(a.defaults))?;
            std::fs::write(out, serde_json::to_vec_pretty(&cfg)?)
                .with_context(|| format!("could not write {}", out.display()))?;
            return Ok(());
        }
    }
    let js = conn.jetstream().await?;
    match cmd {
        StreamCmd::Add(a) => add(&js, *a).await,
        StreamCmd::Info(a) => info(&js, a).await,
        StreamCmd::State(mut a) => {
            a.state = true;
            info(&js, a).await
        }
        StreamCmd::Ls(a) => ls(&js, a).await,
        StreamCmd::Rm(a) => rm(&js, a).await,
        StreamCmd::Purge(a) => purge(&js, a).await,
        StreamCmd::Get(a) => get(&js, a).await,
        StreamCmd::Rmm(a) => rmm(&js, a).await,
        StreamCmd::Report(a) => report(&js, a).await,
        StreamCmd::View(a) => crate::view::view(&js, a).await,
        StreamCmd::Edit(a) => crate::stream_edit::edit(&js, *a).await,
        StreamCmd::Copy(a) => crate::stream_edit::copy(&js, *a).await,
        StreamCmd::Backup(a) => crate::backup::backup(&js, a).await,
        StreamCmd::Restore(a) => crate::backup::restore(&js, a).await,
    }
}

async fn add(js: &Js, a: AddArgs) -> Result<()> {
    let cfg = build_config(&a, &mut Prompter::new(a.defaults))?;
    let name = cfg["name"].as_str().unwrap_or_default().to_string();
    let info = js
        .api(&format!("STREAM.CREATE.{name}"), Some(&cfg))
        .await
        .context("could not create Stream")?;
    let info = strip_type(info);
    if a.json {
        print_json(&info);
    } else {
        println!("Stream {name} was created\n");
        show_info(&name, &info, false);
    }
    Ok(())
}

pub async fn stream_info(js: &Js, name: &str) -> Result<Value> {
    Ok(strip_type(
        js.api(&format!("STREAM.INFO.{name}"), None).await?,
    ))
}

async fn info(js: &Js, a: InfoArgs) -> Result<()> {
    let info = stream_info(js, &a.stream).await?;
    if a.json {
        print_json(&info);
    } else {
        show_info(&a.stream, &info, a.state);
    }
    Ok(())
}

pub fn ts(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    if t.timestamp() <= 0 {
        return None;
    }
    Some(
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    )
}

fn yes_no(b: bool) -> String {
    b.to_string()
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn limit_i64(v: &Value, f: impl Fn(i64) -> String) -> String {
    match v.as_i64() {
        Some(n) if n > 0 => f(n),
        _ => "unlimited".into(),
    }
}

pub fn show_info(name: &str, info: &Value, state_only: bool) {
    let created = ts(&info["created"]).unwrap_or_default();
    let mut cols = if state_only {
        Columns::new(format!("State for Stream {name} created {created}"))
    } else {
        Columns::new(format!("Information for Stream {name} created {created}"))
    };
    let cfg = &info["config"];
    if !state_only {
        if let Some(d) = cfg["description"].as_str().filter(|d| !d.is_empty()) {
            cols.row("Description", d);
        }
        let subjects: Vec<&str> = cfg["subjects"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        cols.row_if(!subjects.is_empty(), "Subjects", subjects.join(", "));
        cols.row(
            "Replicas",
            cfg["num_replicas"].as_i64().unwrap_or(1).to_string(),
        );
        cols.row_if(cfg["sealed"].as_bool() == Some(true), "Sealed", "true");
        cols.row("Storage", cap(cfg["storage"].as_str().unwrap_or("file")));
        if let Some(c) = cfg["compression"]
            .as_str()
            .filter(|c| *c != "none" && !c.is_empty())
        {
            cols.row("Compression", c);
        }
        if let Some(fs) = cfg["first_seq"].as_u64().filter(|n| *n > 0) {
            cols.row("First Sequence", num(fs));
        }
        cols.section("Options");
        let retention = match cfg["retention"].as_str().unwrap_or("limits") {
            "workqueue" => "WorkQueue".to_string(),
            r => cap(r),
        };
        cols.row("Retention", retention);
        cols.row(
            "Acknowledgments",
            yes_no(cfg["no_ack"].as_bool() != Some(true)),
        );
        let discard = if cfg["discard_new_per_subject"].as_bool() == Some(true) {
            "New Per Subject".to_string()
        } else {
            cap(cfg["discard"].as_str().unwrap_or("old"))
        };
        cols.row("Discard Policy", discard);
        cols.row(
            "Duplicate Window",
            nanos(cfg["duplicate_window"].as_i64().unwrap_or(0)),
        );
        cols.row_if(
            cfg["allow_direct"].as_bool() == Some(true),
            "Direct Get",
            "true",
        );
        cols.row_if(
            cfg["mirror_direct"].as_bool() == Some(true),
            "Mirror Direct Get",
            "true",
        );
        cols.row(
            "Allows Msg Delete",
            yes_no(cfg["deny_delete"].as_bool() != Some(true)),
        );
        cols.row(
            "Allows Per-Message TTL",
            yes_no(cfg["allow_msg_ttl"].as_bool() == Some(true)),
        );
        cols.row(
            "Allows Purge",
            yes_no(cfg["deny_purge"].as_bool() != Some(true)),
        );
        cols.row(
            "Allows Rollups",
            yes_no(cfg["allow_rollup_hdrs"].as_bool() == Some(true)),
        );
        cols.section("Limits");
        cols.row("Maximum Messages", limit_i64(&cfg["max_msgs"], num));
        cols.row(
            "Maximum Per Subject",
            limit_i64(&cfg["max_msgs_per_subject"], num),
        );
        cols.row(
            "Maximum Bytes",
            limit_i64(&cfg["max_bytes"], |n| ibytes(n as u64)),
        );
        cols.row("Maximum Age", limit_i64(&cfg["max_age"], nanos));
        cols.row(
            "Maximum Message Size",
            limit_i64(&cfg["max_msg_size"], |n| ibytes(n as u64)),
        );
        cols.row("Maximum Consumers", limit_i64(&cfg["max_consumers"], num));
        if let Some(m) = cfg["metadata"].as_object() {
            let user: Vec<_> = m.iter().filter(|(k, _)| !k.starts_with("_nats")).collect();
            if !user.is_empty() {
                cols.section("Metadata");
                for (k, v) in user {
                    cols.row(k, v.as_str().unwrap_or_default());
                }
            }
        }
    }
    if let Some(cl) = info["cluster"].as_object() {
        if let Some(n) = cl
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            cols.section("Cluster Information");
            cols.row("Name", n);
            cols.row(
                "Leader",
                cl.get("leader").and_then(Value::as_str).unwrap_or(""),
            );
        }
    }
    let st = &info["state"];
    cols.section("State");
    cols.row("Messages", num(st["messages"].as_u64().unwrap_or(0)));
    cols.row("Bytes", ibytes(st["bytes"].as_u64().unwrap_or(0)));
    let seq_row = |seq: &Value, t: &Value| match ts(t) {
        Some(t) => format!("{} @ {}", num(seq.as_u64().unwrap_or(0)), t),
        None => num(seq.as_u64().unwrap_or(0)),
    };
    cols.row("First Sequence", seq_row(&st["first_seq"], &st["first_ts"]));
    cols.row("Last Sequence", seq_row(&st["last_seq"], &st["last_ts"]));
    if let Some(d) = st["num_deleted"].as_u64().filter(|n| *n > 0) {
        cols.row("Deleted Messages", num(d));
    }
    cols.row(
        "Active Consumers",
        num(st["consumer_count"].as_u64().unwrap_or(0)),
    );
    if let Some(n) = st["num_subjects"].as_u64().filter(|n| *n > 0) {
        cols.row("Number of Subjects", num(n));
    }
    print!("{}", cols.render());
}

/// All stream infos (paged `STREAM.LIST`).
pub async fn list_streams(js: &Js, subject: Option<&str>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    loop {
        let mut req = json!({ "offset": offset });
        if let Some(s) = subject {
            req["subject"] = json!(s);
        }
        let resp = js.api("STREAM.LIST", Some(&req)).await?;
        let page: Vec<Value> = resp["streams"].as_array().cloned().unwrap_or_default();
        let total = resp["total"].as_u64().unwrap_or(0);
        offset += page.len() as u64;
        let empty = page.is_empty();
        out.extend(page);
        if empty || offset >= total {
            break;
        }
    }
    Ok(out)
}

fn is_system(name: &str) -> bool {
    name.starts_with("KV_") || name.starts_with("OBJ_") || name.starts_with("MQTT_")
}

async fn ls(js: &Js, a: LsArgs) -> Result<()> {
    let mut streams = list_streams(js, a.subject.as_deref()).await?;
    if !a.all {
        streams.retain(|s| !is_system(s["config"]["name"].as_str().unwrap_or("")));
    }
    streams.sort_by(|x, y| {
        x["config"]["name"]
            .as_str()
            .cmp(&y["config"]["name"].as_str())
    });
    let names: Vec<String> = streams
        .iter()
        .map(|s| s["config"]["name"].as_str().unwrap_or("").to_string())
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
        if a.all {
            println!("No Streams defined");
        } else {
            println!("No Streams defined, pass -a to include system streams");
        }
        return Ok(());
    }
    let mut t = Table::new(
        "Streams",
        &[
            "Name",
            "Description",
            "Created",
            "Messages",
            "Size",
            "Last Message",
        ],
    );
    let now = chrono::Utc::now();
    for s in &streams {
        let last = s["state"]["last_ts"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .filter(|t| t.timestamp() > 0)
            .map(|t| {
                let d = (now - t.with_timezone(&chrono::Utc))
                    .num_nanoseconds()
                    .unwrap_or(0);
                nanos(d)
            })
            .unwrap_or_else(|| "never".into());
        t.row(vec![
            s["config"]["name"].as_str().unwrap_or("").into(),
            s["config"]["description"].as_str().unwrap_or("").into(),
            ts(&s["created"]).unwrap_or_default(),
            num(s["state"]["messages"].as_u64().unwrap_or(0)),
            ibytes(s["state"]["bytes"].as_u64().unwrap_or(0)),
            last,
        ]);
    }
    println!("{}", t.render());
    Ok(())
}

async fn rm(js: &Js, a: RmArgs) -> Result<()> {
    if !a.force && !confirm(&format!("Really delete Stream {}", a.stream))? {
        return Ok(());
    }
    js.api(&format!("STREAM.DELETE.{}", a.stream), None)
        .await
        .context("could not remove Stream")?;
    Ok(())
}

async fn purge(js: &Js, a: PurgeArgs) -> Result<()> {
    if a.seq.is_some() && a.keep.is_some() {
        bail!("sequence and keep cannot be combined when purging");
    }
    if !a.force && !confirm(&format!("Really purge Stream {}", a.stream))? {
        return Ok(());
    }
    let mut req = json!({});
    if let Some(s) = &a.subject {
        req["filter"] = json!(s);
    }
    if let Some(s) = a.seq {
        req["seq"] = json!(s);
    }
    if let Some(k) = a.keep {
        req["keep"] = json!(k);
    }
    let resp = js
        .api(&format!("STREAM.PURGE.{}", a.stream), Some(&req))
        .await
        .context("could not purge Stream")?;
    let purged = resp["purged"].as_u64().unwrap_or(0);
    let info = stream_info(js, &a.stream).await?;
    if a.json {
        print_json(&info);
        return Ok(());
    }
    println!("Purged {} messages from {}\n", purged, a.stream);
    show_info(&a.stream, &info, false);
    Ok(())
}

async fn get(js: &Js, a: GetArgs) -> Result<()> {
    let req = match (&a.last_for, a.id) {
        (Some(s), _) => json!({ "last_by_subj": s }),
        (None, Some(id)) if id > 0 => json!({ "seq": id }),
        (None, Some(_)) => bail!("positive message ID required"),
        (None, None) => bail!("no ID or subject specified"),
    };
    let resp = js
        .api(&format!("STREAM.MSG.GET.{}", a.stream), Some(&req))
        .await
        .context("could not retrieve message")?;
    let msg = &resp["message"];
    let data = b64(msg["data"].as_str().unwrap_or(""))?;
    let hdrs = b64(msg["hdrs"].as_str().unwrap_or(""))?;
    if a.json {
        let mut out = msg.clone();
        out["data"] = json!(String::from_utf8_lossy(&data));
        print_json(&out);
        return Ok(());
    }
    let seq = msg["seq"].as_u64().unwrap_or(0);
    let time = ts(&msg["time"]).unwrap_or_default();
    println!(
        "Item: {}#{} received {} on Subject {}\n",
        a.stream,
        seq,
        time,
        msg["subject"].as_str().unwrap_or("")
    );
    let hdr_text = String::from_utf8_lossy(&hdrs);
    let lines: Vec<&str> = hdr_text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if !lines.is_empty() {
        println!("Headers:");
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                println!("  {}: {}", k.trim(), v.trim());
            }
        }
        println!();
    }
    crate::pubsub::print_body(&data);
    Ok(())
}

async fn rmm(js: &Js, a: RmmArgs) -> Result<()> {
    if a.id == 0 {
        bail!("positive message ID required");
    }
    if !a.force
        && !confirm(&format!(
            "Really remove message {} from Stream {}",
            a.id, a.stream
        ))?
    {
        return Ok(());
    }
    js.api(
        &format!("STREAM.MSG.DELETE.{}", a.stream),
        Some(&json!({ "seq": a.id })),
    )
    .await
    .context("could not remove message")?;
    Ok(())
}

async fn report(js: &Js, a: ReportArgs) -> Result<()> {
    let mut streams = list_streams(js, a.subject.as_deref()).await?;
    let key = |s: &Value, k: &str| s["state"][k].as_u64().unwrap_or(0);
    if a.consumers {
        streams.sort_by_key(|s| key(s, "consumer_count"));
    } else if a.messages {
        streams.sort_by_key(|s| key(s, "messages"));
    } else if a.name {
        streams.sort_by(|x, y| {
            x["config"]["name"]
                .as_str()
                .cmp(&y["config"]["name"].as_str())
        });
    } else {
        streams.sort_by_key(|s| key(s, "bytes"));
    }
    if a.json {
        let rows: Vec<Value> = streams
            .iter()
            .map(|s| {
                json!({
                    "name": s["config"]["name"],
                    "storage": s["config"]["storage"],
                    "consumers": key(s, "consumer_count"),
                    "msgs": key(s, "messages"),
                    "bytes": key(s, "bytes"),
                    "deleted": key(s, "num_deleted"),
                    "replicas": s["config"]["num_replicas"],
                })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(());
    }
    if streams.is_empty() {
        println!("No Streams defined");
        return Ok(());
    }
    let mut t = Table::new(
        "Stream Report",
        &[
            "Stream",
            "Storage",
            "Placement",
            "Consumers",
            "Messages",
            "Bytes",
            "Lost",
            "Deleted",
            "Replicas",
        ],
    );
    for s in &streams {
        let cfg = &s["config"];
        let placement = match cfg["placement"].as_object() {
            Some(p) => {
                let mut out = String::new();
                if let Some(c) = p
                    .get("cluster")
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
                {
                    out.push_str(&format!("cluster: {c} "));
                }
                if let Some(tags) = p
                    .get("tags")
                    .and_then(Value::as_array)
                    .filter(|t| !t.is_empty())
                {
                    let tags: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
                    out.push_str(&format!("tags: {}", tags.join(", ")));
                }
                out.trim().to_string()
            }
            None => String::new(),
        };
        let (f_num, f_bytes): (Fmt, Fmt) = if a.raw {
            (|n| n.to_string(), |n| n.to_string())
        } else {
            (num, ibytes)
        };
        let replicas = match s["cluster"]["replicas"].as_array() {
            Some(r) if !r.is_empty() => {
                let mut names = vec![format!(
                    "{}*",
                    s["cluster"]["leader"].as_str().unwrap_or("")
                )];
                names.extend(
                    r.iter()
                        .filter_map(|x| x["name"].as_str())
                        .map(str::to_string),
                );
                names.join(", ")
            }
            _ => cfg["num_replicas"].as_i64().unwrap_or(1).to_string(),
        };
        t.row(vec![
            cfg["name"].as_str().unwrap_or("").into(),
            cap(cfg["storage"].as_str().unwrap_or("")),
            placement,
            f_num(key(s, "consumer_count")),
            f_num(key(s, "messages")),
            f_bytes(key(s, "bytes")),
            "0".into(),
            f_num(key(s, "num_deleted")),
            replicas,
        ]);
    }
    println!("{}", t.render());
    Ok(())
}
