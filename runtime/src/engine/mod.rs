//! The wasmtime side of Weir: one configured engine, the linker, compiled components
//! cached by digest (in memory as pre-instantiated templates, the least recently used
//! evicted past a bound; on disk as compiled code), and the epoch ticker that bounds CPU
//! time.
//!
//! The engine knows no WIT world: it is generic over a [`World`], which links the
//! world's interfaces, makes its typed instance templates and has a component describe
//! itself. The `host` module provides Weir's world, and the engine running it.
//!
//! Compiling a component takes a core for up to seconds, so it never runs on the async
//! workers that serve requests and drive runs: compilations (and loads of compiled code
//! from disk) go to tokio's blocking pool, a few at a time.

mod cache;
pub mod http;
pub(crate) mod linker;
pub mod sandbox;
pub(crate) mod trap;
pub mod worker;

use crate::model::limits::{CompileWorker, Limits};
use crate::model::manifest::{Definition, Manifest};
use crate::model::schema::Schema;
use sandbox::{Exceeded, Sandboxed};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

/// Core instance slots in the pool per instance slot: a component made by
/// componentize-py holds about 14.
pub const CORE_INSTANCES_PER_INSTANCE: u32 = 20;
/// The most core instances one component may hold.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 40;

/// How long an instantiation waits for room in a full instance pool before it fails.
pub const POOL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a component could not be loaded. Each message names the problem for the user.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly file (it does not start with the wasm magic bytes)")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component: build the guest for the \
         wasm32-wasip2 target (cargo build --target wasm32-wasip2)"
    )]
    CoreModule,
    #[error("invalid WebAssembly component: {0}")]
    Invalid(String),
    #[error("the component does not fit the weir:flow world: {0}")]
    WrongWorld(String),
    #[error("the component failed to describe itself: {0}")]
    Describe(String),
}

/// A WIT world the engine runs components of: its store data, its typed instance
/// template and instance, and how a component of it describes itself.
pub trait World: Sized + Send + Sync + 'static {
    /// The store data of every instance.
    type Data: Sandboxed + wasmtime_wasi::WasiView + wasmtime_wasi_http::WasiHttpView;
    /// A pre-linked, type-checked instance template.
    type Pre: Send + Sync + 'static;

    /// Adds the world's own interfaces (WASI is the engine's) to a linker.
    fn link(linker: &mut Linker<Self::Data>) -> wasmtime::Result<()>;

    /// Type-checks a linked template against the world.
    fn pre(pre: InstancePre<Self::Data>) -> wasmtime::Result<Self::Pre>;

    /// Instantiates a template in `store`.
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<Self::Data>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;

    /// The store data of an instance that serves no run, only describes itself.
    fn describing(limits: &Limits) -> Self::Data;

    /// Asks the component for its manifest, checked; the error says what is wrong.
    fn describe(
        &self,
        store: &mut Store<Self::Data>,
    ) -> impl Future<Output = Result<Manifest, String>> + Send;
}

/// A component ready to run: compiled, linked, type-checked, with its manifest.
pub struct LoadedComponent<W: World> {
    pub digest: String,
    pub size: usize,
    /// Whether the compiled code came from the on-disk cache rather than a compilation.
    pub from_cache: bool,
    pub manifest: Manifest,
    pre: W::Pre,
    validators: HashMap<String, Arc<Schema>>,
}

impl<W: World> std::fmt::Debug for LoadedComponent<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl<W: World> LoadedComponent<W> {
    pub fn flow(&self, name: &str) -> Option<&Definition> {
        self.manifest.flow(name)
    }

    /// The flow the guest knows by `key` ([`Definition::key`]).
    pub fn flow_by_key(&self, key: &str) -> Option<&Definition> {
        self.manifest
            .flow_by_function(key)
            .or_else(|| self.manifest.flow(key))
    }

    pub fn task(&self, name: &str) -> Option<&Definition> {
        self.manifest.task(name)
    }

