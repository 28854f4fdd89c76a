//! `rnats-server`: flags and config file in, a running server out. Errors at
//! this edge are reported the way nats-server reports them (a one-line
//! message and exit status 1, or a `[FTL]` log line once logging is up).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use rnats_server::cli::{self, Invocation};
use rnats_server::options::Options;
use rnats_server::reload::Loader;
use rnats_server::server::{self, Server};
use rnats_server::signals::{self, Stop};
use rnats_server::{config, logging, NATS_COMPAT_VERSION, RNATS_VERSION};

fn main() -> ExitCode {
    rnats_server::websocket::register();
    let flags = match cli::parse(std::env::args_os()) {
        Ok(Invocation::Run(f)) => f,
        Ok(Invocation::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!(
                "rnats-server: v{RNATS_VERSION} (nats-server v{NATS_COMPAT_VERSION} compatible)"
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &flags.check_store {
        return match rnats_server::jetstream::check::run(dir) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("rnats-server: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(spec) = &flags.signal {
        return match signals::send(spec) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rnats-server: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let flags: Arc<cli::Flags> = Arc::from(flags);
    let (opts, report) = match load_options(&flags) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("rnats-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // nats-server refuses to start with a top-level field it does not know.
    if !report.unknown.is_empty() && !flags.check_config {
        for u in &report.unknown {
            eprintln!("rnats-server: {u}");
        }
        return ExitCode::FAILURE;
    }
    if flags.check_config {
        // nats-server's `-t` fails on warnings too.
        if !report.unknown.is_empty() || !report.warnings.is_empty() {
            for u in report.unknown.iter().chain(&report.warnings) {
                eprintln!("rnats-server: {u}");
            }
            return ExitCode::FAILURE;
        }
        let name = flags
            .config
            .as_deref()
            .map_or("<none>".into(), |p| p.display().to_string());
        println!("rnats-server: configuration file {name} is valid");
        return ExitCode::SUCCESS;
    }

    // nats-server's validateGatewayOptions, before the server starts.
    if let Some(Err(e)) = opts.gateway.as_ref().map(|g| g.validate()) {
        eprintln!("rnats-server: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = logging::init(&logging::LogSettings::of(&opts)) {
        eprintln!("rnats-server: could not open log file: {e}");
        return ExitCode::FAILURE;
    }
    for line in report.warnings.iter().chain(&report.unimplemented) {
        tracing::warn!("{line}");
    }
    for name in flags.unimplemented() {
        tracing::warn!("Flag {name:?} is not implemented yet in rnats and is ignored");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => logging::fatal(format!("could not start the runtime: {e}")),
    };
    let reload_flags = flags.clone();
    let loader: Arc<Loader> = Arc::new(move || {
        let (opts, report) = load_options(&reload_flags).map_err(|e| e.to_string())?;
        if let Some(u) = report.unknown.first() {
            return Err(u.clone());
        }
        for line in report.warnings.iter().chain(&report.unimplemented) {
            tracing::warn!("{line}");
        }
        Ok(opts)
    });
    runtime.block_on(run(opts, loader));
    ExitCode::SUCCESS
}

/// The config file (if any), then the flags over it.
fn load_options(flags: &cli::Flags) -> Result<(Options, config::Report), String> {
    let mut opts = Options::default();
    let mut report = config::Report::default();
    if let Some(path) = &flags.config {
        report = config::load(path, &mut opts).map_err(|e| e.to_string())?;
    }
    flags.apply(&mut opts)?;
    if let Some(t) = &opts.tls {
        // nats-server: without an explicit auth timeout, TLS gets its
        // handshake time plus a second.
        if !opts.auth_timeout_set {
            opts.auth_timeout = t.timeout + std::time::Duration::from_secs(1);
        }
    }
    Ok((opts, report))
}

async fn run(opts: Options, loader: Arc<Loader>) {
    tracing::info!("Starting rnats-server");
    tracing::info!("  Version:  {RNATS_VERSION} (nats-server {NATS_COMPAT_VERSION} compatible)");
    let addr = format!(
        "{}:{}",
        opts.host,
        if opts.random_port { 0 } else { opts.port }
    );
    let pid_file = opts.pid_file.clone();
    let ports_dir = opts.ports_file_dir.clone();
    let ws_opts = opts.clone();
    let server = match Server::bind(opts).await {
        Ok(s) => s,
        Err(e) => logging::fatal(format!(
            "Error listening on port: {addr}, {:?}",
            e.to_string()
        )),
    };
    let ws_listener = match rnats_server::websocket::WsListener::bind(&ws_opts).await {
        Ok(l) => l,
        Err(e) => logging::fatal(format!(
            "Error listening on port: {addr}, {:?}",
            e.to_string()
        )),
    };
    drop(ws_opts);
    let state = server.state();
    tracing::info!("  Name:     {}", state.server_name);
    tracing::info!("  ID:       {}", state.server_id);
    if rnats_server::auth::has_plaintext_passwords(&state.opts().auth) {
        tracing::warn!("Plaintext passwords detected, use nkeys or bcrypt");
    }
    let cluster = match rnats_server::cluster::start(&state).await {
        Ok(c) => c,
        Err(e) => logging::fatal(e.to_string()),
    };
    let gateway = match rnats_server::gateway::start(&state).await {
        Ok(g) => g,
        Err(e) => logging::fatal(e.to_string()),
    };
    if let (Some(c), Some(g)) = (&cluster, &gateway) {
        // Our route INFO tells cluster peers our gateway URL.
        c.set_gateway_url(&g.url);
    }
    if state.opts().jetstream {
        start_jetstream(&state);
    }
    if let Err(e) = rnats_server::leaf::start(&state).await {
        logging::fatal(e.to_string());
    }
    let local = match server.local_addr() {
        Ok(a) => a,
        Err(e) => logging::fatal(format!("Error reading the listen address: {e}")),
    };
    let host = state.opts().host.clone();
    let ws_addr = ws_listener.as_ref().and_then(|l| l.local_addr().ok());
    let websocket = match (ws_listener.as_ref().map(|l| l.settings()), ws_addr) {
        (Some(ws), Some(addr)) => {
            tracing::info!(
                "Listening for websocket clients on {}://{}:{}",
                ws.scheme(),
                ws.host,
                addr.port()
            );
            if ws.tls.is_none() {
                tracing::warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
            }
            Some((ws.scheme(), ws.host.clone(), addr.port()))
        }
        _ => None,
    };
    tracing::info!(
        "Listening for client connections on {}",
        join_host_port(&host, local.port())
    );
    if let Some(tls) = &state.client_tls {
        let first_only = tls.opts.handshake_first && tls.opts.handshake_first_fallback.is_none();
        if state.opts().allow_non_tls && !first_only {
            tracing::info!("TLS available for client connections");
        } else {
            tracing::info!("TLS required for client connections");
        }
        if first_only {
            tracing::warn!(
                "Clients that are not using \"TLS Handshake First\" option will fail to connect"
            );
        }
    }
    if let Err(e) = rnats_server::sysacc::Sys::start(&state) {
        logging::fatal(format!("Error setting up internal tracking: {e}"));
    }
    let monitor_port = match rnats_server::monitor::start(&state).await {
        Ok(p) => p,
        Err(e) => logging::fatal(e.to_string()),
    };
    let monitoring = monitor_port.map(|p| (state.opts().http_host.clone(), p));
    let nats_scheme = if state.client_tls.is_some() && !state.opts().allow_non_tls {
        "tls"
    } else {
        "nats"
    };
    let cluster_addr = cluster
        .as_ref()
        .map(|c| (c.options().host.clone(), c.listen.port()));
    let ports_file = ports_dir.map(|d| {
        write_ports_file(
            &d,
            (nats_scheme, &host, local.port()),
            monitoring.as_ref(),
            websocket.as_ref(),
            cluster_addr.as_ref(),
        )
    });
    if let Some(p) = &pid_file {
        if let Err(e) = std::fs::write(p, std::process::id().to_string()) {
            logging::fatal(format!("Could not write pidfile: {e}"));
        }
    }
    let signals = match signals::install() {
        Ok(s) => s,
        Err(e) => logging::fatal(format!("Could not install signal handlers: {e}")),
    };
    tracing::info!("Server is ready");

    let accept = tokio::spawn(server.run());
    let ws_accept = ws_listener.map(|l| tokio::spawn(l.run(state.clone())));
    let stop = signals::wait(signals, state.clone(), loader).await;
    if !matches!(stop, Stop::LameDuckDone) {
        tracing::info!("Initiating Shutdown...");
    }
    rnats_server::sysacc::shutdown_event(&state);
    server::shutdown(&state);
    let _ = accept.await;
    if let Some(ws) = ws_accept {
        let _ = ws.await;
    }
    // Give writers a moment to flush their final -ERR/close.
    server::clients_gone(&state, std::time::Duration::from_millis(20)).await;
    if let Some(p) = pid_file {
        let _ = std::fs::remove_file(p);
    }
    if let Some(Some(p)) = ports_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("Server Exiting..");
}

fn start_jetstream(state: &std::sync::Arc<rnats_server::server::ServerState>) {
    tracing::info!("Starting JetStream");
    let started = std::time::Instant::now();
    match rnats_server::jetstream::JetStream::enable(state) {
        Ok(js) => {
            tracing::info!("---------------- JETSTREAM ----------------");
            tracing::info!("  Max Memory:      {}", human_bytes(js.max_memory));
            tracing::info!("  Max Storage:     {}", human_bytes(js.max_store));
            tracing::info!(
                "  Store Directory: {:?}",
                js.store_dir.display().to_string()
            );
            if let Some(d) = &state.opts().jetstream_domain {
                tracing::info!("  Domain:          {d}");
            }
            tracing::info!("  API Level:       5");
            tracing::info!("-------------------------------------------");
            tracing::info!("Took {:?} to start JetStream", started.elapsed());
            rnats_server::jetstream::install(state, js);
        }
        Err(e) => logging::fatal(format!("Can't start JetStream: {e}")),
    }
}

fn human_bytes(n: i64) -> String {
    let n = n as f64;
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", UNITS[u])
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `<dir>/<argv0 basename>_<pid>.ports` with the URLs clients can use.
fn write_ports_file(
    dir: &Path,
    (scheme, host, port): (&str, &str, u16),
    monitoring: Option<&(String, u16)>,
    websocket: Option<&(&str, String, u16)>,
    cluster: Option<&(String, u16)>,
) -> Option<PathBuf> {
    let exe = std::env::args()
        .next()
        .unwrap_or_else(|| "rnats-server".into());
    let base = Path::new(&exe)
        .file_name()
        .map_or("rnats-server".into(), |s| s.to_string_lossy().into_owned());
    let path = dir.join(format!("{base}_{}.ports", std::process::id()));
    let local = |h: &str| -> String {
        if h == "0.0.0.0" || h == "::" {
            "127.0.0.1".into()
        } else {
            h.into()
        }
    };
    let mut body = serde_json::json!({
        "nats": [format!("{scheme}://{}", join_host_port(&local(host), port))]
    });
    if let Some((mhost, mport)) = monitoring {
        body["monitoring"] =
            serde_json::json!([format!("http://{}", join_host_port(&local(mhost), *mport))]);
    }
    if let Some((wscheme, whost, wport)) = websocket {
        body["websocket"] = serde_json::json!([format!(
            "{wscheme}://{}",
            join_host_port(&local(whost), *wport)
        )]);
    }
    if let Some((chost, cport)) = cluster {
        body["cluster"] =
            serde_json::json!([format!("nats://{}", join_host_port(&local(chost), *cport))]);
    }
    match std::fs::write(&path, body.to_string()) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::error!("Error writing ports file {}: {e}", path.display());
            None
        }
    }
}
