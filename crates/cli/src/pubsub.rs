//! `pub`, `sub`, `req` and `reply`: core NATS messaging.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use async_nats::{HeaderMap, Message, StatusCode};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use futures::StreamExt;

use crate::conn::ConnOpts;
use crate::output::{human_duration, log, parse_duration};

/// Expand the nats CLI body templates (`{{Count}}`, `{{.Count}}`, `{{Cnt}}`,
/// `{{Unix}}`, `{{UnixNano}}`, `{{TimeStamp}}`, `{{Time}}`, `{{ID}}`,
/// `{{Random min max}}`, `{{Request}}`). On an unknown action the error is
/// returned together with the unexpanded text, as the nats CLI does.
pub fn render_template(body: &str, request: Option<&str>, ctr: usize) -> Result<String, String> {
    if !body.contains("{{") {
        return Ok(body.to_string());
    }
    let now = chrono::Local::now();
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template: body: unclosed action in {body:?}"))?;
        let action = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let mut words = action.split_whitespace();
        let name = words.next().unwrap_or("").trim_start_matches('.');
        let args: Vec<&str> = words.collect();
        let val = match name {
            "Count" | "Cnt" => ctr.to_string(),
            "Unix" => now.timestamp().to_string(),
            "UnixNano" => now.timestamp_nanos_opt().unwrap_or(0).to_string(),
            "TimeStamp" => now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "Time" => now.format("%-I:%M%p").to_string(),
            "ID" => nuid::next().to_string(),
            "Request" if request.is_some() => request.unwrap_or_default().to_string(),
            "Random" => {
                let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
                if nums.len() != 2 {
                    return Err(format!(
                        "template: body: Random requires 2 numeric arguments in {action:?}"
                    ));
                }
                let (lo, hi) = (nums[0].min(nums[1]), nums[0].max(nums[1]));
                let len = if lo == hi {
                    lo
                } else {
                    fastrand::usize(lo..=hi)
                };
                (0..len).map(|_| fastrand::alphanumeric()).collect()
            }
            _ => return Err(format!("template: body: function {name:?} not defined")),
        };
        out.push_str(&val);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn template_or_log(text: &str, request: Option<&str>, ctr: usize, what: &str) -> String {
    match render_template(text, request, ctr) {
        Ok(s) => s,
        Err(e) => {
            log(format!("Could not parse {what} template: {e}"));
            text.to_string()
        }
    }
}

/// Parse `-H K:V` headers (values may use templates).
pub fn parse_headers(hdrs: &[String], ctr: usize) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for h in hdrs {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("invalid header {h:?}"))?;
        let v = render_template(v.trim(), None, ctr)
            .map_err(|e| anyhow!("failed to parse Header template for {}: {e}", k.trim()))?;
        map.append(k.trim(), v.as_str());
    }
    Ok(map)
}

/// Print headers (`K: V`) then the body the way the nats CLI does.
pub fn print_headers(headers: Option<&HeaderMap>) {
    if let Some(h) = headers {
        let mut any = false;
        for (k, vals) in h.iter() {
            for v in vals {
                println!("{}: {}", k, v.as_str());
                any = true;
            }
        }
        if any {
            println!();
        }
    }
}

pub fn print_body_compact(data: &[u8]) {
    if data.is_empty() {
        println!("nil body");
        return;
    }
    let s = String::from_utf8_lossy(data);
    if s.ends_with('\n') {
        print!("{s}");
    } else {
        println!("{s}");
    }
}

pub fn print_body(data: &[u8]) {
    print_body_compact(data);
    println!();
    if !data.is_empty() && !data.ends_with(b"\n") {
        // nats CLI prints an extra blank line after bodies without a newline
        println!();
    }
    let _ = std::io::stdout().flush();
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SendOn {
    Eof,
    Newline,
}

fn read_stdin_all() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("could not read STDIN")?;
    Ok(s)
}

