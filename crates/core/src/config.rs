//! From a parsed config file (`rnats_conf`) to [`Options`], with nats-server's
//! key names and aliases. Keys rnats knows but does not implement yet are
//! warned about by name; keys nats-server does not know either are errors
//! (`file:line:col: unknown field "x"`), as in nats-server.

use std::path::Path;

use rnats_conf::{ConfError, Map, Spanned};

use crate::options::{Options, TlsOptions, WebsocketOptions};

pub mod cluster;
pub mod gateway;
pub mod leafnode;

/// Validates a `websocket {}` block beyond its syntax (TLS files, origins);
/// the WebSocket feature registers it with [`set_websocket_check`] so a bad
/// block is reported at its position in the file, as nats-server does.
pub type WebsocketCheck = fn(&WebsocketOptions) -> Result<(), String>;

static WEBSOCKET_CHECK: std::sync::OnceLock<WebsocketCheck> = std::sync::OnceLock::new();

/// Installs the `websocket {}` validator (once per process).
pub fn set_websocket_check(check: WebsocketCheck) {
    let _ = WEBSOCKET_CHECK.set(check);
}

/// What loading a config file found besides the options themselves.
#[derive(Debug, Default)]
pub struct Report {
    /// `file:line:col: ...` lines for options accepted but not implemented.
    pub unimplemented: Vec<String>,
    /// `file:line:col: unknown field "x"` lines.
    pub unknown: Vec<String>,
    /// `file:line:col: ...` lines for what nats-server accepts with a
    /// warning (a duplicate route, a route `ping_interval` above 30s...);
    /// like nats-server, `-t` fails on them.
    pub warnings: Vec<String>,
}

/// Top-level blocks and keys rnats accepts without acting on them yet.
const NOT_YET: &[&str] = &[
    "mqtt",
    "https",
    "https_port",
    "server_tags",
    "syslog",
    "remote_syslog",
    "connect_error_reports",
    "reconnect_error_reports",
    "max_traced_msg_len",
    "no_sys_acc",
    "disable_sublist_cache",
    "no_sublist_cache",
    "default_sentinel",
    "feature_flags",
    "http_base_path",
    "max_closed_clients",
    "max_sub_tokens",
    "max_subscription_tokens",
    "no_fast_producer_stall",
    "no_header_support",
    "no_system",
    "no_system_account",
    "ocsp",
    "ocsp_cache",
    "prof_block_rate",
    "prof_port",
    "proxies",
    "proxy_protocol",
    "resolver_pinned_accounts",
    "resolver_tls",
    "server_metadata",
    "trace_headers",
    "write_timeout",
    "default_js_domain",
];

pub fn load(path: &Path, opts: &mut Options) -> Result<Report, ConfError> {
    let map = rnats_conf::parse_file(path)?;
    opts.config_file = Some(path.to_path_buf());
    apply(&map, opts)
}

fn size(v: &Spanned) -> Result<usize, ConfError> {
    let n = v.as_size()?;
    usize::try_from(n).map_err(|_| v.invalid(format!("expected a non-negative size, got {n}")))
}

fn port(v: &Spanned) -> Result<PortSpec, ConfError> {
    match v.as_int()? {
        -1 => Ok((0, true)),
        p @ 0..=65535 => Ok((p as u16, false)),
        p => Err(v.invalid(format!("invalid port {p}"))),
    }
}

/// A port as configured: the number, and whether `-1` asked for a random one.
type PortSpec = (u16, bool);

/// `host:port` (or a bare port) as used by `listen` and `http`.
fn host_port(v: &Spanned) -> Result<(Option<String>, Option<PortSpec>), ConfError> {
    if let Ok(p) = v.as_int() {
        let p = port(v).map_err(|_| v.invalid(format!("invalid port {p}")))?;
        return Ok((None, Some(p)));
    }
    let s = v.as_str()?;
    let (h, p) = s
        .rsplit_once(':')
        .ok_or_else(|| v.invalid(format!("could not parse address string {s:?}")))?;
    let p: i64 = p
        .parse()
        .map_err(|_| v.invalid(format!("could not parse port {p:?}")))?;
    let p = match p {
        -1 => (0, true),
        0..=65535 => (p as u16, false),
        _ => return Err(v.invalid(format!("invalid port {p}"))),
    };
    let h = h.trim_start_matches('[').trim_end_matches(']');
    Ok(((!h.is_empty()).then(|| h.to_string()), Some(p)))
}

