//! What passes between a flow (or task) instance and its run: the attempt an instance
//! serves, the options of a task call, the outcomes of task and subflow runs, pause
//! requests and artifacts.

use super::failure::Failure;
use super::state::State;
use serde::Serialize;

/// One task attempt.
pub struct TaskAttempt {
    pub task_run_id: String,
    pub task_run_name: String,
    pub task_name: String,
    pub attempt: u32,
    pub tags: Vec<String>,
    pub(crate) log_prints: bool,
    /// How deep in task calls this attempt's task run is: 1 when a flow called it.
    pub(crate) nesting: u32,
}

/// A task run the new one waits for.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub task_run_id: String,
    pub allow_failure: bool,
}

/// Per-call options a flow passes with a task call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    pub wait_for: Vec<Dependency>,
    /// The key computed by the task's custom cache-key function.
    pub cache_key: Option<String>,
    pub tags: Vec<String>,
}

/// The final state of a task run, with its value (JSON text) when it completed.
#[derive(Debug, Clone, Serialize)]
pub struct TaskOutcome {
    pub task_run_id: String,
    pub state: State,
    pub value: Option<String>,
    pub failure: Option<Failure>,
}

impl TaskOutcome {
    pub(crate) fn failed(task_run_id: &str, state: State, failure: Failure) -> Self {
        Self {
            task_run_id: task_run_id.to_owned(),
            state,
            value: None,
            failure: Some(failure),
        }
    }
}

/// The final state of a flow run, with its value (JSON text) when it completed.
#[derive(Debug, Clone, Serialize)]
pub struct FlowOutcome {
    pub flow_run_id: String,
    pub flow_run_name: String,
    pub state: State,
    pub value: Option<String>,
    pub failure: Option<Failure>,
}

/// What a flow asks for when it pauses.
#[derive(Debug, Clone)]
pub struct PauseRequest {
    pub timeout_seconds: f64,
    pub key: Option<String>,
    pub description: Option<String>,
    /// JSON Schema (JSON text) of the input a resume must bring.
    pub input_schema: Option<String>,
    pub suspend: bool,
}

/// An artifact a flow or task creates, as the guest gave it (unchecked).
#[derive(Debug, Clone)]
pub struct Artifact {
    pub key: Option<String>,
    pub description: Option<String>,
    pub data: ArtifactData,
}

#[derive(Debug, Clone)]
pub enum ArtifactData {
    Markdown(String),
    /// JSON text: an array of rows.
    Table(String),
    Link {
        url: String,
        text: Option<String>,
    },
    /// A percentage, 0 to 100.
    Progress(f64),
}
