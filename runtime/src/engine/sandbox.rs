//! The limits of one instance, whatever its store data: memory (a [`Limiter`]), CPU
//! time in epoch ticks, and a budget of host calls. The store data of a world holds a
//! [`Sandbox`] and lends it to the engine through [`Sandboxed`].

use crate::model::limits::Limits;
use wasmtime::ResourceLimiter;

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
                memory_exceeded: false,
            },
            host_calls_left: limits.max_host_calls,
            host_call_budget: limits.max_host_calls,
            cpu_ticks_left: cpu_ticks.max(1),
            cpu_exceeded: false,
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

/// Caps linear memory and remembers that a guest hit the cap, so that the trap that
/// follows (a Rust guest aborts when allocation fails) can be reported as what it is.
pub(crate) struct Limiter {
    memory_limit: usize,
    pub(crate) memory_exceeded: bool,
}

impl Limiter {
    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
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
