//! Rows as the rest of Weir sees them.

use crate::model::state::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Flow,
    Task,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowRunRecord {
    pub id: String,
    pub name: String,
    pub flow_name: String,
    /// The function of the flow, when the component named one (flows may share names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_function: Option<String>,
    pub component_digest: String,
    pub parameters: Value,
    pub tags: Vec<String>,
    pub parent_flow_run_id: Option<String>,
    pub parent_position: Option<i64>,
    pub state: State,
    pub run_count: i64,
    pub result: Option<Value>,
    pub created: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// `None` for runs started locally with `weir run`.
    pub workspace_id: Option<String>,
    pub deployment_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// When a scheduled run is due.
    pub expected_start: Option<DateTime<Utc>>,
    /// The schedule that created the run.
    pub schedule_id: Option<String>,
    /// The server node holding the run (waiting for its time or slots, or running it).
    pub node_id: Option<String>,
    /// Grows with every claim of the run; writes of an older holder are rejected.
    #[serde(skip)]
    pub fence: i64,
    /// How many times a node died while running it (each time another took it over).
    pub crash_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskRunRecord {
    pub id: String,
    pub flow_run_id: String,
    pub position: Option<i64>,
    pub task_name: String,
    pub name: String,
    pub input_hash: String,
    pub cache_key: Option<String>,
    pub tags: Vec<String>,
    pub state: State,
    pub run_count: i64,
    pub result: Option<Value>,
    pub created: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// The flow run's workspace (`None` for runs outside a server).
    pub workspace_id: Option<String>,
    /// The task runs this one waited for (`wait_for`), in the order given.
    pub upstream: Vec<String>,
    /// The transaction it belongs to.
    pub transaction_id: Option<String>,
}

/// A state change of a flow or task run, with the columns that change with it.
#[derive(Debug, Clone)]
pub struct StateChange {
    pub run_id: String,
    pub kind: RunKind,
    pub state: State,
    /// Set when an attempt starts.
    pub run_count: Option<i64>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// The result as JSON text, when the run completed and its result is persisted.
    pub result: Option<String>,
    /// The holding node lets the run go (any node may claim it).
    pub release: bool,
}

impl StateChange {
    pub fn new(kind: RunKind, run_id: &str, state: State) -> Self {
        Self {
            run_id: run_id.to_owned(),
            kind,
            state,
            run_count: None,
            start_time: None,
            end_time: None,
            result: None,
            release: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    pub flow_run_id: String,
    pub task_run_id: Option<String>,
    pub level: String,
    pub message: String,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRecord {
    pub id: String,
    pub key: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub data: Value,
    pub flow_run_id: String,
    pub task_run_id: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// The flow run's workspace (`None` for runs outside a server).
    #[serde(skip)]
    pub workspace_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub key: String,
    pub result: String,
    pub task_run_id: String,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}
