//! What the host functions of a flow run's instances do: [`FlowScope`] as the
//! [`Run`] an instance serves.
//!
//! A call that creates task runs or a subflow run first waits while the store's queue is
//! at its bound (the database is behind or away): the flow slows down instead of the
//! queue growing without limit. The check is one atomic load when there is room.

use super::scope::FlowScope;
use super::{CallOptions, FlowOutcome, LogLevel, PauseRequest, TaskAttempt, TaskOutcome};
use crate::host::{Run, RunInfo};
use crate::model::failure::Failure;
use crate::model::run::{Artifact, ArtifactData};
use crate::store::{ArtifactRecord, Write};
use chrono::Utc;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A replay mismatch stops the flow instance at once (the run fails with it).
fn mismatch(f: &Failure) -> wasmtime::Error {
    wasmtime::format_err!("{}", f.message)
}

fn progress_value(p: f64) -> Result<Value, String> {
    if !(0.0..=100.0).contains(&p) {
        return Err(format!("progress must be between 0 and 100, not {p}"));
    }
    Ok(json!(p))
}

impl Run for FlowScope {
    fn info(&self) -> RunInfo<'_> {
        RunInfo {
            flow_run_id: &self.id,
            flow_run_name: self.display_name(),
            flow_name: &self.flow_name,
            parameters: &self.parameters_json,
            attempt: self.attempt.load(Ordering::Relaxed),
            tags: &self.tags,
            parent_flow_run_id: self.parent_flow_run_id.as_deref(),
        }
    }

    fn log_prints(&self) -> bool {
        self.log_prints
    }

    fn occupy(
        self: Arc<Self>,
        task: Option<Arc<TaskAttempt>>,
        request: crate::model::run::LimitRequest,
    ) -> BoxFuture<'static, Result<Box<dyn Send + Sync>, String>> {
        Box::pin(async move {
            let occupancy = FlowScope::occupy(&self, task.as_deref(), request).await?;
            Ok(Box::new(occupancy) as Box<dyn Send + Sync>)
        })
    }

    fn rate_limit(
        self: Arc<Self>,
        task: Option<Arc<TaskAttempt>>,
        request: crate::model::run::LimitRequest,
    ) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move { FlowScope::rate_limit(&self, task.as_deref(), request).await })
    }

    fn begin_transaction(
        self: Arc<Self>,
        options: crate::model::run::TransactionOptions,
    ) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(async move { FlowScope::begin_transaction(&self, options).await })
    }

    fn transaction_info(
        &self,
        id: &str,
    ) -> Option<(Option<String>, crate::model::run::TransactionState)> {
        FlowScope::transaction_info(self, id)
    }

    fn transaction_set(&self, id: &str, name: String, value: &str) -> Result<(), String> {
        FlowScope::transaction_set(self, id, name, value)
    }

    fn transaction_get(&self, id: &str, name: &str) -> Option<String> {
        FlowScope::transaction_get(self, id, name)
    }

    fn end_transaction(
        self: Arc<Self>,
        id: String,
        ok: bool,
    ) -> BoxFuture<'static, Result<crate::model::run::TransactionState, String>> {
        Box::pin(async move { FlowScope::end_transaction(&self, &id, ok).await })
    }

    fn rename<'a>(
        &'a self,
        task: Option<&'a TaskAttempt>,
        name: String,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let (kind, id) = match task {
                Some(t) => (crate::store::RunKind::Task, t.task_run_id.as_str()),
                None => (crate::store::RunKind::Flow, self.id.as_str()),
            };
            self.orch
                .store
                .rename_run(kind, id, &name)
                .await
                .map_err(|e| format!("the run could not be renamed: {e}"))?;
            if task.is_none() {
                *self.renamed.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
            }
            Ok(())
        })
    }

    fn allowed_hosts(&self) -> &[String] {
        &self.settings.allowed_hosts
    }

    fn plugin_secrets(&self) -> &[String] {
        &self.settings.plugin_secrets
    }

    fn plugin(&self) -> Option<Arc<str>> {
        self.settings.plugin.clone()
    }

    fn log(&self, task: Option<&TaskAttempt>, level: LogLevel, message: String) {
        FlowScope::log(self, task, level, message);
    }

    fn call_task(
        self: Arc<Self>,
        task: String,
        arguments: String,
        options: CallOptions,
        caller_nesting: u32,
    ) -> BoxFuture<'static, wasmtime::Result<Arc<TaskOutcome>>> {
        Box::pin(async move {
            self.orch.store.room().await;
            let call = self
                .register_call(task, arguments, Arc::new(options), caller_nesting)
                .map_err(|f| mismatch(&f))?;
            Ok(self.run_task(call).await)
        })
    }

    fn submit_task(
        self: Arc<Self>,
        task: String,
        arguments: String,
        options: CallOptions,
        caller_nesting: u32,
    ) -> BoxFuture<'static, wasmtime::Result<String>> {
        Box::pin(async move {
            self.orch.store.room().await;
            let call = self
                .register_call(task, arguments, Arc::new(options), caller_nesting)
                .map_err(|f| mismatch(&f))?;
            Ok(self.spawn_task(call))
        })
    }

    fn map_task(
        self: Arc<Self>,
        task: String,
        arguments: Vec<String>,
        options: CallOptions,
        caller_nesting: u32,
    ) -> BoxFuture<'static, wasmtime::Result<Vec<String>>> {
        Box::pin(async move {
            self.orch.store.room().await;
            let mut ids = Vec::with_capacity(arguments.len());
            let options = Arc::new(options);
            {
                // Room once, not by doubling: at a million calls a doubling is hundreds
                // of MB held twice for a moment.
                let mut calls = self.calls();
                calls.outcomes.reserve(arguments.len());
                calls.queued.reserve(arguments.len());
            }
            for args in arguments {
                let call = self
                    .register_call(task.clone(), args, options.clone(), caller_nesting)
                    .map_err(|f| mismatch(&f))?;
                ids.push(self.spawn_task(call));
            }
            Ok(ids)
        })
    }

    fn wait_task<'a>(
        &'a self,
        task_run_id: &'a str,
    ) -> BoxFuture<'a, wasmtime::Result<Arc<TaskOutcome>>> {
        Box::pin(async move {
            let rx = self.calls().outcomes.get(task_run_id).cloned();
            let Some(rx) = rx else {
                return Err(wasmtime::format_err!("unknown task future {task_run_id}"));
            };
            rx.wait(task_run_id).await.ok_or_else(|| {
                wasmtime::format_err!("task run {task_run_id} ended without an outcome")
            })
        })
    }

    fn call_flow(
        self: Arc<Self>,
        flow: String,
        parameters: String,
        in_task: bool,
    ) -> BoxFuture<'static, wasmtime::Result<FlowOutcome>> {
        Box::pin(async move {
            // As for task runs: a subflow run waits for room in the store's queue.
            self.orch.store.room().await;
            if in_task {
                return Err(wasmtime::format_err!(
                    "a task cannot start a subflow; call the flow from the flow instead"
                ));
            }
            let orch = self.orch.clone();
            // A replay mismatch stops the flow instance at once (the run fails with it).
            orch.run_subflow(&self, flow, &parameters)
                .await
                .map_err(|f| mismatch(&f))
        })
    }

    fn pause(
        self: Arc<Self>,
        request: PauseRequest,
        in_task: bool,
    ) -> BoxFuture<'static, wasmtime::Result<Result<String, String>>> {
        Box::pin(async move {
            if in_task {
                return Ok(Err(
                    "a task cannot pause; pause the flow run from the flow instead".to_owned(),
                ));
            }
            let orch = self.orch.clone();
            orch.pause(&self, request).await
        })
    }

    fn create_artifact(
        &self,
        task: Option<&TaskAttempt>,
        artifact: Artifact,
    ) -> Result<String, String> {
        if let Some(key) = &artifact.key
            && !crate::model::name::valid_artifact_key(key)
        {
            return Err(format!(
                "artifact key {key:?} must be lowercase letters, digits and dashes"
            ));
        }
        let (kind, data) = match artifact.data {
            ArtifactData::Markdown(md) => ("markdown", Value::String(md)),
            ArtifactData::Table(table) => match serde_json::from_str::<Value>(&table) {
                Ok(v @ Value::Array(_)) => ("table", v),
                Ok(_) => return Err("a table artifact must be a JSON array of rows".into()),
                Err(e) => return Err(format!("a table artifact must be JSON: {e}")),
            },
            ArtifactData::Link { url, text } => ("link", json!({"url": url, "text": text})),
            ArtifactData::Progress(p) => ("progress", progress_value(p)?),
        };
        let size = data.to_string().len();
        let limits = &self.limits;
        let max = limits.max_artifact_bytes;
        if size > max {
            return Err(format!(
                "the artifact is {size} bytes, over the limit of {max} bytes"
            ));
        }
        // The run's own bounds, counted before the artifact is written (and not given
        // back when one is refused: a refused call costs its place).
        let count = self.artifacts.fetch_add(1, Ordering::Relaxed) + 1;
        if count > limits.max_artifacts_per_run {
            return Err(format!(
                "the run has created {} artifacts, its limit",
                limits.max_artifacts_per_run
            ));
        }
        let cost = size + limits.log_line_overhead;
        let bytes = self.artifact_bytes.fetch_add(cost, Ordering::Relaxed) + cost;
        if bytes > limits.max_artifact_bytes_per_run {
            return Err(format!(
                "the run's artifacts would take {bytes} bytes, over its limit of {} bytes",
                limits.max_artifact_bytes_per_run
            ));
        }
        if let Some(tenant) = &self.tenant {
            if let Some(mb) = tenant.storage_full() {
                return Err(format!(
                    "the workspace's storage quota ({mb} MiB of logs, artifacts and results) \
                     is used; no more artifacts can be stored"
                ));
            }
            tenant.note_storage(size);
        }
        let id = uuid::Uuid::now_v7().to_string();
        if kind == "progress" {
            self.calls().progress_artifacts.insert(id.clone());
        }
        let now = Utc::now();
        self.orch
            .store
            .write(Write::ArtifactCreated(ArtifactRecord {
                id: id.clone(),
                key: artifact.key,
                kind: kind.to_owned(),
                description: artifact.description,
                data,
                flow_run_id: self.id.clone(),
                task_run_id: task.map(|t| t.task_run_id.clone()),
                created: now,
                updated: now,
                workspace_id: self.settings.workspace_id.clone(),
            }));
        Ok(id)
    }

    fn update_progress(&self, id: String, progress: f64) -> Result<(), String> {
        if !self.calls().progress_artifacts.contains(&id) {
            return Err(format!(
                "no progress artifact {id} was created by this flow run"
            ));
        }
        let data = progress_value(progress)?;
        self.orch.store.write(Write::ArtifactUpdated {
            id,
            data,
            updated: Utc::now(),
        });
        Ok(())
    }

    fn variable(&self, name: String) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            let store = &self.orch.store;
            let found = match &self.settings.workspace_id {
                Some(ws) => store.workspace_variable(ws, &name).await,
                None => store.variable(&name).await,
            };
            match found {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!("reading variable {name:?}: {e}");
                    None
                }
            }
        })
    }

    fn secret(&self, name: String) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            let (Some(ws), Some(secrets)) = (&self.settings.workspace_id, &self.orch.secrets)
            else {
                return None;
            };
            match self.orch.store.secret(ws, &name).await {
                Ok(Some(sealed)) => match secrets.open(&sealed) {
                    Ok(plain) => Some(plain),
                    Err(e) => {
                        tracing::error!("secret {name:?} of workspace {ws} cannot be opened: {e}");
                        None
                    }
                },
                Ok(None) => None,
                Err(e) => {
                    tracing::error!("reading secret {name:?}: {e}");
                    None
                }
            }
        })
    }

    fn delay_task(
        self: Arc<Self>,
        task: String,
        arguments: String,
    ) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(async move {
            let (Some(workspace), Some(deployment)) = (
                self.settings.workspace_id.clone(),
                self.settings.deployment_id.clone(),
            ) else {
                return Err(
                    "background task runs are started by runs of a deployment on a server".into(),
                );
            };
            let Some(runner) = self.orch.deployment_runner() else {
                return Err("this host does not run deployments".into());
            };
            if self.component.task(&task).is_none() {
                return Err(format!("the component has no task '{task}'"));
            }
            let arguments = match serde_json::from_str::<Value>(&arguments) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err("arguments must be a JSON object".into()),
                Err(e) => return Err(format!("arguments are not JSON: {e}")),
            };
            runner
                .run_task(&workspace, &deployment, &task, arguments)
                .await
        })
    }

    fn run_deployment(
        &self,
        deployment: String,
        parameters: String,
        scheduled_at: Option<String>,
    ) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let Some(workspace) = self.settings.workspace_id.clone() else {
                return Err("runs started with `weir run` have no deployments to run".into());
            };
            let Some(runner) = self.orch.deployment_runner() else {
                return Err("this host does not run deployments".into());
            };
            let parameters = match serde_json::from_str::<Value>(&parameters) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err("parameters must be a JSON object".into()),
                Err(e) => return Err(format!("parameters are not JSON: {e}")),
            };
            let at = match scheduled_at
                .as_deref()
                .map(chrono::DateTime::parse_from_rfc3339)
            {
                None => None,
                Some(Ok(t)) => Some(t.with_timezone(&Utc)),
                Some(Err(e)) => return Err(format!("scheduled-at is not RFC 3339: {e}")),
            };
            runner
                .run_deployment(&workspace, &deployment, parameters, at)
                .await
        })
    }
}
