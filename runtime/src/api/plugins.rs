//! Plugins: components whose tasks every flow of the workspace calls by name
//! (`"http/request"`, `"http@2/request"`). Built-in plugins ship with Weir; a workspace
//! registers its own from components it uploaded, each new component a new version.

use super::{ApiError, ApiJson, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use crate::store::{PluginRecord, Registered};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPlugin {
    /// The plugin's name, as flows call it (`<name>/<task>`); not a built-in plugin's.
    pub name: String,
    /// The digest of a component uploaded to this workspace, with at least one task.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub component: String,
    pub description: Option<String>,
}

/// A task of a plugin, as flows call it.
#[derive(Serialize, ToSchema)]
pub struct PluginTask {
    pub name: String,
    /// How a flow calls it: `<plugin>@<version>/<task>`.
    pub call: String,
    pub description: Option<String>,
    /// JSON Schema of its arguments (an object).
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// Its options (retries, timeout, cache policy, ...).
    #[schema(value_type = Object)]
    pub options: Value,
}

/// One version of a plugin.
#[derive(Serialize, ToSchema)]
pub struct Plugin {
    pub name: String,
    pub version: i64,
    /// Shipped with Weir, seen by every workspace.
    pub builtin: bool,
    /// The component's digest.
    pub digest: String,
    pub description: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
    pub tasks: Vec<PluginTask>,
}

impl From<PluginRecord> for Plugin {
    fn from(p: PluginRecord) -> Self {
        let tasks = p
            .manifest
            .get("tasks")
            .and_then(Value::as_array)
            .map(|tasks| {
                tasks
                    .iter()
                    .map(|t| {
                        let name = t["name"].as_str().unwrap_or_default().to_owned();
                        PluginTask {
                            call: format!("{}@{}/{name}", p.name, p.version),
                            name,
                            description: t["description"].as_str().map(str::to_owned),
                            parameters: t["parameters"].clone(),
                            options: t["options"].clone(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Plugin {
            name: p.name,
            version: p.version,
            builtin: p.builtin,
            digest: p.digest,
            description: p.description,
            created: p.created,
            tasks,
        }
    }
}

/// A plugin with every version, newest first.
#[derive(Serialize, ToSchema)]
pub struct PluginVersions {
    pub name: String,
    pub builtin: bool,
    pub versions: Vec<Plugin>,
}

const MAX_DESCRIPTION: usize = 2000;

/// Registers a component of the workspace as a plugin: a new component under the name is
/// its next version (201); one already registered under it is the version it is (200).
#[utoipa::path(post, path = "/api/plugins", tag = "plugins", security(("bearer" = [])),
    request_body = RegisterPlugin,
    responses((status = 201, body = Plugin), (status = 200, body = Plugin),
              (status = 409, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn register(
    auth: Auth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterPlugin>,
) -> ApiResult<(StatusCode, Json<Plugin>)> {
    let mut errors = Vec::new();
    if let Err(e) = crate::model::plugin::check_name(&body.name) {
        errors.push(format!("'name': {e}"));
    }
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION)
    {
        errors.push(format!(
            "'description' is longer than {MAX_DESCRIPTION} bytes"
        ));
    }
    let store = state.store();
    let component = store
        .workspace_component(&auth.workspace_id, &body.component)
        .await?;
    match &component {
        None => errors.push(format!(
            "'component': no component {} in this workspace; upload it first (POST /api/components)",
            body.component
        )),
        Some(c) if c.manifest["tasks"].as_array().is_none_or(Vec::is_empty) => errors.push(
            "'component': it has no tasks, so it is no plugin (a plugin's tasks are what flows call)"
                .into(),
        ),
        Some(_) => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("Invalid plugin", errors));
    }
    if let Some(builtin) = store
        .find_plugin(crate::store::BUILTIN_PLUGINS, &body.name, None)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "'{}' is a built-in plugin (version {}); register yours under another name",
            body.name, builtin.version
        )));
    }
    match store
        .register_plugin(
            &auth.workspace_id,
            &body.name,
            &body.component,
            body.description.as_deref(),
        )
        .await?
    {
        Registered::New(p) => Ok((StatusCode::CREATED, Json(p.into()))),
        Registered::Existing(p) => Ok((StatusCode::OK, Json(p.into()))),
        Registered::TooManyVersions => Err(ApiError::Conflict(format!(
            "plugin '{}' has {} versions; delete it to register it again",
            body.name,
            crate::store::MAX_PLUGIN_VERSIONS
        ))),
    }
}

/// The plugins the workspace's flows can call, by name: the latest version of each, its
/// own and the built-in ones (its own hide a built-in one of the same name).
#[utoipa::path(get, path = "/api/plugins", tag = "plugins", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Plugin>)))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Plugin>>> {
    let pager = page.check(&state, "plugins", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let mut items = state.store().plugins(&auth.workspace_id).await?;
    if let Some(after) = after {
        items.retain(|p| p.name > after);
    }
    items.truncate(pager.fetch() as usize);
    Ok(Json(pager.page(
        items,
        |p| serde_json::json!(p.name),
        Plugin::from,
    )))
}

/// A plugin the workspace's flows find under this name, with every version.
#[utoipa::path(get, path = "/api/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = PluginVersions), (status = 404, body = super::Problem)))]
pub async fn get(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginVersions>> {
    let versions = state
        .store()
        .plugin_versions(&auth.workspace_id, &name)
        .await?;
    let Some(first) = versions.first() else {
        return Err(ApiError::NotFound("plugin"));
    };
    Ok(Json(PluginVersions {
        name: first.name.clone(),
        builtin: first.builtin,
        versions: versions.into_iter().map(Plugin::from).collect(),
    }))
}

/// Deletes every version of a plugin of the workspace (flows calling it then fail with
/// "no plugin named ..."); built-in plugins cannot be deleted.
#[utoipa::path(delete, path = "/api/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem), (status = 409, body = super::Problem)))]
pub async fn delete(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let store = state.store();
    if store.delete_plugin(&auth.workspace_id, &name).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    match store
        .find_plugin(crate::store::BUILTIN_PLUGINS, &name, None)
        .await?
    {
        Some(_) => Err(ApiError::Conflict(format!(
            "'{name}' is a built-in plugin; it cannot be deleted"
        ))),
        None => Err(ApiError::NotFound("plugin")),
    }
}
