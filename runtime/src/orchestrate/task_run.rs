//! Task runs: replay, dependencies, cache, attempts with retries and timeouts, hooks.

use super::cache;
use super::hooks;
use super::names;
use super::scope::{Call, FlowScope, OutcomeTx, Recorded};
use super::slots::Slot;
use super::transactions::{Staged, cache_record};
use super::{CallOptions, Dependency, Event, TaskAttempt, TaskOutcome};
use crate::host::{HostState, wit};
use crate::model::duration;
use crate::model::failure::{Failure, FailureKind};
use crate::model::manifest::{CachePolicy, Definition};
use crate::model::state::State;
use crate::store::{RunKind, StateChange, TaskRunRecord, Write};
use chrono::Utc;
use rand::Rng;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What the host keeps for a task run beyond its arguments and result, as counted
/// against the run's and the process's memory (its queued call, outcome slot and its
/// entry by id: the process grew by about 0.8 KB a task run from a map of 100,000 to one
/// of 1,000,000).
const TASK_RUN_HOST_BYTES: usize = 1024;

/// A recorded call's outcome, with the run name and cache key it was recorded under.
type Replayed = (Arc<TaskOutcome>, String, Option<String>);

/// A registered task call, ready to run.
pub(crate) struct TaskCall {
    pub id: String,
    pub task: String,
    pub arguments: String,
    /// Shared by the runs of a map.
    pub options: Arc<CallOptions>,
    /// Stable position in the flow run; `None` for tasks called from tasks.
    pub position: Option<i64>,
    pub name_index: u64,
    /// How deep in task calls the new task run is: 1 when the flow calls it.
    pub nesting: u32,
    /// The transaction the call belongs to (the flow's innermost open one).
    pub transaction: Option<String>,
    /// The arguments as the journal knows the call, when upstream runs give some of them:
    /// each of those places holds the upstream run's id (see [`call_identity`]).
    identity: Option<String>,
    /// The recorded outcome (and cache key), when an earlier execution completed this call.
    /// Boxed: rare, and a map queues a million calls.
    replay: Option<Box<Replayed>>,
    /// Taken when the call starts running.
    tx: Option<OutcomeTx>,
}

