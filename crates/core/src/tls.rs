//! TLS with rustls (ring provider): the server configuration built from a
//! `tls {}` block, and the pieces the connection code needs around
//! tokio-rustls (a writer that flushes what it wrote, error classification
//! for logs).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::AsyncWrite;

use crate::options::TlsOptions;

/// A ready-to-use server TLS setup: the rustls configuration and the options
/// it came from (timeouts, handshake order).
#[derive(Clone)]
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    pub opts: TlsOptions,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("opts", &self.opts)
            .finish()
    }
}

fn open_error(path: &std::path::Path, e: impl std::fmt::Display) -> String {
    format!("open {}: {e}", path.display())
}

/// Reads a PEM certificate chain.
fn load_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    std::fs::metadata(path).map_err(|e| open_error(path, no_such_file(e)))?;
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err("tls: failed to find any PEM data in certificate input".into());
    }
    Ok(certs)
}

/// Go's wording for a missing file.
fn no_such_file(e: io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        "no such file or directory".into()
    } else {
        e.to_string()
    }
}

/// Builds the rustls server configuration for a `tls {}` block; the error
/// reads like nats-server's (`error parsing X509 certificate/key pair: ...`).
pub fn server_config(opts: &TlsOptions) -> Result<TlsServer, String> {
    let (cert_file, key_file) = match (&opts.cert_file, &opts.key_file) {
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => return Err("missing 'key_file' in TLS configuration".into()),
        (None, Some(_)) => return Err("missing 'cert_file' in TLS configuration".into()),
        (None, None) => {
            return Err(
                "TLS requires 'cert_file' and 'key_file' (certificate stores are not supported by rnats)"
                    .into(),
            )
        }
    };
    let pair_err = |e: String| format!("error parsing X509 certificate/key pair: {e}");
    let certs = load_certs(cert_file).map_err(pair_err)?;
    std::fs::metadata(key_file).map_err(|e| pair_err(open_error(key_file, no_such_file(e))))?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        pair_err(format!(
            "tls: failed to find any PEM data in key input ({}: {e})",
            key_file.display()
        ))
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if opts.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let builder = if opts.verify {
        let Some(ca) = &opts.ca_file else {
            return Err(
                "TLS 'verify' requires 'ca_file' in rnats (the system roots are not used)".into(),
            );
        };
        let mut roots = RootCertStore::empty();
        let cas = load_certs(ca).map_err(|_| "failed to parse root ca certificate".to_string())?;
        for c in cas {
            roots
                .add(c)
                .map_err(|_| "failed to parse root ca certificate".to_string())?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("failed to parse root ca certificate: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        if let Some(ca) = &opts.ca_file {
            // Read for the error nats-server would give; unused without verify.
            load_certs(ca).map_err(|_| "failed to parse root ca certificate".to_string())?;
        }
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| pair_err(e.to_string()))?;
    Ok(TlsServer {
        config: Arc::new(config),
        opts: opts.clone(),
    })
}

/// The rustls client configuration for connections this server dials
/// (cluster routes): peers are verified against `ca_file`, and our
/// `cert_file`/`key_file` is presented as the client certificate, as
/// nats-server does on routes.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, String> {
    let Some(ca) = &opts.ca_file else {
        return Err(
            "TLS on routes requires 'ca_file' in rnats (the system roots are not used)".into(),
        );
    };
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca).map_err(|_| "failed to parse root ca certificate".to_string())? {
        roots
            .add(c)
            .map_err(|_| "failed to parse root ca certificate".to_string())?;
    }
    let (Some(cert_file), Some(key_file)) = (&opts.cert_file, &opts.key_file) else {
        return Err("TLS on routes requires 'cert_file' and 'key_file'".into());
    };
    let pair_err = |e: String| format!("error parsing X509 certificate/key pair: {e}");
    let certs = load_certs(cert_file).map_err(pair_err)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| pair_err(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if opts.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| pair_err(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Whether a failed handshake looks like a plaintext client or a port probe
/// (nats-server logs those at debug level, real failures as errors).
pub fn is_probe_error(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::UnexpectedEof {
        return true;
    }
    let text = e.to_string();
    text.contains("InvalidContentType") || text.contains("corrupt message")
}

/// Wraps the write half of a TLS stream so a write returns only once its
/// bytes have left rustls: the connection writer never calls `flush`, and
/// tokio-rustls may keep encrypted records buffered after a `poll_write`.
pub struct FlushingWriter<W> {
    inner: W,
    /// Bytes of the current `write` already accepted, waiting on the flush.
    accepted: Option<usize>,
    /// Closing sends close_notify; a peer that does not read (a slow
    /// consumer) must not keep the connection open past this.
    shutdown_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long closing may wait for close_notify to go out.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl<W> FlushingWriter<W> {
    pub fn new(inner: W) -> Self {
        FlushingWriter {
            inner,
            accepted: None,
            shutdown_deadline: None,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for FlushingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A write that returned Pending is retried with the same buffer
        // (`write_all`): finish its flush and report what it accepted.
        let n = match self.accepted {
            Some(n) => n,
            None => {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
                self.accepted = Some(n);
                n
            }
        };
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        match flushed {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.accepted = None;
                Poll::Ready(r.map(|()| n))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let deadline = self
            .shutdown_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(SHUTDOWN_GRACE)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
