//! nats-server's command line, accepted as nats-server accepts it.
//!
//! nats-server uses Go's `flag` package: every flag may take one or two dashes
//! (`-port` = `--port`), multi-letter short names exist (`-js`, `-sd`, `-DV`),
//! and booleans take `=false`. clap does not model that, so [`normalize`]
//! rewrites single-dash words to double-dash before clap sees them; clap then
//! knows `js`, `sd`, `DV`... as long names and the one-letter forms as shorts.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use crate::options::{ClusterOptions, Options};

#[derive(Debug, Parser)]
#[command(
    name = "rnats-server",
    about = "rnats-server: a NATS server with JetStream, compatible with nats-server",
    disable_version_flag = true,
    disable_help_flag = true
)]
pub struct Flags {
    // --- Server options ---
    /// Bind to host address (default: 0.0.0.0)
    #[arg(short = 'a', long = "addr", visible_aliases = ["net"], value_name = "host")]
    pub addr: Option<String>,
    /// Use port for clients (default: 4222, -1 for a random port)
    #[arg(
        short = 'p',
        long = "port",
        allow_negative_numbers = true,
        value_name = "port"
    )]
    pub port: Option<i32>,
    /// Server name (default: auto)
    #[arg(short = 'n', long = "name", visible_aliases = ["server_name"], value_name = "server_name")]
    pub name: Option<String>,
    /// File to store PID
    #[arg(short = 'P', long = "pid", value_name = "file")]
    pub pid: Option<PathBuf>,
    /// Use port for http monitoring
    #[arg(
        short = 'm',
        long = "http_port",
        allow_negative_numbers = true,
        value_name = "port"
    )]
    pub http_port: Option<i32>,
    /// Use port for https monitoring
    #[arg(long = "ms", visible_aliases = ["https_port"], value_name = "port")]
    pub https_port: Option<i32>,
    /// Configuration file
    #[arg(short = 'c', long = "config", value_name = "file")]
    pub config: Option<PathBuf>,
    /// Test configuration and exit
    #[arg(short = 't', action = ArgAction::SetTrue)]
    pub check_config: bool,
    /// Send signal to rnats-server process (ldm, stop, quit, term, reopen, reload)
    #[arg(long = "sl", visible_aliases = ["signal"], value_name = "signal[=pid]")]
    pub signal: Option<String>,
    /// Check a JetStream store directory for damaged records without changing it, then exit
    #[arg(long = "check-store", visible_aliases = ["check_store"], value_name = "dir")]
    pub check_store: Option<PathBuf>,
    /// Client URL to advertise to other servers
    #[arg(long = "client_advertise", value_name = "string")]
    pub client_advertise: Option<String>,
    /// Creates a ports file in the specified directory (<executable_name>_<pid>.ports)
    #[arg(long = "ports_file_dir", value_name = "dir")]
    pub ports_file_dir: Option<PathBuf>,

    // --- Logging options ---
    /// File to redirect log output
    #[arg(short = 'l', long = "log", visible_aliases = ["log_file"], value_name = "file")]
    pub log: Option<PathBuf>,
    /// Timestamp log entries (default: true)
    #[arg(short = 'T', long = "logtime", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub logtime: Option<bool>,
    /// Timestamps in UTC instead of local timezone
    #[arg(long = "logtime_utc", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub logtime_utc: Option<bool>,
    /// Log to syslog (accepted; rnats logs to stderr or the log file)
    #[arg(short = 's', long = "syslog", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub syslog: Option<bool>,
    /// Syslog server addr (accepted, not implemented)
    #[arg(short = 'r', long = "remote_syslog", value_name = "addr")]
    pub remote_syslog: Option<String>,
    /// Enable debugging output
    #[arg(short = 'D', long = "debug", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub debug: Option<bool>,
    /// Trace the raw protocol
    #[arg(short = 'V', long = "trace", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub trace: Option<bool>,
    /// Verbose trace (traces system account as well)
    #[arg(long = "VV", action = ArgAction::SetTrue)]
    pub trace_verbose: bool,
    /// Debug and trace
    #[arg(long = "DV", action = ArgAction::SetTrue)]
    pub debug_trace: bool,
    /// Debug and verbose trace
    #[arg(long = "DVV", action = ArgAction::SetTrue)]
    pub debug_trace_verbose: bool,
    /// Logfile size limit
    #[arg(long = "log_size_limit", value_name = "limit")]
    pub log_size_limit: Option<String>,
    /// Log JSON lines instead of text (rnats)
    #[arg(long = "log_json", action = ArgAction::SetTrue)]
    pub log_json: bool,
    /// Maximum printable length for traced messages
    #[arg(long = "max_traced_msg_len", value_name = "len")]
    pub max_traced_msg_len: Option<i64>,

    // --- JetStream options ---
    /// Enable JetStream functionality
    #[arg(long = "js", visible_aliases = ["jetstream"], num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub jetstream: Option<bool>,
    /// Set the storage directory
    #[arg(long = "sd", visible_aliases = ["store_dir"], value_name = "dir")]
    pub store_dir: Option<PathBuf>,

    // --- Authorization options ---
    /// User required for connections
    #[arg(long = "user", value_name = "user")]
    pub user: Option<String>,
    /// Password required for connections
    #[arg(long = "pass", value_name = "password")]
    pub pass: Option<String>,
    /// Authorization token required for connections
    #[arg(long = "auth", value_name = "token")]
    pub auth: Option<String>,

    // --- TLS options ---
    /// Enable TLS, do not verify clients
    #[arg(long = "tls", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// Server certificate file
    #[arg(long = "tlscert", value_name = "file")]
    pub tlscert: Option<PathBuf>,
    /// Private key for server certificate
    #[arg(long = "tlskey", value_name = "file")]
    pub tlskey: Option<PathBuf>,
    /// Enable TLS, verify client certificates
    #[arg(long = "tlsverify", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tlsverify: Option<bool>,
    /// Client certificate CA for verification
    #[arg(long = "tlscacert", value_name = "file")]
    pub tlscacert: Option<PathBuf>,

    // --- Cluster options ---
    /// Routes to solicit and connect
    #[arg(long = "routes", value_name = "rurl-1, rurl-2")]
    pub routes: Option<String>,
    /// Cluster URL for solicited routes
    #[arg(long = "cluster", value_name = "cluster-url")]
    pub cluster: Option<String>,
    /// Cluster Name
    #[arg(long = "cluster_name", value_name = "string")]
    pub cluster_name: Option<String>,
    /// Do not advertise known cluster information to clients
    #[arg(long = "no_advertise", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_advertise: Option<bool>,
    /// Cluster URL to advertise to other servers
    #[arg(long = "cluster_advertise", value_name = "string")]
    pub cluster_advertise: Option<String>,
    /// For implicit routes, number of connect retries
    #[arg(long = "connect_retries", value_name = "number")]
    pub connect_retries: Option<i64>,
    /// Cluster url from which members can solicit routes
    #[arg(long = "cluster_listen", value_name = "url")]
    pub cluster_listen: Option<String>,

    // --- Profiling / common ---
    /// Profiling HTTP port (accepted, not implemented)
    #[arg(long = "profile", value_name = "port")]
    pub profile: Option<i32>,
    /// Show this message
    #[arg(short = 'h', long = "help", action = ArgAction::SetTrue)]
    pub help: bool,
    /// Show version
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,
    /// TLS help
    #[arg(long = "help_tls", action = ArgAction::SetTrue)]
    pub help_tls: bool,
}