impl FlowScope {
    /// Gives a call its position, name index and id, and registers its outcome so that
    /// futures and `wait_for` can find it. A call at a recorded position is replayed; a
    /// replay mismatch is an error (and fails the run). Calls of the flow itself
    /// (`caller_nesting` 0) have positions; tasks' calls do not.
    pub(crate) fn register_call(
        &self,
        task: String,
        arguments: String,
        options: Arc<CallOptions>,
        caller_nesting: u32,
    ) -> Result<TaskCall, Box<Failure>> {
        let positioned = caller_nesting == 0;
        self.charge_host(TASK_RUN_HOST_BYTES + arguments.len())?;
        let (position, name_index) = if positioned {
            let (p, n) = self.next_call(&task);
            (Some(p), n)
        } else {
            (None, self.next_name_index(&task))
        };
        let identity = call_identity(&arguments, &options.wait_for);
        let replay = match position {
            // A run records the name it was shown under (`with_options(name=..)`).
            Some(p) => match self.replay_at(
                p,
                Call::Task {
                    name: options.overrides.name.as_deref().unwrap_or(&task),
                    arguments: identity.as_deref().unwrap_or(&arguments),
                },
            )? {
                Some(Recorded::Task {
                    outcome,
                    run_name,
                    cache_key,
                    ..
                }) => Some(Box::new((outcome, run_name, cache_key))),
                _ => None,
            },
            None => None,
        };
        let id = match replay.as_deref() {
            Some((outcome, ..)) => outcome.task_run_id.clone(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        let (tx, rx) = OutcomeTx::new();
        self.calls().outcomes.insert(id.clone(), rx);
        Ok(TaskCall {
            id,
            task,
            arguments,
            options,
            position,
            name_index,
            nesting: caller_nesting.saturating_add(1),
            transaction: if positioned {
                self.current_transaction()
            } else {
                None
            },
            identity,
            replay,
            tx: Some(tx),
        })
    }

    /// Runs a registered call to its final state.
    pub(crate) async fn run_task(self: &Arc<Self>, mut call: TaskCall) -> Arc<TaskOutcome> {
        let tx = call.tx.take();
        let outcome = Arc::new(self.execute_task(call).await);
        if let Some(value) = &outcome.value {
            self.note_host(value.len());
            self.note_stored(value.len());
        }
        if let Some(tx) = tx {
            tx.send(outcome.clone());
        }
        outcome
    }

    /// Starts a registered call concurrently with the caller. The flow's own calls (a
    /// map of a million items among them) wait in its queue, a few hundred bytes each, for
    /// one of at most `max_active_task_runs` workers; a task's calls get a tokio task of
    /// their own (queued behind the flow's, a task waiting on them could hold every
    /// worker).
    pub(crate) fn spawn_task(self: &Arc<Self>, call: TaskCall) -> String {
        let id = call.id.clone();
        if call.nesting == 1 {
            let mut calls = self.calls();
            if calls.workers >= self.limits.max_active_task_runs.max(1) {
                calls.queued.push_back(call);
                return id;
            }
            calls.workers += 1;
            drop(calls);
            let handle = tokio::spawn(self.clone().work_through_queue(call));
            self.calls().keep_running(id.clone(), handle);
            return id;
        }
        let scope = self.clone();
        let admission = self.admission.clone();
        let handle = tokio::spawn(async move {
            let _admitted = admission.acquire_owned().await;
            Box::pin(scope.run_task(call)).await;
        });
        self.calls().keep_running(id.clone(), handle);
        id
    }

    /// A worker: runs `first`, then the flow's queued calls in order until none is left.
    /// Each call takes a turn of the flow's task runner, then admission, then room in the
    /// store's queue (a map runs no faster than its states are written, so its backlog
    /// of writes stays bounded).
    async fn work_through_queue(self: Arc<Self>, first: TaskCall) {
        /// Counts the worker out if it is aborted (its run stopped) mid-call.
        struct Worker<'a>(&'a FlowScope, bool);
        impl Drop for Worker<'_> {
            fn drop(&mut self) {
                if self.1 {
                    let mut calls = self.0.calls();
                    calls.workers = calls.workers.saturating_sub(1);
                }
            }
        }
        let mut worker = Worker(&self, true);
        let mut next = Some(first);
        while let Some(call) = next {
            {
                let _turn = match &self.task_runner {
                    Some(runner) => runner.clone().acquire_owned().await.ok(),
                    None => None,
                };
                let _admitted = self.admission.clone().acquire_owned().await;
                self.orch.store.room().await;
                // The future of a running task run is large: boxed, one per worker.
                Box::pin(self.run_task(call)).await;
            }
            let mut calls = self.calls();
            next = calls.queued.pop_front();
            // A drained queue gives its memory back (a million queued calls took
            // hundreds of MB).
            let (len, capacity) = (calls.queued.len(), calls.queued.capacity());
            if capacity > 4096 && len < capacity / 4 {
                calls.queued.shrink_to(len * 2);
            }
            if next.is_none() {
                // Under the same lock as `spawn_task`'s check: a call queued from now on
                // finds one worker fewer and starts one.
                calls.workers = calls.workers.saturating_sub(1);
                worker.1 = false;
                return;
            }
        }
    }

