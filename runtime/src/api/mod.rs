//! The HTTP API: axum routers, one module per resource, one error type rendered as
//! problem details, and the OpenAPI document at `/api/openapi.json`.
//! The contract is written down in `docs/api.md`.

mod auth;
pub(crate) mod automations;
pub(crate) mod components;
pub(crate) mod deployments;
mod error;
mod health;
mod limits;
mod openapi;
pub(crate) mod page;
pub(crate) mod plugins;
pub(crate) mod pools;
mod quotas;
pub mod rate;
pub(crate) mod retention;
mod runs;
pub(crate) mod schedules;
pub mod uploads;
pub(crate) mod variables;
mod webhooks;
pub(crate) mod workspaces;

pub use auth::{Admin, Auth};
pub(crate) use deployments::find as find_deployment;
pub use error::{ApiError, ApiResult, Problem};
pub use page::{Page, PageQuery, Paged};
pub(crate) use runs::{find_run, parse_states};
use uploads::DRAIN;
pub use workspaces::new_key;

use crate::executor::Executor;
use crate::secrets::SecretBox;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Sizes of request bodies the API takes.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// JSON bodies.
    pub json: usize,
    /// Component uploads.
    pub upload: usize,
    /// Component uploads received at once (each into a file); more get 503.
    pub max_concurrent_uploads: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            json: 1 << 20,
            upload: 64 << 20,
            max_concurrent_uploads: 16,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub executor: Arc<Executor>,
    pub scheduler: Arc<crate::schedule::Scheduler>,
    pub automations: Arc<crate::automate::Automations>,
    pub secrets: SecretBox,
    /// sha256 of the admin token.
    pub admin_hash: String,
    pub limits: BodyLimits,
    /// Component uploads in progress, received into files.
    pub uploads: uploads::Uploads,
    /// Rate limits per peer address and per workspace, and failed authentications.
    pub rate: rate::RateLimits,
    /// The retention of workspaces without a policy of their own.
    pub retention_default: crate::model::retention::Retention,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    pub fn store(&self) -> &crate::store::Store {
        self.executor.store()
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let upload_limit = state.limits.upload;
    let memory_mb_max = (state.executor.engine().limits().memory_bytes >> 20) as i64;
    let (router, openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::metrics))
        .routes(routes!(
            workspaces::create_workspace,
            workspaces::list_workspaces
        ))
        .routes(routes!(workspaces::create_key, workspaces::list_keys))
        .routes(routes!(workspaces::revoke_key))
        .routes(routes!(workspaces::admin_create_key))
        .routes(routes!(quotas::get_quotas, quotas::put_quotas))
        .routes(routes!(quotas::usage))
        .routes(routes!(components::upload, components::list))
        .routes(routes!(components::get, components::delete))
        .routes(routes!(deployments::create, deployments::list))
        .routes(routes!(
            deployments::get,
            deployments::update,
            deployments::delete
        ))
        .routes(routes!(deployments::versions))
        .routes(routes!(deployments::rotate_webhook))
        .routes(routes!(runs::create))
        .routes(routes!(runs::create_task_run))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::task_runs))
        .routes(routes!(runs::transactions))
        .routes(routes!(runs::list_task_runs))
        .routes(routes!(runs::logs))
        .routes(routes!(runs::artifacts))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::retry))
        .routes(routes!(runs::resume))
        .routes(routes!(runs::artifacts_by_key))
        .routes(routes!(webhooks::trigger_hook))
        .routes(routes!(webhooks::post_automation_event))
        .routes(routes!(retention::get, retention::put))
        .routes(routes!(variables::list_variables))
        .routes(routes!(
            variables::get_variable,
            variables::put_variable,
            variables::delete_variable
        ))
        .routes(routes!(variables::list_secrets))
        .routes(routes!(variables::put_secret, variables::delete_secret))
        .routes(routes!(automations::create, automations::list))
        .routes(routes!(
            automations::get,
            automations::update,
            automations::delete
        ))
        .routes(routes!(automations::runs))
        .routes(routes!(automations::post_event))
        .routes(routes!(automations::rotate_webhook))
        .routes(routes!(plugins::register, plugins::list))
        .routes(routes!(plugins::get, plugins::delete))
        .routes(routes!(pools::create, pools::list))
        .routes(routes!(pools::update, pools::delete))
        .routes(routes!(pools::list_queues))
        .routes(routes!(pools::put_queue, pools::delete_queue))
        .routes(routes!(limits::list))
        .routes(routes!(limits::get, limits::put, limits::delete))
        .routes(routes!(pools::list_limits))
        .routes(routes!(pools::put_limit, pools::delete_limit))
        .routes(routes!(schedules::create, schedules::list))
        .routes(routes!(
            schedules::get,
            schedules::update,
            schedules::delete
        ))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(schedules::backfill))
        .routes(routes!(schedules::preview))
        .with_state(state)
        .split_for_parts();
    let mut openapi = openapi;
    openapi::Shared { memory_mb_max }.modify(&mut openapi);
    let openapi = Arc::new(openapi);
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(axum::middleware::from_fn(error::problem_responses))
}

