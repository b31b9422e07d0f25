//! Workspace variables (Prefect's `Variable.get`) and secrets (Prefect's `Secret.load`).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::weir::flow::variables as host;

/// The variable `name` decoded as `T`; `None` when it is missing or does not decode.
pub fn get<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(get_json(name)?).ok()
}

/// The variable `name` as JSON; `None` when it is missing.
pub fn get_json(name: &str) -> Option<Value> {
    host::get(name).and_then(|text| serde_json::from_str(&text).ok())
}

/// The secret `name` of the run's workspace; `None` when it is missing (or the run has
/// no workspace, as with `weir run`). Keep it out of logs and results.
pub fn secret(name: &str) -> Option<String> {
    host::secret(name)
}