    /// The compiled parameter schema of a flow (bounded: see `model::schema`), by its key
    /// ([`Definition::key`]); a background task run's flow (`task/<name>`) has its task's.
    pub fn validator(&self, flow: &str) -> Option<&Arc<Schema>> {
        self.validators.get(flow)
    }

    /// The compiled argument schema of a task; `None` when Weir refuses its schema.
    pub fn task_validator(&self, task: &str) -> Option<&Arc<Schema>> {
        self.validators.get(&format!(
            "{}{task}",
            crate::model::manifest::BACKGROUND_PREFIX
        ))
    }
}

pub struct Engine<W: World> {
    wasmtime: wasmtime::Engine,
    linker: Arc<Linker<W::Data>>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    engine_hash: String,
    /// Components in memory (`Limits::max_loaded_components`, `max_loaded_component_bytes`).
    loaded: Mutex<cache::Lru<Arc<LoadedComponent<W>>>>,
    /// One load of a digest at a time: the others wait for it and take its result.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Compilations under way at once (`Limits::max_concurrent_compiles`).
    compile_permits: Arc<tokio::sync::Semaphore>,
    compiles: Arc<CompileCounters>,
    ticker_stop: Arc<AtomicBool>,
    pool_waits: AtomicU64,
}

/// Compilations of an engine, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Compiling (or loading compiled code from disk) right now, in the blocking pool.
    pub running: usize,
    /// Waiting for their turn (more than `Limits::max_concurrent_compiles` at once).
    pub waiting: usize,
    /// The most that ever ran at once.
    pub peak: usize,
    /// Compilations from WebAssembly so far (loads of compiled code from disk are not).
    pub compiled: u64,
}

#[derive(Default)]
struct CompileCounters {
    running: AtomicUsize,
    waiting: AtomicUsize,
    peak: AtomicUsize,
    compiled: AtomicU64,
}

/// Counts a compilation as running while it lives. It moves into the blocking task
/// with the permit, so a caller that goes away ends neither early.
struct Running(Arc<CompileCounters>);

