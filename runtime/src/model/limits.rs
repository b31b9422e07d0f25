//! Sandbox limits: what one instance may use before Weir stops it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Memory every instance of this process may hold at once, shared by all of them:
    /// their linear memories and what their runs make the host keep.
    pub memory_budget: MemoryBudget,
    /// The CPU meter of the workspace an instance runs for (its fuel quota); `None` for
    /// instances of no workspace.
    pub cpu_meter: Option<Arc<super::quota::CpuMeter>>,
    /// Whether instances count the fuel they burn (deterministic CPU metering per
    /// workspace, and fuel quotas). Off, guest code runs a little faster.
    pub cpu_metering: bool,
    /// What one flow run may make the host keep for it (task runs it started, their
    /// arguments and results), its subflows included.
    pub max_run_host_bytes: usize,
    /// WASI resources (streams, HTTP fields and requests, pollables) one instance may
    /// hold at once, and the size of one set of HTTP header fields.
    pub max_wasi_resources: usize,
    pub max_http_fields_bytes: usize,
    /// Functions a component may define across its core modules: past it, compiling
    /// would take more memory and time than an upload deserves.
    pub max_component_functions: usize,
    /// Where uploads are compiled: in a worker process, bounded in memory and time (the
    /// server's way), or in this process when `None` (`weir run`, which compiles the
    /// user's own components).
    pub compile_worker: Option<CompileWorker>,
    /// How long (and how much CPU) a component may take to start and describe itself.
    pub describe_time: Duration,
    /// Log lines one flow run may write (its task runs included), and the bytes a line
    /// costs beyond its message (counted against `max_log_bytes_per_run`).
    pub max_log_lines_per_run: usize,
    pub log_line_overhead: usize,
    /// Log lines a second one flow run may write, in bursts of ten times as many; the
    /// rest are dropped, and counted in one notice.
    pub log_lines_per_second: u32,
    /// Artifacts one flow run may create, and their bytes in all.
    pub max_artifacts_per_run: usize,
    pub max_artifact_bytes_per_run: usize,
    /// How deep tasks may call tasks (a task calling itself stops here).
    pub max_task_nesting: u32,
    /// Task slots (instances running task attempts) one flow run, and one workspace,
    /// may hold at once, as a share of them all (the rest stay for others).
    pub task_slot_share_per_run: f64,
    pub task_slot_share_per_workspace: f64,
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
            memory_budget: MemoryBudget::of_machine(),
            cpu_meter: None,
            cpu_metering: true,
            max_run_host_bytes: 1 << 30,
            max_wasi_resources: 1024,
            max_http_fields_bytes: 32 << 10,
            max_component_functions: 250_000,
            compile_worker: None,
            describe_time: Duration::from_secs(10),
            max_log_lines_per_run: 100_000,
            log_line_overhead: 128,
            log_lines_per_second: 1000,
            max_artifacts_per_run: 1000,
            max_artifact_bytes_per_run: 64 << 20,
            max_task_nesting: 8,
            task_slot_share_per_run: 0.25,
            task_slot_share_per_workspace: 0.5,
        }
    }
}

impl Limits {
    /// Instances kept for flow runs, hooks and retry conditions; the rest run task attempts.
    pub fn reserved_for_flows(&self) -> u32 {
        (self.max_instances / 10).max(4)
    }
}

/// The compiler process of a server, and how much it may use.
#[derive(Debug, Clone)]
pub struct CompileWorker {
    /// The `weir` executable (it runs `weir compile-worker`).
    pub exe: std::path::PathBuf,
    /// Memory (its data segment, heap and private mappings) one compilation may take.
    pub memory_bytes: usize,
    /// CPU time, and wall-clock time, one compilation may take.
    pub time: Duration,
}

impl CompileWorker {
    /// This executable as the worker, with the default bounds: 2 GiB, 120 s.
    pub fn this_executable() -> Option<Self> {
        Some(Self {
            exe: std::env::current_exe().ok()?,
            memory_bytes: 2 << 30,
            time: Duration::from_secs(120),
        })
    }
}

