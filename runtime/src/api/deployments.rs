//! Deployments: a flow of an uploaded component with default parameters, limits,
//! grants, a pool and an optional webhook. Updates keep a version history.

use super::retention::RetentionPolicy;
use super::webhooks::{Issued, Webhook, WebhookSpec};
use super::{ApiError, ApiJson, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use crate::model::retention::Retention;
use crate::orchestrate::params;
use crate::store::{DeploymentRecord, DeploymentVersion, Saved, Unstarted};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Linear memory per instance, in MiB (at most the server's limit).
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 1)]
    pub memory_mb: Option<i64>,
    /// Replaces the flow's own timeout: seconds from 0 to ten years; 0 or none leaves
    /// the flow's own.
    #[schema(minimum = 0, maximum = 315360000)]
    pub timeout_seconds: Option<f64>,
}

#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts the flow may reach over outbound HTTP (names without '/' or spaces). The
    /// plugins its runs call reach the same hosts, no others.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Workspace secrets the plugins its runs call may read (the flow's own code reads
    /// any); a plugin reads no secret unless it is named here.
    #[serde(default)]
    pub plugin_secrets: Vec<String>,
}

fn default_pool() -> String {
    "default".into()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// Unique in the workspace; see the name pattern.
    pub name: String,
    /// The digest of a component uploaded to this workspace.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub component: String,
    /// A flow of the component.
    pub flow: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    /// A pool of the workspace.
    #[serde(default = "default_pool")]
    pub pool: String,
    /// A work queue of the pool (`default` is always there).
    #[serde(default = "default_pool")]
    pub work_queue: String,
    /// Runs of the deployment running at once at most.
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 0)]
    pub concurrency_limit: Option<i64>,
    #[serde(default, deserialize_with = "super::object")]
    pub limits: ResourceLimits,
    #[serde(default, deserialize_with = "super::object")]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub paused: bool,
    #[serde(default, deserialize_with = "super::object")]
    pub webhook: WebhookSpec,
    /// Its own retention, replacing the workspace's for its runs (none: the
    /// workspace's holds).
    #[serde(default, deserialize_with = "super::object")]
    pub retention: RetentionPolicy,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateDeployment {
    pub name: Option<String>,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub component: Option<String>,
    pub flow: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub pool: Option<String>,
    pub work_queue: Option<String>,
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 0)]
    pub concurrency_limit: Option<i64>,
    #[serde(default, deserialize_with = "super::object_opt")]
    pub limits: Option<ResourceLimits>,
    #[serde(default, deserialize_with = "super::object_opt")]
    pub capabilities: Option<Capabilities>,
    pub paused: Option<bool>,
    #[serde(default, deserialize_with = "super::object_opt")]
    pub webhook: Option<WebhookSpec>,
    /// Replaces its retention policy (both fields null: the workspace's holds).
    #[serde(default, deserialize_with = "super::object_opt")]
    pub retention: Option<RetentionPolicy>,
}

#[derive(Serialize, ToSchema)]
pub struct Deployment {
    pub id: String,
    pub name: String,
    pub component: String,
    pub flow: String,
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub pool: String,
    /// The pool's work queue its runs wait in.
    pub work_queue: String,
    pub concurrency_limit: Option<i64>,
    pub limits: ResourceLimits,
    pub capabilities: Capabilities,
    pub paused: bool,
    pub webhook: Webhook,
    /// Its own retention policy (both fields null: the workspace's holds).
    pub retention: RetentionPolicy,
    pub created: chrono::DateTime<Utc>,
    pub updated: chrono::DateTime<Utc>,
}

fn to_json(d: &DeploymentRecord, issued: Option<Issued>) -> Deployment {
    Deployment {
        id: d.id.clone(),
        name: d.name.clone(),
        component: d.component_digest.clone(),
        flow: d.flow.clone(),
        parameters: d.parameters.clone(),
        tags: d.tags.clone(),
        description: d.description.clone(),
        version: d.version.clone(),
        pool: d.pool.clone(),
        work_queue: d.work_queue.clone(),
        concurrency_limit: d.concurrency_limit,
        limits: ResourceLimits {
            memory_mb: d.memory_mb,
            timeout_seconds: d.timeout_seconds,
        },
        capabilities: Capabilities {
            allowed_hosts: d.allowed_hosts.clone(),
            plugin_secrets: d.plugin_secrets.clone(),
        },
        paused: d.paused,
        webhook: Webhook::new(
            "/hooks",
            d.webhook_token_hash.is_some(),
            d.webhook_secret.is_some(),
            issued,
        ),
        retention: d.retention.into(),
        created: d.created,
        updated: d.updated,
    }
}

