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

mod pauses;

use crate::engine::{Engine, LoadedComponent};
use crate::orchestrate::{FlowRequest, Orchestrator, PrepareError, RunSettings, Stop};
use crate::schedule::Overlap;
use crate::state::{State, StateType};
use crate::store::{
    DeploymentRecord, FlowRunRecord, InsertStage, NotStored, RunKind, StateChange, Store,
    StoreError, Unavailable, Write,
};
use chrono::Utc;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// A run of a deployment to create.
#[derive(Debug, Default)]
pub struct TriggerRequest {
    /// Merged over the deployment's default parameters.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// The same key returns the same run.
    pub idempotency_key: Option<String>,
    /// Run at this time instead of now.
    pub scheduled_at: Option<chrono::DateTime<Utc>>,
    pub tags: Vec<String>,
    pub schedule_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("deployment '{0}' is paused")]
    Paused(String),
    #[error("invalid parameters: {}", .0.join("; "))]
    InvalidParameters(Vec<String>),
    #[error("{0}")]
    Invalid(String),
    /// The run cannot be stored now (the database is away or behind): nothing was
    /// created; ask again later.
    #[error("the run cannot be stored now: {0}")]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Counts runs per limit key and hands out slots while every count is under its limit.
#[derive(Default)]
pub struct Slots {
    counts: Mutex<HashMap<String, usize>>,
    changed: Notify,
}

/// Held while a run occupies its slots; dropping it frees them.
pub struct SlotGuard {
    slots: Arc<Slots>,
    keys: Vec<String>,
}

impl SlotGuard {
    /// Gives the slots back without waking the runs waiting for them (the run could
    /// not start for another reason, which a wake-up would not change).
    fn give_back_quietly(mut self) {
        self.give_back();
        self.keys.clear();
    }

    fn give_back(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            if let Some(n) = counts.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(k);
                }
            }
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            self.give_back();
            self.slots.changed.notify_waiters();
        }
    }
}

/// Slots a run holds in the database (nodes sharing PostgreSQL count them together);
/// dropping it gives them back.
struct SharedSlots {
    store: Store,
    run_id: String,
    node: String,
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        let (store, run_id, node) = (
            self.store.clone(),
            std::mem::take(&mut self.run_id),
            std::mem::take(&mut self.node),
        );
        tokio::spawn(async move {
            if let Err(e) = store.release_slots(&run_id, &node).await {
                tracing::error!("cannot give back the slots of flow run {run_id}: {e}");
            }
        });
    }
}

impl Slots {
    fn try_take(self: &Arc<Self>, wants: &[(String, usize)]) -> Option<SlotGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if wants
            .iter()
            .any(|(k, limit)| counts.get(k).copied().unwrap_or(0) >= *limit)
        {
            return None;
        }
        for (k, _) in wants {
            *counts.entry(k.clone()).or_insert(0) += 1;
        }
        Some(SlotGuard {
            slots: self.clone(),
            keys: wants.iter().map(|(k, _)| k.clone()).collect(),
        })
    }

    /// Runs holding the slot `key` right now.
    pub fn in_use(&self, key: &str) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

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
}

#[derive(Default)]
struct ConfigCache {
    workspaces: HashMap<String, (std::time::Instant, Arc<WorkspaceLimits>)>,
    overlaps: HashMap<String, (std::time::Instant, Overlap)>,
}

struct WorkspaceLimits {
    pools: HashMap<String, crate::store::PoolRecord>,
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
    pub fn new(orch: Arc<Orchestrator>, components_dir: PathBuf, max_active: usize) -> Arc<Self> {
        Self::with_node(orch, components_dir, max_active, NodeConfig::default())
    }

