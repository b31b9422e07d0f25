//! `weir:flow/flows`: subflow runs linked to the calling run.

use super::HostState;
use super::weir::flow::flows::{self, FlowOutcome};

impl flows::Host for HostState {
    async fn call(&mut self, flow: String, parameters: String) -> wasmtime::Result<FlowOutcome> {
        self.charge()?;
        let scope = self.scope("flows.call")?;
        if self.task.is_some() {
            return Err(wasmtime::format_err!(
                "a task cannot start a subflow; call the flow from the flow instead"
            ));
        }
        let orch = scope.orch.clone();
        Ok(orch.run_subflow(&scope, flow, &parameters).await.to_wit())
    }
}