pub fn apply(map: &Map, opts: &mut Options) -> Result<Report, ConfError> {
    let mut report = Report::default();
    for (key, entry) in map.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "listen" => {
                let (h, p) = host_port(v)?;
                if let Some(h) = h {
                    opts.host = h;
                }
                if let Some((p, r)) = p {
                    opts.port = p;
                    opts.random_port = r;
                }
            }
            "host" | "net" => opts.host = v.as_str()?.to_string(),
            "port" => (opts.port, opts.random_port) = port(v)?,
            "server_name" => opts.server_name = Some(v.as_str()?.to_string()),
            "client_advertise" => opts.client_advertise = Some(v.as_str()?.to_string()),
            "http" => {
                let (h, p) = host_port(v)?;
                if let Some(h) = h {
                    opts.http_host = h;
                }
                opts.http_port = p.map(|(p, _)| p);
            }
            "http_port" | "monitor_port" => opts.http_port = Some(port(v)?.0),
            "max_payload" => opts.max_payload = size(v)?,
            "max_pending" => opts.max_pending = size(v)?,
            "max_control_line" => opts.max_control_line = size(v)?,
            "max_connections" | "max_conn" => opts.max_connections = size(v)?,
            "max_subscriptions" | "max_subs" => opts.max_subscriptions = size(v)?,
            "ping_interval" => opts.ping_interval = v.as_duration()?,
            "ping_max" => {
                opts.ping_max =
                    u32::try_from(v.as_int()?).map_err(|_| v.invalid("invalid ping_max"))?
            }
            "write_deadline" => opts.write_deadline = v.as_duration()?,
            "lame_duck_duration" => {
                let d = v.as_duration()?;
                if d < std::time::Duration::from_secs(30) {
                    return Err(v.invalid(format!(
                        "invalid lame_duck_duration of {d:?}, minimum is 30 seconds"
                    )));
                }
                opts.lame_duck_duration = d;
            }
            "lame_duck_grace_period" => opts.lame_duck_grace_period = v.as_duration()?,
            "debug" => opts.debug = v.as_bool()?,
            "trace" | "trace_verbose" => opts.trace = v.as_bool()?,
            "logtime" => opts.logtime = v.as_bool()?,
            "log_file" | "logfile" => opts.log_file = Some(v.as_str()?.into()),
            "logtime_utc" => opts.logtime_utc = v.as_bool()?,
            "logfile_size_limit" | "log_size_limit" => opts.log_size_limit = size(v)? as u64,
            "logfile_max_num" | "log_max_num" => opts.log_max_num = size(v)?,
            "log_format" => {
                opts.log_json = match v.as_str()?.to_ascii_lowercase().as_str() {
                    "json" => true,
                    "text" => false,
                    other => {
                        return Err(v.invalid(format!(
                            "invalid log_format {other:?}: expected \"text\" or \"json\""
                        )))
                    }
                }
            }
            "pid_file" | "pidfile" => opts.pid_file = Some(v.as_str()?.into()),
            "ports_file_dir" => opts.ports_file_dir = Some(v.as_str()?.into()),
            "no_auth_user" => opts.no_auth_user = Some(v.as_str()?.to_string()),
            "accounts" => {
                opts.accounts = crate::account::config::parse_accounts(v)?;
                for a in &opts.accounts {
                    opts.auth
                        .users
                        .extend(a.users.iter().cloned().map(std::sync::Arc::new));
                }
            }
            "mappings" | "maps" => opts.mappings = crate::account::mappings::parse(v)?,
            "system_account" | "system" => opts.system_account = Some(v.as_str()?.to_string()),
            "operator" | "operators" | "root" | "roots" | "root_operators" | "root_operator" => {
                let base = opts
                    .config_file
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf);
                crate::jwt::config::parse_operator(v, base.as_deref(), &mut opts.operator)?;
                opts.auth.operator_mode = true;
            }
            "trusted" | "trusted_keys" => {
                crate::jwt::config::parse_trusted_keys(v, &mut opts.operator)?;
                opts.auth.operator_mode = true;
            }
            "resolver" | "account_resolver" | "accounts_resolver" => {
                let base = opts
                    .config_file
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf);
                crate::jwt::config::parse_resolver(v, base.as_deref(), &mut opts.operator)?
            }
            "resolver_preload" => crate::jwt::config::parse_preload(v, &mut opts.operator)?,
            "authorization" => report
                .unimplemented
                .extend(crate::auth::config::apply_authorization(v, opts)?),
            "jetstream" => {
                opts.jetstream = match &v.value {
                    rnats_conf::Value::Map(js) => apply_jetstream(js, opts, &mut report)?,
                    rnats_conf::Value::String(s) => {
                        matches!(s.to_ascii_lowercase().as_str(), "enabled" | "enable")
                    }
                    _ => v.as_bool()?,
                };
            }
            "tls" => {
                let t = parse_tls(v, &mut report)?;
                crate::tls::server_config(&t).map_err(|e| v.invalid(e))?;
                opts.tls = Some(t);
            }
            "allow_non_tls" => opts.allow_non_tls = v.as_bool()?,
            "cluster" => opts.cluster = Some(cluster::parse(v, &mut report)?),
            "gateway" => opts.gateway = Some(gateway::parse(v, &mut report)?),
            "leafnodes" | "leaf" => opts.leafnode = Some(leafnode::parse(v, &mut report)?),
            "websocket" | "ws" => {
                apply_websocket(v.as_map()?, &mut opts.websocket, &mut report)?;
                if opts.websocket.enabled() {
                    if let Some(check) = WEBSOCKET_CHECK.get() {
                        check(&opts.websocket).map_err(|e| v.invalid(format!("websocket: {e}")))?;
                    }
                }
            }
            k if NOT_YET.contains(&k) => report.unimplemented.push(format!(
                "{}: option {key:?} is not implemented yet in rnats and is ignored",
                entry.key_pos
            )),
            _ if entry.used_as_variable => {}
            _ => report
                .unknown
                .push(format!("{}: unknown field {key:?}", entry.key_pos)),
        }
    }
    crate::auth::config::validate(opts, map.get("no_auth_user"))?;
    Ok(report)
}

