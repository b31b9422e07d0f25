//! Work pools (push pools the server executes itself) and tag concurrency limits.

use super::{ApiError, ApiJson, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use crate::store::{ConcurrencyLimitRecord, PoolRecord, Saved, WorkQueueRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Pool {
    pub name: String,
    /// Always "push": the server runs the pool's runs itself.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub concurrency_limit: Option<i64>,
    pub paused: bool,
    /// Runs of the pool executing on this node now.
    pub running: usize,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePool {
    pub name: String,
    /// Runs of the pool running at once at most.
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 0)]
    pub concurrency_limit: Option<i64>,
    #[serde(default)]
    pub paused: bool,
}

/// A pool update: either field may be left out; a `null` limit removes the limit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UpdatePool {
    #[schema(minimum = 0)]
    pub concurrency_limit: Option<i64>,
    pub paused: Option<bool>,
}

fn pool_json(state: &AppState, ws: &str, p: &PoolRecord) -> Pool {
    Pool {
        name: p.name.clone(),
        kind: "push",
        concurrency_limit: p.concurrency_limit,
        paused: p.paused,
        running: state
            .executor
            .slots()
            .in_use(&format!("pool:{ws}:{}", p.name)),
    }
}

fn default_pool() -> PoolRecord {
    PoolRecord {
        name: "default".into(),
        concurrency_limit: None,
        paused: false,
        created: Utc::now(),
    }
}

#[utoipa::path(post, path = "/api/pools", tag = "pools", security(("bearer" = [])), request_body = CreatePool,
    responses((status = 201, body = Pool), (status = 409, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn create(
    auth: Auth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreatePool>,
) -> ApiResult<(StatusCode, Json<Pool>)> {
    if !super::workspaces::valid_name(&body.name) {
        return Err(ApiError::invalid(
            "Invalid pool",
            vec![format!("'name' must be {}", super::workspaces::NAME_RULE)],
        ));
    }
    if body.concurrency_limit.is_some_and(|n| n < 0) {
        return Err(ApiError::invalid(
            "Invalid pool",
            vec!["'concurrency_limit' must not be negative".into()],
        ));
    }
    if state
        .store()
        .pool(&auth.workspace_id, &body.name)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "a pool named '{}' exists",
            body.name
        )));
    }
    let p = PoolRecord {
        name: body.name,
        concurrency_limit: body.concurrency_limit,
        paused: body.paused,
        created: Utc::now(),
    };
    state.store().put_pool(&auth.workspace_id, &p).await?;
    state.executor.limits_changed(&auth.workspace_id);
    Ok((
        StatusCode::CREATED,
        Json(pool_json(&state, &auth.workspace_id, &p)),
    ))
}

/// The workspace's pools in name order; `default` is always there.
#[utoipa::path(get, path = "/api/pools", tag = "pools", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Pool>)))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Pool>>> {
    let pager = page.check(&state, "pools", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let store = state.store();
    let mut pools = store
        .pools_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    // `default` exists without a row until it is changed: it takes its place in name
    // order (within this page's range) when it has none.
    let after_cursor = after.as_deref().is_none_or(|a| "default" > a);
    let within_fetch = (pools.len() as i64) < pager.fetch()
        || pools.last().is_some_and(|p| p.name.as_str() > "default");
    if after_cursor && within_fetch && store.pool(&auth.workspace_id, "default").await?.is_none() {
        let at = pools.partition_point(|p| p.name.as_str() < "default");
        pools.insert(at, default_pool());
    }
    Ok(Json(pager.page(
        pools,
        |p| serde_json::json!(p.name),
        |p| pool_json(&state, &auth.workspace_id, &p),
    )))
}

#[utoipa::path(patch, path = "/api/pools/{name}", tag = "pools", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = UpdatePool,
    responses((status = 200, body = Pool), (status = 404, body = super::Problem)))]
