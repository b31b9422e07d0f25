//! `weir:flow/deployments`: a flow starts a run of a deployment (Prefect's
//! `run_deployment`), in its own workspace only.

use super::HostState;
use super::weir::flow::deployments;

impl deployments::Host for HostState {
    async fn run(
        &mut self,
        deployment: String,
        parameters: String,
        scheduled_at: Option<String>,
    ) -> wasmtime::Result<Result<String, String>> {
        self.charge()?;
        Ok(HostState::run(self, "deployments.run")?
            .run_deployment(deployment, parameters, scheduled_at)
            .await)
    }
}
