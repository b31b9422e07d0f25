//! The state machine of flow runs and task runs: Prefect's semantics (states, retries,
//! timeouts, caching, results, hooks, final-state rules) over sandboxed instances.
//!
//! A flow run is one instance alive for the run ([`flow_run`]); every task attempt is a
//! fresh instance ([`task_run`]). Each call a flow makes gets a stable position, and
//! completed calls are recorded by position, so a flow that runs again (a flow retry, a
//! restart, a resume after a suspend) replays completed work instead of redoing it.
//! Pauses ([`pause`]) are such calls too.

pub mod cache;
mod events;
mod flow_run;
mod hooks;
mod host_calls;
mod limits;
pub mod metrics;
pub mod names;
pub mod params;
pub mod pause;
mod plugins;
mod scope;
pub(crate) mod slots;
mod task_run;
pub mod tenants;
mod transactions;
mod transition;

pub use crate::model::failure::{Failure, FailureKind};
pub use crate::model::log::LogLevel;
pub use crate::model::run::{
    CallOptions, Dependency, FlowOutcome, PauseRequest, TaskAttempt, TaskOutcome,
};
pub use events::{Event, EventSink};
pub use flow_run::{FlowRequest, PrepareError, RESUMING, RunError};
pub use pause::SUSPENDED;
pub use plugins::{Plugin, PluginSource};
pub use scope::{FlowScope, RunSettings, Stop};

use crate::host::Engine;
use crate::store::Store;
use std::sync::Arc;

/// Runs flows. Cheap to share: hold it in an `Arc`.
pub struct Orchestrator {
    pub(crate) engine: Arc<Engine>,
    pub(crate) store: Store,
    events: Option<EventSink>,
    /// Instances available to task attempts and hooks (the rest are kept for flows, so
    /// a flow waiting on its tasks can never starve them of instances), shared fairly
    /// between workspaces and runs.
    pub(crate) task_slots: Arc<slots::TaskSlots>,
    /// Workspaces met by this node: their quotas, memory, CPU meters and storage.
    pub tenants: tenants::Tenants,
    pub(crate) durations: metrics::Histogram,
    /// Opens workspace secrets for guests; `None` where there are none (`weir run`).
    pub(crate) secrets: Option<crate::secrets::SecretBox>,
    /// Starts runs of deployments for guests (the server's executor).
    runner: std::sync::OnceLock<std::sync::Weak<dyn DeploymentRunner>>,
    /// Finds the plugins flows call (the server's executor).
    plugins: std::sync::OnceLock<std::sync::Weak<dyn PluginSource>>,
    /// Paused instances of this process, woken by resumes.
    pub(crate) waiters: pause::Waiters,
    /// The node whose heartbeat vouches for the concurrency slots runs take here (set by
    /// the executor; a process without one uses its own id, which no heartbeat keeps).
    node_id: std::sync::OnceLock<String>,
    /// Woken when slots of a concurrency limit are given back on this node.
    pub(crate) limits_released: tokio::sync::Notify,
}

/// Starts a run of a deployment on behalf of a flow.
pub trait DeploymentRunner: Send + Sync {
    fn run_deployment<'a>(
        &'a self,
        workspace_id: &'a str,
        deployment: &'a str,
        parameters: serde_json::Map<String, serde_json::Value>,
        scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>;

    /// Creates a background run of a task of a deployment's component (by deployment
    /// id); returns the new run's id.
    fn run_task<'a>(
        &'a self,
        workspace_id: &'a str,
        deployment_id: &'a str,
        task: &'a str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>;
}

impl Orchestrator {
    pub fn new(engine: Arc<Engine>, store: Store) -> Arc<Self> {
        Self::with_events(engine, store, None)
    }

    /// An orchestrator that reports every run event to `events` as it happens.
    pub fn with_events(engine: Arc<Engine>, store: Store, events: Option<EventSink>) -> Arc<Self> {
        let limits = engine.limits();
        let slots = limits.max_instances - limits.reserved_for_flows();
        let task_slots = slots::TaskSlots::new(
            slots as usize,
            limits.task_slot_share_per_run,
            limits.task_slot_share_per_workspace,
        );
        let tenants = tenants::Tenants::new(
            limits.memory_budget.clone(),
            task_slots.clone(),
            limits.epoch_tick.as_millis() as u64,
        );
        Arc::new(Self {
            engine,
            store,
            events,
            tenants,
            task_slots,
            durations: metrics::Histogram::default(),
            secrets: None,
            runner: std::sync::OnceLock::new(),
            plugins: std::sync::OnceLock::new(),
            waiters: pause::Waiters::default(),
            node_id: std::sync::OnceLock::new(),
            limits_released: tokio::sync::Notify::new(),
        })
    }

    /// An orchestrator whose guests can read their workspace's secrets.
    pub fn with_secrets(
        engine: Arc<Engine>,
        store: Store,
        secrets: crate::secrets::SecretBox,
    ) -> Arc<Self> {
        let mut orch = Arc::into_inner(Self::new(engine, store)).expect("just created");
        orch.secrets = Some(secrets);
        Arc::new(orch)
    }

    /// Lets guests start runs of deployments through `runner`.
    pub fn set_deployment_runner(&self, runner: std::sync::Weak<dyn DeploymentRunner>) {
        let _ = self.runner.set(runner);
    }

    pub fn set_plugin_source(&self, source: std::sync::Weak<dyn PluginSource>) {
        let _ = self.plugins.set(source);
    }

    pub(crate) fn plugin_source(&self) -> Option<Arc<dyn PluginSource>> {
        self.plugins.get().and_then(std::sync::Weak::upgrade)
    }

    /// Sets the node id concurrency slots are taken under (the executor's).
    pub fn set_node_id(&self, node_id: &str) {
        let _ = self.node_id.set(node_id.to_owned());
    }

    pub(crate) fn node_id(&self) -> &str {
        self.node_id
            .get_or_init(|| format!("process-{}", uuid::Uuid::now_v7()))
    }

    pub(crate) fn deployment_runner(&self) -> Option<Arc<dyn DeploymentRunner>> {
        self.runner.get().and_then(std::sync::Weak::upgrade)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Instances running task attempts, hooks or retry conditions right now.
    pub fn task_instances_in_use(&self) -> usize {
        self.task_slots.in_use()
    }

    /// Durations of finished task runs.
    pub fn task_durations(&self) -> &metrics::Histogram {
        &self.durations
    }

    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(sink) = &self.events {
            sink(&event());
        }
    }
}
