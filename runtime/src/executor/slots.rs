//! Concurrency slots: the node's cap, pools, deployments and tags, counted in memory and
//! (on PostgreSQL, for limits shared by nodes) in the database, released by guards however
//! a run ends.

use super::*;

/// Counts runs per limit key and hands out slots while every count is under its limit.
#[derive(Default)]
pub struct Slots {
    counts: Mutex<HashMap<String, usize>>,
    /// Runs waiting for a full pool, by the pool's key, best rank first: a freed slot of
    /// the pool goes to the first of them (its queue's priority, then its expected start).
    queued: Mutex<HashMap<String, std::collections::BTreeSet<Rank>>>,
    pub(super) changed: Notify,
}

/// Where a run waiting for its pool stands: its queue's priority (1 first), its expected
/// start (milliseconds), its id.
pub(super) type Rank = (i64, i64, String);

/// A run's place among its pool's waiting runs, given up when it stops waiting.
pub(super) struct Queued {
    slots: Arc<Slots>,
    place: Option<(String, Rank)>,
}

impl Queued {
    pub(super) fn place(&self) -> Option<&(String, Rank)> {
        self.place.as_ref()
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some((pool, rank)) = self.place.take()
            && self.slots.unqueue(&pool, &rank)
        {
            self.slots.changed.notify_waiters();
        }
    }
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
    /// Woken once the rows are gone, so runs waiting on this node try again at once.
    slots: Arc<Slots>,
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        let (store, run_id, node, slots) = (
            self.store.clone(),
            std::mem::take(&mut self.run_id),
            std::mem::take(&mut self.node),
            self.slots.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = store.release_slots(&run_id, &node).await {
                tracing::error!("cannot give back the slots of flow run {run_id}: {e}");
            }
            slots.changed.notify_waiters();
        });
    }
}

impl Slots {
    #[cfg(test)]
    pub(super) fn try_take(self: &Arc<Self>, wants: &[(String, usize)]) -> Option<SlotGuard> {
        self.try_take_ranked(wants, None)
    }

    /// A run's place among those waiting for `pool`, kept until the guard is dropped.
    pub(super) fn queued(self: &Arc<Self>, place: Option<(String, Rank)>) -> Queued {
        Queued {
            slots: self.clone(),
            place,
        }
    }

    /// Whether a waiting run's place was there (and is now gone).
    fn unqueue(&self, pool: &str, rank: &Rank) -> bool {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let Some(set) = queued.get_mut(pool) else {
            return false;
        };
        let was = set.remove(rank);
        if set.is_empty() {
            queued.remove(pool);
        }
        was
    }

