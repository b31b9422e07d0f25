//! A node's periodic upkeep, at start-up and then every second: paused runs whose
//! timeout passed with no instance waiting on them (suspended runs, or paused runs of a
//! process that is gone) end Failed; names of new runs join the name search's index.

use crate::executor::Executor;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(1);

/// One pass of upkeep.
pub async fn pass(executor: &Arc<Executor>) {
    if let Err(e) = executor.orchestrator().tenants.sync(executor.store()).await {
        tracing::warn!("syncing workspace quotas and usage failed: {e}");
    }
    match executor.sweep_pauses().await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} paused flow run(s) timed out"),
        Err(e) => tracing::error!("sweeping timed-out pauses failed: {e}"),
    }
    if let Err(e) = executor
        .store()
        .index_run_names(crate::store::NAMES_PER_PASS)
        .await
    {
        tracing::warn!("indexing run names failed: {e}");
    }
}

/// Runs upkeep until `stop` resolves.
pub async fn run(executor: Arc<Executor>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => pass(&executor).await,
        }
    }
}
