//! Prefect's run states: a type, a name (sub-state) and a message, stamped in UTC; the
//! transitions Weir allows between them; and the sets of state types the store's SQL
//! guards with.
//!
//! A final state (Completed, Failed, Cancelled, Crashed) is never left, except by an
//! explicit retry of the run ([`Transition::Retry`]): a late write (a cancel racing a
//! completion, a node that lost its run still writing) must not change how a run ended.
//! The store enforces this in SQL with [`FINAL_SQL`] on every state update, and the
//! batched writer folds several changes of one run in a batch with [`State::absorb`]'s
//! rule, so the database and the engine agree on the one allowed path.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The type of a state. Names such as "Cached" or "Retrying" are sub-states of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateType {
    Scheduled,
    Pending,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelling,
    Cancelled,
    Crashed,
}

impl StateType {
    /// Every state type, in the order a run meets them.
    pub const ALL: [StateType; 9] = [
        StateType::Scheduled,
        StateType::Pending,
        StateType::Running,
        StateType::Paused,
        StateType::Completed,
        StateType::Failed,
        StateType::Cancelling,
        StateType::Cancelled,
        StateType::Crashed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelling => "CANCELLING",
            Self::Cancelled => "CANCELLED",
            Self::Crashed => "CRASHED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "SCHEDULED" => Self::Scheduled,
            "PENDING" => Self::Pending,
            "RUNNING" => Self::Running,
            "PAUSED" => Self::Paused,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLING" => Self::Cancelling,
            "CANCELLED" => Self::Cancelled,
            "CRASHED" => Self::Crashed,
            _ => return None,
        })
    }

    /// The default name of a state of this type ("Completed" for COMPLETED).
    pub fn default_name(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Paused => "Paused",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Cancelling => "Cancelling",
            Self::Cancelled => "Cancelled",
            Self::Crashed => "Crashed",
        }
    }

    /// Final states end a run: nothing moves it on from there.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Crashed
        )
    }
}

/// The final state types as a SQL list, for `concat!` in static statements.
macro_rules! final_sql {
    () => {
        "('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED')"
    };
}
pub(crate) use final_sql;

/// The final state types, as a SQL list: `state_type NOT IN {FINAL_SQL}` guards every
/// update of a run's state.
pub const FINAL_SQL: &str = final_sql!();

/// The state types of a flow run a node may be holding (claimed, not final), as a SQL
/// list.
pub const HELD_SQL: &str = "('SCHEDULED', 'PENDING', 'RUNNING', 'CANCELLING', 'PAUSED')";

/// How a run's state may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The ordinary path: any state that is not final may move to any state.
    Forward,
    /// A user retries a finished run (Failed, Crashed or Cancelled): it leaves its final
    /// state for Scheduled. The only way out of a final state.
    Retry,
}

impl Transition {
    /// Whether a run in `from` may move to `to` this way.
    pub fn allows(self, from: StateType, to: StateType) -> bool {
        match self {
            Self::Forward => !from.is_final(),
            Self::Retry => {
                matches!(
                    from,
                    StateType::Failed | StateType::Crashed | StateType::Cancelled
                ) && to == StateType::Scheduled
            }
        }
    }
}

impl fmt::Display for StateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state of a flow run or task run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "type")]
    pub kind: StateType,
    pub name: String,
    pub message: Option<String>,
    pub timestamp: DateTime<Utc>,
}

impl State {
    pub fn new(kind: StateType) -> Self {
        Self {
            kind,
            name: kind.default_name().to_owned(),
            message: None,
            timestamp: Utc::now(),
        }
    }

    pub fn named(kind: StateType, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::new(kind)
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn pending() -> Self {
        Self::new(StateType::Pending)
    }
    pub fn running() -> Self {
        Self::new(StateType::Running)
    }
    pub fn completed() -> Self {
        Self::new(StateType::Completed)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(StateType::Failed).with_message(message)
    }
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(StateType::Cancelled).with_message(message)
    }
    /// Prefect's `AwaitingRetry`: scheduled to run again.
    pub fn awaiting_retry(message: impl Into<String>) -> Self {
        Self::named(StateType::Scheduled, "AwaitingRetry").with_message(message)
    }
    /// Prefect's `Retrying`: running again after a failure.
    pub fn retrying() -> Self {
        Self::named(StateType::Running, "Retrying")
    }
    pub fn cached() -> Self {
        Self::named(StateType::Completed, "Cached")
    }
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self::named(StateType::Failed, "TimedOut").with_message(message)
    }
    /// An upstream task this one waits for did not complete.
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::named(StateType::Pending, "NotReady").with_message(message)
    }

    pub fn is_final(&self) -> bool {
        self.kind.is_final()
    }
    pub fn is_completed(&self) -> bool {
        self.kind == StateType::Completed
    }
}

/// Prefect's way of printing a state: `Completed()`, `Failed('boom')`,
/// `Cached(type=COMPLETED)`.
impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        let mut sep = "";
        if let Some(message) = &self.message {
            write!(f, "{message:?}")?;
            sep = ", ";
        }
        if self.name != self.kind.default_name() {
            write!(f, "{sep}type={}", self.kind)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_prefect() {
        assert_eq!(State::completed().to_string(), "Completed()");
        assert_eq!(State::failed("boom").to_string(), "Failed(\"boom\")");
        assert_eq!(State::cached().to_string(), "Cached(type=COMPLETED)");
        assert_eq!(
            State::timed_out("late").to_string(),
            "TimedOut(\"late\", type=FAILED)"
        );
    }

    #[test]
    fn final_states_are_left_only_by_a_retry() {
        use StateType::*;
        let all = [
            Scheduled, Pending, Running, Paused, Completed, Failed, Cancelling, Cancelled, Crashed,
        ];
        for from in all {
            for to in all {
                assert_eq!(Transition::Forward.allows(from, to), !from.is_final());
            }
        }
        assert!(Transition::Retry.allows(Failed, Scheduled));
        assert!(Transition::Retry.allows(Cancelled, Scheduled));
        assert!(!Transition::Retry.allows(Completed, Scheduled));
        assert!(!Transition::Retry.allows(Failed, Running));
        assert!(!Transition::Retry.allows(Running, Scheduled));
        // The SQL lists say the same as the types.
        for t in all {
            assert_eq!(
                FINAL_SQL.contains(&format!("'{}'", t.as_str())),
                t.is_final()
            );
        }
    }

    #[test]
    fn parses_its_own_names() {
        for t in StateType::ALL {
            assert_eq!(StateType::parse(t.as_str()), Some(t));
        }
        assert_eq!(StateType::parse("nope"), None);
    }
}
