//! Workspaces (admin) and their API keys.

use super::{
    Admin, ApiError, ApiJson, ApiResult, AppState, Auth, MaybeJson, Page, PageQuery, Paged,
};
use crate::secrets;
use crate::store::{ApiKeyRecord, Revoked, WorkspaceRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Letters, digits, dashes and underscores.
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created: chrono::DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Key {
    pub id: String,
    pub prefix: String,
    pub name: Option<String>,
    pub created: chrono::DateTime<Utc>,
    pub revoked: Option<chrono::DateTime<Utc>>,
    /// Shown once, when the key is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceCreated {
    pub workspace: Workspace,
    pub key: Key,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name to tell the key by; see the name pattern.
    pub name: Option<String>,
}

fn key_json(k: &ApiKeyRecord, secret: Option<String>) -> Key {
    Key {
        id: k.id.clone(),
        prefix: k.prefix.clone(),
        name: k.name.clone(),
        created: k.created,
        revoked: k.revoked,
        secret,
    }
}

pub(crate) use crate::model::name::{NAME_RULE, valid_name};

/// A new key for a workspace; returns the record and the secret (shown once).
pub fn new_key(workspace_id: &str, name: Option<String>) -> (ApiKeyRecord, String) {
    let k = secrets::new_api_key();
    (
        ApiKeyRecord {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: workspace_id.to_owned(),
            prefix: k.prefix,
            hash: k.hash,
            name,
            created: Utc::now(),
            revoked: None,
        },
        k.secret,
    )
}

/// Creates a workspace and its first key (admin token).
#[utoipa::path(post, path = "/api/workspaces", tag = "workspaces", request_body = CreateWorkspace,
    security(("bearer" = [])),
    responses((status = 201, body = WorkspaceCreated), (status = 401, body = super::Problem),
              (status = 409, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn create_workspace(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> ApiResult<(StatusCode, Json<WorkspaceCreated>)> {
    if !valid_name(&body.name) {
        return Err(ApiError::invalid(
            "Invalid workspace name",
            vec![format!("'name' must be {}", super::workspaces::NAME_RULE)],
        ));
    }
    let ws = WorkspaceRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: body.name,
        created: Utc::now(),
    };
    let (key, secret) = new_key(&ws.id, Some("first key".into()));
    if state.store().create_workspace(&ws, &key).await?.is_none() {
        return Err(ApiError::Conflict(format!(
            "a workspace named '{}' exists",
            ws.name
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(WorkspaceCreated {
            workspace: Workspace {
                id: ws.id,
                name: ws.name,
                created: ws.created,
            },
            key: key_json(&key, Some(secret)),
        }),
    ))
}

/// The server's workspaces by name (admin token).
#[utoipa::path(get, path = "/api/workspaces", tag = "workspaces", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Workspace>)))]
pub async fn list_workspaces(
    _: Admin,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Workspace>>> {
    let pager = page.check(&state, "workspaces", "")?;
    let after: Option<String> = pager.after()?;
    let items = state
        .store()
        .workspaces_page(after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        items,
        |w| serde_json::json!(w.name),
        |w| Workspace {
            id: w.id,
            name: w.name,
            created: w.created,
        },
    )))
}

/// Creates another key for the caller's workspace.
#[utoipa::path(post, path = "/api/keys", tag = "workspaces", request_body = Option<CreateKey>,
    security(("bearer" = [])),
    responses((status = 201, body = Key), (status = 401, body = super::Problem)))]
pub async fn create_key(
    auth: Auth,
    State(state): State<AppState>,
    MaybeJson(body): MaybeJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<Key>)> {
    let name = body.and_then(|b| b.name);
    if name.as_deref().is_some_and(|n| !valid_name(n)) {
        return Err(ApiError::invalid(
            "Invalid key",
            vec![format!("'name' must be {NAME_RULE}")],
        ));
    }
    let (key, secret) = new_key(&auth.workspace_id, name);
    state.store().create_key(&key).await?;
    Ok((StatusCode::CREATED, Json(key_json(&key, Some(secret)))))
}

/// The workspace's keys (revoked ones too, without secrets), oldest first.
#[utoipa::path(get, path = "/api/keys", tag = "workspaces", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Key>)))]
pub async fn list_keys(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Key>>> {
    let pager = page.check(&state, "keys", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let keys = state
        .store()
        .keys_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        keys,
        |k| serde_json::json!(k.id),
        |k| key_json(&k, None),
    )))
}

/// Revokes a key; it stops working at once. A workspace's last active key is kept
/// (409): create another first, or have the admin mint one
/// (`POST /api/workspaces/{id}/keys`).
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem, description = "The workspace's last active key")))]
pub async fn revoke_key(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    match state.store().revoke_key(&auth.workspace_id, &id).await? {
        Revoked::Done => Ok(StatusCode::NO_CONTENT),
        Revoked::Missing => Err(ApiError::NotFound("key")),
        Revoked::LastKey => Err(ApiError::Conflict(
            "this is the workspace's last active key: create another key first (or ask the \
             server's admin to mint one) so that the workspace is not locked out"
                .into(),
        )),
    }
}

/// The workspace an admin route names by id or by name.
pub(crate) async fn by_id_or_name(state: &AppState, id: &str) -> ApiResult<WorkspaceRecord> {
    let store = state.store();
    match store.workspace(id).await? {
        Some(ws) => Ok(ws),
        None => store
            .workspace_by_name(id)
            .await?
            .ok_or(ApiError::NotFound("workspace")),
    }
}

/// Mints a key for an existing workspace (admin token): the way back into a workspace
/// whose keys are lost.
#[utoipa::path(post, path = "/api/workspaces/{id}/keys", tag = "workspaces", request_body = Option<CreateKey>,
    security(("bearer" = [])), params(("id" = String, Path, description = "The workspace's id or name")),
    responses((status = 201, body = Key), (status = 401, body = super::Problem),
              (status = 404, body = super::Problem)))]
pub async fn admin_create_key(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<Key>)> {
    let store = state.store();
    let ws = by_id_or_name(&state, &id).await?;
    let name = body.and_then(|b| b.name);
    if name.as_deref().is_some_and(|n| !valid_name(n)) {
        return Err(ApiError::invalid(
            "Invalid key",
            vec![format!("'name' must be {NAME_RULE}")],
        ));
    }
    let name = name.or_else(|| Some("admin-minted".into()));
    let (key, secret) = new_key(&ws.id, name);
    store.create_key(&key).await?;
    tracing::warn!(target: "weir::audit", workspace = %ws.name, "the admin minted a key for the workspace");
    Ok((StatusCode::CREATED, Json(key_json(&key, Some(secret)))))
}
