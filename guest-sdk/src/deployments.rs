//! Runs of deployments started from a flow (Prefect's `run_deployment`).

use crate::bindings::weir::flow::deployments as host;
use crate::{Error, Result};

/// Starts a run of the deployment `name` (of the run's workspace) with `parameters`,
/// now or at `scheduled_at` (RFC 3339). Returns the new flow run's id; it does not wait
/// for the run.
pub fn run_deployment(
    name: &str,
    parameters: &impl serde::Serialize,
    scheduled_at: Option<&str>,
) -> Result<String> {
    let parameters = serde_json::to_string(parameters)
        .map_err(|e| Error::msg(format!("cannot encode the parameters: {e}")))?;
    host::run(name, &parameters, scheduled_at).map_err(|e| Error::msg(e).kind("deployment"))
}
