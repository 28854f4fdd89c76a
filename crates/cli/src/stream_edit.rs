//! `stream edit` and `stream copy|cp` (the nats CLI's verbs): change a
//! stream's configuration, or create a stream from another's, with the limit
//! flags of `stream add` (only flags that are given change anything) or a
//! whole configuration from `--config`. `edit` shows what changes and asks
//! before it updates, unless `-f`.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::conn::Js;
use crate::output::{parse_bytes, print_json};
use crate::stream::{confirm, dur_ns, load_config_file, show_info, split_subjects, strip_type};

/// The flags both verbs share; each left out keeps the current value.
#[derive(Args, Debug, Default)]
pub struct Overrides {
    /// JSON file to read the configuration from (it replaces the current one)
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Subjects that are consumed by the stream
    #[arg(long, value_name = "SUBJECTS", num_args = 1..)]
    pub subjects: Vec<String>,
    /// Sets a contextual description for the stream
    #[arg(long)]
    pub description: Option<String>,
    /// When clustered, how many replicas of the data to create
    #[arg(long)]
    pub replicas: Option<i64>,
    /// Defines the discard policy (new, old)
    #[arg(long, value_parser = ["new", "old"])]
    pub discard: Option<String>,
    /// Sets the 'new' discard policy and applies it to every subject
    #[arg(long)]
    pub discard_per_subject: bool,
    /// Maximum age of messages to keep (e.g. 1y, 2h, -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub max_age: Option<String>,
    /// Maximum bytes to keep (e.g. 1GB, -1 for unlimited)
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    pub max_bytes: Option<String>,
    /// Maximum number of consumers to allow
    #[arg(long, allow_hyphen_values = true)]
    pub max_consumers: Option<i64>,
    /// Maximum size any 1 message may be
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    pub max_msg_size: Option<String>,
    /// Maximum amount of messages to keep
    #[arg(long, allow_hyphen_values = true)]
    pub max_msgs: Option<i64>,
    /// Maximum amount of messages to keep per subject
    #[arg(long, allow_hyphen_values = true)]
    pub max_msgs_per_subject: Option<i64>,
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
    /// Allows fast, direct, access to stream data via the direct get API
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
pub struct EditArgs {
    /// Stream to edit
    pub stream: String,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Force the edit without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Only show the changes, without editing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Source stream to copy
    pub source: String,
    /// New stream name
    pub destination: String,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// `old` with the given flags (or the `--config` file) applied.
fn apply(old: &Value, o: &Overrides) -> Result<Value> {
    let mut cfg = match &o.config {
        Some(path) => load_config_file(path)?,
        None => old.clone(),
    };
    let m: &mut Map<String, Value> = cfg
        .as_object_mut()
        .ok_or_else(|| anyhow!("the stream configuration is not a JSON object"))?;
    let mut set = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    let subjects = split_subjects(&o.subjects);
    if !subjects.is_empty() {
        set("subjects", json!(subjects));
    }
    if let Some(d) = &o.description {
        set("description", json!(d));
    }
    if let Some(r) = o.replicas {
        set("num_replicas", json!(r));
    }
    if let Some(d) = &o.discard {
        set("discard", json!(d));
    }
    if o.discard_per_subject {
        set("discard", json!("new"));
        set("discard_new_per_subject", json!(true));
    }
    let unlimited = |n: i64| if n <= 0 { -1 } else { n };
    if let Some(s) = &o.max_age {
        set("max_age", json!(dur_ns(s, "maximum age limit format")?));
    }
    if let Some(s) = &o.max_bytes {
        set(
            "max_bytes",
            json!(unlimited(parse_bytes(s).map_err(|e| anyhow!(e))?)),
        );
    }
    if let Some(n) = o.max_consumers {
        set("max_consumers", json!(unlimited(n)));
    }
    if let Some(s) = &o.max_msg_size {
        set(
            "max_msg_size",
            json!(unlimited(parse_bytes(s).map_err(|e| anyhow!(e))?)),
        );
    }
    if let Some(n) = o.max_msgs {
        set("max_msgs", json!(unlimited(n)));
    }
    if let Some(n) = o.max_msgs_per_subject {
        set("max_msgs_per_subject", json!(unlimited(n)));
    }
    if let Some(s) = &o.dupe_window {
        set(
            "duplicate_window",
            json!(dur_ns(s, "duplicate window format")?),
        );
    }
    for (on, off, key, invert) in [
        (
            o.allow_rollup,
            o.no_allow_rollup,
            "allow_rollup_hdrs",
            false,
        ),
        (o.deny_delete, o.no_deny_delete, "deny_delete", false),
        (o.deny_purge, o.no_deny_purge, "deny_purge", false),
        (o.allow_direct, o.no_allow_direct, "allow_direct", false),
    ] {
        if on || off {
            set(key, json!(on != invert));
        }
    }
    if o.allow_msg_ttl {
        set("allow_msg_ttl", json!(true));
    }
    if !o.metadata.is_empty() {
        let mut md = m
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for kv in &o.metadata {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid metadata {kv:?}, expected key=value"))?;
            md.insert(k.to_string(), json!(v));
        }
        m.insert("metadata".into(), Value::Object(md));
    }
    // The server's own metadata is not part of what a user sets.
    if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        md.retain(|k, _| !k.starts_with("_nats."));
    }
    Ok(cfg)
}

/// `- key: old` / `+ key: new` lines for the fields that differ.
fn differences(old: &Value, new: &Value) -> Vec<String> {
    let empty = Map::new();
    let (a, b) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        if x != y {
            if let Some(x) = x {
                out.push(format!("-  {k}: {x}"));
            }
            if let Some(y) = y {
                out.push(format!("+  {k}: {y}"));
            }
        }
    }
    out
}

