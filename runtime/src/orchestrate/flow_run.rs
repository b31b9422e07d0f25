//! Flow runs: parameters validated before the run starts, one instance per execution,
//! Prefect's final-state rules, flow retries that replay completed calls, subflows.

use super::scope::{Call, FlowScope, Interrupt, Recorded};
use super::scope::{RunSettings, Stop};
use super::{Event, FlowOutcome, LogLevel, Orchestrator, TaskOutcome, hooks, names, params};
use crate::host::{HostState, LoadedComponent, wit};
use crate::model::failure::{Failure, FailureKind};
use crate::model::manifest::Definition;
use crate::model::state::{State, StateType};
use crate::store::{FlowRunRecord, RunKind, StateChange, StoreError, Write};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A flow to run.
pub struct FlowRequest {
    pub component: Arc<LoadedComponent>,
    pub flow: String,
    pub parameters: Value,
    pub tags: Vec<String>,
    pub workspace_id: Option<String>,
    pub deployment_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// When the run is due; `None` runs it now.
    pub expected_start: Option<DateTime<Utc>>,
    /// The schedule creating the run.
    pub schedule_id: Option<String>,
    /// Hosts a run executed here at once (`weir run`) may reach; a server's runs take
    /// their deployment's grant instead.
    pub allowed_hosts: Vec<String>,
}

impl FlowRequest {
    pub fn new(component: Arc<LoadedComponent>, flow: &str, parameters: Value) -> Self {
        Self {
            component,
            flow: flow.to_owned(),
            parameters,
            tags: Vec::new(),
            workspace_id: None,
            deployment_id: None,
            idempotency_key: None,
            expected_start: None,
            schedule_id: None,
            allowed_hosts: Vec::new(),
        }
    }
}

/// The outcome of a run that failed before it ran.
/// The largest parameters a flow run takes, as JSON text (Prefect's 512 KB).
pub const MAX_PARAMETERS_BYTES: usize = 512 * 1024;

fn failed_outcome(record: &FlowRunRecord, failure: Failure) -> FlowOutcome {
    FlowOutcome {
        flow_run_id: record.id.clone(),
        flow_run_name: record.name.clone(),
        state: State::failed(failure.message.clone()),
        value: None,
        failure: Some(failure),
    }
}

