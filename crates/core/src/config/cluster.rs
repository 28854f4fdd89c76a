//! The `cluster {}` block (nats-server's opts.go `parseCluster`), and the URL
//! checks its `routes` and the `--cluster`/`--routes` flags share: Go's
//! `url.Parse` and `net.SplitHostPort`, so that rnats accepts and refuses the
//! same URLs with the same words.

use std::time::Duration;

use rnats_conf::{ConfError, Spanned, Value};

use super::{parse_tls_in, port, seconds, Report};
use crate::auth::SubjectPermission;
use crate::options::ClusterOptions;

/// nats-server resets a route `ping_interval` above this (`routeMaxPingInterval`).
pub const ROUTE_MAX_PING_INTERVAL: Duration = Duration::from_secs(30);

/// nats-server's `ErrClusterNameHasSpaces` (2.15 checks spaces only).
pub const ERR_CLUSTER_NAME_HAS_SPACES: &str = "cluster name cannot contain spaces";

/// Parses a `cluster {}` block into a fresh [`ClusterOptions`].
pub fn parse(v: &Spanned, report: &mut Report) -> Result<ClusterOptions, ConfError> {
    let Value::Map(m) = &v.value else {
        return Err(v.invalid(format!(
            "Expected map to define cluster, got {}",
            v.value.kind()
        )));
    };
    let mut c = ClusterOptions {
        enabled: false,
        ..Default::default()
    };
    let mut auth_timeout_set = false;
    // `permissions` in the block win over the deprecated ones inside
    // `authorization` (nats-server: "Do not set permissions if they were
    // specified in top-level cluster block").
    let mut top_perms = false;
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "name" => {
                let n = v.as_str()?;
                if n.contains(' ') {
                    return Err(v.invalid(ERR_CLUSTER_NAME_HAS_SPACES));
                }
                c.name = Some(n.to_string());
            }
            "listen" => {
                let (host, (p, random)) = listen(v)?;
                set_host(&mut c, host);
                c.port = p;
                c.enabled = p != 0 || random;
            }
            "port" => {
                let (p, random) = port(v)?;
                c.port = p;
                c.enabled = p != 0 || random;
            }
            "host" | "net" => set_host(&mut c, v.as_str()?.to_string()),
            "authorization" => {
                let a = authorization(v, report)?;
                c.username = a.user;
                c.password = a.pass;
                if let Some(t) = a.timeout {
                    c.auth_timeout = t;
                    auth_timeout_set = true;
                }
                if let Some((import, export)) = a.perms {
                    report.warnings.push(format!(
                        "{}: invalid use of field {key:?}: setting \"permissions\" within cluster authorization block is deprecated",
                        entry.key_pos
                    ));
                    if !top_perms {
                        (c.import, c.export) = (import, export);
                    }
                }
            }
            "routes" => c.routes = routes(v, report)?,
            "tls" => {
                let t = parse_tls_in(v, report, false)?;
                crate::tls::server_config(&t).map_err(|e| v.invalid(e))?;
                c.tls = Some(t);
            }
            "cluster_advertise" | "advertise" => c.advertise = Some(v.as_str()?.to_string()),
            "no_advertise" => c.no_advertise = v.as_bool()?,
            "connect_retries" => {
                c.connect_retries =
                    u32::try_from(v.as_int()?).map_err(|_| v.invalid("invalid connect_retries"))?
            }
            "connect_backoff" => c.connect_backoff = v.as_bool()?,
            "permissions" => {
                (c.import, c.export) = permissions(v)?;
                top_perms = true;
            }
            "pool_size" => {
                c.pool_size =
                    i32::try_from(v.as_int()?).map_err(|_| v.invalid("invalid pool_size"))?
            }
            "accounts" => c.pinned_accounts = string_array("accounts", v)?,
            "compression" => c.compression = Some(compression(key, v)?),
            "ping_interval" => {
                if let Value::Int(_) = v.value {
                    report.warnings.push(format!(
                        "{}: invalid use of field \"ping_interval\": ping_interval should be converted to a duration",
                        v.pos
                    ));
                }
                let d = v.as_duration()?;
                if d > ROUTE_MAX_PING_INTERVAL {
                    report.warnings.push(format!(
                        "{}: Cluster 'ping_interval' will reset to 30s which is the max for routes",
                        v.pos
                    ));
                }
                c.ping_interval = Some(d);
            }
            "ping_max" => {
                c.ping_max =
                    Some(u32::try_from(v.as_int()?).map_err(|_| v.invalid("invalid ping_max"))?)
            }
            "write_deadline" => c.write_deadline = Some(v.as_duration()?),
            "write_timeout" => {
                match v.as_str()? {
                    "default" | "close" | "retry" => {}
                    _ => {
                        return Err(v.invalid("write_timeout must be 'default', 'close' or 'retry'"))
                    }
                }
                report.unimplemented.push(format!(
                    "{}: cluster option \"write_timeout\" is not implemented yet in rnats and is ignored",
                    entry.key_pos
                ));
            }
            _ if entry.used_as_variable => {}
            _ => report
                .unknown
                .push(format!("{}: unknown field {key:?}", entry.key_pos)),
        }
    }
    // nats-server's getDefaultAuthTimeout: with TLS, the handshake timeout
    // plus a second.
    if let (false, Some(t)) = (auth_timeout_set, &c.tls) {
        c.auth_timeout = t.timeout + Duration::from_secs(1);
    }
    Ok(c)
}

