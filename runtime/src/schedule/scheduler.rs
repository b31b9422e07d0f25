//! The scheduler: turns active schedules into Scheduled runs ahead of time, exactly once
//! per (schedule, fire time).
//!
//! Each run of a schedule carries the idempotency key `schedule:<id>:<fire time>`, and the
//! database allows one run per deployment and key: a restart in the middle of a horizon,
//! or several servers ticking on one database, can try twice but never create twice.
//! Schedules live in memory with their next fire time, so a tick touches only the ones
//! due within the horizon; they are reloaded from the database every few seconds and at
//! once when the API changes one.

use super::{CompiledSchedule, ScheduleSpec};
use crate::executor::{Executor, TriggerError, TriggerRequest};
use crate::model::clock::Clock;
use crate::model::schedule::Catchup;
use crate::store::{DeploymentRecord, FlowRunRecord, ScheduleRecord};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How far ahead runs are created.
    pub horizon: Duration,
    /// How often the scheduler looks.
    pub tick: Duration,
    /// A fire time older than this (at the time the scheduler sees it) was missed.
    pub grace: Duration,
    /// How often schedules are reloaded from the database (changes made through this
    /// server's API are seen at once; this is for other servers' changes).
    pub reload: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            horizon: Duration::from_secs(60),
            tick: Duration::from_secs(1),
            grace: Duration::from_secs(60),
            reload: Duration::from_secs(30),
        }
    }
}

struct Entry {
    record: ScheduleRecord,
    compiled: Arc<CompiledSchedule>,
    /// Runs exist for every fire time up to here.
    until: DateTime<Utc>,
    /// The first fire time after `until`.
    next: Option<DateTime<Utc>>,
}

pub struct Scheduler {
    executor: Arc<Executor>,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    entries: Mutex<HashMap<String, Entry>>,
    loaded_at: Mutex<Option<DateTime<Utc>>>,
    changed: Notify,
    /// Time spent inside ticks, in nanoseconds (what the scheduler costs).
    busy_nanos: std::sync::atomic::AtomicU64,
}

