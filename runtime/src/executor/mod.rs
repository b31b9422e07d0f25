//! The executor: runs deployment flow runs when they are due, within pool, deployment
//! and tag concurrency limits; cancels them; puts them back on shutdown.
//!
//! Runs are leased. A node holds the runs it claimed: the ones it created due now, due
//! runs nobody holds (claimed every poll, `FOR UPDATE SKIP LOCKED` on PostgreSQL), and
//! the runs of nodes that stopped heartbeating for longer than the lease (taken over:
//! a run that had started resumes by replay, its interrupted task runs end Crashed,
//! and after too many such restarts the run ends Crashed). Every claim raises the run's
//! fencing token, so a node that was presumed dead cannot write to a run it lost.
//!
//! Every pool is a push pool: the server executes its runs itself as soon as they are
//! due. A run waits (Scheduled) for its time, then for a slot under every limit that
//! applies to it; slots are counted in memory and released by a guard, however the run
//! ends. On shutdown, runs still waiting stay Scheduled and runs in progress get a grace
//! period, then are put back (Scheduled, "Rescheduled") to resume by replay at the next
//! start.

mod commands;
mod drive;
mod leases;
mod overlap;
mod pauses;
mod plugins;
pub(crate) use plugins::builtin_files;
mod shutdown;
mod slots;
mod trigger;

pub use commands::CommandError;
pub use slots::{SlotGuard, Slots};
pub use trigger::{PLUGIN_TAG, TriggerError, TriggerRequest};

use crate::host::{Engine, LoadedComponent};
use crate::model::clock::{Clock, SystemClock};
use crate::model::schedule::Overlap;
use crate::model::state::{State, StateType};
use crate::orchestrate::{FlowRequest, Orchestrator, PrepareError, RunSettings, Stop};
use crate::store::{DeploymentRecord, FlowRunRecord, RunKind, StateChange, Store, Write};
use chrono::Utc;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub struct Executor {
    orch: Arc<Orchestrator>,
    components_dir: PathBuf,
    slots: Arc<Slots>,
    /// Stop signals of the runs this executor holds (waiting or running).
    runs: Mutex<HashMap<String, watch::Sender<Stop>>>,
    /// Runs waiting for their time or a slot.
    waiting: AtomicUsize,
    /// Runs executing.
    active: AtomicUsize,
    idle: Notify,
    shutdown: watch::Sender<bool>,
    /// Flow runs executing at once on this node, whatever their pools say.
    max_active: usize,
    /// Runs under way (past their overlap check), by deployment.
    running: Mutex<HashMap<String, std::collections::HashSet<String>>>,
    /// Itself, for work that outlives a borrow (guests starting deployment runs).
    me: std::sync::OnceLock<std::sync::Weak<Executor>>,
    /// Pools and tag limits by workspace, and overlap policies by schedule, read at most
    /// once a second: thousands of runs due at once must not each query them.
    config: Mutex<ConfigCache>,
    node: NodeConfig,
    started: chrono::DateTime<Utc>,
    /// Times Late runs and timed-out pauses.
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct ConfigCache {
    workspaces: HashMap<String, (std::time::Instant, Arc<WorkspaceLimits>)>,
    overlaps: HashMap<String, (std::time::Instant, Overlap)>,
}

struct WorkspaceLimits {
    pools: HashMap<String, crate::store::PoolRecord>,
    /// Work queues by (pool, name); a pool's `default` queue is here once changed.
    queues: HashMap<(String, String), crate::store::WorkQueueRecord>,
    tags: Vec<crate::store::ConcurrencyLimitRecord>,
}

const CONFIG_TTL: Duration = Duration::from_secs(1);

/// Overlap policies change only through the API, which forgets them at once.
const OVERLAP_TTL: Duration = Duration::from_secs(60);

/// A run not started this long after its time shows as Late.
const LATE_AFTER: Duration = Duration::from_secs(5);

/// Slot key of the node-wide cap.
const NODE: &str = "node";

/// How a node takes part in leases.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id: a new one at every start unless given.
    pub node_id: String,
    /// A node silent this long is presumed dead, and its runs are taken over.
    pub lease_ttl: Duration,
    /// Takeovers of a started run (its node died) before it ends Crashed.
    pub max_crash_restarts: i64,
    /// How often the node claims due runs and looks for cancel requests.
    pub poll_interval: Duration,
    /// How long a trigger waits for its run to be stored before it answers that it
    /// cannot be (and withdraws it: a run refused is never created later).
    pub store_timeout: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: uuid::Uuid::now_v7().to_string(),
            lease_ttl: Duration::from_secs(30),
            max_crash_restarts: 3,
            poll_interval: Duration::from_secs(1),
            store_timeout: Duration::from_secs(5),
        }
    }
}