/// Bodies to send: the argument, or STDIN (whole, or one per line).
fn bodies(
    body: &Option<String>,
    force_stdin: bool,
    send_on: SendOn,
    quiet: bool,
) -> Result<Vec<String>> {
    if let (Some(b), false) = (body, force_stdin) {
        return Ok(vec![b.clone()]);
    }
    if !quiet {
        log("Reading payload from STDIN");
    }
    let all = read_stdin_all()?;
    Ok(match send_on {
        SendOn::Eof => vec![all],
        SendOn::Newline => all.lines().map(str::to_string).collect(),
    })
}

#[derive(Args, Debug)]
pub struct PubCmd {
    /// Subject to publish to
    pub subject: String,
    /// Message body (read from STDIN when absent)
    pub body: Option<String>,
    /// Sets a custom reply to subject
    #[arg(long, value_name = "SUBJECT")]
    pub reply: Option<String>,
    /// Adds headers to the message using K:V format
    #[arg(short = 'H', long = "header", value_name = "K:V")]
    pub header: Vec<String>,
    /// Publish multiple messages
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// When publishing multiple messages, sleep between publishes
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub sleep: Option<Duration>,
    /// Force reading from stdin
    #[arg(long)]
    pub force_stdin: bool,
    /// Publish messages to JetStream and wait for the acknowledgement
    #[arg(short = 'J', long)]
    pub jetstream: bool,
    /// Show just the output received
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// When to send data from stdin: 'eof' (default) or 'newline'
    #[arg(long, value_enum, default_value = "eof")]
    pub send_on: SendOn,
    /// Disables template functions in the body and subject
    #[arg(long = "no-templates")]
    pub no_templates: bool,
}

pub async fn publish(conn: &ConnOpts, c: PubCmd) -> Result<()> {
    let client = conn.connect().await?;
    let count = c.count.max(1);
    for body in bodies(&c.body, c.force_stdin, c.send_on, c.quiet)? {
        for i in 1..=count {
            let started = Instant::now();
            let (subj, body) = if c.no_templates {
                (c.subject.clone(), body.clone())
            } else {
                (
                    template_or_log(&c.subject, None, i, "subject"),
                    template_or_log(&body, None, i, "body"),
                )
            };
            let headers = parse_headers(&c.header, i)?;
            let payload = Bytes::from(body.clone());
            if c.jetstream {
                let reply = client.new_inbox();
                let mut sub = client.subscribe(reply.clone()).await?;
                client
                    .publish_with_reply_and_headers(subj.clone(), reply, headers, payload)
                    .await?;
                if !c.quiet {
                    log(format!("Published {} bytes to {:?}", body.len(), subj));
                }
                let resp = tokio::time::timeout(conn.timeout, sub.next())
                    .await
                    .map_err(|_| anyhow!("nats: timeout"))?
                    .ok_or_else(|| anyhow!("subscription closed"))?;
                if resp.status == Some(StatusCode::NO_RESPONDERS) {
                    return Err(anyhow!("nats: no responders available for request"));
                }
                let ack: serde_json::Value = serde_json::from_slice(&resp.payload)
                    .context("invalid publish acknowledgement")?;
                if let Some(e) = ack.get("error") {
                    return Err(anyhow!(
                        "{} ({})",
                        e.get("description")
                            .and_then(|d| d.as_str())
                            .unwrap_or("unknown"),
                        e.get("err_code").and_then(|d| d.as_u64()).unwrap_or(0)
                    ));
                }
                if !c.quiet {
                    let mut msg = format!(
                        "Stored in Stream: {} Sequence: {}",
                        ack["stream"].as_str().unwrap_or(""),
                        crate::output::num(ack["seq"].as_u64().unwrap_or(0))
                    );
                    if let Some(d) = ack.get("domain").and_then(|d| d.as_str()) {
                        msg.push_str(&format!(" Domain: {d:?}"));
                    }
                    if ack.get("duplicate").and_then(|d| d.as_bool()) == Some(true) {
                        msg.push_str(" Duplicate: true");
                    }
                    log(msg);
                }
            } else {
                match &c.reply {
                    Some(r) => {
                        client
                            .publish_with_reply_and_headers(
                                subj.clone(),
                                r.clone(),
                                headers,
                                payload,
                            )
                            .await?
                    }
                    None => {
                        client
                            .publish_with_headers(subj.clone(), headers, payload)
                            .await?
                    }
                }
                client.flush().await?;
                if !c.quiet {
                    log(format!("Published {} bytes to {:?}", body.len(), subj));
                }
            }
            if count > 1 {
                if let Some(s) = c.sleep {
                    let left = s.saturating_sub(started.elapsed());
                    tokio::time::sleep(left).await;
                }
            }
        }
    }
    // Like the nats CLI's Flush: wait for the server to have processed every
    // publish before the connection goes away.
    sync(&client, conn.timeout).await?;
    Ok(())
}

