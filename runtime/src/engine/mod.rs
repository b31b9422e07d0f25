//! The wasmtime side of Weir: one configured engine, the linker, compiled components
//! cached by digest (in memory as pre-instantiated templates, on disk as compiled
//! code), and the epoch ticker that bounds CPU time.

pub mod http;
pub(crate) mod linker;
pub mod sandbox;
pub(crate) mod trap;

use crate::host::{FlowWorld, FlowWorldPre};
use crate::model::limits::Limits;
use crate::model::manifest::{Definition, Manifest};
use sandbox::HostState;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

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

/// A component ready to run: compiled, linked, type-checked, with its manifest.
pub struct LoadedComponent {
    pub digest: String,
    pub size: usize,
    /// Whether the compiled code came from the on-disk cache rather than a compilation.
    pub from_cache: bool,
    pub manifest: Manifest,
    pre: FlowWorldPre<HostState>,
    validators: HashMap<String, Arc<jsonschema::Validator>>,
}

impl LoadedComponent {
    pub fn flow(&self, name: &str) -> Option<&Definition> {
        self.manifest.flow(name)
    }

    pub fn task(&self, name: &str) -> Option<&Definition> {
        self.manifest.task(name)
    }

    /// The compiled parameter schema of a flow.
    pub fn validator(&self, flow: &str) -> Option<&Arc<jsonschema::Validator>> {
        self.validators.get(flow)
    }
}

pub struct Engine {
    wasmtime: wasmtime::Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    engine_hash: String,
    loaded: Mutex<HashMap<String, Arc<LoadedComponent>>>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// Builds the engine. `cache_dir` holds compiled code by digest, so a restart does
    /// not compile again.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::new();
        let n = limits.max_instances;
        pool.total_component_instances(n)
            .total_core_instances(n * 4)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_memory_size(limits.memory_bytes)
            .max_core_instances_per_component(16)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_unused_warm_slots(n.min(100))
            // Reset only what a guest dirtied, with memset rather than page faults: a
            // task attempt is a fresh instance, so slot reuse is the hot path.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(256 << 10)
            .decommit_batch_size(32);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.wasm_stack_bytes)
            .async_stack_size(limits.wasm_stack_bytes + (1 << 20))
            .memory_reservation(limits.memory_bytes as u64)
            .memory_guard_size(64 << 10)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let wasmtime = wasmtime::Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("cannot configure wasmtime: {e}"))?;

        let mut linker = Linker::new(&wasmtime);
        linker::add_wasi(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::host::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;

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
            linker,
            limits,
            cache_dir,
            engine_hash,
            loaded: Mutex::new(HashMap::new()),
            ticker_stop,
        }))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// sha256 of a component's bytes: its identity everywhere in Weir.
    pub fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A component already loaded in this process.
    pub fn loaded(&self, digest: &str) -> Option<Arc<LoadedComponent>> {
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .cloned()
    }

    /// Validates, compiles (or reuses the on-disk compiled code), links and describes a
    /// component. Loading the same bytes twice returns the same component.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent>, LoadError> {
        let digest = Self::digest(bytes);
        if let Some(c) = self.loaded(&digest) {
            return Ok(c);
        }
        check_header(bytes)?;
        let (component, from_cache) = self.compile(&digest, bytes)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let pre =
            FlowWorldPre::new(instance_pre).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let manifest = self.describe(&pre).await?;
        let mut validators = HashMap::new();
        for flow in &manifest.flows {
            let v = jsonschema::validator_for(&flow.parameters).map_err(|e| {
                LoadError::Describe(format!(
                    "flow '{}' has an invalid parameter schema: {e}",
                    flow.name
                ))
            })?;
            validators.insert(flow.name.clone(), Arc::new(v));
        }
        let loaded = Arc::new(LoadedComponent {
            digest: digest.clone(),
            size: bytes.len(),
            from_cache,
            manifest,
            pre,
            validators,
        });
        let mut map = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.entry(digest).or_insert(loaded).clone())
    }

    fn compile(&self, digest: &str, bytes: &[u8]) -> Result<(Component, bool), LoadError> {
        let cached = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_hash)));
        if let Some(path) = &cached
            && path.exists()
        {
            // SAFETY: the file was written by `Component::serialize` of an engine with
            // the same compatibility hash, into Weir's own cache directory.
            match unsafe { Component::deserialize_file(&self.wasmtime, path) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!("ignoring unusable compiled cache {}: {e}", path.display())
                }
            }
        }
        let component = Component::new(&self.wasmtime, bytes)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if let Some(path) = &cached {
            match component.serialize() {
                Ok(code) => {
                    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                    if std::fs::write(&tmp, code)
                        .and_then(|_| std::fs::rename(&tmp, path))
                        .is_err()
                    {
                        tracing::warn!("cannot write compiled cache {}", path.display());
                    }
                }
                Err(e) => tracing::warn!("cannot serialize compiled component: {e}"),
            }
        }
        Ok((component, false))
    }

    async fn describe(&self, pre: &FlowWorldPre<HostState>) -> Result<Manifest, LoadError> {
        let (mut store, world) = self
            .instantiate(pre, HostState::new(&self.limits, None, None))
            .await
            .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
        let call = world.weir_flow_guest().call_describe(&mut store);
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .map_err(|_| LoadError::Describe("describe did not return within 10 s".into()))?
            .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
        crate::host::convert::manifest_from_wit(m).map_err(LoadError::Describe)
    }

    /// A fresh instance in a fresh store with Weir's limits applied.
    pub(crate) async fn instantiate(
        &self,
        pre: &FlowWorldPre<HostState>,
        state: HostState,
    ) -> wasmtime::Result<(Store<HostState>, FlowWorld)> {
        let mut store = Store::new(&self.wasmtime, state);
        store.limiter(|s| &mut s.limiter);
        store.set_max_component_handles(self.limits.max_handles);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let data = ctx.data_mut();
            if data.cpu_ticks_left == 0 {
                data.cpu_exceeded = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            data.cpu_ticks_left -= 1;
            Ok(UpdateDeadline::Yield(1))
        });
        let world = pre.instantiate_async(&mut store).await?;
        Ok((store, world))
    }

    pub(crate) async fn instantiate_component(
        &self,
        component: &LoadedComponent,
        state: HostState,
    ) -> wasmtime::Result<(Store<HostState>, FlowWorld)> {
        self.instantiate(&component.pre, state).await
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