/// An empty host means all interfaces (nats-server's `DEFAULT_HOST`).
fn set_host(c: &mut ClusterOptions, host: String) {
    c.host = if host.is_empty() {
        "0.0.0.0".into()
    } else {
        host
    };
}

/// `listen`: a port, or `host:port` (nats-server's `parseListen`). Returns
/// the host (possibly empty) and the port as [`port`] does.
pub(super) fn listen(v: &Spanned) -> Result<(String, (u16, bool)), ConfError> {
    match &v.value {
        Value::Int(_) => Ok((String::new(), port(v)?)),
        Value::String(s) => {
            let (h, p) = split_host_port(s)
                .map_err(|_| v.invalid(format!("could not parse address string {s:?}")))?;
            let n: i64 =
                go_atoi(p).ok_or_else(|| v.invalid(format!("could not parse port {p:?}")))?;
            let p = match n {
                -1 => (0, true),
                0..=65535 => (n as u16, false),
                _ => return Err(v.invalid(format!("invalid port {n}"))),
            };
            Ok((h.to_string(), p))
        }
        other => Err(v.invalid(format!("expected port or host:port, got {}", other.kind()))),
    }
}

/// Go's `strconv.Atoi`: optional sign, ASCII digits.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What a cluster `authorization {}` block may hold: one user, no token, no
/// users list, no callout.
struct ClusterAuth {
    user: Option<String>,
    pass: Option<String>,
    timeout: Option<Duration>,
    perms: Option<RoutePerms>,
}

type RoutePerms = (Option<SubjectPermission>, Option<SubjectPermission>);

fn authorization(block: &Spanned, report: &mut Report) -> Result<ClusterAuth, ConfError> {
    let mut a = ClusterAuth {
        user: None,
        pass: None,
        timeout: None,
        perms: None,
    };
    let m = block.as_map()?;
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "user" | "username" => a.user = Some(v.as_str()?.to_string()),
            "pass" | "password" => a.pass = Some(v.as_str()?.to_string()),
            "token" => {
                v.as_str()?;
                return Err(block.invalid("Cluster authorization does not support tokens"));
            }
            "users" => {
                return Err(block.invalid("Cluster authorization does not allow multiple users"))
            }
            "auth_callout" | "auth_hook" => {
                return Err(block.invalid("Cluster authorization does not support callouts"))
            }
            "timeout" => {
                let t = seconds(v).map_err(|e| {
                    v.invalid(format!("error parsing authorization config, 'timeout' {e}"))
                })?;
                if t > Duration::from_secs(60) {
                    report.warnings.push(format!(
                        "{}: invalid use of field \"timeout\": timeout of {t:?} is high, consider keeping it under 60 seconds. possibly caused by unquoted duration; use '1m' instead of 1m, for example",
                        v.pos
                    ));
                }
                a.timeout = Some(t);
            }
            "default_permission" | "default_permissions" | "permissions" => {
                a.perms = Some(permissions(v)?)
            }
            "proxy_required" => {
                v.as_bool()?;
            }
            _ if entry.used_as_variable => {}
            _ => report
                .unknown
                .push(format!("{}: unknown field {key:?}", entry.key_pos)),
        }
    }
    Ok(a)
}

