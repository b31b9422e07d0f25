//! Flow runs: parameters validated before the run starts, one instance per execution,
//! Prefect's final-state rules, flow retries that replay completed calls, subflows.

use super::failure::Failure;
use super::scope::{FlowScope, Recorded};
use super::scope::{RunSettings, Stop};
use super::task_run::TaskOutcome;
use super::{Event, LogLevel, Orchestrator, hooks, names, params};
use crate::engine::LoadedComponent;
use crate::engine::sandbox::HostState;
use crate::host::wit;
use crate::manifest::Definition;
use crate::state::{State, StateType};
use crate::store::{FlowRunRecord, RunKind, StateChange, StoreError, Write};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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
        }
    }
}

/// The final state of a flow run, with its value (JSON text) when it completed.
#[derive(Debug, Clone, Serialize)]
pub struct FlowOutcome {
    pub flow_run_id: String,
    pub flow_run_name: String,
    pub state: State,
    pub value: Option<String>,
    pub failure: Option<Failure>,
}

impl FlowOutcome {
    pub(crate) fn to_wit(&self) -> crate::host::weir::flow::flows::FlowOutcome {
        crate::host::weir::flow::flows::FlowOutcome {
            flow_run_id: self.flow_run_id.clone(),
            state: super::task_run::state_to_wit(&self.state),
            value: self.value.clone(),
            failure: self.failure.as_ref().map(Failure::to_wit),
        }
    }

    fn failed(record: &FlowRunRecord, failure: Failure) -> Self {
        Self {
            flow_run_id: record.id.clone(),
            flow_run_name: record.name.clone(),
            state: State::failed(failure.message.clone()),
            value: None,
            failure: Some(failure),
        }
    }
}