impl Running {
    fn new(c: &Arc<CompileCounters>) -> Self {
        let now = c.running.fetch_add(1, Ordering::SeqCst) + 1;
        c.peak.fetch_max(now, Ordering::SeqCst);
        Self(c.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Waiting<'a>(&'a CompileCounters);

impl<'a> Waiting<'a> {
    fn new(c: &'a CompileCounters) -> Self {
        c.waiting.fetch_add(1, Ordering::SeqCst);
        Self(c)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<W: World> Drop for Engine<W> {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl<W: World> Engine<W> {
    /// Builds the engine. `cache_dir` holds compiled code by digest, so a restart does
    /// not compile again.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::new();
        let n = limits.max_instances;
        // Sized for every instance being a large component: a Rust guest holds a few core
        // instances, one made by componentize-py about 14 (CPython and its libraries
        // linked as separate modules) and a few memories and tables. Core-instance slots
        // are counters, not reserved memory, so a generous count costs nothing; memory
        // slots are address space only (`memory_reservation` each).
        pool.total_component_instances(n)
            .total_core_instances(n * CORE_INSTANCES_PER_INSTANCE)
            .total_memories(n * 3)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memory_size(limits.memory_bytes)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(4)
            .max_tables_per_component(32)
            .max_unused_warm_slots(n.min(100))
            // Reset only what a guest dirtied, with memset rather than page faults: a
            // task attempt is a fresh instance, so slot reuse is the hot path.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(256 << 10)
            .decommit_batch_size(32);

        let config = wasmtime_config(&limits, Some(pool));
        let wasmtime = wasmtime::Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("cannot configure wasmtime: {e}"))?;

        let mut linker = Linker::new(&wasmtime);
        linker::add_wasi(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
        W::link(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        wasmtime.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = format!("{:016x}", hasher.finish());

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)?;
        }

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let weak = wasmtime.weak();
            let stop = ticker_stop.clone();
            let tick = limits.epoch_tick;
            std::thread::Builder::new()
                .name("weir-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        match weak.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                    }
                })?;
        }

        Ok(Arc::new(Self {
            wasmtime,
            linker: Arc::new(linker),
            compile_permits: Arc::new(tokio::sync::Semaphore::new(
                limits.max_concurrent_compiles.max(1),
            )),
            limits,
            cache_dir,
            engine_hash,
            loaded: Mutex::default(),
            loading: Mutex::default(),
            compiles: Arc::default(),
            ticker_stop,
            pool_waits: AtomicU64::new(0),
        }))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// sha256 of a component's bytes: its identity everywhere in Weir.
    pub fn digest(bytes: &[u8]) -> String {
        digest(bytes)
    }

    /// A component loaded in this process and still in memory.
    pub fn loaded(&self, digest: &str) -> Option<Arc<LoadedComponent<W>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
    }

    /// How many components are in memory, and the size of their compiled code.
    pub fn loaded_size(&self) -> (usize, usize) {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        (loaded.len(), loaded.bytes())
    }

    pub fn compile_stats(&self) -> CompileStats {
        let c = &self.compiles;
        CompileStats {
            running: c.running.load(Ordering::SeqCst),
            waiting: c.waiting.load(Ordering::SeqCst),
            peak: c.peak.load(Ordering::SeqCst),
            compiled: c.compiled.load(Ordering::SeqCst),
        }
    }

    /// Validates, compiles (or reuses the on-disk compiled code), links and describes a
    /// component. Loading the same bytes twice returns the same component while it is
    /// in memory. The compilation runs in the blocking pool, at most
    /// `Limits::max_concurrent_compiles` at once, and the caller waits for it without
    /// holding an async worker.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent<W>>, LoadError> {
        check_header(bytes)?;
        let bytes = bytes.to_vec();
        let (digest, bytes) = blocking(move || (digest(&bytes), bytes)).await?;
        if let Some(c) = self.loaded(&digest) {
            return Ok(c);
        }
        let gate = self
            .loading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.clone())
            .or_default()
            .clone();
        let loaded = {
            let _one_at_a_time = gate.lock().await;
            match self.loaded(&digest) {
                Some(c) => Ok(c),
                None => self.load_new(digest.clone(), bytes).await,
            }
        };
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if loading.get(&digest).is_some_and(|g| Arc::ptr_eq(g, &gate)) {
            loading.remove(&digest);
        }
        loaded
    }

    async fn load_new(
        &self,
        digest: String,
        bytes: Vec<u8>,
    ) -> Result<Arc<LoadedComponent<W>>, LoadError> {
        let permit = {
            let _waiting = Waiting::new(&self.compiles);
            self.compile_permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| LoadError::Invalid("the engine is shutting down".into()))?
        };
        let running = Running::new(&self.compiles);
        let (wasmtime, linker) = (self.wasmtime.clone(), self.linker.clone());
        let cached = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_hash)));
        let size = bytes.len();
        let compiles = self.compiles.clone();
        let max_functions = self.limits.max_component_functions;
        let cache_to = cached.clone();
        // The worker stages its files beside the compiled cache (or in the temp dir).
        let worker = self.limits.compile_worker.clone().map(|w| {
            let scratch = self.cache_dir.clone().unwrap_or_else(std::env::temp_dir);
            (w, self.limits.clone(), scratch)
        });
        let (pre, component, from_cache, code_bytes) = blocking(move || {
            // Dropped in order: no longer counted running before the next may start.
            let _held = (running, permit);
            let (component, from_cache) = compile(
                &wasmtime,
                cached.as_deref(),
                &bytes,
                max_functions,
                worker.as_ref(),
            )?;
            if !from_cache {
                compiles.compiled.fetch_add(1, Ordering::SeqCst);
            }
            let code = component.image_range();
            let code_bytes = (code.end as usize).saturating_sub(code.start as usize);
            let instance_pre = linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
            let pre = W::pre(instance_pre).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
            Ok::<_, LoadError>((pre, component, from_cache, code_bytes))
        })
        .await??;
        let mut manifest = self.describe(&pre).await?;
        manifest.default_versions(&digest);
        manifest.add_background_tasks();
        let mut validators = HashMap::new();
        for flow in &manifest.flows {
            let v = crate::model::schema::compile(&flow.parameters).map_err(|e| {
                LoadError::Describe(format!(
                    "flow '{}' has a parameter schema Weir refuses: {e}",
                    flow.name
                ))
            })?;
            validators.insert(flow.key().to_owned(), Arc::new(v));
        }
        // A task whose schema Weir refuses can still be called by flows (its arguments
        // come from code); it only cannot run in the background.
        manifest.background.retain(
            |task| match crate::model::schema::compile(&task.parameters) {
                Ok(v) => {
                    validators.insert(task.name.clone(), Arc::new(v));
                    true
                }
                Err(_) => false,
            },
        );
        // Only a component Weir accepts leaves compiled code on disk.
        if !from_cache && let Some(path) = cache_to {
            blocking(move || keep_compiled(&component, &path)).await?;
        }
        let loaded = Arc::new(LoadedComponent {
            digest,
            size,
            from_cache,
            manifest,
            pre,
            validators,
        });
        let limits = &self.limits;
        Ok(self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                &loaded.digest.clone(),
                loaded,
                code_bytes.max(size),
                limits.max_loaded_components,
                limits.max_loaded_component_bytes,
            ))
    }

    /// Starts an instance and asks it for its manifest, within `Limits::describe_time`
    /// of wall-clock time and as much CPU time: a start function that loops is stopped
    /// there too.
    async fn describe(&self, pre: &W::Pre) -> Result<Manifest, LoadError> {
        let mut limits = self.limits.clone();
        limits.cpu_time = limits.describe_time;
        let within = limits.describe_time;
        let describe = async {
            let mut store = self.store(W::describing(&limits));
            let world = match W::instantiate(pre, &mut store).await {
                Ok(world) => world,
                Err(e) => {
                    let why = trap::explain(&e, &store);
                    return Err(LoadError::Describe(format!(
                        "the component did not start: {}",
                        why.message
                    )));
                }
            };
            world.describe(&mut store).await.map_err(|e| {
                // What the guest wrote to stderr (a Python traceback, a Rust panic) says why.
                let tail = store.data().stderr_tail();
                if tail.trim().is_empty() {
                    LoadError::Describe(e)
                } else {
                    let first = e.lines().next().unwrap_or_default();
                    LoadError::Describe(format!(
                        "{first} The guest wrote:
{tail}"
                    ))
                }
            })
        };
        tokio::time::timeout(within, describe).await.map_err(|_| {
            LoadError::Describe(format!(
                "the component did not start and describe itself within {} s",
                within.as_secs_f64()
            ))
        })?
    }

    /// A fresh instance in a fresh store with Weir's limits applied.
    async fn instantiate(
        &self,
        pre: &W::Pre,
        state: W::Data,
    ) -> wasmtime::Result<(Metered<W::Data>, W)> {
        let mut store = self.store(state);
        match W::instantiate(pre, &mut store).await {
            Ok(world) => Ok((store, world)),
            // The server's memory budget (or the workspace's quota), not the guest,
            // refused the instance's memory.
            Err(e) => {
                let limiter = &store.data().sandbox().limiter;
                match limiter.memory_exceeded {
                    Some(Exceeded::Node) => Err(e.context(BudgetFull(format!(
                        "the server's memory budget for instances ({} MiB, shared by every \
                         run) is in use",
                        limiter.budget().outermost().limit() >> 20
                    )))),
                    Some(Exceeded::Workspace) => Err(e.context(BudgetFull(format!(
                        "the workspace's memory quota ({} MiB, shared by its runs) is in use",
                        limiter.budget().limit() >> 20
                    )))),
                    // The workspace's fuel quota ran out while the instance started.
                    _ if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) => {
                        let message = trap::explain(&e, &store).message;
                        Err(e.context(message))
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// A fresh store with Weir's limits applied: memory, handles, CPU time (counted in
    /// epoch ticks, from instantiation on, so a start function that loops is stopped).
    fn store(&self, state: W::Data) -> Metered<W::Data> {
        let mut store = Store::new(&self.wasmtime, state);
        store.limiter(|s| &mut s.sandbox_mut().limiter);
        store.set_max_component_handles(self.limits.max_handles);
        if self.limits.cpu_metering {
            let fuel = store.data_mut().sandbox_mut().starting_fuel();
            // Cannot fail: fuel is enabled in the engine's configuration.
            let _ = store.set_fuel(fuel);
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let left = ctx.get_fuel().unwrap_or(sandbox::FUEL_TANK);
            let data = ctx.data_mut().sandbox_mut();
            if !data.meter(left, 1) {
                data.fuel_quota_spent = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            if data.cpu_ticks_left == 0 {
                data.cpu_exceeded = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            data.cpu_ticks_left -= 1;
            Ok(UpdateDeadline::Yield(1))
        });
        Metered(store)
    }

    /// A fresh instance of a loaded component, in a fresh store (its data made by
    /// `state`) with Weir's limits.
    ///
    /// When the pool has no room left for it (every slot of some kind, component or core
    /// instances, memories, tables, is held by live instances), it waits up to
    /// [`POOL_PATIENCE`] for instances to end, trying again in a fresh store: a full pool
    /// is load, not an error of the guest, and task attempts are bounded by the
    /// orchestrator's task slots, so room comes back as they end. The bound matters only
    /// when flow runs hold every instance while they wait for their tasks: then the
    /// attempts give up, their flows end, and the pool drains. An instance whose memory
    /// the server's memory budget cannot take now waits the same way.
    pub(crate) async fn instantiate_component(
        &self,
        component: &LoadedComponent<W>,
        state: impl Fn() -> W::Data,
    ) -> wasmtime::Result<(Metered<W::Data>, W)> {
        let deadline = std::time::Instant::now() + POOL_PATIENCE;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match self.instantiate(&component.pre, state()).await {
                Err(e)
                    if (is_pool_full(&e) || is_budget_full(&e))
                        && std::time::Instant::now() + pause < deadline =>
                {
                    tracing::debug!("no room for an instance, waiting {pause:?}: {e:#}");
                    self.pool_waits.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// How many times an instantiation waited for room in the pool.
    pub fn pool_waits(&self) -> u64 {
        self.pool_waits.load(Ordering::Relaxed)
    }
}

/// The wasmtime configuration of an engine running components under `limits`, with the
/// pooling allocator when `pool` is given (a compile worker needs none: it instantiates
/// nothing, and the compiled code is the same).
pub(crate) fn wasmtime_config(limits: &Limits, pool: Option<PoolingAllocationConfig>) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Fuel counts what instances execute, deterministically, for the CPU meter
        // of their workspace (its fuel quota).
        .consume_fuel(limits.cpu_metering)
        .max_wasm_stack(limits.wasm_stack_bytes)
        .async_stack_size(limits.wasm_stack_bytes + (1 << 20))
        .memory_reservation(limits.memory_bytes as u64)
        .memory_guard_size(64 << 10);
    if let Some(pool) = pool {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// An instance refused because the server's memory budget (or its workspace's quota) is
/// in use.
#[derive(Debug, thiserror::Error)]
#[error("{0}; no instance could start")]
struct BudgetFull(String);

/// An instance's store. When it ends, the fuel its instance burnt since the last epoch
/// tick is charged to its workspace's CPU meter (most task attempts end within a tick).
pub struct Metered<T: Sandboxed>(Store<T>);

impl<T: Sandboxed> Drop for Metered<T> {
    fn drop(&mut self) {
        if let Ok(left) = self.0.get_fuel() {
            self.0.data_mut().sandbox_mut().meter(left, 0);
        }
    }
}

impl<T: Sandboxed> std::ops::Deref for Metered<T> {
    type Target = Store<T>;
    fn deref(&self) -> &Store<T> {
        &self.0
    }
}

impl<T: Sandboxed> std::ops::DerefMut for Metered<T> {
    fn deref_mut(&mut self) -> &mut Store<T> {
        &mut self.0
    }
}

impl<T: Sandboxed> wasmtime::AsContext for Metered<T> {
    type Data = T;
    fn as_context(&self) -> wasmtime::StoreContext<'_, T> {
        self.0.as_context()
    }
}

impl<T: Sandboxed> wasmtime::AsContextMut for Metered<T> {
    fn as_context_mut(&mut self) -> wasmtime::StoreContextMut<'_, T> {
        self.0.as_context_mut()
    }
}

fn is_budget_full(e: &wasmtime::Error) -> bool {
    e.chain()
        .any(|cause| cause.downcast_ref::<BudgetFull>().is_some())
}

/// Whether an instantiation failed only because the pooling allocator had no free slot.
fn is_pool_full(e: &wasmtime::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
    })
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs `f` in tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LoadError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LoadError::Invalid(format!("the compilation stopped: {e}")))
}

/// Compiles a component, or loads its compiled code from `cached` (written there by an
/// engine with the same compatibility hash). Blocking: seconds of CPU for a large one.
/// A component of more than `max_functions` functions is refused before compiling. With
/// a `worker` (the server's case), the compilation runs in a worker process within its
/// bounds of memory and time.
fn compile(
    engine: &wasmtime::Engine,
    cached: Option<&Path>,
    bytes: &[u8],
    max_functions: usize,
    worker: Option<&(CompileWorker, Limits, PathBuf)>,
) -> Result<(Component, bool), LoadError> {
    if let Some(path) = cached
        && path.exists()
    {
        // SAFETY: the file was written by `Component::serialize` of an engine with
        // the same compatibility hash, into Weir's own cache directory.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok((c, true)),
            Err(e) => {
                tracing::warn!("ignoring unusable compiled cache {}: {e}", path.display())
            }
        }
    }
    let functions = count_functions(bytes)?;
    if functions > max_functions {
        return Err(LoadError::Invalid(format!(
            "the component defines {functions} functions, more than the {max_functions} \
             Weir compiles"
        )));
    }
    let component = match worker {
        Some((w, limits, scratch)) => worker::compile(w, engine, limits, bytes, scratch)?,
        None => Component::new(engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?,
    };
    Ok((component, false))
}

/// The functions a component's core modules define, read without validating them (the
/// compiler validates): what compiling costs grows with it.
fn count_functions(bytes: &[u8]) -> Result<usize, LoadError> {
    let mut functions = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::CodeSectionStart { count, .. }) => {
                functions = functions.saturating_add(count as usize);
            }
            Ok(_) => {}
            Err(e) => return Err(LoadError::Invalid(format!("{e}"))),
        }
    }
    Ok(functions)
}

/// Writes a component's compiled code to `path`, for the next load (or restart).
fn keep_compiled(component: &Component, path: &Path) {
    match component.serialize() {
        Ok(code) => {
            // A name of its own: two engines (or processes) may write at once.
            let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::now_v7()));
            if std::fs::write(&tmp, code)
                .and_then(|_| std::fs::rename(&tmp, path))
                .is_err()
            {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!("cannot write compiled cache {}", path.display());
            }
        }
        Err(e) => tracing::warn!("cannot serialize compiled component: {e}"),
    }
}

fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // Core modules have version 1 and layer 0; components have layer 1.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}