    pub fn with_node(
        orch: Arc<Orchestrator>,
        components_dir: PathBuf,
        max_active: usize,
        node: NodeConfig,
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
        });
        let _ = executor.me.set(Arc::downgrade(&executor));
        let runner: Arc<dyn crate::orchestrate::DeploymentRunner> = executor.clone();
        executor.orch.set_deployment_runner(Arc::downgrade(&runner));
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

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
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

    /// Takes a stored run this node claimed: it runs when due and when its slots are
    /// free. Its writes carry the claim's fencing token until it ends.
    pub fn submit(self: &Arc<Self>, run: FlowRunRecord, deployment: Option<DeploymentRecord>) {
        let (tx, rx) = watch::channel(Stop::Go);
        let mine = tx.clone();
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run.id.clone(), tx);
        let fence = (run.node_id.as_deref() == Some(self.node_id())).then_some(run.fence);
        if let Some(fence) = fence {
            self.store().hold(&run.id, fence);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            let id = run.id.clone();
            this.clone().drive(run, deployment, rx).await;
            let _ = this.store().flush().await;
            if let Some(fence) = fence {
                this.store().unhold(&id, fence);
            }
            // A suspended run resumed at once may be held again already: keep that one.
            let mut runs = this.runs.lock().unwrap_or_else(|e| e.into_inner());
            if runs.get(&id).is_some_and(|tx| tx.same_channel(&mine)) {
                runs.remove(&id);
            }
        });
    }

    /// Whether a run due at `at` is claimed by the node creating it (else the node
    /// that claims due runs first takes it, shortly before it is due).
    fn due_soon(&self, at: Option<chrono::DateTime<Utc>>) -> bool {
        at.is_none_or(|t| t <= Utc::now() + self.node.poll_interval * 2)
    }

    /// Creates a run of a deployment (validated, stored durably) and takes it. Returns
    /// the run and whether it is new (an idempotency key may return an earlier one).
    pub async fn trigger(
        self: &Arc<Self>,
        deployment: &DeploymentRecord,
        request: TriggerRequest,
    ) -> Result<(FlowRunRecord, bool), TriggerError> {
        let mut out = self.trigger_many(deployment, vec![request]).await?;
        Ok(out.pop().expect("one request in, one run out"))
    }

    /// [`Executor::trigger`] for many runs of one deployment, stored in one transaction
    /// when they have idempotency keys (the scheduler's case).
    pub async fn trigger_many(
        self: &Arc<Self>,
        deployment: &DeploymentRecord,
        requests: Vec<TriggerRequest>,
    ) -> Result<Vec<(FlowRunRecord, bool)>, TriggerError> {
        if deployment.paused {
            return Err(TriggerError::Paused(deployment.name.clone()));
        }
        let component = self.component(&deployment.component_digest).await?;
        let mut records = Vec::with_capacity(requests.len());
        for request in requests {
            if request
                .idempotency_key
                .as_deref()
                .is_some_and(|k| k.is_empty() || k.len() > 256)
            {
                return Err(TriggerError::Invalid(
                    "'idempotency_key' must be 1 to 256 characters".into(),
                ));
            }
            let mut parameters = deployment
                .parameters
                .as_object()
                .cloned()
                .unwrap_or_default();
            parameters.extend(request.parameters);
            let mut tags = deployment.tags.clone();
            tags.extend(request.tags);
            let flow_request = FlowRequest {
                tags,
                workspace_id: Some(deployment.workspace_id.clone()),
                deployment_id: Some(deployment.id.clone()),
                idempotency_key: request.idempotency_key,
                expected_start: request.scheduled_at,
                schedule_id: request.schedule_id,
                ..FlowRequest::new(
                    component.clone(),
                    &deployment.flow,
                    serde_json::Value::Object(parameters),
                )
            };
            match self
                .orch
                .prepare_flow_run(&flow_request, State::new(StateType::Scheduled))
            {
                Ok(mut r) => {
                    if self.due_soon(r.expected_start) {
                        r.node_id = Some(self.node_id().to_owned());
                        r.fence = 1;
                    }
                    records.push(r)
                }
                Err(PrepareError::InvalidParameters { errors, .. }) => {
                    return Err(TriggerError::InvalidParameters(errors));
                }
                Err(PrepareError::UnknownFlow { flow, available }) => {
                    return Err(TriggerError::Invalid(format!(
                        "the component has no flow '{flow}'; its flows are: {}",
                        available.join(", ")
                    )));
                }
            }
        }
        // A run that cannot be stored now is refused before anything is enqueued.
        self.store().writer_health().admits()?;
        let deadline = std::time::Instant::now() + self.node.store_timeout;
        // Storing and handing over happen in a task of their own: a caller that goes
        // away mid-request must not leave a stored run that nobody executes.
        let this = self.clone();
        let deployment = deployment.clone();
        tokio::spawn(async move {
            let (keyed, plain): (Vec<_>, Vec<_>) = records
                .into_iter()
                .partition(|r| r.idempotency_key.is_some());
            let take = |out: &[(FlowRunRecord, bool)]| {
                for (record, new) in out {
                    if *new && record.node_id.as_deref() == Some(this.node_id()) {
                        this.submit(record.clone(), Some(deployment.clone()));
                    }
                }
            };
            // Each stored run is taken at once, whatever happens to the others.
            let mut out = this.store_keyed(&keyed, deadline).await?;
            take(&out);
            if !plain.is_empty() {
                this.store_plain(&plain, deadline).await?;
                let plain: Vec<_> = plain.into_iter().map(|r| (r, true)).collect();
                take(&plain);
                out.extend(plain);
            }
            Ok::<_, TriggerError>(out)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    }

    /// Stores new runs through the writer, all in one transaction, and waits for their
    /// commit until `deadline`: past it they are withdrawn (never written) unless an
    /// attempt at them is under way, whose outcome is then waited for.
    async fn store_plain(
        &self,
        runs: &[FlowRunRecord],
        deadline: std::time::Instant,
    ) -> Result<(), TriggerError> {
        let writes = runs.iter().cloned().map(Write::FlowRunCreated).collect();
        let receipt = self
            .store()
            .write_acked(writes)
            .map_err(|e| TriggerError::Internal(e.into()))?;
        match receipt.wait(deadline).await {
            Ok(()) => {}
            Err(NotStored::TimedOut) => {
                let why = match self.store().writer_health().failing {
                    Some(f) => format!("; it fails with: {}", f.error),
                    None => String::new(),
                };
                return Err(TriggerError::Unavailable(Unavailable {
                    reason: format!(
                        "the database did not store it within {:.1} s{why} (the run was \
                         withdrawn: none was created)",
                        self.node.store_timeout.as_secs_f64()
                    ),
                    retry_after: Duration::from_secs(2),
                }));
            }
            Err(e @ NotStored::Refused(_)) => return Err(TriggerError::Internal(e.into())),
        }
        for r in runs {
            self.orch
                .emit(|| crate::orchestrate::Event::FlowRunCreated {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    flow: r.flow_name.clone(),
                });
        }
        Ok(())
    }

    /// Stores runs with idempotency keys (in one transaction, straight to the database),
    /// retrying transient failures until `deadline`. Returns each run with whether this
    /// trigger created it. An attempt whose COMMIT went unanswered may have committed:
    /// then the trigger does not give up but inserts again (waiting for that attempt's
    /// transaction if it is still alive) and finds its own runs by their ids.
    async fn store_keyed(
        &self,
        runs: &[FlowRunRecord],
        deadline: std::time::Instant,
    ) -> Result<Vec<(FlowRunRecord, bool)>, TriggerError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut backoff = Duration::from_millis(20);
        let mut unsure = false;
        loop {
            let mut stage = InsertStage::Connecting;
            let until = (!unsure).then_some(deadline);
            let err = match self
                .store()
                .insert_flow_runs_once_until(runs, until, &mut stage)
                .await
            {
                Ok(out) => {
                    let ids: std::collections::HashSet<&str> =
                        runs.iter().map(|r| r.id.as_str()).collect();
                    return Ok(out
                        .into_iter()
                        .map(|(r, new)| {
                            let mine = new || ids.contains(r.id.as_str());
                            (r, mine)
                        })
                        .collect());
                }
                Err(e) => e,
            };
            let lost_commit = self.store().is_postgres()
                && stage == InsertStage::Committing
                && !err.is_server_answer();
            // An earlier unsure attempt is settled once an insert of the same keys
            // went through.
            unsure = lost_commit || (unsure && stage < InsertStage::Inserted);
            if !err.is_transient() && !unsure {
                return Err(TriggerError::Internal(err.into()));
            }
            if !unsure && std::time::Instant::now() + backoff >= deadline {
                return Err(unavailable(&err));
            }
            tracing::warn!("storing triggered runs failed ({err}); trying again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
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

    async fn drive(
        self: Arc<Self>,
        run: FlowRunRecord,
        deployment: Option<DeploymentRecord>,
        mut stop: watch::Receiver<Stop>,
    ) {
        let waiting = WaitingGuard(&self.waiting);
        let mut shutdown = self.shutdown.subscribe();
        // Its time.
        if let Some(at) = run.expected_start {
            let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = until_stopped(&mut stop) => return self.end_waiting(&run).await,
                _ = until_stopped_node(&mut shutdown) => return,
            }
        }
        let deployment = match deployment {
            Some(d) => Some(d),
            None => match &run.deployment_id {
                Some(id) => self.store().deployment_by_id(id).await.ok().flatten(),
                None => None,
            },
        };
        // Its schedule's overlap policy.
        let overlap = match (&run.schedule_id, &run.deployment_id) {
            (Some(sid), Some(_)) => self.overlap_of(sid).await,
            _ => Overlap::Allow,
        };
        // Checked and registered in one step, so two runs due together cannot both
        // see the other as absent.
        let _running = match &run.deployment_id {
            Some(dep) => match RunningGuard::enter(&self, dep, &run.id, overlap) {
                Ok((guard, previous)) => {
                    if overlap == Overlap::Cancel {
                        for id in previous {
                            self.cancel(&id);
                        }
                    }
                    Some(guard)
                }
                Err(()) => {
                    let mut change = StateChange::new(
                        RunKind::Flow,
                        &run.id,
                        State::named(StateType::Cancelled, "Skipped")
                            .with_message("the previous run of the deployment was still running"),
                    );
                    change.end_time = Some(Utc::now());
                    self.store().write(Write::StateChanged(change));
                    let _ = self.store().flush().await;
                    return;
                }
            },
            None => None,
        };
        let due = Utc::now();
        let mut late = false;
        // Its slots.
        let guard = loop {
            let wants = match self.limits_for(&run, deployment.as_ref()).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!("cannot read the limits of flow run {}: {e}", run.id);
                    Some(vec![(NODE.to_owned(), self.max_active)])
                }
            };
            let wants = wants.map(|mut w| {
                if let (Overlap::Queue, Some(dep)) = (overlap, &run.deployment_id) {
                    w.push((format!("overlap:{dep}"), 1));
                }
                w
            });
            if !late && (Utc::now() - due).to_std().unwrap_or_default() >= LATE_AFTER {
                late = true;
                self.store().write(Write::StateChanged(StateChange::new(
                    RunKind::Flow,
                    &run.id,
                    State::named(StateType::Scheduled, "Late"),
                )));
            }
            let notified = self.slots.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(wants) = &wants
                && let Some(guard) = self.slots.try_take(wants)
            {
                match self.take_shared_slots(&run.id, wants).await {
                    Ok(shared) => break (guard, shared),
                    Err(e) => {
                        if let Some(e) = e {
                            tracing::error!("cannot take the slots of flow run {}: {e}", run.id);
                        }
                        guard.give_back_quietly();
                    }
                }
            }
            tokio::select! {
                _ = notified => {}
                // Limits and pauses change through the API, which wakes every waiting
                // run; another node's change is seen within the poll.
                _ = tokio::time::sleep(if wants.is_some() { Duration::from_millis(500) } else { Duration::from_secs(5) }) => {}
                _ = until_stopped(&mut stop) => return self.end_waiting(&run).await,
                _ = until_stopped_node(&mut shutdown) => return,
            }
        };
        drop(waiting);
        self.active.fetch_add(1, Ordering::Relaxed);
        let _active = ActiveGuard(&self);
        let _slots = guard;

        let component = match self.component(&run.component_digest).await {
            Ok(c) => c,
            Err(e) => {
                let state =
                    State::new(crate::state::StateType::Crashed).with_message(format!("{e:#}"));
                if let Err(e) = self.end_run(&run, state).await {
                    tracing::error!("flow run {} could not be stored: {e}", run.id);
                }
                return;
            }
        };
        self.store().write(Write::StateChanged(StateChange::new(
            RunKind::Flow,
            &run.id,
            State::pending(),
        )));
        let settings = RunSettings {
            workspace_id: run.workspace_id.clone(),
            stop: Some(stop),
            memory_bytes: deployment
                .as_ref()
                .and_then(|d| d.memory_mb)
                .map(|mb| (mb.max(1) as usize) << 20),
            timeout_seconds: deployment.as_ref().and_then(|d| d.timeout_seconds),
            allowed_hosts: deployment
                .as_ref()
                .map(|d| d.allowed_hosts.clone())
                .unwrap_or_default(),
        };
        if let Err(e) = self.orch.execute_flow_run(&run, component, settings).await {
            tracing::error!("flow run {} could not be stored: {e}", run.id);
        }
    }

    /// With PostgreSQL, takes the run's limited slots in the database too, so limits
    /// hold across nodes. `Err(None)`: a limit is reached on another node.
    async fn take_shared_slots(
        &self,
        run_id: &str,
        wants: &[(String, usize)],
    ) -> Result<Option<SharedSlots>, Option<crate::store::StoreError>> {
        let shared: Vec<(String, i64)> = wants
            .iter()
            .filter(|(k, _)| k != NODE)
            .map(|(k, limit)| (k.clone(), *limit as i64))
            .collect();
        if shared.is_empty() || !self.store().is_postgres() {
            return Ok(None);
        }
        match self
            .store()
            .take_slots(run_id, self.node_id(), &shared)
            .await
        {
            Ok(true) => Ok(Some(SharedSlots {
                store: self.store().clone(),
                run_id: run_id.to_owned(),
                node: self.node_id().to_owned(),
            })),
            Ok(false) => Err(None),
            Err(e) => Err(Some(e)),
        }
    }

    /// A run cancelled before it started.
    async fn end_waiting(&self, run: &FlowRunRecord) {
        let mut change = StateChange::new(
            RunKind::Flow,
            &run.id,
            State::cancelled("the flow run was cancelled before it started"),
        );
        change.end_time = Some(Utc::now());
        self.store().write(Write::StateChanged(change));
        let _ = self.store().flush().await;
    }

    /// The slots a run needs: the node's, its pool's, its deployment's and one per
    /// limited tag. `None` while its pool is paused.
    async fn limits_for(
        &self,
        run: &FlowRunRecord,
        deployment: Option<&DeploymentRecord>,
    ) -> anyhow::Result<Option<Vec<(String, usize)>>> {
        let mut wants = vec![(NODE.to_owned(), self.max_active)];
        let Some(ws) = &run.workspace_id else {
            return Ok(Some(wants));
        };
        let config = self.workspace_limits(ws).await?;
        if let Some(d) = deployment {
            if let Some(pool) = config.pools.get(&d.pool) {
                if pool.paused {
                    return Ok(None);
                }
                if let Some(limit) = pool.concurrency_limit {
                    wants.push((format!("pool:{ws}:{}", d.pool), limit.max(0) as usize));
                }
            }
            if let Some(limit) = d.concurrency_limit {
                wants.push((format!("deployment:{}", d.id), limit.max(0) as usize));
            }
        }
        if !run.tags.is_empty() {
            for limit in &config.tags {
                if run.tags.contains(&limit.tag) {
                    wants.push((
                        format!("tag:{ws}:{}", limit.tag),
                        limit.limit.max(0) as usize,
                    ));
                }
            }
        }
        Ok(Some(wants))
    }

    async fn workspace_limits(&self, ws: &str) -> anyhow::Result<Arc<WorkspaceLimits>> {
        if let Some((at, limits)) = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .workspaces
            .get(ws)
            && at.elapsed() < CONFIG_TTL
        {
            return Ok(limits.clone());
        }
        let limits = Arc::new(WorkspaceLimits {
            pools: self
                .store()
                .pools(ws)
                .await?
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
            tags: self.store().concurrency_limits(ws).await?,
        });
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .workspaces
            .insert(ws.to_owned(), (std::time::Instant::now(), limits.clone()));
        Ok(limits)
    }

    async fn overlap_of(&self, schedule_id: &str) -> Overlap {
        if let Some((at, o)) = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overlaps
            .get(schedule_id)
            && at.elapsed() < OVERLAP_TTL
        {
            return *o;
        }
        let o = match self.store().schedule_by_id(schedule_id).await {
            Ok(Some(s)) => Overlap::parse(&s.overlap).unwrap_or(Overlap::Allow),
            _ => Overlap::Allow,
        };
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overlaps
            .insert(schedule_id.to_owned(), (std::time::Instant::now(), o));
        o
    }

    /// Forgets a schedule's cached overlap policy (the API changed it).
    pub fn schedule_changed(&self, schedule_id: &str) {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overlaps
            .remove(schedule_id);
    }

    /// Forgets the cached pools and limits of a workspace (the API changed them).
    pub fn limits_changed(&self, workspace_id: &str) {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .workspaces
            .remove(workspace_id);
        self.slots.changed.notify_waiters();
    }

    /// Joins the cluster: announces the node, takes over the runs of dead nodes (with
    /// SQLite, every other node is a previous process on this database, so all of
    /// them) and claims due runs, then keeps doing so in the background. Returns how
    /// many runs it took.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<usize> {
        let store = self.store();
        store.heartbeat(self.node_id(), self.started).await?;
        let cutoff = if store.is_postgres() {
            Utc::now() - self.node.lease_ttl
        } else {
            Utc::now() + chrono::Duration::days(36500)
        };
        store.release_dead_slots(self.node_id(), cutoff).await?;
        let mut n = self.take_over(cutoff).await?;
        n += self.claim_due().await?;
        let lost = store.lease_losses();
        tokio::spawn(self.clone().maintain(lost));
        Ok(n)
    }

    /// Takes over the runs of nodes silent since `cutoff`.
    async fn take_over(self: &Arc<Self>, cutoff: chrono::DateTime<Utc>) -> anyhow::Result<usize> {
        let mut n = 0;
        loop {
            let runs = self
                .store()
                .take_over(self.node_id(), cutoff, CLAIM_BATCH)
                .await?;
            let full = runs.len() as i64 == CLAIM_BATCH;
            n += runs.len();
            for run in runs {
                self.adopt(run).await;
            }
            if !full {
                return Ok(n);
            }
        }
    }

    /// A run taken over from a dead node: resumed, or ended Crashed past the limit.
    async fn adopt(self: &Arc<Self>, run: FlowRunRecord) {
        let store = self.store();
        if run.state.kind == StateType::Scheduled {
            return self.submit(run, None);
        }
        let limit = self.node.max_crash_restarts;
        let log = |message: String| {
            store.write(Write::Log(crate::store::LogRecord {
                flow_run_id: run.id.clone(),
                task_run_id: None,
                level: "warning".into(),
                message,
                timestamp: Utc::now(),
            }))
        };
        if run.crash_count > limit {
            let message = format!(
                "the node running this flow run stopped {} times while running it (at most \
                 {limit} restarts); it is not restarted again",
                run.crash_count
            );
            if let Err(e) = store.crash_unfinished_children(&run.id, &message).await {
                tracing::error!("cannot end the task runs of flow run {}: {e}", run.id);
            }
            log(message.clone());
            store.hold(&run.id, run.fence);
            let crashed = State::new(StateType::Crashed).with_message(message);
            if let Err(e) = self.end_run(&run, crashed).await {
                tracing::error!("cannot end flow run {} Crashed: {e}", run.id);
            }
            store.unhold(&run.id, run.fence);
            return;
        }
        let message = "the node running this stopped; the flow run resumes by replay on another \
                       node";
        if let Err(e) = store.crash_unfinished_children(&run.id, message).await {
            tracing::error!("cannot end the task runs of flow run {}: {e}", run.id);
        }
        log(format!(
            "the node running this flow run stopped; node {} took it over (restart {} of at \
             most {limit}) and resumes it, replaying its completed calls",
            self.node_id(),
            run.crash_count
        ));
        self.submit(run, None);
    }

    /// Claims the due runs nobody holds and takes them.
    async fn claim_due(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut n = 0;
        loop {
            let until = Utc::now() + self.node.poll_interval * 2;
            let runs = self
                .store()
                .claim_due(self.node_id(), until, CLAIM_BATCH)
                .await?;
            let full = runs.len() as i64 == CLAIM_BATCH;
            n += runs.len();
            for run in runs {
                self.submit(run, None);
            }
            if !full {
                return Ok(n);
            }
        }
    }

    /// The node's background work: heartbeats, lease checks, takeovers, claims of due
    /// runs, cancel requests from other nodes, stopping runs this node lost.
    async fn maintain(self: Arc<Self>, mut lost: tokio::sync::mpsc::UnboundedReceiver<String>) {
        let mut shutdown = self.shutdown.subscribe();
        let ttl = self.node.lease_ttl;
        let beat_every = (ttl / 3).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut last_beat = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.node.poll_interval.min(beat_every)) => {}
                Some(id) = lost.recv() => {
                    self.stop(&id, Stop::Lost);
                    continue;
                }
                _ = until_stopped_node(&mut shutdown) => return,
            }
            let work = async {
                if last_beat.elapsed() >= beat_every {
                    self.store().heartbeat(self.node_id(), self.started).await?;
                    last_beat = std::time::Instant::now();
                    self.check_leases().await?;
                    self.store()
                        .release_dead_slots(self.node_id(), Utc::now() - ttl)
                        .await?;
                    self.take_over(Utc::now() - ttl).await?;
                    self.store()
                        .forget_dead_nodes(Utc::now() - ttl * 10)
                        .await?;
                }
                self.claim_due().await?;
                for id in self.store().cancel_requests(self.node_id()).await? {
                    self.cancel(&id);
                }
                anyhow::Ok(())
            };
            if let Err(e) = work.await {
                tracing::error!("node {}: lease upkeep failed: {e:#}", self.node_id());
            }
        }
    }

    /// Finds the runs this node holds that another node took over (this node was
    /// silent too long) and stops them.
    async fn check_leases(&self) -> anyhow::Result<()> {
        let ids: Vec<String> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let held = self.store().still_held(self.node_id(), &ids).await?;
        for id in ids {
            if !held.contains_key(&id) {
                // Ended meanwhile, or taken over: the writer tells them apart by fence.
                if self.store().flow_run(&id).await?.is_some_and(|r| {
                    !r.state.is_final() && r.node_id.as_deref() != Some(self.node_id())
                }) {
                    self.store().mark_lost(&id);
                }
            }
        }
        Ok(())
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

    /// Stops taking runs, gives running ones `grace` to finish, then puts the rest back
    /// to run again at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutdown.send_replace(true);
        let finished = tokio::time::timeout(grace, self.until_idle()).await.is_ok();
        if !finished {
            for tx in self.runs.lock().unwrap_or_else(|e| e.into_inner()).values() {
                tx.send_replace(Stop::Shutdown);
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), self.until_idle()).await;
        }
        // The writer retries until the database takes the writes; a database that stays
        // away must not hold the shutdown forever.
        match tokio::time::timeout(grace.max(Duration::from_secs(10)), self.store().flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("not every write reached the database: {e}"),
            Err(_) => tracing::error!(
                "the database did not take the last {} writes before shutdown; they are lost \
                 (runs they belong to resume from their last stored state)",
                self.store().writer_health().queued
            ),
        }
        // Runs still waiting, and the ones put back, go to whichever node claims them.
        if let Err(e) = self.store().leave(self.node_id()).await {
            tracing::error!("node {} could not let go of its runs: {e}", self.node_id());
        }
    }

    async fn until_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active.load(Ordering::Relaxed) == 0 {
                return;
            }
            notified.await;
        }
    }
}

