//! Pausing and suspending a flow run until someone resumes it, optionally with typed
//! input (Prefect's `pause_flow_run`, `suspend_flow_run` and `wait_for_input`).
//!
//! ```no_run
//! use serde::Deserialize;
//! use weir_sdk::{flow, task};
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! struct Approval {
//!     approved: bool,
//!     note: Option<String>,
//! }
//!
//! #[task]
//! fn load(day: String) -> u64 {
//!     day.len() as u64
//! }
//!
//! #[flow]
//! fn nightly(day: String) -> weir_sdk::Result<String> {
//!     let rows = load(day)?;
//!     // Waits up to an hour for
//!     // `POST /api/flow-runs/{id}/resume {"input": {"approved": true}}`.
//!     let approval: Approval = weir_sdk::pause_flow_run_with_input(3600)?;
//!     if !approval.approved {
//!         weir_sdk::bail!("rejected: {}", approval.note.unwrap_or_default());
//!     }
//!     Ok(format!("published {rows} rows"))
//! }
//! # fn main() {}
//! ```

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::weir::flow::flows as host;
use crate::error::{Error, Result};

/// A pause of the calling flow run, with a key and a description: the builder behind
/// [`pause_flow_run`] and friends.
///
/// ```no_run
/// # fn f() -> weir_sdk::Result<()> {
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Go {
///     region: String,
/// }
/// let go: Go = weir_sdk::Pause::new(600)
///     .key("pick-region")
///     .description("Which region do we deploy to?")
///     .suspend_with_input()?;
/// # let _ = go.region;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Pause {
    timeout_seconds: f64,
    key: Option<String>,
    description: Option<String>,
}

impl Pause {
    /// A pause that waits at most `timeout_seconds` (a number: `600` or `0.5`); past it
    /// the flow run fails.
    pub fn new(timeout_seconds: impl Into<f64>) -> Self {
        Pause {
            timeout_seconds: timeout_seconds.into(),
            key: None,
            description: None,
        }
    }

    /// Names the pause (shown with the paused run).
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Says what the pause waits for (shown with the paused run).
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Pauses: the flow's instance stays alive, blocked here, until the run is resumed
    /// (without input) or the timeout passes. See [`pause_flow_run`].
    pub fn pause(self) -> Result<()> {
        self.call(None, false).map(drop)
    }

    /// Pauses until a resume brings input matching `T`'s JSON Schema, and returns it.
    /// See [`pause_flow_run_with_input`].
    pub fn pause_with_input<T: JsonSchema + DeserializeOwned>(self) -> Result<T> {
        decode_input(&self.call(Some(input_schema::<T>()), false)?)
    }

    /// Suspends: the run releases its instance and its slots; on resume it runs again
    /// from the start, replaying what it completed, and this call returns. See
    /// [`suspend_flow_run`].
    pub fn suspend(self) -> Result<()> {
        self.call(None, true).map(drop)
    }

    /// Suspends until a resume brings input matching `T`'s JSON Schema, and returns it.
    /// See [`suspend_flow_run_with_input`].
    pub fn suspend_with_input<T: JsonSchema + DeserializeOwned>(self) -> Result<T> {
        decode_input(&self.call(Some(input_schema::<T>()), true)?)
    }

    fn request(&self, input_schema: Option<Value>, suspend: bool) -> host::PauseRequest {
        host::PauseRequest {
            timeout_seconds: self.timeout_seconds,
            key: self.key.clone(),
            description: self.description.clone(),
            input_schema: input_schema.map(|s| s.to_string()),
            suspend,
        }
    }

    fn call(&self, input_schema: Option<Value>, suspend: bool) -> Result<String> {
        host::pause(&self.request(input_schema, suspend))
            .map_err(|message| Error::msg(message).kind("pause").retryable(false))
    }
}

/// Pauses the calling flow run until it is resumed (`POST /api/flow-runs/{id}/resume`,
/// or `weir runs resume <id>`), for at most `timeout_seconds`; past it the run fails
/// ("the flow run was paused for N s and not resumed"). The run shows as Paused; its
/// instance stays alive, blocked in this call, and keeps its slots.
///
/// Errors when the pause cannot be made (a timeout that is not a positive number of
/// seconds, a call from a task) or when it timed out. After a timeout the run fails
/// whatever the flow does with the error, so returning it with `?` is all there is to do.
///
/// ```no_run
/// # fn f() -> weir_sdk::Result<()> {
/// weir_sdk::info!("waiting for the operator");
/// weir_sdk::pause_flow_run(600)?;
/// # Ok(())
/// # }
/// ```
pub fn pause_flow_run(timeout_seconds: impl Into<f64>) -> Result<()> {
    Pause::new(timeout_seconds).pause()
}

/// Pauses the calling flow run until a resume brings input that matches `T`'s JSON
/// Schema (derived with `schemars`), and returns that input: Prefect's
/// `pause_flow_run(wait_for_input=T)`. The server refuses input that does not match
/// (422), and the run stays paused.
///
/// ```no_run
/// # fn f() -> weir_sdk::Result<()> {
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Approval {
///     approved: bool,
/// }
/// let approval: Approval = weir_sdk::pause_flow_run_with_input(3600)?;
/// # let _ = approval.approved;
/// # Ok(())
/// # }
/// ```
pub fn pause_flow_run_with_input<T: JsonSchema + DeserializeOwned>(
    timeout_seconds: impl Into<f64>,
) -> Result<T> {
    Pause::new(timeout_seconds).pause_with_input()
}

/// Suspends the calling flow run until it is resumed, for at most `timeout_seconds`:
/// unlike [`pause_flow_run`], the run releases its instance and its concurrency slots
/// (it shows as Paused, named "Suspended"). On resume it runs again from the start:
/// completed task and subflow calls replay their recorded results (they are not run
/// again), and this call returns. Keep the flow deterministic up to here, since a flow
/// that calls something else at a recorded position fails with a replay mismatch.
///
/// Only the top flow run of a deployment run can suspend; a subflow can pause.
///
/// ```no_run
/// # fn f() -> weir_sdk::Result<()> {
/// weir_sdk::suspend_flow_run(24 * 3600)?;
/// # Ok(())
/// # }
/// ```
pub fn suspend_flow_run(timeout_seconds: impl Into<f64>) -> Result<()> {
    Pause::new(timeout_seconds).suspend()
}

/// Suspends the calling flow run until a resume brings input that matches `T`'s JSON
/// Schema, and returns that input once the run executes again (see
/// [`suspend_flow_run`]).
///
/// ```no_run
/// # fn f() -> weir_sdk::Result<()> {
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Budget {
///     limit: u32,
/// }
/// let budget: Budget = weir_sdk::suspend_flow_run_with_input(86_400)?;
/// # let _ = budget.limit;
/// # Ok(())
/// # }
/// ```
pub fn suspend_flow_run_with_input<T: JsonSchema + DeserializeOwned>(
    timeout_seconds: impl Into<f64>,
) -> Result<T> {
    Pause::new(timeout_seconds).suspend_with_input()
}

/// The JSON Schema a resume's input must match (draft 2020-12, definitions inline).
fn input_schema<T: JsonSchema>() -> Value {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

fn decode_input<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::msg(format!(
            "the resume input does not fit the expected type: {e}"
        ))
        .kind("pause")
        .retryable(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct Approval {
        approved: bool,
        note: Option<String>,
        reviewer: Reviewer,
    }

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct Reviewer {
        name: String,
    }

    #[test]
    fn the_input_schema_comes_from_the_type() {
        let schema = input_schema::<Approval>();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["approved"]["type"], "boolean");
        let required = schema["required"].as_array().unwrap();
        assert!(required.contains(&json!("approved")), "{schema}");
        assert!(!required.contains(&json!("note")), "{schema}");
        // Nested types are definitions of the same document.
        assert_eq!(schema["properties"]["reviewer"]["$ref"], "#/$defs/Reviewer");
        assert_eq!(
            schema["$defs"]["Reviewer"]["properties"]["name"]["type"],
            "string"
        );
        assert!(schema["$schema"].as_str().unwrap().contains("2020-12"));
    }

    #[test]
    fn input_decodes_into_the_type() {
        let input = r#"{"approved": true, "note": null, "reviewer": {"name": "Ada"}}"#;
        assert_eq!(
            decode_input::<Approval>(input).unwrap(),
            Approval {
                approved: true,
                note: None,
                reviewer: Reviewer { name: "Ada".into() }
            }
        );
        let error = decode_input::<Approval>(r#"{"approved": 1}"#).unwrap_err();
        assert_eq!(error.get_kind(), "pause");
        assert_eq!(error.get_retryable(), Some(false));
        decode_input::<()>("null").unwrap();
    }

    #[test]
    fn requests_carry_the_options() {
        let pause = Pause::new(90)
            .key("approval")
            .description("Approve the load");
        let request = pause.request(Some(input_schema::<Reviewer>()), true);
        assert_eq!(request.timeout_seconds, 90.0);
        assert_eq!(request.key.as_deref(), Some("approval"));
        assert_eq!(request.description.as_deref(), Some("Approve the load"));
        assert!(request.suspend);
        let schema: Value = serde_json::from_str(&request.input_schema.unwrap()).unwrap();
        assert_eq!(schema["properties"]["name"]["type"], "string");
        let plain = Pause::new(0.5).request(None, false);
        assert_eq!(plain.timeout_seconds, 0.5);
        assert!(plain.input_schema.is_none() && !plain.suspend && plain.key.is_none());
    }
}
