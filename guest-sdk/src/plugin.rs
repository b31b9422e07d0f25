//! Tasks of plugins: components whose tasks any flow of the workspace calls by name,
//! without copying their code (Weir's built-in `http`, `notify`, `jq`, `template` and
//! `csv`, or a workspace's own, registered with `weir plugin add`).

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::input::Arguments;
use crate::state::TaskState;
use crate::task::{CallOptions, TaskFuture, call_task, map_task_json, submit_task};

/// A plugin's task, called from a flow (or a task) as `"<plugin>/<task>"` for the plugin's
/// latest version, or `"<plugin>@<version>/<task>"` for one version.
///
/// A call is an ordinary task run of the calling flow run, as a local task's: its states,
/// retries, timeout, cache, logs and artifacts, its place in the run's journal (a flow run
/// that runs again replays it). It runs in the plugin's own sandbox, reaching only the
/// hosts the calling deployment grants (`capabilities.allowed_hosts`) and reading only
/// the secrets the deployment lets plugins read (`capabilities.plugin_secrets`).
///
/// `A` is the task's arguments, serialized to a JSON object keyed by its parameters (a
/// struct, a map, or [`serde_json::json!`]); the host checks it against the task's
/// schema first, and fails the run naming the fields at fault. `R` is the task's value.
///
/// ```no_run
/// use serde_json::{Value, json};
/// use weir_sdk::{CallOptions, flow, plugin};
///
/// #[flow]
/// fn report() -> weir_sdk::Result<String> {
///     let response: Value = plugin("http/request")
///         .call(json!({"url": "https://api.example.com/orders"}))?;
///     let total: Value = plugin("jq/first")
///         .call(json!({"filter": "[.json[].amount] | add", "input": response}))?;
///     plugin("template/render")
///         .with_options(CallOptions::new().retries(2))
///         .call(json!({"template": "Total: {{ total }}", "context": {"total": total}}))
/// }
/// # fn main() {}
/// ```
pub struct Plugin<A, R> {
    task: String,
    options: CallOptions,
    marker: PhantomData<fn(A) -> R>,
}

/// A plugin's task by name: `"http/request"` (the latest version) or `"http@2/request"`.
pub fn plugin<A: Serialize, R: DeserializeOwned>(task: &str) -> Plugin<A, R> {
    Plugin {
        task: task.to_owned(),
        options: CallOptions::new(),
        marker: PhantomData,
    }
}

impl<A, R> Clone for Plugin<A, R> {
    fn clone(&self) -> Self {
        Plugin {
            task: self.task.clone(),
            options: self.options.clone(),
            marker: PhantomData,
        }
    }
}

impl<A, R> std::fmt::Debug for Plugin<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("task", &self.task).finish()
    }
}

impl<A: Serialize, R: DeserializeOwned> Plugin<A, R> {
    /// The call with these options replacing the task's own (retries, timeout, cache,
    /// tags, `wait_for`, ...), as a local task's `with_options`.
    #[must_use]
    pub fn with_options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs the task and waits for its value.
    pub fn call(&self, arguments: A) -> Result<R> {
        self.call_state(arguments).result()
    }

    /// Runs the task and waits for its final state.
    pub fn call_state(&self, arguments: A) -> TaskState<R> {
        match self.arguments(&arguments) {
            Ok(args) => call_task(&self.task, args, &self.options, None),
            Err(error) => TaskState::local_failure(error),
        }
    }

    /// Starts the task concurrently with the caller.
    pub fn submit(&self, arguments: A) -> TaskFuture<R> {
        match self.arguments(&arguments) {
            Ok(args) => submit_task(&self.task, args, &self.options, None),
            Err(error) => TaskFuture::local(error),
        }
    }

    /// Starts one task run per element, concurrently.
    pub fn map(&self, arguments: impl IntoIterator<Item = A>) -> Vec<TaskFuture<R>> {
        let texts: Vec<Result<String>> = arguments
            .into_iter()
            .map(|a| object(&self.task, &a).map(|map| Value::Object(map).to_string()))
            .collect();
        map_task_json(&self.task, texts, &self.options)
    }

    fn arguments(&self, arguments: &A) -> Result<Arguments<'static>> {
        let map = object(&self.task, arguments)?;
        Ok(map
            .into_iter()
            .fold(Arguments::new(), |args, (name, value)| {
                args.arg(&name, &value)
            }))
    }
}

/// The arguments as the JSON object the host takes.
fn object<A: Serialize>(task: &str, arguments: &A) -> Result<serde_json::Map<String, Value>> {
    match crate::json::to_value(arguments) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::msg(format!(
            "the arguments of plugin task '{task}' must be a JSON object keyed by its \
             parameters, not {}",
            kind(&other)
        ))
        .kind("invalid-parameters")),
        Err(e) => Err(Error::msg(format!(
            "the arguments of plugin task '{task}' cannot be serialized: {e}"
        ))
        .kind("invalid-parameters")),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_must_be_an_object() {
        let error = object("http/request", &json!([1, 2])).unwrap_err();
        assert!(error.message().contains("must be a JSON object"), "{error}");
        assert!(error.message().contains("not an array"), "{error}");
        #[derive(Serialize)]
        struct Request {
            url: String,
        }
        let map = object(
            "http/request",
            &Request {
                url: "https://example.com".into(),
            },
        )
        .unwrap();
        assert_eq!(map["url"], "https://example.com");
    }
}