/// The idempotency key of a schedule's run at a fire time.
pub fn run_key(schedule_id: &str, fire: DateTime<Utc>) -> String {
    format!(
        "schedule:{schedule_id}:{}",
        fire.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
}

/// The run a schedule asks for at a fire time.
fn request_for(record: &ScheduleRecord, fire: DateTime<Utc>) -> TriggerRequest {
    TriggerRequest {
        parameters: record.parameters.as_object().cloned().unwrap_or_default(),
        idempotency_key: Some(run_key(&record.id, fire)),
        scheduled_at: Some(fire),
        tags: Vec::new(),
        schedule_id: Some(record.id.clone()),
        task: None,
        plugin: None,
    }
}

/// Which missed fire times (ascending) get runs under a catch-up policy.
pub fn catch_up(missed: &[DateTime<Utc>], policy: Catchup, limit: usize) -> &[DateTime<Utc>] {
    match policy {
        Catchup::Skip => &[],
        Catchup::Latest => &missed[missed.len().saturating_sub(1)..],
        Catchup::All => &missed[missed.len().saturating_sub(limit)..],
    }
}

impl Scheduler {
    pub fn new(
        executor: Arc<Executor>,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            executor,
            clock,
            config,
            entries: Mutex::default(),
            loaded_at: Mutex::default(),
            changed: Notify::new(),
            busy_nanos: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Tells the scheduler a schedule changed: it reloads before its next tick.
    pub fn schedules_changed(&self) {
        *self.loaded_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.changed.notify_one();
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn reload(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let due = {
            let at = self.loaded_at.lock().unwrap_or_else(|e| e.into_inner());
            at.is_none_or(|t| {
                now - t >= chrono::Duration::from_std(self.config.reload).unwrap_or_default()
                    || now < t
            })
        };
        if !due {
            return Ok(());
        }
        let records = self.executor.store().active_schedules().await?;
        let mut fresh = HashMap::with_capacity(records.len());
        {
            let mut old = self.entries();
            for record in records {
                let start = record.scheduled_until.unwrap_or(record.created);
                let keep = old
                    .remove(&record.id)
                    .filter(|e| e.record.updated == record.updated);
                let entry = match keep {
                    Some(mut e) => {
                        if start > e.until {
                            e.until = start;
                            e.next = e.compiled.next_after(start);
                        }
                        e.record = record;
                        e
                    }
                    None => {
                        let spec: ScheduleSpec = match serde_json::from_value(record.spec.clone()) {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::error!(
                                    "schedule {} has an unreadable spec: {e}",
                                    record.id
                                );
                                continue;
                            }
                        };
                        let compiled = match spec.compile() {
                            Ok(c) => Arc::new(c),
                            Err(e) => {
                                tracing::error!("schedule {} no longer compiles: {e}", record.id);
                                continue;
                            }
                        };
                        Entry {
                            next: compiled.next_after(start),
                            compiled,
                            until: start,
                            record,
                        }
                    }
                };
                fresh.insert(entry.record.id.clone(), entry);
            }
            *old = fresh;
        }
        *self.loaded_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        Ok(())
    }

    /// One pass: creates the runs of every schedule due within the horizon. Returns how
    /// many runs it created.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        self.reload(now).await?;
        let until = now + chrono::Duration::from_std(self.config.horizon)?;
        let grace = chrono::Duration::from_std(self.config.grace)?;
        let due: Vec<(ScheduleRecord, Arc<CompiledSchedule>, DateTime<Utc>)> = self
            .entries()
            .values()
            .filter(|e| e.next.is_some_and(|n| n <= until))
            .map(|e| (e.record.clone(), e.compiled.clone(), e.until))
            .collect();
        let mut deployments: HashMap<String, Option<DeploymentRecord>> = HashMap::new();
        // Every due fire time of the tick, by deployment, created in few transactions.
        let mut batches: HashMap<String, Vec<TriggerRequest>> = HashMap::new();
        let mut advanced: Vec<(String, Arc<CompiledSchedule>)> = Vec::new();
        for (record, compiled, from) in due {
            let deployment = match deployments.get(&record.deployment_id) {
                Some(d) => d.clone(),
                None => {
                    let d = self
                        .executor
                        .store()
                        .deployment_by_id(&record.deployment_id)
                        .await?;
                    deployments.insert(record.deployment_id.clone(), d.clone());
                    d
                }
            };
            // A paused deployment fires nothing; its schedules wait where they are until
            // it is resumed, which restarts them from then (api/deployments.rs).
            if deployment.is_none_or(|d| d.paused) {
                continue;
            }
            let times = compiled.fire_times(from, until, 100_000);
            let (missed, upcoming): (Vec<_>, Vec<_>) =
                times.into_iter().partition(|t| *t < now - grace);
            let policy = Catchup::parse(&record.catchup).unwrap_or(Catchup::Skip);
            let limit = record.catchup_limit.max(0) as usize;
            let fire = catch_up(&missed, policy, limit)
                .iter()
                .chain(upcoming.iter());
            batches
                .entry(record.deployment_id.clone())
                .or_default()
                .extend(fire.map(|t| request_for(&record, *t)));
            advanced.push((record.id.clone(), compiled));
        }
        let mut created = 0;
        for (deployment_id, requests) in batches {
            let Some(Some(deployment)) = deployments.get(&deployment_id) else {
                continue;
            };
            created += self
                .trigger_chunks(deployment, requests)
                .await?
                .iter()
                .filter(|(_, new)| *new)
                .count();
        }
        let ids: Vec<&str> = advanced.iter().map(|(id, _)| id.as_str()).collect();
        self.executor.store().advance_schedules(&ids, until).await?;
        let mut entries = self.entries();
        for (id, compiled) in advanced {
            if let Some(e) = entries.get_mut(&id) {
                e.until = until;
                e.next = compiled.next_after(until);
            }
        }
        Ok(created)
    }

    /// Creates runs of one deployment, 1000 to a transaction.
    async fn trigger_chunks(
        &self,
        deployment: &DeploymentRecord,
        mut requests: Vec<TriggerRequest>,
    ) -> anyhow::Result<Vec<(FlowRunRecord, bool)>> {
        let mut out = Vec::with_capacity(requests.len());
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(1000));
            let chunk = std::mem::replace(&mut requests, rest);
            match self.executor.trigger_many(deployment, chunk).await {
                Ok(runs) => out.extend(runs),
                Err(TriggerError::Paused(_)) => {}
                Err(TriggerError::Quota(why)) => {
                    tracing::warn!(
                        "deployment {}: scheduled runs skipped: {why}",
                        deployment.name
                    );
                }
                Err(TriggerError::InvalidParameters(errors)) => {
                    tracing::error!(
                        "deployment {}: scheduled parameters do not validate: {}",
                        deployment.name,
                        errors.join("; ")
                    );
                }
                Err(e) => return Err(anyhow::anyhow!("deployment {}: {e}", deployment.name)),
            }
        }
        Ok(out)
    }

    /// Creates the runs of a schedule's fire times in [start, end] (past ones run at once).
    pub async fn backfill(
        &self,
        record: &ScheduleRecord,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<FlowRunRecord>> {
        let spec: ScheduleSpec = serde_json::from_value(record.spec.clone())?;
        let compiled = spec.compile()?;
        let deployment = self
            .executor
            .store()
            .deployment_by_id(&record.deployment_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the schedule's deployment is gone"))?;
        let fires = compiled.fire_times(start - chrono::Duration::microseconds(1), end, limit);
        let requests = fires.iter().map(|t| request_for(record, *t)).collect();
        Ok(self
            .trigger_chunks(&deployment, requests)
            .await?
            .into_iter()
            .map(|(run, _)| run)
            .collect())
    }

    /// Time spent in ticks so far: everything the scheduler did, including the database
    /// work done for it.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Ticks until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let started = std::time::Instant::now();
            if let Err(e) = self.tick().await {
                tracing::error!("scheduler tick failed: {e:#}");
            }
            self.busy_nanos.fetch_add(
                started.elapsed().as_nanos() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            tokio::select! {
                _ = tokio::time::sleep(self.config.tick) => {}
                _ = self.changed.notified() => {}
                _ = &mut stop => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_policies() {
        let t = |m: i64| DateTime::<Utc>::from_timestamp(m * 60, 0).unwrap();
        let missed = [t(1), t(2), t(3), t(4)];
        assert!(catch_up(&missed, Catchup::Skip, 10).is_empty());
        assert_eq!(catch_up(&missed, Catchup::Latest, 10), [t(4)]);
        assert_eq!(catch_up(&missed, Catchup::All, 2), [t(3), t(4)]);
        assert_eq!(catch_up(&missed, Catchup::All, 10), missed);
        assert!(catch_up(&[], Catchup::Latest, 1).is_empty());
    }

    #[test]
    fn run_keys_name_schedule_and_time() {
        let t = DateTime::parse_from_rfc3339("2026-03-29T01:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(run_key("s1", t), "schedule:s1:2026-03-29T01:30:00.000000Z");
    }
}