/// Rewrites Go-style flags (`-port`, `-js`, `-sd=dir`) into the `--long` form
/// clap expects, leaving one-letter flags and flag values untouched.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let cmd = Flags::command();
    // The long name of a value-taking flag called `name` (long, alias or short).
    let value_flag = |name: &str| -> Option<String> {
        cmd.get_arguments()
            .find(|a| {
                a.get_long() == Some(name)
                    || a.get_short()
                        .is_some_and(|s| name.len() == 1 && name.starts_with(s))
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })
            .filter(|a| matches!(a.get_action(), ArgAction::Set) && !a.is_require_equals_set())
            .and_then(|a| a.get_long().map(str::to_string))
    };
    let mut out = Vec::new();
    // A value-taking flag waiting for its value: Go's flag package takes the
    // next argument whatever it looks like (`--pass -secret`, `-p -1`).
    let mut pending: Option<String> = None;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 {
            out.push(arg);
            continue;
        }
        if let Some(long) = pending.take() {
            let mut joined = OsString::from(format!("--{long}="));
            joined.push(&arg);
            out.push(joined);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        let body = match s.strip_prefix("--").or_else(|| s.strip_prefix('-')) {
            Some(b) if !b.is_empty() => b,
            _ => {
                out.push(arg);
                continue;
            }
        };
        let name = body.split('=').next().unwrap_or(body);
        if !body.contains('=') {
            if let Some(long) = value_flag(name) {
                pending = Some(long);
                continue;
            }
        }
        if name.len() >= 2 {
            out.push(format!("--{body}").into());
        } else {
            out.push(format!("-{body}").into());
        }
    }
    if let Some(long) = pending {
        // A trailing flag with no value: let clap report it.
        out.push(format!("--{long}").into());
    }
    out
}

