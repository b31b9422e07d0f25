//! `weir server`: the API, the executor and the store in one process.
//!
//! [`Server::start`] opens everything and recovers unfinished runs; [`Server::serve`]
//! takes a bound listener and a shutdown future (so tests run the real thing on
//! `127.0.0.1:0`), stops accepting when the future resolves, and gives runs in progress
//! a grace period before putting them back to run again.

pub mod demo;
pub mod listen;
pub mod maintenance;
pub mod retention;

use crate::api::{self, AppState, BodyLimits, Shared};
use crate::executor::Executor;
use crate::host::Engine;
use crate::model::limits::Limits;
use crate::orchestrate::Orchestrator;
use crate::schedule::{Clock, Scheduler, SchedulerConfig, SystemClock};
use crate::secrets::{self, SecretBox};
use crate::store::Store;
use anyhow::Context;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct ServerConfig {
    /// Database, compiled components, uploaded components, the secret key.
    pub data_dir: PathBuf,
    /// A `sqlite:` or `postgres://` URL; `DATA_DIR/weir.db` by default.
    pub db: Option<String>,
    /// This node's id, lease and crash-restart settings.
    pub node: crate::executor::NodeConfig,
    /// The admin token (`WEIR_ADMIN_TOKEN`); generated at first start when absent.
    pub admin_token: Option<String>,
    /// The master key for secrets (`WEIR_SECRET_KEY`, base64 of 32 bytes).
    pub secret_key: Option<String>,
    pub limits: Limits,
    pub body_limits: BodyLimits,
    /// How long runs in progress may take to finish at shutdown.
    pub grace: Duration,
    /// Flow runs executing at once on this node; `None`: half the instances (each run
    /// holds one, and one for its task). Runs past it wait their turn, counted in
    /// `weir_queue_depth`.
    pub max_active_runs: Option<usize>,
    /// The scheduler's clock (tests move it by hand).
    pub clock: Arc<dyn Clock>,
    pub scheduler: SchedulerConfig,
    /// Whether this node runs the scheduler loop.
    pub run_scheduler: bool,
    /// Bounds on client connections and how long their requests may take to arrive.
    pub connections: listen::ConnLimits,
    /// Request rates per peer and per workspace, and failed authentications per peer.
    pub rate: api::rate::RateConfig,
    /// Where the built-in plugins' components are (`plugin_<name>.wasm`), registered at
    /// start; `None`: no built-in plugins.
    pub plugins_dir: Option<PathBuf>,
    /// The server's default retention and how often it is applied.
    pub retention: retention::RetentionConfig,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            db: None,
            node: crate::executor::NodeConfig::default(),
            admin_token: None,
            secret_key: None,
            limits: Limits::default(),
            body_limits: BodyLimits::default(),
            grace: Duration::from_secs(30),
            max_active_runs: None,
            clock: Arc::new(SystemClock),
            scheduler: SchedulerConfig::default(),
            run_scheduler: true,
            connections: listen::ConnLimits::default(),
            rate: api::rate::RateConfig::default(),
            plugins_dir: None,
            retention: retention::RetentionConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Sizes the node by its memory budget and the kernel's bound on memory mappings: an
    /// instance for every [`MIB_PER_INSTANCE`] of the budget, as many as
    /// `vm.max_map_count` leaves room for ([`MAPS_PER_INSTANCE`] each, past
    /// [`MAPS_KEPT`] for the rest of the process), from 100 to 100,000. Pool slots are
    /// address space until used, and the budget bounds what instances really hold. The
    /// flow runs executing at once follow, unless set.
    pub fn size_for_memory(&mut self) {
        let by_memory = (self.limits.memory_budget.limit() >> 20) / MIB_PER_INSTANCE;
        let by_maps = max_map_count().map_or(usize::MAX, instances_for_maps);
        self.limits.max_instances = by_memory.min(by_maps).clamp(100, 100_000) as u32;
    }

    /// The flow runs this node executes at once.
    pub fn active_runs(&self) -> usize {
        self.max_active_runs
            .unwrap_or(self.limits.max_instances as usize / 2)
            .max(1)
    }
}

