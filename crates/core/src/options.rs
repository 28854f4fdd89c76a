//! Every server setting, with nats-server's defaults. Filled from the config
//! file first (`config`), then from command-line flags (`cli`), which win.

use std::path::PathBuf;
use std::time::Duration;

/// Authentication configured for the global account: `--user/--pass/--auth`
/// and `authorization {}` (single user, token, or a users list; see `auth`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub users: Vec<std::sync::Arc<crate::auth::User>>,
    /// Operator mode (JWT): users come from JWTs, and every client must
    /// present one.
    pub operator_mode: bool,
}

impl SimpleAuth {
    pub fn required(&self) -> bool {
        self.username.is_some()
            || self.token.is_some()
            || !self.users.is_empty()
            || self.operator_mode
    }

    /// Nkey or JWT users exist: INFO carries a nonce for them to sign.
    pub fn has_nkeys(&self) -> bool {
        self.operator_mode || self.users.iter().any(|u| u.is_nkey())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub host: String,
    pub port: u16,
    /// `-p -1`: pick a free port.
    pub random_port: bool,
    pub server_name: Option<String>,
    pub client_advertise: Option<String>,
    pub http_host: String,
    pub http_port: Option<u16>,
    pub max_payload: usize,
    pub max_pending: usize,
    pub max_control_line: usize,
    pub max_connections: usize,
    /// 0 means unlimited.
    pub max_subscriptions: usize,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    pub auth_timeout: Duration,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
    pub auth: SimpleAuth,
    pub no_auth_user: Option<String>,
    /// `accounts { ... }` as configured.
    pub accounts: Vec<crate::account::AccountConfig>,
    /// Top-level `mappings` (the global account's subject mappings).
    pub mappings: Vec<crate::account::mappings::Mapping>,
    /// `system_account` (default `$SYS`).
    pub system_account: Option<String>,
    /// Operator mode (JWT authentication): operators, resolver, preloads.
    pub operator: crate::jwt::config::OperatorConfig,
    pub debug: bool,
    pub trace: bool,
    pub logtime: bool,
    pub log_file: Option<PathBuf>,
    /// Timestamps in UTC instead of local time.
    pub logtime_utc: bool,
    /// Rotate the log file past this many bytes (0: never).
    pub log_size_limit: u64,
    /// Log files kept on rotation, the live one included (0: all).
    pub log_max_num: usize,
    /// rnats: JSON lines instead of nats-server's text format.
    pub log_json: bool,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub jetstream: bool,
    pub store_dir: Option<PathBuf>,
    pub jetstream_domain: Option<String>,
    /// `sync_interval: always`: fsync (grouped) before acknowledging a publish.
    pub sync_always: bool,
    /// How often file stores fsync otherwise (nats-server's default: 2 minutes).
    pub sync_interval: Duration,
    /// Byte limits for memory and file streams; `None` = derived from the machine.
    pub max_memory_store: Option<i64>,
    pub max_file_store: Option<i64>,
    /// The `cluster {}` block (or `--cluster`/`--routes` flags): routes to
    /// the other servers of this cluster. `None`: a single server.
    pub cluster: Option<ClusterOptions>,
    /// The `gateway {}` block: links to other clusters (super-cluster).
    pub gateway: Option<crate::config::gateway::GatewayOptions>,
    /// The `tls {}` block (or the `--tls*` flags): TLS on the client port.
    pub tls: Option<TlsOptions>,
    /// `allow_non_tls`: with TLS configured, plaintext clients are accepted too.
    pub allow_non_tls: bool,
    /// `auth_timeout` came from the config file (otherwise, with TLS, it is
    /// the TLS timeout plus one second, as in nats-server).
    pub auth_timeout_set: bool,
    pub websocket: WebsocketOptions,
    /// The `leafnodes {}` block: accepting leaf nodes and/or dialling hubs.
    pub leafnode: Option<crate::config::leafnode::LeafNodeOptions>,
}

/// A `cluster {}` block, as nats-server reads it (opts.go `parseCluster`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOptions {
    /// `name`; `None`: a dynamic name is generated and may be replaced by a
    /// peer's configured (or greater) name.
    pub name: Option<String>,
    /// Whether this server clusters at all: nats-server listens for and
    /// dials routes only when the cluster port is not 0, so a block (or
    /// flags) without `port`/`listen` (or `--cluster`), or with port 0, only
    /// names the server's cluster. `-1` (random port) enables it.
    pub enabled: bool,
    /// `host`/`listen`: where to accept routes.
    pub host: String,
    /// `port`/`listen`; 0 picks a free port (`-1` in the config).
    pub port: u16,
    /// `advertise`: the `host:port` peers should dial instead of ours.
    pub advertise: Option<String>,
    /// `no_advertise`: do not tell clients about the other servers' URLs.
    pub no_advertise: bool,
    /// `routes`: `nats-route://[user:pass@]host:port` URLs to dial (explicit routes).
    pub routes: Vec<String>,
    /// `authorization { user, password, token, timeout }` required of peers.
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub auth_timeout: Duration,
    /// `connect_retries`: attempts for implicit routes (0: one attempt).
    pub connect_retries: u32,
    /// `connect_backoff`: double the delay between attempts up to 30 s.
    pub connect_backoff: bool,
    /// `pool_size`: connections per peer (default 3; -1 disables pooling).
    pub pool_size: i32,
    /// `accounts`: accounts with a dedicated route (the system account is added).
    pub pinned_accounts: Vec<String>,
    /// `compression`: accepted; rnats announces no compression, so peers do not use it.
    pub compression: Option<String>,
    /// `permissions { import, export }` for what crosses the routes.
    pub import: Option<crate::auth::SubjectPermission>,
    pub export: Option<crate::auth::SubjectPermission>,
    /// `ping_interval`/`ping_max` for routes (nats-server caps the interval at 30 s).
    pub ping_interval: Option<Duration>,
    pub ping_max: Option<u32>,
    /// `write_deadline` for routes (`None`: the server's `write_deadline`).
    pub write_deadline: Option<Duration>,
    /// `tls {}` on the cluster port (and for the routes we dial). nats-server
    /// always requires and verifies the peer's certificate on routes,
    /// whatever `verify` says; `timeout` is the handshake deadline.
    pub tls: Option<TlsOptions>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            name: None,
            enabled: true,
            host: "0.0.0.0".into(),
            port: 6222,
            advertise: None,
            no_advertise: false,
            routes: Vec::new(),
            username: None,
            password: None,
            token: None,
            auth_timeout: Duration::from_secs(2),
            connect_retries: 0,
            connect_backoff: false,
            pool_size: 3,
            pinned_accounts: Vec::new(),
            compression: None,
            import: None,
            export: None,
            ping_interval: None,
            ping_max: None,
            write_deadline: None,
            tls: None,
        }
    }
}

