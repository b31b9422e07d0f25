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
    /// The task run's arguments, JSON text (Prefect's `task_run.parameters`).
    pub arguments: String,
    pub(crate) log_prints: bool,
    /// How deep in task calls this attempt's task run is: 1 when a flow called it.
    pub(crate) nesting: u32,
    /// The plugin whose task this is (`http@2`): its own task calls name its tasks, and
    /// it reads only the secrets the run's deployment lets plugins read.
    pub(crate) plugin: Option<std::sync::Arc<str>>,
}

/// Slots of the workspace's concurrency or rate limits a guest asks for.
#[derive(Debug, Clone)]
pub struct LimitRequest {
    pub names: Vec<String>,
    pub occupy: u32,
    pub timeout_seconds: Option<f64>,
    pub strict: bool,
}

/// A task run the new one waits for.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub task_run_id: String,
    pub allow_failure: bool,
    /// Where the upstream run's value goes in the arguments (a JSON Pointer), when it is
    /// an argument.
    pub argument: Option<String>,
}

/// Per-call options a flow passes with a task call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    pub wait_for: Vec<Dependency>,
    /// The key computed by the task's custom cache-key function.
    pub cache_key: Option<String>,
    pub tags: Vec<String>,
    pub overrides: TaskOverrides,
}

/// Options of one call that replace the task's own (Prefect's `task.with_options`).
#[derive(Debug, Clone, Default)]
pub struct TaskOverrides {
    pub name: Option<String>,
    pub run_name_template: Option<String>,
    pub retries: Option<u32>,
    pub retry_delay_seconds: Option<Vec<f64>>,
    pub retry_jitter_factor: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub cache_policy: Option<super::manifest::CachePolicy>,
    pub cache_expiration_seconds: Option<f64>,
    pub refresh_cache: Option<bool>,
    pub persist_result: Option<bool>,
    pub log_prints: Option<bool>,
}

impl TaskOverrides {
    /// The task's definition with these overrides applied and checked like a manifest's
    /// options (the messages name the bad fields).
    pub fn apply(
        &self,
        def: &super::manifest::Definition,
    ) -> Result<super::manifest::Definition, String> {
        let mut def = def.clone();
        let o = &mut def.options;
        if let Some(name) = &self.name {
            super::manifest::check_name("task", name)?;
            def.name.clone_from(name);
        }
        if let Some(t) = &self.run_name_template {
            o.run_name_template = Some(t.clone());
            o.has_run_name_fn = false;
        }
        if let Some(r) = self.retries {
            o.retries = r;
        }
        if let Some(d) = &self.retry_delay_seconds {
            o.retry_delay_seconds.clone_from(d);
        }
        if let Some(j) = self.retry_jitter_factor {
            o.retry_jitter_factor = Some(j);
        }
        if let Some(t) = self.timeout_seconds {
            o.timeout_seconds = Some(t);
        }
        if let Some(p) = self.cache_policy {
            o.cache_policy = p;
        }
        if let Some(e) = self.cache_expiration_seconds {
            o.cache_expiration_seconds = Some(e);
        }
        if let Some(r) = self.refresh_cache {
            o.refresh_cache = r;
        }
        if let Some(p) = self.persist_result {
            o.persist_result = Some(p);
        }
        if let Some(l) = self.log_prints {
            o.log_prints = Some(l);
        }
        let errors = o.validate();
        if errors.is_empty() {
            Ok(def)
        } else {
            Err(format!(
                "invalid options for this call: {}",
                errors.join("; ")
            ))
        }
    }
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

/// Whether a transaction locks its key (Prefect's isolation levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    ReadCommitted,
    /// A lock on the key from begin to commit or rollback, across nodes.
    Serializable,
}

/// When a transaction commits (Prefect's commit modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// As it ends, even inside another.
    Eager,
    /// When the outermost transaction ends.
    Lazy,
    /// Never: rolled back at the end unless committed by someone else.
    Off,
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransactionState {
    Active,
    Committed,
    RolledBack,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),* }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
text_enum!(Isolation { ReadCommitted = "read-committed", Serializable = "serializable" });
text_enum!(CommitMode { Eager = "eager", Lazy = "lazy", Off = "off" });
text_enum!(TransactionState { Active = "active", Committed = "committed", RolledBack = "rolled-back" });

/// A transaction a flow opens (Prefect's `transaction(...)` arguments); `None` inherits
/// the enclosing transaction's setting.
#[derive(Debug, Clone, Default)]
pub struct TransactionOptions {
    pub key: Option<String>,
    pub isolation: Option<Isolation>,
    pub commit_mode: Option<CommitMode>,
    pub overwrite: bool,
    pub lock_timeout_seconds: Option<f64>,
}