/// Why a flow run could not be created at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the component has no flow '{flow}'; its flows are: {}", available.join(", "))]
    UnknownFlow {
        flow: String,
        available: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a flow run was not prepared.
#[derive(Debug)]
pub enum PrepareError {
    UnknownFlow {
        flow: String,
        available: Vec<String>,
    },
    /// One message per offending field, and the run as it would have been.
    InvalidParameters {
        errors: Vec<String>,
        record: Box<FlowRunRecord>,
    },
}

/// The run and call position a subflow belongs to.
pub(crate) struct Parent {
    pub flow_run_id: String,
    pub position: i64,
    pub depth: u32,
    pub settings: RunSettings,
}

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
        let Some(def) = component.flow(&request.flow) else {
            return Err(PrepareError::UnknownFlow {
                flow: request.flow.clone(),
                available: component
                    .manifest
                    .flow_names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            });
        };
        let prepared = match component.validator(&def.name) {
            Some(v) => params::prepare(&def.parameters, v, request.parameters.clone()),
            None => Ok(request.parameters.clone()),
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
            let (mut record, invalid) = match self.prepare_flow_run(&request, State::pending()) {
                Ok(r) => (r, None),
                Err(PrepareError::UnknownFlow { flow, available }) => {
                    return Err(RunError::UnknownFlow { flow, available });
                }
                Err(PrepareError::InvalidParameters { errors, record }) => (*record, Some(errors)),
            };
            if let Some(p) = &parent {
                record.parent_flow_run_id = Some(p.flow_run_id.clone());
                record.parent_position = Some(p.position);
                record.workspace_id.clone_from(&p.settings.workspace_id);
            }
            self.record_created(&record);

            let depth = parent.as_ref().map_or(0, |p| p.depth + 1);
            let max_depth = self.engine.limits().max_subflow_depth;
            let early_failure = match invalid {
                Some(errors) => Some(Failure::permanent(
                    "invalid-parameters",
                    format!(
                        "Validation of flow parameters failed: {}",
                        errors.join("; ")
                    ),
                )),
                None if depth > max_depth => Some(Failure::permanent(
                    "limit",
                    format!("subflows nest deeper than {max_depth} levels"),
                )),
                None => None,
            };
            if let Some(failure) = early_failure {
                let outcome = FlowOutcome::failed(&record, failure);
                let mut change = StateChange::new(RunKind::Flow, &record.id, outcome.state.clone());
                change.end_time = Some(Utc::now());
                self.set_flow_state(&record.name, change);
                self.store.flush().await?;
                return Ok(outcome);
            }
            let settings = parent.map(|p| p.settings).unwrap_or_default();
            let outcome = self
                .execute_at_depth(&record, component, settings, depth)
                .await;
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
        let outcome = self.execute_at_depth(record, component, settings, 0).await;
        self.store.flush().await?;
        Ok(outcome)
    }

    async fn execute_at_depth(
        self: &Arc<Self>,
        record: &FlowRunRecord,
        component: Arc<LoadedComponent>,
        settings: RunSettings,
        depth: u32,
    ) -> FlowOutcome {
        let Some(def) = component.flow(&record.flow_name).cloned() else {
            let f = Failure::permanent(
                "unknown",
                format!("the component has no flow '{}'", record.flow_name),
            );
            let outcome = FlowOutcome::failed(record, f);
            let mut change = StateChange::new(RunKind::Flow, &record.id, outcome.state.clone());
            change.end_time = Some(Utc::now());
            self.set_flow_state(&record.name, change);
            return outcome;
        };
        let scope = Arc::new(FlowScope::new(
            self.clone(),
            component,
            settings,
            record.id.clone(),
            record.name.clone(),
            def.name.clone(),
            record.parameters.clone(),
            record.tags.clone(),
            record.parent_flow_run_id.clone(),
            depth,
            def.options.log_prints,
        ));
        let first_attempt = record.run_count.max(0) as u32 + 1;
        self.execute_flow(&scope, &def, first_attempt).await
    }

    fn set_flow_state(&self, run_name: &str, change: StateChange) {
        let state = change.state.clone();
        let id = change.run_id.clone();
        self.store.write(Write::StateChanged(change));
        self.emit(|| Event::FlowRunState {
            id,
            name: run_name.to_owned(),
            state,
        });
    }

    async fn execute_flow(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        def: &Definition,
        first_attempt: u32,
    ) -> FlowOutcome {
        let options = &def.options;
        let mut attempt = first_attempt;
        // Retries granted by the flow's options count from this execution on.
        let last_retry = first_attempt - 1 + options.retries;
        loop {
            let mut running = StateChange::new(
                RunKind::Flow,
                &scope.id,
                if attempt == 1 {
                    State::running()
                } else {
                    State::retrying()
                },
            );
            running.run_count = Some(attempt as i64);
            if attempt == 1 {
                running.start_time = Some(Utc::now());
            }
            self.set_flow_state(&scope.name, running);

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
                // Put back to run again (a shutdown): no end, no hooks; any node may
                // claim it.
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
            change.end_time = Some(Utc::now());
            if state.is_completed() && options.persists_result() {
                change.result = value.clone();
            }
            self.set_flow_state(&scope.name, change);
            let hooks: &[String] = match state.kind {
                StateType::Completed => &options.on_completion,
                StateType::Failed | StateType::Crashed => &options.on_failure,
                _ => &[],
            };
            if !hooks.is_empty() {
                hooks::run(
                    scope,
                    wit::RunKind::Flow,
                    &def.name,
                    &scope.id,
                    &scope.name,
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
    async fn execute_once(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        def: &Definition,
    ) -> (State, Option<String>, Option<Failure>) {
        let host = HostState::new(&scope.limits, Some(scope.clone()), None);
        let (mut store, world) = match self
            .engine
            .instantiate_component(&scope.component, host)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let f = Failure::new("instantiate", format!("cannot start an instance: {e:#}"));
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
                .call_run_flow(&mut store, &def.name, &scope.parameters_json);
        let timeout = scope
            .settings
            .timeout_seconds
            .or(def.options.timeout_seconds);
        let mut stop = scope.settings.stop.clone();
        let limited = async {
            match timeout {
                Some(secs) => tokio::time::timeout(Duration::from_secs_f64(secs.max(0.0)), call)
                    .await
                    .ok(),
                None => Some(call.await),
            }
        };
        let result = tokio::select! {
            r = limited => r,
            why = stopped(&mut stop) => {
                drop(store);
                self.settle_running(scope, false).await;
                return match why {
                    Stop::Shutdown | Stop::Lost => {
                        let f = Failure::permanent(
                            "interrupted",
                            "the server shut down; the run resumes when it starts again",
                        );
                        (State::named(StateType::Scheduled, "Rescheduled").with_message(f.message.clone()), None, Some(f))
                    }
                    _ => {
                        let f = Failure::permanent("cancelled", "the flow run was cancelled");
                        (State::cancelled(f.message.clone()), None, Some(f))
                    }
                };
            }
        };
        let max = self.engine.limits().max_result_bytes;
        let (state, value, failure) = match result {
            None => {
                let secs = timeout.unwrap_or_default();
                let f = Failure::new(
                    "timeout",
                    format!("Flow run exceeded timeout of {secs} second(s)"),
                );
                (State::timed_out(f.message.clone()), None, Some(f))
            }
            Some(Ok(Ok(output))) if output.value.len() > max => {
                let f = Failure::permanent(
                    "limit",
                    format!(
                        "the result is {} bytes, over the limit of {max} bytes",
                        output.value.len()
                    ),
                );
                (State::failed(f.message.clone()), None, Some(f))
            }
            Some(Ok(Ok(output))) => match output.state {
                Some(s) if !state_type_from_wit(s.type_).is_final() => {
                    let f = Failure::permanent(
                        "state",
                        format!(
                            "the flow returned a {} state; a flow must end in a final state",
                            state_type_from_wit(s.type_)
                        ),
                    );
                    (State::failed(f.message.clone()), None, Some(f))
                }
                Some(s) => {
                    let kind = state_type_from_wit(s.type_);
                    let mut state = State::new(kind);
                    if !s.name.is_empty() {
                        state.name = s.name;
                    }
                    state.message = s.message;
                    let failure = (kind != StateType::Completed).then(|| {
                        Failure::new(
                            "state",
                            state.message.clone().unwrap_or_else(|| state.name.clone()),
                        )
                    });
                    (state, Some(output.value), failure)
                }
                None => (State::completed(), Some(output.value), None),
            },
            Some(Ok(Err(f))) => {
                let f = Failure::from_wit(f);
                (State::failed(f.message.clone()), None, Some(f))
            }
            Some(Err(e)) => {
                let f = Failure::from_guest_error(&e, &store);
                (State::failed(f.message.clone()), None, Some(f))
            }
        };
        drop(store);
        // A flow that returned waits for the task runs it started; one that was stopped
        // (timeout, trap) takes them down with it.
        let returned = failure.as_ref().is_none_or(|f| {
            !matches!(
                f.kind.as_str(),
                "timeout"
                    | "trap"
                    | "panic"
                    | "memory"
                    | "cpu"
                    | "stack-overflow"
                    | "limit"
                    | "instantiate"
            )
        });
        self.settle_running(scope, returned).await;
        (state, value, failure)
    }

    /// Joins (or, when the flow was stopped, cancels) the task runs still going.
    async fn settle_running(&self, scope: &Arc<FlowScope>, join: bool) {
        loop {
            let running = std::mem::take(&mut scope.calls().running);
            if running.is_empty() {
                return;
            }
            for (id, handle) in running {
                if join {
                    let _ = handle.await;
                    continue;
                }
                handle.abort();
                let _ = handle.await;
                let finished = scope
                    .calls()
                    .outcomes
                    .get(&id)
                    .is_some_and(|rx| rx.borrow().is_some());
                if !finished {
                    let mut change = StateChange::new(
                        RunKind::Task,
                        &id,
                        State::cancelled("the flow run stopped before this task run finished"),
                    );
                    change.end_time = Some(Utc::now());
                    self.store.write(Write::StateChanged(change));
                }
            }
        }
    }

    /// Completed calls of earlier executions of a flow run, by position.
    async fn recorded_calls(
        &self,
        flow_run_id: &str,
    ) -> Result<HashMap<i64, Recorded>, StoreError> {
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
                    outcome: Arc::new(TaskOutcome {
                        task_run_id: t.id.clone(),
                        state: t.state.clone(),
                        value: t.result.as_ref().map(Value::to_string),
                        failure: None,
                    }),
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
    /// when an earlier execution completed it.
    pub(crate) async fn run_subflow(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        flow: String,
        parameters: &str,
    ) -> FlowOutcome {
        let (position, _) = scope.next_call(&flow);
        match scope.replayed(position) {
            Some(Recorded::Flow { name, outcome }) if name == flow => return *outcome,
            Some(Recorded::Task { name, .. }) | Some(Recorded::Flow { name, .. }) => {
                let f = Failure::permanent(
                    "replay-mismatch",
                    format!(
                        "replay mismatch at call position {position}: the run recorded a call to \
                         '{name}' there, but the flow now calls flow '{flow}' (its code changed \
                         or is not deterministic)"
                    ),
                );
                return FlowOutcome {
                    flow_run_id: String::new(),
                    flow_run_name: String::new(),
                    state: State::failed(f.message.clone()),
                    value: None,
                    failure: Some(f),
                };
            }
            None => {}
        }
        let parameters = match serde_json::from_str::<Value>(parameters) {
            Ok(v) => v,
            Err(e) => Value::String(format!("<not JSON: {e}>")),
        };
        let request = FlowRequest::new(scope.component.clone(), &flow, parameters);
        let parent = Parent {
            flow_run_id: scope.id.clone(),
            position,
            depth: scope.depth,
            settings: RunSettings {
                timeout_seconds: None,
                ..scope.settings.clone()
            },
        };
        match self.start_flow(request, Some(parent)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                scope.log(
                    None,
                    LogLevel::Error,
                    format!("subflow '{flow}' could not start: {e}"),
                );
                let f = Failure::permanent("unknown", e.to_string());
                FlowOutcome {
                    flow_run_id: String::new(),
                    flow_run_name: String::new(),
                    state: State::failed(f.message.clone()),
                    value: None,
                    failure: Some(f),
                }
            }
        }
    }
}

fn state_type_from_wit(t: wit::StateType) -> StateType {
    match t {
        wit::StateType::Scheduled => StateType::Scheduled,
        wit::StateType::Pending => StateType::Pending,
        wit::StateType::Running => StateType::Running,
        wit::StateType::Paused => StateType::Paused,
        wit::StateType::Completed => StateType::Completed,
        wit::StateType::Failed => StateType::Failed,
        wit::StateType::Cancelling => StateType::Cancelling,
        wit::StateType::Cancelled => StateType::Cancelled,
        wit::StateType::Crashed => StateType::Crashed,
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