/// Memory budget per instance when a node is sized by its memory: a small guest's linear
/// memory (a Rust one starts at about 1.1 MiB) and its stack.
pub const MIB_PER_INSTANCE: usize = 1;
/// Memory mappings an instance slot costs: two while free (its stack and the stack's
/// guard page), about four more while an instance uses it (its linear memory, its
/// image, its tables), measured by `weir bench inflight`.
pub const MAPS_PER_INSTANCE: usize = 6;
/// Mappings left for the rest of the process: its heap, threads, the database, the
/// compiled code of loaded components.
pub const MAPS_KEPT: usize = 10_000;

/// Instances a process with `max_map_count` mappings can hold (past that, the kernel
/// refuses mappings and allocations fail).
pub fn instances_for_maps(max_map_count: usize) -> usize {
    max_map_count.saturating_sub(MAPS_KEPT) / MAPS_PER_INSTANCE
}

/// The kernel's bound on one process's memory mappings (Linux's `vm.max_map_count`).
pub fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub struct Server {
    pub state: AppState,
    pub executor: Arc<Executor>,
    pub scheduler: Arc<Scheduler>,
    run_scheduler: bool,
    /// Set when this start generated the admin token: print it once.
    pub generated_admin_token: Option<String>,
    /// Runs a previous process left unfinished, now submitted again.
    pub recovered: usize,
    /// The built-in plugins registered at start, with their versions.
    pub builtin_plugins: Vec<(String, i64)>,
    grace: Duration,
    connections: listen::ConnLimits,
    retention: retention::Retainer,
}

const ADMIN_HASH: &str = "admin_token_sha256";

impl Server {
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir.join("components"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let store = match &config.db {
            Some(url) => Store::open_url(url).await,
            None => Store::open_sqlite(&dir.join("weir.db")).await,
        }
        .context("cannot open the database")?;
        let engine = Engine::new(config.limits.clone(), Some(dir.join("compiled")))?;
        let secrets = SecretBox::load_or_create(config.secret_key.as_deref(), dir)?;
        let orch = Orchestrator::with_secrets(engine, store.clone(), secrets.clone());
        let executor = Executor::with_clock(
            orch,
            dir.join("components"),
            config.active_runs(),
            config.node.clone(),
            config.clock.clone(),
        );

        let mut generated_admin_token = None;
        let admin_hash = match &config.admin_token {
            Some(token) => {
                let hash = secrets::token_hash(token);
                store.put_setting(ADMIN_HASH, &hash).await?;
                hash
            }
            None => match store.setting(ADMIN_HASH).await? {
                Some(hash) => hash,
                None => {
                    let token = secrets::new_token();
                    let hash = secrets::token_hash(&token);
                    if store.init_setting(ADMIN_HASH, &hash).await? {
                        generated_admin_token = Some(token);
                        hash
                    } else {
                        store.setting(ADMIN_HASH).await?.unwrap_or(hash)
                    }
                }
            },
        };
        // Quotas hold from the first run on.
        executor
            .orchestrator()
            .tenants
            .sync(&store)
            .await
            .context("cannot read the workspaces' quotas")?;
        // Before recovered runs go on: they may call them.
        let builtin_plugins = match &config.plugins_dir {
            Some(plugins) => executor
                .register_builtin_plugins(plugins)
                .await
                .with_context(|| format!("cannot register the plugins of {}", plugins.display()))?,
            None => Vec::new(),
        };
        let recovered = executor.recover().await?;
        maintenance::pass(&executor).await;
        let scheduler = Scheduler::new(
            executor.clone(),
            config.clock.clone(),
            config.scheduler.clone(),
        );
        let automations = crate::automate::Automations::new(executor.clone(), scheduler.clone());
        let state = AppState::new(Shared {
            automations: automations.clone(),
            scheduler: scheduler.clone(),
            executor: executor.clone(),
            secrets,
            admin_hash,
            uploads: api::uploads::Uploads::new(
                executor.components_dir().join(".uploads"),
                config.body_limits.upload,
                config.body_limits.max_concurrent_uploads,
                config.limits.max_concurrent_compiles,
            ),
            limits: config.body_limits.clone(),
            rate: api::rate::RateLimits::new(&config.rate),
            retention_default: config.retention.default,
        });
        Ok(Self {
            state,
            executor: executor.clone(),
            scheduler,
            run_scheduler: config.run_scheduler,
            generated_admin_token,
            recovered,
            builtin_plugins,
            grace: config.grace,
            connections: config.connections,
            retention: retention::Retainer::new(
                executor.clone(),
                config.clock.clone(),
                config.retention,
            ),
        })
    }

