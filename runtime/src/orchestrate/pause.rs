//! Pausing and suspending flow runs until a resume brings their input (Prefect's
//! `pause_flow_run`, `suspend_flow_run` and `resume_flow_run` with `wait_for_input`).
//!
//! A pause is a call with a position, like a task call, recorded in the store before the
//! run shows as paused. Pausing keeps the instance, blocked in the host call, until a
//! resume arrives (notified in this process, or read from the database within a second
//! when another node took it) or the timeout passes (the run then fails). Suspending
//! drops the instance: a resume executes the run again from the start, its completed
//! calls replay from their records, and this call returns the stored input.

use super::scope::{Call, FlowScope, Interrupt, Recorded};
use super::{LogLevel, Orchestrator, PauseRequest};
use crate::model::failure::{Failure, FailureKind};
use crate::model::state::{State, StateType};
use crate::store::{PauseRecord, PauseResolution, RunKind, StateChange};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The state name of a suspended run (a Paused state without an instance).
pub const SUSPENDED: &str = "Suspended";

/// How often a paused instance looks for a resume another node received.
const POLL: Duration = Duration::from_secs(1);

/// The longest pause a flow may ask for.
const MAX_TIMEOUT_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// Paused instances of this process, by flow run id, woken when the API resumes them.
#[derive(Default)]
pub(crate) struct Waiters(Mutex<HashMap<String, Arc<Notify>>>);

struct Waiting<'a> {
    waiters: &'a Waiters,
    run_id: String,
    notify: Arc<Notify>,
}

impl Waiters {
    fn register(&self, run_id: &str) -> Waiting<'_> {
        let notify = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(run_id.to_owned())
            .or_default()
            .clone();
        Waiting {
            waiters: self,
            run_id: run_id.to_owned(),
            notify,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.0.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(&self.run_id)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            map.remove(&self.run_id);
        }
    }
}