/// A `tls {}` block, as nats-server reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsOptions {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates.
    pub verify: bool,
    /// `verify_and_map`: verify, then map the certificate to a user (rnats
    /// verifies but cannot map identities yet).
    pub map: bool,
    /// Handshake deadline (nats-server's default: 2 seconds).
    pub timeout: Duration,
    /// `handshake_first`: TLS before the INFO.
    pub handshake_first: bool,
    /// `handshake_first: auto` or a duration: fall back to INFO-first when
    /// the client says nothing for this long.
    pub handshake_first_fallback: Option<Duration>,
    /// `min_version: "1.3"`: TLS 1.3 only (TLS 1.2 is the floor anyway).
    pub tls13_only: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            cert_file: None,
            key_file: None,
            ca_file: None,
            verify: false,
            map: false,
            timeout: Duration::from_secs(2),
            handshake_first: false,
            handshake_first_fallback: None,
            tls13_only: false,
        }
    }
}

/// The `websocket {}` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebsocketOptions {
    pub host: Option<String>,
    /// 0: no websocket listener.
    pub port: u16,
    pub random_port: bool,
    pub no_tls: bool,
    pub tls: Option<TlsOptions>,
    pub same_origin: bool,
    pub allowed_origins: Vec<String>,
    pub compression: bool,
    /// Zero: no deadline.
    pub handshake_timeout: Duration,
    pub advertise: Option<String>,
}

impl WebsocketOptions {
    pub fn enabled(&self) -> bool {
        self.port != 0 || self.random_port
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "0.0.0.0".into(),
            port: 4222,
            random_port: false,
            server_name: None,
            client_advertise: None,
            http_host: "0.0.0.0".into(),
            http_port: None,
            max_payload: 1024 * 1024,
            max_pending: 64 * 1024 * 1024,
            max_control_line: 4096,
            max_connections: 64 * 1024,
            max_subscriptions: 0,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(2),
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            auth: SimpleAuth::default(),
            no_auth_user: None,
            accounts: Vec::new(),
            system_account: None,
            mappings: Vec::new(),
            operator: Default::default(),
            debug: false,
            trace: false,
            logtime: true,
            log_file: None,
            logtime_utc: false,
            log_size_limit: 0,
            log_max_num: 0,
            log_json: false,
            pid_file: None,
            ports_file_dir: None,
            config_file: None,
            jetstream: false,
            store_dir: None,
            jetstream_domain: None,
            sync_always: false,
            sync_interval: Duration::from_secs(120),
            max_memory_store: None,
            max_file_store: None,
            cluster: None,
            gateway: None,
            tls: None,
            allow_non_tls: false,
            auth_timeout_set: false,
            websocket: WebsocketOptions::default(),
            leafnode: None,
        }
    }
}
