//! `consumer` (`con`, `c`): JetStream consumer management and `next`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::conn::{ConnOpts, Js};
use crate::output::{
    human_duration, nanos, num, parse_duration, parse_signed_duration, print_json, Columns, Table,
};
use crate::prompt::Prompter;
use crate::stream::{confirm, strip_type};

// Help shown for `?` at the `consumer add` questions (the nats CLI's wording).
const HELP_NAME: &str = "This will be used for the name to be used when referencing this Consumer later. Settable using 'name' CLI argument";
const HELP_TARGET: &str = "Consumers can be in 'push' or 'pull' mode, in 'push' mode messages are dispatched in real time to a target NATS subject, this is that subject. Leaving this blank creates a 'pull' mode Consumer. Settable using --target and --pull";
const HELP_GROUP: &str =
    "When set push consumers will only deliver messages to subscriptions matching this queue group";
const HELP_START: &str = "This controls how the Consumer starts out, does it make all messages available, only the latest, latest per subject, ones after a certain time or time sequence. Settable using --deliver";
const HELP_ACK: &str = "Messages that are not acknowledged will be redelivered at a later time. 'none' means no acknowledgement is needed only 1 delivery ever, 'all' means acknowledging message 10 will also acknowledge 0-9 and 'explicit' means each has to be acknowledged specifically. Settable using --ack";
const HELP_REPLAY: &str = "Messages can be replayed at the rate they arrived in or as fast as possible. Settable using --replay";
const HELP_FILTER: &str = "Consumers can filter messages from the stream, this is a space or comma separated list that can include wildcards. Settable using --filter";
const HELP_MAX_DELIVER: &str = "When this is -1 unlimited attempts to deliver an un acknowledged message is made, when this is >0 it will be maximum amount of times a message is delivered after which it is ignored. Settable using --max-deliver.";
const HELP_MAX_PENDING: &str = "The maximum number of messages without acknowledgement that can be outstanding, once this limit is reached message delivery will be suspended. Settable using --max-pending.";
const HELP_HEARTBEAT: &str = "When a Push consumer is idle for the given period an empty message with a Status header of 100 will be sent to the delivery subject, settable using --heartbeat";
const HELP_BACKOFF: &str = "Adds a Backoff policy for use with delivery retries. Linear grows at equal intervals between min and max.";
const HELP_BACKOFF_RANGE: &str = "Backoff policies range from min to max";

