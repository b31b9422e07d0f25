//! The limits of one instance, whatever its store data: memory (a [`Limiter`]), CPU
//! time in epoch ticks, and a budget of host calls. The store data of a world holds a
//! [`Sandbox`] and lends it to the engine through [`Sandboxed`].

use crate::model::limits::{Limits, MemoryBudget};
use crate::model::quota::CpuMeter;
use std::sync::Arc;
use wasmtime::ResourceLimiter;

/// Fuel an instance starts with when its workspace has no fuel quota: more than any
/// instance can burn, so fuel only counts (the limit is the CPU time).
pub(crate) const FUEL_TANK: u64 = 1 << 62;
/// Fuel every instance gets to start, whatever is left of its workspace's quota (about
/// a millisecond of guest code).
const STARTING_FUEL: u64 = 1_000_000;

/// What the engine needs of an instance's store data: its sandbox, and the last lines
/// the guest wrote to stderr (to explain a trap).
pub trait Sandboxed: Send + 'static {
    fn sandbox(&self) -> &Sandbox;
    fn sandbox_mut(&mut self) -> &mut Sandbox;
    /// The last lines the guest wrote to stderr (a panic message, usually).
    fn stderr_tail(&self) -> String;
}

/// The limits state of one instance.
pub struct Sandbox {
    pub(crate) limiter: Limiter,
    host_calls_left: u64,
    host_call_budget: u64,
    pub(crate) cpu_ticks_left: u64,
    pub(crate) cpu_exceeded: bool,
    /// The workspace's meter, charged with the fuel the instance burns.
    pub(crate) cpu_meter: Option<Arc<CpuMeter>>,
    /// The fuel level when the meter was last charged.
    pub(crate) fuel_seen: u64,
    /// Set when the workspace's fuel quota stopped the instance.
    pub(crate) fuel_quota_spent: bool,
    /// Whether the engine counts fuel (`Limits::cpu_metering`).
    pub(crate) metering: bool,
}

/// Errors the host raises as traps; the orchestrator turns them into failure messages.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the instance made more than {0} host calls")]
    HostCallBudget(u64),
    #[error("{0} is not available while a component describes itself")]
    NoRun(&'static str),
}

impl Sandbox {
    pub(crate) fn new(limits: &Limits) -> Self {
        let cpu_ticks = (limits.cpu_time.as_nanos() / limits.epoch_tick.as_nanos().max(1)) as u64;
        Self {
            limiter: Limiter {
                memory_limit: limits.memory_bytes,
                used: 0,
                last_grant: 0,
                budget: limits.memory_budget.clone(),
                memory_exceeded: None,
            },
            host_calls_left: limits.max_host_calls,
            host_call_budget: limits.max_host_calls,
            cpu_ticks_left: cpu_ticks.max(1),
            cpu_exceeded: false,
            cpu_meter: limits.cpu_meter.clone(),
            fuel_seen: FUEL_TANK,
            fuel_quota_spent: false,
            metering: limits.cpu_metering,
        }
    }

    /// The fuel an instance starts with: what is left of its workspace's fuel quota
    /// (running out of it traps: the quota is spent), or [`FUEL_TANK`].
    pub(crate) fn starting_fuel(&mut self) -> u64 {
        // Enough to start even when the quota is spent, so that the guest's call, not
        // its instantiation, fails (with the quota's message).
        let fuel = self
            .cpu_meter
            .as_ref()
            .map_or(FUEL_TANK, |m| m.remaining().clamp(STARTING_FUEL, FUEL_TANK));
        self.fuel_seen = fuel;
        fuel
    }

    /// Charges the workspace's meter with the fuel burnt since the last charge (the
    /// store's level is `fuel_left`) and `ticks`; false once its quota is spent.
    pub(crate) fn meter(&mut self, fuel_left: u64, ticks: u64) -> bool {
        if !self.metering {
            return true;
        }
        let burnt = self.fuel_seen.saturating_sub(fuel_left);
        self.fuel_seen = fuel_left;
        match &self.cpu_meter {
            Some(m) => m.charge(burnt, ticks),
            None => true,
        }
    }

    /// Counts a host call against the instance's budget.
    #[inline]
    pub(crate) fn charge(&mut self) -> wasmtime::Result<()> {
        if self.host_calls_left == 0 {
            return Err(wasmtime::Error::new(SandboxError::HostCallBudget(
                self.host_call_budget,
            )));
        }
        self.host_calls_left -= 1;
        Ok(())
    }
}

/// Which memory limit refused a grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// The instance's own limit, across all its linear memories.
    Instance,
    /// The memory budget all instances of the process share.
    Node,
    /// The memory quota of the workspace the instance runs for.
    Workspace,
}

/// Caps the linear memory of an instance, across all its memories, and takes it from
/// the process's [`MemoryBudget`] (given back when the instance ends); remembers which
/// limit refused a grow, so that the trap that follows (a Rust guest aborts when
/// allocation fails) can be reported as what it is.
pub(crate) struct Limiter {
    memory_limit: usize,
    /// Bytes of all the instance's memories.
    used: usize,
    /// The last grow allowed, given back if the system then fails it.
    last_grant: usize,
    budget: MemoryBudget,
    pub(crate) memory_exceeded: Option<Exceeded>,
}

impl Limiter {
    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    pub(crate) fn budget(&self) -> &MemoryBudget {
        &self.budget
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.give(self.used);
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called with `current` 0 when a memory is created, so every memory counts.
        let more = desired.saturating_sub(current);
        if self.used.saturating_add(more) > self.memory_limit {
            self.memory_exceeded = Some(Exceeded::Instance);
            return Ok(false);
        }
        if let Err(refused) = self.budget.take_or_refuse(more) {
            self.memory_exceeded = Some(if refused.is_nested() {
                Exceeded::Workspace
            } else {
                Exceeded::Node
            });
            return Ok(false);
        }
        self.used += more;
        self.last_grant = more;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        let grant = std::mem::take(&mut self.last_grant);
        self.used -= grant;
        self.budget.give(grant);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
