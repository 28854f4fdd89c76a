//! The WebSocket opening handshake (RFC 6455 section 4.2) as nats-server
//! checks it: method, Host, Upgrade, Connection, key, version, Origin, and the
//! permessage-deflate offer. Answers `101 Switching Protocols` or an HTTP
//! error as Go's `http.Error` writes it.

use base64::Engine;

/// From RFC 6455 section 1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The largest request head accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

/// A parsed request head.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// Parses the head (everything before the blank line).
    pub fn parse(head: &[u8]) -> Option<Request> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let path = first.next()?.to_string();
        if !first.next()?.starts_with("HTTP/1.") {
            return None;
        }
        let mut headers = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        Some(Request {
            method,
            path,
            headers,
        })
    }

    /// The first value of a header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any value of `name` holds the comma-separated token `value`.
    pub fn header_contains(&self, name: &str, value: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(value))
    }

    /// Whether the client offers permessage-deflate.
    pub fn offers_deflate(&self) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
            .flat_map(|(_, v)| v.split(','))
            .flat_map(|ext| ext.split(';'))
            .any(|p| p.trim().eq_ignore_ascii_case("permessage-deflate"))
    }
}

/// An origin nats-server accepts (`allowed_origins`), keyed by host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: String,
}

/// Parses an absolute `scheme://host[:port]` URL as Go's
/// `url.ParseRequestURI` + `wsGetHostAndPort` see it.
pub fn parse_origin(s: &str) -> Result<Origin, String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("parse {s:?}: invalid URI for request"))?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(format!("parse {s:?}: missing protocol scheme"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = host_port(scheme == "https", authority)?;
    Ok(Origin { scheme, host, port })
}

/// Splits `host[:port]`, defaulting the port by scheme; the host lowercased.
pub fn host_port(tls: bool, hp: &str) -> Result<(String, String), String> {
    let default = if tls { "443" } else { "80" };
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {hp}: missing ']' in address"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, p),
            None if after.is_empty() => (h, default),
            None => return Err(format!("address {hp}: unexpected characters after ']'")),
        }
    } else {
        match hp.matches(':').count() {
            0 => (hp, default),
            1 => hp.split_once(':').unwrap_or((hp, default)),
            _ => return Err(format!("address {hp}: too many colons in address")),
        }
    };
    Ok((host.to_ascii_lowercase(), port.to_string()))
}

/// The origin rules of the `websocket {}` block.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    pub same_origin: bool,
    pub allowed: Vec<Origin>,
}

impl OriginPolicy {
    /// nats-server's `checkOrigin`: no rules or no Origin header accepts.
    pub fn check(&self, req: &Request, tls: bool) -> Result<(), String> {
        if !self.same_origin && self.allowed.is_empty() {
            return Ok(());
        }
        let origin = req
            .header("Origin")
            .filter(|o| !o.is_empty())
            .or_else(|| req.header("Sec-WebSocket-Origin"))
            .unwrap_or("");
        if origin.is_empty() {
            return Ok(());
        }
        let o = parse_origin(origin)?;
        if self.same_origin {
            let (rh, rp) = host_port(tls, req.header("Host").unwrap_or(""))?;
            let rs = if tls { "https" } else { "http" };
            if o.host != rh || o.port != rp || !o.scheme.eq_ignore_ascii_case(rs) {
                return Err("not same origin".into());
            }
        }
        if !self.allowed.is_empty()
            && !self
                .allowed
                .iter()
                .any(|a| a.host == o.host && a.scheme == o.scheme && a.port == o.port)
        {
            return Err("not in the allowed list".into());
        }
        Ok(())
    }
}

/// What the handshake agreed on.
#[derive(Debug)]
pub struct Accepted {
    pub response: Vec<u8>,
    pub compress: bool,
    pub no_masking: bool,
}

/// A refused handshake: the HTTP status, the log reason, and the response.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
    pub response: Vec<u8>,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refused {
    Refused {
        status,
        reason: reason.into(),
        response: http_error(status),
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    }
}