    async fn execute_task(self: &Arc<Self>, call: TaskCall) -> TaskOutcome {
        // Replay: a completed call recorded at this position returns its result (and
        // takes its part in its transaction again).
        if let Some((outcome, run_name, cache_key)) = call.replay.as_deref() {
            if let Some(txn) = &call.transaction
                && let Ok(target) = self.target(&call.task).await
                && let Some(def) = target.component.task(&target.task)
            {
                let mut staged = Staged::new(
                    def,
                    &def.name,
                    &outcome.task_run_id,
                    run_name,
                    &call.arguments,
                    cache_key.as_deref(),
                    outcome.value.as_deref().unwrap_or("null"),
                );
                if target.plugin.is_some() {
                    staged.component = Some(target.component.clone());
                }
                self.stage(Some(txn), staged).await;
            }
            return (**outcome).clone();
        }

        let max_nesting = self.limits.max_task_nesting;
        if call.nesting > max_nesting {
            let message = format!(
                "task '{}' would be {} task calls deep; tasks may call tasks {} levels \
                 deep (a task that calls itself without end stops here)",
                call.task, call.nesting, max_nesting
            );
            return TaskOutcome::failed(
                &call.id,
                State::failed(message.clone()),
                Failure::permanent(FailureKind::Limit, message),
            );
        }
        // A task of the flow's component, or of a plugin's.
        let target = match self.target(&call.task).await {
            Ok(target) => target,
            Err(failure) => {
                let state = State::failed(failure.message.clone());
                return TaskOutcome::failed(&call.id, state, *failure);
            }
        };
        let Some(def) = target.component.task(&target.task) else {
            let message = format!("task '{}' vanished from its component", call.task);
            return TaskOutcome::failed(
                &call.id,
                State::failed(message.clone()),
                Failure::permanent(FailureKind::Unknown, message),
            );
        };
        // The component's task runs whatever this call names it (`with_options(name=..)`).
        let task = target.task.clone();
        let mut def = match call.options.overrides.apply(def) {
            Ok(def) => def,
            Err(message) => {
                return TaskOutcome::failed(
                    &call.id,
                    State::failed(message.clone()),
                    Failure::permanent(FailureKind::InvalidParameters, message),
                );
            }
        };
        // A plugin's task run is known by the call's name (the journal's), and named
        // with the version it runs (`http@2/request-0`).
        if target.plugin.is_some() && call.options.overrides.name.is_none() {
            def.name = call.task.clone();
        }
        let mut args: Value = match serde_json::from_str(&call.arguments) {
            Ok(v) => v,
            Err(e) => {
                return TaskOutcome::failed(
                    &call.id,
                    State::failed("invalid arguments"),
                    Failure::permanent(
                        FailureKind::InvalidParameters,
                        format!("arguments are not JSON: {e}"),
                    ),
                );
            }
        };
        // Futures passed as arguments: their values go in before the run is named, keyed
        // and started.
        // The journal knows a call by its arguments with the upstream runs' ids in place
        // (replay compares them), not by the values the host puts there.
        let call_hash = call.identity.as_deref().map(|identity| {
            let value = serde_json::from_str(identity).unwrap_or(Value::Null);
            cache::input_hash(&cache::canonical_json(&value))
        });
        let resolved;
        let arguments = if call.identity.is_some() {
            if let Err(failure) = self.resolve_inputs(&mut args, &call.options.wait_for).await {
                let message = failure.message.clone();
                return TaskOutcome::failed(&call.id, State::failed(message), *failure);
            }
            resolved = args.to_string();
            &resolved
        } else {
            &call.arguments
        };
        let canonical = cache::canonical_json(&args);
        let run_name = match (&def.options.run_name_template, &target.plugin) {
            (Some(t), _) => names::render(t, &args),
            (None, Some(plugin)) => format!("{}/{task}-{}", plugin.pinned(), call.name_index),
            (None, None) => format!("{}-{}", def.name, call.name_index),
        };
        let mut tags = def.options.tags.clone();
        tags.extend(self.tags.iter().cloned());
        tags.extend(call.options.tags.iter().cloned());
        tags.sort();
        tags.dedup();

        let workspace = self.settings.workspace_id.as_deref().unwrap_or("");
        let cache_key = match def.options.cache_policy {
            CachePolicy::None => None,
            CachePolicy::Inputs => Some(cache::inputs_key(
                workspace,
                &target.component.digest,
                &task,
                &canonical,
            )),
            CachePolicy::Custom => call
                .options
                .cache_key
                .as_deref()
                .map(|k| cache::custom_key(workspace, &task, k)),
        };

        let run = TaskRun {
            scope: self.clone(),
            id: call.id.clone(),
            name: run_name,
            task,
            plugin: target
                .plugin
                .as_ref()
                .map(|p| Arc::from(p.pinned()))
                .or_else(|| self.settings.plugin.clone()),
            component: target.component,
            def,
            tags,
            nesting: call.nesting,
            transaction: call.transaction.clone(),
        };
        let now = Utc::now();
        let pending = State::pending();
        self.orch.store.write(Write::TaskRunCreated(TaskRunRecord {
            id: run.id.clone(),
            flow_run_id: self.id.clone(),
            position: call.position,
            task_name: run.def.name.clone(),
            name: run.name.clone(),
            input_hash: call_hash.unwrap_or_else(|| cache::input_hash(&canonical)),
            cache_key: cache_key.clone(),
            tags: run.tags.clone(),
            state: pending,
            run_count: 0,
            result: None,
            created: now,
            start_time: None,
            end_time: None,
            workspace_id: self.settings.workspace_id.clone(),
            transaction_id: call.transaction.clone(),
            upstream: call
                .options
                .wait_for
                .iter()
                .map(|d| d.task_run_id.clone())
                .collect(),
        }));
        self.calls()
            .live_tasks
            .insert(run.id.clone(), run.name.clone());
        self.orch.emit(|| Event::TaskRunCreated {
            flow_run_name: self.name.clone(),
            id: run.id.clone(),
            name: run.name.clone(),
        });

        if let Some(outcome) = run.wait_for(&call.options.wait_for).await {
            return outcome;
        }
        // A plugin's arguments come from another component's code: they must match the
        // task's schema.
        if run.plugin.is_some()
            && let Some(schema) = run.component.task_validator(&run.task)
        {
            let errors = schema.errors(&args);
            if !errors.is_empty() {
                let message = format!(
                    "the arguments of plugin task '{}' do not match its schema: {}",
                    call.task,
                    errors.join("; ")
                );
                let state = State::failed(message.clone());
                run.finish(state.clone(), None, None);
                return TaskOutcome::failed(
                    &run.id,
                    state,
                    Failure::permanent(FailureKind::InvalidParameters, message),
                );
            }
        }

        if let Some(key) = &cache_key
            && !run.def.options.refresh_cache
        {
            match self.orch.store.cached_result(key, Utc::now()).await {
                Ok(Some(result)) => {
                    let state = State::cached();
                    run.finish(state.clone(), Some(&result), None);
                    return TaskOutcome {
                        task_run_id: run.id.clone(),
                        state,
                        value: Some(result),
                        failure: None,
                    };
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("cache lookup failed, running the task: {e}"),
            }
        }

        run.attempts(arguments, cache_key).await
    }

    /// Puts the values of the upstream runs that are arguments (`argument` pointers) into
    /// `args`, once they are final. One that did not complete is left out: the run's wait
    /// for its dependencies then ends it NotReady. A pointer that names no place in the
    /// arguments is the call's error.
    async fn resolve_inputs(
        &self,
        args: &mut Value,
        deps: &[Dependency],
    ) -> Result<(), Box<Failure>> {
        // Each upstream value is parsed once, however many places it goes to.
        let mut parsed: std::collections::HashMap<&str, Value> = std::collections::HashMap::new();
        for dep in deps {
            let Some(pointer) = &dep.argument else {
                continue;
            };
            let invalid =
                |why: String| Box::new(Failure::permanent(FailureKind::InvalidParameters, why));
            if !pointer.starts_with('/') || args.pointer(pointer).is_none() {
                return Err(invalid(format!(
                    "the value of upstream task run {} goes to {pointer:?}, which is not a \
                     place in the call's arguments",
                    dep.task_run_id
                )));
            }
            let rx = self.calls().outcomes.get(&dep.task_run_id).cloned();
            let Some(rx) = rx else {
                continue;
            };
            let Some(upstream) = rx.wait(&dep.task_run_id).await else {
                continue;
            };
            let value = if upstream.state.is_completed() {
                let Some(text) = upstream.value.as_deref() else {
                    // A replayed run whose result was not persisted.
                    return Err(invalid(format!(
                        "the value of upstream task run {} was not kept (persist_result is \
                         off), so it cannot be an argument of a call made again",
                        dep.task_run_id
                    )));
                };
                // Every copy counts against the run's memory, before it is made.
                self.charge_host(text.len())?;
                if !parsed.contains_key(dep.task_run_id.as_str()) {
                    let value = serde_json::from_str::<Value>(text).map_err(|e| {
                        invalid(format!(
                            "the value of upstream task run {} is not JSON: {e}",
                            dep.task_run_id
                        ))
                    })?;
                    parsed.insert(dep.task_run_id.as_str(), value);
                }
                parsed[dep.task_run_id.as_str()].clone()
            } else if dep.allow_failure {
                Value::Null
            } else {
                continue;
            };
            if let Some(slot) = args.pointer_mut(pointer) {
                *slot = value;
            }
        }
        Ok(())
    }
}

struct TaskRun {
    scope: Arc<FlowScope>,
    id: String,
    name: String,
    /// The component's task this run executes.
    task: String,
    /// The component: the flow's, or a plugin's.
    component: Arc<crate::host::LoadedComponent>,
    /// The plugin's pinned reference (`http@2`), for a plugin's task.
    plugin: Option<Arc<str>>,
    /// Its definition with the call's overrides (its name is the one shown).
    def: Definition,
    tags: Vec<String>,
    nesting: u32,
    /// The transaction it belongs to.
    transaction: Option<String>,
}

impl TaskRun {
    fn set_state(&self, change: StateChange) {
        self.scope
            .orch
            .set_task_state(&self.scope.name, &self.name, change);
    }

