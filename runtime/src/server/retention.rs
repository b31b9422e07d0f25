//! Retention in the background: every node, every `every`, deletes the finished runs no
//! policy keeps (automation runs by their workspace's) and the expired cache entries.
//!
//! Deletions go in small transactions sized to take a few milliseconds each (a batch
//! that took long halves the next, a quick one doubles it), with a pause as long as the
//! last one between them (at most half the database's time goes to retention), so the writer that records live runs never waits long for
//! the database. Nodes on one PostgreSQL database share the work: a run one node is
//! deleting is locked, and the others skip it.

use crate::executor::Executor;
use crate::model::retention::Retention;
use crate::schedule::Clock;
use crate::store::Deleted;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct RetentionConfig {
    /// The policy of workspaces without one of their own (empty: they keep everything).
    pub default: Retention,
    /// Time between passes.
    pub every: Duration,
    /// How long after a run ends it is left alone (hooks may still log for it).
    pub grace: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            default: Retention::default(),
            every: Duration::from_secs(30),
            grace: Duration::from_secs(60),
        }
    }
}

/// A deletion holding the database longer than this halves the next batch: on SQLite the
/// writer that records live runs waits for it, so it bounds what retention adds to their
/// latency.
const SLOW: Duration = Duration::from_millis(25);
/// One quicker than this doubles it.
const QUICK: Duration = Duration::from_millis(6);
/// A batch's statements cost about as much as its rows at a few runs: below this, a
/// busy database spends its time on them.
const MIN_BATCH: i64 = 8;
const MAX_BATCH: i64 = 500;
/// Cache entries, and automation runs, deleted per statement.
const CACHE_BATCH: i64 = 1000;
/// Free pages of a SQLite file given back per pass at most (4 KiB each).
const RECLAIM_PAGES: i64 = 4096;

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub runs: u64,
    pub bytes: u64,
    pub cache_entries: u64,
    pub automation_runs: u64,
}

/// The retention loop of one node.
pub struct Retainer {
    executor: Arc<Executor>,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
    /// Top-level runs per deletion, adapted to how long the last one took.
    batch: i64,
}

impl Retainer {
    pub fn new(executor: Arc<Executor>, clock: Arc<dyn Clock>, config: RetentionConfig) -> Self {
        Self {
            executor,
            clock,
            config,
            batch: 50,
        }
    }

    /// Deletes everything due now.
    pub async fn pass(&mut self) -> crate::store::Result<Report> {
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.config.grace).unwrap_or(chrono::Duration::MAX);
        let ended_before = now.checked_sub_signed(grace).unwrap_or(now);
        let mut report = Report::default();
        let store = self.executor.store().clone();
        for scope in store.retention_scopes(self.config.default).await? {
            // A workspace's automation runs (one per event that fired an automation) go
            // by its policy too.
            if scope.deployment_id.is_none() {
                loop {
                    let started = Instant::now();
                    let n = store
                        .delete_automation_runs(&scope.workspace_id, scope.policy, now, CACHE_BATCH)
                        .await?;
                    report.automation_runs += n;
                    if (n as i64) < CACHE_BATCH {
                        break;
                    }
                    tokio::time::sleep(started.elapsed().max(Duration::from_millis(1))).await;
                }
            }
            let Some(cut) = store.retention_cut(&scope, now, ended_before).await? else {
                continue;
            };
            loop {
                let asked = self.batch;
                let ids = store.runs_before(&scope, &cut, asked).await?;
                if ids.is_empty() {
                    break;
                }
                let Deleted { runs, bytes, held } = store
                    .delete_runs(&scope.workspace_id, &ids, ended_before)
                    .await?;
                self.executor
                    .orchestrator()
                    .tenants
                    .storage_freed(&scope.workspace_id, bytes);
                tracing::debug!(asked, runs, ?held, "retention batch");
                self.adapt(held);
                report.runs += runs;
                report.bytes += bytes;
                // Fewer than asked: the scope is done. None deleted: the rest are
                // another node's now, or wait for their subflows.
                if (ids.len() as i64) < asked || runs == 0 {
                    break;
                }
                tokio::time::sleep(held.max(Duration::from_millis(1))).await;
            }
        }
        loop {
            let started = Instant::now();
            let n = store.delete_expired_cache(now, CACHE_BATCH).await?;
            report.cache_entries += n;
            if (n as i64) < CACHE_BATCH {
                break;
            }
            tokio::time::sleep(started.elapsed().max(Duration::from_millis(1))).await;
        }
        if report.runs > 0 || report.cache_entries > 0 || report.automation_runs > 0 {
            store.reclaim_space(RECLAIM_PAGES).await?;
        }
        Ok(report)
    }

    fn adapt(&mut self, took: Duration) {
        if took > SLOW {
            self.batch = (self.batch / 2).max(MIN_BATCH);
        } else if took < QUICK {
            self.batch = (self.batch * 2).min(MAX_BATCH);
        }
    }

    /// Passes until `stop` resolves.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(self.config.every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = &mut stop => return,
                done = self.pass() => match done {
                    Ok(r) if r.runs > 0 || r.cache_entries > 0 || r.automation_runs > 0 => {
                        tracing::info!(
                            runs = r.runs,
                            bytes = r.bytes,
                            cache_entries = r.cache_entries,
                            automation_runs = r.automation_runs,
                            "retention deleted finished runs, expired cache entries and automation runs"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("retention failed (tried again next pass): {e}"),
                },
            }
        }
    }
}
