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
    ///
    /// Two flows may share a name when their functions differ (Prefect's entrypoints): a
    /// shared name finds neither (see [`Manifest::find_flow`] for the error), each one's
    /// function finds it.
    pub fn flow(&self, name: &str) -> Option<&Definition> {
        self.find_flow(name).ok()
    }

    /// The flow a name or function names, or why none is found.
    pub fn find_flow(&self, name: &str) -> Result<&Definition, String> {
        if name.starts_with(BACKGROUND_PREFIX) {
            return self
                .background
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| self.no_flow(name));
        }
        let named = |wanted: &str| -> Result<Option<&Definition>, String> {
            let mut found = self.flows.iter().filter(|d| d.name == wanted);
            match (found.next(), found.next()) {
                (Some(only), None) => Ok(Some(only)),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => {
                    let functions: Vec<&str> = self
                        .flows
                        .iter()
                        .filter(|d| d.name == wanted)
                        .filter_map(|d| d.function.as_deref())
                        .collect();
                    Err(format!(
                        "the component has {} flows named '{wanted}'; name one by its \
                         function: {}",
                        functions.len(),
                        functions.join(", ")
                    ))
                }
            }
        };
        if let Some(def) = named(name)? {
            return Ok(def);
        }
        if let Some(def) = self.flow_by_function(name) {
            return Ok(def);
        }
        if name.contains('_')
            && let Some(def) = named(&name.replace('_', "-"))?
        {
            return Ok(def);
        }
        Err(self.no_flow(name))
    }

    fn no_flow(&self, name: &str) -> String {
        format!(
            "the component has no flow '{name}'; its flows are: {}",
            self.flow_names().join(", ")
        )
    }

    /// The flow a function defines.
    pub fn flow_by_function(&self, function: &str) -> Option<&Definition> {
        self.flows
            .iter()
            .find(|d| d.function.as_deref() == Some(function))
    }

    /// The flow a run executes: by its function when the run recorded one, else by name.
    pub fn run_flow(&self, function: Option<&str>, name: &str) -> Option<&Definition> {
        match function {
            Some(function) => self.flow_by_function(function),
            None => self.flow(name),
        }
    }

    /// What makes flows and tasks tell apart: flows sharing a name each have a function of
    /// their own, and task names are unique (a call names its task).
    pub fn check_identities(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut functions = std::collections::HashSet::new();
        let mut names: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for def in &self.flows {
            *names.entry(def.name.as_str()).or_default() += 1;
        }
        for def in &self.flows {
            if let Some(function) = &def.function
                && (function.is_empty() || function.len() > MAX_FUNCTION_LEN)
            {
                problems.push(format!(
                    "flow '{}' names a function of {} bytes; a function is 1 to \
                     {MAX_FUNCTION_LEN} bytes",
                    def.name,
                    function.len()
                ));
            } else if let Some(function) = &def.function
                && !functions.insert(function.as_str())
            {
                problems.push(format!("two flows have the function '{function}'"));
            }
            let twins = names[def.name.as_str()];
            if twins > 1 && def.function.is_none() {
                problems.push(format!(
                    "{twins} flows are named '{}' and not every one has a function to tell \
                     it apart",
                    def.name
                ));
            }
        }
        let mut tasks = std::collections::HashMap::new();
        for def in &self.tasks {
            if let Some(other) = tasks.insert(def.name.as_str(), def) {
                let functions: Vec<&str> = [other, def]
                    .iter()
                    .map(|d| d.function.as_deref().unwrap_or("?"))
                    .collect();
                problems.push(format!(
                    "two tasks are named '{}' (functions {}); a call names its task, so give \
                     one another name",
                    def.name,
                    functions.join(" and ")
                ));
            }
        }
        problems.sort();
        problems.dedup();
        problems
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
                function: None,
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

impl Definition {
    /// How the guest knows it: its function when it has one, else its name.
    pub fn key(&self) -> &str {
        self.function.as_deref().unwrap_or(&self.name)
    }
}

/// A flow or a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    /// The function that defines it, unique among the component's flows; flows sharing a
    /// name are told apart by it, and the guest runs a flow by it when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
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

/// The longest function a manifest may name (it is stored with every run of the flow).
pub const MAX_FUNCTION_LEN: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, function: Option<&str>) -> Definition {
        Definition {
            name: name.to_owned(),
            function: function.map(str::to_owned),
            description: None,
            version: None,
            parameters: serde_json::json!({"type": "object"}),
            options: Options::flow_defaults(),
        }
    }

    fn manifest(flows: Vec<Definition>, tasks: Vec<Definition>) -> Manifest {
        Manifest {
            sdk: "test".into(),
            flows,
            tasks,
            background: vec![],
        }
    }

    #[test]
    fn flows_sharing_a_name_are_found_by_function_only() {
        let m = manifest(
            vec![
                def("twin", Some("a")),
                def("twin", Some("jobs::b")),
                def("my-flow", Some("my_flow")),
                def("solo", None),
            ],
            vec![],
        );
        assert!(m.check_identities().is_empty());
        assert_eq!(m.find_flow("a").unwrap().key(), "a");
        assert_eq!(m.find_flow("jobs::b").unwrap().key(), "jobs::b");
        let shared = m.find_flow("twin").unwrap_err();
        assert!(shared.contains("2 flows named 'twin'"), "{shared}");
        assert!(shared.contains("a, jobs::b"), "{shared}");
        // A unique name, a function, or a name with underscores for dashes.
        assert_eq!(m.find_flow("my-flow").unwrap().name, "my-flow");
        assert_eq!(m.find_flow("my_flow").unwrap().name, "my-flow");
        assert_eq!(m.find_flow("solo").unwrap().key(), "solo");
        assert!(
            m.find_flow("none")
                .unwrap_err()
                .contains("has no flow 'none'")
        );
        // A run that recorded its function finds that flow; one without, by name.
        assert_eq!(
            m.run_flow(Some("jobs::b"), "twin").unwrap().key(),
            "jobs::b"
        );
        assert!(m.run_flow(None, "twin").is_none());
        assert_eq!(m.run_flow(None, "solo").unwrap().name, "solo");
    }

    #[test]
    fn flows_and_tasks_that_cannot_be_told_apart_are_refused() {
        let m = manifest(
            vec![
                def("twin", Some("a")),
                def("twin", None),
                def("x", Some("a")),
            ],
            vec![def("t", Some("one")), def("t", Some("two"))],
        );
        let problems = m.check_identities();
        assert!(
            problems.contains(&"two flows have the function 'a'".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("2 flows are named 'twin'")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("two tasks are named 't' (functions one and two)")),
            "{problems:?}"
        );
        let long = "f".repeat(MAX_FUNCTION_LEN + 1);
        let m = manifest(
            vec![def("twin", Some(&long)), def("twin", Some(""))],
            vec![],
        );
        let problems = m.check_identities();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.contains("a function is 1 to 1024 bytes"))
        );
    }
}
