//! `weir:flow/tasks`: orchestrated task runs started from a flow (or a task).
//!
//! A call that creates task runs first waits while the store's queue is at its bound
//! (the database is behind or away): the flow slows down instead of the queue growing
//! without limit. The check is one atomic load when there is room.

use super::HostState;
use super::weir::flow::tasks::{self, CallOptions, TaskOutcome};
use crate::orchestrate::{self, Dependency};
use wasmtime::component::Resource;

/// The host side of a `task-future`: the task run it stands for.
pub struct TaskFutureHandle {
    task_run_id: String,
}

/// A replay mismatch stops the flow instance at once (the run fails with it).
fn mismatch(f: &orchestrate::Failure) -> wasmtime::Error {
    wasmtime::format_err!("{}", f.message)
}

fn options(o: CallOptions) -> orchestrate::CallOptions {
    orchestrate::CallOptions {
        wait_for: o
            .wait_for
            .into_iter()
            .map(|d| Dependency {
                task_run_id: d.task_run_id,
                allow_failure: d.allow_failure,
            })
            .collect(),
        cache_key: o.cache_key,
        tags: o.tags,
    }
}

impl tasks::Host for HostState {
    async fn call(
        &mut self,
        task: String,
        arguments: String,
        opts: CallOptions,
    ) -> wasmtime::Result<TaskOutcome> {
        self.charge()?;
        let scope = self.scope("tasks.call")?;
        scope.orch.store().room().await;
        let call = scope
            .register_call(task, arguments, options(opts), self.task.is_none())
            .map_err(|f| mismatch(&f))?;
        Ok(super::convert::task_outcome_to_wit(
            &*scope.run_task(call).await,
        ))
    }

    async fn submit(
        &mut self,
        task: String,
        arguments: String,
        opts: CallOptions,
    ) -> wasmtime::Result<Resource<TaskFutureHandle>> {
        self.charge()?;
        let scope = self.scope("tasks.submit")?;
        scope.orch.store().room().await;
        let call = scope
            .register_call(task, arguments, options(opts), self.task.is_none())
            .map_err(|f| mismatch(&f))?;
        let task_run_id = scope.spawn_task(call);
        Ok(self.table.push(TaskFutureHandle { task_run_id })?)
    }

    async fn map(
        &mut self,
        task: String,
        arguments: Vec<String>,
        opts: CallOptions,
    ) -> wasmtime::Result<Vec<Resource<TaskFutureHandle>>> {
        self.charge()?;
        let scope = self.scope("tasks.map")?;
        scope.orch.store().room().await;
        let opts = options(opts);
        let positioned = self.task.is_none();
        let mut futures = Vec::with_capacity(arguments.len());
        for args in arguments {
            let call = scope
                .register_call(task.clone(), args, opts.clone(), positioned)
                .map_err(|f| mismatch(&f))?;
            let task_run_id = scope.spawn_task(call);
            futures.push(self.table.push(TaskFutureHandle { task_run_id })?);
        }
        Ok(futures)
    }
}

impl tasks::HostTaskFuture for HostState {
    async fn task_run_id(&mut self, this: Resource<TaskFutureHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.task_run_id.clone())
    }

    async fn wait(&mut self, this: Resource<TaskFutureHandle>) -> wasmtime::Result<TaskOutcome> {
        self.charge()?;
        let scope = self.scope("task-future.wait")?;
        let id = self.table.get(&this)?.task_run_id.clone();
        let rx = scope.calls().outcomes.get(&id).cloned();
        let Some(mut rx) = rx else {
            return Err(wasmtime::format_err!("unknown task future {id}"));
        };
        let outcome = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| wasmtime::format_err!("task run {id} ended without an outcome"))?
            .clone()
            .expect("waited for Some");
        Ok(super::convert::task_outcome_to_wit(&outcome))
    }

    async fn drop(&mut self, this: Resource<TaskFutureHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
