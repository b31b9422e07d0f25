//! Automations at work on every node: watching flow runs' state changes (in the order the
//! store recorded them) and runs staying in a state, firing each automation once per event
//! (the store's unique automation run per event decides between nodes), and executing the
//! actions of automation runs under a lease, in order, each recorded as it is done, retried
//! with backoff until done or out of attempts.

mod actions;
mod template;

use crate::executor::Executor;
use crate::model::automation::{Action, Trigger, state_matches, tags_match};
use crate::schedule::Scheduler;
use crate::store::{
    AutomationRecord, AutomationRunRecord, AutomationRunState, StateChangeRow, Store,
};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a node looks for new state changes and due automation runs.
const TICK: Duration = Duration::from_millis(250);
/// How often it looks for runs stuck in a state.
const STUCK_EVERY: Duration = Duration::from_secs(2);
/// State changes read at once.
const BATCH: i64 = 1000;
/// On PostgreSQL, positions are taken before their transactions commit, so a change may
/// land behind one already read: this many positions are read again (events are unique,
/// so reading one twice fires nothing twice).
const LOOKBACK: i64 = 2000;
/// Attempts at an automation run's actions before it ends Failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// Where the nodes keep the position of the state changes read (a node starting reads
/// on from there, so events while it was down, or just before it died, still fire).
const CURSOR_SETTING: &str = "automations_cursor";
/// How often a node stores that position.
const CURSOR_EVERY: Duration = Duration::from_secs(1);

/// How long a node holds an automation run it executes without renewing its lease (it
/// renews it while it waits on a plugin's run); past it, another node takes the run.
pub(crate) const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// The automations of this node.
pub struct Automations {
    executor: Arc<Executor>,
    scheduler: Arc<Scheduler>,
    /// The position after the last state change read; `None` until the first pass,
    /// which starts at the newest (history fires nothing).
    cursor: Mutex<Option<i64>>,
    last_stuck: Mutex<Option<std::time::Instant>>,
    /// The position stored last, and when.
    stored: Mutex<(i64, Option<std::time::Instant>)>,
    pub(crate) wake: tokio::sync::Notify,
}

