//! A schedule's policies: what happens to missed fire times, and to a run due while the
//! previous run of its deployment is still going.

use serde::{Deserialize, Serialize};

/// What happens to fire times missed while no scheduler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Catchup {
    /// Missed fire times get no run.
    Skip,
    /// Only the latest missed fire time gets a run.
    Latest,
    /// Every missed fire time gets a run, up to the schedule's limit (the latest ones).
    All,
}

/// What happens when a scheduled run is due while the previous run of its deployment
/// is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Both run.
    Allow,
    /// The new run is skipped (it ends Cancelled, named Skipped).
    Skip,
    /// The previous run is cancelled; the new one runs.
    Cancel,
    /// The new run waits until the previous one ends.
    Queue,
}

impl Catchup {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Latest => "latest",
            Self::All => "all",
        }
    }
}

impl Overlap {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Skip => "skip",
            Self::Cancel => "cancel",
            Self::Queue => "queue",
        }
    }
}