/// The `jetstream { ... }` block; returns whether JetStream is enabled.
fn apply_jetstream(js: &Map, opts: &mut Options, report: &mut Report) -> Result<bool, ConfError> {
    let mut enabled = true;
    for (key, entry) in js.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "store_dir" | "storedir" | "store" => opts.store_dir = Some(v.as_str()?.into()),
            "max_memory_store" | "max_mem_store" | "max_mem" | "max_memory" => {
                opts.max_memory_store = Some(v.as_size()?)
            }
            "max_file_store" | "max_file" | "max_store" => opts.max_file_store = Some(v.as_size()?),
            "domain" => opts.jetstream_domain = Some(v.as_str()?.to_string()),
            "enabled" | "enable" => enabled = v.as_bool()?,
            "sync_interval" | "sync" => match v.as_str() {
                Ok(s) if s.eq_ignore_ascii_case("always") => opts.sync_always = true,
                _ => opts.sync_interval = v.as_duration()?,
            },
            _ => report.unimplemented.push(format!(
                "{}: jetstream option {key:?} is not implemented yet",
                entry.key_pos
            )),
        }
    }
    Ok(enabled)
}

/// A timeout in seconds (integer or float) or a duration string, as
/// nats-server takes `timeout` in `authorization {}` and `tls {}`.
pub(crate) fn seconds(v: &Spanned) -> Result<std::time::Duration, ConfError> {
    Ok(match &v.value {
        rnats_conf::Value::Int(n) => std::time::Duration::from_secs((*n).max(0) as u64),
        rnats_conf::Value::Float(f) => std::time::Duration::from_secs_f64(f.max(0.0)),
        _ => v.as_duration()?,
    })
}

/// A `tls {}` block (nats-server's `parseTLS`); unknown fields are errors
/// there, and so here.
pub fn parse_tls(v: &Spanned, report: &mut Report) -> Result<TlsOptions, ConfError> {
    parse_tls_in(v, report, true)
}