#[derive(Subcommand, Debug)]
pub enum ConsumerCmd {
    /// Creates a new consumer
    #[command(visible_aliases = ["create", "new"])]
    Add(Box<AddArgs>),
    /// Consumer information
    #[command(visible_aliases = ["nfo"])]
    Info(InfoArgs),
    /// List known consumers
    #[command(visible_aliases = ["list"])]
    Ls(LsArgs),
    /// Removes a consumer
    #[command(visible_aliases = ["delete", "del"])]
    Rm(RmArgs),
    /// Retrieves messages from Pull consumers without interactive prompts
    Next(NextArgs),
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum AckPolicy {
    None,
    All,
    Explicit,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Replay {
    Instant,
    Original,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Stream name (asked for on a terminal when missing)
    pub stream: Option<String>,
    /// Consumer name
    pub consumer: Option<String>,
    /// JSON file to read configuration from (a config or `con info -j` output)
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Save configuration instead of creating
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Accept default values for all prompts
    #[arg(long)]
    pub defaults: bool,
    /// Acknowledgment policy (none, all, explicit)
    #[arg(long, value_enum)]
    pub ack: Option<AckPolicy>,
    /// Start policy (all, new, last, subject, 1h, msg sequence)
    #[arg(long, value_name = "POLICY")]
    pub deliver: Option<String>,
    /// Delivers push messages only to subscriptions matching this group
    #[arg(long, value_name = "GROUP")]
    pub deliver_group: Option<String>,
    /// Sets a contextual description for the consumer
    #[arg(long)]
    pub description: Option<String>,
    /// Create an ephemeral consumer
    #[arg(long)]
    pub ephemeral: bool,
    /// Filter Stream by subjects
    #[arg(long, value_name = "SUBJECTS")]
    pub filter: Vec<String>,
    /// Enable Push consumer flow control
    #[arg(long)]
    pub flow_control: bool,
    /// Enable idle Push consumer heartbeats
    #[arg(long, value_parser = parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Deliver only headers and no bodies
    #[arg(long)]
    pub headers_only: bool,
    /// Maximum amount of times a message will be delivered
    #[arg(long, value_name = "TRIES", allow_hyphen_values = true)]
    pub max_deliver: Option<i64>,
    /// Maximum pending Acks before consumers are paused
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub max_pending: i64,
    /// Maximum number of outstanding pulls allowed
    #[arg(long, value_name = "PULLS")]
    pub max_waiting: Option<i64>,
    /// Maximum size batch size for a pull request to accept
    #[arg(long, value_name = "BATCH_SIZE")]
    pub max_pull_batch: Option<i64>,
    /// Maximum expire duration for a pull request to accept
    #[arg(long, value_parser = parse_duration, value_name = "EXPIRES")]
    pub max_pull_expire: Option<Duration>,
    /// Maximum max bytes for a pull request to accept
    #[arg(long, value_name = "BYTES")]
    pub max_pull_bytes: Option<i64>,
    /// Deliver messages in 'pull' mode
    #[arg(long)]
    pub pull: bool,
    /// Replay Policy (instant, original)
    #[arg(long, value_enum, value_name = "POLICY")]
    pub replay: Option<Replay>,
    /// Percentage of requests to sample for monitoring purposes
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub sample: i64,
    /// Push based delivery target subject
    #[arg(long, value_name = "SUBJECT")]
    pub target: Option<String>,
    /// Acknowledgment waiting time
    #[arg(long, default_value = "-1s", allow_hyphen_values = true)]
    pub wait: String,
    /// How long to allow an ephemeral consumer to be idle before removing it
    #[arg(long, value_parser = parse_duration, value_name = "THRESHOLD")]
    pub inactive_threshold: Option<Duration>,
    /// Force the consumer state to be stored in memory
    #[arg(long)]
    pub memory: bool,
    /// Sets a custom replica count rather than inherit from the stream
    #[arg(long)]
    pub replicas: Option<i64>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Stream name
    pub stream: String,
    /// Consumer name
    pub consumer: String,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Stream name
    pub stream: String,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Show just the consumer names
    #[arg(short = 'n', long)]
    pub names: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stream name
    pub stream: String,
    /// Consumer name
    pub consumer: String,
    /// Force removal without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct NextArgs {
    /// Stream name
    pub stream: String,
    /// Consumer name
    pub consumer: String,
    /// Acknowledge received message (default)
    #[arg(long, overrides_with = "no_ack")]
    pub ack: bool,
    /// Do not acknowledge received messages
    #[arg(long, overrides_with = "ack")]
    pub no_ack: bool,
    /// Perform a Negative Acknowledgement on the message
    #[arg(long)]
    pub nak: bool,
    /// Terms the message
    #[arg(long)]
    pub term: bool,
    /// Show only the message
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// Wait up to this period to acknowledge messages
    #[arg(long, value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// Number of messages to try to fetch from the pull consumer
    #[arg(long, default_value_t = 1)]
    pub count: usize,
}

/// Config fields for a start policy answer: `all`, `new`, `last`,
/// `subject`, a stream sequence, or a duration to look back.
fn start_policy(policy: &str) -> Result<Vec<(&'static str, Value)>, String> {
    Ok(match policy.trim() {
        "all" | "" => vec![("deliver_policy", json!("all"))],
        "new" | "next" => vec![("deliver_policy", json!("new"))],
        "last" => vec![("deliver_policy", json!("last"))],
        "subject" | "last_per_subject" => vec![("deliver_policy", json!("last_per_subject"))],
        other => {
            if let Ok(seq) = other.parse::<u64>() {
                vec![
                    ("deliver_policy", json!("by_start_sequence")),
                    ("opt_start_seq", json!(seq)),
                ]
            } else {
                let d = parse_duration(other)
                    .map_err(|e| format!("invalid start policy {other:?}: {e}"))?;
                let ago = chrono::Duration::from_std(d).map_err(|e| e.to_string())?;
                let start = chrono::Utc::now() - ago;
                vec![
                    ("deliver_policy", json!("by_start_time")),
                    (
                        "opt_start_time",
                        json!(start.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
                    ),
                ]
            }
        }
    })
}

/// The nats CLI's optional retry backoff questions (asked on a terminal
/// only): `linear` spreads `steps` delays evenly from min to max, in ns.
fn ask_backoff(p: &mut Prompter) -> Result<Vec<u64>> {
    if !p.interactive() || !p.confirm("Add a Retry Backoff Policy", false)? {
        return Ok(Vec::new());
    }
    let mode = p.select("Backoff policy", &["linear", "none"], "none", HELP_BACKOFF)?;
    if mode == "none" {
        return Ok(Vec::new());
    }
    let min = p.parsed(
        "Minimum retry time",
        "1m",
        HELP_BACKOFF_RANGE,
        parse_duration,
    )?;
    let max = p.parsed(
        "Maximum retry time",
        "10m",
        HELP_BACKOFF_RANGE,
        parse_duration,
    )?;
    let steps = p.parsed(
        "Number of steps to generate in the policy",
        "20",
        "Number of steps to create between min and max",
        |s| match s.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err("backoff steps must be > 0".to_string()),
        },
    )?;
    if max < min {
        bail!("backoff minimum must be less than maximum");
    }
    Ok(linear_backoff(min, max, steps))
}

fn linear_backoff(min: Duration, max: Duration, steps: u64) -> Vec<u64> {
    let (lo, hi) = (min.as_nanos() as u64, max.as_nanos() as u64);
    if steps == 1 {
        return vec![lo];
    }
    let step = (hi - lo) / (steps - 1);
    (0..steps).map(|i| lo + step * i).collect()
}

/// The consumer config from `--config`, flags, and answers to the questions
/// flags left open.
fn build_config(a: &AddArgs, p: &mut Prompter) -> Result<(String, Value)> {
    if let Some(path) = &a.config {
        let mut cfg = crate::stream::load_config_file(path)?;
        let o = cfg
            .as_object_mut()
            .ok_or_else(|| anyhow!("invalid input: configuration is not a JSON object"))?;
        if let Some(n) = &a.consumer {
            o.insert("durable_name".into(), json!(n));
            o.insert("name".into(), json!(n));
        }
        let name = o
            .get("name")
            .or_else(|| o.get("durable_name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok((name, cfg));
    }
    let name = match (&a.consumer, a.ephemeral) {
        (Some(n), _) => n.clone(),
        (None, true) => String::new(),
        (None, false) => p.required(
            "Consumer name",
            HELP_NAME,
            "a consumer name is required (or pass --ephemeral)",
        )?,
    };
    if a.pull && a.target.is_some() {
        bail!("--pull and --target are mutually exclusive");
    }
    let target = match (&a.target, a.pull) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => None,
        (None, false) => Some(p.input(
            "Delivery target (empty for Pull Consumers)",
            "",
            HELP_TARGET,
        )?),
    }
    .filter(|t| !t.is_empty());
    let deliver_group = match (&target, &a.deliver_group) {
        (Some(_), Some(g)) => Some(g.clone()),
        (Some(_), None) => Some(p.input("Delivery Queue Group", "", HELP_GROUP)?),
        (None, _) => None,
    }
    .filter(|g| !g.is_empty());
    let start = match &a.deliver {
        Some(d) => start_policy(d).map_err(|e| anyhow!(e))?,
        None => p.parsed(
            "Start policy (all, new, last, subject, 1h, msg sequence)",
            "all",
            HELP_START,
            start_policy,
        )?,
    };
    let ack = match a.ack {
        Some(AckPolicy::None) => "none".to_string(),
        Some(AckPolicy::All) => "all".to_string(),
        Some(AckPolicy::Explicit) => "explicit".to_string(),
        None => {
            let default = if target.is_some() { "none" } else { "explicit" };
            p.select(
                "Acknowledgment policy",
                &["explicit", "all", "none"],
                default,
                HELP_ACK,
            )?
        }
    };
    let acked = ack != "none";
    let replay = match a.replay {
        Some(Replay::Instant) => "instant".to_string(),
        Some(Replay::Original) => "original".to_string(),
        None => p.select(
            "Replay policy",
            &["instant", "original"],
            "instant",
            HELP_REPLAY,
        )?,
    };
    let filters = if a.filter.is_empty() {
        let f = p.input("Filter Stream by subjects (blank for all)", "", HELP_FILTER)?;
        f.split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        a.filter.clone()
    };
    let max_deliver = match a.max_deliver {
        Some(n) => n,
        None if acked => p.parsed(
            "Maximum Allowed Deliveries",
            "-1",
            HELP_MAX_DELIVER,
            crate::stream::parse_int,
        )?,
        None => -1,
    };
    let max_pending = match a.max_pending {
        -1 if acked => p.parsed(
            "Maximum Acknowledgments Pending",
            "0",
            HELP_MAX_PENDING,
            crate::stream::parse_int,
        )?,
        n => n,
    };
    let (heartbeat, flow_control) = match &target {
        Some(_) => {
            let hb = match a.heartbeat {
                Some(h) => h,
                None => p.parsed("Idle Heartbeat", "0s", HELP_HEARTBEAT, parse_duration)?,
            };
            let fc =
                a.flow_control || p.confirm("Enable Flow Control, ie --flow-control", false)?;
            (hb, fc)
        }
        None => (Duration::ZERO, false),
    };
    let headers_only = a.headers_only || p.confirm("Deliver headers only without bodies", false)?;
    let backoff = if acked { ask_backoff(p)? } else { Vec::new() };

    let mut cfg = json!({
        "ack_policy": ack,
        "replay_policy": replay,
        "max_deliver": if !acked {
            -1
        } else if max_deliver == -1 && !backoff.is_empty() {
            // The server wants more deliveries than backoff steps.
            backoff.len() as i64 + 1
        } else {
            max_deliver
        },
    });
    let o = cfg.as_object_mut().expect("object");
    if !name.is_empty() {
        o.insert("name".into(), json!(name));
        if !a.ephemeral {
            o.insert("durable_name".into(), json!(name));
        }
    }
    for (k, v) in start {
        o.insert(k.into(), v);
    }
    match filters.len() {
        0 => {}
        1 => {
            if !filters[0].is_empty() {
                o.insert("filter_subject".into(), json!(filters[0]));
            }
        }
        _ => {
            o.insert("filter_subjects".into(), json!(filters));
        }
    }
    let (neg, wait) = parse_signed_duration(&a.wait).map_err(|e| anyhow!(e))?;
    if !neg && !wait.is_zero() {
        o.insert("ack_wait".into(), json!(wait.as_nanos() as u64));
    }
    // A prompted `0` means "the server's default", as leaving it out does.
    if max_pending > 0 || (max_pending == 0 && a.max_pending == 0) {
        o.insert("max_ack_pending".into(), json!(max_pending));
    }
    if a.sample >= 0 {
        if a.sample > 100 {
            bail!("sample percent is not between 0 and 100");
        }
        if a.sample > 0 {
            o.insert("sample_freq".into(), json!(format!("{}%", a.sample)));
        }
    }
    if let Some(d) = &a.description {
        o.insert("description".into(), json!(d));
    }
    if headers_only {
        o.insert("headers_only".into(), json!(true));
    }
    if !backoff.is_empty() {
        o.insert("backoff".into(), json!(backoff));
    }
    if let Some(r) = a.replicas {
        o.insert("num_replicas".into(), json!(r));
    }
    if a.memory {
        o.insert("mem_storage".into(), json!(true));
    }
    if let Some(t) = a.inactive_threshold {
        o.insert("inactive_threshold".into(), json!(t.as_nanos() as u64));
    }
    match &target {
        Some(t) => {
            o.insert("deliver_subject".into(), json!(t));
            if let Some(g) = &deliver_group {
                o.insert("deliver_group".into(), json!(g));
            }
            if flow_control {
                o.insert("flow_control".into(), json!(true));
            }
            if !heartbeat.is_zero() {
                o.insert("idle_heartbeat".into(), json!(heartbeat.as_nanos() as u64));
            }
        }
        None => {
            if let Some(w) = a.max_waiting {
                o.insert("max_waiting".into(), json!(w));
            }
            if let Some(b) = a.max_pull_batch {
                o.insert("max_batch".into(), json!(b));
            }
            if let Some(e) = a.max_pull_expire {
                o.insert("max_expires".into(), json!(e.as_nanos() as u64));
            }
            if let Some(b) = a.max_pull_bytes {
                o.insert("max_bytes".into(), json!(b));
            }
        }
    }
    Ok((name, cfg))
}

pub async fn run(conn: &ConnOpts, cmd: ConsumerCmd) -> Result<()> {
    if let ConsumerCmd::Add(a) = &cmd {
        if let Some(out) = &a.output {
            let (_, cfg) = build_config(a, &mut Prompter::new(a.defaults))?;
            std::fs::write(out, serde_json::to_vec_pretty(&cfg)?)
                .with_context(|| format!("could not write {}", out.display()))?;
            return Ok(());
        }
    }
    let js = conn.jetstream().await?;
    match cmd {
        ConsumerCmd::Add(a) => add(&js, *a).await,
        ConsumerCmd::Info(a) => {
            let info = consumer_info(&js, &a.stream, &a.consumer).await?;
            if a.json {
                print_json(&info);
            } else {
                show_info(&info);
            }
            Ok(())
        }
        ConsumerCmd::Ls(a) => ls(&js, a).await,
        ConsumerCmd::Rm(a) => {
            if !a.force
                && !confirm(&format!(
                    "Really delete Consumer {} > {}",
                    a.stream, a.consumer
                ))?
            {
                return Ok(());
            }
            js.api(
                &format!("CONSUMER.DELETE.{}.{}", a.stream, a.consumer),
                None,
            )
            .await
            .context("could not remove Consumer")?;
            Ok(())
        }
        ConsumerCmd::Next(a) => next(&js, a).await,
    }
}

async fn add(js: &Js, a: AddArgs) -> Result<()> {
    let mut p = Prompter::new(a.defaults);
    let stream = match &a.stream {
        Some(s) => s.clone(),
        None => select_stream(js, &mut p).await?,
    };
    let (name, cfg) = build_config(&a, &mut p)?;
    let req = json!({ "stream_name": stream, "config": cfg });
    let subject = if name.is_empty() {
        format!("CONSUMER.CREATE.{stream}")
    } else {
        match cfg["filter_subject"].as_str() {
            Some(f) if !f.is_empty() => format!("CONSUMER.CREATE.{stream}.{name}.{f}"),
            _ => format!("CONSUMER.CREATE.{stream}.{name}"),
        }
    };
    let info = strip_type(
        js.api(&subject, Some(&req))
            .await
            .context("could not create Consumer")?,
    );
    if a.json {
        print_json(&info);
    } else {
        show_info(&info);
    }
    Ok(())
}

/// "Select a Stream" when `con add` was given none (terminal only).
async fn select_stream(js: &Js, p: &mut Prompter) -> Result<String> {
    if !p.interactive() {
        bail!("a stream name is required");
    }
    let mut names: Vec<String> = crate::stream::list_streams(js, None)
        .await?
        .iter()
        .filter_map(|s| s["config"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    let Some(first) = names.first().cloned() else {
        bail!("no Streams are defined");
    };
    let options: Vec<&str> = names.iter().map(String::as_str).collect();
    p.select("Select a Stream", &options, &first, "")
}

pub async fn consumer_info(js: &Js, stream: &str, consumer: &str) -> Result<Value> {
    Ok(strip_type(
        js.api(&format!("CONSUMER.INFO.{stream}.{consumer}"), None)
            .await?,
    ))
}

fn ts(v: &Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

fn title(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn show_info(info: &Value) {
    let cfg = &info["config"];
    let mut cols = Columns::new(format!(
        "Information for Consumer {} > {} created {}",
        info["stream_name"].as_str().unwrap_or(""),
        info["name"].as_str().unwrap_or(""),
        ts(&info["created"])
    ));
    cols.section("Configuration");
    cols.row("Name", info["name"].as_str().unwrap_or(""));
    if let Some(d) = cfg["description"].as_str().filter(|d| !d.is_empty()) {
        cols.row("Description", d);
    }
    match cfg["deliver_subject"].as_str().filter(|s| !s.is_empty()) {
        Some(t) => cols.row("Delivery Subject", t),
        None => cols.row("Pull Mode", "true"),
    }
    if let Some(f) = cfg["filter_subject"].as_str().filter(|f| !f.is_empty()) {
        cols.row("Filter Subject", f);
    }
    if let Some(fs) = cfg["filter_subjects"].as_array().filter(|a| !a.is_empty()) {
        let fs: Vec<&str> = fs.iter().filter_map(Value::as_str).collect();
        cols.row("Filter Subjects", fs.join(", "));
    }
    let dp = cfg["deliver_policy"].as_str().unwrap_or("all");
    match dp {
        "by_start_sequence" => cols.row(
            "Deliver Policy",
            format!(
                "From Sequence {}",
                cfg["opt_start_seq"].as_u64().unwrap_or(0)
            ),
        ),
        "by_start_time" => cols.row(
            "Deliver Policy",
            format!("Since {}", ts(&cfg["opt_start_time"])),
        ),
        "last_per_subject" => cols.row("Deliver Policy", "Last Per Subject"),
        other => cols.row("Deliver Policy", title(other)),
    }
    if let Some(g) = cfg["deliver_group"].as_str().filter(|g| !g.is_empty()) {
        cols.row("Deliver Queue Group", g);
    }
    let ack = cfg["ack_policy"].as_str().unwrap_or("none");
    cols.row("Ack Policy", title(ack));
    if ack != "none" {
        cols.row("Ack Wait", nanos(cfg["ack_wait"].as_i64().unwrap_or(0)));
    }
    cols.row(
        "Replay Policy",
        title(cfg["replay_policy"].as_str().unwrap_or("instant")),
    );
    match cfg["max_deliver"].as_i64() {
        Some(n) if n > 0 => cols.row("Maximum Deliveries", num(n)),
        _ => {}
    }
    if let Some(s) = cfg["sample_freq"].as_str().filter(|s| !s.is_empty()) {
        cols.row("Sampling Rate", s);
    }
    if let Some(n) = cfg["max_ack_pending"].as_i64().filter(|n| *n > 0) {
        cols.row("Max Ack Pending", num(n));
    }
    if let Some(n) = cfg["max_waiting"].as_i64().filter(|n| *n > 0) {
        cols.row("Max Waiting Pulls", num(n));
    }
    if cfg["headers_only"].as_bool() == Some(true) {
        cols.row("Headers Only", "true");
    }
    if cfg["flow_control"].as_bool() == Some(true) {
        cols.row("Flow Control", "true");
    }
    if let Some(h) = cfg["idle_heartbeat"].as_i64().filter(|n| *n > 0) {
        cols.row("Idle Heartbeat", nanos(h));
    }
    if let Some(h) = cfg["inactive_threshold"].as_i64().filter(|n| *n > 0) {
        cols.row("Inactive Threshold", nanos(h));
    }
    cols.section("State");
    let d = &info["delivered"];
    let af = &info["ack_floor"];
    cols.row(
        "Last Delivered Message",
        format!(
            "Consumer sequence: {} Stream sequence: {}",
            num(d["consumer_seq"].as_u64().unwrap_or(0)),
            num(d["stream_seq"].as_u64().unwrap_or(0))
        ),
    );
    cols.row(
        "Acknowledgment Floor",
        format!(
            "Consumer sequence: {} Stream sequence: {}",
            num(af["consumer_seq"].as_u64().unwrap_or(0)),
            num(af["stream_seq"].as_u64().unwrap_or(0))
        ),
    );
    let pending = info["num_ack_pending"].as_u64().unwrap_or(0);
    match cfg["max_ack_pending"].as_i64().filter(|n| *n > 0) {
        Some(m) => cols.row(
            "Outstanding Acks",
            format!("{} out of maximum {}", num(pending), num(m)),
        ),
        None => cols.row("Outstanding Acks", num(pending)),
    }
    cols.row(
        "Redelivered Messages",
        num(info["num_redelivered"].as_u64().unwrap_or(0)),
    );
    cols.row(
        "Unprocessed Messages",
        num(info["num_pending"].as_u64().unwrap_or(0)),
    );
    if cfg["deliver_subject"].as_str().unwrap_or("").is_empty() {
        let waiting = info["num_waiting"].as_u64().unwrap_or(0);
        match cfg["max_waiting"].as_i64().filter(|n| *n > 0) {
            Some(m) => cols.row(
                "Waiting Pulls",
                format!("{} of maximum {}", num(waiting), num(m)),
            ),
            None => cols.row("Waiting Pulls", num(waiting)),
        }
    } else {
        cols.row(
            "Active Interest",
            if info["push_bound"].as_bool() == Some(true) {
                "Active"
            } else {
                "No interest"
            },
        );
    }
    print!("{}", cols.render());
}

async fn ls(js: &Js, a: LsArgs) -> Result<()> {
    let mut all = Vec::new();
    let mut offset = 0u64;
    loop {
        let resp = js
            .api(
                &format!("CONSUMER.LIST.{}", a.stream),
                Some(&json!({ "offset": offset })),
            )
            .await?;
        let page = resp["consumers"].as_array().cloned().unwrap_or_default();
        let total = resp["total"].as_u64().unwrap_or(0);
        offset += page.len() as u64;
        let empty = page.is_empty();
        all.extend(page);
        if empty || offset >= total {
            break;
        }
    }
    all.sort_by(|x, y| x["name"].as_str().cmp(&y["name"].as_str()));
    let names: Vec<String> = all
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
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
    if all.is_empty() {
        println!("No Consumers defined");
        return Ok(());
    }
    let mut t = Table::new(
        format!("Consumers for Stream {}", a.stream),
        &[
            "Name",
            "Description",
            "Created",
            "Ack Pending",
            "Unprocessed",
            "Last Delivery",
        ],
    );
    let now = chrono::Utc::now();
    for c in &all {
        let last = c["delivered"]["last_active"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .filter(|t| t.timestamp() > 0)
            .map(|t| {
                let d = (now - t.with_timezone(&chrono::Utc))
                    .to_std()
                    .unwrap_or_default();
                human_duration(d)
            })
            .unwrap_or_else(|| "never".into());
        t.row(vec![
            c["name"].as_str().unwrap_or("").into(),
            c["config"]["description"].as_str().unwrap_or("").into(),
            ts(&c["created"]),
            num(c["num_ack_pending"].as_u64().unwrap_or(0)),
            num(c["num_pending"].as_u64().unwrap_or(0)),
            last,
        ]);
    }
    println!("{}", t.render());
    Ok(())
}

/// JetStream metadata from a `$JS.ACK...` reply subject:
/// (delivered, stream seq, consumer seq, pending).
fn ack_meta(reply: &str) -> Option<(u64, u64, u64, u64)> {
    let t: Vec<&str> = reply.split('.').collect();
    if t.len() < 9 || t[0] != "$JS" || t[1] != "ACK" {
        return None;
    }
    // v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
    // v2: $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
    let base = if t.len() == 9 { 4 } else { 6 };
    let n = |i: usize| t.get(base + i).and_then(|s| s.parse::<u64>().ok());
    Some((n(0)?, n(1)?, n(2)?, n(4)?))
}

async fn next(js: &Js, a: NextArgs) -> Result<()> {
    let client = &js.client;
    let ack = !a.no_ack;
    for _ in 0..a.count.max(1) {
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(inbox.clone()).await?;
        let expires = js.timeout.mul_f64(0.9);
        let req = json!({ "batch": 1, "expires": expires.as_nanos() as u64 });
        client
            .publish_with_reply(
                format!("$JS.API.CONSUMER.MSG.NEXT.{}.{}", a.stream, a.consumer),
                inbox,
                Bytes::from(serde_json::to_vec(&req)?),
            )
            .await?;
        client.flush().await?;
        let msg = loop {
            let m = tokio::time::timeout(js.timeout, sub.next())
                .await
                .map_err(|_| anyhow!("nats: timeout"))?
                .ok_or_else(|| anyhow!("subscription closed"))?;
            match m.status {
                Some(s) if s == async_nats::StatusCode::NO_RESPONDERS => {
                    bail!(
                        "no responders: stream {} or consumer {} not found",
                        a.stream,
                        a.consumer
                    )
                }
                Some(s)
                    if s == async_nats::StatusCode::TIMEOUT
                        || s == async_nats::StatusCode::NOT_FOUND =>
                {
                    bail!("nats: timeout")
                }
                Some(s) if s == async_nats::StatusCode::IDLE_HEARTBEAT => continue,
                Some(s) if s.as_u16() >= 400 => {
                    let desc = m.description.clone().unwrap_or_default();
                    bail!("{} {}", s.as_u16(), desc)
                }
                _ => break m,
            }
        };
        let reply = msg
            .reply
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        if a.raw {
            println!("{}", String::from_utf8_lossy(&msg.payload));
        } else {
            let (delivered, sseq, cseq, pending) = ack_meta(&reply).unwrap_or_default();
            println!(
                "[{}] subj: {} / tries: {} / cons seq: {} / str seq: {} / pending: {}",
                chrono::Local::now().format("%H:%M:%S"),
                msg.subject,
                delivered,
                cseq,
                sseq,
                num(pending)
            );
            if let Some(h) = msg.headers.as_ref().filter(|h| !h.is_empty()) {
                println!("\nHeaders:\n");
                for (k, vals) in h.iter() {
                    for v in vals {
                        println!("  {}: {}", k, v.as_str());
                    }
                }
                println!("\nData:\n");
            }
            println!();
            println!("{}", String::from_utf8_lossy(&msg.payload));
        }
        if a.term {
            client
                .publish(reply.clone(), Bytes::from_static(b"+TERM"))
                .await?;
            crate::pubsub::sync(client, js.timeout).await?;
            if !a.raw {
                println!("\nTerminated message");
            }
        } else if ack || a.nak {
            if let Some(w) = a.wait {
                tokio::time::sleep(w).await;
            }
            let body: &'static [u8] = if a.nak { b"-NAK" } else { b"+ACK" };
            client
                .publish(reply.clone(), Bytes::from_static(body))
                .await?;
            crate::pubsub::sync(client, js.timeout).await?;
            if !a.raw {
                let neg = if a.nak { "Negatively " } else { "" };
                match a.wait {
                    Some(w) => println!(
                        "\n{neg}Acknowledged message after {} delay",
                        human_duration(w)
                    ),
                    None => println!("\n{neg}Acknowledged message"),
                }
                println!();
            }
        }
    }
    Ok(())
}
