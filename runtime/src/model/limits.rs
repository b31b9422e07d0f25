//! Sandbox limits: what one instance may use before Weir stops it.

use std::time::Duration;

/// Limits applied to every instance (a flow run or a task attempt).
///
/// The defaults are closed and modest: a run that needs more asks for it explicitly.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory per instance.
    pub memory_bytes: usize,
    /// WebAssembly call stack per instance (wasmtime's `max_wasm_stack`).
    pub wasm_stack_bytes: usize,
    /// CPU time one instance may spend executing guest code.
    pub cpu_time: Duration,
    /// Largest result (JSON text) a flow or task may return.
    pub max_result_bytes: usize,
    /// Log volume (bytes of messages) one flow run may write, its task runs included.
    pub max_log_bytes_per_run: usize,
    /// Largest artifact payload.
    pub max_artifact_bytes: usize,
    /// Resource handles (task futures) one instance may hold at once.
    pub max_handles: usize,
    /// Host calls one instance may make.
    pub max_host_calls: u64,
    /// Instances that may exist at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Submitted or mapped task runs in progress at once; more wait their turn in order.
    pub max_active_task_runs: usize,
    /// How often the epoch ticks: the granularity of CPU accounting and of yields.
    pub epoch_tick: Duration,
    /// Subflow nesting depth.
    pub max_subflow_depth: u32,
    /// Components kept in memory, compiled and linked; past it the least recently used
    /// is dropped, and read back from the compiled code on disk when used again.
    pub max_loaded_components: usize,
    /// Compiled code of the components kept in memory, in bytes (the same eviction).
    pub max_loaded_component_bytes: usize,
    /// Components compiled at once, in the blocking pool; more wait their turn.
    pub max_concurrent_compiles: usize,
    /// Network ranges outbound requests may reach beyond the global internet (loopback,
    /// private, link-local, metadata... are denied unless opened here).
    pub egress: super::egress::Egress,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            wasm_stack_bytes: 1 << 20,
            cpu_time: Duration::from_secs(300),
            max_result_bytes: 8 << 20,
            max_log_bytes_per_run: 4 << 20,
            max_artifact_bytes: 1 << 20,
            max_handles: 1 << 20,
            max_host_calls: 5_000_000,
            max_instances: 1000,
            max_active_task_runs: 4096,
            epoch_tick: Duration::from_millis(10),
            max_subflow_depth: 32,
            max_loaded_components: 256,
            max_loaded_component_bytes: 1 << 30,
            max_concurrent_compiles: std::thread::available_parallelism().map_or(2, |n| n.get()),
            egress: super::egress::Egress::default(),
        }
    }
}

impl Limits {
    /// Instances kept for flow runs, hooks and retry conditions; the rest run task attempts.
    pub fn reserved_for_flows(&self) -> u32 {
        (self.max_instances / 10).max(4)
    }
}
