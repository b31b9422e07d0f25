//! Failures of flows and tasks.
//!
//! A failure the host made (a timeout, a trap, a blown limit) and a failure a guest
//! returned are different types of thing: the host acts on its own kinds (a flow that
//! timed out takes its task runs down with it; one that returned an error waits for
//! them), so a guest must never be able to pass for the host. Host kinds are the
//! variants of [`FailureKind`]; whatever kind a guest names, even "timeout", is data
//! in [`FailureKind::Guest`].

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// What kind of failure ended a run, and who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The run exceeded its timeout.
    Timeout,
    /// The guest panicked.
    Panic,
    /// The guest trapped or aborted.
    Trap,
    /// The instance exceeded its memory limit.
    Memory,
    /// The instance exceeded its CPU time limit.
    Cpu,
    /// The guest overflowed its call stack.
    StackOverflow,
    /// A sandbox limit (result size, log volume, handles, host calls, nesting).
    Limit,
    /// No instance could be started.
    Instantiate,
    /// A replayed run made a different call at a recorded position.
    ReplayMismatch,
    /// A pause nobody resumed in time.
    PauseTimeout,
    /// The run was cancelled.
    Cancelled,
    /// The server shut down or lost the run; it resumes elsewhere or later.
    Interrupted,
    /// Parameters or arguments that do not fit the schema.
    InvalidParameters,
    /// A flow or task name the component does not have.
    Unknown,
    /// A task run this one waits for did not complete.
    Upstream,
    /// A flow returned a failed (or non-final) state.
    State,
    /// A failure the guest returned, with the kind it gave.
    Guest(String),
}

impl FailureKind {
    /// The kind as guests and API clients read it ("timeout", or the guest's own).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Timeout => "timeout",
            Self::Panic => "panic",
            Self::Trap => "trap",
            Self::Memory => "memory",
            Self::Cpu => "cpu",
            Self::StackOverflow => "stack-overflow",
            Self::Limit => "limit",
            Self::Instantiate => "instantiate",
            Self::ReplayMismatch => "replay-mismatch",
            Self::PauseTimeout => "pause-timeout",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::InvalidParameters => "invalid-parameters",
            Self::Unknown => "unknown",
            Self::Upstream => "upstream",
            Self::State => "state",
            Self::Guest(kind) => kind,
        }
    }

    /// Whether the host itself stopped the execution (the instance is gone or must go),
    /// as opposed to the flow returning: a stopped flow run takes its unfinished task
    /// runs down with it instead of waiting for them.
    pub fn stopped_by_host(&self) -> bool {
        matches!(
            self,
            Self::Timeout
                | Self::Panic
                | Self::Trap
                | Self::Memory
                | Self::Cpu
                | Self::StackOverflow
                | Self::Limit
                | Self::Instantiate
                | Self::ReplayMismatch
                | Self::PauseTimeout
        )
    }

    pub fn is_guest(&self) -> bool {
        matches!(self, Self::Guest(_))
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FailureKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a flow or task run failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub retryable: Option<bool>,
    pub details: Option<Value>,
}

/// `{"kind", "origin", "message", "retryable"?, "details"?}`: the origin (`"host"` or
/// `"guest"`) tells a reader a guest's error named "timeout" from the host's timeout.
impl Serialize for Failure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind.as_str())?;
        m.serialize_entry(
            "origin",
            if self.kind.is_guest() {
                "guest"
            } else {
                "host"
            },
        )?;
        m.serialize_entry("message", &self.message)?;
        if let Some(r) = self.retryable {
            m.serialize_entry("retryable", &r)?;
        }
        if let Some(d) = &self.details {
            m.serialize_entry("details", d)?;
        }
        m.end()
    }
}

impl Failure {
    /// A failure the host made.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable: None,
            details: None,
        }
    }

    /// A failure no retry can fix (bad input, a replay mismatch, an unknown name).
    pub fn permanent(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            retryable: Some(false),
            ..Self::new(kind, message)
        }
    }

    /// A failure a guest returned: its kind is data, never one of the host's.
    pub fn guest(
        kind: impl Into<String>,
        message: impl Into<String>,
        retryable: Option<bool>,
        details: Option<Value>,
    ) -> Self {
        Self {
            retryable,
            details,
            ..Self::new(FailureKind::Guest(kind.into()), message)
        }
    }
}
