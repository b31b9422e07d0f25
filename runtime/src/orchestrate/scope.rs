//! What every instance of one flow run shares: the run's identity, its call positions,
//! the outcomes of its task runs (for futures and `wait_for`), and its log budget.

use super::{LogLevel, Orchestrator, TaskAttempt, TaskOutcome};
use crate::host::LoadedComponent;
use crate::model::failure::{Failure, FailureKind};
use crate::model::limits::Limits;
use crate::model::state::State;
use crate::store::{LogRecord, Write};
use chrono::Utc;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A completed call recorded by an earlier execution of the flow run.
#[derive(Debug, Clone)]
pub(crate) enum Recorded {
    Task {
        name: String,
        input_hash: String,
        /// The task run's name and cache key (its own transaction's key).
        run_name: String,
        cache_key: Option<String>,
        outcome: Arc<TaskOutcome>,
    },
    Flow {
        name: String,
        /// The function of the subflow, when its component named one.
        function: Option<String>,
        outcome: Box<super::FlowOutcome>,
    },
    /// A pause that was resumed, with the resume's input (JSON text).
    Pause { input: String },
    /// A transaction that began here, and where it stands.
    Transaction {
        id: String,
        state: crate::model::run::TransactionState,
    },
}

impl Recorded {
    /// The call as a user reads it in a replay mismatch: "task `double`".
    fn describe(&self) -> String {
        match self {
            Recorded::Task { name, .. } => format!("task `{name}`"),
            Recorded::Flow { name, .. } => format!("subflow `{name}`"),
            Recorded::Pause { .. } => "a pause".to_owned(),
            Recorded::Transaction { .. } => "a transaction".to_owned(),
        }
    }
}

/// A call a flow makes at a position, to compare with what was recorded there.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call<'a> {
    /// A task and its arguments (JSON text).
    Task {
        name: &'a str,
        arguments: &'a str,
    },
    Flow {
        name: &'a str,
    },
    Pause,
    Transaction,
}

impl Call<'_> {
    fn describe(&self) -> String {
        match self {
            Call::Task { name, .. } => format!("task `{name}`"),
            Call::Flow { name } => format!("subflow `{name}`"),
            Call::Pause => "a pause".to_owned(),
            Call::Transaction => "a transaction".to_owned(),
        }
    }

    fn same_kind_and_name(&self, recorded: &Recorded) -> bool {
        match (self, recorded) {
            (Call::Task { name, .. }, Recorded::Task { name: r, .. }) => name == r,
            (
                Call::Flow { name },
                Recorded::Flow {
                    name: r, function, ..
                },
            ) => name == r || function.as_deref() == Some(*name),
            (Call::Pause, Recorded::Pause { .. }) => true,
            (Call::Transaction, Recorded::Transaction { .. }) => true,
            _ => false,
        }
    }
}

/// What stops an execution of a flow run from the host's side, whatever the flow does
/// next: set by a host call, read when the execution ends.
#[derive(Debug, Clone)]
pub(crate) enum Interrupt {
    /// The run suspends: its instance is dropped, and it leaves in this (Paused) state.
    Suspend(State),
    /// The run fails with this failure (a replay mismatch, a pause that timed out).
    Fail(Failure),
}

/// Where a task run's outcome appears once it is final: what futures, `wait_for` and
/// upstream values wait on. A map of a million task runs keeps a million of these, so it
/// is a few words (a `watch` channel was 344 bytes).
#[derive(Default)]
pub(crate) struct OutcomeSlot {
    value: std::sync::OnceLock<Kept>,
    /// Set when the call was dropped without an outcome (its run was stopped).
    abandoned: AtomicBool,
    changed: tokio::sync::Notify,
}

pub(crate) type OutcomeRx = Arc<OutcomeSlot>;

impl Calls {
    /// Keeps a task to join; those that finished are let go now and then (a map whose
    /// workers come and go would otherwise keep every one's memory until the run ends).
    pub(crate) fn keep_running(&mut self, id: String, handle: JoinHandle<()>) {
        if self.running.len() >= self.prune_running_at {
            self.running.retain(|(_, h)| !h.is_finished());
            self.prune_running_at = (self.running.len() * 2).max(1024);
        }
        self.running.push((id, handle));
    }
}