    /// The API and the web UI, on one port, behind the rate limits and the access log.
    pub fn router(&self) -> axum::Router {
        crate::ui::router(self.state.clone())
            .merge(api::router(self.state.clone()))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                api::rate::guard,
            ))
    }

    /// Serves until `shutdown` resolves, then winds the executor down.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (upkeep_tx, upkeep_rx) = tokio::sync::oneshot::channel::<()>();
        let upkeep = tokio::spawn(maintenance::run(self.executor.clone(), async {
            let _ = upkeep_rx.await;
        }));
        let rate = {
            let state = self.state.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    state.rate.forget_idle();
                }
            })
        };
        let (automate_tx, automate_rx) = tokio::sync::oneshot::channel::<()>();
        let automate = tokio::spawn(self.state.automations.clone().run(async {
            let _ = automate_rx.await;
        }));
        let router = self.router();
        let (retain_tx, retain_rx) = tokio::sync::oneshot::channel::<()>();
        let retain = tokio::spawn(self.retention.run(async {
            let _ = retain_rx.await;
        }));
        let scheduler = self.run_scheduler.then(|| {
            let s = self.scheduler.clone();
            tokio::spawn(s.run(async {
                let _ = stop_rx.await;
            }))
        });
        let state = self.state.clone();
        let refuse: listen::Refuse = Arc::new(move |ip| state.rate.is_blocked(ip));
        listen::serve(
            listener,
            router,
            self.connections.clone(),
            Some(refuse),
            shutdown,
        )
        .await?;
        rate.abort();
        drop(stop_tx);
        drop(upkeep_tx);
        drop(automate_tx);
        drop(retain_tx);
        let _ = automate.await;
        let _ = retain.await;
        if let Some(s) = scheduler {
            let _ = s.await;
        }
        let _ = upkeep.await;
        self.executor.shutdown(self.grace).await;
        Ok(())
    }
}

/// Starts a server on a bound listener and serves until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::start(config).await?.serve(listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::limits::MemoryBudget;

    #[test]
    fn a_node_is_sized_by_its_memory_and_its_mappings() {
        let mut c = ServerConfig::new(PathBuf::from("unused"));
        c.limits.memory_budget = MemoryBudget::new(4 << 30);
        c.size_for_memory();
        let by_maps = max_map_count().map_or(usize::MAX, instances_for_maps);
        assert_eq!(c.limits.max_instances as usize, 4096.min(by_maps).max(100));
        assert_eq!(c.active_runs(), c.limits.max_instances as usize / 2);
        // A small machine still gets a usable node; a set bound wins.
        c.limits.memory_budget = MemoryBudget::new(16 << 20);
        c.size_for_memory();
        assert_eq!(c.limits.max_instances, 100);
        c.max_active_runs = Some(7);
        assert_eq!(c.active_runs(), 7);
        c.max_active_runs = Some(0);
        assert_eq!(c.active_runs(), 1);
        // Linux's default bound (65,530) leaves room for 9,255 instances.
        assert_eq!(instances_for_maps(65_530), 9_255);
        assert_eq!(instances_for_maps(5_000), 0);
    }
}