    /// Records a final state (with the result, when persisted) and runs the hooks.
    fn finish(&self, state: State, result: Option<&str>, attempts: Option<i64>) {
        self.scope.calls().live_tasks.remove(&self.id);
        let mut change = StateChange::new(RunKind::Task, &self.id, state);
        change.end_time = Some(Utc::now());
        change.run_count = attempts;
        if self.def.options.persists_result() {
            change.result = result.map(str::to_owned);
        }
        self.set_state(change);
    }

    /// Waits for upstream task runs; returns an outcome when one failed and this run
    /// may not proceed (Prefect's NotReady).
    async fn wait_for(&self, deps: &[Dependency]) -> Option<TaskOutcome> {
        for dep in deps {
            let rx = self.scope.calls().outcomes.get(&dep.task_run_id).cloned();
            let Some(rx) = rx else {
                let msg = format!(
                    "wait_for names task run {} which this flow run did not start",
                    dep.task_run_id
                );
                let state = State::failed(msg.clone());
                self.finish(state.clone(), None, None);
                return Some(TaskOutcome::failed(
                    &self.id,
                    state,
                    Failure::permanent(FailureKind::Upstream, msg),
                ));
            };
            let Some(upstream) = rx.wait(&dep.task_run_id).await else {
                continue;
            };
            if !upstream.state.is_completed() && !dep.allow_failure {
                let msg = format!(
                    "Upstream task run '{}' did not reach a 'COMPLETED' state.",
                    dep.task_run_id
                );
                let state = State::not_ready(msg.clone());
                self.set_state(StateChange::new(RunKind::Task, &self.id, state.clone()));
                return Some(TaskOutcome::failed(
                    &self.id,
                    state,
                    Failure::permanent(FailureKind::Upstream, msg),
                ));
            }
        }
        None
    }

