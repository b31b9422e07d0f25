//! `weir:flow/flows`: subflow runs linked to the calling run, and pauses of the calling
//! run.

use super::HostState;
use super::convert;
use super::weir::flow::flows::{self, FlowOutcome, PauseRequest};

impl flows::Host for HostState {
    async fn call(&mut self, flow: String, parameters: String) -> wasmtime::Result<FlowOutcome> {
        self.charge()?;
        let run = self.run("flows.call")?.clone();
        let outcome = run.call_flow(flow, parameters, self.task.is_some()).await?;
        Ok(convert::flow_outcome_to_wit(&outcome))
    }

    async fn pause(&mut self, request: PauseRequest) -> wasmtime::Result<Result<String, String>> {
        self.charge()?;
        let run = self.run("flows.pause")?.clone();
        run.pause(
            convert::pause_request_from_wit(request),
            self.task.is_some(),
        )
        .await
    }
}