/// The response Go's `http.Error` writes (plus the version header nats-server adds).
pub fn http_error(status: u16) -> Vec<u8> {
    let text = status_text(status);
    let body = format!("{text}\n");
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT");
    format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\nDate: {date}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `Sec-WebSocket-Accept` for a client key.
pub fn accept_key(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Checks an upgrade request in nats-server's order.
pub fn upgrade(
    req: &Request,
    origins: &OriginPolicy,
    tls: bool,
    compression: bool,
) -> Result<Accepted, Refused> {
    upgrade_with(req, origins, tls, compression, false)
}

/// [`upgrade`], also accepting `/leafnode` when `leafnodes` (this server
/// takes leaf nodes on its WebSocket port).
pub fn upgrade_with(
    req: &Request,
    origins: &OriginPolicy,
    tls: bool,
    compression: bool,
    leafnodes: bool,
) -> Result<Accepted, Refused> {
    if req.method != "GET" {
        return Err(refuse(405, "request method must be GET"));
    }
    if req.header("Host").is_none_or(str::is_empty) {
        return Err(refuse(400, "'Host' missing in request"));
    }
    if !req.header_contains("Upgrade", "websocket") {
        return Err(refuse(400, "invalid value for header 'Upgrade'"));
    }
    if !req.header_contains("Connection", "Upgrade") {
        return Err(refuse(400, "invalid value for header 'Connection'"));
    }
    let key = req.header("Sec-WebSocket-Key").unwrap_or("");
    if key.is_empty() {
        return Err(refuse(400, "key missing"));
    }
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(k) if k.len() == 16 => {}
        _ => return Err(refuse(400, "invalid websocket key")),
    }
    if !req.header_contains("Sec-WebSocket-Version", "13") {
        return Err(refuse(400, "invalid version"));
    }
    if let Err(e) = origins.check(req, tls) {
        return Err(refuse(403, format!("origin not allowed: {e}")));
    }
    let leaf_taken = leafnodes && req.path.ends_with("/leafnode");
    if !leaf_taken && (req.path.ends_with("/leafnode") || req.path.ends_with("/mqtt")) {
        // Leaf nodes and MQTT over WebSocket are not served by rnats.
        let what = if req.path.ends_with("/mqtt") {
            "mqtt websocket endpoint not enabled"
        } else {
            "leafnode websocket endpoint not enabled"
        };
        return Err(refuse(404, what));
    }
    let compress = compression && req.offers_deflate();
    let no_masking = req.header("Nats-No-Masking") == Some("true");
    let mut r = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if compress {
        r.push_str("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n");
    }
    if no_masking {
        r.push_str("Nats-No-Masking: true\r\n");
    }
    r.push_str("\r\n");
    Ok(Accepted {
        response: r.into_bytes(),
        compress,
        no_masking,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str) -> Request {
        Request::parse(
            format!(
                "GET / HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}"
            )
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn rfc_example_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrade_checks() {
        let p = OriginPolicy::default();
        let ok = upgrade(&req(""), &p, false, true).unwrap();
        assert!(!ok.compress);
        let ok = upgrade(
            &req("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
            &p,
            false,
            true,
        )
        .unwrap();
        assert!(ok.compress);
        let allowed = OriginPolicy {
            same_origin: false,
            allowed: vec![parse_origin("http://example.com").unwrap()],
        };
        assert!(upgrade(
            &req("Origin: http://example.com\r\n"),
            &allowed,
            false,
            false
        )
        .is_ok());
        let e = upgrade(&req("Origin: http://evil.com\r\n"), &allowed, false, false).unwrap_err();
        assert_eq!(e.status, 403);
        assert!(upgrade(&req(""), &allowed, false, false).is_ok());
        let same = OriginPolicy {
            same_origin: true,
            allowed: vec![],
        };
        assert!(upgrade(
            &req("Origin: http://localhost:8080\r\n"),
            &same,
            false,
            false
        )
        .is_ok());
        assert!(upgrade(
            &req("Origin: https://localhost:8080\r\n"),
            &same,
            false,
            false
        )
        .is_err());
    }

    #[test]
    fn origins() {
        let o = parse_origin("https://Example.com").unwrap();
        assert_eq!((o.host.as_str(), o.port.as_str()), ("example.com", "443"));
        let o = parse_origin("http://[::1]:81/x").unwrap();
        assert_eq!((o.host.as_str(), o.port.as_str()), ("::1", "81"));
        assert!(parse_origin("example.com").is_err());
    }
}