pub async fn update(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<Pool>> {
    let mut p = match state.store().pool(&auth.workspace_id, &name).await? {
        Some(p) => p,
        None if name == "default" => default_pool(),
        None => return Err(ApiError::NotFound("pool")),
    };
    for (k, v) in &body {
        match (k.as_str(), v) {
            ("concurrency_limit", serde_json::Value::Null) => p.concurrency_limit = None,
            ("concurrency_limit", serde_json::Value::Number(n))
                if super::whole(n).is_some_and(|n| n >= 0) =>
            {
                p.concurrency_limit = super::whole(n)
            }
            ("paused", serde_json::Value::Bool(b)) => p.paused = *b,
            ("paused", serde_json::Value::Null) => {}
            _ => {
                return Err(ApiError::invalid(
                    "Invalid pool update",
                    vec![format!(
                        "'{k}': expected concurrency_limit (a non-negative integer or null) or paused (a boolean)"
                    )],
                ));
            }
        }
    }
    state.store().put_pool(&auth.workspace_id, &p).await?;
    state.executor.limits_changed(&auth.workspace_id);
    Ok(Json(pool_json(&state, &auth.workspace_id, &p)))
}

#[utoipa::path(delete, path = "/api/pools/{name}", tag = "pools", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem), (status = 409, body = super::Problem)))]
pub async fn delete(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if name == "default" {
        return Err(ApiError::Conflict(
            "the default pool cannot be deleted".into(),
        ));
    }
    state.executor.limits_changed(&auth.workspace_id);
    match state.store().delete_pool(&auth.workspace_id, &name).await? {
        Saved::Done => Ok(StatusCode::NO_CONTENT),
        Saved::Missing => Err(ApiError::NotFound("pool")),
        Saved::NameTaken => Err(ApiError::Conflict("deployments use this pool".into())),
    }
}

/// A work queue of a pool (Prefect's work queues): when the pool is at its limit, waiting
/// runs start by their queue's priority (1 first), then by expected start.
#[derive(Serialize, ToSchema)]
pub struct WorkQueue {
    pub pool: String,
    pub name: String,
    pub priority: i64,
    pub concurrency_limit: Option<i64>,
    pub paused: bool,
    /// Runs of the queue executing on this node now.
    pub running: usize,
}

/// A work queue's settings; those left out (or `null`) keep their value (a new queue:
/// priority 1, no limit, not paused); a `null` limit removes the limit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PutWorkQueue {
    /// 1 starts first.
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub priority: Option<i64>,
    /// Runs of the queue running at once at most.
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 0)]
    pub concurrency_limit: Option<i64>,
    pub paused: Option<bool>,
}

fn queue_json(state: &AppState, ws: &str, q: WorkQueueRecord) -> WorkQueue {
    WorkQueue {
        running: state
            .executor
            .slots()
            .in_use(&format!("queue:{ws}:{}:{}", q.pool, q.name)),
        pool: q.pool,
        name: q.name,
        priority: q.priority,
        concurrency_limit: q.concurrency_limit,
        paused: q.paused,
    }
}

/// A pool of the workspace, `default` included; 404 otherwise.
async fn existing_pool(state: &AppState, ws: &str, pool: &str) -> ApiResult<()> {
    if pool != "default" && state.store().pool(ws, pool).await?.is_none() {
        return Err(ApiError::NotFound("pool"));
    }
    Ok(())
}

/// A pool's work queues by priority, then name; `default` is always there.
#[utoipa::path(get, path = "/api/pools/{pool}/queues", tag = "pools", security(("bearer" = [])),
    params(("pool" = String, Path), PageQuery),
    responses((status = 200, body = Page<WorkQueue>), (status = 404, body = super::Problem)))]
pub async fn list_queues(
    auth: Auth,
    State(state): State<AppState>,
    Path(pool): Path<String>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<WorkQueue>>> {
    let ws = &auth.workspace_id;
    existing_pool(&state, ws, &pool).await?;
    let pager = page.check(&state, "work-queues", &format!("{ws}:{pool}"))?;
    let after: Option<(i64, String)> = pager.after()?;
    let store = state.store();
    let mut queues = store
        .work_queues(
            ws,
            Some(&pool),
            after.as_ref().map(|(p, n)| (*p, n.as_str())),
            pager.fetch(),
        )
        .await?;
    // `default` (priority 1) takes its place in order when it has no row.
    let key = (1, "default");
    let after_cursor = after.as_ref().is_none_or(|(p, n)| key > (*p, n.as_str()));
    let within_fetch = (queues.len() as i64) < pager.fetch()
        || queues
            .last()
            .is_some_and(|q| (q.priority, q.name.as_str()) > key);
    if after_cursor && within_fetch && store.work_queue(ws, &pool, "default").await?.is_none() {
        let at = queues.partition_point(|q| (q.priority, q.name.as_str()) < key);
        queues.insert(at, WorkQueueRecord::default_of(&pool));
    }
    Ok(Json(pager.page(
        queues,
        |q| serde_json::json!([q.priority, q.name]),
        |q| queue_json(&state, ws, q),
    )))
}

/// Creates or changes a work queue of a pool.
#[utoipa::path(put, path = "/api/pools/{pool}/queues/{name}", tag = "pools", security(("bearer" = [])),
    params(("pool" = String, Path), ("name" = String, Path)), request_body = PutWorkQueue,
    responses((status = 200, body = WorkQueue), (status = 404, body = super::Problem),
              (status = 422, body = super::Problem)))]
