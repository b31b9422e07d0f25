//! Workspace quotas (set by the admin) and the CPU meter every instance of a workspace
//! charges.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What one workspace may use. `None` is no quota of the workspace's own (the server's
/// limits and shares still hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quotas {
    /// Flow runs executing at once, across nodes; more wait, Scheduled (then Late).
    pub runs_in_flight: Option<u32>,
    /// Task slots (instances running task attempts) the workspace may hold at once on a
    /// node, within the server's share per workspace.
    pub task_slots: Option<u32>,
    /// Memory of the workspace's instances and what its runs make the host keep, per node.
    pub memory_mb: Option<u64>,
    /// Bytes of logs, artifacts and results stored for the workspace.
    pub storage_mb: Option<u64>,
    /// Components uploaded to the workspace.
    pub components: Option<u32>,
    /// Fuel (WebAssembly instructions, counted deterministically) the workspace's
    /// instances may execute per hour, across nodes.
    pub fuel_per_hour: Option<u64>,
}

impl Quotas {
    /// Largest value of any quota: larger numbers are refused as input.
    pub const MAX: u64 = 1 << 53;

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The current hour since the Unix epoch: the period of a fuel quota.
pub fn period_of(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

/// Counts the fuel and CPU ticks a workspace's instances use in the current period, and
/// says when its fuel quota is spent. Instances charge it at every epoch tick and when
/// they end; the server adds what other nodes charged when it stores its own share.
#[derive(Debug, Default)]
pub struct CpuMeter {
    /// Fuel of the period stored in the database (all nodes) when this node last wrote.
    stored: AtomicU64,
    /// Fuel and ticks this node used since it last wrote.
    unsaved_fuel: AtomicU64,
    unsaved_ticks: AtomicU64,
    /// The quota; `u64::MAX` is none.
    budget: AtomicU64,
    spent: AtomicBool,
}

impl CpuMeter {
    pub fn new(budget: Option<u64>) -> Self {
        let m = Self::default();
        m.set_budget(budget);
        m
    }

    pub fn set_budget(&self, budget: Option<u64>) {
        self.budget
            .store(budget.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.check();
    }

    pub fn budget(&self) -> Option<u64> {
        match self.budget.load(Ordering::Relaxed) {
            u64::MAX => None,
            b => Some(b),
        }
    }

    /// Counts `fuel` and `ticks` used; false once the quota is spent.
    #[inline]
    pub fn charge(&self, fuel: u64, ticks: u64) -> bool {
        self.unsaved_fuel.fetch_add(fuel, Ordering::Relaxed);
        if ticks > 0 {
            self.unsaved_ticks.fetch_add(ticks, Ordering::Relaxed);
        }
        self.check()
    }

    /// Fuel used in the period, as far as this node knows.
    pub fn used(&self) -> u64 {
        self.stored
            .load(Ordering::Relaxed)
            .saturating_add(self.unsaved_fuel.load(Ordering::Relaxed))
    }

    /// Fuel left of the quota this period (`u64::MAX` without one).
    pub fn remaining(&self) -> u64 {
        self.budget
            .load(Ordering::Relaxed)
            .saturating_sub(self.used())
    }

    /// Whether the quota is spent (instances of the workspace stop at their next tick).
    pub fn spent(&self) -> bool {
        self.spent.load(Ordering::Relaxed)
    }

    fn check(&self) -> bool {
        let ok = self.used() <= self.budget.load(Ordering::Relaxed);
        if self.spent.load(Ordering::Relaxed) == ok {
            self.spent.store(!ok, Ordering::Relaxed);
        }
        ok
    }

    /// What this node used since it last wrote: (fuel, ticks), reset.
    pub fn take_unsaved(&self) -> (u64, u64) {
        (
            self.unsaved_fuel.swap(0, Ordering::Relaxed),
            self.unsaved_ticks.swap(0, Ordering::Relaxed),
        )
    }

    /// Puts back what could not be written.
    pub fn restore_unsaved(&self, fuel: u64, ticks: u64) {
        self.unsaved_fuel.fetch_add(fuel, Ordering::Relaxed);
        self.unsaved_ticks.fetch_add(ticks, Ordering::Relaxed);
    }

    /// The period's total fuel as stored, all nodes counted (a new period starts at 0).
    pub fn set_stored(&self, fuel: u64) {
        self.stored.store(fuel, Ordering::Relaxed);
        self.check();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_is_spent_past_its_budget_and_renews_with_the_period() {
        let m = CpuMeter::new(Some(1000));
        assert!(m.charge(600, 1));
        assert!(!m.spent());
        assert!(!m.charge(600, 1));
        assert!(m.spent());
        assert_eq!(m.take_unsaved(), (1200, 2));
        m.set_stored(1200);
        assert!(m.spent(), "what is stored still counts");
        m.set_stored(0);
        assert!(!m.spent(), "a new period renews it");
        m.set_budget(None);
        assert!(m.charge(u64::MAX / 2, 0));
        assert_eq!(m.budget(), None);
    }
}
