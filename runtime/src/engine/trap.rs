//! How a trap or a blown limit becomes a [`Failure`] the user can read.

use super::sandbox::{Exceeded, Limiter, SandboxError, Sandboxed};
use crate::model::failure::{Failure, FailureKind};
use wasmtime::{Store, Trap};

/// Explains why a guest call ended in an error: a limit it hit, a trap, a panic. Every
/// failure made here is the host's own kind.
pub(crate) fn explain<T: Sandboxed>(err: &wasmtime::Error, store: &Store<T>) -> Failure {
    let data = store.data();
    let sandbox = data.sandbox();
    let trap = err.downcast_ref::<Trap>();
    // A refused grow explains an abort that follows it, not an out-of-bounds access
    // (a guest that ignores a failed grow and writes past its memory has a bug).
    if let Some(exceeded) = sandbox.limiter.memory_exceeded
        && trap != Some(&Trap::MemoryOutOfBounds)
    {
        return memory_failure(exceeded, &sandbox.limiter);
    }
    if let Some(wasmtime::component::ResourceTableError::Full) =
        err.downcast_ref::<wasmtime::component::ResourceTableError>()
    {
        return Failure::permanent(
            FailureKind::Limit,
            "the instance holds more host resources (WASI streams, HTTP fields and \
             requests, task futures) at once than its limit",
        );
    }
    if sandbox.fuel_quota_spent || (trap == Some(&Trap::OutOfFuel) && sandbox.cpu_meter.is_some()) {
        let budget = sandbox
            .cpu_meter
            .as_ref()
            .and_then(|m| m.budget())
            .unwrap_or_default();
        return Failure::permanent(
            FailureKind::Cpu,
            format!(
                "the workspace's CPU quota ({budget} fuel an hour) is spent; it renews at \
                 the next hour"
            ),
        );
    }
    if sandbox.cpu_exceeded {
        return Failure::new(FailureKind::Cpu, "the instance exceeded its CPU time limit");
    }
    if let Some(e) = err.downcast_ref::<SandboxError>() {
        return Failure::permanent(FailureKind::Limit, e.to_string());
    }
    let tail = data.stderr_tail();
    match trap {
        Some(Trap::StackOverflow) => Failure::new(
            FailureKind::StackOverflow,
            "the guest overflowed its call stack (unbounded recursion?)",
        ),
        Some(Trap::UnreachableCodeReached) => match panic_message(&tail) {
            Some(msg) => Failure::new(FailureKind::Panic, msg),
            None if !tail.is_empty() => Failure::new(
                FailureKind::Trap,
                format!("the guest aborted: {}", last_line(&tail)),
            ),
            None => Failure::new(
                FailureKind::Trap,
                "the guest aborted (unreachable code reached)",
            ),
        },
        Some(Trap::MemoryOutOfBounds) if sandbox.limiter.memory_exceeded.is_some() => Failure::new(
            FailureKind::Trap,
            "out-of-bounds memory access after a memory.grow was refused (the guest \
                 used memory it did not get)",
        ),
        Some(Trap::MemoryOutOfBounds) => Failure::new(
            FailureKind::Trap,
            "out-of-bounds memory access (a stack overflow in linear memory, or a bug in \
             the guest)",
        ),
        Some(trap) => Failure::new(FailureKind::Trap, format!("the guest trapped: {trap}")),
        None => {
            let cause = err.root_cause().to_string();
            Failure::new(
                FailureKind::Trap,
                format!("the guest failed: {}", first_line(&cause)),
            )
        }
    }
}

fn memory_failure(exceeded: Exceeded, limiter: &Limiter) -> Failure {
    match exceeded {
        Exceeded::Instance => Failure::new(
            FailureKind::Memory,
            format!(
                "the instance exceeded its memory limit of {} MiB (all its memories)",
                limiter.memory_limit() >> 20
            ),
        ),
        // Not the guest's doing alone: the attempt may be retried once others end.
        Exceeded::Node => Failure::new(
            FailureKind::Memory,
            format!(
                "the server's memory budget for instances ({} MiB, shared by every run) \
                 is in use; the instance could not grow",
                limiter.budget().outermost().limit() >> 20
            ),
        ),
        Exceeded::Workspace => Failure::new(
            FailureKind::Memory,
            format!(
                "the workspace's memory quota ({} MiB, shared by its runs) is in use; the \
                 instance could not grow",
                limiter.budget().limit() >> 20
            ),
        ),
    }
}

/// Rust prints "thread '<unnamed>' panicked at src/lib.rs:3:5:\nboom" before aborting.
fn panic_message(tail: &str) -> Option<String> {
    let lines: Vec<&str> = tail.lines().collect();
    let i = lines.iter().rposition(|l| l.contains("panicked at"))?;
    let at = lines[i];
    let location = at
        .split("panicked at ")
        .nth(1)
        .unwrap_or("")
        .trim_end_matches(':');
    let msg: Vec<&str> = lines[i + 1..]
        .iter()
        .copied()
        .take_while(|l| !l.starts_with("note:"))
        .collect();
    Some(if msg.is_empty() {
        format!("the guest panicked at {location}")
    } else {
        format!("the guest panicked at {location}: {}", msg.join(" "))
    })
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rust_panic_messages() {
        let tail = "thread '<unnamed>' panicked at src/lib.rs:10:5:\nboom\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(
            panic_message(tail).unwrap(),
            "the guest panicked at src/lib.rs:10:5: boom"
        );
        assert_eq!(panic_message("hello"), None);
    }
}