/// What the command line asked for.
pub enum Invocation {
    Run(Box<Flags>),
    Help(String),
    Version,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, clap::Error> {
    let mut cmd = Flags::command();
    let matches = cmd.try_get_matches_from_mut(normalize(args))?;
    let flags = Flags::from_arg_matches(&matches)?;
    if flags.help || flags.help_tls {
        return Ok(Invocation::Help(cmd.render_help().to_string()));
    }
    if flags.version {
        return Ok(Invocation::Version);
    }
    Ok(Invocation::Run(Box::new(flags)))
}

impl Flags {
    /// Applies the flags over `opts` (which already holds the config file).
    pub fn apply(&self, opts: &mut Options) -> Result<(), String> {
        if let Some(a) = &self.addr {
            opts.host = a.clone();
        }
        if let Some(p) = self.port {
            set_port(p, &mut opts.port, &mut opts.random_port, "port")?;
        }
        if let Some(n) = &self.name {
            opts.server_name = Some(n.clone());
        }
        if let Some(p) = &self.pid {
            opts.pid_file = Some(p.clone());
        }
        if let Some(p) = self.http_port {
            let mut random = false;
            let mut port = 0;
            set_port(p, &mut port, &mut random, "http_port")?;
            opts.http_port = Some(port);
        }
        if let Some(a) = &self.client_advertise {
            opts.client_advertise = Some(a.clone());
        }
        if let Some(d) = &self.ports_file_dir {
            opts.ports_file_dir = Some(d.clone());
        }
        if let Some(l) = &self.log {
            opts.log_file = Some(l.clone());
        }
        if let Some(t) = self.logtime {
            opts.logtime = t;
        }
        if let Some(u) = self.logtime_utc {
            opts.logtime_utc = u;
        }
        if let Some(l) = &self.log_size_limit {
            opts.log_size_limit = l
                .trim()
                .parse()
                .map_err(|_| format!("invalid value {l:?} for flag -log_size_limit"))?;
        }
        if self.log_json {
            opts.log_json = true;
        }
        if let Some(d) = self.debug {
            opts.debug = d;
        }
        if let Some(t) = self.trace {
            opts.trace = t;
        }
        if self.trace_verbose {
            opts.trace = true;
        }
        if self.debug_trace || self.debug_trace_verbose {
            opts.debug = true;
            opts.trace = true;
        }
        if let Some(js) = self.jetstream {
            opts.jetstream = js;
        }
        if let Some(sd) = &self.store_dir {
            opts.store_dir = Some(sd.clone());
        }
        if let Some(u) = &self.user {
            opts.auth.username = Some(u.clone());
        }
        if let Some(p) = &self.pass {
            opts.auth.password = Some(p.clone());
        }
        if let Some(t) = &self.auth {
            opts.auth.token = Some(t.clone());
        }
        self.apply_cluster(opts)?;
        self.apply_tls(opts)?;
        Ok(())
    }