    async fn attempts(&self, arguments: &str, cache_key: Option<String>) -> TaskOutcome {
        let started = std::time::Instant::now();
        let outcome = self.attempts_inner(arguments, cache_key).await;
        self.scope
            .orch
            .durations
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    async fn attempts_inner(&self, arguments: &str, cache_key: Option<String>) -> TaskOutcome {
        let options = &self.def.options;
        let max_attempts = options.retries + 1;
        let mut attempt = 1;
        loop {
            let slot = self.slot().await;
            let mut running = StateChange::new(
                RunKind::Task,
                &self.id,
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
            self.set_state(running);
            if !options.on_running.is_empty() {
                let state = if attempt == 1 {
                    State::running()
                } else {
                    State::retrying()
                };
                self.run_hooks(&state, &options.on_running, arguments).await;
            }

            let (result, timed_out) = self.attempt(arguments, attempt, slot).await;
            match result {
                Ok(value) => {
                    let state = State::completed();
                    self.finish(state.clone(), Some(&value), None);
                    if self.transaction.is_none()
                        && options.on_commit.is_empty()
                        && options.on_rollback.is_empty()
                    {
                        // Its own transaction, committing at once with nothing to run.
                        let record =
                            cache_record(&self.def, &self.id, cache_key.as_deref(), &value);
                        if let Some(record) = record {
                            self.scope.orch.store.write(Write::CachePut(record));
                        }
                    } else {
                        let mut staged = Staged::new(
                            &self.def,
                            &self.task,
                            &self.id,
                            &self.name,
                            arguments,
                            cache_key.as_deref(),
                            &value,
                        );
                        if self.plugin.is_some() {
                            staged.component = Some(self.component.clone());
                        }
                        self.scope.stage(self.transaction.as_deref(), staged).await;
                    }
                    self.run_hooks(&state, &options.on_completion, arguments)
                        .await;
                    return TaskOutcome {
                        task_run_id: self.id.clone(),
                        state,
                        value: Some(value),
                        failure: None,
                    };
                }
                Err(failure) => {
                    if attempt < max_attempts && self.should_retry(&failure, attempt).await {
                        let delay = retry_delay(
                            &options.retry_delay_seconds,
                            options.retry_jitter_factor,
                            attempt,
                        );
                        self.set_state(StateChange::new(
                            RunKind::Task,
                            &self.id,
                            State::awaiting_retry(failure.message.clone()),
                        ));
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                        continue;
                    }
                    let state = if timed_out {
                        State::timed_out(failure.message.clone())
                    } else {
                        State::failed(failure.message.clone())
                    };
                    self.finish(state.clone(), None, None);
                    self.run_hooks(&state, &options.on_failure, arguments).await;
                    return TaskOutcome::failed(&self.id, state, failure);
                }
            }
        }
    }

    /// A task slot for the next attempt. While the run has its share of slots (or none
    /// is free), the task run shows as Pending, saying so.
    async fn slot(&self) -> Slot {
        let slots = &self.scope.orch.task_slots;
        match slots.try_acquire(&self.scope.holder(), false) {
            Ok(slot) => slot,
            Err(busy) => {
                self.set_state(StateChange::new(
                    RunKind::Task,
                    &self.id,
                    State::pending().with_message(format!(
                        "waiting for a task slot: the flow run holds {} (its share is {} of {})",
                        busy.held,
                        busy.share,
                        slots.total()
                    )),
                ));
                busy.wait().await
            }
        }
    }

    /// One attempt in a fresh instance, on `slot`. The flag says whether it timed out.
    async fn attempt(
        &self,
        arguments: &str,
        attempt: u32,
        slot: Slot,
    ) -> (Result<String, Failure>, bool) {
        let scope = &self.scope;
        let orch = &scope.orch;
        let task = Arc::new(TaskAttempt {
            task_run_id: self.id.clone(),
            task_run_name: self.name.clone(),
            task_name: self.def.name.clone(),
            attempt,
            tags: self.tags.clone(),
            arguments: arguments.to_owned(),
            log_prints: self.def.options.log_prints_under(scope.log_prints),
            nesting: self.nesting,
            plugin: self.plugin.clone(),
        });
        let state = || HostState::new(&scope.limits, Some(scope.clone()), Some(task.clone()));
        let (mut store, world) = match orch
            .engine
            .instantiate_component(&self.component, state)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                return (
                    Err(Failure::new(
                        FailureKind::Instantiate,
                        format!("cannot start an instance: {e:#}"),
                    )),
                    false,
                );
            }
        };
        // The slot goes with the instance (made once; a full pool may make several stores).
        store.data_mut().slot = Some(slot);
        let arguments = arguments.to_owned();
        let call = world
            .weir_flow_guest()
            .call_run_task(&mut store, &self.task, &arguments);
        // A timeout of 0 is none (Prefect's `None`); manifests are normalized at upload.
        let result = match self.def.options.timeout_seconds.filter(|s| *s > 0.0) {
            Some(secs) => match tokio::time::timeout(duration::to_std(secs), call).await {
                Ok(r) => r,
                Err(_) => {
                    return (
                        Err(Failure::new(
                            FailureKind::Timeout,
                            format!("Task run exceeded timeout of {secs} second(s)"),
                        )),
                        true,
                    );
                }
            },
            None => call.await,
        };
        let max = orch.engine.limits().max_result_bytes;
        let out = match result {
            Ok(Ok(value)) if value.len() > max => Err(Failure::permanent(
                FailureKind::Limit,
                format!(
                    "the result is {} bytes, over the limit of {max} bytes",
                    value.len()
                ),
            )),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(f)) => Err(crate::host::convert::failure_from_wit(f)),
            Err(e) => Err(crate::engine::trap::explain(&e, &store)),
        };
        (out, false)
    }