fn retention_of(p: RetentionPolicy) -> ApiResult<Retention> {
    p.check("retention.")
        .map_err(|errors| ApiError::invalid("Invalid deployment", errors))
}

/// Checks a deployment against its component and the server's limits.
async fn validate(state: &AppState, d: &mut DeploymentRecord) -> ApiResult<()> {
    let mut errors = Vec::new();
    if !super::workspaces::valid_name(&d.name) {
        errors.push(format!("'name' must be {}", super::workspaces::NAME_RULE));
    } else if uuid::Uuid::try_parse(&d.name).is_ok() {
        // Routes take a deployment's id or its name: a name shaped like an id could
        // stand for another deployment.
        errors.push("'name' must not look like a deployment id (a UUID)".into());
    }
    if d.concurrency_limit.is_some_and(|n| n < 0) {
        errors.push("'concurrency_limit' must not be negative".into());
    }
    let max_mb = (state.executor.engine().limits().memory_bytes >> 20) as i64;
    if let Some(mb) = d.memory_mb
        && !(1..=max_mb).contains(&mb)
    {
        errors.push(format!("'limits.memory_mb' must be between 1 and {max_mb}"));
    }
    // 0 is no timeout (the flow's own applies), as in Prefect.
    match crate::model::duration::timeout("limits.timeout_seconds", d.timeout_seconds) {
        Ok(t) => d.timeout_seconds = t,
        Err(e) => errors.push(e.to_string()),
    }
    for host in &d.allowed_hosts {
        if host.is_empty() || host.contains('/') || host.contains(' ') {
            errors.push(format!(
                "'capabilities.allowed_hosts': {host:?} is not a host name"
            ));
        }
    }
    for name in &d.plugin_secrets {
        if !crate::model::name::valid_name(name) {
            errors.push(format!(
                "'capabilities.plugin_secrets': {name:?} is not a secret's name ({})",
                crate::model::name::NAME_RULE
            ));
        }
    }
    d.plugin_secrets.sort();
    d.plugin_secrets.dedup();
    if d.pool != "default"
        && state
            .store()
            .pool(&d.workspace_id, &d.pool)
            .await?
            .is_none()
    {
        errors.push(format!("'pool': no pool named '{}'", d.pool));
    } else if d.work_queue != "default"
        && state
            .store()
            .work_queue(&d.workspace_id, &d.pool, &d.work_queue)
            .await?
            .is_none()
    {
        errors.push(format!(
            "'work_queue': pool '{}' has no work queue named '{}'",
            d.pool, d.work_queue
        ));
    }
    if state
        .store()
        .workspace_component(&d.workspace_id, &d.component_digest)
        .await?
        .is_none()
    {
        errors.push(format!(
            "'component': no component {} was uploaded to this workspace",
            d.component_digest
        ));
    } else {
        let component = state
            .executor
            .component(&d.component_digest)
            .await
            .map_err(ApiError::Internal)?;
        match component.manifest.find_flow(&d.flow) {
            Err(message) => errors.push(format!("'flow': {message}")),
            Ok(def) => {
                // Defaults may leave out required parameters (a trigger brings them);
                // what they do give must validate.
                if def.options.validate_parameters
                    && let Some(v) = component.validator(def.key())
                    && let Err(errs) = params::prepare(&def.parameters, v, d.parameters.clone())
                {
                    errors.extend(
                        errs.into_iter()
                            .filter(|e| !e.contains("is a required property"))
                            .map(|e| format!("'parameters': {e}")),
                    );
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Invalid deployment", errors))
    }
}

#[utoipa::path(post, path = "/api/deployments", tag = "deployments", security(("bearer" = [])),
    request_body = CreateDeployment,
    responses((status = 201, body = Deployment), (status = 409, body = super::Problem),
              (status = 422, body = super::Problem)))]
pub async fn create(
    auth: Auth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let now = Utc::now();
    let mut d = DeploymentRecord {
        id: uuid::Uuid::now_v7().to_string(),
        workspace_id: auth.workspace_id,
        name: body.name,
        component_digest: body.component,
        flow: body.flow,
        parameters: Value::Object(body.parameters),
        tags: body.tags,
        description: body.description,
        version: body.version,
        pool: body.pool,
        work_queue: body.work_queue,
        concurrency_limit: body.concurrency_limit,
        memory_mb: body.limits.memory_mb,
        timeout_seconds: body.limits.timeout_seconds,
        allowed_hosts: body.capabilities.allowed_hosts,
        plugin_secrets: body.capabilities.plugin_secrets,
        paused: body.paused,
        retention: retention_of(body.retention)?,
        webhook_token_hash: None,
        webhook_secret: None,
        created: now,
        updated: now,
    };
    validate(&state, &mut d).await?;
    let issued = Issued::into_record(
        &state,
        &body.webhook,
        &mut d.webhook_token_hash,
        &mut d.webhook_secret,
    );
    match state.store().insert_deployment(&d).await? {
        Saved::Done => Ok((StatusCode::CREATED, Json(to_json(&d, issued)))),
        _ => Err(ApiError::Conflict(format!(
            "a deployment named '{}' exists",
            d.name
        ))),
    }
}

/// The workspace's deployments in name order.
#[utoipa::path(get, path = "/api/deployments", tag = "deployments", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Deployment>)))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Deployment>>> {
    let pager = page.check(&state, "deployments", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let items = state
        .store()
        .deployments_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        items,
        |d| serde_json::json!(d.name),
        |d| to_json(&d, None),
    )))
}

