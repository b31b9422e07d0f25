//! `weir:flow/flows`: subflow runs linked to the calling run, and pauses of the calling
//! run.

use super::HostState;
use super::weir::flow::flows::{self, FlowOutcome, PauseRequest};
use crate::orchestrate;

impl flows::Host for HostState {
    async fn call(&mut self, flow: String, parameters: String) -> wasmtime::Result<FlowOutcome> {
        self.charge()?;
        let scope = self.scope("flows.call")?;
        // As for task runs: a subflow run waits for room in the store's queue.
        scope.orch.store().room().await;
        if self.task.is_some() {
            return Err(wasmtime::format_err!(
                "a task cannot start a subflow; call the flow from the flow instead"
            ));
        }
        let orch = scope.orch.clone();
        match orch.run_subflow(&scope, flow, &parameters).await {
            Ok(outcome) => Ok(super::convert::flow_outcome_to_wit(&outcome)),
            // A replay mismatch stops the flow instance at once (the run fails with it).
            Err(f) => Err(wasmtime::format_err!("{}", f.message)),
        }
    }

    async fn pause(&mut self, request: PauseRequest) -> wasmtime::Result<Result<String, String>> {
        self.charge()?;
        let scope = self.scope("flows.pause")?;
        if self.task.is_some() {
            return Ok(Err(
                "a task cannot pause; pause the flow run from the flow instead".to_owned(),
            ));
        }
        let orch = scope.orch.clone();
        let request = orchestrate::PauseRequest {
            timeout_seconds: request.timeout_seconds,
            key: request.key,
            description: request.description,
            input_schema: request.input_schema,
            suspend: request.suspend,
        };
        orch.pause(&scope, request).await
    }
}
