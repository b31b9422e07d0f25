//! `GET /health` and `GET /metrics` (Prometheus text).

use super::{Admin, ApiResult, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write as _;

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The server is up", body = Object)))]
pub async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Prometheus metrics of the whole server (admin token: they span every workspace).
#[utoipa::path(get, path = "/metrics", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
              (status = 401, body = super::Problem)))]
pub async fn metrics(_: Admin, State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let mut out = String::new();
    out.push_str("# HELP weir_flow_runs Flow runs by state type.\n# TYPE weir_flow_runs gauge\n");
    for (state_type, n) in state.store().flow_run_counts().await? {
        let _ = writeln!(out, "weir_flow_runs{{state=\"{state_type}\"}} {n}");
    }
    let exec = &state.executor;
    let _ = writeln!(
        out,
        "# HELP weir_queue_depth Flow runs waiting for their time or a slot.\n# TYPE weir_queue_depth gauge\nweir_queue_depth {}",
        exec.queue_depth()
    );
    let _ = writeln!(
        out,
        "# HELP weir_flow_runs_active Flow runs executing on this node.\n# TYPE weir_flow_runs_active gauge\nweir_flow_runs_active {}",
        exec.active()
    );
    let _ = writeln!(
        out,
        "# HELP weir_instances_in_use WebAssembly instances running task attempts.\n# TYPE weir_instances_in_use gauge\nweir_instances_in_use {}",
        exec.orchestrator().task_instances_in_use()
    );
    exec.orchestrator().task_durations().render(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