/// [`parse_tls`] for a client-facing block (`client_ctx`: the client port,
/// websocket) or a server-to-server one (routes), where
/// `verify_cert_and_check_known_urls` is allowed.
pub(crate) fn parse_tls_in(
    v: &Spanned,
    report: &mut Report,
    client_ctx: bool,
) -> Result<TlsOptions, ConfError> {
    let mut t = TlsOptions::default();
    for (key, entry) in v.as_map()?.iter() {
        let v = &entry.value;
        let file = |what: &str| -> Result<std::path::PathBuf, ConfError> {
            v.as_str().map(Into::into).map_err(|_| {
                v.invalid(format!(
                    "error parsing tls config, expected '{what}' to be filename"
                ))
            })
        };
        let boolean = |what: &str| -> Result<bool, ConfError> {
            v.as_bool().map_err(|_| {
                v.invalid(format!(
                    "error parsing tls config, expected '{what}' to be a boolean"
                ))
            })
        };
        match key.to_ascii_lowercase().as_str() {
            "cert_file" => t.cert_file = Some(file("cert_file")?),
            "key_file" => t.key_file = Some(file("key_file")?),
            "ca_file" => t.ca_file = Some(file("ca_file")?),
            "verify" => t.verify = boolean("verify")?,
            "verify_and_map" => {
                let b = boolean("verify_and_map")?;
                if b {
                    t.verify = true;
                }
                t.map = b;
            }
            "verify_cert_and_check_known_urls" => {
                let b = boolean("verify_cert_and_check_known_urls")?;
                if b && client_ctx {
                    return Err(v.invalid(
                        "verify_cert_and_check_known_urls not supported in this context",
                    ));
                }
                if b {
                    t.verify = true;
                    report.unimplemented.push(format!(
                        "{}: tls option {key:?}: peer certificates are verified but not checked against known URLs yet",
                        entry.key_pos
                    ));
                }
            }
            "timeout" => {
                t.timeout = seconds(v)
                    .map_err(|e| v.invalid(format!("error parsing tls config, 'timeout' {e}")))?
            }
            "handshake_first" | "first" | "immediate" => match &v.value {
                rnats_conf::Value::Bool(b) => t.handshake_first = *b,
                rnats_conf::Value::String(s) => match s.to_ascii_lowercase().as_str() {
                    "true" | "on" => t.handshake_first = true,
                    "false" | "off" => t.handshake_first = false,
                    "auto" | "auto_fallback" => {
                        t.handshake_first = true;
                        t.handshake_first_fallback = Some(std::time::Duration::from_millis(50));
                    }
                    _ => match rnats_conf::parse_duration(s) {
                        Ok(d) => {
                            t.handshake_first = true;
                            t.handshake_first_fallback = Some(d);
                        }
                        Err(_) => {
                            return Err(v.invalid(format!("field {key:?}'s value {s:?} is invalid")))
                        }
                    },
                },
                other => {
                    return Err(v.invalid(format!(
                        "field {key:?} should be a boolean or a string, got {}",
                        other.kind()
                    )))
                }
            },
            "min_version" => match v.as_str()? {
                "1.2" | "TLS12" | "tls12" => t.tls13_only = false,
                "1.3" | "TLS13" | "tls13" => t.tls13_only = true,
                "1.0" | "1.1" | "TLS10" | "TLS11" => {
                    return Err(v.invalid(format!(
                        "error parsing tls config: unsupported TLS version: {}",
                        v.as_str()?
                    )))
                }
                other => {
                    return Err(v.invalid(format!(
                        "error parsing tls config: unknown version: {other}"
                    )))
                }
            },
            "insecure"
            | "allow_insecure_cipher_suites"
            | "cipher_suites"
            | "curve_preferences"
            | "connection_rate_limit"
            | "pinned_certs"
            | "cert_store"
            | "cert_match_by"
            | "cert_match"
            | "ca_certs_match"
            | "cert_match_skip_invalid"
            | "ocsp_peer"
            | "certs"
            | "certificates" => report.unimplemented.push(format!(
                "{}: tls option {key:?} is not implemented yet in rnats and is ignored",
                entry.key_pos
            )),
            _ => return Err(v.invalid(format!("error parsing tls config, unknown field {key:?}"))),
        }
    }
    if t.map {
        report.unimplemented.push(format!(
            "{}: tls \"verify_and_map\": client certificates are verified but not mapped to users yet",
            v.pos
        ));
    }
    Ok(t)
}

