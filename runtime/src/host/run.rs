//! The flow run an instance serves, as the host functions see it: [`Run`], implemented
//! by the orchestrator's flow scope. The host functions charge the budget, convert
//! between WIT and Weir's types, and call it; what a call means is the orchestrator's.
//!
//! An `Err` of a `wasmtime::Result` here ends the instance (a trap): a replay mismatch,
//! a suspend. Errors the guest sees and handles are the inner `Result`s.

use crate::model::log::LogLevel;
use crate::model::run::{
    Artifact, CallOptions, FlowOutcome, LimitRequest, PauseRequest, TaskAttempt, TaskOutcome,
    TransactionOptions, TransactionState,
};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// Who a flow run is, for `context.current`.
pub struct RunInfo<'a> {
    pub flow_run_id: &'a str,
    /// The run's name (as renamed by its run-name function, once it was).
    pub flow_run_name: String,
    pub flow_name: &'a str,
    /// JSON text.
    pub parameters: &'a str,
    /// The attempt of the flow run's current execution.
    pub attempt: u32,
    pub tags: &'a [String],
    pub parent_flow_run_id: Option<&'a str>,
}

/// The flow run an instance serves, shared by its flow instance and its task instances.
///
/// `in_task` says that the caller is a task's instance rather than the flow's: a task's
/// task calls have no position in the run, and a task can neither start a subflow nor
/// pause. Task calls say instead how deep in task calls their caller is
/// (`caller_nesting`: 0 for the flow), and nest only so deep.
pub trait Run: Send + Sync {
    fn info(&self) -> RunInfo<'_>;

    /// Whether what the flow prints is logged at INFO (Prefect's `log_prints`, with the
    /// parent's setting when the flow leaves it unset).
    fn log_prints(&self) -> bool;

    /// Occupies slots of the workspace's concurrency limits for the flow run (or the task
    /// attempt `task`), waiting while they are full; the guard gives them back when dropped.
    fn occupy(
        self: Arc<Self>,
        task: Option<Arc<TaskAttempt>>,
        request: LimitRequest,
    ) -> BoxFuture<'static, Result<Box<dyn Send + Sync>, String>>;

    /// Takes slots of the workspace's rate limits, waiting for them to decay.
    fn rate_limit(
        self: Arc<Self>,
        task: Option<Arc<TaskAttempt>>,
        request: LimitRequest,
    ) -> BoxFuture<'static, Result<(), String>>;

    /// Opens a transaction of the flow run inside its innermost open one; returns its id.
    fn begin_transaction(
        self: Arc<Self>,
        options: TransactionOptions,
    ) -> BoxFuture<'static, Result<String, String>>;

    /// A transaction's key and state.
    fn transaction_info(&self, id: &str) -> Option<(Option<String>, TransactionState)>;

    /// Stores a value (JSON text) in a transaction.
    fn transaction_set(&self, id: &str, name: String, value: &str) -> Result<(), String>;

    /// A value of a transaction or of an enclosing one (JSON text).
    fn transaction_get(&self, id: &str, name: &str) -> Option<String>;

    /// Ends the innermost open transaction, committing it or rolling it back.
    fn end_transaction(
        self: Arc<Self>,
        id: String,
        ok: bool,
    ) -> BoxFuture<'static, Result<TransactionState, String>>;

    /// Renames the task run of `task`, or the flow run, to a name already checked.
    fn rename<'a>(
        &'a self,
        task: Option<&'a TaskAttempt>,
        name: String,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Hosts the run may reach over outbound HTTP.
    fn allowed_hosts(&self) -> &[String];

    /// Writes a log line of the run (or of one of its task attempts).
    fn log(&self, task: Option<&TaskAttempt>, level: LogLevel, message: String);

    /// Runs a task to its final state.
    fn call_task(
        self: Arc<Self>,
        task: String,
        arguments: String,
        options: CallOptions,
        caller_nesting: u32,
    ) -> BoxFuture<'static, wasmtime::Result<Arc<TaskOutcome>>>;

    /// Starts a task run concurrently with the caller; returns its id.
    fn submit_task(
        self: Arc<Self>,
        task: String,
        arguments: String,
        options: CallOptions,
        caller_nesting: u32,
    ) -> BoxFuture<'static, wasmtime::Result<String>>;

    /// Starts one task run per item of `arguments`; returns their ids, in order.
    fn map_task(
        self: Arc<Self>,
        task: String,
        arguments: Vec<String>,
        options: CallOptions,
        caller_nesting: u32,
    ) -> BoxFuture<'static, wasmtime::Result<Vec<String>>>;

    /// Waits for the final state of a task run this run started.
    fn wait_task<'a>(
        &'a self,
        task_run_id: &'a str,
    ) -> BoxFuture<'a, wasmtime::Result<Arc<TaskOutcome>>>;

    /// Runs a subflow to its final state.
    fn call_flow(
        self: Arc<Self>,
        flow: String,
        parameters: String,
        in_task: bool,
    ) -> BoxFuture<'static, wasmtime::Result<FlowOutcome>>;

    /// Pauses (or suspends) the run; returns the resume's input (JSON text).
    fn pause(
        self: Arc<Self>,
        request: PauseRequest,
        in_task: bool,
    ) -> BoxFuture<'static, wasmtime::Result<Result<String, String>>>;

    /// Creates an artifact of the run (or of the task attempt); returns its id.
    fn create_artifact(
        &self,
        task: Option<&TaskAttempt>,
        artifact: Artifact,
    ) -> Result<String, String>;

    /// Sets the value of a progress artifact this run created.
    fn update_progress(&self, id: String, progress: f64) -> Result<(), String>;

    /// A variable of the run's workspace.
    fn variable(&self, name: String) -> BoxFuture<'_, Option<String>>;

    /// A secret of the run's workspace, opened.
    fn secret(&self, name: String) -> BoxFuture<'_, Option<String>>;

    /// The secrets the plugins the run calls may read (its deployment's grant).
    fn plugin_secrets(&self) -> &[String];

    /// Set when all the run's code is a plugin's (`notify@1`).
    fn plugin(&self) -> Option<Arc<str>>;

    /// Starts a background run of a task of the run's component, in the run's deployment;
    /// returns its id.
    fn delay_task(
        self: Arc<Self>,
        task: String,
        arguments: String,
    ) -> BoxFuture<'static, Result<String, String>>;

    /// Starts a run of a deployment of the run's workspace; returns its id.
    fn run_deployment(
        &self,
        deployment: String,
        parameters: String,
        scheduled_at: Option<String>,
    ) -> BoxFuture<'_, Result<String, String>>;
}