    async fn should_retry(&self, failure: &Failure, attempt: u32) -> bool {
        if failure.retryable == Some(false) {
            return false;
        }
        if !self.def.options.has_retry_condition {
            return true;
        }
        hooks::retry_condition(&self.scope, &self.component, &self.task, failure, attempt).await
    }

    async fn run_hooks(&self, state: &State, hooks: &[String], arguments: &str) {
        if hooks.is_empty() {
            return;
        }
        hooks::run(
            &self.scope,
            &self.component,
            wit::RunKind::Task,
            &self.task,
            &self.id,
            &self.name,
            state,
            hooks,
            arguments,
        )
        .await;
    }
}

/// The delay before retry number `attempt` (1-based): one delay per retry, the last
/// one repeating, spread by the jitter factor (Prefect's `retry_jitter_factor`).
pub(crate) fn retry_delay(delays: &[f64], jitter: Option<f64>, attempt: u32) -> Duration {
    let Some(&base) = delays.get(attempt as usize - 1).or(delays.last()) else {
        return Duration::ZERO;
    };
    let base = duration::to_std(base).as_secs_f64();
    let secs = match jitter {
        Some(f) if f.is_finite() && f > 0.0 && base > 0.0 => {
            let spread = base * f;
            (base + rand::rng().random_range(-spread..=spread)).max(0.0)
        }
        _ => base,
    };
    duration::to_std(secs)
}