pub(crate) async fn find(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> ApiResult<DeploymentRecord> {
    state
        .store()
        .deployment(workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("deployment"))
}

#[utoipa::path(get, path = "/api/deployments/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "The id or the name")),
    responses((status = 200, body = Deployment), (status = 404, body = super::Problem)))]
pub async fn get(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    Ok(Json(to_json(
        &find(&state, &auth.workspace_id, &id).await?,
        None,
    )))
}

/// Changes any fields; a new component or flow adds a version. Pausing (`"paused":
/// true`) cancels the runs its schedules created that have not started; resuming makes
/// its schedules create runs again from now on.
#[utoipa::path(patch, path = "/api/deployments/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "The id or the name")), request_body = UpdateDeployment,
    responses((status = 200, body = Deployment), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn update(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateDeployment>,
) -> ApiResult<Json<Deployment>> {
    let mut d = find(&state, &auth.workspace_id, &id).await?;
    let was_paused = d.paused;
    if let Some(v) = body.name {
        d.name = v;
    }
    if let Some(v) = body.component {
        d.component_digest = v;
    }
    if let Some(v) = body.flow {
        d.flow = v;
    }
    if let Some(v) = body.parameters {
        d.parameters = Value::Object(v);
    }
    if let Some(v) = body.tags {
        d.tags = v;
    }
    if body.description.is_some() {
        d.description = body.description;
    }
    if body.version.is_some() {
        d.version = body.version;
    }
    if let Some(v) = body.pool {
        d.pool = v;
    }
    if let Some(v) = body.work_queue {
        d.work_queue = v;
    }
    if body.concurrency_limit.is_some() {
        d.concurrency_limit = body.concurrency_limit;
    }
    if let Some(l) = body.limits {
        d.memory_mb = l.memory_mb;
        d.timeout_seconds = l.timeout_seconds;
    }
    if let Some(c) = body.capabilities {
        d.allowed_hosts = c.allowed_hosts;
        d.plugin_secrets = c.plugin_secrets;
    }
    if let Some(p) = body.paused {
        d.paused = p;
    }
    if let Some(r) = body.retention {
        d.retention = retention_of(r)?;
    }
    d.updated = Utc::now();
    validate(&state, &mut d).await?;
    // A webhook keeps its token unless it is switched on, off, or signing changes.
    let issued = match &body.webhook {
        Some(spec)
            if spec.enabled != d.webhook_token_hash.is_some()
                || spec.signed != d.webhook_secret.is_some() =>
        {
            Issued::into_record(
                &state,
                spec,
                &mut d.webhook_token_hash,
                &mut d.webhook_secret,
            )
        }
        _ => None,
    };
    match state.store().update_deployment(&d).await? {
        Saved::Done => {
            if d.paused != was_paused {
                paused_or_resumed(&state, &d).await?;
            }
            Ok(Json(to_json(&d, issued)))
        }
        Saved::Missing => Err(ApiError::NotFound("deployment")),
        Saved::NameTaken => Err(ApiError::Conflict(format!(
            "a deployment named '{}' exists",
            d.name
        ))),
    }
}

/// After a deployment was paused: its schedules' runs not yet started end Cancelled,
/// whichever node holds them (as Prefect deletes a paused deployment's auto-scheduled
/// runs, so none of them runs); runs triggered through the API or a webhook, even for
/// later, are kept. After it was resumed: its schedules create runs again for fire
/// times from now on.
async fn paused_or_resumed(state: &AppState, d: &DeploymentRecord) -> ApiResult<()> {
    if d.paused {
        // The deployment is stored paused first: a run another node's scheduler creates
        // meanwhile is refused when due.
        let ids = state
            .store()
            .cancel_unstarted_runs(
                Unstarted::Deployment(&d.id),
                "the deployment was paused before this run started",
            )
            .await?;
        for id in ids {
            state.executor.cancel(&id);
        }
    } else {
        state
            .store()
            .restart_deployment_schedules(&d.id, state.scheduler.clock().now())
            .await?;
    }
    state.scheduler.schedules_changed();
    Ok(())
}

#[utoipa::path(delete, path = "/api/deployments/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "The id or the name")),
    responses((status = 204), (status = 404, body = super::Problem)))]
