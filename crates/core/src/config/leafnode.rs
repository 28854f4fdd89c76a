//! The `leafnodes {}` block (nats-server's opts.go `parseLeafNodes`,
//! `parseLeafAuthorization`, `parseRemoteLeafNodes`): where this server
//! accepts leaf nodes (it is their hub) and which hubs it dials (it is their
//! spoke), with nats-server's error texts for what it refuses.

use std::path::PathBuf;
use std::time::Duration;

use rnats_conf::{ConfError, Spanned, Value};

use super::cluster::{listen, string_array};
use super::{parse_tls_in, port, seconds, Report};
use crate::auth::User;
use crate::options::TlsOptions;

/// nats-server's `DEFAULT_LEAF_NODE_RECONNECT`.
pub const DEFAULT_RECONNECT: Duration = Duration::from_secs(1);

/// A `leafnodes {}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafNodeOptions {
    /// `host`/`listen`: where leaf nodes connect (accepting only when a
    /// port is set: 0 without `-1` means no listener).
    pub host: String,
    pub port: u16,
    /// Accept leaf nodes (a port or `-1` was given).
    pub accept: bool,
    pub advertise: Option<String>,
    pub no_advertise: bool,
    /// `authorization { user, password, account, users, timeout }`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The account a leaf that authenticates with `user`/`password` (or
    /// with nothing, when no auth is set) is bound to.
    pub account: Option<String>,
    pub users: Vec<User>,
    pub auth_timeout: Option<Duration>,
    pub tls: Option<TlsOptions>,
    /// `reconnect`: the delay before redialling a hub.
    pub reconnect: Duration,
    pub remotes: Vec<RemoteLeafOptions>,
}

impl Default for LeafNodeOptions {
    fn default() -> Self {
        LeafNodeOptions {
            host: "0.0.0.0".into(),
            port: 0,
            accept: false,
            advertise: None,
            no_advertise: false,
            username: None,
            password: None,
            account: None,
            users: Vec::new(),
            auth_timeout: None,
            tls: None,
            reconnect: DEFAULT_RECONNECT,
            remotes: Vec::new(),
        }
    }
}

/// One entry of `remotes`: a hub to dial.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteLeafOptions {
    /// `url`/`urls`: `nats-leaf://`, `nats://`, `tls://`, `ws://`, `wss://`,
    /// possibly with `user:pass@`.
    pub urls: Vec<url::Url>,
    /// `account`/`local`: the local account bound to the connection (`$G`).
    pub local_account: Option<String>,
    /// `credentials`: a `.creds` file (user JWT and nkey seed).
    pub credentials: Option<PathBuf>,
    /// `nkey`/`seed`: a user nkey seed.
    pub nkey: Option<String>,
    pub tls: Option<TlsOptions>,
    /// `hub`: this side is the hub of the connection it dials.
    pub hub: bool,
    pub deny_imports: Vec<String>,
    pub deny_exports: Vec<String>,
    pub ws_compression: bool,
    pub ws_no_masking: bool,
    pub disabled: bool,
}

/// Parses a `leafnodes {}` block.
pub fn parse(v: &Spanned, report: &mut Report) -> Result<LeafNodeOptions, ConfError> {
    let Value::Map(m) = &v.value else {
        return Err(v.invalid(format!(
            "Expected map to define a leafnode, got {}",
            v.value.kind()
        )));
    };
    let mut o = LeafNodeOptions::default();
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "listen" => {
                let (host, (p, random)) = listen(v)?;
                if !host.is_empty() {
                    o.host = host;
                }
                o.port = p;
                o.accept = p != 0 || random;
            }
            "port" => {
                let (p, random) = port(v)?;
                o.port = p;
                o.accept = p != 0 || random;
            }
            "host" | "net" => o.host = v.as_str()?.to_string(),
            "authorization" => authorization(v, &mut o, report)?,
            "remotes" => o.remotes = remotes(v, report)?,
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                o.reconnect = match &v.value {
                    Value::Int(n) => Duration::from_secs((*n).max(0) as u64),
                    _ => v.as_duration()?,
                }
            }
            "tls" => {
                let t = parse_tls_in(v, report, false)?;
                crate::tls::server_config(&t).map_err(|e| v.invalid(e))?;
                o.tls = Some(t);
            }
            "leafnode_advertise" | "advertise" => o.advertise = Some(v.as_str()?.to_string()),
            "no_advertise" => o.no_advertise = v.as_bool()?,
            "dial_timeout"
            | "min_version"
            | "minimum_version"
            | "compression"
            | "isolate_leafnode_interest"
            | "isolate"
            | "write_deadline"
            | "write_timeout" => report.unimplemented.push(format!(
                "{}: leafnodes option {key:?} is not implemented yet in rnats and is ignored",
                entry.key_pos
            )),
            _ if entry.used_as_variable => {}
            _ => report
                .unknown
                .push(format!("{}: unknown field {key:?}", entry.key_pos)),
        }
    }
    if !o.users.is_empty() && (o.username.is_some() || o.password.is_some()) {
        return Err(v.invalid(
            "can not have a single user/pass and a users array for leafnode authorization",
        ));
    }
    Ok(o)
}

