//! The server's `INFO` message, with nats-server's field names, order and
//! omission rules, so clients that parse it (or compare it byte for byte) see
//! what they would from nats-server.

use serde::Serialize;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The JSON body of `INFO`. Fields marked optional are left out when empty,
/// exactly as nats-server does.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    /// The nats-server version we are compatible with: clients gate features on it.
    pub version: String,
    pub proto: u8,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    /// nats-server reports its Go version here; we report our implementation.
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_available: bool,
    pub max_payload: usize,
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub client_id: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// Set on the INFO that answers a protocol-1 client's first PING.
    #[serde(skip_serializing_if = "is_false")]
    pub connect_info: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub api_lvl: u64,
}

impl ServerInfo {
    /// The complete `INFO {...} \r\n` line (nats-server puts a space before CRLF).
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = b"INFO ".to_vec();
        // Serializing plain strings, numbers and bools cannot fail.
        serde_json::to_writer(&mut line, self).expect("INFO serializes");
        line.extend_from_slice(b" \r\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_line_matches_nats_server_layout() {
        let info = ServerInfo {
            server_id: "NID".into(),
            server_name: "n".into(),
            version: "2.15.0".into(),
            proto: 1,
            go: "rust".into(),
            host: "0.0.0.0".into(),
            port: 4222,
            headers: true,
            max_payload: 1048576,
            client_id: 5,
            client_ip: "127.0.0.1".into(),
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8(info.to_line()).unwrap(),
            "INFO {\"server_id\":\"NID\",\"server_name\":\"n\",\"version\":\"2.15.0\",\"proto\":1,\
             \"go\":\"rust\",\"host\":\"0.0.0.0\",\"port\":4222,\"headers\":true,\
             \"max_payload\":1048576,\"client_id\":5,\"client_ip\":\"127.0.0.1\"} \r\n"
        );
    }
}
