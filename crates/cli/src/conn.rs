//! Connection options shared by every verb (`-s`, `--user`, `--creds`, TLS,
//! `--timeout`, `--context`), mirroring the nats CLI's global flags. Flags and
//! their `NATS_*` environment variables win over the selected context, which
//! wins over the built-in defaults.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use clap::Args;

use crate::output::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct ConnOpts {
    /// NATS server urls (default nats://127.0.0.1:4222)
    #[arg(
        short = 's',
        long = "server",
        env = "NATS_URL",
        global = true,
        value_name = "URL"
    )]
    pub server: Option<String>,

    /// Configuration context to use instead of the selected one
    #[arg(long, env = "NATS_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Username or Token
    #[arg(long, env = "NATS_USER", global = true, value_name = "USER")]
    pub user: Option<String>,

    /// Password
    #[arg(long, env = "NATS_PASSWORD", global = true, value_name = "PASSWORD")]
    pub password: Option<String>,

    /// User credentials file (JWT authentication)
    #[arg(long, env = "NATS_CREDS", global = true, value_name = "FILE")]
    pub creds: Option<PathBuf>,

    /// User NKEY seed file (NKEY authentication)
    #[arg(long, env = "NATS_NKEY", global = true, value_name = "FILE")]
    pub nkey: Option<PathBuf>,

    /// TLS client certificate file
    #[arg(long, env = "NATS_CERT", global = true, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,

    /// TLS client private key file
    #[arg(long, env = "NATS_KEY", global = true, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,

    /// TLS certificate authority chain file
    #[arg(long, env = "NATS_CA", global = true, value_name = "FILE")]
    pub tlsca: Option<PathBuf>,

    /// Perform the TLS handshake before expecting the server greeting
    #[arg(long, global = true)]
    pub tlsfirst: bool,

    /// Time to wait on responses from NATS
    #[arg(long, env = "NATS_TIMEOUT", default_value = "5s", global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Use a specific inbox prefix
    #[arg(long, env = "NATS_INBOX_PREFIX", global = true, value_name = "PREFIX")]
    pub inbox_prefix: Option<String>,
}

/// The server used when neither a flag, `NATS_URL` nor a context names one.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

impl ConnOpts {
    /// The server URL list in effect.
    pub fn server_url(&self) -> &str {
        self.server.as_deref().unwrap_or(DEFAULT_URL)
    }

    /// Fill options not given by flags or environment from the context named
    /// by `--context`/`NATS_CONTEXT`, or else the selected one (if any).
    pub fn apply_context(&mut self) -> Result<()> {
        let ctx = match &self.context {
            Some(name) => crate::context::load(name)?,
            None => match crate::context::selected()? {
                Some(name) => crate::context::load(&name)?,
                None => return Ok(()),
            },
        };
        let s = ctx.settings;
        fn fill<T>(slot: &mut Option<T>, v: Option<T>) {
            if slot.is_none() {
                *slot = v;
            }
        }
        let nonempty = |v: &str| (!v.is_empty()).then(|| v.to_string());
        let path = |v: &str| (!v.is_empty()).then(|| PathBuf::from(v));
        fill(&mut self.server, nonempty(&s.url));
        if self.user.is_none() && self.password.is_none() {
            // A context's token is sent the way `--user` without a password is.
            self.user = nonempty(&s.user).or_else(|| nonempty(&s.token));
            self.password = nonempty(&s.password);
        }
        fill(&mut self.creds, path(&s.creds));
        fill(&mut self.nkey, path(&s.nkey));
        fill(&mut self.tlscert, path(&s.cert));
        fill(&mut self.tlskey, path(&s.key));
        fill(&mut self.tlsca, path(&s.ca));
        fill(&mut self.inbox_prefix, nonempty(&s.inbox_prefix));
        self.tlsfirst |= s.tls_first;
        Ok(())
    }

