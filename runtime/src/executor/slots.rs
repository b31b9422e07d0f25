//! Concurrency slots: the node's cap, pools, deployments and tags, counted in memory and
//! (on PostgreSQL, for limits shared by nodes) in the database, released by guards however
//! a run ends.

use super::*;

/// Counts runs per limit key and hands out slots while every count is under its limit.
#[derive(Default)]
pub struct Slots {
    counts: Mutex<HashMap<String, usize>>,
    pub(super) changed: Notify,
}

/// Held while a run occupies its slots; dropping it frees them.
pub struct SlotGuard {
    slots: Arc<Slots>,
    keys: Vec<String>,
}

impl SlotGuard {
    /// Gives the slots back without waking the runs waiting for them (the run could
    /// not start for another reason, which a wake-up would not change).
    pub(super) fn give_back_quietly(mut self) {
        self.give_back();
        self.keys.clear();
    }

    pub(super) fn give_back(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            if let Some(n) = counts.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(k);
                }
            }
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            self.give_back();
            self.slots.changed.notify_waiters();
        }
    }
}

/// Slots a run holds in the database (nodes sharing PostgreSQL count them together);
/// dropping it gives them back.
pub(super) struct SharedSlots {
    store: Store,
    run_id: String,
    node: String,
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        let (store, run_id, node) = (
            self.store.clone(),
            std::mem::take(&mut self.run_id),
            std::mem::take(&mut self.node),
        );
        tokio::spawn(async move {
            if let Err(e) = store.release_slots(&run_id, &node).await {
                tracing::error!("cannot give back the slots of flow run {run_id}: {e}");
            }
        });
    }
}

impl Slots {
    pub(super) fn try_take(self: &Arc<Self>, wants: &[(String, usize)]) -> Option<SlotGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if wants
            .iter()
            .any(|(k, limit)| counts.get(k).copied().unwrap_or(0) >= *limit)
        {
            return None;
        }
        for (k, _) in wants {
            *counts.entry(k.clone()).or_insert(0) += 1;
        }
        Some(SlotGuard {
            slots: self.clone(),
            keys: wants.iter().map(|(k, _)| k.clone()).collect(),
        })
    }

    /// Runs holding the slot `key` right now.
    pub fn in_use(&self, key: &str) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

impl Executor {
    /// With PostgreSQL, takes the run's limited slots in the database too, so limits
    /// hold across nodes. `Err(None)`: a limit is reached on another node.
    pub(super) async fn take_shared_slots(
        &self,
        run_id: &str,
        wants: &[(String, usize)],
    ) -> Result<Option<SharedSlots>, Option<crate::store::StoreError>> {
        let shared: Vec<(String, i64)> = wants
            .iter()
            .filter(|(k, limit)| k != NODE && *limit != usize::MAX)
            .map(|(k, limit)| (k.clone(), *limit as i64))
            .collect();
        if shared.is_empty() || !self.store().is_postgres() {
            return Ok(None);
        }
        match self
            .store()
            .take_slots(run_id, self.node_id(), &shared)
            .await
        {
            Ok(true) => Ok(Some(SharedSlots {
                store: self.store().clone(),
                run_id: run_id.to_owned(),
                node: self.node_id().to_owned(),
            })),
            Ok(false) => Err(None),
            Err(e) => Err(Some(e)),
        }
    }

    /// The slots a run needs: the node's, its pool's, its deployment's and one per
    /// limited tag. `None` while its pool is paused.
    pub(super) async fn limits_for(
        &self,
        run: &FlowRunRecord,
        deployment: Option<&DeploymentRecord>,
    ) -> anyhow::Result<Option<Vec<(String, usize)>>> {
        let mut wants = vec![(NODE.to_owned(), self.max_active)];
        let Some(ws) = &run.workspace_id else {
            return Ok(Some(wants));
        };
        // The workspace's quota of runs in flight (counted, unbounded, without one: the
        // count is its usage). Only a bound is shared through the database.
        let in_flight = self.orch.tenants.get(ws).quotas().runs_in_flight;
        wants.push((
            format!("workspace:{ws}"),
            in_flight.map_or(usize::MAX, |n| n as usize),
        ));
        let config = self.workspace_limits(ws).await?;
        if let Some(d) = deployment {
            if let Some(pool) = config.pools.get(&d.pool) {
                if pool.paused {
                    return Ok(None);
                }
                if let Some(limit) = pool.concurrency_limit {
                    wants.push((format!("pool:{ws}:{}", d.pool), limit.max(0) as usize));
                }
            }
            if let Some(limit) = d.concurrency_limit {
                wants.push((format!("deployment:{}", d.id), limit.max(0) as usize));
            }
        }
        if !run.tags.is_empty() {
            for limit in &config.tags {
                if run.tags.contains(&limit.tag) {
                    wants.push((
                        format!("tag:{ws}:{}", limit.tag),
                        limit.limit.max(0) as usize,
                    ));
                }
            }
        }
        Ok(Some(wants))
    }

    pub(super) async fn workspace_limits(&self, ws: &str) -> anyhow::Result<Arc<WorkspaceLimits>> {
        if let Some((at, limits)) = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .workspaces
            .get(ws)
            && at.elapsed() < CONFIG_TTL
        {
            return Ok(limits.clone());
        }
        let limits = Arc::new(WorkspaceLimits {
            pools: self
                .store()
                .pools(ws)
                .await?
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
            tags: self.store().concurrency_limits(ws).await?,
        });
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .workspaces
            .insert(ws.to_owned(), (std::time::Instant::now(), limits.clone()));
        Ok(limits)
    }

    /// Forgets the cached pools and limits of a workspace (the API changed them).
    pub fn limits_changed(&self, workspace_id: &str) {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .workspaces
            .remove(workspace_id);
        self.slots.changed.notify_waiters();
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_respect_every_limit_and_come_back() {
        let slots = Arc::new(Slots::default());
        let want = |k: &str, n| vec![(NODE.to_owned(), 10), (k.to_owned(), n)];
        let a = slots.try_take(&want("d", 2)).unwrap();
        let b = slots.try_take(&want("d", 2)).unwrap();
        assert!(
            slots.try_take(&want("d", 2)).is_none(),
            "the deployment limit holds"
        );
        let c = slots.try_take(&want("e", 1)).unwrap();
        assert_eq!(slots.in_use(NODE), 3);
        drop(a);
        assert_eq!(slots.in_use("d"), 1);
        let a2 = slots.try_take(&want("d", 2)).unwrap();
        drop((a2, b, c));
        assert_eq!(slots.in_use(NODE), 0);
        assert_eq!(slots.in_use("d"), 0);
    }
}