/// `permissions { import, export }` (also `publish`/`subscribe`): import
/// is what this server asks its peers for, export what it lets them ask for.
fn permissions(v: &Spanned) -> Result<RoutePerms, ConfError> {
    let p = crate::auth::config::parse_permissions(v)?;
    if p.response.is_some() {
        return Err(v.invalid("Cluster permissions do not support dynamic responses"));
    }
    // Queue-qualified subjects are valid user subscribe permissions, not
    // route ones (nats-server's checkClusterPermissionSubjects).
    let check = |what: &str, p: &Option<SubjectPermission>| -> Result<(), ConfError> {
        let Some(p) = p else { return Ok(()) };
        for (kind, list) in [
            ("allow", p.allow.as_deref().unwrap_or(&[])),
            ("deny", &p.deny),
        ] {
            if let Some(s) = list
                .iter()
                .find(|s| !rnats_subject::is_valid_subject(s.as_bytes()))
            {
                return Err(v.invalid(format!(
                    "cluster {what} {kind}: subject {s:?} is not a valid subject"
                )));
            }
        }
        Ok(())
    };
    check("import", &p.publish)?;
    check("export", &p.subscribe)?;
    Ok((p.publish, p.subscribe))
}

/// `routes`: a list of URLs, kept as written (trimmed); a duplicate is
/// dropped with a warning, a URL Go's `url.Parse` refuses is an error.
fn routes(v: &Spanned, report: &mut Report) -> Result<Vec<String>, ConfError> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for item in v.as_array()? {
        let raw = item.as_str()?;
        // Duplicates are found on the text as written, as nats-server does.
        if seen.contains(&raw) {
            report.warnings.push(format!(
                "{}: invalid use of field {raw:?}: Duplicate route entry detected",
                item.pos
            ));
            continue;
        }
        seen.push(raw);
        let u = raw.trim();
        parse_url(u).map_err(|_| item.invalid(format!("error parsing route url [{u:?}]")))?;
        out.push(u.to_string());
    }
    Ok(out)
}

/// nats-server's `parseStringArray`: a string or an array of strings.
pub(super) fn string_array(field: &str, v: &Spanned) -> Result<Vec<String>, ConfError> {
    match &v.value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).map_err(|_| {
                    i.invalid(format!(
                        "error parsing {field}: unsupported type in array {}",
                        i.value.kind()
                    ))
                })
            })
            .collect(),
        other => Err(v.invalid(format!(
            "error parsing {field}: unsupported type {}",
            other.kind()
        ))),
    }
}

/// `compression`: a mode string (checked when the server starts, as in
/// nats-server), a boolean (`true` = `s2_fast` for routes), or
/// `{ mode, rtt_thresholds }`. Returns the mode as written.
fn compression(key: &str, v: &Spanned) -> Result<String, ConfError> {
    match &v.value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(true) => Ok("s2_fast".into()),
        Value::Bool(false) => Ok("off".into()),
        Value::Map(m) => {
            let mut mode = String::new();
            for (k, entry) in m.iter() {
                let v = &entry.value;
                match k.to_ascii_lowercase().as_str() {
                    "mode" => mode = v.as_str()?.to_string(),
                    "rtt_thresholds" | "thresholds" | "rtts" | "rtt" => {
                        for t in v.as_array()? {
                            rnats_conf::parse_duration(t.as_str()?)
                                .map_err(|e| t.invalid(e.to_string()))?;
                        }
                    }
                    _ if entry.used_as_variable => {}
                    _ => return Err(v.invalid(format!("unknown field {k:?}"))),
                }
            }
            Ok(mode)
        }
        other => Err(v.invalid(format!(
            "field {key:?} should be a boolean or a structure, got {}",
            other.kind()
        ))),
    }
}

/// The parts of a URL rnats needs, as Go's `url.Parse` splits it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoUrl {
    /// Lower-cased; empty when there is none.
    pub scheme: String,
    /// Unescaped user name and password (`None` when the URL has no `:`
    /// in its user info).
    pub user: Option<(String, Option<String>)>,
    /// `host[:port]` as written (Go's `URL.Host`).
    pub host: String,
}