    /// Connect to the first reachable server with the configured options.
    pub async fn connect(&self) -> Result<async_nats::Client> {
        let mut opts = async_nats::ConnectOptions::new()
            .name("rnats CLI")
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout));

        match (&self.user, &self.password) {
            (Some(u), Some(p)) => {
                opts = opts.user_and_password(u.clone(), p.clone());
            }
            // As in the nats CLI a user without a password is a token.
            (Some(u), None) => opts = opts.token(u.clone()),
            (None, Some(_)) => return Err(anyhow!("--password requires --user")),
            (None, None) => {}
        }
        if let Some(creds) = &self.creds {
            opts = opts
                .credentials_file(creds)
                .await
                .with_context(|| format!("could not load credentials {}", creds.display()))?;
        }
        if let Some(nkey) = &self.nkey {
            let text = std::fs::read_to_string(nkey)
                .with_context(|| format!("could not read nkey {}", nkey.display()))?;
            let seed = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with('S'))
                .ok_or_else(|| anyhow!("no nkey seed found in {}", nkey.display()))?;
            opts = opts.nkey(seed.to_string());
        }
        match (&self.tlscert, &self.tlskey) {
            (Some(c), Some(k)) => {
                opts = opts
                    .add_client_certificate(c.clone(), k.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => return Err(anyhow!("--tlscert and --tlskey must be given together")),
        }
        if let Some(ca) = &self.tlsca {
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        if self.tlsfirst {
            opts = opts.tls_first();
        }
        if let Some(p) = &self.inbox_prefix {
            opts = opts.custom_inbox_prefix(p.clone());
        }
        let urls: Vec<async_nats::ServerAddr> = self
            .server_url()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<async_nats::ServerAddr>()
                    .map_err(|e| anyhow!("invalid server url {s:?}: {e}"))
            })
            .collect::<Result<_>>()?;
        opts.connect(urls)
            .await
            .map_err(|e| anyhow!("could not connect to {}: {e}", self.server_url()))
    }

    /// A JetStream context with the configured timeout.
    pub async fn jetstream(&self) -> Result<Js> {
        let client = self.connect().await?;
        let ctx = async_nats::jetstream::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client.clone());
        Ok(Js {
            client,
            ctx,
            timeout: self.timeout,
        })
    }
}

/// A connection plus its JetStream context.
pub struct Js {
    pub client: async_nats::Client,
    pub ctx: async_nats::jetstream::Context,
    pub timeout: Duration,
}

/// A JetStream API error, printed the way the nats CLI prints it:
/// `<description> (<err_code>)`.
#[derive(Debug)]
pub struct ApiError {
    pub err_code: u64,
    pub description: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.description, self.err_code)
    }
}

impl std::error::Error for ApiError {}

impl Js {
    /// Send a JetStream API request (`$JS.API.<subject>`) and return the raw
    /// JSON response, turning an `{"error":...}` reply into an [`ApiError`].
    pub async fn api(
        &self,
        subject: &str,
        payload: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let body = match payload {
            Some(p) => bytes::Bytes::from(serde_json::to_vec(p)?),
            None => bytes::Bytes::new(),
        };
        let full = format!("$JS.API.{subject}");
        let req = async_nats::Request::new()
            .payload(body)
            .timeout(Some(self.timeout));
        let msg = self
            .client
            .send_request(full.clone(), req)
            .await
            .map_err(|e| match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    anyhow!("JetStream not enabled or not reachable (no responders for {full})")
                }
                async_nats::RequestErrorKind::TimedOut => {
                    anyhow!("JetStream API request {full} timed out")
                }
                _ => anyhow!("JetStream API request {full} failed: {e}"),
            })?;
        let resp: serde_json::Value = serde_json::from_slice(&msg.payload)
            .with_context(|| format!("invalid JSON response to {full}"))?;
        if let Some(err) = resp.get("error") {
            return Err(ApiError {
                err_code: err.get("err_code").and_then(|v| v.as_u64()).unwrap_or(0),
                description: err
                    .get("description")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown JetStream error")
                    .to_string(),
            }
            .into());
        }
        Ok(resp)
    }
}