fn unavailable(e: &StoreError) -> TriggerError {
    TriggerError::Unavailable(Unavailable {
        reason: format!("the database is not accepting writes ({e})"),
        retry_after: Duration::from_secs(2),
    })
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

/// Registers a run as executing for its deployment while alive.
struct RunningGuard<'a> {
    executor: &'a Executor,
    deployment: String,
    run: String,
}

impl<'a> RunningGuard<'a> {
    /// Registers `run` under its deployment's overlap policy: fails for `Skip` when
    /// another run is there; returns the runs already there for `Cancel`.
    fn enter(
        executor: &'a Executor,
        deployment: &str,
        run: &str,
        overlap: Overlap,
    ) -> Result<(Self, Vec<String>), ()> {
        let mut running = executor.running.lock().unwrap_or_else(|e| e.into_inner());
        let runs = running.entry(deployment.to_owned()).or_default();
        if overlap == Overlap::Skip && !runs.is_empty() {
            return Err(());
        }
        let previous = match overlap {
            Overlap::Cancel => runs.iter().cloned().collect(),
            _ => Vec::new(),
        };
        runs.insert(run.to_owned());
        Ok((
            Self {
                executor,
                deployment: deployment.to_owned(),
                run: run.to_owned(),
            },
            previous,
        ))
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut running = self
            .executor
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(runs) = running.get_mut(&self.deployment) {
            runs.remove(&self.run);
            if runs.is_empty() {
                running.remove(&self.deployment);
            }
        }
    }
}