/// Go's `url.Parse`: the checks that make it fail (control characters, a
/// missing scheme before `:`, a colon in a first path segment, bad user
/// info, a bad port, characters not allowed in a host, bad `%` escapes).
/// Errors carry Go's wording (without the `parse "..."` prefix).
pub fn parse_url(raw: &str) -> Result<GoUrl, String> {
    let (raw, frag) = match raw.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (raw, None),
    };
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = GoUrl::default();
    if raw == "*" {
        return Ok(url);
    }
    let (scheme, rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let rest = match rest.strip_suffix('?') {
        Some(r) if !r.contains('?') => r,
        _ => rest.split_once('?').map_or(rest, |(r, _)| r),
    };
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // Opaque (`mailto:x`): nothing more is checked.
            return check_frag(frag).map(|_| url);
        }
        if rest.split('/').next().unwrap_or("").contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut path = rest;
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, p) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        path = p;
        let (user, host) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        url.host = parse_host(host)?;
        if let Some(u) = user {
            if !u.bytes().all(valid_userinfo_byte) {
                return Err("net/url: invalid userinfo".into());
            }
            url.user = Some(match u.split_once(':') {
                Some((n, p)) => (unescape(n, Mode::Other)?, Some(unescape(p, Mode::Other)?)),
                None => (unescape(u, Mode::Other)?, None),
            });
        }
    }
    unescape(path, Mode::Other)?;
    check_frag(frag).map(|_| url)
}

fn check_frag(frag: Option<&str>) -> Result<(), String> {
    frag.map_or(Ok(()), |f| unescape(f, Mode::Other).map(drop))
}

fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_host(host: &str) -> Result<String, String> {
    let colon_port = if host.starts_with('[') {
        let i = host.rfind(']').ok_or("missing ']' in host")?;
        Some(&host[i + 1..])
    } else {
        host.rfind(':').map(|i| &host[i..])
    };
    if let Some(cp) = colon_port {
        let ok = cp.is_empty()
            || cp
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(format!("invalid port {cp:?} after host"));
        }
    }
    unescape(host, Mode::Host)?;
    Ok(host.to_string())
}

fn valid_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b)
}

#[derive(PartialEq)]
enum Mode {
    Host,
    Other,
}

/// Go's `unescape`: `%` must start two hex digits; in a host only `%25`
/// and escapes of non-ASCII bytes, and no characters URLs must escape.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    let end = (i + 3).min(b.len());
                    return Err(format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&b[i..end])
                    ));
                };
                if mode == Mode::Host && h < 8 && &b[i..i + 3] != b"%25" {
                    return Err(format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&b[i..i + 3])
                    ));
                }
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            c => {
                if mode == Mode::Host && c < 0x80 && !host_byte_ok(c) {
                    return Err(format!(
                        "invalid character {:?} in host name",
                        (c as char).to_string()
                    ));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Bytes Go's `shouldEscape(c, encodeHost)` leaves alone.
fn host_byte_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c)
}