/// A final outcome as a slot keeps it until the run ends: a plain completion (most of a
/// map's) as its time and value only, a few words instead of a whole outcome.
enum Kept {
    Completed {
        timestamp: chrono::DateTime<Utc>,
        value: Option<Box<str>>,
    },
    Other(Arc<TaskOutcome>),
}

impl Kept {
    fn new(outcome: Arc<TaskOutcome>) -> Self {
        let state = &outcome.state;
        if state.kind == crate::model::state::StateType::Completed
            && state.name == state.kind.default_name()
            && state.message.is_none()
            && outcome.failure.is_none()
        {
            Kept::Completed {
                timestamp: state.timestamp,
                value: outcome.value.as_deref().map(Box::from),
            }
        } else {
            Kept::Other(outcome)
        }
    }

    fn outcome(&self, task_run_id: &str) -> Arc<TaskOutcome> {
        match self {
            Kept::Other(outcome) => outcome.clone(),
            Kept::Completed { timestamp, value } => Arc::new(TaskOutcome {
                task_run_id: task_run_id.to_owned(),
                state: State {
                    timestamp: *timestamp,
                    ..State::completed()
                },
                value: value.as_deref().map(str::to_owned),
                failure: None,
            }),
        }
    }
}

impl OutcomeSlot {
    /// The outcome of task run `task_run_id` (this slot's), once there is one; `None`
    /// when the call ended without one.
    pub(crate) async fn wait(&self, task_run_id: &str) -> Option<Arc<TaskOutcome>> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(kept) = self.value.get() {
                return Some(kept.outcome(task_run_id));
            }
            if self.abandoned.load(Ordering::Acquire) {
                return None;
            }
            changed.await;
        }
    }
}

/// The producing side of an [`OutcomeSlot`]: dropped without [`OutcomeTx::send`], the slot
/// says the call ended without an outcome.
pub(crate) struct OutcomeTx(Arc<OutcomeSlot>);

impl OutcomeTx {
    pub(crate) fn new() -> (Self, OutcomeRx) {
        let slot = Arc::new(OutcomeSlot::default());
        (Self(slot.clone()), slot)
    }

    pub(crate) fn send(&self, outcome: Arc<TaskOutcome>) {
        let _ = self.0.value.set(Kept::new(outcome));
        self.0.changed.notify_waiters();
    }
}

impl Drop for OutcomeTx {
    fn drop(&mut self) {
        if self.0.value.get().is_none() {
            self.0.abandoned.store(true, Ordering::Release);
            self.0.changed.notify_waiters();
        }
    }
}

#[derive(Default)]
pub(crate) struct Calls {
    next_position: i64,
    name_counters: HashMap<String, u64>,
    pub(crate) replay: HashMap<i64, Recorded>,
    /// Outcome of every task run of this execution, by task run id.
    pub(crate) outcomes: HashMap<String, OutcomeRx>,
    /// Task runs started with submit or map, still to be joined: the tokio tasks running
    /// the flow's own submitted calls (each works through `queued`), and those of tasks'
    /// calls.
    pub(crate) running: Vec<(String, JoinHandle<()>)>,
    /// The flow's submitted calls waiting for a worker, in the order they were made.
    pub(crate) queued: VecDeque<super::task_run::TaskCall>,
    /// Tokio tasks working through `queued`.
    pub(crate) workers: usize,
    /// `running`'s length at which its finished tasks are let go next.
    prune_running_at: usize,
    /// Progress artifacts this run created (only those may be updated).
    pub(crate) progress_artifacts: HashSet<String>,
    /// Set once a positioned call of this execution ran instead of being replayed: from
    /// then on the flow may legitimately differ from the record (a failed task that
    /// succeeds this time can send it down another branch), so a different call at a
    /// recorded position is no longer a mismatch.
    diverged: bool,
    /// Task runs created and not yet final (id, name): cancelled when the run stops
    /// abruptly.
    pub(crate) live_tasks: HashMap<String, String>,
    /// Subflow runs in progress, ended with their parent when it stops abruptly.
    pub(crate) children: Vec<Arc<FlowScope>>,
    /// Open transactions an earlier execution rolled back: while one is open, calls run
    /// anew instead of replaying (the work they recorded was undone).
    pub(crate) fresh_depth: u32,
    /// The plugins this execution's calls found, by reference (`http`, `http@2`).
    pub(crate) plugins: HashMap<String, Arc<super::plugins::Plugin>>,
}

