//! Global concurrency and rate limits used from inside flows and tasks (Prefect's
//! `concurrency("db", occupy=2)` and `rate_limit("api")`): occupying slots of the
//! workspace's named limits, waiting (without burning CPU, within a deadline) while
//! they are full, and giving them back however the guarded block ends.

use super::LogLevel;
use super::scope::FlowScope;
use crate::model::run::{LimitRequest, TaskAttempt};
use crate::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Slots one occupancy may take of each limit at once.
const MAX_OCCUPY: u32 = 10_000;
/// Limits one request may name.
const MAX_NAMES: usize = 64;
/// How often a waiter looks again when no release on this node woke it: a release on
/// another node sharing PostgreSQL (with SQLite every release is this node's, and the
/// poll is only a safety net).
const POLL_MIN: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(500);
const POLL_MAX_SINGLE_NODE: Duration = Duration::from_secs(5);

/// Occupied slots, given back when dropped.
pub(crate) struct Occupancy {
    lease: Option<String>,
    store: Store,
    orch: std::sync::Weak<super::Orchestrator>,
    /// Held by an attempt to take under the lease while it runs: the release waits for
    /// it. A statement sent to SQLite commits even when the future waiting for it is
    /// dropped (a run cancelled mid-attempt), and a release that ran before it would give
    /// back nothing and leave the slots taken.
    taking: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Occupancy {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let (store, orch, taking) = (self.store.clone(), self.orch.clone(), self.taking.clone());
        let release = async move {
            let _taken = taking.lock().await;
            // A failed release is retried a few times; past that the node's slots are
            // given back when the node is presumed dead.
            for attempt in 0..5u32 {
                match store.release_concurrency_slots(&lease).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!("cannot give back concurrency slots ({e}); retrying");
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
            if let Some(orch) = orch.upgrade() {
                orch.limits_released.notify_waiters();
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(release);
            }
            Err(_) => tracing::warn!("concurrency slots dropped outside the runtime"),
        }
    }
}

fn seconds(timeout: Option<f64>) -> Result<Option<Duration>, String> {
    match timeout {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(crate::model::duration::to_std(s))),
        Some(s) => Err(format!(
            "timeout_seconds must be a non-negative number, not {s}"
        )),
    }
}

impl FlowScope {
    pub(crate) fn workspace(&self) -> &str {
        self.settings.workspace_id.as_deref().unwrap_or("")
    }

    /// The limits a request names that limit something now: (name, slots, decay).
    /// A missing limit is an error when strict, else it is noted and skipped.
    async fn limits_of(
        &self,
        task: Option<&TaskAttempt>,
        request: &LimitRequest,
    ) -> Result<Vec<(String, i64, Option<f64>)>, String> {
        if request.names.is_empty() {
            return Err("name at least one concurrency limit".into());
        }
        if request.names.len() > MAX_NAMES {
            return Err(format!("at most {MAX_NAMES} limits may be named at once"));
        }
        if request.occupy == 0 || request.occupy > MAX_OCCUPY {
            return Err(format!(
                "occupy must be from 1 to {MAX_OCCUPY}, not {}",
                request.occupy
            ));
        }
        if let Some(bad) = request
            .names
            .iter()
            .find(|n| !crate::model::name::valid_name(n))
        {
            return Err(format!(
                "{:?} is not a limit name: names are {}",
                bad.chars().take(100).collect::<String>(),
                crate::model::name::NAME_RULE
            ));
        }
        let mut names = request.names.clone();
        names.sort();
        names.dedup();
        let mut limits = Vec::with_capacity(names.len());
        for name in names {
            let limit = self
                .orch
                .store
                .global_limit(self.workspace(), &name)
                .await
                .map_err(|e| format!("cannot read concurrency limit '{name}': {e}"))?;
            match limit {
                None if request.strict => {
                    return Err(format!(
                        "there is no concurrency limit named '{name}' in this workspace"
                    ));
                }
                None => self.log(
                    task,
                    LogLevel::Warning,
                    format!("there is no concurrency limit named '{name}'; it limits nothing"),
                ),
                Some(l) if !l.active => {}
                Some(l) if i64::from(request.occupy) > l.slots => {
                    return Err(format!(
                        "cannot occupy {} slots of concurrency limit '{name}', which has {}",
                        request.occupy, l.slots
                    ));
                }
                Some(l) => limits.push((name, l.slots, l.slot_decay_per_second)),
            }
        }
        Ok(limits)
    }