/// The `websocket {}` block (nats-server's `parseWebsocket`).
fn apply_websocket(
    m: &Map,
    ws: &mut WebsocketOptions,
    report: &mut Report,
) -> Result<(), ConfError> {
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "listen" => {
                let (h, p) = host_port(v)?;
                if let Some(h) = h {
                    ws.host = Some(h);
                }
                if let Some((p, r)) = p {
                    ws.port = p;
                    ws.random_port = r;
                }
            }
            "port" => (ws.port, ws.random_port) = port(v)?,
            "host" | "net" => ws.host = Some(v.as_str()?.to_string()),
            "advertise" => ws.advertise = Some(v.as_str()?.to_string()),
            "no_tls" => ws.no_tls = v.as_bool()?,
            "tls" => ws.tls = Some(parse_tls(v, report)?),
            "same_origin" => ws.same_origin = v.as_bool()?,
            "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin" | "origins"
            | "origin" => {
                ws.allowed_origins = match &v.value {
                    rnats_conf::Value::String(s) => vec![s.clone()],
                    _ => v
                        .as_array()?
                        .iter()
                        .map(|o| o.as_str().map(str::to_string))
                        .collect::<Result<_, _>>()?,
                }
            }
            "handshake_timeout" => {
                ws.handshake_timeout = match &v.value {
                    rnats_conf::Value::Int(n) => std::time::Duration::from_secs((*n).max(0) as u64),
                    rnats_conf::Value::String(_) => v.as_duration()?,
                    other => {
                        return Err(v.invalid(format!(
                            "error parsing handshake timeout: unsupported type {}",
                            other.kind()
                        )))
                    }
                }
            }
            "compress" | "compression" => ws.compression = v.as_bool()?,
            _ => report.unimplemented.push(format!(
                "{}: websocket option {key:?} is not implemented yet in rnats and is ignored",
                entry.key_pos
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conf(text: &str) -> (Options, Report) {
        let map = rnats_conf::parse_str(text).unwrap();
        let mut o = Options::default();
        let r = apply(&map, &mut o).unwrap();
        (o, r)
    }

    #[test]
    fn core_options() {
        let (o, r) = conf(
            "listen: 127.0.0.1:4333\nmax_payload: 2MB\nmax_pending: 65536\nping_interval: \"1s\"\nping_max: 3\n\
             max_connections: 2\nmax_subscriptions: 5\nwrite_deadline: \"3s\"\nserver_name: s1\nhttp: 8222\n\
             lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\ndebug: true\nbogus: 1\nmqtt { port: 1883 }",
        );
        assert_eq!(o.host, "127.0.0.1");
        assert_eq!(o.port, 4333);
        assert_eq!(o.max_payload, 2 * 1024 * 1024);
        assert_eq!(o.max_pending, 65536);
        assert_eq!(o.ping_interval, Duration::from_secs(1));
        assert_eq!(o.ping_max, 3);
        assert_eq!(o.max_connections, 2);
        assert_eq!(o.max_subscriptions, 5);
        assert_eq!(o.write_deadline, Duration::from_secs(3));
        assert_eq!(o.server_name.as_deref(), Some("s1"));
        assert_eq!(o.http_port, Some(8222));
        assert_eq!(o.lame_duck_duration, Duration::from_secs(30));
        assert!(o.debug);
        assert_eq!(r.unknown.len(), 1, "{:?}", r.unknown);
        assert!(r.unknown[0].contains("bogus"));
        assert_eq!(r.unimplemented.len(), 1);
    }

    #[test]
    fn auth_and_jetstream() {
        let (o, _) = conf(
            "authorization { user: a, password: b, timeout: 3 }\njetstream { store_dir: /tmp/js }",
        );
        assert_eq!(o.auth.username.as_deref(), Some("a"));
        assert_eq!(o.auth.password.as_deref(), Some("b"));
        assert_eq!(o.auth_timeout, Duration::from_secs(3));
        assert!(o.jetstream);
        assert_eq!(o.store_dir.as_deref(), Some(Path::new("/tmp/js")));
        let (o, _) = conf("jetstream { store_dir: /x, max_memory_store: 1G, max_file_store: 10GB, domain: hub, sync_interval: always }");
        assert_eq!(o.max_memory_store, Some(1_000_000_000));
        assert_eq!(o.max_file_store, Some(10 * 1024 * 1024 * 1024));
        assert_eq!(o.jetstream_domain.as_deref(), Some("hub"));
        assert!(o.sync_always && o.jetstream);
        let (o, _) = conf("authorization { token: s3cr3t }\njetstream: enabled");
        assert_eq!(o.auth.token.as_deref(), Some("s3cr3t"));
        assert!(o.jetstream);
    }

    #[test]
    fn bad_values_name_their_position() {
        let map = rnats_conf::parse_str("port: 99999").unwrap();
        let err = apply(&map, &mut Options::default()).unwrap_err();
        assert!(err.to_string().contains("1:"), "{err}");
        let map = rnats_conf::parse_str("lame_duck_duration: \"3s\"").unwrap();
        assert!(apply(&map, &mut Options::default()).is_err());
    }
}