impl Automations {
    pub fn new(executor: Arc<Executor>, scheduler: Arc<Scheduler>) -> Arc<Self> {
        Arc::new(Self {
            executor,
            scheduler,
            cursor: Mutex::new(None),
            last_stuck: Mutex::new(None),
            stored: Mutex::new((0, None)),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn store(&self) -> &Store {
        self.executor.store()
    }

    fn node(&self) -> &str {
        self.executor.node_id()
    }

    /// Watches and acts until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            // A pass cut short leaves its automation run to the next holder of the lease.
            tokio::select! {
                () = &mut shutdown => return,
                result = self.pass() => {
                    if let Err(e) = result {
                        tracing::warn!("automations: {e:#}");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(TICK) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// One pass: new events, stuck runs, then the due automation runs.
    pub async fn pass(self: &Arc<Self>) -> anyhow::Result<()> {
        let automations = self.store().enabled_automations().await?;
        self.watch_states(&automations).await?;
        let stuck_due = {
            let mut last = self.last_stuck.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= STUCK_EVERY);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if stuck_due {
            self.watch_stuck(&automations).await?;
        }
        let now = Utc::now();
        while let Some(run) = self
            .store()
            .claim_automation_run(self.node(), now, now + LEASE)
            .await?
        {
            let this = self.clone();
            // One run at a time per node keeps the order of a workspace's events; a run
            // waiting on a plugin's run holds this pass, not the node.
            this.execute(run).await;
        }
        Ok(())
    }

    async fn watch_states(&self, automations: &[AutomationRecord]) -> anyhow::Result<()> {
        let cursor = *self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let start = match cursor {
            Some(c) => c,
            // The position the nodes stored, else the newest (history fires nothing).
            None => match self.store().setting(CURSOR_SETTING).await? {
                Some(stored) if stored.parse::<i64>().is_ok() => {
                    let stored = stored.parse::<i64>().unwrap_or_default();
                    *self.stored.lock().unwrap_or_else(|e| e.into_inner()) = (stored, None);
                    stored
                }
                _ => {
                    let newest = self.store().last_state_change().await?;
                    *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(newest);
                    self.store()
                        .put_setting(CURSOR_SETTING, &newest.to_string())
                        .await?;
                    return Ok(());
                }
            },
        };
        let watching: Vec<(&AutomationRecord, Trigger)> = automations
            .iter()
            .filter_map(|a| {
                let trigger: Trigger = serde_json::from_value(a.trigger.clone()).ok()?;
                matches!(trigger, Trigger::FlowRunState { .. }).then_some((a, trigger))
            })
            .collect();
        if watching.is_empty() {
            // Nothing watches state changes: skip past them.
            let newest = self.store().last_state_change().await?;
            *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(newest);
            return self.store_cursor(newest).await;
        }
        let lookback = if self.store().is_postgres() {
            LOOKBACK
        } else {
            0
        };
        let mut after = (start - lookback).max(0);
        let mut newest = start;
        loop {
            let changes = self.store().flow_state_changes(after, BATCH).await?;
            let Some(last) = changes.last() else {
                break;
            };
            after = last.seq;
            newest = newest.max(last.seq);
            for change in &changes {
                for (automation, trigger) in &watching {
                    self.consider(automation, trigger, change).await?;
                }
            }
            if (changes.len() as i64) < BATCH {
                break;
            }
        }
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(newest);
        self.store_cursor(newest).await
    }

    /// Stores the position read (at most every [`CURSOR_EVERY`], only forward): a node
    /// that dies re-reads at most that much, and events are unique.
    async fn store_cursor(&self, position: i64) -> anyhow::Result<()> {
        let due = {
            let stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
            position > stored.0 && stored.1.is_none_or(|t| t.elapsed() >= CURSOR_EVERY)
        };
        if due {
            let current = self
                .store()
                .setting(CURSOR_SETTING)
                .await?
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or_default();
            if position > current {
                self.store()
                    .put_setting(CURSOR_SETTING, &position.to_string())
                    .await?;
            }
            *self.stored.lock().unwrap_or_else(|e| e.into_inner()) =
                (position.max(current), Some(std::time::Instant::now()));
        }
        Ok(())
    }

    /// Fires `automation` for a state change its trigger matches (once its threshold is
    /// met within its window).
    async fn consider(
        &self,
        automation: &AutomationRecord,
        trigger: &Trigger,
        change: &StateChangeRow,
    ) -> anyhow::Result<()> {
        let Trigger::FlowRunState {
            deployments,
            tags,
            states,
            threshold,
            within_seconds,
        } = trigger
        else {
            return Ok(());
        };
        if change.workspace_id != automation.workspace_id
            || !state_matches(states, &change.state_type, &change.state_name)
            || !matches_run(deployments, tags, change)
        {
            return Ok(());
        }
        let key = format!("state:{}", change.seq);
        if *threshold > 1 {
            let since =
                change.timestamp - chrono::Duration::milliseconds((within_seconds * 1000.0) as i64);
            let n = self
                .store()
                .count_automation_event(&automation.id, &key, change.timestamp, since)
                .await?;
            if n < i64::from(*threshold) {
                return Ok(());
            }
        }
        let event = change_event("flow-run-state", change);
        self.fire(automation, key, event).await?;
        Ok(())
    }

    async fn watch_stuck(&self, automations: &[AutomationRecord]) -> anyhow::Result<()> {
        for automation in automations {
            let Ok(Trigger::FlowRunStuck {
                deployments,
                tags,
                state,
                for_seconds,
            }) = serde_json::from_value::<Trigger>(automation.trigger.clone())
            else {
                continue;
            };
            let before = Utc::now() - chrono::Duration::milliseconds((for_seconds * 1000.0) as i64);
            let state_type = state_type_of(&state);
            // A state's name (`Late`) narrows its type (`SCHEDULED`); a type takes them all.
            let name = (!state.eq_ignore_ascii_case(&state_type)).then_some(state.as_str());
            // Runs it fired for already are left out, so older stays never hide newer ones.
            let runs = self
                .store()
                .runs_in_state_since(
                    &automation.id,
                    &automation.workspace_id,
                    &state_type,
                    name,
                    before,
                    500,
                )
                .await?;
            for change in runs {
                if state_matches(
                    std::slice::from_ref(&state),
                    &change.state_type,
                    &change.state_name,
                ) && matches_run(&deployments, &tags, &change)
                {
                    // Once per stay: the state change that began it names the event.
                    let key = format!("stuck:{}", change.seq);
                    let mut event = change_event("flow-run-stuck", &change);
                    event["for_seconds"] = json!(for_seconds);
                    self.fire(automation, key, event).await?;
                }
            }
        }
        Ok(())
    }

    /// Records an automation run for an event (a second record of the same event is
    /// none) and wakes the worker; returns whether it is new.
    pub async fn fire(
        &self,
        automation: &AutomationRecord,
        key: String,
        mut event: Value,
    ) -> anyhow::Result<bool> {
        let now = Utc::now();
        event["automation"] = json!({"id": automation.id, "name": automation.name});
        let run = AutomationRunRecord {
            id: uuid::Uuid::now_v7().to_string(),
            automation_id: automation.id.clone(),
            workspace_id: automation.workspace_id.clone(),
            event_key: key,
            event,
            state: AutomationRunState::Pending,
            attempts: 0,
            next_attempt: now,
            results: json!([]),
            error: None,
            created: now,
            updated: now,
        };
        let new = self.store().create_automation_run(&run).await?;
        if new {
            self.wake.notify_one();
        }
        Ok(new)
    }

    /// Executes the actions an automation run has not done yet, in order.
    async fn execute(&self, mut run: AutomationRunRecord) {
        let now = Utc::now();
        run.attempts += 1;
        run.updated = now;
        let automation = match self
            .store()
            .automation(&run.workspace_id, &run.automation_id)
            .await
        {
            Ok(Some(a)) => a,
            Ok(None) => {
                run.state = AutomationRunState::Failed;
                run.error = Some("the automation was deleted".into());
                self.save(&run).await;
                return;
            }
            Err(e) => {
                self.retry_later(&mut run, format!("the automation could not be read: {e}"));
                self.save(&run).await;
                return;
            }
        };
        let actions: Vec<Action> = match serde_json::from_value(automation.actions.clone()) {
            Ok(a) => a,
            Err(e) => {
                run.state = AutomationRunState::Failed;
                run.error = Some(format!("the automation's actions cannot be read: {e}"));
                self.save(&run).await;
                return;
            }
        };
        let mut results = run.results.as_array().cloned().unwrap_or_default();
        for (i, action) in actions.iter().enumerate().skip(results.len()) {
            match self.act(&automation, &run, i, action).await {
                Ok(output) => {
                    results.push(json!({"type": action.kind(), "ok": true, "output": output}));
                    run.results = Value::Array(results.clone());
                    if let Err(e) = self
                        .store()
                        .note_automation_progress(self.node(), &run.id, &run.results)
                        .await
                    {
                        tracing::warn!("automation run {}: progress not kept: {e}", run.id);
                    }
                }
                Err(failure) => {
                    let message = format!("action {i} ({}): {}", action.kind(), failure.message);
                    if failure.retryable && run.attempts < MAX_ATTEMPTS {
                        self.retry_later(&mut run, message);
                    } else {
                        results.push(
                            json!({"type": action.kind(), "ok": false, "message": failure.message}),
                        );
                        run.results = Value::Array(results);
                        run.state = AutomationRunState::Failed;
                        run.error = Some(message);
                    }
                    self.save(&run).await;
                    return;
                }
            }
        }
        run.state = AutomationRunState::Completed;
        run.error = None;
        self.save(&run).await;
    }

    fn retry_later(&self, run: &mut AutomationRunRecord, message: String) {
        // 5 s, 20 s, 80 s, 320 s.
        let delay = 5i64 * 4i64.pow(run.attempts.clamp(1, 5) as u32 - 1);
        run.state = AutomationRunState::Pending;
        run.next_attempt = Utc::now() + chrono::Duration::seconds(delay);
        run.error = Some(message);
    }

    async fn save(&self, run: &AutomationRunRecord) {
        match self.store().save_automation_run(self.node(), run).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "automation run {}: its lease was taken over; this node's result is dropped",
                run.id
            ),
            Err(e) => tracing::error!("automation run {} could not be saved: {e}", run.id),
        }
    }
}

/// Whether a run is of one of `deployments` (by name; none: any) and has every tag. The
/// runs of plugins' tasks that automations start match none: a notification that fails
/// must not set off the automation that sent it.
fn matches_run(deployments: &[String], tags: &[String], change: &StateChangeRow) -> bool {
    !change
        .tags
        .iter()
        .any(|t| t.starts_with(crate::executor::PLUGIN_TAG))
        && (deployments.is_empty()
            || change
                .deployment
                .as_ref()
                .is_some_and(|d| deployments.contains(d)))
        && tags_match(tags, &change.tags)
}

/// The state type a trigger's state (a name or a type) is of.
fn state_type_of(state: &str) -> String {
    match state.to_ascii_lowercase().as_str() {
        "late" | "scheduled" | "awaitingretry" => "SCHEDULED".into(),
        "running" | "retrying" => "RUNNING".into(),
        "pending" => "PENDING".into(),
        "paused" | "suspended" => "PAUSED".into(),
        "cancelling" => "CANCELLING".into(),
        _ => state.to_ascii_uppercase(),
    }
}

/// The event of a flow run's state change, as templates see it.
fn change_event(kind: &str, change: &StateChangeRow) -> Value {
    let state = json!({
        "type": change.state_type,
        "name": change.state_name,
        "message": change.message,
    });
    json!({
        "kind": kind,
        "occurred": change.timestamp,
        "flow_run": {
            "id": change.run_id,
            "name": change.run_name,
            "flow": change.flow_name,
            "deployment": change.deployment,
            "deployment_id": change.deployment_id,
            "tags": change.tags,
            "state": state,
        },
        "deployment": {"id": change.deployment_id, "name": change.deployment},
        "state": state,
    })
}

/// Why an action failed, and whether trying again later may help.
pub(crate) struct ActionFailure {
    pub message: String,
    pub retryable: bool,
}

impl ActionFailure {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}