pub async fn put_queue(
    auth: Auth,
    State(state): State<AppState>,
    Path((pool, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<WorkQueue>> {
    let ws = &auth.workspace_id;
    existing_pool(&state, ws, &pool).await?;
    if !super::workspaces::valid_name(&name) {
        return Err(ApiError::invalid(
            "Invalid work queue",
            vec![format!("'name' must be {}", super::workspaces::NAME_RULE)],
        ));
    }
    let mut q = match state.store().work_queue(ws, &pool, &name).await? {
        Some(q) => q,
        None => WorkQueueRecord {
            name: name.clone(),
            ..WorkQueueRecord::default_of(&pool)
        },
    };
    let mut errors = Vec::new();
    for (k, v) in &body {
        match (k.as_str(), v) {
            ("priority", serde_json::Value::Number(n))
                if super::whole(n).is_some_and(|n| (1..=1_000_000).contains(&n)) =>
            {
                q.priority = super::whole(n).unwrap_or(1);
            }
            ("concurrency_limit", serde_json::Value::Null) => q.concurrency_limit = None,
            ("concurrency_limit", serde_json::Value::Number(n))
                if super::whole(n).is_some_and(|n| n >= 0) =>
            {
                q.concurrency_limit = super::whole(n);
            }
            ("paused", serde_json::Value::Bool(b)) => q.paused = *b,
            // `null` keeps the value (as leaving the field out does).
            ("priority" | "paused", serde_json::Value::Null) => {}
            ("priority", _) => {
                errors.push("'priority' must be an integer from 1 to 1000000".into())
            }
            ("concurrency_limit", _) => {
                errors.push("'concurrency_limit' must be a non-negative integer or null".into())
            }
            ("paused", _) => errors.push("'paused' must be a boolean".into()),
            _ => errors.push(format!(
                "'{k}': a work queue has priority, concurrency_limit and paused"
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("Invalid work queue", errors));
    }
    state.store().put_work_queue(ws, &q).await?;
    state.executor.limits_changed(ws);
    Ok(Json(queue_json(&state, ws, q)))
}

#[utoipa::path(delete, path = "/api/pools/{pool}/queues/{name}", tag = "pools", security(("bearer" = [])),
    params(("pool" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem), (status = 409, body = super::Problem)))]
pub async fn delete_queue(
    auth: Auth,
    State(state): State<AppState>,
    Path((pool, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let ws = &auth.workspace_id;
    existing_pool(&state, ws, &pool).await?;
    if name == "default" {
        return Err(ApiError::Conflict(
            "a pool's default work queue cannot be deleted".into(),
        ));
    }
    state.executor.limits_changed(ws);
    match state.store().delete_work_queue(ws, &pool, &name).await? {
        Saved::Done => Ok(StatusCode::NO_CONTENT),
        Saved::Missing => Err(ApiError::NotFound("work queue")),
        Saved::NameTaken => Err(ApiError::Conflict("deployments use this work queue".into())),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConcurrencyLimit {
    pub tag: String,
    pub limit: i64,
    /// Runs with the tag executing on this node now.
    pub running: usize,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutLimit {
    /// Runs with the tag running at once at most.
    #[serde(deserialize_with = "super::int")]
    #[schema(minimum = 0)]
    pub limit: i64,
}

fn limit_json(state: &AppState, ws: &str, l: ConcurrencyLimitRecord) -> ConcurrencyLimit {
    ConcurrencyLimit {
        running: state
            .executor
            .slots()
            .in_use(&format!("tag:{ws}:{}", l.tag)),
        tag: l.tag,
        limit: l.limit,
    }
}

/// The workspace's tag concurrency limits in tag order.
#[utoipa::path(get, path = "/api/concurrency-limits", tag = "pools", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<ConcurrencyLimit>)))]
pub async fn list_limits(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<ConcurrencyLimit>>> {
    let pager = page.check(&state, "concurrency-limits", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let items = state
        .store()
        .concurrency_limits_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        items,
        |l| serde_json::json!(l.tag),
        |l| limit_json(&state, &auth.workspace_id, l),
    )))
}

/// At most `limit` runs carrying `tag` run at once.
#[utoipa::path(put, path = "/api/concurrency-limits/{tag}", tag = "pools", security(("bearer" = [])),
    params(("tag" = String, Path)), request_body = PutLimit,
    responses((status = 200, body = ConcurrencyLimit), (status = 422, body = super::Problem)))]
pub async fn put_limit(
    auth: Auth,
    State(state): State<AppState>,
    Path(tag): Path<String>,
    ApiJson(body): ApiJson<PutLimit>,
) -> ApiResult<Json<ConcurrencyLimit>> {
    let mut errors = Vec::new();
    if !super::workspaces::valid_name(&tag) {
        errors.push(format!("the tag must be {}", super::workspaces::NAME_RULE));
    }
    if body.limit < 0 {
        errors.push("'limit' must not be negative".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("Invalid limit", errors));
    }
    state
        .store()
        .put_concurrency_limit(&auth.workspace_id, &tag, body.limit)
        .await?;
    state.executor.limits_changed(&auth.workspace_id);
    Ok(Json(limit_json(
        &state,
        &auth.workspace_id,
        ConcurrencyLimitRecord {
            tag,
            limit: body.limit,
        },
    )))
}

#[utoipa::path(delete, path = "/api/concurrency-limits/{tag}", tag = "pools", security(("bearer" = [])),
    params(("tag" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem)))]
pub async fn delete_limit(
    auth: Auth,
    State(state): State<AppState>,
    Path(tag): Path<String>,
) -> ApiResult<StatusCode> {
    state.executor.limits_changed(&auth.workspace_id);
    if state
        .store()
        .delete_concurrency_limit(&auth.workspace_id, &tag)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("concurrency limit"))
    }
}
