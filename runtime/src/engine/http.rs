//! Outbound HTTP (`wasi:http/outgoing-handler`) under a per-run allow-list and the
//! operator's egress policy.
//!
//! The interface is always linked, but a run may reach only the hosts its deployment
//! grants (`capabilities.allowed_hosts`); with no grant, as for `weir run`, every
//! request is refused with `HTTP-request-denied` before any connection is made. A
//! granted name is then resolved here, and only the addresses the operator's
//! [`Egress`] policy allows are connected to (the guest gets
//! `destination-IP-prohibited` when none is): the address checked is the address
//! connected to, so a name that resolves elsewhere between the check and the connection
//! cannot slip through. A redirect is a new request from the guest and passes the same
//! checks.

use crate::model::egress::Egress;
use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Called with a line for the run's log when a request is refused by the egress policy.
pub type Refusals = Arc<dyn Fn(String) + Send + Sync>;

/// Which hosts a run may call (exact names, or `*.example.com` for subdomains), and
/// which addresses the node lets any run reach.
#[derive(Clone, Default)]
pub struct HttpPolicy {
    allowed: Arc<[String]>,
    egress: Egress,
    refusals: Option<Refusals>,
}

impl HttpPolicy {
    pub fn new(allowed: &[String], egress: Egress, refusals: Option<Refusals>) -> Self {
        Self {
            allowed: allowed.iter().map(|h| h.to_ascii_lowercase()).collect(),
            egress,
            refusals,
        }
    }

    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed
            .iter()
            .any(|rule| match rule.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => *rule == host,
            })
    }
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let host = request.uri().host().unwrap_or_default().to_owned();
        if !self.allows(host.trim_start_matches('[').trim_end_matches(']')) {
            tracing::debug!("outbound HTTP to {host:?} denied");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        drop(fut);
        let egress = self.egress.clone();
        let refusals = self.refusals.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = send(request, options, &egress, refusals.as_ref()).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// How long each step may take when the guest does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Resolves the request's host, connects to an address the egress policy allows, and
/// sends the request; returns the response and the connection's remaining work.
async fn send(
    mut req: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    egress: &Egress,
    refusals: Option<&Refusals>,
) -> Result<
    (
        http::Response<TimedBody>,
        impl Future<Output = Result<(), Error>> + Send + use<>,
    ),
    Error,
> {
    let uri = req.uri().clone();
    let tls = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let opt = |f: fn(&RequestOptions) -> Option<Duration>| {
        options
            .as_ref()
            .and_then(f)
            .unwrap_or(DEFAULT_TIMEOUT)
            .max(Duration::from_nanos(1))
    };
    let connect_timeout = opt(|o| o.connect_timeout);
    let first_byte_timeout = opt(|o| o.first_byte_timeout);
    let between_bytes_timeout = opt(|o| o.between_bytes_timeout);

    let addrs = resolve(name, port, connect_timeout).await?;
    let mut refused = None;
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .filter(|a| match egress.check(a.ip()) {
            Ok(()) => true,
            Err(why) => {
                refused.get_or_insert((a.ip(), why));
                false
            }
        })
        .copied()
        .collect();
    if allowed.is_empty() {
        let Some((ip, why)) = refused else {
            return Err(Error::DestinationNotFound);
        };
        let line = format!(
            "outbound HTTP to {host} refused: it resolves to {ip}, {why}, which this \
             server's egress policy denies (the operator can open a range with \
             --egress-allow)"
        );
        tracing::info!("{line}");
        if let Some(note) = refusals {
            note(line);
        }
        return Err(Error::DestinationIpProhibited);
    }
    let stream = connect(&allowed, connect_timeout).await?;

    let io: Box<dyn Stream> = if tls {
        let server_name = match name.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(name.to_owned())
                .map_err(|_| Error::HttpRequestUriInvalid)?,
        };
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        let stream = tokio::time::timeout(connect_timeout, connector.connect(server_name, stream))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(stream)
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(io)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only the path: scheme and authority are for proxies.
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *req.uri_mut() = http::Uri::from(path);

    // The connection does the I/O while the response is awaited; if it ends first (the
    // peer closed), the response's own error tells why.
    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(req));
    tokio::pin!(response);
    let res = loop {
        tokio::select! {
            r = &mut response => break r,
            c = &mut conn, if !conn_done => {
                conn_done = true;
                c?;
            }
        }
    };
    let res = res.map_err(|_| Error::ConnectionReadTimeout)??;
    let io = async move {
        if conn_done {
            return Ok(());
        }
        conn.await.map_err(|e| {
            if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }
        })
    };
    Ok((
        res.map(|body| TimedBody::new(body, between_bytes_timeout)),
        io,
    ))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// The addresses of `name` (an IP literal is its own address).
async fn resolve(name: &str, port: u16, limit: Duration) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(limit, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?;
    Ok(found.collect())
}

/// A connection to the first of `addrs` that answers.
async fn connect(addrs: &[SocketAddr], limit: Duration) -> Result<TcpStream, Error> {
    let mut last = Error::DestinationUnavailable;
    for addr in addrs {
        match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Error::ConnectionRefused;
            }
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

/// The TLS client configuration (the web's root certificates), built once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            match rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
            {
                Ok(b) => Some(Arc::new(
                    b.with_root_certificates(roots).with_no_client_auth(),
                )),
                Err(e) => {
                    tracing::error!("no TLS client configuration: {e}");
                    None
                }
            }
        })
        .clone()
        .ok_or(Error::TlsProtocolError)
}

/// A response body that fails when no frame arrives for `between` (the guest's
/// between-bytes timeout).
pub struct TimedBody {
    body: Incoming,
    between: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(body: Incoming, between: Duration) -> Self {
        Self {
            body,
            between,
            idle: Box::pin(tokio::time::sleep(between)),
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_wildcard() {
        let p = HttpPolicy::new(
            &["api.example.com".into(), "*.internal.net".into()],
            Egress::default(),
            None,
        );
        assert!(p.allows("api.example.com"));
        assert!(p.allows("API.example.com"));
        assert!(!p.allows("example.com"));
        assert!(!p.allows("evil-api.example.com"));
        assert!(p.allows("a.internal.net"));
        assert!(!p.allows("internal.net"));
        assert!(!HttpPolicy::default().allows("localhost"));
    }

    #[tokio::test]
    async fn literal_addresses_are_their_own_resolution() {
        let a = resolve("::1", 80, Duration::from_secs(1)).await.unwrap();
        assert_eq!(a, vec!["[::1]:80".parse().unwrap()]);
        // A numeric spelling resolves (inet_aton) to the address it means, and that
        // address is what the egress policy judges.
        let b = resolve("2130706433", 80, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            b.iter().all(|a| a.ip() == IpAddr::from([127, 0, 0, 1])),
            "{b:?}"
        );
    }
}
