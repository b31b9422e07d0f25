//! Retention: how long the workspace keeps its finished runs, and what was deleted.

use super::{ApiError, ApiJson, ApiResult, AppState, Auth};
use crate::model::retention::Retention;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A retention policy: finished runs (with their subflows, task runs, logs, artifacts
/// and results) older than `days`, or past the newest `runs`, are deleted in the
/// background. Both bounds hold when both are set; neither keeps everything.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone, Copy, Debug)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Days a finished run is kept after it ended.
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 1, maximum = 36500)]
    pub days: Option<i64>,
    /// Finished runs kept at most, the newest by when they ended.
    #[serde(default, deserialize_with = "super::int_opt")]
    #[schema(minimum = 1, maximum = 100000000)]
    pub runs: Option<i64>,
}

impl RetentionPolicy {
    /// The model's policy, or a 422 naming each field out of range under `field`.
    pub(crate) fn check(self, field: &str) -> Result<Retention, Vec<String>> {
        Retention::check(self.days, self.runs, field)
    }
}

impl From<Retention> for RetentionPolicy {
    fn from(r: Retention) -> Self {
        Self {
            days: r.days.map(i64::from),
            runs: r.runs.map(i64::from),
        }
    }
}

/// A deployment with a policy of its own (it replaces the workspace's for its runs).
#[derive(Serialize, ToSchema)]
pub struct DeploymentRetention {
    pub id: String,
    pub name: String,
    pub policy: RetentionPolicy,
    /// The policy in words.
    pub summary: String,
}

#[derive(Serialize, ToSchema)]
pub struct RetentionReport {
    /// The workspace's own policy (both fields null: none, the server's default holds).
    pub policy: RetentionPolicy,
    /// The server's default, for workspaces without a policy of their own.
    pub server_default: RetentionPolicy,
    /// The policy its runs answer to (unless their deployment has its own).
    pub effective: RetentionPolicy,
    /// The effective policy in words.
    pub summary: String,
    /// Deployments with a policy of their own, by name (the first 1000).
    pub deployments: Vec<DeploymentRetention>,
    /// Flow runs (subflows counted) retention has deleted, and when it last did.
    pub runs_deleted: u64,
    pub last_deleted: Option<DateTime<Utc>>,
}

/// Deployments listed with their own policy at most.
const MAX_LISTED: i64 = 1000;

pub(crate) async fn report(state: &AppState, workspace_id: &str) -> ApiResult<RetentionReport> {
    let own = state.store().workspace_retention(workspace_id).await?;
    let effective = own.policy.or(state.retention_default);
    let deployments = state
        .store()
        .deployments_with_retention(workspace_id, MAX_LISTED)
        .await?
        .into_iter()
        .map(|(id, name, policy)| DeploymentRetention {
            id,
            name,
            policy: policy.into(),
            summary: policy.to_string(),
        })
        .collect();
    Ok(RetentionReport {
        policy: own.policy.into(),
        server_default: state.retention_default.into(),
        effective: effective.into(),
        summary: effective.to_string(),
        deployments,
        runs_deleted: own.runs_deleted,
        last_deleted: own.last_deleted,
    })
}

/// The workspace's retention: its policy, the server's default, the deployments with
/// their own, and what was deleted.
#[utoipa::path(get, path = "/api/retention", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, body = RetentionReport), (status = 401, body = super::Problem)))]
pub async fn get(auth: Auth, State(state): State<AppState>) -> ApiResult<Json<RetentionReport>> {
    Ok(Json(report(&state, &auth.workspace_id).await?))
}

/// Sets the workspace's policy (both fields null or left out: none, the server's
/// default holds). Runs it no longer keeps are deleted by the next pass of every node.
#[utoipa::path(put, path = "/api/retention", tag = "workspaces", security(("bearer" = [])),
    request_body = RetentionPolicy,
    responses((status = 200, body = RetentionReport), (status = 401, body = super::Problem),
              (status = 422, body = super::Problem)))]
pub async fn put(
    auth: Auth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RetentionPolicy>,
) -> ApiResult<Json<RetentionReport>> {
    let policy = body
        .check("")
        .map_err(|errors| ApiError::invalid("Invalid retention", errors))?;
    state
        .store()
        .put_workspace_retention(&auth.workspace_id, policy)
        .await?;
    tracing::info!(target: "weir::audit", workspace = %auth.workspace_id, %policy, "retention set");
    Ok(Json(report(&state, &auth.workspace_id).await?))
}