/// Checks a resume's input against a pause's schema; one message per problem.
pub fn validate_input(schema: Option<&Value>, input: &Value) -> Result<(), Vec<String>> {
    let Some(schema) = schema else {
        return if input.is_null() {
            Ok(())
        } else {
            Err(vec![
                "this pause takes no input; resume it without one".to_owned(),
            ])
        };
    };
    let schema = crate::model::schema::compile(schema)
        .map_err(|e| vec![format!("the pause's input schema is refused: {e}")])?;
    let errors: Vec<String> = schema
        .errors(input)
        .into_iter()
        .map(|e| {
            if e.starts_with('\'') {
                e
            } else {
                format!("input: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The message of a paused run's state: how long it waits, and what a resume brings.
fn state_message(p: &PauseRecord) -> String {
    let verb = if p.suspend { "suspended" } else { "paused" };
    let key = p
        .key
        .as_deref()
        .map(|k| format!(" at '{k}'"))
        .unwrap_or_default();
    let input = if p.input_schema.is_some() {
        "resume it with input that matches its schema"
    } else {
        "resume it to continue (no input)"
    };
    format!(
        "{verb}{key} for up to {} s (until {}); {input}",
        p.timeout_seconds,
        p.timeout_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// The failure of a run whose pause nobody resumed in time.
pub(crate) fn timed_out(p: &PauseRecord) -> Failure {
    let verb = if p.suspend { "suspended" } else { "paused" };
    Failure::permanent(
        FailureKind::PauseTimeout,
        format!(
            "the flow run was {verb} for {} s and not resumed",
            p.timeout_seconds
        ),
    )
}

fn deadline(now: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Orchestrator {
    /// Wakes the paused instance of a run if this process holds it; an instance on
    /// another node sees the resume at its next look at the database.
    pub fn notify_resumed(&self, flow_run_id: &str) {
        let notify = self
            .waiters
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(flow_run_id)
            .cloned();
        if let Some(n) = notify {
            n.notify_waiters();
        }
    }

    /// A flow's pause call: the resume's input (JSON text), an error the flow sees
    /// (misuse, or a timeout, which also fails the run), or a trap that ends the
    /// instance (a suspend, a replay mismatch).
    pub(crate) async fn pause(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        request: PauseRequest,
    ) -> wasmtime::Result<Result<String, String>> {
        let secs = request.timeout_seconds;
        if !(secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECONDS) {
            return Ok(Err(format!(
                "the pause timeout must be a number of seconds above 0 and at most \
                 {MAX_TIMEOUT_SECONDS}, not {secs}"
            )));
        }
        if request.suspend && scope.parent_flow_run_id.is_some() {
            return Ok(Err(
                "a subflow run cannot be suspended (its parent's instance \
                 waits for it); pause it, or suspend the parent flow run"
                    .to_owned(),
            ));
        }
        if request.suspend && scope.settings.workspace_id.is_none() {
            return Ok(Err(
                "only runs of deployments can be suspended (nothing would \
                 resume a local run); pause it instead"
                    .to_owned(),
            ));
        }
        let schema = match &request.input_schema {
            None => None,
            Some(text) => {
                let schema = match serde_json::from_str::<Value>(text) {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(format!("the input schema is not JSON: {e}"))),
                };
                if let Err(e) = crate::model::schema::compile(&schema) {
                    return Ok(Err(format!("the input schema is refused: {e}")));
                }
                Some(schema)
            }
        };

        let position = scope.next_position();
        match scope.replay_at(position, Call::Pause) {
            Ok(Some(Recorded::Pause { input })) => return Ok(Ok(input)),
            Ok(_) => {}
            Err(f) => return Err(wasmtime::format_err!("{}", f.message)),
        }

        // A run executed again while its pause was open (a restart) waits on the same
        // pause, with the same deadline.
        let pause = match self.store.latest_pause_at(&scope.id, position).await {
            Ok(Some(p)) if p.resolution.is_none() => p,
            Ok(_) => {
                let now = Utc::now();
                let p = PauseRecord {
                    id: uuid::Uuid::now_v7().to_string(),
                    flow_run_id: scope.id.clone(),
                    position,
                    key: request.key,
                    description: request.description,
                    input_schema: schema,
                    suspend: request.suspend,
                    timeout_seconds: secs,
                    timeout_at: deadline(now, secs),
                    created: now,
                    resolution: None,
                    resolved: None,
                    input: None,
                };
                if let Err(e) = self.store.insert_pause(&p).await {
                    tracing::error!("cannot record a pause of flow run {}: {e}", scope.id);
                    return Ok(Err("the pause could not be recorded".to_owned()));
                }
                p
            }
            Err(e) => {
                tracing::error!("cannot read the pauses of flow run {}: {e}", scope.id);
                return Ok(Err("the pause could not be recorded".to_owned()));
            }
        };

        if pause.suspend {
            // The instance goes; the execution ends in this state once the run's task
            // runs in progress finished (so they replay on resume).
            scope.log(
                None,
                LogLevel::Info,
                format!("suspending the flow run: {}", state_message(&pause)),
            );
            let state =
                State::named(StateType::Paused, SUSPENDED).with_message(state_message(&pause));
            scope.interrupt(Interrupt::Suspend(state));
            return Err(wasmtime::format_err!("the flow run suspended"));
        }
        self.wait_for_resume(scope, &pause).await
    }

    async fn wait_for_resume(
        self: &Arc<Self>,
        scope: &Arc<FlowScope>,
        pause: &PauseRecord,
    ) -> wasmtime::Result<Result<String, String>> {
        let waiting = self.waiters.register(&scope.id);
        self.set_flow_state(
            &scope.name,
            StateChange::new(
                RunKind::Flow,
                &scope.id,
                State::new(StateType::Paused).with_message(state_message(pause)),
            ),
        );
        if let Err(e) = self.store.flush().await {
            tracing::error!("cannot store the paused state of {}: {e}", scope.id);
        }
        loop {
            let notified = waiting.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.store.pause(&pause.id).await {
                Ok(Some(p)) => match p.resolution {
                    Some(PauseResolution::Resumed) => {
                        self.set_flow_state(
                            &scope.name,
                            StateChange::new(
                                RunKind::Flow,
                                &scope.id,
                                State::running().with_message("resumed"),
                            ),
                        );
                        return Ok(Ok(p.input.unwrap_or_else(|| "null".to_owned())));
                    }
                    Some(PauseResolution::TimedOut) => {
                        return Ok(Err(self.fail_pause(scope, &p)));
                    }
                    Some(PauseResolution::Cancelled) => {
                        // Ended elsewhere (cancelled through a node that does not hold
                        // this instance): its final state and hooks are done.
                        scope.claim_end();
                        return Err(wasmtime::format_err!("the flow run was cancelled"));
                    }
                    None => {}
                },
                Ok(None) => {
                    return Ok(Err(self.fail_pause(scope, pause)));
                }
                Err(e) => tracing::warn!("cannot read pause {}: {e}", pause.id),
            }
            let now = Utc::now();
            if now >= pause.timeout_at {
                match self
                    .store
                    .resolve_pause(&pause.id, PauseResolution::TimedOut, None, now)
                    .await
                {
                    Ok(true) => return Ok(Err(self.fail_pause(scope, pause))),
                    // Resolved meanwhile: the next look says how.
                    Ok(false) => continue,
                    Err(e) => tracing::warn!("cannot end pause {}: {e}", pause.id),
                }
            }
            let left = (pause.timeout_at - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(POLL);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(left) => {}
            }
        }
    }

    /// The run fails whatever the flow does with the error it gets back.
    fn fail_pause(&self, scope: &FlowScope, pause: &PauseRecord) -> String {
        let failure = timed_out(pause);
        let message = failure.message.clone();
        scope.interrupt(Interrupt::Fail(failure));
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_is_checked_against_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
            "required": ["approved"]
        });
        assert!(validate_input(Some(&schema), &json!({"approved": true})).is_ok());
        let errors = validate_input(Some(&schema), &json!({"approved": "yes"})).unwrap_err();
        assert!(errors[0].starts_with("'approved':"), "{errors:?}");
        let errors = validate_input(Some(&schema), &Value::Null).unwrap_err();
        assert!(errors[0].contains("object"), "{errors:?}");
        let errors = validate_input(Some(&schema), &json!({})).unwrap_err();
        assert!(errors[0].contains("approved"), "{errors:?}");
    }

    #[test]
    fn a_pause_without_schema_takes_no_input() {
        assert!(validate_input(None, &Value::Null).is_ok());
        assert!(validate_input(None, &json!({"x": 1})).is_err());
    }

    #[test]
    fn messages_name_the_timeout_and_the_input() {
        let now = Utc::now();
        let p = PauseRecord {
            id: "p".into(),
            flow_run_id: "r".into(),
            position: 2,
            key: Some("approval".into()),
            description: None,
            input_schema: Some(json!({"type": "object"})),
            suspend: false,
            timeout_seconds: 90.0,
            timeout_at: deadline(now, 90.0),
            created: now,
            resolution: None,
            resolved: None,
            input: None,
        };
        let m = state_message(&p);
        assert!(
            m.starts_with("paused at 'approval' for up to 90 s") && m.contains("schema"),
            "{m}"
        );
        assert_eq!(
            timed_out(&p).message,
            "the flow run was paused for 90 s and not resumed"
        );
        assert_eq!(deadline(now, 1e30), DateTime::<Utc>::MAX_UTC);
    }
}