    /// Waits until `request.occupy` slots of every named limit are free and occupies
    /// them. A waiting run says so in its logs; past the timeout it gets an error.
    pub(crate) async fn occupy(
        self: &Arc<Self>,
        task: Option<&TaskAttempt>,
        request: LimitRequest,
    ) -> Result<Occupancy, String> {
        let deadline = seconds(request.timeout_seconds)?.map(|d| Instant::now() + d);
        let limits: Vec<(String, i64)> = self
            .limits_of(task, &request)
            .await?
            .into_iter()
            .map(|(name, slots, _)| (name, slots))
            .collect();
        let store = self.orch.store.clone();
        if limits.is_empty() {
            return Ok(Occupancy {
                lease: None,
                store,
                orch: Arc::downgrade(&self.orch),
                taking: Arc::default(),
            });
        }
        let names: Vec<&str> = limits.iter().map(|(n, _)| n.as_str()).collect();
        let waiting = format!(
            "waiting for {} slot(s) of concurrency limit(s) {}",
            request.occupy,
            names.join(", ")
        );
        self.hold(task, deadline, waiting, |lease| {
            let store = store.clone();
            let limits = limits.clone();
            let scope = self.clone();
            async move {
                store
                    .take_concurrency_slots(
                        scope.workspace(),
                        &limits,
                        &lease,
                        scope.orch.node_id(),
                        request.occupy,
                    )
                    .await
                    .map_err(|e| format!("cannot take concurrency slots: {e}"))
            }
        })
        .await
        .map_err(|e| e.unwrap_or_else(|| timed_out(&request, &names)))
    }

    /// Waits, without burning CPU, until `take(lease)` takes what it asks for under a
    /// new lease; the guard gives back whatever the lease holds when dropped. A waiting
    /// run says `waiting` in its logs once. `Err(None)`: the deadline passed.
    pub(crate) async fn hold<F, Fut>(
        self: &Arc<Self>,
        task: Option<&TaskAttempt>,
        deadline: Option<Instant>,
        waiting: String,
        mut take: F,
    ) -> Result<Occupancy, Option<String>>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<bool, String>> + Send + 'static,
    {
        let store = self.orch.store.clone();
        let lease = uuid::Uuid::now_v7().to_string();
        // The guard exists before the slots are taken: a run cancelled between the commit
        // that takes them and this function's return (the future dropped there) still
        // gives them back. On a failure it deletes nothing, once.
        let occupancy = Occupancy {
            lease: Some(lease.clone()),
            store: store.clone(),
            orch: Arc::downgrade(&self.orch),
            taking: Arc::default(),
        };
        let poll_max = if store.is_postgres() {
            POLL_MAX
        } else {
            POLL_MAX_SINGLE_NODE
        };
        let mut poll = POLL_MIN;
        let mut said = false;
        loop {
            // Registered before the attempt, so a release in between is not missed.
            let released = self.orch.limits_released.notified();
            // The attempt runs in a task of its own, holding `taking` until it is done
            // even if this future is dropped meanwhile.
            let taking = occupancy.taking.clone().lock_owned().await;
            let attempt = take(lease.clone());
            let attempt = tokio::spawn(async move {
                let taken = attempt.await;
                drop(taking);
                taken
            });
            let taken = attempt
                .await
                .map_err(|e| Some(format!("cannot take under the lease: {e}")))?;
            if taken.map_err(Some)? {
                return Ok(occupancy);
            }
            if !said {
                said = true;
                self.log(task, LogLevel::Info, waiting.clone());
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(None);
                    }
                    poll.min(left)
                }
                None => poll,
            };
            tokio::select! {
                () = released => {}
                () = tokio::time::sleep(wait) => {}
            }
            poll = (poll * 2).min(poll_max);
        }
    }

    /// Occupies slots of rate limits, which decay by themselves: returns once the call
    /// may go ahead (spaced at the limits' rates).
    pub(crate) async fn rate_limit(
        self: &Arc<Self>,
        task: Option<&TaskAttempt>,
        request: LimitRequest,
    ) -> Result<(), String> {
        let deadline = seconds(request.timeout_seconds)?.map(|d| Instant::now() + d);
        let limits = self.limits_of(task, &request).await?;
        let names: Vec<&str> = limits.iter().map(|(n, _, _)| n.as_str()).collect();
        for (name, _, decay) in &limits {
            if !decay.is_some_and(|d| d > 0.0) {
                return Err(format!(
                    "concurrency limit '{name}' has no slot decay, so it is not a rate limit; \
                     give it slot_decay_per_second or use it with concurrency"
                ));
            }
        }
        for (name, _, _) in &limits {
            loop {
                let wait = self
                    .orch
                    .store
                    .take_rate_limit(self.workspace(), name, request.occupy)
                    .await
                    .map_err(|e| format!("cannot take rate-limit slots: {e}"))?;
                let Some(wait) = wait else { break };
                let wait = crate::model::duration::to_std(wait).max(Duration::from_millis(1));
                if let Some(d) = deadline
                    && Instant::now() + wait > d
                {
                    return Err(timed_out(&request, &names));
                }
                tokio::time::sleep(wait).await;
            }
        }
        Ok(())
    }
}

fn timed_out(request: &LimitRequest, names: &[&str]) -> String {
    format!(
        "timed out after {} second(s) waiting for {} slot(s) of concurrency limit(s) {}",
        request.timeout_seconds.unwrap_or(0.0),
        request.occupy,
        names.join(", ")
    )
}