/// Make sure the server has processed our subscriptions: publish to a
/// private subject and wait until it comes back.
pub async fn sync(client: &async_nats::Client, timeout: Duration) -> Result<()> {
    let subj = client.new_inbox();
    let mut sub = client.subscribe(subj.clone()).await?;
    client.publish(subj, Bytes::new()).await?;
    tokio::time::timeout(timeout, sub.next())
        .await
        .map_err(|_| anyhow!("nats: timeout waiting for the server"))?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct SubCmd {
    /// Subjects to subscribe to
    #[arg(required = true)]
    pub subjects: Vec<String>,
    /// Subscribe to a named queue group
    #[arg(long)]
    pub queue: Option<String>,
    /// Show the raw data received
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// Quit after receiving this many messages
    #[arg(long)]
    pub count: Option<u64>,
    /// Do not render any data, shows only headers
    #[arg(long)]
    pub headers_only: bool,
    /// Prints only the messages' subjects
    #[arg(long)]
    pub subjects_only: bool,
    /// Show timestamps in output
    #[arg(short = 't', long)]
    pub timestamp: bool,
    /// Unsubscribe after this amount of time without any traffic
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Option<Duration>,
}

pub async fn subscribe(conn: &ConnOpts, c: SubCmd) -> Result<()> {
    let client = conn.connect().await?;
    let mut streams = Vec::new();
    for s in &c.subjects {
        let sub = match &c.queue {
            Some(q) => client.queue_subscribe(s.clone(), q.clone()).await?,
            None => client.subscribe(s.clone()).await?,
        };
        streams.push(sub);
    }
    let mut all = futures::stream::select_all(streams);
    sync(&client, conn.timeout).await?;
    match &c.queue {
        Some(q) => log(format!(
            "Subscribing on {} in group {q}",
            c.subjects.join(", ")
        )),
        None => log(format!("Subscribing on {}", c.subjects.join(", "))),
    }
    let mut n = 0u64;
    loop {
        let next = match c.wait {
            Some(w) => match tokio::time::timeout(w, all.next()).await {
                Ok(m) => m,
                Err(_) => break,
            },
            None => all.next().await,
        };
        let Some(m) = next else { break };
        n += 1;
        print_sub_msg(&c, &m, n);
        if c.count.is_some_and(|lim| n >= lim) {
            break;
        }
    }
    Ok(())
}

fn print_sub_msg(c: &SubCmd, m: &Message, n: u64) {
    if c.raw {
        print_body_compact(&m.payload);
        let _ = std::io::stdout().flush();
        return;
    }
    let ts = if c.timestamp {
        format!(" @ {}", chrono::Local::now().format("%b %e %H:%M:%S%.6f"))
    } else {
        String::new()
    };
    match &m.reply {
        Some(r) => println!(
            "[#{n}]{ts} Received on {:?} with reply {:?}",
            m.subject.as_str(),
            r.as_str()
        ),
        None => println!("[#{n}]{ts} Received on {:?}", m.subject.as_str()),
    }
    if c.subjects_only {
        let _ = std::io::stdout().flush();
        return;
    }
    print_headers(m.headers.as_ref());
    if !c.headers_only {
        print_body(&m.payload);
    }
    let _ = std::io::stdout().flush();
}

#[derive(Args, Debug)]
pub struct ReqCmd {
    /// Subject to send the request to
    pub subject: String,
    /// Message body (read from STDIN when absent)
    pub body: Option<String>,
    /// Show just the output received
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// Adds headers to the message using K:V format
    #[arg(short = 'H', long = "header", value_name = "K:V")]
    pub header: Vec<String>,
    /// Publish multiple messages
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Wait for multiple replies from services. 0 waits until timeout
    #[arg(long, default_value_t = 1)]
    pub replies: usize,
    /// Maximum time between replies when waiting for more than one
    #[arg(long, default_value = "300ms", value_parser = parse_duration, value_name = "DURATION")]
    pub reply_timeout: Duration,
    /// Force reading from stdin
    #[arg(long)]
    pub force_stdin: bool,
    /// When to send data from stdin: 'eof' (default) or 'newline'
    #[arg(long, value_enum, default_value = "eof")]
    pub send_on: SendOn,
    /// Disables template functions in the body and subject
    #[arg(long = "no-templates")]
    pub no_templates: bool,
    /// When sending multiple requests, sleep between them
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub sleep: Option<Duration>,
}

pub async fn request(conn: &ConnOpts, c: ReqCmd) -> Result<()> {
    let client = conn.connect().await?;
    let count = c.count.max(1);
    for body in bodies(&c.body, c.force_stdin, c.send_on, c.raw)? {
        for i in 1..=count {
            let (subj, body) = if c.no_templates {
                (c.subject.clone(), body.clone())
            } else {
                (
                    template_or_log(&c.subject, None, i, "subject"),
                    template_or_log(&body, None, i, "body"),
                )
            };
            if !c.raw {
                log(format!("Sending request on {subj:?}"));
            }
            let headers = parse_headers(&c.header, i)?;
            let inbox = client.new_inbox();
            let mut sub = client.subscribe(inbox.clone()).await?;
            client
                .publish_with_reply_and_headers(subj, inbox, headers, Bytes::from(body))
                .await?;
            client.flush().await?;
            let start = Instant::now();
            let mut timeout = conn.timeout;
            let mut got = 0usize;
            let mut rtt_sum = Duration::ZERO;
            loop {
                let m = match tokio::time::timeout(timeout, sub.next()).await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(_) => {
                        if got == 0 {
                            return Err(anyhow!("nats: timeout"));
                        }
                        break;
                    }
                };
                if m.status == Some(StatusCode::NO_RESPONDERS) {
                    log("No responders are available");
                    return Ok(());
                }
                let rtt = start.elapsed();
                if c.raw {
                    print_body(&m.payload);
                } else {
                    log(format!("Received with rtt {}", human_duration(rtt)));
                    if let Some(h) = &m.headers {
                        let mut any = false;
                        for (k, vals) in h.iter() {
                            for v in vals {
                                log(format!("{}: {}", k, v.as_str()));
                                any = true;
                            }
                        }
                        if any {
                            eprintln!();
                        }
                    }
                    print_body(&m.payload);
                }
                got += 1;
                if c.replies > 0 && (got == c.replies || m.payload.is_empty()) {
                    break;
                }
                if c.replies == 0 {
                    timeout = conn.timeout.saturating_sub(start.elapsed());
                } else {
                    rtt_sum += rtt;
                    timeout = rtt_sum / got as u32 + c.reply_timeout;
                }
            }
            drop(sub);
            if count > 1 {
                if let Some(s) = c.sleep {
                    tokio::time::sleep(s.saturating_sub(start.elapsed())).await;
                }
            }
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ReplyCmd {
    /// Subject to subscribe to
    pub subject: String,
    /// Reply body (templates such as {{Request}} and {{Count}} are expanded)
    pub body: Option<String>,
    /// Echo back what is received
    #[arg(long)]
    pub echo: bool,
    /// Runs a shell command per request (request body on STDIN, also in
    /// $NATS_REQUEST_BODY; subject in $NATS_REQUEST_SUBJECT) and responds
    /// with its output
    #[arg(long)]
    pub command: Option<String>,
    /// Queue group name
    #[arg(short = 'q', long, default_value = "NATS-RPLY-22")]
    pub queue: String,
    /// Inject a random sleep delay between replies up to this duration max
    #[arg(long, value_parser = parse_duration, value_name = "MAX")]
    pub sleep: Option<Duration>,
    /// Adds headers to the message using K:V format
    #[arg(short = 'H', long = "header", value_name = "K:V")]
    pub header: Vec<String>,
    /// Quit after receiving this many messages
    #[arg(long)]
    pub count: Option<u64>,
}

async fn run_command(cmd: &str, m: &Message, ctr: usize) -> Vec<u8> {
    let mut raw = cmd.to_string();
    for (i, t) in m.subject.split('.').enumerate() {
        raw = raw.replace(&format!("{{{{{i}}}}}"), t);
    }
    let req = String::from_utf8_lossy(&m.payload).to_string();
    let raw = template_or_log(&raw, Some(&req), ctr, "command");
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&raw)
        .env("NATS_REQUEST_SUBJECT", m.subject.as_str())
        .env("NATS_REQUEST_BODY", &req)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log(format!("Command {raw:?} failed to run: {e}"));
            return Vec::new();
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&m.payload).await;
    }
    match child.wait_with_output().await {
        Ok(out) => {
            if !out.status.success() {
                log(format!("Command {raw:?} failed to run: {}", out.status));
            }
            let mut data = out.stdout;
            data.extend_from_slice(&out.stderr);
            data
        }
        Err(e) => {
            log(format!("Command {raw:?} failed to run: {e}"));
            Vec::new()
        }
    }
}

