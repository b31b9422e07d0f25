//! The API's one error type, rendered as `application/problem+json`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// One entry per offending field, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no key, a bad key, a revoked key, a bad webhook signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a form from another site, or without the session's security token.
    #[error("{0}")]
    Forbidden(String),
    /// 403: the workspace is over a quota the admin set (components, storage).
    #[error("{0}")]
    Quota(String),
    /// 404: no such object in the caller's workspace.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 404 for a credential in the path that names nothing (a webhook token): answered
    /// as any missing object, but counted as a failed authentication.
    #[error("{0} not found")]
    UnknownToken(&'static str),
    /// 409: a name taken, an object in use, a run in the wrong state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the limit.
    #[error("the request body is over the limit of {0} bytes")]
    TooLarge(usize),
    /// 415: the body is not of a type the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the request is well formed but invalid.
    #[error("{title}")]
    Invalid { title: String, errors: Vec<String> },
    /// 429 with `Retry-After`: the caller (its address or its workspace) is over a rate
    /// limit, or its address made too many failed authentications.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after: std::time::Duration,
    },
    /// 503 with `Retry-After`: the server cannot take this now (its database is away
    /// or behind); nothing was done, and the same request may be sent again later.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after: std::time::Duration,
    },
    /// 500: logged with its cause; the caller sees no internals.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(title: impl Into<String>, errors: Vec<String>) -> Self {
        Self::Invalid {
            title: title.into(),
            errors,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{e}"))
    }

    pub(crate) fn parts(&self) -> (StatusCode, &'static str, String, Vec<String>) {
        match self {
            Self::BadRequest(d) => (StatusCode::BAD_REQUEST, "Bad request", d.clone(), vec![]),
            Self::Unauthorized(d) => (StatusCode::UNAUTHORIZED, "Unauthorized", d.clone(), vec![]),
            Self::Forbidden(d) => (StatusCode::FORBIDDEN, "Forbidden", d.clone(), vec![]),
            Self::Quota(d) => (StatusCode::FORBIDDEN, "Quota exceeded", d.clone(), vec![]),
            Self::NotFound(what) | Self::UnknownToken(what) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("{what} not found"),
                vec![],
            ),
            Self::Conflict(d) => (StatusCode::CONFLICT, "Conflict", d.clone(), vec![]),
            Self::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload too large",
                self.to_string(),
                vec![],
            ),
            Self::UnsupportedMediaType(d) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                d.clone(),
                vec![],
            ),
            Self::Invalid { title, errors } => {
                let detail = match errors.len() {
                    0 => title.clone(),
                    1 => errors[0].clone(),
                    n => format!("{n} problems; see errors"),
                };
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Unprocessable entity",
                    format!("{title}: {detail}"),
                    errors.clone(),
                )
            }
            Self::TooManyRequests { detail, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                detail.clone(),
                vec![],
            ),
            Self::Unavailable { detail, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                detail.clone(),
                vec![],
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                "the server failed to handle the request; it has been logged".into(),
                vec![],
            ),
        }
    }
}

impl From<crate::executor::CommandError> for ApiError {
    fn from(e: crate::executor::CommandError) -> Self {
        use crate::executor::CommandError;
        match e {
            CommandError::Conflict(m) => ApiError::Conflict(m),
            CommandError::InvalidInput(errors) => ApiError::invalid("Invalid input", errors),
            CommandError::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    /// A database that is away or busy (restarting, unreachable, its disk full) is a 503
    /// to retry, not a server bug.
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!("request failed on the database: {e}");
            return Self::Unavailable {
                detail: "the database is unavailable; try again later".into(),
                retry_after: std::time::Duration::from_secs(2),
            };
        }
        Self::Internal(anyhow::Error::new(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!("request failed: {e:#}");
        }
        let retry_after = match &self {
            Self::Unavailable { retry_after, .. } | Self::TooManyRequests { retry_after, .. } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            _ => None,
        };
        let auth_failure = match &self {
            Self::Unauthorized(why) => Some(why.clone()),
            Self::UnknownToken(what) => Some(format!("no {what} has this token")),
            _ => None,
        };
        let (status, title, detail, errors) = self.parts();
        let body = Problem {
            kind: "about:blank",
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(why) = auth_failure {
            response
                .extensions_mut()
                .insert(super::rate::AuthFailure(why));
        }
        response
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Errors axum answers by itself (a method the route does not take, with its `Allow`; a
/// path or query that does not decode; a body it cannot read) become problem details like
/// every other error of the API, keeping their status and headers.
pub async fn problem_responses(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let title = status.canonical_reason().unwrap_or("Error");
    let detail = match String::from_utf8_lossy(&text).trim() {
        "" => title.to_lowercase(),
        t => t.to_owned(),
    };
    let problem = Problem {
        kind: "about:blank",
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        errors: vec![],
    };
    let mut out = (status, axum::Json(problem)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    out
}