/// Why a running flow run must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Go,
    /// A user cancelled it: it ends Cancelled.
    Cancel,
    /// The server is shutting down: it is put back to run again (Scheduled), replaying
    /// what it completed.
    Shutdown,
    /// Another node took the run over (this node was presumed dead): it stops without
    /// a word, since its writes are rejected anyway.
    Lost,
}

/// Where a flow run comes from and what it may use, beyond the flow's own options.
#[derive(Clone, Default)]
pub struct RunSettings {
    pub workspace_id: Option<String>,
    /// Stops the run when it changes from [`Stop::Go`]; subflows share their parent's.
    pub stop: Option<watch::Receiver<Stop>>,
    /// A smaller memory limit per instance than the engine's (a deployment's limit).
    pub memory_bytes: Option<usize>,
    /// Replaces the flow's own timeout (a deployment's limit).
    pub timeout_seconds: Option<f64>,
    /// Hosts the run may reach over outbound HTTP (a deployment's grant).
    pub allowed_hosts: Vec<String>,
    /// Workspace secrets the plugins the run calls may read (a deployment's grant).
    pub plugin_secrets: Vec<String>,
    /// Set when the run is a plugin's task run on its own (`notify@1`): all its code is
    /// the plugin's.
    pub plugin: Option<Arc<str>>,
    /// The deployment the run belongs to (its background task runs go there too).
    pub deployment_id: Option<String>,
}

/// One flow run, shared by its flow instance and its task instances.
pub struct FlowScope {
    pub(crate) orch: Arc<Orchestrator>,
    pub(crate) component: Arc<LoadedComponent>,
    pub(crate) settings: RunSettings,
    /// The engine's limits with the run's own applied.
    pub(crate) limits: Limits,
    pub id: String,
    pub name: String,
    pub flow_name: String,
    /// How the guest knows the flow (its function, else its name).
    pub flow_key: String,
    pub parameters: Value,
    pub(crate) parameters_json: String,
    pub tags: Vec<String>,
    pub parent_flow_run_id: Option<String>,
    pub(crate) depth: u32,
    /// Whether prints are logged: the flow's `log_prints`, else its parent's.
    pub(crate) log_prints: bool,
    /// The name the run gave itself with its run-name function.
    pub(crate) renamed: Mutex<Option<String>>,
    /// The flow's task runner: how many task runs the flow submitted run at once, in
    /// submission order (the semaphore is fair). `None`: no bound but the node's.
    pub(crate) task_runner: Option<Arc<tokio::sync::Semaphore>>,
    pub(crate) attempt: AtomicU32,
    pub(crate) calls: Mutex<Calls>,
    /// The transactions of the current execution.
    pub(crate) transactions: Mutex<super::transactions::Transactions>,
    log_bytes: AtomicUsize,
    log_lines: AtomicUsize,
    log_capped: AtomicBool,
    /// The run's log rate: lines it may still write now, refilled at
    /// `Limits::log_lines_per_second`, and lines dropped since the last notice.
    log_rate: Mutex<LogRate>,
    /// Task runs of this run started with submit or map that are in progress at once
    /// (`Limits::max_active_task_runs`); the rest wait, cheaply, for their turn. Each
    /// run has its own: one run's backlog does not hold up another's tasks.
    pub(crate) admission: Arc<tokio::sync::Semaphore>,
    /// Bytes the host keeps for this run (its task runs, their arguments and results),
    /// taken from the process's memory budget and given back when the run ends.
    host_bytes: AtomicUsize,
    /// Artifacts this run created, and their bytes.
    pub(crate) artifacts: AtomicUsize,
    pub(crate) artifact_bytes: AtomicUsize,
    interrupt: Mutex<Option<Interrupt>>,
    /// The workspace the run belongs to (its quotas, memory, CPU meter and storage).
    pub(crate) tenant: Option<Arc<super::tenants::Tenant>>,
    /// Set once the workspace's storage quota stopped the run's logs.
    storage_capped: AtomicBool,
    /// Set by whoever writes the run's final state, so it is written once.
    ended: AtomicBool,
}

