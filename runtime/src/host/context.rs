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
            self.task_run_name.as_deref(),
        ))
    }

    async fn set_run_name(&mut self, name: String) -> wasmtime::Result<Result<(), String>> {
        self.charge()?;
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Ok(Err("a run name must not be empty".into()));
        }
        if name.chars().count() > MAX_RUN_NAME_CHARS {
            return Ok(Err(format!(
                "a run name is at most {MAX_RUN_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Ok(Err("a run name must not hold control characters".into()));
        }
        let run = self.run("context.set-run-name")?.clone();
        let task = self.task.clone();
        let renamed = run.rename(task.as_deref(), name.clone()).await;
        if renamed.is_ok() && task.is_some() {
            self.task_run_name = Some(name);
        }
        Ok(renamed)
    }
}

/// The longest run name `set-run-name` takes.
const MAX_RUN_NAME_CHARS: usize = 200;

impl super::wit::Host for HostState {}
