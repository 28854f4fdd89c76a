//! The `gateway {}` block (nats-server's opts.go `parseGateway` and
//! `parseGateways`, checked by gateway.go `validateGatewayOptions`): this
//! server's gateway name and port, the credentials remote clusters must
//! present, and the remote gateways to dial.

use std::time::Duration;

use rnats_conf::{ConfError, Spanned, Value};

use super::{parse_tls_in, port, seconds, Report};
use crate::options::TlsOptions;

/// nats-server's `ErrGatewayNameHasSpaces`.
pub const ERR_GATEWAY_NAME_HAS_SPACES: &str = "gateway name cannot contain spaces";

/// A `gateway {}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayOptions {
    /// `name`: this cluster's gateway name (the same on all its servers).
    pub name: String,
    pub host: String,
    /// 0 with `random_port`: pick a free port (`-1` in the config).
    pub port: u16,
    pub random_port: bool,
    /// `advertise`: the `host:port` remote clusters should dial.
    pub advertise: Option<String>,
    /// `authorization { user, password, timeout }` required of remote gateways.
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth_timeout: Duration,
    pub tls: Option<TlsOptions>,
    /// Attempts for implicit (learned) gateways; 0: one attempt.
    pub connect_retries: u32,
    pub connect_backoff: bool,
    /// `reject_unknown_cluster`: refuse gateways not in `gateways`.
    pub reject_unknown: bool,
    pub write_deadline: Option<Duration>,
    /// `gateways`: the remote clusters to dial.
    pub gateways: Vec<RemoteGateway>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            name: String::new(),
            host: "0.0.0.0".into(),
            port: 0,
            random_port: false,
            advertise: None,
            username: None,
            password: None,
            auth_timeout: Duration::from_secs(2),
            tls: None,
            connect_retries: 0,
            connect_backoff: false,
            reject_unknown: false,
            write_deadline: None,
            gateways: Vec::new(),
        }
    }
}

impl GatewayOptions {
    /// nats-server enables gateways when the block has a name and a port.
    pub fn enabled(&self) -> bool {
        !self.name.is_empty() && (self.port != 0 || self.random_port)
    }

    /// nats-server's `validateGatewayOptions` (checked when the server
    /// starts, not while parsing).
    pub fn validate(&self) -> Result<(), String> {
        let has_port = self.port != 0 || self.random_port;
        if self.name.is_empty() && !has_port {
            return Ok(());
        }
        if self.name.is_empty() {
            return Err("gateway has no name".into());
        }
        if self.name.contains(' ') {
            return Err(ERR_GATEWAY_NAME_HAS_SPACES.into());
        }
        if !has_port {
            return Err(format!(
                "gateway {:?} has no port specified (select -1 for random port)",
                self.name
            ));
        }
        for (i, g) in self.gateways.iter().enumerate() {
            if g.name.is_empty() {
                return Err(format!("gateway in the list {i} has no name"));
            }
            if g.urls.is_empty() {
                return Err(format!("gateway {:?} has no URL", g.name));
            }
        }
        Ok(())
    }
}

/// One entry of `gateways = [...]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteGateway {
    pub name: String,
    /// `url` / `urls`, as written (trimmed), e.g. `nats://user:pw@host:7222`.
    pub urls: Vec<String>,
    pub tls: Option<TlsOptions>,
}

/// Parses a `gateway {}` block.
pub fn parse(v: &Spanned, report: &mut Report) -> Result<GatewayOptions, ConfError> {
    let Value::Map(m) = &v.value else {
        return Err(v.invalid(format!(
            "Expected gateway to be a map, got {}",
            v.value.kind()
        )));
    };
    let mut g = GatewayOptions::default();
    let mut auth_timeout_set = false;
    for (key, entry) in m.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "name" => {
                let n = v.as_str()?;
                if n.contains(' ') {
                    return Err(v.invalid(ERR_GATEWAY_NAME_HAS_SPACES));
                }
                g.name = n.to_string();
            }
            "listen" => {
                let (h, p) = super::host_port(v)?;
                if let Some(h) = h {
                    g.host = h;
                }
                if let Some((p, r)) = p {
                    (g.port, g.random_port) = (p, r);
                }
            }
            "port" => (g.port, g.random_port) = port(v)?,
            "host" | "net" => g.host = v.as_str()?.to_string(),
            "authorization" => {
                if let Some(t) = authorization(v, &mut g, report)? {
                    g.auth_timeout = t;
                    auth_timeout_set = true;
                }
            }
            "tls" => {
                let t = parse_tls_in(v, report, false)?;
                crate::tls::server_config(&t).map_err(|e| v.invalid(e))?;
                g.tls = Some(t);
            }
            "advertise" | "gateway_advertise" => g.advertise = Some(v.as_str()?.to_string()),
            "connect_retries" => {
                g.connect_retries =
                    u32::try_from(v.as_int()?).map_err(|_| v.invalid("invalid connect_retries"))?
            }
            "connect_backoff" => g.connect_backoff = v.as_bool()?,
            "gateways" => g.gateways = remotes(v, report)?,
            "reject_unknown" | "reject_unknown_cluster" => g.reject_unknown = v.as_bool()?,
            "write_deadline" => g.write_deadline = Some(v.as_duration()?),
            "write_timeout" => {
                v.as_str()?;
                report.unimplemented.push(format!(
                    "{}: gateway option \"write_timeout\" is not implemented yet in rnats and is ignored",
                    entry.key_pos
                ));
            }
            _ if entry.used_as_variable => {}
            _ => report
                .unknown
                .push(format!("{}: unknown field {key:?}", entry.key_pos)),
        }
    }
    if let (false, Some(t)) = (auth_timeout_set, &g.tls) {
        g.auth_timeout = t.timeout + Duration::from_secs(1);
    }
    Ok(g)
}

