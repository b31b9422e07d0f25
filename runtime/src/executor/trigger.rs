//! Creating runs of a deployment: validated, stored durably, then taken by the node
//! that created them when they are due soon (the API, webhooks, the scheduler, and flows
//! starting deployments).

use super::*;
use crate::store::{InsertStage, NotStored, StoreError, Unavailable};

/// The tag of a run of a plugin's task on its own (`plugin:notify@1`): its code is the
/// plugin's, which reads only the secrets the deployment lets plugins read.
pub const PLUGIN_TAG: &str = "plugin:";

/// A run of a deployment to create.
#[derive(Default)]
pub struct TriggerRequest {
    /// Merged over the deployment's default parameters.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// The same key returns the same run.
    pub idempotency_key: Option<String>,
    /// Run at this time instead of now.
    pub scheduled_at: Option<chrono::DateTime<Utc>>,
    pub tags: Vec<String>,
    pub schedule_id: Option<String>,
    /// A background run of this task of the deployment's component (Prefect's
    /// `task.delay()`): `parameters` are its arguments, the deployment's defaults are not
    /// merged in (they are the flow's).
    pub task: Option<String>,
    /// The task is a plugin's (`task` names it in the plugin): the run executes the
    /// plugin's component with the deployment's capabilities, as plugin code.
    pub plugin: Option<Arc<crate::orchestrate::Plugin>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("deployment '{0}' is paused")]
    Paused(String),
    #[error("invalid parameters: {}", .0.join("; "))]
    InvalidParameters(Vec<String>),
    #[error("{0}")]
    Invalid(String),
    /// The workspace is over a quota that stops new runs (its storage).
    #[error("{0}")]
    Quota(String),
    /// The run cannot be stored now (the database is away or behind): nothing was
    /// created; ask again later.
    #[error("the run cannot be stored now: {0}")]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Executor {
    /// Whether a run due at `at` is claimed by the node creating it (else the node
    /// that claims due runs first takes it, shortly before it is due).
    pub(super) fn due_soon(&self, at: Option<chrono::DateTime<Utc>>) -> bool {
        at.is_none_or(|t| t <= Utc::now() + self.node.poll_interval * 2)
    }

    /// Creates a run of a deployment (validated, stored durably) and takes it. Returns
    /// the run and whether it is new (an idempotency key may return an earlier one).
    /// A run of a plugin's task (`notify/send`) in `deployment`: its capabilities, its
    /// workspace's plugins.
    pub async fn trigger_plugin_task(
        self: &Arc<Self>,
        deployment: &DeploymentRecord,
        task: &str,
        arguments: serde_json::Value,
        idempotency_key: String,
    ) -> Result<FlowRunRecord, TriggerError> {
        use crate::orchestrate::PluginSource;
        let reference = match crate::model::plugin::parse(task) {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(TriggerError::Invalid(e)),
            None => {
                return Err(TriggerError::Invalid(format!(
                    "{task:?} is no plugin task (\"<plugin>/<task>\")"
                )));
            }
        };
        let plugin = self
            .plugin(
                &deployment.workspace_id,
                reference.plugin,
                reference.version,
            )
            .await
            .map_err(TriggerError::Invalid)?;
        let serde_json::Value::Object(parameters) = arguments else {
            return Err(TriggerError::Invalid(
                "the arguments must be an object".into(),
            ));
        };
        let request = TriggerRequest {
            parameters,
            idempotency_key: Some(idempotency_key),
            task: Some(reference.task.to_owned()),
            plugin: Some(plugin),
            ..TriggerRequest::default()
        };
        Ok(self.trigger(deployment, request).await?.0)
    }

    pub async fn trigger(
        self: &Arc<Self>,
        deployment: &DeploymentRecord,
        request: TriggerRequest,
    ) -> Result<(FlowRunRecord, bool), TriggerError> {
        let mut out = self.trigger_many(deployment, vec![request]).await?;
        Ok(out.pop().expect("one request in, one run out"))
    }

    /// [`Executor::trigger`] for many runs of one deployment, stored in one transaction
    /// when they have idempotency keys (the scheduler's case).
    pub async fn trigger_many(
        self: &Arc<Self>,
        deployment: &DeploymentRecord,
        requests: Vec<TriggerRequest>,
    ) -> Result<Vec<(FlowRunRecord, bool)>, TriggerError> {
        if deployment.paused {
            return Err(TriggerError::Paused(deployment.name.clone()));
        }
        if let Some(why) = self
            .orch
            .tenants
            .get(&deployment.workspace_id)
            .refuse_new_run()
        {
            return Err(TriggerError::Quota(why));
        }
        let component = self.component(&deployment.component_digest).await?;
        let mut records = Vec::with_capacity(requests.len());
        for request in requests {
            if request
                .idempotency_key
                .as_deref()
                .is_some_and(|k| k.is_empty() || k.chars().count() > 256)
            {
                return Err(TriggerError::Invalid(
                    "'idempotency_key' must be 1 to 256 characters".into(),
                ));
            }
            let mut parameters = match &request.task {
                Some(_) => serde_json::Map::new(),
                None => deployment
                    .parameters
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            };
            let mut request = request;
            parameters.extend(std::mem::take(&mut request.parameters));
            let component = match &request.plugin {
                Some(plugin) => plugin.component.clone(),
                None => component.clone(),
            };
            if let Some(plugin) = &request.plugin {
                request
                    .tags
                    .push(format!("{PLUGIN_TAG}{}", plugin.pinned()));
            }
            let flow = match &request.task {
                Some(task) => format!("{}{task}", crate::model::manifest::BACKGROUND_PREFIX),
                None => deployment.flow.clone(),
            };
            let mut tags = deployment.tags.clone();
            tags.extend(request.tags);
            let flow_request = FlowRequest {
                tags,
                workspace_id: Some(deployment.workspace_id.clone()),
                deployment_id: Some(deployment.id.clone()),
                idempotency_key: request.idempotency_key,
                expected_start: request.scheduled_at,
                schedule_id: request.schedule_id,
                ..FlowRequest::new(
                    component.clone(),
                    &flow,
                    serde_json::Value::Object(parameters),
                )
            };
            match self
                .orch
                .prepare_flow_run(&flow_request, State::new(StateType::Scheduled))
            {
                Ok(mut r) => {
                    if self.due_soon(r.expected_start) {
                        r.node_id = Some(self.node_id().to_owned());
                        r.fence = 1;
                    }
                    records.push(r)
                }
                Err(PrepareError::InvalidParameters { errors, .. }) => {
                    return Err(TriggerError::InvalidParameters(errors));
                }
                Err(PrepareError::UnknownFlow { flow, message }) => {
                    return Err(TriggerError::Invalid(
                        match flow.strip_prefix(crate::model::manifest::BACKGROUND_PREFIX) {
                            Some(task) => format!(
                                "the component has no task '{task}'; its tasks are: {}",
                                component
                                    .manifest
                                    .tasks
                                    .iter()
                                    .map(|t| t.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            None => message,
                        },
                    ));
                }
            }
        }
        // A run that cannot be stored now is refused before anything is enqueued.
        self.store().writer_health().admits()?;
        let deadline = std::time::Instant::now() + self.node.store_timeout;
        // Storing and handing over happen in a task of their own: a caller that goes
        // away mid-request must not leave a stored run that nobody executes.
        let this = self.clone();
        let deployment = deployment.clone();
        tokio::spawn(async move {
            let (keyed, plain): (Vec<_>, Vec<_>) = records
                .into_iter()
                .partition(|r| r.idempotency_key.is_some());
            let take = |out: &[(FlowRunRecord, bool)]| {
                for (record, new) in out {
                    if *new && record.node_id.as_deref() == Some(this.node_id()) {
                        this.submit(record.clone(), Some(deployment.clone()));
                    }
                }
            };
            // Each stored run is taken at once, whatever happens to the others.
            let mut out = this.store_keyed(&keyed, deadline).await?;
            take(&out);
            if !plain.is_empty() {
                this.store_plain(&plain, deadline).await?;
                let plain: Vec<_> = plain.into_iter().map(|r| (r, true)).collect();
                take(&plain);
                out.extend(plain);
            }
            Ok::<_, TriggerError>(out)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    }

    /// Stores new runs through the writer, all in one transaction, and waits for their
    /// commit until `deadline`: past it they are withdrawn (never written) unless an
    /// attempt at them is under way, whose outcome is then waited for.
    pub(super) async fn store_plain(
        &self,
        runs: &[FlowRunRecord],
        deadline: std::time::Instant,
    ) -> Result<(), TriggerError> {
        let writes = runs.iter().cloned().map(Write::FlowRunCreated).collect();
        let receipt = self
            .store()
            .write_acked(writes)
            .map_err(|e| TriggerError::Internal(e.into()))?;
        match receipt.wait(deadline).await {
            Ok(()) => {}
            Err(NotStored::TimedOut) => {
                let why = match self.store().writer_health().failing {
                    Some(f) => format!("; it fails with: {}", f.error),
                    None => String::new(),
                };
                return Err(TriggerError::Unavailable(Unavailable {
                    reason: format!(
                        "the database did not store it within {:.1} s{why} (the run was \
                         withdrawn: none was created)",
                        self.node.store_timeout.as_secs_f64()
                    ),
                    retry_after: Duration::from_secs(2),
                }));
            }
            Err(e @ NotStored::Refused(_)) => return Err(TriggerError::Internal(e.into())),
        }
        for r in runs {
            self.orch
                .emit(|| crate::orchestrate::Event::FlowRunCreated {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    flow: r.flow_name.clone(),
                });
        }
        Ok(())
    }

    /// Stores runs with idempotency keys (in one transaction, straight to the database),
    /// retrying transient failures until `deadline`. Returns each run with whether this
    /// trigger created it. An attempt whose COMMIT went unanswered may have committed:
    /// then the trigger does not give up but inserts again (waiting for that attempt's
    /// transaction if it is still alive) and finds its own runs by their ids.
    pub(super) async fn store_keyed(
        &self,
        runs: &[FlowRunRecord],
        deadline: std::time::Instant,
    ) -> Result<Vec<(FlowRunRecord, bool)>, TriggerError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut backoff = Duration::from_millis(20);
        let mut unsure = false;
        loop {
            let mut stage = InsertStage::Connecting;
            let until = (!unsure).then_some(deadline);
            let err = match self
                .store()
                .insert_flow_runs_once_until(runs, until, &mut stage)
                .await
            {
                Ok(out) => {
                    let ids: std::collections::HashSet<&str> =
                        runs.iter().map(|r| r.id.as_str()).collect();
                    return Ok(out
                        .into_iter()
                        .map(|(r, new)| {
                            let mine = new || ids.contains(r.id.as_str());
                            (r, mine)
                        })
                        .collect());
                }
                Err(e) => e,
            };
            let lost_commit = self.store().is_postgres()
                && stage == InsertStage::Committing
                && !err.is_server_answer();
            // An earlier unsure attempt is settled once an insert of the same keys
            // went through.
            unsure = lost_commit || (unsure && stage < InsertStage::Inserted);
            if !err.is_transient() && !unsure {
                return Err(TriggerError::Internal(err.into()));
            }
            if !unsure && std::time::Instant::now() + backoff >= deadline {
                return Err(unavailable(&err));
            }
            tracing::warn!("storing triggered runs failed ({err}); trying again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

impl Executor {
    /// This executor, shared, for work that outlives the caller's borrow.
    fn me(&self) -> Result<Arc<Executor>, &'static str> {
        self.me
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or("the executor is stopping")
    }
}

impl crate::orchestrate::DeploymentRunner for Executor {
    fn run_deployment<'a>(
        &'a self,
        workspace_id: &'a str,
        deployment: &'a str,
        parameters: serde_json::Map<String, serde_json::Value>,
        scheduled_at: Option<chrono::DateTime<Utc>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let this = self.me()?;
            let d = self
                .store()
                .deployment(workspace_id, deployment)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no deployment named '{deployment}' in this workspace"))?;
            let request = TriggerRequest {
                parameters,
                scheduled_at,
                ..TriggerRequest::default()
            };
            this.trigger(&d, request)
                .await
                .map(|(run, _)| run.id)
                .map_err(|e| e.to_string())
        })
    }

    fn run_task<'a>(
        &'a self,
        workspace_id: &'a str,
        deployment_id: &'a str,
        task: &'a str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let this = self.me()?;
            let d = self
                .store()
                .deployment_by_id(deployment_id)
                .await
                .map_err(|e| e.to_string())?
                .filter(|d| d.workspace_id == workspace_id)
                .ok_or("the run's deployment no longer exists")?;
            let request = TriggerRequest {
                parameters: arguments,
                task: Some(task.to_owned()),
                plugin: None,
                ..TriggerRequest::default()
            };
            this.trigger(&d, request)
                .await
                .map(|(run, _)| run.id)
                .map_err(|e| e.to_string())
        })
    }
}

fn unavailable(e: &StoreError) -> TriggerError {
    TriggerError::Unavailable(Unavailable {
        reason: format!("the database is not accepting writes ({e})"),
        retry_after: Duration::from_secs(2),
    })
}