pub async fn delete(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let d = find(&state, &auth.workspace_id, &id).await?;
    if state
        .store()
        .delete_deployment(&auth.workspace_id, &d.id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("deployment"))
    }
}

#[derive(Serialize, ToSchema)]
pub struct Version {
    pub version_no: i64,
    pub component: String,
    pub flow: String,
    pub created: chrono::DateTime<Utc>,
}

impl From<DeploymentVersion> for Version {
    fn from(v: DeploymentVersion) -> Self {
        Self {
            version_no: v.version_no,
            component: v.component_digest,
            flow: v.flow,
            created: v.created,
        }
    }
}

/// The components a deployment ran, newest first.
#[utoipa::path(get, path = "/api/deployments/{id}/versions", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "The id or the name"), PageQuery),
    responses((status = 200, body = Page<Version>), (status = 404, body = super::Problem)))]
pub async fn versions(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Version>>> {
    let d = find(&state, &auth.workspace_id, &id).await?;
    let pager = page.check(&state, "deployment-versions", &d.id)?;
    let items = state
        .store()
        .deployment_versions_page(&d.id, pager.after()?, pager.fetch())
        .await?;
    Ok(Json(pager.page(
        items,
        |v| serde_json::json!(v.version_no),
        Version::from,
    )))
}

/// Issues a new webhook token (and secret); the old ones stop working.
#[utoipa::path(post, path = "/api/deployments/{id}/webhook/rotate", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "The id or the name")),
    responses((status = 200, body = Deployment), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem)))]
pub async fn rotate_webhook(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    let mut d = find(&state, &auth.workspace_id, &id).await?;
    if d.webhook_token_hash.is_none() {
        return Err(ApiError::Conflict("the deployment has no webhook".into()));
    }
    let spec = WebhookSpec {
        enabled: true,
        signed: d.webhook_secret.is_some(),
    };
    let issued = Issued::into_record(
        &state,
        &spec,
        &mut d.webhook_token_hash,
        &mut d.webhook_secret,
    );
    d.updated = Utc::now();
    state.store().update_deployment(&d).await?;
    Ok(Json(to_json(&d, issued)))
}
