//! Retention: how long a workspace or a deployment keeps its finished runs.
//!
//! A finished flow run (with its subflows, task runs, state history, logs, artifacts and
//! results) is deleted once it is older than `days` or no longer among the newest `runs`
//! finished runs of its scope: both bounds hold when both are set. A deployment with a
//! policy of its own answers only to it; every other run of a workspace answers to the
//! workspace's policy, or to the server's default when the workspace has none. Runs that
//! have not finished are never deleted, nor a run whose subflows are still going.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A retention policy. Both `None`: keep everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Finished runs older than this many days are deleted.
    pub days: Option<u32>,
    /// Only the newest this many finished runs are kept.
    pub runs: Option<u32>,
}

impl Retention {
    /// The longest period a policy may name (a hundred years).
    pub const MAX_DAYS: u32 = 36_500;
    /// The most runs a policy may name to keep.
    pub const MAX_RUNS: u32 = 100_000_000;

    pub fn is_empty(&self) -> bool {
        self.days.is_none() && self.runs.is_none()
    }

    /// Builds a policy from numbers a client sent, naming each field out of range.
    pub fn check(days: Option<i64>, runs: Option<i64>, field: &str) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut bounded = |v: Option<i64>, name: &str, max: u32| match v {
            None => None,
            Some(n) if n >= 1 && n <= i64::from(max) => Some(n as u32),
            Some(n) => {
                errors.push(format!("'{field}{name}' must be from 1 to {max} (got {n})"));
                None
            }
        };
        let policy = Self {
            days: bounded(days, "days", Self::MAX_DAYS),
            runs: bounded(runs, "runs", Self::MAX_RUNS),
        };
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }

    /// The policy of a deployment, else of its workspace, else the server's.
    pub fn or(self, other: Self) -> Self {
        if self.is_empty() { other } else { self }
    }
}

/// The policy in words: "finished runs are kept 30 days, at most the newest 1000".
impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u32, one: &str, many: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {many}")
            }
        };
        match (self.days, self.runs) {
            (None, None) => write!(f, "finished runs are kept until deleted"),
            (Some(d), None) => write!(f, "finished runs are kept {}", plural(d, "day", "days")),
            (None, Some(1)) => write!(f, "only the newest finished run is kept"),
            (None, Some(n)) => write!(f, "the newest {n} finished runs are kept"),
            (Some(d), Some(n)) => write!(
                f,
                "finished runs are kept {}, at most the newest {n}",
                plural(d, "day", "days")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_bounds_and_names_fields() {
        assert_eq!(
            Retention::check(Some(30), None, "").unwrap(),
            Retention {
                days: Some(30),
                runs: None
            }
        );
        let errors = Retention::check(Some(0), Some(-3), "retention.").unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].contains("'retention.days' must be from 1 to 36500"),
            "{errors:?}"
        );
        assert!(errors[1].contains("'retention.runs'"), "{errors:?}");
        assert!(Retention::check(Some(36_501), None, "").is_err());
    }

    #[test]
    fn deployment_policy_replaces_the_workspace_one() {
        let ws = Retention {
            days: Some(7),
            runs: None,
        };
        let own = Retention {
            days: None,
            runs: Some(10),
        };
        assert_eq!(own.or(ws), own);
        assert_eq!(Retention::default().or(ws), ws);
    }

    #[test]
    fn says_what_is_kept() {
        assert_eq!(
            Retention::default().to_string(),
            "finished runs are kept until deleted"
        );
        let both = Retention {
            days: Some(1),
            runs: Some(500),
        };
        assert_eq!(
            both.to_string(),
            "finished runs are kept 1 day, at most the newest 500"
        );
        let one = Retention {
            days: None,
            runs: Some(1),
        };
        assert_eq!(one.to_string(), "only the newest finished run is kept");
    }
}
