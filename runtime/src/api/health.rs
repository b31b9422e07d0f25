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
        "# HELP weir_flow_runs_max_active Flow runs this node executes at once; more wait in the queue.\n# TYPE weir_flow_runs_max_active gauge\nweir_flow_runs_max_active {}",
        exec.max_active()
    );
    let _ = writeln!(
        out,
        "# HELP weir_instances_in_use WebAssembly instances running task attempts.\n# TYPE weir_instances_in_use gauge\nweir_instances_in_use {}",
        exec.orchestrator().task_instances_in_use()
    );
    exec.orchestrator().task_durations().render(&mut out);
    render_tenants(exec, &mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// A metric of every workspace: name, type, help, and its value from the usage.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::orchestrate::tenants::Usage) -> f64,
);

/// Per workspace: fuel and CPU time this hour, memory held, bytes stored, task slots.
fn render_tenants(exec: &crate::executor::Executor, out: &mut String) {
    let tenants = &exec.orchestrator().tenants;
    let mut all: Vec<_> = tenants.all();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let metrics: [Metric; 5] = [
        (
            "weir_workspace_fuel_this_hour",
            "gauge",
            "Fuel (WebAssembly instructions) a workspace's instances executed this hour, all nodes.",
            |u| u.fuel_this_hour as f64,
        ),
        (
            "weir_workspace_cpu_seconds_this_hour",
            "gauge",
            "CPU time of a workspace's instances this hour in epoch ticks, all nodes.",
            |u| u.cpu_ms_this_hour as f64 / 1000.0,
        ),
        (
            "weir_workspace_memory_bytes",
            "gauge",
            "Memory a workspace's instances and runs hold on this node.",
            |u| u.memory_bytes as f64,
        ),
        (
            "weir_workspace_storage_bytes",
            "gauge",
            "Bytes of logs, artifacts and results a workspace stores.",
            |u| u.storage_bytes as f64,
        ),
        (
            "weir_workspace_task_slots",
            "gauge",
            "Task slots a workspace holds on this node.",
            |u| u.task_slots as f64,
        ),
    ];
    let usages: Vec<_> = all
        .iter()
        .map(|t| (t.id.clone(), tenants.usage(&t.id)))
        .collect();
    for (name, kind, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (id, usage) in &usages {
            let _ = writeln!(out, "{name}{{workspace=\"{id}\"}} {}", value(usage));
        }
    }
}