/// A JSON body, within the JSON size limit, with errors as problem details.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        let bytes = read_body(req, state.limits.json).await?;
        parse_object(&bytes, false).map(|v| ApiJson(v.expect("not null")))
    }
}

/// A JSON body that may be left out (an empty body, or `null`, gives `None`).
pub struct MaybeJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.limits.json).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(None));
        }
        parse_object(&bytes, true).map(MaybeJson)
    }
}

/// Reads a body of at most `limit` bytes (413 past it).
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN)) {
        return Err(ApiError::TooLarge(limit));
    }
    let mut body = req.into_body();
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.saturating_add(DRAIN) {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(Bytes::from(buf))
}

/// Parses a JSON body that must be an object (or `null`, when `null_ok`: no body), as the
/// document declares every body: serde would otherwise take an array for a struct.
fn parse_object<T: DeserializeOwned>(bytes: &[u8], null_ok: bool) -> Result<Option<T>, ApiError> {
    let value: serde_json::Value = parse_json(bytes)?;
    match value {
        serde_json::Value::Null if null_ok => Ok(None),
        serde_json::Value::Object(_) => {
            serde_path_to_error::deserialize(value)
                .map(Some)
                .map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if path == "." {
                        ApiError::invalid("The body does not fit", vec![inner.to_string()])
                    } else {
                        ApiError::invalid(
                            "The body does not fit",
                            vec![format!("'{path}': {inner}")],
                        )
                    }
                })
        }
        _ => Err(ApiError::invalid(
            "The body does not fit",
            vec!["the body must be a JSON object".into()],
        )),
    }
}

/// What JSON Schema calls an integer: `2.0` is the integer 2.
pub(crate) fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
            .map(|f| f as i64)
    })
}

/// An integer field, as [`whole`] takes it.
pub(crate) fn int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    let n = serde_json::Number::deserialize(d)?;
    whole(&n).ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer")))
}

/// An optional integer field, as [`whole`] takes it.
pub(crate) fn int_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole(&n)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
    }
}

/// A field of a struct type that must be a JSON object (serde would take an array too).
pub(crate) fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize;
    let map = serde_json::Map::deserialize(d)?;
    serde_json::from_value(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}

/// An optional field of a struct type that must be a JSON object or `null`.
pub(crate) fn object_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize;
    match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? {
        None => Ok(None),
        Some(map) => serde_json::from_value(serde_json::Value::Object(map))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Parses JSON with the path of the offending field in the message.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("malformed JSON: {inner}"))
        } else if path == "." {
            ApiError::invalid("The body does not fit", vec![inner.to_string()])
        } else {
            ApiError::invalid("The body does not fit", vec![format!("'{path}': {inner}")])
        }
    })
}
