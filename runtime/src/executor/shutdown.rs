//! Graceful shutdown: runs under way get a grace period, then are put back to resume by
//! replay at the next start; waiting runs go to whichever node claims them.

use super::*;

impl Executor {
    /// Stops taking runs, gives running ones `grace` to finish, then puts the rest back
    /// to run again at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutdown.send_replace(true);
        let finished = tokio::time::timeout(grace, self.until_idle()).await.is_ok();
        if !finished {
            for tx in self.runs.lock().unwrap_or_else(|e| e.into_inner()).values() {
                tx.send_replace(Stop::Shutdown);
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), self.until_idle()).await;
        }
        // The writer retries until the database takes the writes; a database that stays
        // away must not hold the shutdown forever.
        match tokio::time::timeout(grace.max(Duration::from_secs(10)), self.store().flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("not every write reached the database: {e}"),
            Err(_) => tracing::error!(
                "the database did not take the last {} writes before shutdown; they are lost \
                 (runs they belong to resume from their last stored state)",
                self.store().writer_health().queued
            ),
        }
        // Runs still waiting, and the ones put back, go to whichever node claims them.
        if let Err(e) = self.store().leave(self.node_id()).await {
            tracing::error!("node {} could not let go of its runs: {e}", self.node_id());
        }
    }

    pub(super) async fn until_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active.load(Ordering::Relaxed) == 0 {
                return;
            }
            notified.await;
        }
    }
}
