//! `weir:flow/tasks`: orchestrated task runs started from a flow (or a task).
//!
//! A call that creates task runs first waits while the store's queue is at its bound
//! (the database is behind or away): the flow slows down instead of the queue growing
//! without limit (see [`super::Run`]).

use super::HostState;
use super::convert;
use super::weir::flow::tasks::{self, CallOptions, TaskOutcome};
use wasmtime::component::Resource;

/// The host side of a `task-future`: the task run it stands for.
pub struct TaskFutureHandle {
    task_run_id: String,
}

impl tasks::Host for HostState {
    async fn call(
        &mut self,
        task: String,
        arguments: String,
        opts: CallOptions,
    ) -> wasmtime::Result<TaskOutcome> {
        self.charge()?;
        let run = self.run("tasks.call")?.clone();
        let task = self.qualify(task);
        let options = convert::call_options_from_wit(opts);
        let nesting = self.nesting();
        // A task waiting for the task it called lends its slot meanwhile.
        let lent = self.slot.take().map(|s| s.lend());
        let outcome = run.call_task(task, arguments, options, nesting).await;
        if let Some(lent) = lent {
            self.slot = Some(lent.take_back().await);
        }
        Ok(convert::task_outcome_to_wit(&*outcome?))
    }

    async fn submit(
        &mut self,
        task: String,
        arguments: String,
        opts: CallOptions,
    ) -> wasmtime::Result<Resource<TaskFutureHandle>> {
        self.charge()?;
        let run = self.run("tasks.submit")?.clone();
        let task = self.qualify(task);
        let options = convert::call_options_from_wit(opts);
        let task_run_id = run
            .submit_task(task, arguments, options, self.nesting())
            .await?;
        Ok(self.futures.push(TaskFutureHandle { task_run_id })?)
    }

    async fn map(
        &mut self,
        task: String,
        arguments: Vec<String>,
        opts: CallOptions,
    ) -> wasmtime::Result<Vec<Resource<TaskFutureHandle>>> {
        self.charge()?;
        let run = self.run("tasks.map")?.clone();
        let task = self.qualify(task);
        let options = convert::call_options_from_wit(opts);
        let ids = run
            .map_task(task, arguments, options, self.nesting())
            .await?;
        let mut futures = Vec::with_capacity(ids.len());
        for task_run_id in ids {
            futures.push(self.futures.push(TaskFutureHandle { task_run_id })?);
        }
        Ok(futures)
    }

    async fn delay(
        &mut self,
        task: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.charge()?;
        let run = self.run("tasks.delay")?.clone();
        Ok(run.delay_task(task, arguments).await)
    }
}

impl tasks::HostTaskFuture for HostState {
    async fn task_run_id(&mut self, this: Resource<TaskFutureHandle>) -> wasmtime::Result<String> {
        Ok(self.futures.get(&this)?.task_run_id.clone())
    }

    async fn wait(&mut self, this: Resource<TaskFutureHandle>) -> wasmtime::Result<TaskOutcome> {
        self.charge()?;
        let run = self.run("task-future.wait")?.clone();
        let id = self.futures.get(&this)?.task_run_id.clone();
        let lent = self.slot.take().map(|s| s.lend());
        let outcome = run.wait_task(&id).await;
        if let Some(lent) = lent {
            self.slot = Some(lent.take_back().await);
        }
        Ok(convert::task_outcome_to_wit(&*outcome?))
    }

    async fn drop(&mut self, this: Resource<TaskFutureHandle>) -> wasmtime::Result<()> {
        self.futures.delete(this)?;
        Ok(())
    }
}
