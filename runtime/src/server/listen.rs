//! Accepting connections so that clients which open connections and never finish a
//! request cannot take the server from everyone else: connections are bounded in all
//! and per peer address (one past the bound is closed at once, and the refusals are
//! logged), every request's headers must arrive within a deadline (which also ends a
//! keep-alive connection left idle), and a request body that stops arriving is cut off.
//! With a certificate and key the server speaks TLS itself (rustls); the handshake
//! has the same deadline as a request's headers.

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Bounds on the connections the server holds.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Connections open at once, from all peers (default: from the process's file
    /// descriptor limit, keeping a quarter of it for the database, components and logs).
    pub max_connections: usize,
    /// Connections open at once from one peer address.
    pub max_per_peer: usize,
    /// Time a client has to send a request's headers, counted from the connection's
    /// start or the end of its previous response (so it is also the keep-alive idle time).
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    pub body_timeout: Duration,
    /// Longest wait at shutdown for requests in progress.
    pub drain_timeout: Duration,
    /// TLS, when the server terminates it itself.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: connections_for(open_files_limit()),
            max_per_peer: 256,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Connections to allow for a file descriptor limit: three quarters of it, at least 64.
fn connections_for(open_files: u64) -> usize {
    (open_files.saturating_mul(3) / 4).clamp(64, 1 << 20) as usize
}

/// This process's limits on open files (soft, hard), if the system tells.
fn open_files() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and reads nothing else.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
}

/// The soft limit on open files of this process.
fn open_files_limit() -> u64 {
    open_files().map_or(1024, |l| l.rlim_cur)
}

/// Raises this process's soft limit on open files to its hard limit (a server holds a
/// descriptor per connection, and Linux's default soft limit is 1024); returns the
/// limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let Some(lim) = open_files() else {
        return 1024;
    };
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads only the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return want.rlim_cur;
        }
    }
    lim.rlim_cur
}

/// Open connections per peer address; a guard gives its place back when dropped.
#[derive(Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

struct PeerGuard {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerGuard> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerGuard {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Refused connections, logged at most once a second with how many since the last line.
#[derive(Default)]
struct Refusals {
    since_logged: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Refusals {
    fn refused(&self, peer: SocketAddr, why: &str) {
        let n = self.since_logged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        self.since_logged.store(0, Ordering::Relaxed);
        tracing::warn!("refused {n} connection(s), the latest from {peer}: {why}");
    }
}

/// A client connection, plain or over TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The TLS configuration for a certificate chain and its private key (PEM files), or
/// an error that names the file at fault.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use anyhow::Context;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets
/// requests in progress finish (for at most `limits.drain_timeout`).
/// Addresses whose connections are closed as soon as they are accepted.
pub type Refuse = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnLimits,
    refuse: Option<Refuse>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_timeout,
    ));
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Arc::new(Peers::default());
    let refusals = Refusals::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (or another resource): wait for some
                    // connections to end rather than spinning on the error.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if refuse.as_ref().is_some_and(|refused| refused(peer.ip())) {
            // Closed unread: the address is blocked for a while (failed
            // authentications); its requests were answered 429 until now.
            continue;
        }
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refusals.refused(
                peer,
                &format!(
                    "{} connections are open, the server's limit",
                    limits.max_connections
                ),
            );
            continue;
        };
        let Some(place) = peers.take(peer.ip(), limits.max_per_peer) else {
            refusals.refused(
                peer,
                &format!(
                    "{} connections are open from {}, the limit per peer",
                    limits.max_per_peer,
                    peer.ip()
                ),
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), limits.tls.clone());
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let io: Box<dyn Io> = match tls {
                None => Box::new(stream),
                Some(config) => {
                    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                    match tokio::time::timeout(handshake_timeout, accept).await {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake with {peer} timed out");
                            return;
                        }
                    }
                }
            };
            let conn = watcher.watch(http.serve_connection(TokioIo::new(io), service));
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
            drop(place);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests were still in progress {:.0} s after shutdown began; their \
             connections are closed",
            limits.drain_timeout.as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_follow_the_file_limit() {
        assert_eq!(connections_for(1024), 768);
        assert_eq!(connections_for(20_000), 15_000);
        assert_eq!(connections_for(10), 64);
    }

    #[test]
    fn a_peer_gets_its_places_back() {
        let peers = Arc::new(Peers::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = peers.take(ip, 2).unwrap();
        let _b = peers.take(ip, 2).unwrap();
        assert!(peers.take(ip, 2).is_none());
        assert!(peers.take("127.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(peers.take(ip, 2).is_some());
    }
}