    /// The cluster flags over the config file's `cluster {}` (nats-server's
    /// `overrideCluster` and `MergeOptions`); any of them makes a
    /// [`ClusterOptions`] when the file had none, but only a listen URL
    /// (`--cluster`/`--cluster_listen`) or the file's port enables routing.
    fn apply_cluster(&self, opts: &mut Options) -> Result<(), String> {
        // Both flags set the same value in nats-server.
        let listen = self.cluster_listen.as_ref().or(self.cluster.as_ref());
        let given = listen.is_some()
            || self.routes.is_some()
            || self.cluster_name.is_some()
            || self.cluster_advertise.is_some()
            || self.no_advertise.is_some()
            || self.connect_retries.is_some();
        if !given {
            return Ok(());
        }
        let had_port = opts.cluster.as_ref().is_some_and(|c| c.enabled);
        let c = opts.cluster.get_or_insert_with(|| ClusterOptions {
            enabled: false,
            ..Default::default()
        });
        if let Some(l) = listen {
            override_cluster(l, c)?;
        }
        if let Some(n) = &self.cluster_name {
            if n.contains(' ') {
                return Err(rnats_core::config::cluster::ERR_CLUSTER_NAME_HAS_SPACES.into());
            }
            c.name = (!n.is_empty()).then(|| n.clone());
        }
        if let Some(a) = &self.cluster_advertise {
            c.advertise = (!a.is_empty()).then(|| a.clone());
        }
        if let Some(b) = self.no_advertise {
            c.no_advertise = b;
        }
        if let Some(n) = self.connect_retries {
            c.connect_retries = u32::try_from(n)
                .map_err(|_| format!("invalid value \"{n}\" for flag -connect_retries"))?;
        }
        if let Some(r) = &self.routes {
            // nats-server's RoutesFromStr: comma separated, trimmed.
            let mut routes = Vec::new();
            for u in r.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                rnats_core::config::cluster::parse_url(u)
                    .map_err(|_| format!("error parsing route url [{u:?}]"))?;
                routes.push(u.to_string());
            }
            if !routes.is_empty() && listen.is_none_or(|l| l.is_empty()) && !had_port {
                return Err("solicited routes require cluster capabilities, e.g. --cluster".into());
            }
            c.routes = routes;
        }
        Ok(())
    }

    /// nats-server's `overrideTLS`: any `--tls*` flag replaces the config
    /// file's `tls {}` with one built from the flags alone; `--tls=false`
    /// turns TLS off.
    fn apply_tls(&self, opts: &mut Options) -> Result<(), String> {
        if self.tls == Some(false) {
            opts.tls = None;
            return Ok(());
        }
        let given = self.tls.is_some()
            || self.tlscert.is_some()
            || self.tlskey.is_some()
            || self.tlsverify.is_some()
            || self.tlscacert.is_some();
        if !given {
            return Ok(());
        }
        let t = crate::options::TlsOptions {
            cert_file: Some(
                self.tlscert
                    .clone()
                    .ok_or("TLS Server certificate must be present and valid")?,
            ),
            key_file: Some(
                self.tlskey
                    .clone()
                    .ok_or("TLS Server private key must be present and valid")?,
            ),
            ca_file: self.tlscacert.clone(),
            verify: self.tlsverify == Some(true),
            ..Default::default()
        };
        crate::tls::server_config(&t)?;
        opts.tls = Some(t);
        Ok(())
    }

    /// Flags that are accepted for compatibility but do nothing yet; the
    /// server warns about each one that was given.
    pub fn unimplemented(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let given = [
            (self.https_port.is_some(), "https_port"),
            (self.syslog == Some(true), "syslog"),
            (self.remote_syslog.is_some(), "remote_syslog"),
            (self.profile.is_some(), "profile"),
        ];
        for (set, name) in given {
            if set {
                v.push(name);
            }
        }
        v
    }
}

/// nats-server's `overrideCluster`: `--cluster nats://[user:pass@]host:port`
/// sets the listen address (port `-1`: random; port 0 or an empty URL:
/// no clustering) and the routes' credentials, which it clears when the URL
/// has none.
fn override_cluster(url: &str, c: &mut ClusterOptions) -> Result<(), String> {
    if url.is_empty() {
        c.enabled = false;
        return Ok(());
    }
    // `-1` is not a valid URL port: parse with 0 and remember.
    let (url, random) = match url.strip_suffix(":-1") {
        Some(head) => (format!("{head}:0"), true),
        None => (url.to_string(), false),
    };
    let u =
        rnats_core::config::cluster::parse_url(&url).map_err(|e| format!("parse {url:?}: {e}"))?;
    let (host, port) = rnats_core::config::cluster::split_host_port(&u.host)?;
    let port: u16 = if random {
        0
    } else {
        port.parse()
            .map_err(|_| format!("invalid cluster port {port:?} in {url:?}"))?
    };
    c.host = if host.is_empty() {
        "0.0.0.0".into()
    } else {
        host.to_string()
    };
    c.port = port;
    c.enabled = port != 0 || random;
    match u.user {
        Some((user, Some(pass))) => {
            c.username = Some(user);
            c.password = Some(pass);
        }
        Some((_, None)) => return Err("expected cluster password to be set".into()),
        None => {
            c.username = None;
            c.password = None;
        }
    }
    Ok(())
}

