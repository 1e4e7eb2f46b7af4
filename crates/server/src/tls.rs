//! Optional TLS termination inside renkei, for small deployments without a reverse
//! proxy: PEM certificate and key loading (rustls with the `ring` provider, TLS 1.2 and
//! 1.3, ALPN `h2` and `http/1.1`) and an accept loop serving the router over it, with
//! each request carrying the client address as `ConnectInfo<SocketAddr>` so the rate
//! limiter sees it.

use anyhow::{bail, Context as _};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete the TLS handshake before its connection is
/// dropped; without a bound, idle half-open connections would pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections may take to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or
/// SEC1) into a server configuration for TLS 1.2 and 1.3 offering HTTP/2 and HTTP/1.1.
pub fn load_tls_config(
    cert_pem_path: &Path,
    key_pem_path: &Path,
) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_pem = std::fs::read(cert_pem_path)
        .with_context(|| format!("reading the TLS certificate {}", cert_pem_path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "the TLS certificate {} is not valid PEM",
                cert_pem_path.display()
            )
        })?;
    if certificates.is_empty() {
        bail!(
            "the TLS certificate {} holds no CERTIFICATE block",
            cert_pem_path.display()
        );
    }
    let key_pem = std::fs::read(key_pem_path)
        .with_context(|| format!("reading the TLS private key {}", key_pem_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).with_context(|| {
        format!(
            "the TLS private key {} holds no valid PEM private key",
            key_pem_path.display()
        )
    })?;
    // An explicit provider rather than the process default: the default is ambiguous
    // (and panics) when more than one provider is compiled into the binary.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("choosing the TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .with_context(|| {
            format!(
                "the TLS private key {} does not fit the certificate {}",
                key_pem_path.display(),
                cert_pem_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `service` (the router, or [`crate::HttpService`]) over TLS on `listener`
/// until `shutdown` resolves; then stops accepting and gives open connections
/// [`SHUTDOWN_GRACE`] to finish. A failed handshake or connection is logged at debug
/// level and never stops the loop.
pub async fn serve_tls<S>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically out of file descriptors: pause rather than spin.
                    tracing::warn!(%error, "accepting a TCP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls_stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let tower_service = TowerToHyperService::new(service);
            let hyper_service =
                hyper::service::service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    tower_service.call(request.map(Body::new))
                });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), hyper_service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "connections still open after the shutdown grace period were dropped"
        );
    }
    Ok(())
}
