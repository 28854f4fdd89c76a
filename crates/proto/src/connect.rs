//! The client's `CONNECT` options. nats-server's defaults apply to absent
//! fields: notably `verbose` and `pedantic` are true unless the client says no.

use serde::Deserialize;

/// What a client declares in `CONNECT`. Unknown fields are ignored, and a
/// `null` is the same as an absent field (clients such as async-nats send
/// `"name":null`); absent fields take nats-server's defaults via the accessors.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ConnectOptions {
    verbose: Option<bool>,
    pedantic: Option<bool>,
    pub tls_required: Option<bool>,
    echo: Option<bool>,
    headers: Option<bool>,
    no_responders: Option<bool>,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub protocol: Option<i64>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub nkey: Option<String>,
    pub sig: Option<String>,
    pub jwt: Option<String>,
}

impl ConnectOptions {
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// `+OK` after every operation; true unless the client says no.
    pub fn verbose(&self) -> bool {
        self.verbose.unwrap_or(true)
    }

    /// Strict checks (e.g. publish subjects); true unless the client says no.
    pub fn pedantic(&self) -> bool {
        self.pedantic.unwrap_or(true)
    }

    /// Echo is on unless the client turned it off.
    pub fn echo(&self) -> bool {
        self.echo.unwrap_or(true)
    }

    pub fn headers(&self) -> bool {
        self.headers.unwrap_or(false)
    }

    pub fn no_responders(&self) -> bool {
        self.no_responders.unwrap_or(false)
    }

    /// The protocol level (0 = original, 1 = dynamic INFO updates).
    pub fn protocol(&self) -> i64 {
        self.protocol.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_take_nats_server_defaults() {
        let c = ConnectOptions::from_json(b"{}").unwrap();
        assert!(c.verbose() && c.pedantic() && c.echo() && !c.headers());
        assert_eq!(c, ConnectOptions::default());
        let c = ConnectOptions::from_json(
            br#"{"verbose":false,"pedantic":false,"echo":false,"headers":true,"no_responders":true,"lang":"rust","extra":[1]}"#,
        )
        .unwrap();
        assert!(!c.verbose() && !c.pedantic() && !c.echo() && c.headers() && c.no_responders());
        assert_eq!(c.lang.as_deref(), Some("rust"));
        // async-nats sends nulls for what it does not set.
        let c = ConnectOptions::from_json(
            br#"{"verbose":false,"pedantic":false,"jwt":null,"nkey":null,"sig":null,"name":null,"user":null,"pass":null,"auth_token":null,"echo":null,"protocol":1}"#,
        )
        .unwrap();
        assert!(c.echo() && c.name.is_none());
        assert_eq!(c.protocol(), 1);
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(ConnectOptions::from_json(b"{bad").is_err());
        assert!(ConnectOptions::from_json(br#"{"verbose":"x"}"#).is_err());
    }
}