impl crate::orchestrate::DeploymentRunner for Executor {
    fn run_deployment<'a>(
        &'a self,
        workspace_id: &'a str,
        deployment: &'a str,
        parameters: serde_json::Map<String, serde_json::Value>,
        scheduled_at: Option<chrono::DateTime<Utc>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let this = self
                .me
                .get()
                .and_then(std::sync::Weak::upgrade)
                .ok_or("the executor is stopping")?;
            let d = self
                .store()
                .deployment(workspace_id, deployment)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no deployment named '{deployment}' in this workspace"))?;
            let request = TriggerRequest {
                parameters,
                scheduled_at,
                ..TriggerRequest::default()
            };
            this.trigger(&d, request)
                .await
                .map(|(run, _)| run.id)
                .map_err(|e| e.to_string())
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_respect_every_limit_and_come_back() {
        let slots = Arc::new(Slots::default());
        let want = |k: &str, n| vec![(NODE.to_owned(), 10), (k.to_owned(), n)];
        let a = slots.try_take(&want("d", 2)).unwrap();
        let b = slots.try_take(&want("d", 2)).unwrap();
        assert!(
            slots.try_take(&want("d", 2)).is_none(),
            "the deployment limit holds"
        );
        let c = slots.try_take(&want("e", 1)).unwrap();
        assert_eq!(slots.in_use(NODE), 3);
        drop(a);
        assert_eq!(slots.in_use("d"), 1);
        let a2 = slots.try_take(&want("d", 2)).unwrap();
        drop((a2, b, c));
        assert_eq!(slots.in_use(NODE), 0);
        assert_eq!(slots.in_use("d"), 0);
    }
}
