//! Failures of flows and tasks, and how a trap or a blown limit becomes one.

use crate::engine::sandbox::{HostState, SandboxError};
use crate::host::wit;
use serde::Serialize;
use serde_json::Value;
use wasmtime::{Store, Trap};

/// Why a flow or task run failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub kind: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl Failure {
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.into(),
            retryable: None,
            details: None,
        }
    }

    /// A failure no retry can fix (bad input, a replay mismatch, an unknown name).
    pub fn permanent(kind: &str, message: impl Into<String>) -> Self {
        Self {
            retryable: Some(false),
            ..Self::new(kind, message)
        }
    }

    pub(crate) fn from_wit(f: wit::Failure) -> Self {
        Self {
            kind: f.kind,
            message: f.message,
            retryable: f.retryable,
            details: f.details.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }

    pub(crate) fn to_wit(&self) -> wit::Failure {
        wit::Failure {
            kind: self.kind.clone(),
            message: self.message.clone(),
            retryable: self.retryable,
            details: self.details.as_ref().map(Value::to_string),
        }
    }

    /// Explains why a guest call ended in an error: a limit it hit, a trap, a panic.
    pub(crate) fn from_guest_error(err: &wasmtime::Error, store: &Store<HostState>) -> Self {
        let data = store.data();
        if data.limiter.memory_exceeded {
            return Self::new(
                "memory",
                format!(
                    "the instance exceeded its memory limit of {} MiB",
                    data.limiter.memory_limit() >> 20
                ),
            );
        }
        if data.cpu_exceeded {
            return Self::new("cpu", "the instance exceeded its CPU time limit");
        }
        if let Some(e) = err.downcast_ref::<SandboxError>() {
            return Self::permanent("limit", e.to_string());
        }
        let tail = data.stderr_tail();
        match err.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => Self::new(
                "stack-overflow",
                "the guest overflowed its call stack (unbounded recursion?)",
            ),
            Some(Trap::UnreachableCodeReached) => match panic_message(&tail) {
                Some(msg) => Self::new("panic", msg),
                None if !tail.is_empty() => {
                    Self::new("trap", format!("the guest aborted: {}", last_line(&tail)))
                }
                None => Self::new("trap", "the guest aborted (unreachable code reached)"),
            },
            Some(Trap::MemoryOutOfBounds) => Self::new(
                "trap",
                "out-of-bounds memory access (a stack overflow in linear memory, or a bug in \
                 the guest)",
            ),
            Some(trap) => Self::new("trap", format!("the guest trapped: {trap}")),
            None => {
                let cause = err.root_cause().to_string();
                Self::new("trap", format!("the guest failed: {}", first_line(&cause)))
            }
        }
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
