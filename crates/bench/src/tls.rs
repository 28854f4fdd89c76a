//! tls.rs — the client-port transport (plain TCP, or TLS after the plain INFO
//! the way NATS clients upgrade) and the bench's own certificate: a CA and a
//! server certificate for 127.0.0.1/localhost made once per process with
//! rcgen, written as PEM files into each server's temp dir for its `tls {}`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A connection to the client port, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_read_timeout(d)
    }

    pub fn read_timeout(&self) -> std::io::Result<Option<Duration>> {
        self.tcp().read_timeout()
    }

    /// Upgrades a plain stream to TLS and completes the handshake, trusting
    /// only the bench's CA.
    pub fn upgrade(self) -> Result<Self> {
        let Stream::Plain(mut tcp) = self else {
            return Ok(self);
        };
        let certs = certs()?;
        let name = ServerName::try_from("127.0.0.1").context("server name")?;
        let mut conn =
            ClientConnection::new(certs.client.clone(), name).context("new TLS session")?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).context("TLS handshake")?;
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The bench's server certificate and the client configuration trusting it.
pub struct Certs {
    cert_pem: String,
    key_pem: String,
    client: Arc<ClientConfig>,
}

/// Made on first use, kept until the process exits.
pub fn certs() -> Result<&'static Certs> {
    static CERTS: OnceLock<std::result::Result<Certs, String>> = OnceLock::new();
    CERTS
        .get_or_init(|| make_certs().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("making the TLS certificate: {e}"))
}

fn make_certs() -> Result<Certs> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rnats-bench CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;

    let mut roots = RootCertStore::empty();
    roots
        .add(ca_cert.der().clone())
        .context("trust the bench CA")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Certs {
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        client: Arc::new(client),
    })
}

/// Writes the certificate and key into `dir` and returns the `tls {}` block
/// of the server config file pointing to them.
pub fn config_block(dir: &Path) -> Result<String> {
    let c = certs()?;
    let cert = dir.join("server.pem");
    let key = dir.join("server-key.pem");
    std::fs::write(&cert, &c.cert_pem).context("write server.pem")?;
    std::fs::write(&key, &c.key_pem).context("write server-key.pem")?;
    Ok(format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
}

/// Fails unless a client connection to `addr` ends up on TLS, so a server
/// that ignores its `tls {}` block shows as FAILED rather than fast.
pub fn require_tls(addr: std::net::SocketAddr) -> Result<()> {
    let mut c = crate::proto::Conn::connect(addr)?;
    c.round_trip(Duration::from_secs(10))?;
    if !c.sock.is_tls() {
        anyhow::bail!("the server's INFO did not ask for TLS");
    }
    Ok(())
}
