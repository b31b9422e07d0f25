//! A component's manifest: the flows and tasks it exports, as `describe` reports them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub sdk: String,
    pub flows: Vec<Definition>,
    pub tasks: Vec<Definition>,
    /// Background runs of the tasks (Prefect's `task.delay()`): one flow-like definition
    /// per task, named `task/<name>` (a name no flow can have), whose run executes the
    /// task as its only call. Made when the component is loaded.
    #[serde(skip)]
    pub background: Vec<Definition>,
}

/// What a background task run's flow name starts with.
pub const BACKGROUND_PREFIX: &str = "task/";

impl Manifest {
    /// The flow of that name. A name with underscores also finds the flow whose default
    /// name has dashes there (`my_flow` finds `my-flow`, as a Python function's name finds
    /// its Prefect flow).
    pub fn flow(&self, name: &str) -> Option<&Definition> {
        if name.starts_with(BACKGROUND_PREFIX) {
            return self.background.iter().find(|d| d.name == name);
        }
        self.flows.iter().find(|d| d.name == name).or_else(|| {
            name.contains('_')
                .then(|| name.replace('_', "-"))
                .and_then(|dashed| self.flows.iter().find(|d| d.name == dashed))
        })
    }

    pub fn task(&self, name: &str) -> Option<&Definition> {
        self.tasks.iter().find(|d| d.name == name)
    }

    /// Gives flows and tasks without a version the component's (Prefect versions a flow
    /// by a hash of its source; a component's digest is that hash).
    pub fn default_versions(&mut self, digest: &str) {
        let version = digest.get(..12).unwrap_or(digest);
        for def in self.flows.iter_mut().chain(self.tasks.iter_mut()) {
            if def.version.is_none() {
                def.version = Some(version.to_owned());
            }
        }
    }

    /// Makes the background definitions of the tasks: the task's parameters, tags and
    /// version, a flow's default options (the task's own apply to its task run).
    pub fn add_background_tasks(&mut self) {
        self.background = self
            .tasks
            .iter()
            .map(|t| Definition {
                name: format!("{BACKGROUND_PREFIX}{}", t.name),
                description: t.description.clone(),
                version: t.version.clone(),
                parameters: t.parameters.clone(),
                options: Options {
                    tags: t.options.tags.clone(),
                    ..Options::flow_defaults()
                },
            })
            .collect();
    }

    pub fn flow_names(&self) -> Vec<&str> {
        self.flows.iter().map(|d| d.name.as_str()).collect()
    }
}

/// A flow or a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub description: Option<String>,
    pub version: Option<String>,
    /// JSON Schema of the parameters.
    pub parameters: Value,
    pub options: Options,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CachePolicy {
    None,
    Inputs,
    Custom,
}

/// Orchestration options (Prefect's decorator arguments).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    pub tags: Vec<String>,
    pub retries: u32,
    pub retry_delay_seconds: Vec<f64>,
    pub retry_jitter_factor: Option<f64>,
    pub has_retry_condition: bool,
    pub timeout_seconds: Option<f64>,
    pub cache_policy: CachePolicy,
    pub cache_expiration_seconds: Option<f64>,
    pub refresh_cache: bool,
    pub persist_result: Option<bool>,
    /// `None` inherits the caller's setting (Prefect's `log_prints`); see
    /// [`Options::log_prints_under`].
    pub log_prints: Option<bool>,
    pub run_name_template: Option<String>,
    /// The run is named by a guest function, which the run calls as it starts.
    #[serde(default)]
    pub has_run_name_fn: bool,
    pub on_completion: Vec<String>,
    pub on_failure: Vec<String>,
    /// Flows only: hooks run when a flow run ends Cancelled.
    #[serde(default)]
    pub on_cancellation: Vec<String>,
    /// Flows only: hooks run when a flow run ends Crashed.
    #[serde(default)]
    pub on_crashed: Vec<String>,
    /// Hooks run each time a run enters Running.
    #[serde(default)]
    pub on_running: Vec<String>,
    /// Tasks only: hooks run when the task's transaction commits.
    #[serde(default)]
    pub on_commit: Vec<String>,
    /// Tasks only: hooks run when the task's transaction rolls back.
    #[serde(default)]
    pub on_rollback: Vec<String>,
    /// Flows only: `false` passes parameters through without validation or coercion.
    #[serde(default = "yes")]
    pub validate_parameters: bool,
    /// Flows only: how many of a run's submitted task runs execute at once (Prefect's
    /// task runners); `None` is bounded by the node's task slots only.
    #[serde(default)]
    pub max_workers: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Retry delays one flow or task may list (Prefect's limit).
pub const MAX_RETRY_DELAYS: usize = 50;
/// Characters Prefect refuses in flow and deployment names.
pub const BANNED_NAME_CHARACTERS: &[char] = &['/', '%', '&', '>', '<'];

/// Checks a flow or deployment name as Prefect does: not empty, none of
/// [`BANNED_NAME_CHARACTERS`].
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{what} name must not be empty"));
    }
    if let Some(c) = name.chars().find(|c| BANNED_NAME_CHARACTERS.contains(c)) {
        return Err(format!(
            "{what} name '{name}' contains '{c}'; names cannot contain any of / % & > <"
        ));
    }
    Ok(())
}
/// The largest retry jitter factor (a delay spread by more than this is no delay).
pub const MAX_JITTER: f64 = 1000.0;