/// Why a flow run could not be created at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No flow by that name or function, or a name two flows share.
    #[error("{message}")]
    UnknownFlow { flow: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a flow run was not prepared.
#[derive(Debug)]
pub enum PrepareError {
    /// No flow by that name or function, or a name two flows share.
    UnknownFlow { flow: String, message: String },
    /// One message per offending field, and the run as it would have been.
    InvalidParameters {
        errors: Vec<String>,
        record: Box<FlowRunRecord>,
    },
}

/// The run and call position a subflow belongs to.
pub(crate) struct Parent {
    pub scope: Arc<FlowScope>,
    pub position: i64,
}

/// The name of the Scheduled state of a suspended run that was resumed: its next
/// execution enters Running (not Retrying), replaying what it completed.
pub const RESUMING: &str = "Resuming";

type BoxedRun<'a> = Pin<Box<dyn Future<Output = Result<FlowOutcome, RunError>> + Send + 'a>>;

impl Orchestrator {
    /// Runs a flow to its final state. Invalid parameters give a failed run that never
    /// entered Running.
    pub async fn run_flow(self: &Arc<Self>, request: FlowRequest) -> Result<FlowOutcome, RunError> {
        self.start_flow(request, None).await
    }

    /// Validates a flow's parameters (defaults filled, values coerced) and builds the
    /// record of a new run in state `initial`. Nothing is stored.
    pub fn prepare_flow_run(
        &self,
        request: &FlowRequest,
        initial: State,
    ) -> Result<FlowRunRecord, PrepareError> {
        let component = &request.component;
        let def = match component.manifest.find_flow(&request.flow) {
            Ok(def) => def,
            Err(message) => {
                return Err(PrepareError::UnknownFlow {
                    flow: request.flow.clone(),
                    message,
                });
            }
        };
        let size = request.parameters.to_string().len();
        let prepared = if size > MAX_PARAMETERS_BYTES {
            Err(vec![format!(
                "flow run parameters cannot exceed 512kb in size (these are {} kb)",
                size.div_ceil(1024)
            )])
        } else if !def.options.validate_parameters {
            params::pass_through(&def.parameters, request.parameters.clone())
        } else {
            match component.validator(def.key()) {
                Some(v) => params::prepare(&def.parameters, v, request.parameters.clone()),
                None => Ok(request.parameters.clone()),
            }
        };
        let parameters = prepared
            .as_ref()
            .cloned()
            .unwrap_or_else(|_| request.parameters.clone());
        let name = match &def.options.run_name_template {
            Some(t) => names::render(t, &parameters),
            None => names::generate(),
        };
        let mut tags = def.options.tags.clone();
        tags.extend(request.tags.iter().cloned());
        tags.sort();
        tags.dedup();
        let record = FlowRunRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name,
            flow_name: def.name.clone(),
            flow_function: def.function.clone(),
            component_digest: component.digest.clone(),
            parameters,
            tags,
            parent_flow_run_id: None,
            parent_position: None,
            state: initial,
            run_count: 0,
            result: None,
            created: Utc::now(),
            start_time: None,
            end_time: None,
            workspace_id: request.workspace_id.clone(),
            deployment_id: request.deployment_id.clone(),
            idempotency_key: request.idempotency_key.clone(),
            expected_start: request.expected_start,
            schedule_id: request.schedule_id.clone(),
            node_id: None,
            fence: 0,
            crash_count: 0,
        };
        match prepared {
            Ok(_) => Ok(record),
            Err(errors) => Err(PrepareError::InvalidParameters {
                errors,
                record: Box::new(record),
            }),
        }
    }

    pub(crate) fn start_flow(
        self: &Arc<Self>,
        request: FlowRequest,
        parent: Option<Parent>,
    ) -> BoxedRun<'_> {
        Box::pin(async move {
            let component = request.component.clone();
            let top_settings = RunSettings {
                allowed_hosts: request.allowed_hosts.clone(),
                ..RunSettings::default()
            };
            let (mut record, invalid) = match self.prepare_flow_run(&request, State::pending()) {
                Ok(r) => (r, None),
                Err(PrepareError::UnknownFlow { flow, message }) => {
                    return Err(RunError::UnknownFlow { flow, message });
                }
                Err(PrepareError::InvalidParameters { errors, record }) => (*record, Some(errors)),
            };
            if let Some(p) = &parent {
                record.parent_flow_run_id = Some(p.scope.id.clone());
                record.parent_position = Some(p.position);
                record
                    .workspace_id
                    .clone_from(&p.scope.settings.workspace_id);
            }
            self.record_created(&record);

            let depth = parent.as_ref().map_or(0, |p| p.scope.depth + 1);
            let max_depth = self.engine.limits().max_subflow_depth;
            let early_failure = match invalid {
                Some(errors) => Some(Failure::permanent(
                    FailureKind::InvalidParameters,
                    format!(
                        "Validation of flow parameters failed: {}",
                        errors.join("; ")
                    ),
                )),
                None if depth > max_depth => Some(Failure::permanent(
                    FailureKind::Limit,
                    format!("subflows nest deeper than {max_depth} levels"),
                )),
                None => None,
            };
            if let Some(failure) = early_failure {
                let outcome = failed_outcome(&record, failure);
                let mut change = StateChange::new(RunKind::Flow, &record.id, outcome.state.clone());
                change.end_time = Some(Utc::now());
                self.set_flow_state(&record.name, change);
                self.store.flush().await?;
                return Ok(outcome);
            }
            let outcome = match parent {
                Some(p) => {
                    let settings = RunSettings {
                        timeout_seconds: None,
                        ..p.scope.settings.clone()
                    };
                    let outcome = self
                        .execute_at_depth(&record, component, settings, depth, Some(&p.scope))
                        .await;
                    p.scope.calls().children.retain(|c| c.id != record.id);
                    outcome
                }
                None => {
                    self.execute_at_depth(&record, component, top_settings, 0, None)
                        .await
                }
            };
            self.store.flush().await?;
            Ok(outcome)
        })
    }

    /// Writes a new run (through the batched writer) and reports it.
    pub fn record_created(&self, record: &FlowRunRecord) {
        self.store.write(Write::FlowRunCreated(record.clone()));
        self.emit(|| Event::FlowRunCreated {
            id: record.id.clone(),
            name: record.name.clone(),
            flow: record.flow_name.clone(),
        });
    }

    /// Executes a stored flow run to a final state: a new run, or one that ran before
    /// (a retry, a run resumed after a restart), whose completed calls are replayed.
    pub async fn execute_flow_run(
        self: &Arc<Self>,
        record: &FlowRunRecord,
        component: Arc<LoadedComponent>,
        settings: RunSettings,
    ) -> Result<FlowOutcome, StoreError> {
        let outcome = self
            .execute_at_depth(record, component, settings, 0, None)
            .await;
        self.store.flush().await?;
        Ok(outcome)
    }

    async fn execute_at_depth(
        self: &Arc<Self>,
        record: &FlowRunRecord,
        component: Arc<LoadedComponent>,
        settings: RunSettings,
        depth: u32,
        parent: Option<&Arc<FlowScope>>,
    ) -> FlowOutcome {
        let def = component
            .manifest
            .run_flow(record.flow_function.as_deref(), &record.flow_name)
            .cloned();
        let Some(def) = def else {
            let f = Failure::permanent(
                FailureKind::Unknown,
                format!("the component has no flow '{}'", record.flow_name),
            );
            let outcome = failed_outcome(record, f);
            let mut change = StateChange::new(RunKind::Flow, &record.id, outcome.state.clone());
            change.end_time = Some(Utc::now());
            self.set_flow_state(&record.name, change);
            return outcome;
        };
        let scope = Arc::new(FlowScope::new(
            self.clone(),
            component,
            settings,
            record,
            &def,
            depth,
            parent.is_some_and(|p| p.log_prints),
        ));
        if let Some(parent) = parent {
            parent.calls().children.push(scope.clone());
        }
        let first_attempt = record.run_count.max(0) as u32 + 1;
        let resumed = record.state.kind == StateType::Scheduled && record.state.name == RESUMING;
        self.execute_flow(&scope, &def, first_attempt, resumed)
            .await
    }

    /// Runs the hooks a flow defines for the final state its run reached
    /// (`on_completion`, `on_failure`, `on_cancellation`, `on_crashed`) in a fresh
    /// instance, for a run that ended without an instance of its own: ended through the
    /// API, by a sweep, or by crash recovery. A failing hook is logged on the run.
    pub async fn run_final_hooks(
        self: &Arc<Self>,
        record: &FlowRunRecord,
        component: Arc<LoadedComponent>,
        state: &State,
    ) {
        let def = component
            .manifest
            .run_flow(record.flow_function.as_deref(), &record.flow_name)
            .cloned();
        let Some(def) = def else {
            return;
        };
        let hooks = def.options.hooks_for(state.kind);
        if hooks.is_empty() {
            return;
        }
        let scope = Arc::new(FlowScope::new(
            self.clone(),
            component,
            RunSettings {
                workspace_id: record.workspace_id.clone(),
                ..RunSettings::default()
            },
            record,
            &def,
            0,
            false,
        ));
        hooks::run(
            &scope,
            &scope.component,
            wit::RunKind::Flow,
            def.key(),
            &scope.id,
            &scope.name,
            state,
            hooks,
            &scope.parameters_json,
        )
        .await;
    }

    async fn execute_flow(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        def: &Definition,
        first_attempt: u32,
        resumed: bool,
    ) -> FlowOutcome {
        let options = &def.options;
        let mut attempt = first_attempt;
        // Retries granted by the flow's options count from this execution on.
        let last_retry = first_attempt - 1 + options.retries;
        loop {
            let mut running = StateChange::new(
                RunKind::Flow,
                &scope.id,
                if attempt == 1 || (resumed && attempt == first_attempt) {
                    State::running()
                } else {
                    State::retrying()
                },
            );
            running.run_count = Some(attempt as i64);
            if attempt == 1 {
                running.start_time = Some(Utc::now());
            }
            let entered = running.state.clone();
            self.set_flow_state(&scope.name, running);
            if !options.on_running.is_empty() {
                hooks::run(
                    scope,
                    &scope.component,
                    wit::RunKind::Flow,
                    def.key(),
                    &scope.id,
                    &scope.name,
                    &entered,
                    &options.on_running,
                    &scope.parameters_json,
                )
                .await;
            }

            let replay = if attempt == 1 {
                HashMap::new()
            } else {
                match self.recorded_calls(&scope.id).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("cannot load recorded calls of flow run {}: {e}", scope.id);
                        HashMap::new()
                    }
                }
            };
            scope.begin_execution(attempt, replay);

            let (state, value, failure) = self.execute_once(scope, def).await;
            if state.kind == StateType::Failed
                && attempt <= last_retry
                && failure.as_ref().is_none_or(|f| f.retryable != Some(false))
            {
                let delay = super::task_run::retry_delay(
                    &options.retry_delay_seconds,
                    options.retry_jitter_factor,
                    attempt - first_attempt + 1,
                );
                self.set_flow_state(
                    &scope.name,
                    StateChange::new(
                        RunKind::Flow,
                        &scope.id,
                        State::awaiting_retry(state.message.clone().unwrap_or_default()),
                    ),
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }

            let mut change = StateChange::new(RunKind::Flow, &scope.id, state.clone());
            if !state.is_final() {
                // Put back to run again (a shutdown) or suspended: no end, no hooks;
                // any node may claim it.
                change.release = true;
                self.set_flow_state(&scope.name, change);
                return FlowOutcome {
                    flow_run_id: scope.id.clone(),
                    flow_run_name: scope.name.clone(),
                    state,
                    value,
                    failure,
                };
            }
            if !scope.claim_end() {
                // Its parent ended it already (the parent stopped abruptly).
                return FlowOutcome {
                    flow_run_id: scope.id.clone(),
                    flow_run_name: scope.name.clone(),
                    state,
                    value,
                    failure,
                };
            }
            change.end_time = Some(Utc::now());
            // A failed run keeps what it returned too (the states that failed it).
            if value.is_some() && options.persists_result() {
                change.result = value.clone();
                scope.note_stored(value.as_ref().map_or(0, |v| v.len()));
            }
            self.set_flow_state(&scope.name, change);
            let hooks = options.hooks_for(state.kind);
            if !hooks.is_empty() {
                hooks::run(
                    scope,
                    &scope.component,
                    wit::RunKind::Flow,
                    def.key(),
                    &scope.id,
                    &scope.display_name(),
                    &state,
                    hooks,
                    &scope.parameters_json,
                )
                .await;
            }
            return FlowOutcome {
                flow_run_id: scope.id.clone(),
                flow_run_name: scope.name.clone(),
                state,
                value,
                failure,
            };
        }
    }

    /// One execution of the flow function in a fresh instance, to a final state.
    /// How an execution stopped from outside (a cancel, a shutdown) ends: its task runs
    /// and subflows are stopped with it.
    async fn stopped_by(
        &self,
        scope: &Arc<FlowScope>,
        why: Stop,
    ) -> (State, Option<String>, Option<Failure>) {
        scope.take_interrupt();
        match why {
            Stop::Shutdown | Stop::Lost => {
                self.stop_tree(scope, Abort::Shutdown).await;
                let f = Failure::permanent(
                    FailureKind::Interrupted,
                    "the server shut down; the run resumes when it starts again",
                );
                (
                    State::named(StateType::Scheduled, "Rescheduled")
                        .with_message(f.message.clone()),
                    None,
                    Some(f),
                )
            }
            _ => {
                self.stop_tree(scope, Abort::Cancel).await;
                let f = Failure::permanent(FailureKind::Cancelled, "the flow run was cancelled");
                (State::cancelled(f.message.clone()), None, Some(f))
            }
        }
    }

    /// A background task run (Prefect's `task.delay()`): the run executes one task, with
    /// the task's own options, as its only call; it ends in the task's state.
    async fn execute_background(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        task: &str,
    ) -> (State, Option<String>, Option<Failure>) {
        let call = match scope.register_call(
            task.to_owned(),
            scope.parameters_json.clone(),
            Arc::default(),
            0,
        ) {
            Ok(call) => call,
            Err(f) => return (State::failed(f.message.clone()), None, Some(*f)),
        };
        let mut stop = scope.settings.stop.clone();
        let outcome = tokio::select! {
            outcome = scope.run_task(call) => outcome,
            why = stopped(&mut stop) => return self.stopped_by(scope, why).await,
        };
        let mut state = outcome.state.clone();
        state.timestamp = Utc::now();
        (state, outcome.value.clone(), outcome.failure.clone())
    }

    async fn execute_once(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        def: &Definition,
    ) -> (State, Option<String>, Option<Failure>) {
        if let Some(task) = def
            .name
            .strip_prefix(crate::model::manifest::BACKGROUND_PREFIX)
        {
            return self.execute_background(scope, task).await;
        }
        let host = || HostState::new(&scope.limits, Some(scope.clone()), None);
        let (mut store, world) = match self
            .engine
            .instantiate_component(&scope.component, host)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let f = Failure::new(
                    FailureKind::Instantiate,
                    format!("cannot start an instance: {e:#}"),
                );
                return (
                    State::new(StateType::Crashed).with_message(f.message.clone()),
                    None,
                    Some(f),
                );
            }
        };
        let call =
            world
                .weir_flow_guest()
                .call_run_flow(&mut store, def.key(), &scope.parameters_json);
        // A timeout of 0 is none (Prefect's `None`).
        let timeout = scope
            .settings
            .timeout_seconds
            .or(def.options.timeout_seconds)
            .filter(|s| *s > 0.0);
        // Only the top of a run tree watches the stop signal: it ends its subflows in
        // progress itself, so none is left half-stopped.
        let mut stop = if scope.depth == 0 {
            scope.settings.stop.clone()
        } else {
            None
        };
        let limited = async {
            match timeout {
                Some(secs) => tokio::time::timeout(crate::model::duration::to_std(secs), call)
                    .await
                    .ok(),
                None => Some(call.await),
            }
        };
        let result = tokio::select! {
            r = limited => r,
            why = stopped(&mut stop) => {
                drop(store);
                return self.stopped_by(scope, why).await;
            }
        };
        let max = self.engine.limits().max_result_bytes;
        let (state, value, failure) = match result {
            None => {
                let secs = timeout.unwrap_or_default();
                let f = Failure::new(
                    FailureKind::Timeout,
                    format!("Flow run exceeded timeout of {secs} second(s)"),
                );
                (State::timed_out(f.message.clone()), None, Some(f))
            }
            Some(Ok(Ok(output))) if output.value.len() > max => {
                let f = Failure::permanent(
                    FailureKind::Limit,
                    format!(
                        "the result is {} bytes, over the limit of {max} bytes",
                        output.value.len()
                    ),
                );
                (State::failed(f.message.clone()), None, Some(f))
            }
            Some(Ok(Ok(output))) => match output.state {
                Some(s) if !crate::host::convert::state_type_from_wit(s.type_).is_final() => {
                    let f = Failure::permanent(
                        FailureKind::State,
                        format!(
                            "the flow returned a {} state; a flow must end in a final state",
                            crate::host::convert::state_type_from_wit(s.type_)
                        ),
                    );
                    (State::failed(f.message.clone()), None, Some(f))
                }
                Some(s) => {
                    let kind = crate::host::convert::state_type_from_wit(s.type_);
                    let mut state = State::new(kind);
                    if !s.name.is_empty() {
                        state.name = s.name;
                    }
                    state.message = s.message;
                    let failure = (kind != StateType::Completed).then(|| {
                        Failure::new(
                            FailureKind::State,
                            state.message.clone().unwrap_or_else(|| state.name.clone()),
                        )
                    });
                    (state, Some(output.value), failure)
                }
                None => (State::completed(), Some(output.value), None),
            },
            Some(Ok(Err(f))) => {
                let f = crate::host::convert::failure_from_wit(f);
                (State::failed(f.message.clone()), None, Some(f))
            }
            Some(Err(e)) => {
                let f = crate::engine::trap::explain(&e, &store);
                (State::failed(f.message.clone()), None, Some(f))
            }
        };
        // What the host decided overrides what the guest did.
        let (state, value, failure) = match scope.take_interrupt() {
            Some(Interrupt::Suspend(state)) => (state, None, None),
            Some(Interrupt::Fail(f)) => (State::failed(f.message.clone()), None, Some(f)),
            None => (state, value, failure),
        };
        drop(store);
        // A flow that returned waits for the task runs it started; one that was stopped
        // (timeout, trap) takes them down with it.
        let returned = failure.as_ref().is_none_or(|f| !f.kind.stopped_by_host());
        if returned {
            self.join_running(scope).await;
        } else {
            self.stop_tree(scope, Abort::Stopped).await;
        }
        // Transactions the flow left open: an error left them (they roll back) or the
        // flow returned from inside one (it commits). A suspended or interrupted run
        // leaves them to its next execution.
        if state.is_final() && !matches!(state.kind, StateType::Cancelled | StateType::Crashed) {
            scope.close_transactions(state.is_completed()).await;
        }
        (state, value, failure)
    }

    /// Waits for the task runs the flow submitted and did not wait for.
    async fn join_running(&self, scope: &Arc<FlowScope>) {
        loop {
            let running = std::mem::take(&mut scope.calls().running);
            if running.is_empty() {
                return;
            }
            for (_, handle) in running {
                let _ = handle.await;
            }
        }
    }

    /// Ends what a flow run that stopped abruptly (cancelled, shut down, timed out,
    /// trapped) leaves in progress: its task runs (submitted, called, or called from
    /// tasks) and its subflow runs, all the way down, end Cancelled. The instances
    /// running them are gone already or aborted here.
    fn stop_tree<'a>(
        &'a self,
        scope: &'a Arc<FlowScope>,
        why: Abort,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            loop {
                // Calls still queued never start: dropped, their futures end without an
                // outcome.
                let (running, queued) = {
                    let mut calls = scope.calls();
                    (
                        std::mem::take(&mut calls.running),
                        std::mem::take(&mut calls.queued),
                    )
                };
                drop(queued);
                if running.is_empty() {
                    break;
                }
                // Abort all first: an await cut short must not leave one running.
                for (_, handle) in &running {
                    handle.abort();
                }
                for (_, handle) in running {
                    let _ = handle.await;
                }
            }
            let (live, children) = {
                let mut calls = scope.calls();
                (
                    std::mem::take(&mut calls.live_tasks),
                    std::mem::take(&mut calls.children),
                )
            };
            let now = Utc::now();
            for (id, name) in live {
                let mut change =
                    StateChange::new(RunKind::Task, &id, State::cancelled(why.task_message()));
                change.end_time = Some(now);
                self.set_task_state(&scope.name, &name, change);
            }
            for child in children {
                self.stop_tree(&child, why).await;
                if !child.claim_end() {
                    continue;
                }
                let state = State::cancelled(why.subflow_message());
                let mut change = StateChange::new(RunKind::Flow, &child.id, state.clone());
                change.end_time = Some(Utc::now());
                self.set_flow_state(&child.name, change);
                if why != Abort::Cancel {
                    continue;
                }
                let Some(def) = child.component.flow_by_key(&child.flow_key) else {
                    continue;
                };
                let hooks = def.options.on_cancellation.clone();
                if !hooks.is_empty() {
                    // In the background: the parent's own cancellation is not held up.
                    tokio::spawn(async move {
                        hooks::run(
                            &child,
                            &child.component,
                            wit::RunKind::Flow,
                            &child.flow_key,
                            &child.id,
                            &child.name,
                            &state,
                            &hooks,
                            &child.parameters_json,
                        )
                        .await;
                    });
                }
            }
        })
    }

    /// Completed calls of earlier executions of a flow run, by position.
    async fn recorded_calls(
        &self,
        flow_run_id: &str,
    ) -> Result<HashMap<i64, Recorded>, StoreError> {
        // The records of the execution that just ended may still be in the writer's
        // queue (a retry without delay starts at once): replay must see them all.
        self.store.flush().await?;
        let mut out = HashMap::new();
        for t in self.store.task_runs(flow_run_id).await? {
            let (Some(position), true) = (t.position, t.state.is_completed()) else {
                continue;
            };
            out.insert(
                position,
                Recorded::Task {
                    name: t.task_name.clone(),
                    input_hash: t.input_hash.clone(),
                    run_name: t.name.clone(),
                    cache_key: t.cache_key.clone(),
                    outcome: Arc::new(TaskOutcome {
                        task_run_id: t.id.clone(),
                        state: t.state.clone(),
                        value: t.result.as_ref().map(Value::to_string),
                        failure: None,
                    }),
                },
            );
        }
        for (position, input) in self.store.resumed_pauses(flow_run_id).await? {
            out.insert(position, Recorded::Pause { input });
        }
        // The latest transaction begun at each position (they come in that order).
        for t in self.store.transactions(flow_run_id).await? {
            out.insert(
                t.position,
                Recorded::Transaction {
                    id: t.id,
                    state: t.state,
                },
            );
        }
        for f in self.store.subflow_runs(flow_run_id).await? {
            let (Some(position), true) = (f.parent_position, f.state.is_completed()) else {
                continue;
            };
            out.insert(
                position,
                Recorded::Flow {
                    name: f.flow_name.clone(),
                    function: f.flow_function.clone(),
                    outcome: Box::new(FlowOutcome {
                        flow_run_id: f.id.clone(),
                        flow_run_name: f.name.clone(),
                        state: f.state.clone(),
                        value: f.result.as_ref().map(Value::to_string),
                        failure: None,
                    }),
                },
            );
        }
        Ok(out)
    }

    /// Runs a subflow of `scope`'s flow run at the next call position, replaying it
    /// when an earlier execution completed it; a replay mismatch is an error.
    pub(crate) async fn run_subflow(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        flow: String,
        parameters: &str,
    ) -> Result<FlowOutcome, Box<Failure>> {
        let (position, _) = scope.next_call(&flow);
        if let Some(Recorded::Flow { outcome, .. }) =
            scope.replay_at(position, Call::Flow { name: &flow })?
        {
            return Ok(*outcome);
        }
        let parameters = match serde_json::from_str::<Value>(parameters) {
            Ok(v) => v,
            Err(e) => Value::String(format!("<not JSON: {e}>")),
        };
        let request = FlowRequest::new(scope.component.clone(), &flow, parameters);
        let parent = Parent {
            scope: scope.clone(),
            position,
        };
        Ok(match self.start_flow(request, Some(parent)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                scope.log(
                    None,
                    LogLevel::Error,
                    format!("subflow '{flow}' could not start: {e}"),
                );
                let f = Failure::permanent(FailureKind::Unknown, e.to_string());
                FlowOutcome {
                    flow_run_id: String::new(),
                    flow_run_name: String::new(),
                    state: State::failed(f.message.clone()),
                    value: None,
                    failure: Some(f),
                }
            }
        })
    }
}

/// Why a flow run's unfinished work is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    Cancel,
    Shutdown,
    /// The flow itself stopped: it timed out, trapped or hit a limit.
    Stopped,
}

impl Abort {
    fn task_message(self) -> &'static str {
        match self {
            Abort::Cancel => "the flow run was cancelled",
            Abort::Shutdown => "the server shut down before this task run finished",
            Abort::Stopped => "the flow run stopped before this task run finished",
        }
    }

    fn subflow_message(self) -> &'static str {
        match self {
            Abort::Cancel => "the parent flow run was cancelled",
            Abort::Shutdown => {
                "the server shut down; the parent flow run resumes at the next start"
            }
            Abort::Stopped => "the parent flow run stopped before this subflow run finished",
        }
    }
}

/// Resolves with the reason once the run must stop; never, when nothing can stop it.
async fn stopped(signal: &mut Option<tokio::sync::watch::Receiver<Stop>>) -> Stop {
    if let Some(rx) = signal
        && let Ok(why) = rx.wait_for(|s| *s != Stop::Go).await
    {
        return *why;
    }
    std::future::pending().await
}