fn authorization(
    block: &Spanned,
    o: &mut LeafNodeOptions,
    report: &mut Report,
) -> Result<(), ConfError> {
    let m = block.as_map()?;
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "user" | "username" => o.username = Some(v.as_str()?.to_string()),
            "pass" | "password" => o.password = Some(v.as_str()?.to_string()),
            "account" => o.account = Some(v.as_str()?.to_string()),
            "users" => o.users = leaf_users(v, report)?,
            "timeout" => {
                let t = seconds(v).map_err(|e| {
                    v.invalid(format!(
                        "error parsing leafnode authorization config, 'timeout' {e}"
                    ))
                })?;
                o.auth_timeout = Some(t);
            }
            "nkey" => {
                let k = v.as_str()?;
                if !(k.len() == 56 && k.starts_with('U')) {
                    return Err(v.invalid("Not a valid public nkey for leafnode authorization"));
                }
                report.unimplemented.push(format!(
                    "{}: leafnodes authorization \"nkey\" is not implemented yet in rnats and is ignored",
                    entry.key_pos
                ));
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
    Ok(())
}

/// `authorization { users: [...] }` of the leaf node port (nats-server's
/// `parseLeafUsers`): user, password and the account to bind.
fn leaf_users(list: &Spanned, report: &mut Report) -> Result<Vec<User>, ConfError> {
    let Value::Array(items) = &list.value else {
        return Err(list.invalid(format!(
            "Expected users field to be an array, got {}",
            list.value.kind()
        )));
    };
    let mut users = Vec::new();
    for item in items {
        let Value::Map(m) = &item.value else {
            return Err(item.invalid(format!(
                "Expected user entry to be a map/struct, got {}",
                item.value.kind()
            )));
        };
        let mut user = User {
            name: String::new(),
            credential: crate::auth::Credential::Password(String::new()),
            permissions: None,
            account: None,
        };
        for (key, entry) in m.iter() {
            let v = &entry.value;
            match key.to_ascii_lowercase().as_str() {
                "user" | "username" => user.name = v.as_str()?.to_string(),
                "pass" | "password" => {
                    user.credential = crate::auth::Credential::Password(v.as_str()?.to_string())
                }
                "account" => user.account = Some(v.as_str()?.to_string()),
                _ if entry.used_as_variable => {}
                _ => report
                    .unknown
                    .push(format!("{}: unknown field {key:?}", entry.key_pos)),
            }
        }
        users.push(user);
    }
    Ok(users)
}

fn remotes(v: &Spanned, report: &mut Report) -> Result<Vec<RemoteLeafOptions>, ConfError> {
    let Value::Array(items) = &v.value else {
        return Err(v.invalid(format!(
            "Expected remotes field to be an array, got {}",
            v.value.kind()
        )));
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Map(m) = &item.value else {
            return Err(item.invalid(format!(
                "Expected remote leafnode entry to be a map/struct, got {}",
                item.value.kind()
            )));
        };
        let mut r = RemoteLeafOptions::default();
        for (key, entry) in m.iter() {
            let v = &entry.value;
            match key.to_ascii_lowercase().as_str() {
                "url" | "urls" => {
                    let list = match &v.value {
                        Value::String(_) | Value::Array(_) => string_array("url", v)?,
                        other => {
                            return Err(v.invalid(format!(
                                "Expected remote leafnode url to be an array or string, got {}",
                                other.kind()
                            )))
                        }
                    };
                    for u in list {
                        r.urls.push(parse_url(&u).map_err(|e| v.invalid(e))?);
                    }
                }
                "account" | "local" => r.local_account = Some(v.as_str()?.to_string()),
                "creds" | "credentials" => {
                    if r.nkey.is_some() {
                        return Err(
                            v.invalid("Remote leafnode can not have both creds and nkey defined")
                        );
                    }
                    let p = expand_home(v.as_str()?);
                    std::fs::metadata(&p).map_err(|e| {
                        v.invalid(format!("open {}: {}", p.display(), go_io_error(&e)))
                    })?;
                    r.credentials = Some(p);
                }
                "nkey" | "seed" => {
                    let s = v.as_str()?;
                    if !s.starts_with("SU") {
                        return Err(v.invalid(format!(
                            "Remote leafnode nkey is not a valid seed: {s:?}"
                        )));
                    }
                    if r.credentials.is_some() {
                        return Err(
                            v.invalid("Remote leafnode can not have both creds and nkey defined")
                        );
                    }
                    r.nkey = Some(s.to_string());
                }
                "tls" => {
                    let t = parse_tls_in(v, report, true)?;
                    r.tls = Some(t);
                }
                "hub" => r.hub = v.as_bool()?,
                "deny_imports" | "deny_import" => r.deny_imports = string_array(key, v)?,
                "deny_exports" | "deny_export" => r.deny_exports = string_array(key, v)?,
                "ws_compress" | "ws_compression" | "websocket_compress"
                | "websocket_compression" => r.ws_compression = v.as_bool()?,
                "ws_no_masking" | "websocket_no_masking" => r.ws_no_masking = v.as_bool()?,
                "disabled" => r.disabled = v.as_bool()?,
                "no_randomize" | "dont_randomize" | "jetstream_cluster_migrate"
                | "js_cluster_migrate" | "isolate_leafnode_interest" | "isolate"
                | "request_isolation" | "compression" | "first_info_timeout" | "dial_timeout"
                | "proxy" | "ignore_discovered_servers" => report.unimplemented.push(format!(
                    "{}: remote leafnode option {key:?} is not implemented yet in rnats and is ignored",
                    entry.key_pos
                )),
                _ if entry.used_as_variable => {}
                _ => report
                    .unknown
                    .push(format!("{}: unknown field {key:?}", entry.key_pos)),
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// A remote's URL; a bare `host:port` is taken as `nats-leaf://host:port`
/// (nats-server's `parseURL` adds a scheme the same way).
fn parse_url(s: &str) -> Result<url::Url, String> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("nats-leaf://{s}")
    };
    url::Url::parse(&with_scheme).map_err(|e| format!("error parsing remote leafnode URL: {e}"))
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

fn go_io_error(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        _ => "invalid argument",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(text: &str) -> Result<(LeafNodeOptions, Report), String> {
        let map = rnats_conf::parse_str(text).map_err(|e| e.to_string())?;
        let mut report = Report::default();
        let v = map.get("leafnodes").expect("leafnodes block");
        parse(v, &mut report)
            .map(|o| (o, report))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn hub_and_remotes() {
        let (o, r) = leaf(
            r#"leafnodes {
                listen: "127.0.0.1:7422"
                authorization { users: [ { user: leaf, password: s3cr3t, account: A } ], timeout: 2 }
                reconnect: "250ms"
                remotes = [
                  { url: "nats://u:p@hub:7422", account: B, deny_imports: ["a.>"], deny_exports: "b.>" }
                  { urls: ["ws://hub:8080", "hub2:7422"], hub: true }
                ]
            }"#,
        )
        .unwrap();
        assert!(o.accept);
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 7422));
        assert_eq!(o.users.len(), 1);
        assert_eq!(o.users[0].account.as_deref(), Some("A"));
        assert_eq!(o.reconnect, Duration::from_millis(250));
        assert_eq!(o.remotes.len(), 2);
        assert_eq!(o.remotes[0].local_account.as_deref(), Some("B"));
        assert_eq!(o.remotes[0].deny_imports, vec!["a.>"]);
        assert_eq!(o.remotes[0].deny_exports, vec!["b.>"]);
        assert_eq!(o.remotes[1].urls[1].scheme(), "nats-leaf");
        assert!(o.remotes[1].hub);
        assert!(r.unknown.is_empty() && r.unimplemented.is_empty());
    }

    #[test]
    fn errors_worded_as_nats_server() {
        let e = leaf("leafnodes: 5").unwrap_err();
        assert!(e.contains("Expected map to define a leafnode"), "{e}");
        let e = leaf("leafnodes { remotes: 5 }").unwrap_err();
        assert!(e.contains("Expected remotes field to be an array"), "{e}");
        let e = leaf(
            r#"leafnodes { remotes: [ { url: "nats://h:1", nkey: "SUAB", credentials: "/x" } ] }"#,
        )
        .unwrap_err();
        assert!(
            e.contains("Remote leafnode can not have both creds and nkey defined"),
            "{e}"
        );
        let e = leaf(r#"leafnodes { remotes: [ { nkey: "bad" } ] }"#).unwrap_err();
        assert!(
            e.contains("Remote leafnode nkey is not a valid seed"),
            "{e}"
        );
        let e = leaf(r#"leafnodes { authorization { nkey: "bad" } }"#).unwrap_err();
        assert!(
            e.contains("Not a valid public nkey for leafnode authorization"),
            "{e}"
        );
    }
}