/// The gateway `authorization {}`: one user, no token, no users list, no
/// callout. Returns the `timeout` when one is set.
fn authorization(
    block: &Spanned,
    g: &mut GatewayOptions,
    report: &mut Report,
) -> Result<Option<Duration>, ConfError> {
    let mut timeout = None;
    for (key, entry) in block.as_map()?.iter() {
        let v = &entry.value;
        match key.to_ascii_lowercase().as_str() {
            "user" | "username" => g.username = Some(v.as_str()?.to_string()),
            "pass" | "password" => g.password = Some(v.as_str()?.to_string()),
            "token" => return Err(block.invalid("Gateway authorization does not support tokens")),
            "users" => {
                return Err(block.invalid("Gateway authorization does not allow multiple users"))
            }
            "auth_callout" | "auth_hook" => {
                return Err(block.invalid("Gateway authorization does not support callouts"))
            }
            "timeout" => {
                timeout = Some(seconds(v).map_err(|e| {
                    v.invalid(format!("error parsing authorization config, 'timeout' {e}"))
                })?)
            }
            _ if entry.used_as_variable => {}
            _ => report
                .unknown
                .push(format!("{}: unknown field {key:?}", entry.key_pos)),
        }
    }
    Ok(timeout)
}

/// `gateways = [ { name, url | urls, tls } ]`.
fn remotes(v: &Spanned, report: &mut Report) -> Result<Vec<RemoteGateway>, ConfError> {
    let Value::Array(items) = &v.value else {
        return Err(v.invalid(format!(
            "Expected gateways field to be an array, got {}",
            v.value.kind()
        )));
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Map(m) = &item.value else {
            return Err(item.invalid(format!(
                "Expected gateway entry to be a map/struct, got {}",
                item.value.kind()
            )));
        };
        let mut r = RemoteGateway::default();
        for (key, entry) in m.iter() {
            let v = &entry.value;
            match key.to_ascii_lowercase().as_str() {
                "name" => r.name = v.as_str()?.to_string(),
                "tls" => r.tls = Some(parse_tls_in(v, report, false)?),
                "url" => r.urls.push(url(v)?),
                "urls" => {
                    r.urls = v
                        .as_array()?
                        .iter()
                        .map(url)
                        .collect::<Result<Vec<_>, _>>()?
                }
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

/// A gateway URL as nats-server's `parseURL` checks it.
fn url(v: &Spanned) -> Result<String, ConfError> {
    let u = v.as_str()?.trim();
    super::cluster::parse_url(u)
        .map_err(|_| v.invalid(format!("error parsing gateway url [{u:?}]")))?;
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<GatewayOptions, ConfError> {
        let map = rnats_conf::parse_str(text)?;
        let v = map.get("gateway").expect("gateway block");
        parse(v, &mut Report::default())
    }

    #[test]
    fn block_with_remotes() {
        let g = parse_str(
            "gateway { name: A, listen: \"127.0.0.1:7222\", authorization { user: u, password: p, timeout: 3 },
               gateways: [ {name: B, url: \"nats://h:7223\"}, {name: C, urls: [\"nats://x:1\", \"nats://y:2\"]} ] }",
        )
        .unwrap();
        assert_eq!(g.name, "A");
        assert_eq!((g.host.as_str(), g.port), ("127.0.0.1", 7222));
        assert_eq!(g.username.as_deref(), Some("u"));
        assert_eq!(g.auth_timeout, Duration::from_secs(3));
        assert_eq!(g.gateways.len(), 2);
        assert_eq!(g.gateways[1].urls.len(), 2);
        assert!(g.validate().is_ok());
    }

    #[test]
    fn nats_server_errors() {
        let g = parse_str("gateway { port: 7222 }").unwrap();
        assert_eq!(g.validate().unwrap_err(), "gateway has no name");
        let g = parse_str("gateway { name: A }").unwrap();
        assert_eq!(
            g.validate().unwrap_err(),
            "gateway \"A\" has no port specified (select -1 for random port)"
        );
        let g =
            parse_str("gateway { name: A, port: 1, gateways: [ {url: \"nats://h:1\"} ] }").unwrap();
        assert_eq!(
            g.validate().unwrap_err(),
            "gateway in the list 0 has no name"
        );
        let g = parse_str("gateway { name: A, port: 1, gateways: [ {name: B} ] }").unwrap();
        assert_eq!(g.validate().unwrap_err(), "gateway \"B\" has no URL");
        let e = parse_str("gateway { name: \"A B\", port: 1 }").unwrap_err();
        assert!(e.to_string().contains(ERR_GATEWAY_NAME_HAS_SPACES));
        let e = parse_str("gateway { name: A, authorization { token: t } }").unwrap_err();
        assert!(e.to_string().contains("does not support tokens"));
    }
}