    /// Takes the slots unless one is full; with a place in a pool's line, a free slot of
    /// the pool is taken only when no run ranked before it waits for the pool alone (one
    /// held up by another limit does not hold up the rest).
    pub(super) fn try_take_ranked(
        self: &Arc<Self>,
        wants: &[(String, usize)],
        place: Option<&(String, Rank)>,
    ) -> Option<SlotGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let full = |k: &String, limit: usize| counts.get(k).copied().unwrap_or(0) >= limit;
        if let Some((pool, rank)) = place {
            let others_full = wants.iter().any(|(k, l)| k != pool && full(k, *l));
            let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
            if others_full {
                // Not waiting for the pool alone: out of its line until that changes.
                let was = queued.get_mut(pool).is_some_and(|set| set.remove(rank));
                if was {
                    drop(queued);
                    drop(counts);
                    self.changed.notify_waiters();
                }
                return None;
            }
            let pool_full = wants.iter().any(|(k, l)| k == pool && full(k, *l));
            let set = queued.entry(pool.clone()).or_default();
            let ahead = set.first().is_some_and(|first| first < rank);
            if pool_full || ahead {
                set.insert(rank.clone());
                return None;
            }
            // It keeps its place until it starts (the caller drops its `Queued`): taking
            // the slots shared through the database may still fail.
            set.insert(rank.clone());
        } else if wants.iter().any(|(k, limit)| full(k, *limit)) {
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
                slots: self.slots.clone(),
            })),
            Ok(false) => Err(None),
            Err(e) => Err(Some(e)),
        }
    }

    /// The slots a run needs (the node's, its pool's and queue's, its deployment's and one
    /// per limited tag; `None` while its pool or queue is paused) and, in a pool
    /// with a limit, its place in the pool's line: its queue's priority, then its
    /// expected start.
    pub(super) async fn limits_and_place(
        &self,
        run: &FlowRunRecord,
        deployment: Option<&DeploymentRecord>,
    ) -> anyhow::Result<Option<(Vec<(String, usize)>, Option<(String, Rank)>)>> {
        let mut wants = vec![(NODE.to_owned(), self.max_active)];
        let mut place = None;
        let Some(ws) = &run.workspace_id else {
            return Ok(Some((wants, place)));
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
            let queue = config
                .queues
                .get(&(d.pool.clone(), d.work_queue.clone()))
                .cloned()
                .unwrap_or_else(|| crate::store::WorkQueueRecord::default_of(&d.pool));
            if queue.paused {
                return Ok(None);
            }
            if let Some(limit) = queue.concurrency_limit {
                wants.push((
                    format!("queue:{ws}:{}:{}", d.pool, d.work_queue),
                    limit.max(0) as usize,
                ));
            }
            if let Some(pool) = config.pools.get(&d.pool) {
                if pool.paused {
                    return Ok(None);
                }
                if let Some(limit) = pool.concurrency_limit {
                    let key = format!("pool:{ws}:{}", d.pool);
                    let expected = run.expected_start.unwrap_or(run.created);
                    place = Some((
                        key.clone(),
                        (queue.priority, expected.timestamp_millis(), run.id.clone()),
                    ));
                    wants.push((key, limit.max(0) as usize));
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
        Ok(Some((wants, place)))
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
            queues: self
                .store()
                .work_queues(ws, None, None, i64::MAX)
                .await?
                .into_iter()
                .map(|q| ((q.pool.clone(), q.name.clone()), q))
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

    #[test]
    fn a_freed_pool_slot_goes_to_the_best_ranked_run_waiting_for_the_pool_alone() {
        let slots = Arc::new(Slots::default());
        let pool = "pool:w:p".to_owned();
        let want = |extra: Option<(&str, usize)>| {
            let mut w = vec![(NODE.to_owned(), 10), (pool.clone(), 1)];
            if let Some((k, n)) = extra {
                w.push((k.to_owned(), n));
            }
            w
        };
        let place = |priority, at, id: &str| (pool.clone(), (priority, at, id.to_owned()));
        let holder = slots.try_take(&want(None)).unwrap();
        let (low, high, blocked) = (
            place(10, 1, "low"),
            place(1, 5, "high"),
            place(1, 0, "blocked"),
        );
        // All wait for the full pool, in their line.
        assert!(slots.try_take_ranked(&want(None), Some(&low)).is_none());
        assert!(slots.try_take_ranked(&want(None), Some(&high)).is_none());
        let other = slots.try_take(&[("d".to_owned(), 1)]).unwrap();
        // Held up by its deployment's limit, the best-ranked one is out of the line.
        assert!(
            slots
                .try_take_ranked(&want(Some(("d", 1))), Some(&blocked))
                .is_none()
        );
        drop(holder);
        assert!(
            slots.try_take_ranked(&want(None), Some(&low)).is_none(),
            "a better-ranked run waits for the pool"
        );
        let h = slots.try_take_ranked(&want(None), Some(&high)).unwrap();
        // It keeps its place until it starts.
        drop(h);
        assert!(slots.try_take_ranked(&want(None), Some(&low)).is_none());
        drop(slots.queued(Some(high.clone())));
        let l = slots.try_take_ranked(&want(None), Some(&low)).unwrap();
        drop(slots.queued(Some(low.clone())));
        drop((l, other));
        // A place given up leaves the line.
        let _held = slots.try_take(&want(None)).unwrap();
        let queued = slots.queued(Some(high.clone()));
        assert!(slots.try_take_ranked(&want(None), queued.place()).is_none());
        drop(queued);
        assert!(slots.queued.lock().unwrap().is_empty());
    }
}
