//! `server` (info/ping/list/check), `account info` and `event`: views built
//! on the `$SYS.REQ.SERVER.PING*` services, `$JS.API.INFO` and the event
//! subjects servers publish. They use whatever connection options are given,
//! so they work from the system account as well as from `$G`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::conn::ConnOpts;
use crate::output::{human_duration, ibytes, num, parse_duration, print_json, Columns, Table};

#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Show information about a single server
    Info(InfoArgs),
    /// Ping all servers
    Ping(PingArgs),
    /// List known servers
    #[command(visible_aliases = ["ls"])]
    List(PingArgs),
    /// Health check for NATS servers
    #[command(subcommand)]
    Check(CheckCmd),
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Server name or ID to query
    #[arg(value_name = "SERVER")]
    pub target: Option<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PingArgs {
    /// Stop after this many replies (default: wait for replies to stop)
    #[arg(long, alias = "count", default_value_t = 0)]
    pub expect: usize,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum CheckCmd {
    /// Checks basic server connection (Nagios output)
    #[command(visible_aliases = ["conn"])]
    Connection(CheckConnArgs),
}

#[derive(Args, Debug)]
pub struct CheckConnArgs {
    /// Warning threshold for connect time
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub connect_warn: Duration,
    /// Critical threshold for connect time
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub connect_critical: Duration,
    /// Warning threshold for round trip time
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub rtt_warn: Duration,
    /// Critical threshold for round trip time
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub rtt_critical: Duration,
    /// Warning threshold for request time
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub req_warn: Duration,
    /// Critical threshold for request time
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub req_critical: Duration,
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Account information
    Info(JsonArg),
}

#[derive(Args, Debug)]
pub struct JsonArg {
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EventArgs {
    /// Shows JetStream advisories
    #[arg(long)]
    pub js_advisory: bool,
    /// Shows JetStream metrics
    #[arg(long)]
    pub js_metric: bool,
    /// Shows connection events
    #[arg(long)]
    pub connections: bool,
    /// Shows server advisories
    #[arg(long)]
    pub srv_advisory: bool,
    /// Shows every kind of event
    #[arg(long)]
    pub all: bool,
    /// Output the events as JSON, one per line
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// One reply to a `$SYS.REQ.SERVER.PING*` request and its round trip time.
struct Reply {
    body: Value,
    rtt: Duration,
}

/// Send one request and gather the replies of every server: until `expect`
/// replies, the timeout, or (when not expecting a count) 300ms of quiet after
/// a reply, which is how long the rest of a cluster usually takes.
async fn gather(
    client: &async_nats::Client,
    subject: &str,
    body: Bytes,
    expect: usize,
    timeout: Duration,
) -> Result<Vec<Reply>> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await?;
    let start = Instant::now();
    client
        .publish_with_reply(subject.to_string(), inbox, body)
        .await?;
    client.flush().await?;
    let deadline = start + timeout;
    let mut out = Vec::new();
    loop {
        let now = Instant::now();
        let mut wait = deadline.saturating_duration_since(now);
        if expect == 0 && !out.is_empty() {
            wait = wait.min(Duration::from_millis(300));
        }
        match tokio::time::timeout(wait, sub.next()).await {
            Ok(Some(m)) => {
                // A no-responders status carries no body.
                if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    bail!("no responders for {subject}: is this a system account connection?");
                }
                let body: Value = serde_json::from_slice(&m.payload)
                    .map_err(|e| anyhow!("invalid JSON reply on {subject}: {e}"))?;
                out.push(Reply {
                    body,
                    rtt: start.elapsed(),
                });
                if expect > 0 && out.len() >= expect {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    if out.is_empty() {
        bail!("no results received for {subject}, ensure the account used has system privileges and appropriate permissions");
    }
    Ok(out)
}

pub async fn server(conn: &ConnOpts, cmd: ServerCmd) -> Result<()> {
    if let ServerCmd::Check(CheckCmd::Connection(a)) = cmd {
        return check_connection(conn, a).await;
    }
    let client = conn.connect().await?;
    match cmd {
        ServerCmd::Ping(a) => {
            let replies = gather(
                &client,
                "$SYS.REQ.SERVER.PING",
                Bytes::new(),
                a.expect,
                conn.timeout,
            )
            .await?;
            if a.json {
                print_json(&json!(replies.iter().map(|r| &r.body).collect::<Vec<_>>()));
                return Ok(());
            }
            for r in &replies {
                let name = r.body["server"]["name"].as_str().unwrap_or("");
                println!("{name:<60} rtt={}", human_duration(r.rtt));
            }
            let ms: Vec<f64> = replies
                .iter()
                .map(|r| r.rtt.as_secs_f64() * 1000.0)
                .collect();
            let max = ms.iter().cloned().fold(0.0, f64::max);
            let min = ms.iter().cloned().fold(f64::MAX, f64::min);
            let avg = ms.iter().sum::<f64>() / ms.len() as f64;
            println!("\n---- ping statistics ----");
            println!(
                "{} replies max: {max:.2} min: {min:.2} avg: {avg:.2}",
                replies.len()
            );
            Ok(())
        }
        ServerCmd::List(a) => {
            let replies = gather(
                &client,
                "$SYS.REQ.SERVER.PING.STATSZ",
                Bytes::new(),
                a.expect,
                conn.timeout,
            )
            .await?;
            if a.json {
                print_json(&json!(replies.iter().map(|r| &r.body).collect::<Vec<_>>()));
                return Ok(());
            }
            server_list(replies);
            Ok(())
        }
        ServerCmd::Info(a) => {
            let (subject, body) = match &a.target {
                // Server ids are 56 upper-case characters starting with N.
                Some(s) if s.len() == 56 && s.starts_with('N') => {
                    (format!("$SYS.REQ.SERVER.{s}.VARZ"), Bytes::new())
                }
                Some(s) => (
                    "$SYS.REQ.SERVER.PING.VARZ".to_string(),
                    Bytes::from(json!({ "server_name": s }).to_string()),
                ),
                None => ("$SYS.REQ.SERVER.PING.VARZ".to_string(), Bytes::new()),
            };
            let replies = gather(&client, &subject, body, 1, conn.timeout).await?;
            let r = &replies[0].body;
            if let Some(e) = r.get("error") {
                bail!("{}", e["description"].as_str().unwrap_or("server error"));
            }
            if a.json {
                print_json(r);
            } else {
                show_varz(&r["data"]);
            }
            Ok(())
        }
        ServerCmd::Check(_) => Ok(()),
    }
}

fn server_list(mut replies: Vec<Reply>) {
    replies.sort_by(|x, y| {
        x.body["server"]["name"]
            .as_str()
            .cmp(&y.body["server"]["name"].as_str())
    });
    let mut t = Table::new(
        "Server Overview",
        &[
            "Name", "Cluster", "Host", "Version", "JS", "Conns", "Subs", "Routes", "GWs", "Mem",
            "CPU %", "Cores", "Slow", "Uptime", "RTT",
        ],
    );
    let (mut conns, mut subs, mut mem) = (0u64, 0u64, 0u64);
    for r in &replies {
        let s = &r.body["server"];
        let z = &r.body["statsz"];
        let u = |v: &Value| v.as_u64().unwrap_or(0);
        conns += u(&z["connections"]);
        subs += u(&z["subscriptions"]);
        mem += u(&z["mem"]);
        let uptime = z["start"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .to_std()
                    .ok()
            })
            .map(|d| human_duration(Duration::from_secs(d.as_secs())))
            .unwrap_or_default();
        t.row(vec![
            s["name"].as_str().unwrap_or("").into(),
            s["cluster"].as_str().unwrap_or("").into(),
            s["host"].as_str().unwrap_or("").into(),
            s["ver"].as_str().unwrap_or("").into(),
            if s["jetstream"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            }
            .into(),
            num(u(&z["connections"])),
            num(u(&z["subscriptions"])),
            num(z["routes"].as_array().map_or(0, |a| a.len())),
            num(z["gateways"].as_array().map_or(0, |a| a.len())),
            ibytes(u(&z["mem"])),
            format!("{:.0}", z["cpu"].as_f64().unwrap_or(0.0)),
            num(u(&z["cores"])),
            num(u(&z["slow_consumers"])),
            uptime,
            human_duration(r.rtt),
        ]);
    }
    t.row(vec![
        String::new(),
        format!("{}", replies.len()),
        String::new(),
        String::new(),
        String::new(),
        num(conns),
        num(subs),
        String::new(),
        String::new(),
        ibytes(mem),
    ]);
    println!("{}", t.render());
}

fn show_varz(v: &Value) {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    let b = |k: &str| v[k].as_bool().unwrap_or(false).to_string();
    let mut c = Columns::new(format!(
        "Server information for {} ({})",
        s("server_name"),
        s("server_id")
    ));
    c.section("Process Details");
    c.row("Version", s("version"));
    c.row("Git Commit", s("git_commit"));
    c.row("Go Version", s("go"));
    c.row("Start Time", s("start"));
    c.row("Uptime", s("uptime"));
    c.section("Connection Details");
    c.row("Auth Required", b("auth_required"));
    c.row("TLS Required", b("tls_required"));
    c.row("Listen Host", format!("{}:{}", s("host"), u("port")));
    c.row("Max Payload", ibytes(u("max_payload")));
    c.section("JetStream");
    let js = &v["jetstream"]["config"];
    c.row("Enabled", (!js.is_null()).to_string());
    c.row_if(
        !js.is_null(),
        "Storage Directory",
        js["store_dir"].as_str().unwrap_or(""),
    );
    c.row_if(
        !js.is_null(),
        "Max Memory",
        ibytes(js["max_memory"].as_u64().unwrap_or(0)),
    );
    c.row_if(
        !js.is_null(),
        "Max File Store",
        ibytes(js["max_storage"].as_u64().unwrap_or(0)),
    );
    c.section("Limits");
    c.row("Maximum Connections", num(u("max_connections")));
    c.row("Maximum Subscriptions", num(u("max_subscriptions")));
    c.row("Maximum Control Line", num(u("max_control_line")));
    c.row("Maximum Pending", ibytes(u("max_pending")));
    c.section("Statistics");
    c.row("CPU Cores", num(u("cores")));
    c.row("CPU", format!("{:.2}", v["cpu"].as_f64().unwrap_or(0.0)));
    c.row("Memory", ibytes(u("mem")));
    c.row("Connections", num(u("connections")));
    c.row("Subscriptions", num(u("subscriptions")));
    c.row(
        "Msgs",
        format!("{} in {} out", num(u("in_msgs")), num(u("out_msgs"))),
    );
    c.row(
        "Bytes",
        format!(
            "{} in {} out",
            ibytes(u("in_bytes")),
            ibytes(u("out_bytes"))
        ),
    );
    c.row("Slow Consumers", num(u("slow_consumers")));
    print!("{}", c.render());
}

/// Nagios-style connection check: status word, message and perf data;
/// exit status 0 OK, 1 WARNING, 2 CRITICAL.
async fn check_connection(conn: &ConnOpts, a: CheckConnArgs) -> Result<()> {
    let url = conn.server_url().to_string();
    let start = Instant::now();
    let client = match conn.connect().await {
        Ok(c) => c,
        Err(e) => {
            println!("CRITICAL Connection CRITICAL:{e}");
            std::process::exit(2);
        }
    };
    let connect = start.elapsed();
    let rtt_start = Instant::now();
    client.flush().await?;
    let rtt = rtt_start.elapsed();
    let subject = client.new_inbox();
    let mut sub = client.subscribe(subject.clone()).await?;
    let req_start = Instant::now();
    client.publish(subject, Bytes::from_static(b"ping")).await?;
    let got = tokio::time::timeout(conn.timeout, sub.next()).await;
    let req = req_start.elapsed();
    let mut level: i32 = 0;
    let mut parts = Vec::new();
    let mut judge = |what: String, d: Duration, warn: Duration, crit: Duration| {
        let (l, word) = if d >= crit {
            (2, "CRITICAL")
        } else if d >= warn {
            (1, "WARNING")
        } else {
            (0, "OK")
        };
        level = level.max(l);
        parts.push(format!("{word}:{what}"));
    };
    judge(
        format!("connected to {url} in {}", human_duration(connect)),
        connect,
        a.connect_warn,
        a.connect_critical,
    );
    judge(
        format!("rtt time {}", human_duration(rtt)),
        rtt,
        a.rtt_warn,
        a.rtt_critical,
    );
    if matches!(got, Ok(Some(_))) {
        judge(
            format!("round trip took {:.6}s", req.as_secs_f64()),
            req,
            a.req_warn,
            a.req_critical,
        );
    } else {
        level = 2;
        parts.push("CRITICAL:did not receive own message".into());
    }
    let word = ["OK", "WARNING", "CRITICAL"][level.clamp(0, 2) as usize];
    let perf = |name: &str, d: Duration, w: Duration, c: Duration| {
        format!(
            "{name}={:.4}s;{:.4};{:.4}",
            d.as_secs_f64(),
            w.as_secs_f64(),
            c.as_secs_f64()
        )
    };
    println!(
        "{word} Connection {} | {} {} {}",
        parts.join(" "),
        perf("connect_time", connect, a.connect_warn, a.connect_critical),
        perf("rtt", rtt, a.rtt_warn, a.rtt_critical),
        perf("request_time", req, a.req_warn, a.req_critical),
    );
    if level > 0 {
        std::process::exit(level);
    }
    Ok(())
}

pub async fn account(conn: &ConnOpts, cmd: AccountCmd) -> Result<()> {
    let AccountCmd::Info(a) = cmd;
    let js = conn.jetstream().await?;
    let start = Instant::now();
    js.client.flush().await?;
    let rtt = start.elapsed();
    let info = js.client.server_info();
    let jsinfo = match js.api("INFO", None).await {
        Ok(v) => Some(v),
        Err(e) if e.downcast_ref::<crate::conn::ApiError>().is_some() => None,
        Err(e) if e.to_string().contains("no responders") => None,
        Err(e) => return Err(e),
    };
    if a.json {
        print_json(&json!({
            "server": {
                "server_id": info.server_id,
                "server_name": info.server_name,
                "version": info.version,
                "client_id": info.client_id,
                "client_ip": info.client_ip,
                "max_payload": info.max_payload,
                "headers": info.headers,
            },
            "rtt": rtt.as_nanos() as u64,
            "jetstream": jsinfo,
        }));
        return Ok(());
    }
    let mut c = Columns::new("Account Information");
    c.row("User", conn.user.clone().unwrap_or_default());
    c.row("Client ID", info.client_id.to_string());
    c.row("Client IP", info.client_ip.clone());
    c.row("RTT", human_duration(rtt));
    c.row("Headers Supported", info.headers.to_string());
    c.row("Maximum Payload", ibytes(info.max_payload as u64));
    c.row("Connected URL", conn.server_url().to_string());
    c.row("Connected Address", format!("{}:{}", info.host, info.port));
    c.row("Connected Server ID", info.server_id.clone());
    c.row("Connected Server Version", info.version.clone());
    c.row("Connected Server Name", info.server_name.clone());
    c.row(
        "TLS Connection",
        if info.tls_required { "yes" } else { "no" },
    );
    match &jsinfo {
        None => {
            c.section("JetStream Account Information");
            c.row("", "JetStream is not supported in this account");
        }
        Some(j) => {
            let u = |v: &Value| v.as_u64().unwrap_or(0);
            let lim = |v: &Value, f: fn(u64) -> String| match v.as_i64() {
                Some(n) if n >= 0 => f(n as u64),
                _ => "unlimited".into(),
            };
            c.section("JetStream Account Information");
            c.row("Storage", ibytes(u(&j["storage"])));
            c.row("Memory", ibytes(u(&j["memory"])));
            c.row("Streams", num(u(&j["streams"])));
            c.row("Consumers", num(u(&j["consumers"])));
            c.section("Account Limits");
            let l = &j["limits"];
            c.row("Max Message Payload", ibytes(info.max_payload as u64));
            c.row("Max Memory", lim(&l["max_memory"], ibytes));
            c.row("Max Storage", lim(&l["max_storage"], ibytes));
            c.row("Max Streams", lim(&l["max_streams"], num));
            c.row("Max Consumers", lim(&l["max_consumers"], num));
            c.section("API");
            c.row("Total Requests", num(u(&j["api"]["total"])));
            c.row("Errors", num(u(&j["api"]["errors"])));
        }
    }
    print!("{}", c.render());
    Ok(())
}

pub async fn event(conn: &ConnOpts, a: EventArgs) -> Result<()> {
    let client = conn.connect().await?;
    let mut subjects: Vec<&str> = Vec::new();
    if a.js_advisory || a.all {
        subjects.push("$JS.EVENT.ADVISORY.>");
    }
    if a.js_metric || a.all {
        subjects.push("$JS.EVENT.METRIC.>");
    }
    if a.srv_advisory || a.all {
        subjects.extend(["$SYS.SERVER.*.SHUTDOWN", "$SYS.SERVER.*.LAMEDUCK"]);
    }
    // Like the nats CLI, connection events are the default.
    if a.connections || a.all || subjects.is_empty() {
        subjects.extend([
            "$SYS.ACCOUNT.*.CONNECT",
            "$SYS.ACCOUNT.*.DISCONNECT",
            "$SYS.SERVER.*.CLIENT.AUTH.ERR",
        ]);
    }
    let mut subs = Vec::new();
    for s in &subjects {
        subs.push(client.subscribe(s.to_string()).await?);
    }
    client.flush().await?;
    crate::output::log(format!("Listening for events on {}", subjects.join(", ")));
    let mut all = futures::stream::select_all(subs);
    while let Some(m) = all.next().await {
        let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
            crate::output::log(format!("non-JSON event on {}", m.subject));
            continue;
        };
        if a.json {
            println!("{v}");
        } else {
            pretty_event(&m.subject, &v);
        }
    }
    Ok(())
}

/// A header line with the time, id and schema type, then the event's fields
/// flattened into aligned `key: value` rows.
fn pretty_event(subject: &str, v: &Value) {
    let kind = v["type"].as_str().unwrap_or(subject);
    let id = v["id"].as_str().unwrap_or("");
    let when = crate::stream::ts(&v["timestamp"])
        .unwrap_or_else(|| chrono::Local::now().format("%F %T").to_string());
    let mut c = Columns::new(format!("[{when}] [{id}] {kind}"));
    let mut rows = Vec::new();
    flatten("", v, &mut rows);
    for (k, val) in rows {
        if matches!(k.as_str(), "type" | "id" | "timestamp") {
            continue;
        }
        c.row(&k, val);
    }
    c.row("Subject", subject);
    print!("{}", c.render());
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
