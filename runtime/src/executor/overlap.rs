//! Schedule overlap policies: a run due while the previous run of its deployment is
//! still going is allowed, skipped, queued, or cancels the previous one.

use super::*;

/// Registers a run as executing for its deployment while alive.
pub(super) struct RunningGuard<'a> {
    executor: &'a Executor,
    deployment: String,
    run: String,
}

impl<'a> RunningGuard<'a> {
    /// Registers `run` under its deployment's overlap policy: fails for `Skip` when
    /// another run is there; returns the runs already there for `Cancel`.
    pub(super) fn enter(
        executor: &'a Executor,
        deployment: &str,
        run: &str,
        overlap: Overlap,
    ) -> Result<(Self, Vec<String>), ()> {
        let mut running = executor.running.lock().unwrap_or_else(|e| e.into_inner());
        let runs = running.entry(deployment.to_owned()).or_default();
        if overlap == Overlap::Skip && !runs.is_empty() {
            return Err(());
        }
        let previous = match overlap {
            Overlap::Cancel => runs.iter().cloned().collect(),
            _ => Vec::new(),
        };
        runs.insert(run.to_owned());
        Ok((
            Self {
                executor,
                deployment: deployment.to_owned(),
                run: run.to_owned(),
            },
            previous,
        ))
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut running = self
            .executor
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(runs) = running.get_mut(&self.deployment) {
            runs.remove(&self.run);
            if runs.is_empty() {
                running.remove(&self.deployment);
            }
        }
    }
}

impl Executor {
    pub(super) async fn overlap_of(&self, schedule_id: &str) -> Overlap {
        if let Some((at, o)) = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overlaps
            .get(schedule_id)
            && at.elapsed() < OVERLAP_TTL
        {
            return *o;
        }
        let o = match self.store().schedule_by_id(schedule_id).await {
            Ok(Some(s)) => Overlap::parse(&s.overlap).unwrap_or(Overlap::Allow),
            _ => Overlap::Allow,
        };
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overlaps
            .insert(schedule_id.to_owned(), (std::time::Instant::now(), o));
        o
    }

    /// Forgets a schedule's cached overlap policy (the API changed it).
    pub fn schedule_changed(&self, schedule_id: &str) {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overlaps
            .remove(schedule_id);
    }
}
