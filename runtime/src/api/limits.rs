//! Global concurrency and rate limits of a workspace (Prefect's global concurrency
//! limits): flows and tasks occupy their slots with `weir_sdk::concurrency` and
//! `weir_sdk::rate_limit`.

use super::{ApiError, ApiJson, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use crate::store::GlobalLimit;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct GlobalConcurrencyLimit {
    pub name: String,
    /// Slots that may be occupied at once.
    pub limit: i64,
    /// For a rate limit: occupied slots that come back each second.
    pub slot_decay_per_second: Option<f64>,
    /// An inactive limit limits nothing.
    pub active: bool,
    /// Slots occupied now, on every node (a rate limit's decaying ones included).
    pub active_slots: f64,
    pub created: chrono::DateTime<chrono::Utc>,
    pub updated: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGlobalLimit {
    /// Slots that may be occupied at once: 0 to 1,000,000.
    #[serde(deserialize_with = "super::int")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub limit: i64,
    /// Makes it a rate limit: occupied slots come back at this rate (per second).
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 1000000)]
    pub slot_decay_per_second: Option<f64>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

const MAX_SLOTS: i64 = 1_000_000;

async fn shown(
    state: &AppState,
    workspace_id: &str,
    l: GlobalLimit,
) -> ApiResult<GlobalConcurrencyLimit> {
    let active_slots = state
        .store()
        .global_limit_in_use(workspace_id, &l.name)
        .await?;
    Ok(GlobalConcurrencyLimit {
        name: l.name,
        limit: l.slots,
        slot_decay_per_second: l.slot_decay_per_second,
        active: l.active,
        active_slots,
        created: l.created,
        updated: l.updated,
    })
}

async fn shown_by_name(
    state: &AppState,
    workspace_id: &str,
    name: &str,
) -> ApiResult<GlobalConcurrencyLimit> {
    let l = state
        .store()
        .global_limit(workspace_id, name)
        .await?
        .ok_or(ApiError::NotFound("global concurrency limit"))?;
    shown(state, workspace_id, l).await
}

/// The workspace's global concurrency and rate limits in name order.
#[utoipa::path(get, path = "/api/global-concurrency-limits", tag = "limits", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<GlobalConcurrencyLimit>)))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<GlobalConcurrencyLimit>>> {
    let pager = page.check(&state, "global-concurrency-limits", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let limits = state
        .store()
        .global_limits_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    let mut items = Vec::with_capacity(limits.len());
    for l in limits {
        items.push(shown(&state, &auth.workspace_id, l).await?);
    }
    Ok(Json(pager.page(
        items,
        |l| serde_json::json!(l.name),
        |l| l,
    )))
}

#[utoipa::path(get, path = "/api/global-concurrency-limits/{name}", tag = "limits",
    security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = GlobalConcurrencyLimit), (status = 404, body = super::Problem)))]
pub async fn get(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<GlobalConcurrencyLimit>> {
    Ok(Json(
        shown_by_name(&state, &auth.workspace_id, &name).await?,
    ))
}

/// Creates or replaces a limit; slots occupied already stay occupied.
#[utoipa::path(put, path = "/api/global-concurrency-limits/{name}", tag = "limits",
    security(("bearer" = [])), params(("name" = String, Path)), request_body = PutGlobalLimit,
    responses((status = 200, body = GlobalConcurrencyLimit), (status = 422, body = super::Problem)))]
pub async fn put(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutGlobalLimit>,
) -> ApiResult<Json<GlobalConcurrencyLimit>> {
    let mut errors = Vec::new();
    if !super::workspaces::valid_name(&name) {
        errors.push(format!(
            "'name': names are {}",
            super::workspaces::NAME_RULE
        ));
    }
    if !(0..=MAX_SLOTS).contains(&body.limit) {
        errors.push(format!(
            "'limit': from 0 to {MAX_SLOTS}, not {}",
            body.limit
        ));
    }
    if let Some(d) = body.slot_decay_per_second
        && !(d.is_finite() && d > 0.0 && d <= MAX_SLOTS as f64)
    {
        errors.push(format!(
            "'slot_decay_per_second': a number above 0 and at most {MAX_SLOTS}, not {d}"
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            "Invalid global concurrency limit",
            errors,
        ));
    }
    state
        .store()
        .put_global_limit(
            &auth.workspace_id,
            &name,
            body.limit,
            body.slot_decay_per_second,
            body.active,
        )
        .await?;
    state
        .executor
        .orchestrator()
        .limits_released
        .notify_waiters();
    Ok(Json(
        shown_by_name(&state, &auth.workspace_id, &name).await?,
    ))
}

/// Deletes a limit; runs waiting for it go ahead.
#[utoipa::path(delete, path = "/api/global-concurrency-limits/{name}", tag = "limits",
    security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem)))]
pub async fn delete(
    auth: Auth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .store()
        .delete_global_limit(&auth.workspace_id, &name)
        .await?
    {
        state
            .executor
            .orchestrator()
            .limits_released
            .notify_waiters();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("global concurrency limit"))
    }
}