fn set_port(p: i32, port: &mut u16, random: &mut bool, what: &str) -> Result<(), String> {
    match p {
        -1 => {
            *port = 0;
            *random = true;
        }
        0..=65535 => *port = p as u16,
        _ => return Err(format!("invalid {what}: {p}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Flags {
        let mut v = vec!["rnats-server"];
        v.extend_from_slice(args);
        match parse(v.into_iter().map(OsString::from)).unwrap() {
            Invocation::Run(f) => *f,
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn go_style_flags() {
        let f = run(&[
            "-port",
            "4333",
            "-js",
            "-sd=/tmp/x",
            "-DV",
            "-a",
            "127.0.0.1",
        ]);
        assert_eq!(f.port, Some(4333));
        assert_eq!(f.jetstream, Some(true));
        assert_eq!(f.store_dir, Some(PathBuf::from("/tmp/x")));
        assert!(f.debug_trace);
        assert_eq!(f.addr.as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn double_dash_and_negative_port() {
        let f = run(&[
            "--port",
            "-1",
            "--jetstream",
            "--store_dir",
            "/d",
            "--user",
            "-u-",
            "--pass=p",
        ]);
        assert_eq!(f.port, Some(-1));
        assert_eq!(f.jetstream, Some(true));
        assert_eq!(f.store_dir, Some(PathBuf::from("/d")));
        assert_eq!(f.user.as_deref(), Some("-u-"));
        assert_eq!(f.pass.as_deref(), Some("p"));
        let mut o = Options::default();
        f.apply(&mut o).unwrap();
        assert!(o.random_port);
    }

    #[test]
    fn booleans_take_equals_false() {
        let f = run(&["-D=false", "-T=false", "-V", "-js=false"]);
        assert_eq!(f.debug, Some(false));
        assert_eq!(f.logtime, Some(false));
        assert_eq!(f.trace, Some(true));
        assert_eq!(f.jetstream, Some(false));
    }

    #[test]
    fn aliases_and_signal() {
        let f = run(&[
            "--net",
            "0.0.0.0",
            "--server_name",
            "s1",
            "--signal",
            "ldm=123",
            "-m",
            "8222",
            "-c",
            "x.conf",
        ]);
        assert_eq!(f.addr.as_deref(), Some("0.0.0.0"));
        assert_eq!(f.name.as_deref(), Some("s1"));
        assert_eq!(f.signal.as_deref(), Some("ldm=123"));
        assert_eq!(f.http_port, Some(8222));
        assert_eq!(f.config, Some(PathBuf::from("x.conf")));
        let f = run(&[
            "-sl",
            "reload",
            "-n",
            "x",
            "--cluster_name",
            "c",
            "--routes",
            "nats://a:1,nats://b:2",
            "--cluster",
            "nats://127.0.0.1:6222",
        ]);
        assert_eq!(f.signal.as_deref(), Some("reload"));
        let mut o = Options::default();
        f.apply(&mut o).unwrap();
        let c = o.cluster.unwrap();
        assert_eq!(c.routes, vec!["nats://a:1", "nats://b:2"]);
        assert_eq!(o.server_name.as_deref(), Some("x"));
    }

    fn cluster_of(args: &[&str], file: Option<&str>) -> Result<Option<ClusterOptions>, String> {
        let mut o = Options::default();
        if let Some(text) = file {
            let map = rnats_conf::parse_str(text).unwrap();
            crate::config::apply(&map, &mut o).unwrap();
        }
        run(args).apply(&mut o)?;
        Ok(o.cluster)
    }

    #[test]
    fn cluster_flags() {
        let c = cluster_of(
            &[
                "--cluster",
                "nats://ruser:rpass@127.0.0.1:6222",
                "--cluster_name",
                "c1",
                "--routes",
                "nats-route://127.0.0.1:6223, nats://u:p@127.0.0.1:6224",
                "--cluster_advertise",
                "10.0.0.1:6222",
                "--no_advertise",
                "--connect_retries",
                "7",
                "-n",
                "s1",
            ],
            None,
        )
        .unwrap()
        .unwrap();
        assert!(c.enabled);
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 6222));
        assert_eq!(c.username.as_deref(), Some("ruser"));
        assert_eq!(c.password.as_deref(), Some("rpass"));
        assert_eq!(c.name.as_deref(), Some("c1"));
        assert_eq!(
            c.routes,
            vec!["nats-route://127.0.0.1:6223", "nats://u:p@127.0.0.1:6224"]
        );
        assert_eq!(c.advertise.as_deref(), Some("10.0.0.1:6222"));
        assert!(c.no_advertise);
        assert_eq!(c.connect_retries, 7);
        // Go-style single dash, `--cluster_listen`, random port.
        let c = cluster_of(&["-cluster_listen", "nats://127.0.0.1:-1"], None)
            .unwrap()
            .unwrap();
        assert_eq!((c.host.as_str(), c.port, c.enabled), ("127.0.0.1", 0, true));
        let c = cluster_of(&["-cluster", "nats://:6333"], None)
            .unwrap()
            .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 6333));
        // No flags, no file: no cluster.
        assert_eq!(cluster_of(&[], None).unwrap(), None);
        // A name alone names the cluster but does not cluster (as nats-server).
        let c = cluster_of(&["--cluster_name", "c2"], None)
            .unwrap()
            .unwrap();
        assert_eq!((c.name.as_deref(), c.enabled), (Some("c2"), false));
    }

    #[test]
    fn cluster_flags_override_the_file() {
        let file = "cluster { name: f, listen: \"127.0.0.1:7000\", routes: [\"nats://x:1\"], authorization { user: a, password: b }, pool_size: 5 }";
        // Without credentials in the URL the file's are cleared (nats-server).
        let c = cluster_of(
            &["--cluster", "nats://0.0.0.0:7001", "--cluster_name", "g"],
            Some(file),
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 7001));
        assert_eq!((c.username, c.password), (None, None));
        assert_eq!(c.name.as_deref(), Some("g"));
        assert_eq!(c.routes, vec!["nats://x:1"]);
        assert_eq!(c.pool_size, 5);
        // --routes replaces the file's routes; the file's port is enough.
        let c = cluster_of(&["--routes", "nats://y:2"], Some(file))
            .unwrap()
            .unwrap();
        assert_eq!(c.routes, vec!["nats://y:2"]);
        assert_eq!((c.port, c.username.as_deref()), (7000, Some("a")));
        // An empty --cluster turns clustering off.
        let c = cluster_of(&["--cluster", ""], Some(file)).unwrap().unwrap();
        assert!(!c.enabled);
        // Flags that only set values keep the file's listen address.
        let c = cluster_of(
            &["--no_advertise=false", "--connect_retries", "2"],
            Some(file),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.port, c.connect_retries, c.no_advertise),
            (7000, 2, false)
        );
    }

    #[test]
    fn cluster_flag_errors() {
        let err = |args: &[&str]| cluster_of(args, None).unwrap_err();
        assert_eq!(
            err(&["--routes", "nats://a:1"]),
            "solicited routes require cluster capabilities, e.g. --cluster"
        );
        // A file cluster without a port does not count either.
        assert!(cluster_of(&["--routes", "nats://a:1"], Some("cluster { name: x }")).is_err());
        assert_eq!(
            err(&["--cluster", "nats://u@127.0.0.1:6222"]),
            "expected cluster password to be set"
        );
        assert!(err(&["--cluster", "nats://127.0.0.1"]).contains("missing port in address"));
        assert!(err(&["--cluster", "127.0.0.1:6222"])
            .contains("first path segment in URL cannot contain colon"));
        assert!(
            err(&["--cluster", "nats://h:6222", "--routes", "nats://a b:1"])
                .contains("error parsing route url")
        );
        assert_eq!(
            err(&["--cluster_name", "a b"]),
            "cluster name cannot contain spaces"
        );
        assert!(err(&["--cluster", "nats://h:1", "--connect_retries", "-1"])
            .contains("connect_retries"));
    }

    #[test]
    fn unknown_flags_are_errors() {
        let v = ["rnats-server", "-bogus"].into_iter().map(OsString::from);
        assert!(parse(v).is_err());
        let v = ["rnats-server", "-version"].into_iter().map(OsString::from);
        assert!(matches!(parse(v), Ok(Invocation::Version)));
        let v = ["rnats-server", "-h"].into_iter().map(OsString::from);
        assert!(matches!(parse(v), Ok(Invocation::Help(_))));
    }
}