pub async fn reply(conn: &ConnOpts, c: ReplyCmd) -> Result<()> {
    let client = conn.connect().await?;
    let echo = c.echo || (c.body.is_none() && c.command.is_none());
    if echo && !c.echo {
        log("No body or command supplied, enabling echo mode");
    }
    let mut sub = client
        .queue_subscribe(c.subject.clone(), c.queue.clone())
        .await?;
    sync(&client, conn.timeout).await?;
    log(format!(
        "Listening on {:?} in group {:?}",
        c.subject, c.queue
    ));
    let mut i = 0usize;
    while let Some(m) = sub.next().await {
        i += 1;
        log(format!(
            "[#{i}] Received on subject {:?}:",
            m.subject.as_str()
        ));
        if let Some(h) = &m.headers {
            for (k, vals) in h.iter() {
                for v in vals {
                    log(format!("{}: {}", k, v.as_str()));
                }
            }
        }
        println!();
        println!("{}", String::from_utf8_lossy(&m.payload));
        let _ = std::io::stdout().flush();
        if let Some(max) = c.sleep {
            let ns = max.as_nanos().min(u64::MAX as u128) as u64;
            if ns > 0 {
                tokio::time::sleep(Duration::from_nanos(fastrand::u64(0..ns))).await;
            }
        }
        let mut headers = parse_headers(&c.header, i)?;
        let data: Vec<u8> = if echo {
            if let Some(h) = &m.headers {
                for (k, vals) in h.iter() {
                    for v in vals {
                        headers.append(k.as_ref(), v.as_str());
                    }
                }
            }
            headers.append("NATS-Reply-Counter", i.to_string().as_str());
            m.payload.to_vec()
        } else if let Some(cmd) = &c.command {
            run_command(cmd, &m, i).await
        } else {
            let req = String::from_utf8_lossy(&m.payload).to_string();
            template_or_log(c.body.as_deref().unwrap_or(""), Some(&req), i, "body").into_bytes()
        };
        match &m.reply {
            Some(r) => {
                if let Err(e) = client
                    .publish_with_headers(r.clone(), headers, Bytes::from(data))
                    .await
                {
                    log(format!("Could not publish reply: {e}"));
                }
                client.flush().await?;
            }
            None => log("Could not publish reply: message has no reply subject"),
        }
        if c.count.is_some_and(|lim| i as u64 >= lim) {
            break;
        }
    }
    client.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::render_template;

    #[test]
    fn templates() {
        assert_eq!(
            render_template("ORDER {{Count}}", None, 7).unwrap(),
            "ORDER 7"
        );
        assert_eq!(
            render_template("{{ .Count }}-{{Cnt}}", None, 2).unwrap(),
            "2-2"
        );
        assert_eq!(render_template("{{Random 5 5}}", None, 1).unwrap().len(), 5);
        assert_eq!(
            render_template("re: {{Request}}", Some("x"), 1).unwrap(),
            "re: x"
        );
        assert!(render_template("{{Nope}}", None, 1).is_err());
        assert!(render_template("{{TimeStamp}}", None, 1)
            .unwrap()
            .contains('T'));
    }
}
