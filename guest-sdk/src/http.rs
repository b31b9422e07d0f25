//! Outbound HTTP from a flow or task (`wasi:http`).
//!
//! A run reaches only the hosts its deployment grants (`capabilities.allowed_hosts`);
//! any other request fails with a clear error before a connection is made.
//!
//! [`get`], [`post_json`] and [`request`] wait as long as the host allows; [`request_with`]
//! takes [`RequestOptions`], such as timeouts.

use std::time::Duration;

use crate::{Error, Result};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest,
    RequestOptions as WasiRequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::msg(format!("the response is not the JSON expected: {e}")))
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response> {
    request("GET", url, &[], None)
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, body: &impl serde::Serialize) -> Result<Response> {
    let bytes =
        serde_json::to_vec(body).map_err(|e| Error::msg(format!("cannot encode the body: {e}")))?;
    request(
        "POST",
        url,
        &[("content-type", "application/json")],
        Some(&bytes),
    )
}

/// How a request is made, beyond its method, URL, headers and body ([`request_with`]).
///
/// What is left unset is the host's default. Build it with the methods:
/// `RequestOptions::new().timeout(Duration::from_secs(10))`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// How long connecting (name resolution, TCP and TLS) may take.
    pub connect_timeout: Option<Duration>,
    /// How long the first byte of the response may take once the request is sent.
    pub first_byte_timeout: Option<Duration>,
    /// How long the response may pause between two chunks of its body.
    pub between_bytes_timeout: Option<Duration>,
}

impl RequestOptions {
    /// The host's defaults.
    pub fn new() -> Self {
        RequestOptions::default()
    }

    /// The same limit for each step: connecting, the first byte of the response and
    /// each pause between bytes of its body (not the request as a whole).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.connect_timeout(timeout)
            .first_byte_timeout(timeout)
            .between_bytes_timeout(timeout)
    }

    /// How long connecting may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long the first byte of the response may take once the request is sent.
    #[must_use]
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.first_byte_timeout = Some(timeout);
        self
    }

    /// How long the response may pause between two chunks of its body.
    #[must_use]
    pub fn between_bytes_timeout(mut self, timeout: Duration) -> Self {
        self.between_bytes_timeout = Some(timeout);
        self
    }

    /// The `wasi:http` options, `None` when everything is the host's default.
    fn to_wasi(self) -> Result<Option<WasiRequestOptions>> {
        if self == RequestOptions::default() {
            return Ok(None);
        }
        // wasi:clocks durations are nanoseconds in a u64 (about 584 years).
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let unsupported =
            |what: &str| Error::msg(format!("the host does not support a {what} timeout"));
        let options = WasiRequestOptions::new();
        if let Some(d) = self.connect_timeout {
            options
                .set_connect_timeout(Some(nanos(d)))
                .map_err(|()| unsupported("connect"))?;
        }
        if let Some(d) = self.first_byte_timeout {
            options
                .set_first_byte_timeout(Some(nanos(d)))
                .map_err(|()| unsupported("first-byte"))?;
        }
        if let Some(d) = self.between_bytes_timeout {
            options
                .set_between_bytes_timeout(Some(nanos(d)))
                .map_err(|()| unsupported("between-bytes"))?;
        }
        Ok(Some(options))
    }
}

/// Any request. `url` is `http://` or `https://`, with a host and an optional port.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response> {
    request_with(method, url, headers, body, &RequestOptions::default())
}

/// Any request, with [`RequestOptions`] (timeouts); otherwise as [`request`].
pub fn request_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    options: &RequestOptions,
) -> Result<Response> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err(Error::msg(format!(
            "{url:?} is not an http:// or https:// URL"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(Error::msg(format!("{url:?} has no host")));
    }
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| Error::msg(format!("header {name:?}: {e:?}")))?;
    }
    let options = options.to_wasi()?;
    let req = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_owned()),
    };
    let invalid = |what: &str| Error::msg(format!("{url:?}: invalid {what}"));
    req.set_method(&method).map_err(|_| invalid("method"))?;
    req.set_scheme(Some(&scheme))
        .map_err(|_| invalid("scheme"))?;
    req.set_authority(Some(authority))
        .map_err(|_| invalid("host"))?;
    req.set_path_with_query(Some(path))
        .map_err(|_| invalid("path"))?;
    let outgoing = req
        .body()
        .map_err(|_| Error::msg("the request body is unavailable"))?;
    if let Some(bytes) = body {
        let stream = outgoing
            .write()
            .map_err(|_| Error::msg("the request body is unavailable"))?;
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| Error::msg(format!("sending the body failed: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| failed(authority, e))?;
    let pending = outgoing_handler::handle(req, options).map_err(|e| failed(authority, e))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(failed(authority, e)),
        _ => {
            return Err(Error::msg(format!(
                "the request to {authority} ended without a response"
            )));
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| Error::msg("the response body is unavailable"))?;
    let stream = incoming
        .stream()
        .map_err(|_| Error::msg("the response body is unavailable"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => {
                return Err(Error::msg(format!(
                    "reading the response from {authority} failed: {e:?}"
                )));
            }
        }
    }
    drop(stream);
    IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn failed(authority: &str, e: ErrorCode) -> Error {
    match e {
        ErrorCode::HttpRequestDenied => Error::msg(format!(
            "outbound HTTP to {authority} is not allowed for this run: its deployment must grant the \
             host (capabilities.allowed_hosts)"
        ))
        .kind("http-denied"),
        ErrorCode::DestinationIpProhibited => Error::msg(format!(
            "outbound HTTP to {authority} was refused: it resolves to an address this server's \
             egress policy denies (loopback, private, link-local and metadata addresses are \
             closed unless the operator opens them with --egress-allow)"
        ))
        .kind("http-denied"),
        other => Error::msg(format!("the request to {authority} failed: {other:?}")).kind("http"),
    }
}
