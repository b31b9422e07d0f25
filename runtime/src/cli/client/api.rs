//! One connection to a Weir server: URLs, the bearer key, and errors rendered from the
//! server's problem details (docs/api.md) or from the transport.

use anyhow::{Context, bail};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::path::Path;

use super::output::clean;

/// A client of one server, acting as one workspace (or as the admin).
pub struct Api {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
    /// Whether a --ca-cert was given, for the hint of a TLS error.
    ca_cert: bool,
}

/// What a request carries.
pub enum Body {
    Empty,
    Json(Value),
    Bytes(Vec<u8>, &'static str),
    /// A streamed body of the given length and content type.
    Stream(reqwest::Body, u64, &'static str),
}

/// The server's `application/problem+json` error, or one made up from a response that
/// was not one (a proxy's HTML page, say).
#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub errors: Vec<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{}", render_problem(problem, hint.as_deref()))]
    Status {
        status: StatusCode,
        problem: Problem,
        hint: Option<String>,
    },
    /// Nothing listens at the URL (or the name does not resolve).
    #[error(
        "cannot reach the Weir server at {url} ({reason})\nIs it running? Start one with `weir server`, or point --api-url (WEIR_API_URL) at it."
    )]
    Unreachable { url: String, reason: String },
    /// The TLS handshake failed: most often a certificate this machine does not trust.
    #[error(
        "cannot connect securely to the Weir server at {url}: {reason}\n{}",
        tls_hint(*ca_cert)
    )]
    Tls {
        url: String,
        reason: String,
        ca_cert: bool,
    },
    /// The request failed some other way (timeout, a connection cut mid-answer).
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    /// The server answered 2xx with something that is not the JSON docs/api.md promises.
    #[error("the server's answer to {url} is not JSON: {reason}")]
    NotJson { url: String, reason: String },
}

impl ApiError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `title: detail`, then each entry of `errors` on its own line; the server's text is
/// [`clean`]ed (a detail may quote a guest's message or a name).
pub fn render_problem(problem: &Problem, hint: Option<&str>) -> String {
    clean(&render_raw(problem, hint))
}

fn render_raw(problem: &Problem, hint: Option<&str>) -> String {
    let mut out = problem.title.clone();
    if let Some(detail) = problem.detail.as_deref().filter(|d| !d.is_empty())
        && detail != problem.title
    {
        if out.is_empty() {
            out = detail.to_owned();
        } else {
            out = format!("{out}: {detail}");
        }
    }
    for e in &problem.errors {
        let line = match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str("\n  - ");
        out.push_str(&line);
    }
    if let Some(h) = hint {
        out.push('\n');
        out.push_str(h);
    }
    out
}

/// Reads an error response: problem details when the server sent them, else the status
/// and the start of the body.
pub fn problem_from_body(status: StatusCode, body: &[u8]) -> Problem {
    if let Ok(p) = serde_json::from_slice::<Problem>(body)
        && (!p.title.is_empty() || p.detail.is_some())
    {
        return p;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let detail = if text.is_empty() {
        None
    } else {
        Some(text.chars().take(300).collect())
    };
    Problem {
        title: format!(
            "HTTP {}{}",
            status.as_u16(),
            status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        ),
        detail,
        errors: Vec::new(),
    }
}

fn tls_hint(ca_cert: bool) -> &'static str {
    if ca_cert {
        "Is --ca-cert (WEIR_CA_CERT) the CA that signed the server's certificate, and does the certificate name the host in --api-url? (An https:// URL to a server speaking plain HTTP fails this way too.)"
    } else {
        "If the server's certificate is signed by your own CA (or is self-signed), pass that CA with --ca-cert FILE (or WEIR_CA_CERT). (An https:// URL to a server speaking plain HTTP fails this way too.)"
    }
}

/// The TLS error inside a transport error, if the failure was TLS's.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    find_tls(e)
}

fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    // The TLS error travels inside an io::Error (inside another, at times), whose
    // `source` skips the error it wraps.
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        && let Some(tls) = find_tls(inner)
    {
        return Some(tls);
    }
    e.source().and_then(find_tls)
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"): the
/// outer layers only repeat "error sending request".
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl Api {
    /// A client of the server at `base`; `ca_cert`, a PEM file of one or more CA
    /// certificates, is trusted beside the system's roots.
    pub fn new(base: &str, key: Option<String>, ca_cert: Option<&Path>) -> anyhow::Result<Api> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                anyhow::anyhow!("--api-url {base:?} is not an http:// or https:// URL")
            })?;
        crate::install_crypto_provider();
        let mut builder =
            reqwest::Client::builder().user_agent(concat!("weir-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(file) = ca_cert {
            builder = builder.tls_certs_merge(read_ca_cert(file)?);
        }
        let http = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {}", root_cause(&e)))?;
        Ok(Api {
            http,
            base,
            key: key.filter(|k| !k.is_empty()),
            ca_cert: ca_cert.is_some(),
        })
    }

    /// The server's base URL without a trailing slash, for printing URLs such as a
    /// webhook's.
    pub fn base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The URL of a route; each segment is escaped, so names may hold any character.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends a request and turns any non-2xx answer into an [`ApiError`].
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
        accept: &str,
    ) -> Result<reqwest::Response, ApiError> {
        let url = self.url(segments, query);
        let mut req = self
            .http
            .request(method, url.clone())
            .header(ACCEPT, accept);
        if let Some(key) = &self.key {
            req = req.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(&v),
            Body::Bytes(bytes, content_type) => req.header(CONTENT_TYPE, content_type).body(bytes),
            Body::Stream(body, len, content_type) => req
                .header(CONTENT_TYPE, content_type)
                .header(CONTENT_LENGTH, len)
                .body(body),
        };
        let resp = req.send().await.map_err(|e| {
            if let Some(tls) = tls_error(&e) {
                ApiError::Tls {
                    url: self.base(),
                    reason: tls.to_string(),
                    ca_cert: self.ca_cert,
                }
            } else if e.is_connect() {
                ApiError::Unreachable {
                    url: self.base(),
                    reason: root_cause(&e),
                }
            } else {
                ApiError::Transport {
                    url: url.to_string(),
                    reason: root_cause(&e),
                }
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let hint = (status == StatusCode::UNAUTHORIZED && self.key.is_none())
            .then(|| "No API key was sent: pass --api-key or set WEIR_API_KEY.".to_owned());
        Err(ApiError::Status {
            status,
            problem: problem_from_body(status, &body),
            hint,
        })
    }

    /// Sends a request and reads its JSON answer (`null` for an empty one, as after a 204).
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
    ) -> Result<(StatusCode, Value), ApiError> {
        let url = self.url(segments, query).to_string();
        let resp = self
            .send(method, segments, query, body, "application/json")
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ApiError::Transport {
            url: url.clone(),
            reason: root_cause(&e),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| ApiError::NotJson {
            url,
            reason: e.to_string(),
        })?;
        Ok((status, value))
    }

    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, ApiError> {
        Ok(self
            .call(Method::GET, segments, query, Body::Empty)
            .await?
            .1)
    }

    /// A GET where 404 means "there is none".
    pub async fn get_opt(&self, segments: &[&str]) -> Result<Option<Value>, ApiError> {
        match self.get(segments, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn post(
        &self,
        segments: &[&str],
        body: Value,
    ) -> Result<(StatusCode, Value), ApiError> {
        self.call(Method::POST, segments, &[], Body::Json(body))
            .await
    }

    pub async fn patch(&self, segments: &[&str], body: Value) -> Result<Value, ApiError> {
        Ok(self
            .call(Method::PATCH, segments, &[], Body::Json(body))
            .await?
            .1)
    }

    pub async fn put(&self, segments: &[&str], body: Value) -> Result<Value, ApiError> {
        Ok(self
            .call(Method::PUT, segments, &[], Body::Json(body))
            .await?
            .1)
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<(), ApiError> {
        self.call(Method::DELETE, segments, &[], Body::Empty)
            .await
            .map(|_| ())
    }

    /// A list route, following `next_cursor` until `limit` items (or all of them).
    pub async fn list(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        limit: Option<usize>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            let want = limit.map(|l| l.saturating_sub(items.len()).min(500));
            if let Some(w) = want {
                q.push(("limit", w.to_string()));
            }
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.get(segments, &q).await?;
            let (page_items, next) = split_page(page);
            let empty = page_items.is_empty();
            items.extend(page_items);
            if let Some(l) = limit
                && items.len() >= l
            {
                items.truncate(l);
                break;
            }
            match next {
                Some(n) if !empty && cursor.as_deref() != Some(&n) => cursor = Some(n),
                _ => break,
            }
        }
        Ok(items)
    }
}

/// The certificates of a `--ca-cert` PEM file.
fn read_ca_cert(file: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem =
        std::fs::read(file).with_context(|| format!("cannot read --ca-cert {}", file.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        anyhow::anyhow!(
            "--ca-cert {} is not a PEM file of certificates: {}",
            file.display(),
            root_cause(&e)
        )
    })?;
    if certs.is_empty() {
        bail!(
            "--ca-cert {} holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)",
            file.display()
        );
    }
    Ok(certs)
}

/// `{"items": [...], "next_cursor": ...}`; a bare array is taken as one full page.
pub fn split_page(page: Value) -> (Vec<Value>, Option<String>) {
    match page {
        Value::Array(items) => (items, None),
        Value::Object(mut m) => {
            let items = match m.remove("items") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            let next = m
                .remove("next_cursor")
                .and_then(|c| c.as_str().map(str::to_owned))
                .filter(|c| !c.is_empty());
            (items, next)
        }
        _ => (Vec::new(), None),
    }
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problem_renders_title_detail_and_each_error() {
        let body = json!({"type": "about:blank", "title": "Invalid parameters", "status": 422,
            "detail": "2 parameters do not validate",
            "errors": ["'n': \"x\" is not of type \"integer\"", "'m' is required"]});
        let p = problem_from_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            body.to_string().as_bytes(),
        );
        let e = ApiError::Status {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            problem: p,
            hint: None,
        };
        assert_eq!(
            format!("error: {:#}", anyhow::Error::from(e)),
            "error: Invalid parameters: 2 parameters do not validate\n  - 'n': \"x\" is not of type \"integer\"\n  - 'm' is required"
        );
    }

    #[test]
    fn problem_without_detail_or_json() {
        let p = problem_from_body(
            StatusCode::NOT_FOUND,
            br#"{"title": "Not found", "status": 404}"#,
        );
        assert_eq!(render_problem(&p, None), "Not found");
        let p = problem_from_body(StatusCode::BAD_GATEWAY, b"<html>upstream down</html>");
        assert_eq!(
            render_problem(&p, Some("hint")),
            "HTTP 502 Bad Gateway: <html>upstream down</html>\nhint"
        );
        let p = problem_from_body(StatusCode::UNAUTHORIZED, b"");
        assert_eq!(render_problem(&p, None), "HTTP 401 Unauthorized");
        let body = json!({"title": "Conflict\u{1b}[2J", "detail": "run \u{1b}]0;x\u{7}'a'",
            "errors": ["\u{9b}1mbold"]});
        let p = problem_from_body(StatusCode::CONFLICT, body.to_string().as_bytes());
        assert_eq!(render_problem(&p, None), "Conflict: run 'a'\n  - bold");
    }

    #[test]
    fn urls_escape_segments_and_keep_a_base_path() {
        let api = Api::new("http://127.0.0.1:4200/", None, None).unwrap();
        assert_eq!(
            api.url(
                &["api", "deployments", "a b/c"],
                &[("state", "COMPLETED".into())]
            )
            .as_str(),
            "http://127.0.0.1:4200/api/deployments/a%20b%2Fc?state=COMPLETED"
        );
        let api = Api::new("https://example.com/weir", None, None).unwrap();
        assert_eq!(
            api.url(&["api", "keys"], &[]).as_str(),
            "https://example.com/weir/api/keys"
        );
        assert_eq!(api.base(), "https://example.com/weir");
        assert!(Api::new("localhost:4200", None, None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let err = Api::new("https://x", None, Some(&not_pem)).unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        let err = Api::new("https://x", None, Some(&dir.path().join("nope.pem"))).unwrap_err();
        assert!(err.to_string().contains("cannot read --ca-cert"), "{err:#}");
    }

    #[test]
    fn pages_and_bare_arrays() {
        let (items, next) = split_page(json!({"items": [1, 2], "next_cursor": "abc"}));
        assert_eq!((items.len(), next.as_deref()), (2, Some("abc")));
        let (items, next) = split_page(json!({"items": [], "next_cursor": null}));
        assert_eq!((items.len(), next), (0, None));
        let (items, next) = split_page(json!([1]));
        assert_eq!((items.len(), next), (1, None));
    }
}
