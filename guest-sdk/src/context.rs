//! The run context (Prefect's `get_run_context()` / `runtime` module).

use serde_json::Value;

use crate::bindings::weir::flow::context as host;

/// What the current flow or task run knows about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct RunContext {
    /// The flow run (for a task, the flow run that called it).
    pub flow_run_id: String,
    /// The flow run's name.
    pub flow_run_name: String,
    /// The flow's name.
    pub flow_name: String,
    /// The flow run's validated parameters (a JSON object).
    pub parameters: Value,
    /// The task run, inside a task.
    pub task_run_id: Option<String>,
    /// The task run's name, inside a task.
    pub task_run_name: Option<String>,
    /// The task's name, inside a task.
    pub task_name: Option<String>,
    /// The task run's arguments keyed by parameter name, inside a task (Prefect's
    /// `task_run.parameters`).
    pub task_run_parameters: Option<Value>,
    /// The attempt, 1 for the first one (retries count up).
    pub attempt: u32,
    /// The run's tags.
    pub tags: Vec<String>,
    /// The parent flow run, inside a subflow.
    pub parent_flow_run_id: Option<String>,
    /// When the run was scheduled to start (RFC 3339).
    pub scheduled_start: Option<String>,
}

/// The context of the current run.
pub fn context() -> RunContext {
    let context = host::current();
    RunContext {
        flow_run_id: context.flow_run_id,
        flow_run_name: context.flow_run_name,
        flow_name: context.flow_name,
        parameters: serde_json::from_str(&context.parameters).unwrap_or(Value::Null),
        task_run_id: context.task_run_id,
        task_run_name: context.task_run_name,
        task_name: context.task_name,
        task_run_parameters: context
            .task_run_parameters
            .map(|text| serde_json::from_str(&text).unwrap_or(Value::Null)),
        attempt: context.attempt,
        tags: context.tags,
        parent_flow_run_id: context.parent_flow_run_id,
        scheduled_start: context.scheduled_start,
    }
}
