//! Components: upload (validated, compiled once, content-addressed), list, get, delete.

use super::uploads::Received;
use super::{ApiError, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use crate::store::{ComponentRecord, Saved};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Component {
    pub digest: String,
    pub size: i64,
    /// Flows and tasks, with their parameter schemas and options.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    pub created: chrono::DateTime<chrono::Utc>,
}

impl From<ComponentRecord> for Component {
    fn from(c: ComponentRecord) -> Self {
        Self {
            digest: c.digest,
            size: c.size,
            manifest: c.manifest,
            created: c.created,
        }
    }
}

/// Uploads a component (`.wasm` bytes). The same bytes again return the same component.
/// The body is received into a file, not memory; too many uploads arriving at once get
/// 503 with `Retry-After`.
#[utoipa::path(post, path = "/api/components", tag = "components", security(("bearer" = [])),
    request_body(content = inline(String), content_type = "application/wasm", description = "The component's .wasm bytes"),
    responses((status = 201, body = Component), (status = 200, body = Component, description = "Uploaded before"),
              (status = 403, body = super::Problem, description = "The workspace holds as many components as its quota"),
              (status = 413, body = super::Problem), (status = 415, body = super::Problem),
              (status = 503, body = super::Problem, description = "Too many uploads at once; retry after Retry-After"),
              (status = 422, body = super::Problem, description = "Not a component of the weir:flow world")))]
pub async fn upload(
    auth: Auth,
    State(state): State<AppState>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Component>)> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    if !(content_type.starts_with("application/wasm")
        || content_type.starts_with("application/octet-stream"))
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "upload the .wasm bytes as application/wasm, not {content_type}"
        )));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limit = state.uploads.limit();
    if declared.is_some_and(|n| n > limit.saturating_add(super::uploads::DRAIN)) {
        return Err(ApiError::TooLarge(limit));
    }
    let receiving = match state.uploads.begin().await {
        Ok(r) => r,
        Err(e) => {
            super::uploads::discard(req.into_body(), limit).await;
            return Err(e);
        }
    };
    let received = receiving.body(req.into_body()).await?;
    let (new, record) = add_component(&state, &auth.workspace_id, received).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record.into())))
}

/// Checks, compiles and stores a received component and makes it visible to the
/// workspace; returns whether it is new to the workspace, and its record.
pub(crate) async fn add_component(
    state: &AppState,
    workspace_id: &str,
    received: Received,
) -> ApiResult<(bool, ComponentRecord)> {
    if received.size == 0 {
        return Err(ApiError::invalid(
            "Not a component",
            vec!["the body is empty".into()],
        ));
    }
    let loading = state.uploads.load(&received).await?;

    let bytes = &loading.bytes;
    let loaded = state
        .executor
        .engine()
        .load(bytes)
        .await
        .map_err(|e| ApiError::invalid("Not a Weir component", vec![e.to_string()]))?;
    // The same bytes again are no new component, whatever the quota.
    if state
        .store()
        .workspace_component(workspace_id, &loaded.digest)
        .await?
        .is_none()
    {
        super::quotas::check_components(state, workspace_id).await?;
    }
    received
        .keep_as(&state.executor.component_path(&loaded.digest))
        .await
        .map_err(ApiError::internal)?;
    let manifest = serde_json::to_value(&loaded.manifest).map_err(ApiError::internal)?;
    let store = state.store();
    store.put_component_bytes(&loaded.digest, bytes).await?;
    store
        .put_component(&loaded.digest, loaded.size, &manifest)
        .await?;
    drop(loading);
    let new = store.link_component(workspace_id, &loaded.digest).await?;
    let record = store
        .workspace_component(workspace_id, &loaded.digest)
        .await?
        .ok_or_else(|| ApiError::internal("the component vanished"))?;
    Ok((new, record))
}

/// The workspace's components, newest first.
#[utoipa::path(get, path = "/api/components", tag = "components", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Component>)))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Component>>> {
    let pager = page.check(&state, "components", &auth.workspace_id)?;
    let before: Option<(chrono::DateTime<chrono::Utc>, String)> = pager.after()?;
    let items = state
        .store()
        .workspace_components_page(
            &auth.workspace_id,
            before.as_ref().map(|(t, d)| (*t, d.as_str())),
            pager.fetch(),
        )
        .await?;
    Ok(Json(pager.page(
        items,
        |c| serde_json::json!([c.created, c.digest]),
        Component::from,
    )))
}

#[utoipa::path(get, path = "/api/components/{digest}", tag = "components", security(("bearer" = [])),
    params(("digest" = String, Path)),
    responses((status = 200, body = Component), (status = 404, body = super::Problem)))]
pub async fn get(
    auth: Auth,
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> ApiResult<Json<Component>> {
    state
        .store()
        .workspace_component(&auth.workspace_id, &digest)
        .await?
        .map(|c| Json(c.into()))
        .ok_or(ApiError::NotFound("component"))
}

/// Removes a component from the workspace; refused while a deployment uses it.
#[utoipa::path(delete, path = "/api/components/{digest}", tag = "components", security(("bearer" = [])),
    params(("digest" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem), (status = 409, body = super::Problem)))]
pub async fn delete(
    auth: Auth,
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> ApiResult<StatusCode> {
    match state
        .store()
        .unlink_component(&auth.workspace_id, &digest)
        .await?
    {
        Saved::Done => Ok(StatusCode::NO_CONTENT),
        Saved::Missing => Err(ApiError::NotFound("component")),
        Saved::NameTaken => Err(ApiError::Conflict(
            "a deployment uses this component; delete or update it first".into(),
        )),
    }
}
