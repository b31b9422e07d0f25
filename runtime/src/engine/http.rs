//! Outbound HTTP (`wasi:http/outgoing-handler`) under a per-run allow-list.
//!
//! The interface is always linked, but a run may reach only the hosts its deployment
//! grants (`capabilities.allowed_hosts`); with no grant, as for `weir run`, every
//! request is refused with `HTTP-request-denied` before any connection is made.

use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

/// Which hosts a run may call: exact names, or `*.example.com` for subdomains.
#[derive(Clone, Default)]
pub struct HttpPolicy {
    allowed: Arc<[String]>,
}

impl HttpPolicy {
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed.iter().map(|h| h.to_ascii_lowercase()).collect(),
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
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let host = request.uri().host().unwrap_or_default().to_owned();
        if !self.allows(&host) {
            tracing::debug!("outbound HTTP to {host:?} denied");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        drop(fut);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_wildcard() {
        let p = HttpPolicy::new(&["api.example.com".into(), "*.internal.net".into()]);
        assert!(p.allows("api.example.com"));
        assert!(p.allows("API.example.com"));
        assert!(!p.allows("example.com"));
        assert!(!p.allows("evil-api.example.com"));
        assert!(p.allows("a.internal.net"));
        assert!(!p.allows("internal.net"));
        assert!(!HttpPolicy::default().allows("localhost"));
    }
}