async fn current_config(js: &Js, name: &str) -> Result<Value> {
    let info = strip_type(js.api(&format!("STREAM.INFO.{name}"), None).await?);
    let mut cfg = info["config"].clone();
    if let Some(md) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
        md.retain(|k, _| !k.starts_with("_nats."));
    }
    Ok(cfg)
}

pub async fn edit(js: &Js, a: EditArgs) -> Result<()> {
    let old = current_config(js, &a.stream)
        .await
        .with_context(|| format!("could not load Stream {}", a.stream))?;
    let mut new = apply(&old, &a.overrides)?;
    new["name"] = json!(a.stream);
    let diff = differences(&old, &new);
    if diff.is_empty() {
        bail!("no difference in configuration");
    }
    if !a.overrides.json || a.dry_run {
        println!("Differences (-old +new):\n{}\n", diff.join("\n"));
    }
    if a.dry_run {
        return Ok(());
    }
    if !a.force && !confirm(&format!("Really edit Stream {}", a.stream))? {
        return Ok(());
    }
    let info = strip_type(
        js.api(&format!("STREAM.UPDATE.{}", a.stream), Some(&new))
            .await
            .context("could not edit Stream")?,
    );
    if a.overrides.json {
        print_json(&info);
    } else {
        println!("Stream {} was updated\n", a.stream);
        show_info(&a.stream, &info, false);
    }
    Ok(())
}

pub async fn copy(js: &Js, a: CpArgs) -> Result<()> {
    let old = current_config(js, &a.source)
        .await
        .with_context(|| format!("could not load Stream {}", a.source))?;
    let mut cfg = apply(&old, &a.overrides)?;
    cfg["name"] = json!(a.destination);
    let info = strip_type(
        js.api(&format!("STREAM.CREATE.{}", a.destination), Some(&cfg))
            .await
            .context("could not create Stream")?,
    );
    if a.overrides.json {
        print_json(&info);
    } else {
        println!("Stream {} was created\n", a.destination);
        show_info(&a.destination, &info, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_flags_change_the_config() {
        let old = json!({"name": "S", "subjects": ["a"], "max_msgs": -1, "max_age": 0,
                         "deny_delete": false, "metadata": {"team": "x", "_nats.level": "5"}});
        let o = Overrides {
            subjects: vec!["b,c".into()],
            max_msgs: Some(10),
            deny_delete: true,
            metadata: vec!["env=prod".into()],
            ..Overrides::default()
        };
        let new = apply(&old, &o).unwrap();
        assert_eq!(new["subjects"], json!(["b", "c"]));
        assert_eq!(new["max_msgs"], 10);
        assert_eq!(new["max_age"], 0);
        assert_eq!(new["deny_delete"], true);
        assert_eq!(new["metadata"], json!({"team": "x", "env": "prod"}));
        let d = differences(&old, &new);
        assert!(d.contains(&"+  max_msgs: 10".to_string()), "{d:?}");
        assert!(!d.iter().any(|l| l.contains("max_age")), "{d:?}");
    }
}
