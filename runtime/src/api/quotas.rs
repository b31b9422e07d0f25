//! Workspace quotas (set by the admin) and what a workspace uses against them.

use super::{Admin, ApiError, ApiJson, ApiResult, AppState, Auth};
use crate::model::quota::{Quotas, period_of};
use crate::store::WorkspaceRecord;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A workspace's quotas. A field left out or `null` is no quota of the workspace's own
/// (the server's limits and fair shares still hold).
#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// Flow runs executing at once, across nodes; more wait their turn (Scheduled,
    /// then Late).
    #[schema(minimum = 0, maximum = 1000000)]
    pub runs_in_flight: Option<i64>,
    /// Task slots (instances running task attempts) the workspace may hold at once on
    /// a node; its task runs wait for one past it.
    #[schema(minimum = 0, maximum = 1000000)]
    pub task_slots: Option<i64>,
    /// MiB of memory the workspace's instances and runs may hold at once on a node.
    #[schema(minimum = 0, maximum = 1073741824)]
    pub memory_mb: Option<i64>,
    /// MiB of logs, artifacts and results the workspace may store. Past it, new runs
    /// are refused, running ones drop their logs and cannot create artifacts.
    #[schema(minimum = 0, maximum = 1073741824)]
    pub storage_mb: Option<i64>,
    /// Components the workspace may hold.
    #[schema(minimum = 0, maximum = 1000000)]
    pub components: Option<i64>,
    /// Fuel (WebAssembly instructions, counted deterministically) the workspace's
    /// instances may execute per hour, across nodes; past it they stop with a clear
    /// failure until the next hour.
    #[schema(minimum = 0, maximum = 9007199254740992_i64)]
    pub fuel_per_hour: Option<i64>,
}

/// What a workspace uses now.
#[derive(Serialize, ToSchema)]
pub struct UsageJson {
    /// Flow runs executing on this node.
    pub runs_in_flight: u64,
    /// Task slots held on this node.
    pub task_slots: u64,
    /// Bytes of memory its instances and runs hold on this node.
    pub memory_bytes: u64,
    /// Bytes of logs, artifacts and results stored (every node counted).
    pub storage_bytes: u64,
    pub components: u64,
    /// Fuel its instances executed this hour, and their CPU time measured in epoch
    /// ticks (every node counted).
    pub fuel_this_hour: u64,
    pub cpu_seconds_this_hour: f64,
    /// When the hour started.
    pub hour_start: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceQuotas {
    pub workspace_id: String,
    pub workspace: String,
    pub quotas: QuotaSettings,
    pub usage: UsageJson,
}

fn settings_of(q: &Quotas) -> QuotaSettings {
    let i = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    QuotaSettings {
        runs_in_flight: i(q.runs_in_flight.map(u64::from)),
        task_slots: i(q.task_slots.map(u64::from)),
        memory_mb: i(q.memory_mb),
        storage_mb: i(q.storage_mb),
        components: i(q.components.map(u64::from)),
        fuel_per_hour: i(q.fuel_per_hour),
    }
}

/// Checks each quota against its range; the errors name every field out of it.
fn quotas_of(s: &QuotaSettings) -> Result<Quotas, ApiError> {
    let mut errors = Vec::new();
    let mut field = |name: &str, v: Option<i64>, max: i64| -> Option<u64> {
        let n = v?;
        if !(0..=max).contains(&n) {
            errors.push(format!(
                "'{name}' must be between 0 and {max}, or null for none"
            ));
            return None;
        }
        Some(n as u64)
    };
    let q = Quotas {
        runs_in_flight: field("runs_in_flight", s.runs_in_flight, 1_000_000).map(|n| n as u32),
        task_slots: field("task_slots", s.task_slots, 1_000_000).map(|n| n as u32),
        memory_mb: field("memory_mb", s.memory_mb, 1 << 30),
        storage_mb: field("storage_mb", s.storage_mb, 1 << 30),
        components: field("components", s.components, 1_000_000).map(|n| n as u32),
        fuel_per_hour: field("fuel_per_hour", s.fuel_per_hour, Quotas::MAX as i64),
    };
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(ApiError::invalid("Invalid quotas", errors))
    }
}

