//! Workspace variables (any JSON) and secrets (sealed at rest, never returned).

use super::{ApiError, ApiJson, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Variable {
    #[serde(default)]
    pub name: String,
    /// Any JSON.
    pub value: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutVariable {
    /// Any JSON, at most 64 KiB as text.
    pub value: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    pub value: String,
}

#[derive(Serialize, ToSchema)]
pub struct SecretName {
    pub name: String,
}

const MAX_VALUE: usize = 64 << 10;

fn check_name(name: &str) -> ApiResult<()> {
    if super::workspaces::valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "Invalid name",
            vec![format!("names are {}", super::workspaces::NAME_RULE)],
        ))
    }
}

/// The workspace's variables in name order.
#[utoipa::path(get, path = "/api/variables", tag = "variables", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Variable>)))]
pub async fn list_variables(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Variable>>> {
    let pager = page.check(&state, "variables", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let items = state
        .store()
        .variables_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        items,
        |(name, _)| serde_json::json!(name),
        |(name, value)| Variable { name, value },
    )))
}

#[utoipa::path(get, path = "/api/variables/{name}", tag = "variables", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = Variable), (status = 404, body = super::Problem)))]
pub async fn get_variable(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Variable>> {
    let text = state
        .store()
        .workspace_variable(&auth.workspace_id, &name)
        .await?
        .ok_or(ApiError::NotFound("variable"))?;
    let value = serde_json::from_str(&text).map_err(ApiError::internal)?;
    Ok(Json(Variable { name, value }))
}

#[utoipa::path(put, path = "/api/variables/{name}", tag = "variables", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = PutVariable,
    responses((status = 200, body = Variable), (status = 422, body = super::Problem)))]
pub async fn put_variable(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutVariable>,
) -> ApiResult<Json<Variable>> {
    check_name(&name)?;
    if body.value.to_string().len() > MAX_VALUE {
        return Err(ApiError::invalid(
            "Variable too large",
            vec![format!("values are at most {MAX_VALUE} bytes")],
        ));
    }
    state
        .store()
        .put_workspace_variable(&auth.workspace_id, &name, &body.value)
        .await?;
    Ok(Json(Variable {
        name,
        value: body.value,
    }))
}

#[utoipa::path(delete, path = "/api/variables/{name}", tag = "variables", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem)))]
pub async fn delete_variable(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .store()
        .delete_workspace_variable(&auth.workspace_id, &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("variable"))
    }
}

/// Secret names only, in order: values never leave the server except to the
/// workspace's guests.
#[utoipa::path(get, path = "/api/secrets", tag = "variables", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<SecretName>)))]
pub async fn list_secrets(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<SecretName>>> {
    let pager = page.check(&state, "secrets", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let names = state
        .store()
        .secret_names_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        names,
        |name| serde_json::json!(name),
        |name| SecretName { name },
    )))
}

#[utoipa::path(put, path = "/api/secrets/{name}", tag = "variables", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = PutSecret,
    responses((status = 204), (status = 422, body = super::Problem)))]
pub async fn put_secret(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutSecret>,
) -> ApiResult<StatusCode> {
    check_name(&name)?;
    if body.value.len() > MAX_VALUE {
        return Err(ApiError::invalid(
            "Secret too large",
            vec![format!("values are at most {MAX_VALUE} bytes")],
        ));
    }
    let sealed = state.secrets.seal(&body.value);
    state
        .store()
        .put_secret(&auth.workspace_id, &name, &sealed)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/secrets/{name}", tag = "variables", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem)))]
pub async fn delete_secret(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .store()
        .delete_secret(&auth.workspace_id, &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("secret"))
    }
}
