//! A component's manifest: the flows and tasks it exports, as `describe` reports them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub sdk: String,
    pub flows: Vec<Definition>,
    pub tasks: Vec<Definition>,
}

impl Manifest {
    pub fn flow(&self, name: &str) -> Option<&Definition> {
        self.flows.iter().find(|d| d.name == name)
    }

    pub fn task(&self, name: &str) -> Option<&Definition> {
        self.tasks.iter().find(|d| d.name == name)
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
    pub log_prints: bool,
    pub run_name_template: Option<String>,
    pub on_completion: Vec<String>,
    pub on_failure: Vec<String>,
    /// Flows only: hooks run when a flow run ends Cancelled.
    #[serde(default)]
    pub on_cancellation: Vec<String>,
    /// Flows only: hooks run when a flow run ends Crashed.
    #[serde(default)]
    pub on_crashed: Vec<String>,
}

/// Retry delays one flow or task may list.
pub const MAX_RETRY_DELAYS: usize = 1000;
/// The largest retry jitter factor (a delay spread by more than this is no delay).
pub const MAX_JITTER: f64 = 1000.0;

impl Options {
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
        errors
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