/// Runs claimed per query.
const CLAIM_BATCH: i64 = 1000;

impl Executor {
    /// Where uploaded components are kept, one file per digest.
    pub fn components_dir(&self) -> &std::path::Path {
        &self.components_dir
    }

    pub fn new(orch: Arc<Orchestrator>, components_dir: PathBuf, max_active: usize) -> Arc<Self> {
        Self::with_node(orch, components_dir, max_active, NodeConfig::default())
    }

    pub fn with_node(
        orch: Arc<Orchestrator>,
        components_dir: PathBuf,
        max_active: usize,
        node: NodeConfig,
    ) -> Arc<Self> {
        Self::with_clock(
            orch,
            components_dir,
            max_active,
            node,
            Arc::new(SystemClock),
        )
    }

    /// An executor that reads the time from `clock` where it times runs (a run shows
    /// as Late, a pause times out), as the scheduler does: tests move it instead of
    /// waiting. Leases and heartbeats keep the system clock (other nodes read them).
    pub fn with_clock(
        orch: Arc<Orchestrator>,
        components_dir: PathBuf,
        max_active: usize,
        node: NodeConfig,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let executor = Arc::new(Self {
            orch,
            components_dir,
            slots: Arc::default(),
            runs: Mutex::default(),
            waiting: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            shutdown: watch::channel(false).0,
            max_active,
            running: Mutex::default(),
            me: std::sync::OnceLock::new(),
            config: Mutex::default(),
            node,
            started: Utc::now(),
            clock,
        });
        let _ = executor.me.set(Arc::downgrade(&executor));
        let runner: Arc<dyn crate::orchestrate::DeploymentRunner> = executor.clone();
        executor.orch.set_deployment_runner(Arc::downgrade(&runner));
        let plugins: Arc<dyn crate::orchestrate::PluginSource> = executor.clone();
        executor.orch.set_plugin_source(Arc::downgrade(&plugins));
        executor.orch.set_node_id(executor.node_id());
        executor
    }

    pub fn store(&self) -> &Store {
        self.orch.store()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        self.orch.engine()
    }

    pub fn orchestrator(&self) -> &Arc<Orchestrator> {
        &self.orch
    }

    pub fn slots(&self) -> &Arc<Slots> {
        &self.slots
    }

    /// This node's id in leases.
    pub fn node_id(&self) -> &str {
        &self.node.node_id
    }

    pub fn node_config(&self) -> &NodeConfig {
        &self.node
    }

    /// Runs waiting for their time or a slot.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Flow runs this node executes at once; the rest wait their turn.
    pub fn max_active(&self) -> usize {
        self.max_active
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Flow runs of a workspace executing on this node (or waiting to start, holding
    /// their slots).
    pub fn runs_in_flight(&self, workspace_id: &str) -> usize {
        self.slots.in_use(&format!("workspace:{workspace_id}"))
    }

    /// Where a component's bytes live on disk.
    pub fn component_path(&self, digest: &str) -> PathBuf {
        self.components_dir.join(format!("{digest}.wasm"))
    }

    /// The loaded component, from memory or from its stored bytes.
    pub async fn component(&self, digest: &str) -> anyhow::Result<Arc<LoadedComponent>> {
        if let Some(c) = self.engine().loaded(digest) {
            return Ok(c);
        }
        let path = self.component_path(digest);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            // Another node sharing the database received it.
            Err(e) => match self.store().component_bytes(digest).await? {
                Some(bytes) => {
                    let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::now_v7()));
                    if tokio::fs::write(&tmp, &bytes).await.is_ok() {
                        let _ = tokio::fs::rename(&tmp, &path).await;
                    }
                    bytes
                }
                None => anyhow::bail!("component {digest} is not stored ({}): {e}", path.display()),
            },
        };
        Ok(self.engine().load(&bytes).await?)
    }

    /// Cancels a run this executor holds; false when it holds no such run.
    pub fn cancel(&self, run_id: &str) -> bool {
        match self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(run_id)
        {
            Some(tx) => {
                tx.send_replace(Stop::Cancel);
                true
            }
            None => false,
        }
    }

    fn stop(&self, run_id: &str, why: Stop) {
        if let Some(tx) = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(run_id)
        {
            tx.send_replace(why);
        }
    }
}

async fn until_stopped(rx: &mut watch::Receiver<Stop>) {
    if rx.wait_for(|s| *s != Stop::Go).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn until_stopped_node(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct ActiveGuard<'a>(&'a Executor);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
        self.0.idle.notify_waiters();
    }
}
