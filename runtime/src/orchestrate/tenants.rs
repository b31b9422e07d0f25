//! Workspaces as tenants of a node: their quotas (set by the admin, read from the
//! database), the memory budget and the CPU meter their instances share, and the bytes
//! their runs store. The node's upkeep ([`Tenants::sync`]) keeps them in step with the
//! database every second: it writes the fuel, CPU time and storage this node used, and
//! reads back the totals every node wrote, so quotas hold across nodes.

use super::slots::TaskSlots;
use crate::model::limits::MemoryBudget;
use crate::model::quota::{CpuMeter, Quotas, period_of};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One workspace on this node.
pub struct Tenant {
    pub id: String,
    quotas: Mutex<Quotas>,
    /// Its instances' memories and what its runs make the host keep, within the node's
    /// budget (and its `memory_mb` quota).
    pub(crate) memory: MemoryBudget,
    pub(crate) cpu: Arc<CpuMeter>,
    /// CPU milliseconds of the hour as stored, every node counted.
    cpu_ms_stored: AtomicU64,
    /// Bytes stored as of the last sync (every node counted), and written since here.
    storage_stored: AtomicU64,
    storage_unsaved: AtomicU64,
    /// The storage quota in bytes (`u64::MAX`: none), read on every log line without a
    /// lock.
    storage_limit: AtomicU64,
    /// Set when retention deleted some of its bytes: the next sync reads the total back.
    storage_stale: AtomicBool,
    /// Whether the stored totals were read once (until then this node knows only its own).
    synced: AtomicBool,
}

/// What a workspace uses now, beside its quotas.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Task slots it holds on this node.
    pub task_slots: usize,
    /// Bytes of memory its instances and runs hold on this node.
    pub memory_bytes: usize,
    /// Bytes of logs, artifacts and results stored.
    pub storage_bytes: u64,
    /// Fuel and CPU milliseconds used in the current hour, every node counted.
    pub fuel_this_hour: u64,
    pub cpu_ms_this_hour: u64,
}

impl Tenant {
    fn new(id: &str, node: &MemoryBudget) -> Self {
        Self {
            id: id.to_owned(),
            quotas: Mutex::default(),
            memory: node.within(usize::MAX),
            cpu: Arc::new(CpuMeter::new(None)),
            cpu_ms_stored: AtomicU64::new(0),
            storage_stored: AtomicU64::new(0),
            storage_unsaved: AtomicU64::new(0),
            storage_limit: AtomicU64::new(u64::MAX),
            storage_stale: AtomicBool::new(false),
            synced: AtomicBool::new(false),
        }
    }

