//! What every instance of one flow run shares: the run's identity, its call positions,
//! the outcomes of its task runs (for futures and `wait_for`), and its log budget.

use super::task_run::TaskOutcome;
use super::{LogLevel, Orchestrator};
use crate::engine::LoadedComponent;
use crate::limits::Limits;
use crate::store::{LogRecord, Write};
use chrono::Utc;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
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
        outcome: Arc<TaskOutcome>,
    },
    Flow {
        name: String,
        outcome: Box<super::FlowOutcome>,
    },
}

pub(crate) type OutcomeRx = watch::Receiver<Option<Arc<TaskOutcome>>>;

#[derive(Default)]
pub(crate) struct Calls {
    next_position: i64,
    name_counters: HashMap<String, u64>,
    pub(crate) replay: HashMap<i64, Recorded>,
    /// Outcome of every task run of this execution, by task run id.
    pub(crate) outcomes: HashMap<String, OutcomeRx>,
    /// Task runs started with submit or map, still to be joined.
    pub(crate) running: Vec<(String, JoinHandle<()>)>,
    /// Progress artifacts this run created (only those may be updated).
    pub(crate) progress_artifacts: HashSet<String>,
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
    pub parameters: Value,
    pub(crate) parameters_json: String,
    pub tags: Vec<String>,
    pub parent_flow_run_id: Option<String>,
    pub(crate) depth: u32,
    pub(crate) log_prints: bool,
    pub(crate) attempt: AtomicU32,
    pub(crate) calls: Mutex<Calls>,
    log_bytes: AtomicUsize,
    log_capped: AtomicBool,
}

/// One task attempt.
pub struct TaskAttempt {
    pub task_run_id: String,
    pub task_run_name: String,
    pub task_name: String,
    pub attempt: u32,
    pub tags: Vec<String>,
    pub(crate) log_prints: bool,
}

impl FlowScope {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        orch: Arc<Orchestrator>,
        component: Arc<LoadedComponent>,
        settings: RunSettings,
        id: String,
        name: String,
        flow_name: String,
        parameters: Value,
        tags: Vec<String>,
        parent_flow_run_id: Option<String>,
        depth: u32,
        log_prints: bool,
    ) -> Self {
        let mut limits = orch.engine.limits().clone();
        if let Some(m) = settings.memory_bytes {
            limits.memory_bytes = limits.memory_bytes.min(m);
        }
        Self {
            orch,
            component,
            settings,
            limits,
            id,
            name,
            flow_name,
            parameters_json: parameters.to_string(),
            parameters,
            tags,
            parent_flow_run_id,
            depth,
            log_prints,
            attempt: AtomicU32::new(0),
            calls: Mutex::new(Calls::default()),
            log_bytes: AtomicUsize::new(0),
            log_capped: AtomicBool::new(false),
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

    /// A name counter only, for calls that have no position (tasks called from tasks).
    pub(crate) fn next_name_index(&self, name: &str) -> u64 {
        let mut calls = self.calls();
        let counter = calls.name_counters.entry(name.to_owned()).or_insert(0);
        let n = *counter;
        *counter += 1;
        n
    }

    pub(crate) fn replayed(&self, position: i64) -> Option<Recorded> {
        self.calls().replay.get(&position).cloned()
    }

    /// Writes a log line of this run (or of one of its task attempts), within the
    /// run's log budget: past it, one notice is written and the rest dropped.
    pub(crate) fn log(&self, task: Option<&TaskAttempt>, level: LogLevel, message: String) {
        if self.log_capped.load(Ordering::Relaxed) {
            return;
        }
        let limit = self.orch.engine.limits().max_log_bytes_per_run;
        let used = self.log_bytes.fetch_add(message.len(), Ordering::Relaxed) + message.len();
        let (level, message) = if used > limit {
            if self.log_capped.swap(true, Ordering::Relaxed) {
                return;
            }
            (
                LogLevel::Warning,
                format!("log limit of {limit} bytes reached; further logs of this run are dropped"),
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