/// The arguments of a call as the journal knows it when upstream runs give some of them:
/// each such place holds `{"$upstream": "<task run id>"}`. A replay then recognizes the
/// call only if the same runs give those places (a re-run upstream has a new id).
/// `None` when no argument comes from an upstream run.
fn call_identity(arguments: &str, deps: &[Dependency]) -> Option<String> {
    if deps.iter().all(|d| d.argument.is_none()) {
        return None;
    }
    let mut value: Value = serde_json::from_str(arguments).ok()?;
    for dep in deps {
        if let Some(slot) = dep.argument.as_deref().and_then(|p| value.pointer_mut(p)) {
            *slot = serde_json::json!({ "$upstream": dep.task_run_id });
        }
    }
    Some(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_list_and_repeat_the_last() {
        let d = [1.0, 2.0, 4.0];
        assert_eq!(retry_delay(&d, None, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(&d, None, 3), Duration::from_secs(4));
        assert_eq!(retry_delay(&d, None, 7), Duration::from_secs(4));
        assert_eq!(retry_delay(&[], None, 1), Duration::ZERO);
    }

    #[test]
    fn absurd_delays_saturate_instead_of_panicking() {
        let max = Duration::from_secs_f64(duration::MAX_SECONDS);
        assert_eq!(retry_delay(&[1e20], None, 1), max);
        assert_eq!(retry_delay(&[f64::NAN], Some(0.5), 1), Duration::ZERO);
        assert!(retry_delay(&[1e20], Some(1e20), 1) <= max);
        assert!(retry_delay(&[5.0], Some(f64::INFINITY), 1) <= Duration::from_secs(5));
    }

    #[test]
    fn a_call_is_known_by_the_runs_that_give_its_arguments() {
        let dep = |id: &str, pointer: Option<&str>| Dependency {
            task_run_id: id.to_owned(),
            allow_failure: false,
            argument: pointer.map(str::to_owned),
        };
        assert_eq!(call_identity(r#"{"x": null}"#, &[dep("a", None)]), None);
        let identity = call_identity(
            r#"{"x": null, "xs": [1, null], "y": 2}"#,
            &[
                dep("a", Some("/x")),
                dep("b", Some("/xs/1")),
                dep("c", Some("/nope")),
            ],
        )
        .unwrap();
        let value: Value = serde_json::from_str(&identity).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"x": {"$upstream": "a"}, "xs": [1, {"$upstream": "b"}], "y": 2})
        );
        // Another upstream run in the same place is another call.
        let other = call_identity(r#"{"x": null}"#, &[dep("z", Some("/x"))]).unwrap();
        let same = call_identity(r#"{"x": null}"#, &[dep("a", Some("/x"))]).unwrap();
        assert_ne!(other, same);
    }

    #[test]
    fn jitter_stays_within_its_factor() {
        for _ in 0..200 {
            let d = retry_delay(&[10.0], Some(0.5), 1).as_secs_f64();
            assert!((5.0..=15.0).contains(&d), "{d}");
        }
    }
}