impl Options {
    /// A flow's options when it declares none.
    pub fn flow_defaults() -> Self {
        Options {
            tags: vec![],
            retries: 0,
            retry_delay_seconds: vec![],
            retry_jitter_factor: None,
            has_retry_condition: false,
            timeout_seconds: None,
            cache_policy: CachePolicy::None,
            cache_expiration_seconds: None,
            refresh_cache: false,
            persist_result: None,
            log_prints: None,
            run_name_template: None,
            has_run_name_fn: false,
            on_completion: vec![],
            on_failure: vec![],
            on_cancellation: vec![],
            on_crashed: vec![],
            on_running: vec![],
            on_commit: vec![],
            on_rollback: vec![],
            validate_parameters: true,
            max_workers: None,
        }
    }

    /// Checks the durations and factors a component declared, as they enter Weir (at
    /// upload, or when `weir run` loads the component), and normalizes them: a timeout of
    /// `0` is no timeout, as in Prefect. Returns one message per bad field, naming it.
    pub fn validate(&mut self) -> Vec<String> {
        use super::duration;
        let mut errors = Vec::new();
        if self.retry_delay_seconds.len() > MAX_RETRY_DELAYS {
            errors.push(format!(
                "'retry_delay_seconds' lists {} delays; at most {MAX_RETRY_DELAYS} are allowed",
                self.retry_delay_seconds.len()
            ));
        } else if let Some(e) = self
            .retry_delay_seconds
            .iter()
            .find_map(|d| duration::check("retry_delay_seconds", *d).err())
        {
            errors.push(e.to_string());
        }
        if let Some(j) = self.retry_jitter_factor
            && !(j.is_finite() && (0.0..=MAX_JITTER).contains(&j))
        {
            errors.push(format!(
                "'retry_jitter_factor' must be a number from 0 to {MAX_JITTER}, not {j}"
            ));
        }
        match duration::timeout("timeout_seconds", self.timeout_seconds) {
            Ok(t) => self.timeout_seconds = t,
            Err(e) => errors.push(e.to_string()),
        }
        if let Some(Err(e)) = self
            .cache_expiration_seconds
            .map(|e| duration::check("cache_expiration", e))
        {
            errors.push(e.to_string());
        }
        if self.max_workers == Some(0) {
            errors.push("'max_workers' must be at least 1".to_owned());
        }
        errors
    }

    /// Whether what a run prints is logged, given its caller's setting (a task's flow
    /// run, a subflow's parent): its own when set, else the caller's.
    pub fn log_prints_under(&self, caller: bool) -> bool {
        self.log_prints.unwrap_or(caller)
    }

    /// Results are persisted unless the flow or task opts out.
    pub fn persists_result(&self) -> bool {
        self.persist_result.unwrap_or(true)
    }

    /// The hooks a run that reached a final state of type `kind` runs (Prefect's
    /// `on_completion`, `on_failure`, `on_cancellation`, `on_crashed`).
    pub fn hooks_for(&self, kind: crate::model::state::StateType) -> &[String] {
        use crate::model::state::StateType;
        match kind {
            StateType::Completed => &self.on_completion,
            StateType::Failed => &self.on_failure,
            StateType::Cancelled => &self.on_cancellation,
            StateType::Crashed => &self.on_crashed,
            _ => &[],
        }
    }
}
