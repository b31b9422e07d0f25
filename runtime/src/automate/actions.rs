//! What an automation's actions do. Each is safe to do again after a crash between doing
//! it and recording it: a run it creates carries an idempotency key made of the
//! automation run and the action (so the same run comes back), and cancelling, retrying,
//! pausing and resuming leave what is already so as it is.

use super::{ActionFailure, Automations, template};
use crate::executor::{CommandError, TriggerError, TriggerRequest};
use crate::model::automation::Action;
use crate::model::state::StateType;
use crate::store::{AutomationRecord, AutomationRunRecord, DeploymentRecord, Unstarted};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a plugin's run may take before the action gives up on this attempt.
const PLUGIN_RUN_WAIT: Duration = Duration::from_secs(300);

impl Automations {
    pub(super) async fn act(
        &self,
        automation: &AutomationRecord,
        run: &AutomationRunRecord,
        index: usize,
        action: &Action,
    ) -> Result<Value, ActionFailure> {
        // The event's fields (`flow_run`, `state`, `deployment`, `body`) and the event
        // itself (`event.body`).
        let mut context = run.event.clone();
        context["event"] = run.event.clone();
        let context = &context;
        let key = format!("automation-{}-{index}", run.id);
        match action {
            Action::RunDeployment {
                deployment,
                parameters,
            } => {
                let d = self
                    .deployment(&automation.workspace_id, deployment)
                    .await?;
                let parameters = template::render(&Value::Object(parameters.clone()), context)
                    .map_err(ActionFailure::permanent)?;
                let request = TriggerRequest {
                    parameters: parameters.as_object().cloned().unwrap_or_default(),
                    idempotency_key: Some(key),
                    ..TriggerRequest::default()
                };
                let (created, _) = self
                    .executor
                    .trigger(&d, request)
                    .await
                    .map_err(trigger_failure)?;
                Ok(json!({"flow_run_id": created.id, "deployment": d.name}))
            }
            Action::CancelRun {} => {
                let flow_run = self.event_run(run).await?;
                match self.executor.cancel_run(&flow_run).await {
                    Ok(()) => Ok(json!({"flow_run_id": flow_run.id, "cancelled": true})),
                    // Final already: nothing left to cancel.
                    Err(CommandError::Conflict(why)) => {
                        Ok(json!({"flow_run_id": flow_run.id, "cancelled": false, "why": why}))
                    }
                    Err(e) => Err(ActionFailure::transient(e.to_string())),
                }
            }
            Action::RetryRun {} => {
                let flow_run = self.event_run(run).await?;
                // Done already (this action ran before a crash): it is not final now.
                if !flow_run.state.is_final() && run.attempts > 1 {
                    return Ok(json!({"flow_run_id": flow_run.id, "retried": true}));
                }
                match self.executor.retry_run(&flow_run).await {
                    Ok(_) => Ok(json!({"flow_run_id": flow_run.id, "retried": true})),
                    Err(CommandError::Conflict(why)) => Err(ActionFailure::permanent(why)),
                    Err(e) => Err(ActionFailure::transient(e.to_string())),
                }
            }
            Action::PauseDeployment { deployment } | Action::ResumeDeployment { deployment } => {
                let pause = matches!(action, Action::PauseDeployment { .. });
                let mut d = match deployment {
                    Some(name) => self.deployment(&automation.workspace_id, name).await?,
                    None => self.event_deployment(automation, run).await?,
                };
                if d.paused != pause {
                    d.paused = pause;
                    d.updated = chrono::Utc::now();
                    self.executor
                        .store()
                        .update_deployment(&d)
                        .await
                        .map_err(|e| ActionFailure::transient(e.to_string()))?;
                    self.paused_or_resumed(&d)
                        .await
                        .map_err(|e| ActionFailure::transient(e.to_string()))?;
                }
                Ok(json!({"deployment": d.name, "paused": pause}))
            }
            Action::PauseSchedules { deployment } | Action::ResumeSchedules { deployment } => {
                let active = matches!(action, Action::ResumeSchedules { .. });
                let d = match deployment {
                    Some(name) => self.deployment(&automation.workspace_id, name).await?,
                    None => self.event_deployment(automation, run).await?,
                };
                let changed = self
                    .set_schedules_active(&d, active)
                    .await
                    .map_err(|e| ActionFailure::transient(e.to_string()))?;
                Ok(json!({"deployment": d.name, "active": active, "schedules": changed}))
            }
            Action::CreateArtifact {
                markdown,
                key: artifact_key,
                description,
            } => {
                let flow_run = self.event_run(run).await?;
                let markdown = template::render(&Value::String(markdown.clone()), context)
                    .map_err(ActionFailure::permanent)?;
                let markdown = match markdown {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let now = chrono::Utc::now();
                let record = crate::store::ArtifactRecord {
                    id: derived_id(&key),
                    key: artifact_key.clone(),
                    kind: "markdown".into(),
                    description: description.clone(),
                    data: Value::String(markdown),
                    flow_run_id: flow_run.id.clone(),
                    task_run_id: None,
                    created: now,
                    updated: now,
                    workspace_id: flow_run.workspace_id.clone(),
                };
                let id = record.id.clone();
                let receipt = self
                    .executor
                    .store()
                    .write_acked(vec![crate::store::Write::ArtifactCreated(record)])
                    .map_err(|e| ActionFailure::transient(e.to_string()))?;
                receipt
                    .wait(std::time::Instant::now() + Duration::from_secs(30))
                    .await
                    .map_err(|e| ActionFailure::transient(e.to_string()))?;
                Ok(json!({"artifact_id": id, "flow_run_id": flow_run.id}))
            }
            Action::PauseAutomation { automation: target } => {
                let name = target.as_deref().unwrap_or(automation.id.as_str());
                self.set_automation(&automation.workspace_id, name, false)
                    .await
            }
            Action::ResumeAutomation { automation: name } => {
                self.set_automation(&automation.workspace_id, name, true)
                    .await
            }
            Action::DoNothing {} => Ok(json!({})),
            Action::CallPlugin {
                task,
                arguments,
                deployment,
            } => {
                let d = match deployment {
                    Some(name) => self.deployment(&automation.workspace_id, name).await?,
                    None => self.event_deployment(automation, run).await?,
                };
                let arguments = template::render(&Value::Object(arguments.clone()), context)
                    .map_err(ActionFailure::permanent)?;
                // Each attempt is a run of its own: a failed run is not the answer to the
                // next attempt.
                let key = format!("{key}-{}", run.attempts);
                let created = self
                    .executor
                    .trigger_plugin_task(&d, task, arguments, key)
                    .await
                    .map_err(trigger_failure)?;
                let done = self.wait_final(&created.id, &run.id).await?;
                if done.state.kind == StateType::Completed {
                    Ok(json!({"flow_run_id": done.id, "result": done.result}))
                } else {
                    Err(ActionFailure::transient(format!(
                        "the plugin's run {} ended {}: {}",
                        done.id,
                        done.state.name,
                        done.state.message.as_deref().unwrap_or("")
                    )))
                }
            }
        }
    }

    async fn deployment(
        &self,
        workspace_id: &str,
        name: &str,
    ) -> Result<DeploymentRecord, ActionFailure> {
        self.executor
            .store()
            .deployment(workspace_id, name)
            .await
            .map_err(|e| ActionFailure::transient(e.to_string()))?
            .ok_or_else(|| {
                ActionFailure::permanent(format!("no deployment named '{name}' in this workspace"))
            })
    }

    /// Switches an automation of the workspace (by name or id) on or off.
    async fn set_automation(
        &self,
        workspace_id: &str,
        name: &str,
        enabled: bool,
    ) -> Result<Value, ActionFailure> {
        let store = self.executor.store();
        let mut target = store
            .automation(workspace_id, name)
            .await
            .map_err(|e| ActionFailure::transient(e.to_string()))?
            .ok_or_else(|| {
                ActionFailure::permanent(format!("no automation named '{name}' in this workspace"))
            })?;
        if target.enabled != enabled {
            target.enabled = enabled;
            target.updated = chrono::Utc::now();
            store
                .update_automation(&target)
                .await
                .map_err(|e| ActionFailure::transient(e.to_string()))?;
        }
        Ok(json!({"automation": target.name, "enabled": enabled}))
    }

    /// The flow run the event is about.
    async fn event_run(
        &self,
        run: &AutomationRunRecord,
    ) -> Result<crate::store::FlowRunRecord, ActionFailure> {
        let Some(id) = run.event["flow_run"]["id"].as_str() else {
            return Err(ActionFailure::permanent(
                "the event that set the automation off is about no flow run",
            ));
        };
        self.executor
            .store()
            .flow_run(id)
            .await
            .map_err(|e| ActionFailure::transient(e.to_string()))?
            .ok_or_else(|| ActionFailure::permanent(format!("flow run {id} no longer exists")))
    }

    /// The deployment of the flow run the event is about.
    async fn event_deployment(
        &self,
        automation: &AutomationRecord,
        run: &AutomationRunRecord,
    ) -> Result<DeploymentRecord, ActionFailure> {
        let Some(id) = run.event["flow_run"]["deployment_id"].as_str() else {
            return Err(ActionFailure::permanent(
                "the flow run that set the automation off has no deployment: name one",
            ));
        };
        self.deployment(&automation.workspace_id, id).await
    }

    /// Waits for a run to be final, within [`PLUGIN_RUN_WAIT`], keeping the lease on the
    /// automation run `holder` meanwhile.
    async fn wait_final(
        &self,
        id: &str,
        holder: &str,
    ) -> Result<crate::store::FlowRunRecord, ActionFailure> {
        let deadline = tokio::time::Instant::now() + PLUGIN_RUN_WAIT;
        let mut renewed = tokio::time::Instant::now();
        loop {
            if renewed.elapsed() >= Duration::from_secs(15) {
                renewed = tokio::time::Instant::now();
                let until = chrono::Utc::now() + super::LEASE;
                let held = self
                    .executor
                    .store()
                    .renew_automation_lease(self.node(), holder, until)
                    .await
                    .map_err(|e| ActionFailure::transient(e.to_string()))?;
                if !held {
                    return Err(ActionFailure::transient(
                        "another node took the automation run over",
                    ));
                }
            }
            let run = self
                .executor
                .store()
                .flow_run(id)
                .await
                .map_err(|e| ActionFailure::transient(e.to_string()))?;
            if let Some(run) = run
                && run.state.is_final()
            {
                return Ok(run);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ActionFailure::transient(format!(
                    "the plugin's run {id} did not end within {PLUGIN_RUN_WAIT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Pauses or resumes every schedule of a deployment, as the API's pause and resume
    /// do; returns how many changed.
    async fn set_schedules_active(
        &self,
        d: &DeploymentRecord,
        active: bool,
    ) -> anyhow::Result<usize> {
        let store = self.executor.store();
        let now = self.scheduler.clock().now();
        let mut changed = 0;
        for mut schedule in store.deployment_schedules(&d.id).await? {
            if schedule.active == active {
                continue;
            }
            if active {
                // Resuming starts from now: what the pause skipped is not caught up.
                schedule.scheduled_until = Some(now);
            }
            schedule.active = active;
            schedule.updated = now;
            store.put_schedule(&schedule).await?;
            if !active {
                let ids = store
                    .cancel_unstarted_runs(
                        Unstarted::Schedule(&schedule.id),
                        "the schedule was paused before this run started",
                    )
                    .await?;
                for id in ids {
                    self.executor.cancel(&id);
                }
            }
            changed += 1;
        }
        self.scheduler.schedules_changed();
        Ok(changed)
    }

    /// After a deployment was paused, its scheduled runs not yet started end Cancelled;
    /// after it was resumed, its schedules create runs again (as the API does).
    async fn paused_or_resumed(&self, d: &DeploymentRecord) -> anyhow::Result<()> {
        let store = self.executor.store();
        if d.paused {
            let ids = store
                .cancel_unstarted_runs(
                    Unstarted::Deployment(&d.id),
                    "the deployment was paused before this run started",
                )
                .await?;
            for id in ids {
                self.executor.cancel(&id);
            }
        } else {
            store
                .restart_deployment_schedules(&d.id, self.scheduler.clock().now())
                .await?;
        }
        self.scheduler.schedules_changed();
        Ok(())
    }
}

fn trigger_failure(e: TriggerError) -> ActionFailure {
    match e {
        TriggerError::Paused(_) | TriggerError::InvalidParameters(_) | TriggerError::Invalid(_) => {
            ActionFailure::permanent(e.to_string())
        }
        TriggerError::Quota(_) | TriggerError::Unavailable(_) | TriggerError::Internal(_) => {
            ActionFailure::transient(e.to_string())
        }
    }
}

/// An id derived from an action's key: an attempt after a crash writes the artifact the
/// first attempt may have written, under the same id, so it is stored once.
fn derived_id(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}
