//! `weir:flow/context`: what a running flow or task knows about its run.

use super::HostState;
use super::weir::flow::context;
use super::wit::RunContext;

impl context::Host for HostState {
    async fn current(&mut self) -> wasmtime::Result<RunContext> {
        self.charge()?;
        let run = self.run("context.current")?;
        Ok(super::convert::run_context_to_wit(
            run.info(),
            self.task.as_deref(),
        ))
    }
}

impl super::wit::Host for HostState {}