/// A budget of bytes shared by everything that takes from it (every instance and run of
/// a process, or of one workspace): a take that would pass the limit is refused,
/// whoever asks. A budget may be within another (a workspace's within the process's):
/// what it takes, it takes from both.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    limit: AtomicUsize,
    used: AtomicUsize,
    parent: Option<MemoryBudget>,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(BudgetInner {
                limit: AtomicUsize::new(limit),
                used: AtomicUsize::new(0),
                parent: None,
            }),
        }
    }

    /// A budget of `limit` bytes within this one (a workspace's share of the process's).
    pub fn within(&self, limit: usize) -> Self {
        Self {
            inner: Arc::new(BudgetInner {
                limit: AtomicUsize::new(limit),
                used: AtomicUsize::new(0),
                parent: Some(self.clone()),
            }),
        }
    }

    /// Three quarters of what the machine (or the process's cgroup) has, or 4 GiB when
    /// that cannot be read.
    pub fn of_machine() -> Self {
        Self::new(machine_memory().map_or(4 << 30, |m| m / 4 * 3))
    }

    pub fn limit(&self) -> usize {
        self.inner.limit.load(Ordering::Relaxed)
    }

    /// Changes the limit; what is taken stays taken (past a lower limit, takes are
    /// refused until enough is given back).
    pub fn set_limit(&self, limit: usize) {
        self.inner.limit.store(limit, Ordering::Relaxed);
    }

    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The budget this one is within, and so on up: the process's.
    pub fn outermost(&self) -> &MemoryBudget {
        match &self.inner.parent {
            Some(p) => p.outermost(),
            None => self,
        }
    }

    /// Whether this budget is within another (a workspace's).
    pub fn is_nested(&self) -> bool {
        self.inner.parent.is_some()
    }

    /// Takes `n` bytes if they fit under the limit (and the limits of the budgets this
    /// one is within).
    pub fn try_take(&self, n: usize) -> bool {
        self.take_or_refuse(n).is_ok()
    }

    /// Takes `n` bytes, or says which budget refused them (nothing is taken then).
    pub fn take_or_refuse(&self, n: usize) -> Result<(), MemoryBudget> {
        let inner = &self.inner;
        let limit = inner.limit.load(Ordering::Relaxed);
        if inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= limit)
            })
            .is_err()
        {
            return Err(self.clone());
        }
        if let Some(parent) = &inner.parent
            && let Err(refused) = parent.take_or_refuse(n)
        {
            self.give_here(n);
            return Err(refused);
        }
        Ok(())
    }

    /// Takes `n` bytes that are in use whether or not they fit (the budget may pass its
    /// limit: then every `try_take` fails until enough is given back).
    pub fn take(&self, n: usize) {
        self.inner.used.fetch_add(n, Ordering::AcqRel);
        if let Some(parent) = &self.inner.parent {
            parent.take(n);
        }
    }

    /// Gives back `n` bytes taken before.
    pub fn give(&self, n: usize) {
        self.give_here(n);
        if let Some(parent) = &self.inner.parent {
            parent.give(n);
        }
    }

    fn give_here(&self, n: usize) {
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

/// The machine's memory, or the process's cgroup limit when that is lower.
fn machine_memory() -> Option<usize> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })?;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    Some(cgroup.map_or(total, |c| c.min(total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_what_would_pass_its_limit() {
        let b = MemoryBudget::new(100);
        assert!(b.try_take(60));
        assert!(!b.try_take(41));
        assert!(b.try_take(40));
        assert_eq!(b.used(), 100);
        b.give(70);
        assert_eq!(b.used(), 30);
        assert!(!b.try_take(usize::MAX));
        b.give(1000);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_budget_within_another_takes_from_both_and_names_who_refused() {
        let node = MemoryBudget::new(100);
        let ws = node.within(50);
        assert!(ws.try_take(40));
        assert_eq!((ws.used(), node.used()), (40, 40));
        let refused = ws.take_or_refuse(20).unwrap_err();
        assert!(refused.is_nested(), "the workspace's limit refused");
        assert!(node.try_take(55));
        let refused = ws.take_or_refuse(6).unwrap_err();
        assert!(!refused.is_nested(), "the node's limit refused");
        assert_eq!(
            (ws.used(), node.used()),
            (40, 95),
            "nothing taken by a refusal"
        );
        ws.give(40);
        assert_eq!((ws.used(), node.used()), (0, 55));
        ws.set_limit(10);
        assert!(!ws.try_take(11));
    }
}