impl FlowScope {
    /// The scope of one execution of the flow run `record` of flow `def`, `depth`
    /// subflow levels down, under a parent that logs prints or not.
    pub(crate) fn new(
        orch: Arc<Orchestrator>,
        component: Arc<LoadedComponent>,
        settings: RunSettings,
        record: &crate::store::FlowRunRecord,
        def: &crate::model::manifest::Definition,
        depth: u32,
        parent_log_prints: bool,
    ) -> Self {
        let mut limits = orch.engine.limits().clone();
        if let Some(m) = settings.memory_bytes {
            limits.memory_bytes = limits.memory_bytes.min(m);
        }
        // A workspace's runs share its memory quota and CPU meter.
        let tenant = settings
            .workspace_id
            .as_deref()
            .map(|ws| orch.tenants.get(ws));
        if let Some(t) = &tenant {
            limits.memory_budget = t.memory.clone();
            limits.cpu_meter = Some(t.cpu.clone());
        }
        let log_rate = Mutex::new(LogRate::new(limits.log_lines_per_second));
        let admission = Arc::new(tokio::sync::Semaphore::new(limits.max_active_task_runs));
        Self {
            orch,
            component,
            settings,
            limits,
            id: record.id.clone(),
            name: record.name.clone(),
            flow_name: def.name.clone(),
            flow_key: def.key().to_owned(),
            parameters_json: record.parameters.to_string(),
            parameters: record.parameters.clone(),
            tags: record.tags.clone(),
            parent_flow_run_id: record.parent_flow_run_id.clone(),
            depth,
            log_prints: def.options.log_prints_under(parent_log_prints),
            renamed: Mutex::new(None),
            task_runner: def
                .options
                .max_workers
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize))),
            attempt: AtomicU32::new(0),
            calls: Mutex::new(Calls::default()),
            transactions: Mutex::new(Default::default()),
            log_bytes: AtomicUsize::new(0),
            log_lines: AtomicUsize::new(0),
            log_capped: AtomicBool::new(false),
            log_rate,
            admission,
            host_bytes: AtomicUsize::new(0),
            artifacts: AtomicUsize::new(0),
            artifact_bytes: AtomicUsize::new(0),
            interrupt: Mutex::new(None),
            tenant,
            storage_capped: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        }
    }

    /// The run's name: as its run-name function renamed it, else as created.
    pub(crate) fn display_name(&self) -> String {
        self.renamed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| self.name.clone())
    }

    /// Takes `bytes` the host will keep for this run, within the run's limit and the
    /// process's memory budget; past either, the run fails (it is interrupted) with a
    /// failure saying which.
    pub(crate) fn charge_host(&self, bytes: usize) -> Result<(), Box<Failure>> {
        let limit = self.limits.max_run_host_bytes;
        let used = self.host_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let refused = if used > limit {
            Some(format!(
                "the flow run keeps more than its limit of {} MiB on the host (task runs, their \
                 arguments and results); start fewer task runs at once or pass smaller values",
                limit >> 20
            ))
        } else if let Err(refused) = self.limits.memory_budget.take_or_refuse(bytes) {
            Some(if refused.is_nested() {
                format!(
                    "the workspace's memory quota ({} MiB, shared by its runs) is in use; the \
                     run could not start more task runs",
                    refused.limit() >> 20
                )
            } else {
                format!(
                    "the server's memory budget ({} MiB, shared by every run) is in use; the \
                     run could not start more task runs",
                    refused.limit() >> 20
                )
            })
        } else {
            None
        };
        match refused {
            None => Ok(()),
            Some(message) => {
                self.host_bytes.fetch_sub(bytes, Ordering::Relaxed);
                let failure = Failure::permanent(FailureKind::Limit, message);
                self.interrupt(Interrupt::Fail(failure.clone()));
                Err(Box::new(failure))
            }
        }
    }

    /// Counts `bytes` the host keeps for this run that cannot be refused (a result that
    /// came back): later charges see them.
    pub(crate) fn note_host(&self, bytes: usize) {
        self.host_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.limits.memory_budget.take(bytes);
    }

    /// Counts `bytes` the run stored (a result) against its workspace's storage.
    pub(crate) fn note_stored(&self, bytes: usize) {
        if let Some(t) = &self.tenant {
            t.note_storage(bytes);
        }
    }

    /// Who this run is when it asks for task slots.
    pub(crate) fn holder(&self) -> super::slots::Holder {
        super::slots::Holder {
            workspace: self.settings.workspace_id.as_deref().unwrap_or("").into(),
            run: self.id.as_str().into(),
        }
    }

    pub(crate) fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new execution of the flow: positions from zero, replaying `replay`.
    pub(crate) fn begin_execution(&self, attempt: u32, replay: HashMap<i64, Recorded>) {
        self.attempt.store(attempt, Ordering::Relaxed);
        let mut calls = self.calls();
        *calls = Calls {
            replay,
            progress_artifacts: std::mem::take(&mut calls.progress_artifacts),
            ..Calls::default()
        };
        drop(calls);
        *self.transactions() = Default::default();
        *self.interrupt.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Stops the current execution from the host's side (the first interrupt wins).
    pub(crate) fn interrupt(&self, why: Interrupt) {
        let mut slot = self.interrupt.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(why);
        }
    }

    pub(crate) fn take_interrupt(&self) -> Option<Interrupt> {
        self.interrupt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Claims the writing of the run's final state; false when it was written already.
    pub(crate) fn claim_end(&self) -> bool {
        !self.ended.swap(true, Ordering::AcqRel)
    }

    /// Compares a call with what an earlier execution recorded at its position. Returns
    /// the record to replay, `None` to run the call, or the failure of a replay mismatch
    /// (which also interrupts the execution: the run fails whatever the flow does).
    pub(crate) fn replay_at(
        &self,
        position: i64,
        call: Call<'_>,
    ) -> Result<Option<Recorded>, Box<Failure>> {
        let mut calls = self.calls();
        let Some(recorded) = calls.replay.get(&position) else {
            calls.diverged = true;
            return Ok(None);
        };
        if calls.fresh_depth > 0 && !matches!(call, Call::Transaction) {
            calls.diverged = true;
            return Ok(None);
        }
        if !call.same_kind_and_name(recorded) {
            if calls.diverged {
                return Ok(None);
            }
            let failure = Failure::permanent(
                FailureKind::ReplayMismatch,
                format!(
                    "replay mismatch at call {position}: the recorded run called {} there, \
                     this run called {} (the flow's code changed or it is not deterministic)",
                    recorded.describe(),
                    call.describe()
                ),
            );
            drop(calls);
            self.interrupt(Interrupt::Fail(failure.clone()));
            return Err(Box::new(failure));
        }
        if let (Call::Task { name, arguments }, Recorded::Task { input_hash, .. }) =
            (call, recorded)
        {
            let args: Value = serde_json::from_str(arguments).unwrap_or(Value::Null);
            let hash = super::cache::input_hash(&super::cache::canonical_json(&args));
            if &hash != input_hash {
                calls.diverged = true;
                drop(calls);
                self.log(
                    None,
                    LogLevel::Warning,
                    format!(
                        "call {position} to task '{name}' has other inputs than when it was \
                         recorded; running it again"
                    ),
                );
                return Ok(None);
            }
        }
        Ok(Some(recorded.clone()))
    }

    /// The next call position and the run's default name for a call of `task`
    /// ("add-0", "add-1", ...).
    pub(crate) fn next_call(&self, name: &str) -> (i64, u64) {
        let mut calls = self.calls();
        let position = calls.next_position;
        calls.next_position += 1;
        let counter = calls.name_counters.entry(name.to_owned()).or_insert(0);
        let n = *counter;
        *counter += 1;
        (position, n)
    }

    /// The next call position, for calls that have no run name (pauses).
    pub(crate) fn next_position(&self) -> i64 {
        let mut calls = self.calls();
        let position = calls.next_position;
        calls.next_position += 1;
        position
    }

    /// A name counter only, for calls that have no position (tasks called from tasks).
    pub(crate) fn next_name_index(&self, name: &str) -> u64 {
        let mut calls = self.calls();
        let counter = calls.name_counters.entry(name.to_owned()).or_insert(0);
        let n = *counter;
        *counter += 1;
        n
    }

    /// Writes a log line of this run (or of one of its task attempts), within the
    /// run's log budget (bytes, each line's row counted, and lines) and its log rate:
    /// past the budget one notice is written and the rest dropped; lines over the rate
    /// are dropped and counted in a notice written with the next line that fits.
    pub(crate) fn log(&self, task: Option<&TaskAttempt>, level: LogLevel, message: String) {
        if self.log_capped.load(Ordering::Relaxed) {
            return;
        }
        let dropped = match self
            .log_rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit()
        {
            Some(dropped) => dropped,
            None => return,
        };
        if dropped > 0 {
            let rate = self.limits.log_lines_per_second;
            self.write_log(
                None,
                LogLevel::Warning,
                format!("{dropped} log lines were dropped: a run writes at most {rate} a second"),
            );
        }
        self.write_log(task, level, message);
    }

    fn write_log(&self, task: Option<&TaskAttempt>, level: LogLevel, message: String) {
        if self.log_capped.load(Ordering::Relaxed) {
            return;
        }
        let limits = &self.limits;
        let cost = message.len() + limits.log_line_overhead;
        if let Some(t) = &self.tenant {
            if let Some(mb) = t.storage_full() {
                if self.storage_capped.swap(true, Ordering::Relaxed) {
                    return;
                }
                // The notice itself is written (and counted): one per run.
                let notice = format!(
                    "the workspace's storage quota ({mb} MiB of logs, artifacts and results) \
                     is used; further logs of this run are dropped"
                );
                t.note_storage(notice.len() + limits.log_line_overhead);
                self.orch.store.write(Write::Log(LogRecord {
                    flow_run_id: self.id.clone(),
                    task_run_id: None,
                    level: LogLevel::Warning.as_str().to_owned(),
                    message: notice,
                    timestamp: Utc::now(),
                }));
                return;
            }
            t.note_storage(cost);
        }
        let bytes = self.log_bytes.fetch_add(cost, Ordering::Relaxed) + cost;
        let lines = self.log_lines.fetch_add(1, Ordering::Relaxed) + 1;
        let (level, message) =
            if bytes > limits.max_log_bytes_per_run || lines > limits.max_log_lines_per_run {
                if self.log_capped.swap(true, Ordering::Relaxed) {
                    return;
                }
                (
                    LogLevel::Warning,
                    format!(
                        "log limit of {} lines or {} bytes (each line counting {} bytes beyond \
                         its message) reached; further logs of this run are dropped",
                        limits.max_log_lines_per_run,
                        limits.max_log_bytes_per_run,
                        limits.log_line_overhead
                    ),
                )
            } else {
                (level, message)
            };
        self.orch.emit(|| super::Event::Log {
            flow_run_name: self.name.clone(),
            task_run_name: task.map(|t| t.task_run_name.clone()),
            level,
            message: message.clone(),
        });
        self.orch.store.write(Write::Log(LogRecord {
            flow_run_id: self.id.clone(),
            task_run_id: task.map(|t| t.task_run_id.clone()),
            level: level.as_str().to_owned(),
            message,
            timestamp: Utc::now(),
        }));
    }
}

