//! `weir:flow/context`: what a running flow or task knows about its run.

use super::HostState;
use super::weir::flow::context;
use super::wit::RunContext;
use std::sync::atomic::Ordering;

impl context::Host for HostState {
    async fn current(&mut self) -> wasmtime::Result<RunContext> {
        self.charge()?;
        let scope = self.scope("context.current")?;
        let task = self.task.as_deref();
        Ok(RunContext {
            flow_run_id: scope.id.clone(),
            flow_run_name: scope.name.clone(),
            flow_name: scope.flow_name.clone(),
            parameters: scope.parameters_json.clone(),
            task_run_id: task.map(|t| t.task_run_id.clone()),
            task_run_name: task.map(|t| t.task_run_name.clone()),
            task_name: task.map(|t| t.task_name.clone()),
            attempt: task.map_or_else(|| scope.attempt.load(Ordering::Relaxed), |t| t.attempt),
            tags: task.map_or_else(|| scope.tags.clone(), |t| t.tags.clone()),
            parent_flow_run_id: scope.parent_flow_run_id.clone(),
            scheduled_start: None,
        })
    }
}

impl super::wit::Host for HostState {}
