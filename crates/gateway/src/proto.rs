//! The gateway `INFO` (nats-server's `Info` with its gateway fields). The
//! `CONNECT` is the route one (`rnats_proto::route::RouteConnect`), which
//! carries the `gateway` name. `gateway_cmd_payload` is a Go `[]byte`, so
//! it travels base64-encoded.

use serde::{Deserialize, Serialize};

/// nats-server's gateway commands (`gateway_cmd`).
pub const CMD_GOSSIP: u8 = 1;
pub const CMD_ALL_SUBS_START: u8 = 2;
pub const CMD_ALL_SUBS_COMPLETE: u8 = 3;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    #[serde(rename = "server_id", default)]
    pub id: String,
    #[serde(
        rename = "server_name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default)]
    pub proto: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub go: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub headers: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(default)]
    pub max_payload: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway_url: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gateway_cmd: u8,
    /// Base64 of the bytes (Go marshals `[]byte` so).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway_cmd_payload: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub gateway_nrp: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub gateway_iom: bool,
}

impl GatewayInfo {
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = b"INFO ".to_vec();
        serde_json::to_writer(&mut line, self).unwrap_or_default();
        line.extend_from_slice(b"\r\n");
        line
    }

    /// A command INFO about one account (`gateway_cmd` 2 or 3).
    pub fn account_cmd(gateway: &str, cmd: u8, account: &str) -> Vec<u8> {
        use base64::Engine;
        GatewayInfo {
            gateway: gateway.to_string(),
            gateway_cmd: cmd,
            gateway_cmd_payload: base64::engine::general_purpose::STANDARD.encode(account),
            ..Default::default()
        }
        .to_line()
    }

    /// The account a command INFO names.
    pub fn cmd_account(&self) -> Option<String> {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(&self.gateway_cmd_payload)
            .ok()?;
        String::from_utf8(b).ok().filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_payload_is_base64() {
        let line = GatewayInfo::account_cmd("A", CMD_ALL_SUBS_START, "$G");
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains("\"gateway_cmd\":2"), "{text}");
        assert!(text.contains("\"gateway_cmd_payload\":\"JEc=\""), "{text}");
        let info: GatewayInfo =
            serde_json::from_str(text.trim_start_matches("INFO ").trim()).unwrap();
        assert_eq!(info.cmd_account().as_deref(), Some("$G"));
    }

    #[test]
    fn hash_is_nats_servers() {
        // sha256("A") starts 55 9a ea d0 82 64: base-62 digits of each byte.
        assert_eq!(crate::gw_hash("A"), "NUmM6c");
    }
}
