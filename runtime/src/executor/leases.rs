//! Node leases: joining the cluster, heartbeats, taking over the runs of dead nodes
//! (resumed by replay, or Crashed past the restart limit), claiming due runs, cancel
//! requests from other nodes, and stopping runs this node lost.

use super::*;

impl Executor {
    /// Joins the cluster: announces the node, takes over the runs of dead nodes (with
    /// SQLite, every other node is a previous process on this database, so all of
    /// them) and claims due runs, then keeps doing so in the background. Returns how
    /// many runs it took.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<usize> {
        let store = self.store();
        store.heartbeat(self.node_id(), self.started).await?;
        let cutoff = if store.is_postgres() {
            Utc::now() - self.node.lease_ttl
        } else {
            Utc::now() + chrono::Duration::days(36500)
        };
        store.release_dead_slots(self.node_id(), cutoff).await?;
        let mut n = self.take_over(cutoff).await?;
        n += self.claim_due().await?;
        let lost = store.lease_losses();
        tokio::spawn(self.clone().maintain(lost));
        Ok(n)
    }

    /// Takes over the runs of nodes silent since `cutoff`.
    pub(super) async fn take_over(
        self: &Arc<Self>,
        cutoff: chrono::DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let mut n = 0;
        loop {
            let runs = self
                .store()
                .take_over(self.node_id(), cutoff, CLAIM_BATCH)
                .await?;
            let full = runs.len() as i64 == CLAIM_BATCH;
            n += runs.len();
            for run in runs {
                self.adopt(run).await;
            }
            if !full {
                return Ok(n);
            }
        }
    }

    /// A run taken over from a dead node: resumed, or ended Crashed past the limit.
    pub(super) async fn adopt(self: &Arc<Self>, run: FlowRunRecord) {
        let store = self.store();
        if run.state.kind == StateType::Scheduled {
            return self.submit(run, None);
        }
        let limit = self.node.max_crash_restarts;
        let log = |message: String| {
            store.write(Write::Log(crate::store::LogRecord {
                flow_run_id: run.id.clone(),
                task_run_id: None,
                level: "warning".into(),
                message,
                timestamp: Utc::now(),
            }))
        };
        if run.crash_count > limit {
            let message = format!(
                "the node running this flow run stopped {} times while running it (at most \
                 {limit} restarts); it is not restarted again",
                run.crash_count
            );
            if let Err(e) = store.crash_unfinished_children(&run.id, &message).await {
                tracing::error!("cannot end the task runs of flow run {}: {e}", run.id);
            }
            log(message.clone());
            store.hold(&run.id, run.fence);
            let crashed = State::new(StateType::Crashed).with_message(message);
            if let Err(e) = self.end_run(&run, crashed).await {
                tracing::error!("cannot end flow run {} Crashed: {e}", run.id);
            }
            store.unhold(&run.id, run.fence);
            return;
        }
        let message = "the node running this stopped; the flow run resumes by replay on another \
                       node";
        if let Err(e) = store.crash_unfinished_children(&run.id, message).await {
            tracing::error!("cannot end the task runs of flow run {}: {e}", run.id);
        }
        log(format!(
            "the node running this flow run stopped; node {} took it over (restart {} of at \
             most {limit}) and resumes it, replaying its completed calls",
            self.node_id(),
            run.crash_count
        ));
        self.submit(run, None);
    }

    /// Claims the due runs nobody holds and takes them.
    pub(super) async fn claim_due(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut n = 0;
        loop {
            let until = Utc::now() + self.node.poll_interval * 2;
            let runs = self
                .store()
                .claim_due(self.node_id(), until, CLAIM_BATCH)
                .await?;
            let full = runs.len() as i64 == CLAIM_BATCH;
            n += runs.len();
            for run in runs {
                self.submit(run, None);
            }
            if !full {
                return Ok(n);
            }
        }
    }

    /// The node's background work: heartbeats, lease checks, takeovers, claims of due
    /// runs, cancel requests from other nodes, stopping runs this node lost.
    pub(super) async fn maintain(
        self: Arc<Self>,
        mut lost: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let mut shutdown = self.shutdown.subscribe();
        let ttl = self.node.lease_ttl;
        let beat_every = (ttl / 3).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut last_beat = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.node.poll_interval.min(beat_every)) => {}
                Some(id) = lost.recv() => {
                    self.stop(&id, Stop::Lost);
                    continue;
                }
                _ = until_stopped_node(&mut shutdown) => return,
            }
            let work = async {
                if last_beat.elapsed() >= beat_every {
                    self.store().heartbeat(self.node_id(), self.started).await?;
                    last_beat = std::time::Instant::now();
                    self.check_leases().await?;
                    self.store()
                        .release_dead_slots(self.node_id(), Utc::now() - ttl)
                        .await?;
                    self.take_over(Utc::now() - ttl).await?;
                    self.store()
                        .forget_dead_nodes(Utc::now() - ttl * 10)
                        .await?;
                }
                self.claim_due().await?;
                for id in self.store().cancel_requests(self.node_id()).await? {
                    self.cancel(&id);
                }
                anyhow::Ok(())
            };
            if let Err(e) = work.await {
                tracing::error!("node {}: lease upkeep failed: {e:#}", self.node_id());
            }
        }
    }

    /// Finds the runs this node holds that another node took over (this node was
    /// silent too long) and stops them.
    pub(super) async fn check_leases(&self) -> anyhow::Result<()> {
        let ids: Vec<String> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let held = self.store().still_held(self.node_id(), &ids).await?;
        for id in ids {
            if !held.contains_key(&id) {
                // Ended meanwhile, let go by this node (suspended, put back: no node
                // holds it until a claim), or taken over by another node.
                if self.store().flow_run(&id).await?.is_some_and(|r| {
                    !r.state.is_final() && r.node_id.is_some_and(|n| n != self.node_id())
                }) {
                    self.store().mark_lost(&id);
                }
            }
        }
        Ok(())
    }
}