/// A token bucket of log lines: `rate` a second, bursts of ten seconds' worth.
pub(crate) struct LogRate {
    rate: f64,
    tokens: f64,
    last: std::time::Instant,
    dropped: u64,
}

impl LogRate {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: rate * 10.0,
            last: std::time::Instant::now(),
            dropped: 0,
        }
    }

    /// `Some(lines dropped since the last admitted one)`, or `None`: drop this one.
    fn admit(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 10.0);
        self.last = now;
        if self.tokens < 1.0 {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.dropped))
    }
}

impl Drop for FlowScope {
    fn drop(&mut self) {
        self.limits
            .memory_budget
            .give(self.host_bytes.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outcome_slot_gives_what_was_sent_or_says_none_came() {
        let json = |o: &Arc<TaskOutcome>| serde_json::to_value(&**o).unwrap();
        // A waiter that came first is woken; one that comes later finds it at once.
        let (tx, rx) = OutcomeTx::new();
        let waiter = tokio::spawn({
            let rx = rx.clone();
            async move { rx.wait("t1").await }
        });
        tokio::task::yield_now().await;
        let completed = Arc::new(TaskOutcome {
            task_run_id: "t1".into(),
            state: State::completed(),
            value: Some("42".into()),
            failure: None,
        });
        tx.send(completed.clone());
        assert_eq!(json(&waiter.await.unwrap().unwrap()), json(&completed));
        // A plain completion is kept compact, and given back the same.
        assert!(matches!(rx.value.get(), Some(Kept::Completed { .. })));
        assert_eq!(json(&rx.wait("t1").await.unwrap()), json(&completed));
        drop(tx);
        assert_eq!(
            json(&rx.wait("t1").await.unwrap()),
            json(&completed),
            "sent before the drop"
        );

        // Anything else is kept whole.
        let (tx, rx) = OutcomeTx::new();
        let named = Arc::new(TaskOutcome {
            task_run_id: "t2".into(),
            state: State::named(crate::model::state::StateType::Completed, "Cached"),
            value: Some("1".into()),
            failure: None,
        });
        tx.send(named.clone());
        assert_eq!(json(&rx.wait("t2").await.unwrap()), json(&named));
        assert!(matches!(rx.value.get(), Some(Kept::Other(_))));

        // Dropped without an outcome: waiters, early or late, get none.
        let (tx, rx) = OutcomeTx::new();
        let waiter = tokio::spawn({
            let rx = rx.clone();
            async move { rx.wait("t3").await }
        });
        tokio::task::yield_now().await;
        drop(tx);
        assert!(waiter.await.unwrap().is_none());
        assert!(rx.wait("t3").await.is_none());
    }

    fn task(name: &str) -> Recorded {
        Recorded::Task {
            name: name.into(),
            input_hash: String::new(),
            run_name: String::new(),
            cache_key: None,
            outcome: Arc::new(TaskOutcome {
                task_run_id: "t".into(),
                state: State::completed(),
                value: None,
                failure: None,
            }),
        }
    }

    #[test]
    fn the_log_rate_admits_a_burst_then_drops_and_counts() {
        let mut rate = LogRate::new(100);
        for _ in 0..1000 {
            assert_eq!(rate.admit(), Some(0));
        }
        assert_eq!(rate.admit(), None);
        assert_eq!(rate.admit(), None);
        rate.last -= std::time::Duration::from_millis(100);
        assert_eq!(rate.admit(), Some(2));
    }

    #[test]
    fn calls_match_records_of_their_kind_and_name() {
        let double = Call::Task {
            name: "double",
            arguments: "{}",
        };
        assert!(double.same_kind_and_name(&task("double")));
        assert!(!double.same_kind_and_name(&task("triple")));
        assert!(Call::Pause.same_kind_and_name(&Recorded::Pause {
            input: "null".into()
        }));
        assert!(!Call::Pause.same_kind_and_name(&task("double")));
        assert!(!Call::Flow { name: "double" }.same_kind_and_name(&task("double")));
    }

    #[test]
    fn mismatches_name_both_calls() {
        assert_eq!(task("double").describe(), "task `double`");
        assert_eq!(Call::Flow { name: "child" }.describe(), "subflow `child`");
        assert_eq!(Call::Pause.describe(), "a pause");
        assert_eq!(
            Recorded::Pause {
                input: "null".into()
            }
            .describe(),
            "a pause"
        );
    }
}