    pub fn quotas(&self) -> Quotas {
        self.quotas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts `bytes` the workspace's runs wrote (logs, artifacts, results).
    pub(crate) fn note_storage(&self, bytes: usize) {
        self.storage_unsaved
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn storage_used(&self) -> u64 {
        self.storage_stored
            .load(Ordering::Relaxed)
            .saturating_add(self.storage_unsaved.load(Ordering::Relaxed))
    }

    /// The storage quota in MiB when the workspace has used it up.
    pub fn storage_full(&self) -> Option<u64> {
        let limit = self.storage_limit.load(Ordering::Relaxed);
        (limit != u64::MAX && self.storage_used() >= limit).then_some(limit >> 20)
    }

    /// Says why a new run of the workspace may not start, if it may not.
    pub fn refuse_new_run(&self) -> Option<String> {
        if let Some(mb) = self.storage_full() {
            return Some(format!(
                "the workspace's storage quota ({mb} MiB of logs, artifacts and results) is \
                 used; ask the admin for more, or delete what it stores"
            ));
        }
        None
    }
}

/// Every workspace this node has met.
pub struct Tenants {
    node_memory: MemoryBudget,
    slots: Arc<TaskSlots>,
    epoch_tick_ms: u64,
    map: Mutex<HashMap<String, Arc<Tenant>>>,
    /// The hour the CPU meters count.
    period: AtomicI64,
}

impl Tenants {
    pub(crate) fn new(
        node_memory: MemoryBudget,
        slots: Arc<TaskSlots>,
        epoch_tick_ms: u64,
    ) -> Self {
        Self {
            node_memory,
            slots,
            epoch_tick_ms: epoch_tick_ms.max(1),
            map: Mutex::default(),
            period: AtomicI64::new(period_of(chrono::Utc::now())),
        }
    }

    /// The workspace `id` (met for the first time: no quotas until the next sync, or
    /// until [`Tenants::apply`]).
    pub fn get(&self, id: &str) -> Arc<Tenant> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = map.get(id) {
            return t.clone();
        }
        let t = Arc::new(Tenant::new(id, &self.node_memory));
        map.insert(id.to_owned(), t.clone());
        t
    }

    /// Applies a workspace's quotas on this node at once.
    pub fn apply(&self, id: &str, quotas: Quotas) {
        let t = self.get(id);
        t.memory
            .set_limit(quotas.memory_mb.map_or(usize::MAX, |mb| {
                usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
            }));
        t.cpu.set_budget(quotas.fuel_per_hour);
        t.storage_limit.store(
            quotas
                .storage_mb
                .map_or(u64::MAX, |mb| mb.saturating_mul(1 << 20).min(u64::MAX - 1)),
            Ordering::Relaxed,
        );
        self.slots
            .set_workspace_cap(id, quotas.task_slots.map(|n| n as usize));
        *t.quotas.lock().unwrap_or_else(|e| e.into_inner()) = quotas;
    }

    /// Takes `bytes` retention deleted off what this node counts stored for a workspace
    /// at once (other nodes read the new total when they next write for it, or every
    /// second under a storage quota).
    pub fn storage_freed(&self, id: &str, bytes: u64) {
        let t = self.get(id);
        let _ = t
            .storage_stored
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(bytes))
            });
        // A sync under way may have read the total before the deletion committed.
        t.storage_stale.store(true, Ordering::Relaxed);
    }

    /// What a workspace uses now.
    pub fn usage(&self, id: &str) -> Usage {
        let t = self.get(id);
        Usage {
            task_slots: self.slots.held_by_workspace(id),
            memory_bytes: t.memory.used(),
            storage_bytes: t.storage_used(),
            fuel_this_hour: t.cpu.used(),
            cpu_ms_this_hour: t.cpu_ms_stored.load(Ordering::Relaxed),
        }
    }

    /// Every tenant met, for metrics.
    pub fn all(&self) -> Vec<Arc<Tenant>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Reads every workspace's quotas, writes this node's usage and reads back the
    /// totals of every node. Called at start-up and every second by the node's upkeep.
    pub async fn sync(&self, store: &Store) -> crate::store::Result<()> {
        let quotas: HashMap<String, Quotas> = store.all_quotas().await?.into_iter().collect();
        for (id, q) in &quotas {
            self.apply(id, q.clone());
        }
        for t in self.all() {
            if !quotas.contains_key(&t.id) && !t.quotas().is_empty() {
                self.apply(&t.id, Quotas::default());
            }
        }
        let now = period_of(chrono::Utc::now());
        let new_period = self.period.swap(now, Ordering::Relaxed) != now;
        for t in self.all() {
            let (fuel, ticks) = t.cpu.take_unsaved();
            let first = !t.synced.load(Ordering::Relaxed);
            let limited = t.cpu.budget().is_some();
            if fuel > 0 || ticks > 0 {
                match store
                    .add_cpu_usage(&t.id, now, fuel, ticks.saturating_mul(self.epoch_tick_ms))
                    .await
                {
                    Ok((f, ms)) => {
                        t.cpu.set_stored(f);
                        t.cpu_ms_stored.store(ms, Ordering::Relaxed);
                    }
                    Err(e) => {
                        t.cpu.restore_unsaved(fuel, ticks);
                        return Err(e);
                    }
                }
            } else if first || limited || new_period {
                // Other nodes' share (and a new hour, which starts from nothing).
                let (f, ms) = store.cpu_usage(&t.id, now).await?;
                t.cpu.set_stored(f);
                t.cpu_ms_stored.store(ms, Ordering::Relaxed);
            }
            let bytes = t.storage_unsaved.swap(0, Ordering::Relaxed);
            let stale = t.storage_stale.swap(false, Ordering::Relaxed);
            if bytes > 0
                || first
                || stale
                || quotas.get(&t.id).is_some_and(|q| q.storage_mb.is_some())
            {
                match store.add_storage(&t.id, bytes).await {
                    Ok(total) => t.storage_stored.store(total, Ordering::Relaxed),
                    Err(e) => {
                        t.storage_unsaved.fetch_add(bytes, Ordering::Relaxed);
                        t.storage_stale.fetch_or(stale, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            t.synced.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}
