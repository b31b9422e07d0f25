//! Guest callbacks the host invokes: state hooks (`on_completion`, `on_failure`,
//! `on_cancellation`, `on_crashed`) and retry conditions. Each runs in a fresh instance,
//! so a trapped or timed-out attempt never has to be re-entered.

use super::LogLevel;
use super::scope::FlowScope;
use crate::host::{HostState, LoadedComponent, wit};
use crate::model::failure::Failure;
use crate::model::state::State;
use std::sync::Arc;
use std::time::Duration;

const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// The store data of a hook's instance: a plugin's hooks are a plugin's code (they
/// read only the secrets the deployment lets plugins read).
fn plugin_host(scope: &Arc<FlowScope>, component: &Arc<LoadedComponent>) -> HostState {
    let mut host = HostState::new(&scope.limits, Some(scope.clone()), None);
    if component.digest != scope.component.digest {
        host.plugin = Some(Arc::from(format!("sha256:{}", component.digest)));
    }
    host
}

/// Runs the named hooks for a state a flow or task run reached. A failing hook is
/// logged; it never changes the run's state (as in Prefect).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    scope: &Arc<FlowScope>,
    component: &Arc<LoadedComponent>,
    kind: wit::RunKind,
    name: &str,
    run_id: &str,
    run_name: &str,
    state: &State,
    hooks: &[String],
    parameters: &str,
) {
    let orch = &scope.orch;
    let _slot = orch.task_slots.acquire(&scope.holder()).await;
    let host = || plugin_host(scope, component);
    let event = wit::StateEvent {
        kind,
        name: name.to_owned(),
        run_id: run_id.to_owned(),
        run_name: run_name.to_owned(),
        state: crate::host::convert::state_to_wit(state),
        hooks: hooks.to_vec(),
        parameters: parameters.to_owned(),
    };
    let result = async {
        let (mut store, world) = orch
            .engine
            .instantiate_component(component, host)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start an instance: {e:#}"))?;
        let call = world.weir_flow_guest().call_on_state(&mut store, &event);
        match tokio::time::timeout(HOOK_TIMEOUT, call).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!(
                crate::engine::trap::explain(&e, &store).message
            )),
            Err(_) => Err(anyhow::anyhow!("did not finish within {HOOK_TIMEOUT:?}")),
        }
    }
    .await;
    if let Err(e) = result {
        scope.log(
            None,
            LogLevel::Error,
            format!("hook(s) {} of '{name}' failed: {e:#}", hooks.join(", ")),
        );
    }
}

/// Runs a task's transaction hooks (`on_commit` when `commit`, else `on_rollback`) in
/// the order given. `Err` says why one failed (the rest did not run).
pub(crate) async fn transaction(
    scope: &Arc<FlowScope>,
    staged: &super::transactions::Staged,
    commit: bool,
    hooks: &[String],
    values: &serde_json::Value,
) -> Result<(), String> {
    let orch = &scope.orch;
    let _slot = orch.task_slots.acquire(&scope.holder()).await;
    let component = staged.component.as_ref().unwrap_or(&scope.component);
    let host = || plugin_host(scope, component);
    let event = wit::TransactionEvent {
        commit,
        task: staged.task.clone(),
        task_run_id: staged.task_run_id.clone(),
        task_run_name: staged.run_name.clone(),
        parameters: staged.arguments.clone(),
        key: staged.key.clone(),
        values: values.to_string(),
        hooks: hooks.to_vec(),
    };
    let (mut store, world) = orch
        .engine
        .instantiate_component(component, host)
        .await
        .map_err(|e| format!("cannot start an instance: {e:#}"))?;
    let call = world
        .weir_flow_guest()
        .call_on_transaction(&mut store, &event);
    match tokio::time::timeout(HOOK_TIMEOUT, call).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(crate::engine::trap::explain(&e, &store).message),
        Err(_) => Err(format!("did not finish within {HOOK_TIMEOUT:?}")),
    }
}

/// Asks the task's retry condition whether a failed attempt should be retried. A
/// condition that fails itself means no retry.
pub(crate) async fn retry_condition(
    scope: &Arc<FlowScope>,
    component: &Arc<LoadedComponent>,
    task: &str,
    failure: &Failure,
    attempt: u32,
) -> bool {
    let orch = &scope.orch;
    let _slot = orch.task_slots.acquire(&scope.holder()).await;
    let host = || plugin_host(scope, component);
    let result = async {
        let (mut store, world) = orch
            .engine
            .instantiate_component(component, host)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start an instance: {e:#}"))?;
        let failure = crate::host::convert::failure_to_wit(failure);
        let call = world
            .weir_flow_guest()
            .call_retry_condition(&mut store, task, &failure, attempt);
        match tokio::time::timeout(HOOK_TIMEOUT, call).await {
            Ok(Ok(retry)) => Ok(retry),
            Ok(Err(e)) => Err(anyhow::anyhow!(
                crate::engine::trap::explain(&e, &store).message
            )),
            Err(_) => Err(anyhow::anyhow!("did not finish within {HOOK_TIMEOUT:?}")),
        }
    }
    .await;
    match result {
        Ok(retry) => retry,
        Err(e) => {
            scope.log(
                None,
                LogLevel::Error,
                format!("retry condition of task '{task}' failed, not retrying: {e:#}"),
            );
            false
        }
    }
}