/// Go's `net.SplitHostPort` (errors worded as Go's `AddrError`).
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let err = |why: &str| format!("address {hostport}: {why}");
    let i = hostport
        .rfind(':')
        .ok_or_else(|| err("missing port in address"))?;
    let (host, j, k) = if hostport.starts_with('[') {
        // The first ']' must come just before the last ':'.
        let end = hostport
            .find(']')
            .ok_or_else(|| err("missing ']' in address"))?;
        if end + 1 == hostport.len() {
            return Err(err("missing port in address"));
        } else if end + 1 != i {
            return Err(if hostport.as_bytes()[end + 1] == b':' {
                err("too many colons in address")
            } else {
                err("missing port in address")
            });
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok((host, &hostport[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    fn conf(text: &str) -> (Options, Report) {
        let map = rnats_conf::parse_str(text).unwrap();
        let mut o = Options::default();
        let r = crate::config::apply(&map, &mut o).unwrap();
        (o, r)
    }

    fn cluster(text: &str) -> (ClusterOptions, Report) {
        let (o, r) = conf(text);
        (o.cluster.expect("a cluster"), r)
    }

    fn err(text: &str) -> String {
        let map = rnats_conf::parse_str(text).unwrap();
        crate::config::apply(&map, &mut Options::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn listen_forms() {
        let (c, r) = cluster(
            r#"cluster { listen: "127.0.0.1:6222", name: "c1", routes: [ "nats-route://127.0.0.1:6223" ] }"#,
        );
        assert_eq!(
            (c.host.as_str(), c.port, c.enabled),
            ("127.0.0.1", 6222, true)
        );
        assert_eq!(c.name.as_deref(), Some("c1"));
        assert_eq!(c.routes, vec!["nats-route://127.0.0.1:6223"]);
        assert!(r.unknown.is_empty() && r.unimplemented.is_empty() && r.warnings.is_empty());
        // Just a port; an empty host is every interface.
        let (c, _) = cluster("cluster { listen: 6333 }");
        assert_eq!(
            (c.host.as_str(), c.port, c.enabled),
            ("0.0.0.0", 6333, true)
        );
        let (c, _) = cluster(r#"cluster { listen: ":6334" }"#);
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 6334));
        let (c, _) = cluster(r#"cluster { listen: "[::1]:6335" }"#);
        assert_eq!((c.host.as_str(), c.port), ("::1", 6335));
        let (c, _) = cluster("cluster { host: 127.0.0.2, port: 6336 }");
        assert_eq!(
            (c.host.as_str(), c.port, c.enabled),
            ("127.0.0.2", 6336, true)
        );
        let (c, _) = cluster("cluster { net: 127.0.0.3, port: 6337 }");
        assert_eq!(c.host, "127.0.0.3");
    }

    #[test]
    fn random_and_missing_port() {
        let (c, _) = cluster("cluster { port: -1 }");
        assert_eq!((c.port, c.enabled), (0, true));
        let (c, _) = cluster(r#"cluster { listen: "127.0.0.1:-1" }"#);
        assert_eq!((c.port, c.enabled), (0, true));
        let (c, _) = cluster("cluster { listen: -1 }");
        assert_eq!((c.port, c.enabled), (0, true));
        // No port (or port 0): nats-server does not cluster; the name stays.
        let (c, _) = cluster("cluster { name: hub, routes: [nats://a:1] }");
        assert!(!c.enabled);
        assert_eq!(c.name.as_deref(), Some("hub"));
        let (c, _) = cluster("cluster { port: 0 }");
        assert!(!c.enabled);
        let (o, _) = conf("port: 4222");
        assert_eq!(o.cluster, None);
    }

    #[test]
    fn every_key() {
        let (c, r) = cluster(
            r#"cluster {
                name: c1
                port: 6222
                advertise: "10.0.0.1:6222"
                no_advertise: true
                routes: [ "nats-route://u:p@127.0.0.1:6223", "nats://127.0.0.1:6224" ]
                authorization { user: ruser, password: "s3cr3t", timeout: 0.5 }
                permissions { import: ["a.>"], export: { allow: "b.*", deny: ["b.x"] } }
                connect_retries: 5
                connect_backoff: true
                pool_size: -1
                accounts: [A, B]
                compression: s2_auto
                ping_interval: "10s"
                ping_max: 4
                write_deadline: "3s"
            }"#,
        );
        assert!(r.unknown.is_empty() && r.warnings.is_empty(), "{r:?}");
        assert_eq!(c.name.as_deref(), Some("c1"));
        assert_eq!(c.advertise.as_deref(), Some("10.0.0.1:6222"));
        assert!(c.no_advertise);
        assert_eq!(
            c.routes,
            vec!["nats-route://u:p@127.0.0.1:6223", "nats://127.0.0.1:6224"]
        );
        assert_eq!(c.username.as_deref(), Some("ruser"));
        assert_eq!(c.password.as_deref(), Some("s3cr3t"));
        assert_eq!(c.token, None);
        assert_eq!(c.auth_timeout, Duration::from_millis(500));
        assert_eq!(
            c.import,
            Some(SubjectPermission {
                allow: Some(vec!["a.>".into()]),
                deny: vec![]
            })
        );
        assert_eq!(
            c.export,
            Some(SubjectPermission {
                allow: Some(vec!["b.*".into()]),
                deny: vec!["b.x".into()]
            })
        );
        assert_eq!(c.connect_retries, 5);
        assert!(c.connect_backoff);
        assert_eq!(c.pool_size, -1);
        assert_eq!(c.pinned_accounts, vec!["A", "B"]);
        assert_eq!(c.compression.as_deref(), Some("s2_auto"));
        assert_eq!(c.ping_interval, Some(Duration::from_secs(10)));
        assert_eq!(c.ping_max, Some(4));
        assert_eq!(c.write_deadline, Some(Duration::from_secs(3)));
        assert_eq!(c.tls, None);
    }

    #[test]
    fn aliases_and_defaults() {
        let (c, _) = cluster(
            r#"cluster { port: 6222, cluster_advertise: "h:1", authorization { username: u, pass: p, timeout: "3s" }, accounts: A }"#,
        );
        assert_eq!(c.advertise.as_deref(), Some("h:1"));
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(c.auth_timeout, Duration::from_secs(3));
        assert_eq!(c.pinned_accounts, vec!["A"]);
        let (c, _) = cluster("cluster { port: 6222 }");
        assert_eq!(c.name, None);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.pool_size, 3);
        assert_eq!(c.auth_timeout, Duration::from_secs(2));
        assert_eq!(
            (c.connect_retries, c.connect_backoff, c.no_advertise),
            (0, false, false)
        );
        assert_eq!(
            (c.ping_interval, c.ping_max, c.write_deadline),
            (None, None, None)
        );
        // A plain list means allow; publish/subscribe are import/export.
        let (c, _) =
            cluster("cluster { port: 6222, permissions { publish: [x, y], subscribe: z } }");
        assert_eq!(c.import.unwrap().allow, Some(vec!["x".into(), "y".into()]));
        assert_eq!(c.export.unwrap().allow, Some(vec!["z".into()]));
    }

    #[test]
    fn compression_forms() {
        let mode = |t: &str| {
            cluster(&format!("cluster {{ port: 6222, compression: {t} }}"))
                .0
                .compression
        };
        assert_eq!(mode("s2_fast").as_deref(), Some("s2_fast"));
        assert_eq!(mode("true").as_deref(), Some("s2_fast"));
        assert_eq!(mode("false").as_deref(), Some("off"));
        assert_eq!(
            mode(r#"{ mode: s2_auto, rtt_thresholds: ["10ms", "50ms"] }"#).as_deref(),
            Some("s2_auto")
        );
        assert!(err("cluster { port: 6222, compression: 5 }")
            .contains(r#"field "compression" should be a boolean or a structure"#));
        assert!(
            err("cluster { port: 6222, compression: { mode: x, bogus: 1 } }")
                .contains(r#"unknown field "bogus""#)
        );
    }

    /// A self-signed P-256 certificate for 127.0.0.1 (valid until 2126).
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUPsaGh6QvVhB0pSve+MGgTCjs+pQwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwNzIzMzYyOFoYDzIxMjYxMTEz
MjMzNjI4WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASWga97orZuTAPwH3+lS1+euaER2WcuAnhwZPeRBZc9cd+50Kk9DdCS
mBZ+xyE8hztLi9SMeVOrLOjs9wkAoYdpo2QwYjAdBgNVHQ4EFgQUdsQoaEPFxm05
Nt6USdtI8sYmQnQwHwYDVR0jBBgwFoAUdsQoaEPFxm05Nt6USdtI8sYmQnQwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IHfjRYnHXst/ntvSWgaFBEmYJe+k5ER6jiwiQNpCzHLMAiEAlH5t+tVEvbqh3mfl
Bsj/dUFzZ10BblQL2WHZbVcULFY=
-----END CERTIFICATE-----
";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgasc0qiRzujWlZexb
aC//j2W+Ve/+/pNFwHEwfQWDe1ShRANCAASWga97orZuTAPwH3+lS1+euaER2Wcu
AnhwZPeRBZc9cd+50Kk9DdCSmBZ+xyE8hztLi9SMeVOrLOjs9wkAoYdp
-----END PRIVATE KEY-----
";

    #[test]
    fn tls_block() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, CERT).unwrap();
        std::fs::write(&key, KEY).unwrap();
        let files = format!(
            "cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\"",
            cert.display(),
            key.display(),
            cert.display()
        );
        let (c, r) = cluster(&format!(
            "cluster {{ port: 6222, tls {{ {files}, timeout: 3, verify_cert_and_check_known_urls: true }} }}"
        ));
        let t = c.tls.unwrap();
        assert_eq!(t.timeout, Duration::from_secs(3));
        assert!(t.verify);
        assert_eq!(r.unimplemented.len(), 1, "{r:?}");
        // Without an authorization timeout: the TLS timeout plus a second.
        assert_eq!(c.auth_timeout, Duration::from_secs(4));
        let (c, _) = cluster(&format!(
            "cluster {{ port: 6222, tls {{ {files} }}, authorization {{ timeout: 1 }} }}"
        ));
        assert_eq!(c.auth_timeout, Duration::from_secs(1));
        // The client port refuses what routes accept.
        let map = rnats_conf::parse_str(&format!(
            "tls {{ {files}, verify_cert_and_check_known_urls: true }}"
        ))
        .unwrap();
        let e = crate::config::apply(&map, &mut Options::default()).unwrap_err();
        assert!(
            e.to_string().contains("not supported in this context"),
            "{e}"
        );
    }

    #[test]
    fn tls_errors() {
        let e = err("cluster { port: 6222, tls { bogus: 1 } }");
        assert!(
            e.contains(r#"error parsing tls config, unknown field "bogus""#),
            "{e}"
        );
        let e = err(
            r#"cluster { port: 6222, tls { cert_file: "/nonexistent/c.pem", key_file: "/nonexistent/k.pem" } }"#,
        );
        assert!(e.contains("/nonexistent/c.pem"), "{e}");
    }

    #[test]
    fn errors_worded_as_nats_server() {
        let e = err(r#"cluster { port: 6222, name: "a b" }"#);
        assert!(e.ends_with("cluster name cannot contain spaces"), "{e}");
        assert!(e.contains("1:"), "{e}");
        // nats-server 2.15 checks spaces only.
        let (c, _) = cluster("cluster { port: 6222, name: \"a\\nb\" }");
        assert_eq!(c.name.as_deref(), Some("a\nb"));
        for (text, want) in [
            (
                r#"cluster { listen: "foo" }"#,
                r#"could not parse address string "foo""#,
            ),
            (
                r#"cluster { listen: "foo:bar" }"#,
                r#"could not parse port "bar""#,
            ),
            (
                "cluster { listen: true }",
                "expected port or host:port, got",
            ),
            (r#"cluster { listen: "h:70000" }"#, "invalid port 70000"),
            ("cluster { port: 70000 }", "invalid port 70000"),
            (
                r#"cluster { port: 6222, routes: ["nats://foo bar:4"] }"#,
                r#"error parsing route url ["nats://foo bar:4"]"#,
            ),
            (
                r#"cluster { port: 6222, routes: ["://x"] }"#,
                r#"error parsing route url ["://x"]"#,
            ),
            (
                r#"cluster { port: 6222, routes: ["nats://h:%zz"] }"#,
                r#"error parsing route url ["nats://h:%zz"]"#,
            ),
            (
                "cluster { port: 6222, authorization { token: x } }",
                "Cluster authorization does not support tokens",
            ),
            (
                "cluster { port: 6222, authorization { users: [{user: a, password: b}] } }",
                "Cluster authorization does not allow multiple users",
            ),
            (
                r#"cluster { port: 6222, permissions { export: ["a q"] } }"#,
                r#"cluster export allow: subject "a q" is not a valid subject"#,
            ),
            (
                "cluster { port: 6222, permissions { allow_responses: true } }",
                "Cluster permissions do not support dynamic responses",
            ),
            (
                r#"cluster { port: 6222, permissions { import: ["a..b"] } }"#,
                r#"subject "a..b" is not a valid subject"#,
            ),
            (
                r#"cluster { port: 6222, permissions: ["a"] }"#,
                "Expected permissions to be a map/struct",
            ),
            (
                r#"cluster { port: 6222, permissions { foo: "a" } }"#,
                r#"Unknown field "foo" parsing permissions"#,
            ),
            (
                "cluster { port: 6222, write_timeout: never }",
                "write_timeout must be 'default', 'close' or 'retry'",
            ),
            ("cluster: 5", "Expected map to define cluster, got"),
        ] {
            let e = err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
        // Wrong types are errors too (nats-server reports a failed conversion).
        for text in [
            r#"cluster { port: "x" }"#,
            "cluster { port: 6222, name: 5 }",
            r#"cluster { port: 6222, no_advertise: "yes" }"#,
            r#"cluster { port: 6222, connect_retries: "x" }"#,
            r#"cluster { port: 6222, routes: "nats://a:1" }"#,
        ] {
            err(text);
        }
    }

    #[test]
    fn unknown_keys_and_warnings() {
        let (c, r) = cluster("cluster { port: 6222, bogus: 1 }");
        assert_eq!(c.port, 6222);
        assert_eq!(r.unknown.len(), 1);
        assert!(
            r.unknown[0].ends_with(r#"unknown field "bogus""#),
            "{:?}",
            r.unknown
        );
        // A key used as a variable is not unknown.
        let (_, r) = cluster("cluster { p: 6222, port: $p }");
        assert!(r.unknown.is_empty(), "{:?}", r.unknown);
        let (c, r) = cluster(
            r#"cluster { port: 6222, routes: ["nats://a:1", " nats://b:1 ", "nats://a:1"] }"#,
        );
        assert_eq!(c.routes, vec!["nats://a:1", "nats://b:1"]);
        assert!(
            r.warnings[0].contains("Duplicate route entry detected"),
            "{:?}",
            r.warnings
        );
        let (c, r) = cluster(r#"cluster { port: 6222, ping_interval: "1m" }"#);
        assert_eq!(c.ping_interval, Some(Duration::from_secs(60)));
        assert!(r.warnings[0]
            .ends_with("Cluster 'ping_interval' will reset to 30s which is the max for routes"));
        let (_, r) = cluster("cluster { port: 6222, ping_interval: 10 }");
        assert!(r.warnings[0].contains("ping_interval should be converted to a duration"));
        // Permissions inside authorization: deprecated, and the block's own win.
        let (c, r) = cluster(
            "cluster { port: 6222, permissions { import: a }, authorization { user: u, password: p, permissions { import: b } } }",
        );
        assert!(r.warnings[0].contains("deprecated"), "{:?}", r.warnings);
        assert_eq!(c.import.unwrap().allow, Some(vec!["a".into()]));
        let (c, _) = cluster(
            "cluster { port: 6222, authorization { user: u, password: p, permissions { export: b } } }",
        );
        assert_eq!(c.export.unwrap().allow, Some(vec!["b".into()]));
        let (_, r) = cluster("cluster { port: 6222, write_timeout: close }");
        assert_eq!(r.unimplemented.len(), 1);
    }

    #[test]
    fn go_url_parse() {
        let u = parse_url("nats-route://us%40er:p%3Ass@127.0.0.1:6223").unwrap();
        assert_eq!(u.scheme, "nats-route");
        assert_eq!(u.user, Some(("us@er".into(), Some("p:ss".into()))));
        assert_eq!(u.host, "127.0.0.1:6223");
        let u = parse_url("NATS://[::1]:4222/x?y#z").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str()), ("nats", "[::1]:4222"));
        assert_eq!(
            parse_url("nats://u@h:1").unwrap().user,
            Some(("u".into(), None))
        );
        // Accepted by Go: opaque, empty, scheme-less paths.
        for ok in ["a:1", "", "x", "/p", "nats://h", "nats://h:"] {
            parse_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("://x", "missing protocol scheme"),
            ("nats://foo bar:4", "invalid character \" \" in host name"),
            ("nats://h:abc", "invalid port \":abc\" after host"),
            ("nats://h:%zz", "invalid port"),
            ("nats://h%zz", "invalid URL escape"),
            ("nats://[::1:4", "missing ']' in host"),
            ("nats://a b@h:1", "net/url: invalid userinfo"),
            ("nats://h:1\n", "invalid control character"),
            (
                "1.2.3.4:5",
                "first path segment in URL cannot contain colon",
            ),
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn go_split_host_port() {
        assert_eq!(split_host_port("h:1"), Ok(("h", "1")));
        assert_eq!(split_host_port(":1"), Ok(("", "1")));
        assert_eq!(split_host_port("[::1]:2"), Ok(("::1", "2")));
        assert_eq!(split_host_port("h:"), Ok(("h", "")));
        assert!(split_host_port("h")
            .unwrap_err()
            .contains("missing port in address"));
        assert!(split_host_port("::1:2")
            .unwrap_err()
            .contains("too many colons"));
        assert!(split_host_port("[::1]")
            .unwrap_err()
            .contains("missing port"));
    }
}
