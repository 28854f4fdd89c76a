//! The client's `CONNECT` options. nats-server's defaults apply to absent
//! fields: notably `verbose` and `pedantic` are true unless the client says no.

use serde::Deserialize;

fn yes() -> bool {
    true
}

/// What a client declares in `CONNECT`. Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ConnectOptions {
    #[serde(default = "yes")]
    pub verbose: bool,
    #[serde(default = "yes")]
    pub pedantic: bool,
    #[serde(default)]
    pub tls_required: bool,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub headers: bool,
    #[serde(default)]
    pub no_responders: bool,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub lang: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub protocol: i64,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub pass: Option<String>,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub nkey: Option<String>,
    #[serde(default)]
    pub sig: Option<String>,
    #[serde(default)]
    pub jwt: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            tls_required: false,
            echo: None,
            headers: false,
            no_responders: false,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            protocol: 0,
            user: None,
            pass: None,
            auth_token: None,
            nkey: None,
            sig: None,
            jwt: None,
        }
    }
}

impl ConnectOptions {
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Echo is on unless the client turned it off.
    pub fn echo(&self) -> bool {
        self.echo.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_take_nats_server_defaults() {
        let c = ConnectOptions::from_json(b"{}").unwrap();
        assert!(c.verbose && c.pedantic && c.echo() && !c.headers);
        let c = ConnectOptions::from_json(
            br#"{"verbose":false,"pedantic":false,"echo":false,"headers":true,"no_responders":true,"lang":"rust","extra":[1]}"#,
        )
        .unwrap();
        assert!(!c.verbose && !c.pedantic && !c.echo() && c.headers && c.no_responders);
        assert_eq!(c.lang, "rust");
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(ConnectOptions::from_json(b"{bad").is_err());
        assert!(ConnectOptions::from_json(br#"{"verbose":"x"}"#).is_err());
    }
}