async fn report(state: &AppState, ws: WorkspaceRecord) -> ApiResult<Json<WorkspaceQuotas>> {
    let tenants = &state.executor.orchestrator().tenants;
    let quotas = tenants.get(&ws.id).quotas();
    let usage = tenants.usage(&ws.id);
    let hour = period_of(Utc::now());
    Ok(Json(WorkspaceQuotas {
        usage: UsageJson {
            runs_in_flight: state.executor.runs_in_flight(&ws.id) as u64,
            task_slots: usage.task_slots as u64,
            memory_bytes: usage.memory_bytes as u64,
            storage_bytes: usage.storage_bytes,
            components: state.store().component_count(&ws.id).await?,
            fuel_this_hour: usage.fuel_this_hour,
            cpu_seconds_this_hour: usage.cpu_ms_this_hour as f64 / 1000.0,
            hour_start: Utc
                .timestamp_opt(hour * 3600, 0)
                .single()
                .unwrap_or_default(),
        },
        quotas: settings_of(&quotas),
        workspace_id: ws.id,
        workspace: ws.name,
    }))
}

/// A workspace's quotas and what it uses (admin token).
#[utoipa::path(get, path = "/api/workspaces/{id}/quotas", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path, description = "The workspace's id or name")),
    responses((status = 200, body = WorkspaceQuotas), (status = 401, body = super::Problem),
              (status = 404, body = super::Problem)))]
pub async fn get_quotas(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkspaceQuotas>> {
    let ws = super::workspaces::by_id_or_name(&state, &id).await?;
    report(&state, ws).await
}

/// Sets a workspace's quotas (admin token): every quota at once, a field left out or
/// `null` is none. They apply on this node at once, on the others within a second.
#[utoipa::path(put, path = "/api/workspaces/{id}/quotas", tag = "workspaces", request_body = QuotaSettings,
    security(("bearer" = [])), params(("id" = String, Path, description = "The workspace's id or name")),
    responses((status = 200, body = WorkspaceQuotas), (status = 401, body = super::Problem),
              (status = 404, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn put_quotas(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<QuotaSettings>,
) -> ApiResult<Json<WorkspaceQuotas>> {
    let quotas = quotas_of(&body)?;
    if quotas.fuel_per_hour.is_some() && !state.executor.engine().limits().cpu_metering {
        return Err(ApiError::invalid(
            "Invalid quotas",
            vec![
                "'fuel_per_hour' needs CPU metering, which this server runs without \
                 (--cpu-metering off)"
                    .into(),
            ],
        ));
    }
    let ws = super::workspaces::by_id_or_name(&state, &id).await?;
    state.store().put_quotas(&ws.id, &quotas).await?;
    state
        .executor
        .orchestrator()
        .tenants
        .apply(&ws.id, quotas.clone());
    state.executor.limits_changed(&ws.id);
    tracing::warn!(target: "weir::audit", workspace = %ws.name, ?quotas, "the admin set the workspace's quotas");
    report(&state, ws).await
}

/// The caller's workspace: its quotas and what it uses.
#[utoipa::path(get, path = "/api/usage", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, body = WorkspaceQuotas), (status = 401, body = super::Problem)))]
pub async fn usage(auth: Auth, State(state): State<AppState>) -> ApiResult<Json<WorkspaceQuotas>> {
    let ws = state
        .store()
        .workspace(&auth.workspace_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    report(&state, ws).await
}

/// Refuses an upload of a new component past the workspace's quota.
pub(crate) async fn check_components(state: &AppState, workspace_id: &str) -> ApiResult<()> {
    let tenants = &state.executor.orchestrator().tenants;
    if let Some(max) = tenants.get(workspace_id).quotas().components {
        let n = state.store().component_count(workspace_id).await?;
        if n >= u64::from(max) {
            return Err(ApiError::Quota(format!(
                "the workspace holds {n} components, its quota; delete one or ask the admin \
                 for more"
            )));
        }
    }
    Ok(())
}
