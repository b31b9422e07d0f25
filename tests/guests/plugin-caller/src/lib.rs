//! Flows that call plugins' tasks by name, for the plugin tests.

use serde_json::Value;
use weir_sdk::{CallOptions, Error, Result, TaskFuture, flow, plugin};

weir_sdk::export!();

/// Calls one plugin task and returns its value.
#[flow]
fn call_plugin(task: String, arguments: Value) -> Result<Value> {
    plugin::<Value, Value>(&task).call(arguments)
}

/// Calls one plugin task with retries of its own (`with_options`).
#[flow]
fn call_with_retries(task: String, arguments: Value, retries: u32) -> Result<Value> {
    plugin::<Value, Value>(&task)
        .with_options(
            CallOptions::new()
                .retries(retries)
                .retry_delay_seconds([0.05]),
        )
        .call(arguments)
}

/// Maps a plugin task over a list of arguments; each run's value, in order.
#[flow]
fn map_plugin(task: String, arguments: Vec<Value>) -> Result<Vec<Value>> {
    let futures: Vec<TaskFuture<Value>> = plugin::<Value, Value>(&task).map(arguments);
    futures.iter().map(TaskFuture::result).collect()
}

/// Calls a plugin task, then fails on its first attempt: the retry replays the call.
#[flow(retries = 1)]
fn call_then_fail_once(task: String, arguments: Value) -> Result<Value> {
    let value = plugin::<Value, Value>(&task).call(arguments)?;
    if weir_sdk::context().attempt == 1 {
        return Err(Error::msg("the flow fails once after the plugin call"));
    }
    Ok(value)
}

/// Submits a plugin task and reads the secret itself too: what the flow's own code
/// reads against what the plugin may.
#[flow]
fn secrets(name: String) -> Result<Value> {
    let own = weir_sdk::variables::secret(&name);
    let plugin_sees: Value = plugin::<Value, Value>("toolkit/read_secret")
        .submit(serde_json::json!({ "name": name }))
        .result()?;
    Ok(serde_json::json!({"flow": own, "plugin": plugin_sees}))
}
