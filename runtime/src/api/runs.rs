//! Flow runs: trigger a deployment, list and read runs with their task runs, logs
//! (paged, or followed as server-sent events) and artifacts; cancel, retry and resume.

use super::deployments::find as find_deployment;
use super::page::{Page, PageQuery, Paged};
use super::{ApiError, ApiResult, AppState, Auth, MaybeJson};
use crate::executor::{TriggerError, TriggerRequest};
use crate::model::state::{State as RunState, StateType};
use crate::store::{
    ArtifactRecord, DeploymentRecord, FlowRunRecord, PauseRecord, RunFilter, TaskRunFilter,
    TaskRunRecord,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct StateJson {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: StateType,
    pub name: String,
    pub message: Option<String>,
    pub timestamp: DateTime<Utc>,
}

impl From<&RunState> for StateJson {
    fn from(s: &RunState) -> Self {
        Self {
            kind: s.kind,
            name: s.name.clone(),
            message: s.message.clone(),
            timestamp: s.timestamp,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FlowRun {
    pub id: String,
    pub name: String,
    pub flow: String,
    /// The function of the flow, which tells it apart from another flow of the same name
    /// in its component (Prefect's entrypoint); `null` for components that name none.
    pub flow_function: Option<String>,
    pub deployment_id: Option<String>,
    pub component_digest: String,
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub tags: Vec<String>,
    pub state: StateJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_history: Option<Vec<StateJson>>,
    /// The flow's return value: any JSON.
    pub result: Option<Value>,
    pub run_count: i64,
    pub idempotency_key: Option<String>,
    pub parent_flow_run_id: Option<String>,
    pub created: DateTime<Utc>,
    pub expected_start: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// The server node holding the run (waiting for its time or slots, or running it).
    pub node_id: Option<String>,
    /// How many times a node died while running it and another took it over.
    pub crash_count: i64,
    /// What a paused run waits for (only while it is paused, on a single run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
}

/// The pause a paused flow run waits on.
#[derive(Serialize, ToSchema)]
pub struct Pause {
    pub key: Option<String>,
    pub description: Option<String>,
    /// JSON Schema of the input a resume must bring; `null`: it brings none.
    pub input_schema: Option<Value>,
    /// Whether the run released its instance (it runs again, replaying, on resume).
    pub suspended: bool,
    pub timeout_seconds: f64,
    pub timeout_at: DateTime<Utc>,
}

impl From<PauseRecord> for Pause {
    fn from(p: PauseRecord) -> Self {
        Self {
            key: p.key,
            description: p.description,
            input_schema: p.input_schema,
            suspended: p.suspend,
            timeout_seconds: p.timeout_seconds,
            timeout_at: p.timeout_at,
        }
    }
}

pub(crate) fn run_json(r: &FlowRunRecord, history: Option<Vec<RunState>>) -> FlowRun {
    FlowRun {
        id: r.id.clone(),
        name: r.name.clone(),
        flow: r.flow_name.clone(),
        flow_function: r.flow_function.clone(),
        deployment_id: r.deployment_id.clone(),
        component_digest: r.component_digest.clone(),
        parameters: r.parameters.clone(),
        tags: r.tags.clone(),
        state: (&r.state).into(),
        state_history: history.map(|h| h.iter().map(Into::into).collect()),
        result: r.result.clone(),
        run_count: r.run_count,
        idempotency_key: r.idempotency_key.clone(),
        parent_flow_run_id: r.parent_flow_run_id.clone(),
        created: r.created,
        expected_start: r.expected_start,
        start_time: r.start_time,
        end_time: r.end_time,
        node_id: r.node_id.clone(),
        crash_count: r.crash_count,
        pause: None,
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// Merged over the deployment's default parameters.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    /// The same key returns the same run (1 to 256 characters).
    #[schema(min_length = 1, max_length = 256)]
    pub idempotency_key: Option<String>,
    /// Run at this time instead of now.
    pub scheduled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Creates a run of a deployment and hands it to the executor. Returns the run and
/// whether it is new (an idempotency key may return an earlier one).
pub(crate) async fn trigger(
    state: &AppState,
    deployment: &DeploymentRecord,
    body: CreateRun,
) -> ApiResult<(FlowRunRecord, bool)> {
    let request = TriggerRequest {
        parameters: body.parameters,
        idempotency_key: body.idempotency_key,
        scheduled_at: body.scheduled_at,
        tags: body.tags,
        schedule_id: None,
        task: None,
        plugin: None,
    };
    state
        .executor
        .trigger(deployment, request)
        .await
        .map_err(Into::into)
}

impl From<TriggerError> for ApiError {
    fn from(e: TriggerError) -> Self {
        match e {
            TriggerError::Paused(_) => ApiError::Conflict(e.to_string()),
            TriggerError::InvalidParameters(errors) => {
                ApiError::invalid("Invalid parameters", errors)
            }
            TriggerError::Invalid(msg) => ApiError::invalid("Invalid run", vec![msg]),
            TriggerError::Quota(msg) => ApiError::Quota(msg),
            TriggerError::Unavailable(u) => ApiError::Unavailable {
                detail: format!("the run cannot be stored now: {}", u.reason),
                retry_after: u.retry_after,
            },
            TriggerError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// Triggers a run of a deployment.
#[utoipa::path(post, path = "/api/deployments/{id}/runs", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The deployment's id or name")), request_body = Option<CreateRun>,
    responses((status = 201, body = FlowRun), (status = 200, body = FlowRun, description = "The run of this idempotency key"),
              (status = 403, body = super::Problem, description = "The workspace is over a quota"),
              (status = 404, body = super::Problem), (status = 409, body = super::Problem),
              (status = 422, body = super::Problem),
              (status = 503, body = super::Problem, description = "The run cannot be stored now (see Retry-After); none was created")))]
pub async fn create(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson<CreateRun>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let deployment = find_deployment(&state, &auth.workspace_id, &id).await?;
    let body = body.unwrap_or_default();
    let (record, new) = trigger(&state, &deployment, body).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(run_json(&record, None))))
}

/// A background task run to create (Prefect's `task.delay()` from outside a flow).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRun {
    /// A task of the deployment's component.
    pub task: String,
    /// The task's arguments by parameter name, checked against its schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: Map<String, Value>,
    /// The same key returns the same run (1 to 256 characters).
    #[schema(min_length = 1, max_length = 256)]
    pub idempotency_key: Option<String>,
    /// Run at this time instead of now.
    pub scheduled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Starts a background run of a task of the deployment's component (Prefect's
/// `task.delay()`): a run of its own (listed with the flow runs, its flow named
/// `task/<task>`) whose only call is the task, with the task's retries, timeout and cache,
/// in the deployment's pool, limits and capabilities.
#[utoipa::path(post, path = "/api/deployments/{id}/task-runs", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The deployment's id or name")), request_body = CreateTaskRun,
    responses((status = 201, body = FlowRun), (status = 200, body = FlowRun, description = "The run of this idempotency key"),
              (status = 403, body = super::Problem, description = "The workspace is over a quota"),
              (status = 404, body = super::Problem), (status = 409, body = super::Problem),
              (status = 422, body = super::Problem),
              (status = 503, body = super::Problem, description = "The run cannot be stored now (see Retry-After); none was created")))]
pub async fn create_task_run(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    super::ApiJson(body): super::ApiJson<CreateTaskRun>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let deployment = find_deployment(&state, &auth.workspace_id, &id).await?;
    let request = TriggerRequest {
        parameters: body.arguments,
        idempotency_key: body.idempotency_key,
        scheduled_at: body.scheduled_at,
        tags: body.tags,
        schedule_id: None,
        task: Some(body.task),
        plugin: None,
    };
    let (record, new) = state.executor.trigger(&deployment, request).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(run_json(&record, None))))
}

/// Filters of the flow-runs list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// State types, comma-separated, in any case: SCHEDULED, PENDING, RUNNING,
    /// COMPLETED, FAILED, CANCELLING, CANCELLED, CRASHED, PAUSED.
    pub state: Option<String>,
    /// A deployment id or name.
    pub deployment: Option<String>,
    /// A flow name.
    pub flow: Option<String>,
    pub tag: Option<String>,
    /// Text the run's name contains.
    pub name: Option<String>,
    /// Leave out subflow runs.
    pub top_level: Option<bool>,
    /// Created at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

/// Flow runs of the workspace, newest first.
#[utoipa::path(get, path = "/api/flow-runs", tag = "runs", security(("bearer" = [])),
    params(ListQuery, PageQuery),
    responses((status = 200, body = Page<FlowRun>), (status = 404, body = super::Problem, description = "No such deployment")))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Paged { filter: q, page }: Paged<ListQuery>,
) -> ApiResult<Json<Page<FlowRun>>> {
    let pager = page.check(&state, "flow-runs", &auth.workspace_id)?;
    let states = parse_states(q.state.as_deref().unwrap_or(""))?;
    let deployment_id = match q.deployment {
        Some(d) => Some(find_deployment(&state, &auth.workspace_id, &d).await?.id),
        None => None,
    };
    let filter = RunFilter {
        states,
        deployment_id,
        flow: q.flow,
        tag: q.tag,
        name_contains: q.name.filter(|n| !n.is_empty()),
        top_level: q.top_level.unwrap_or(false),
        scheduled_until: None,
        state_name: None,
        since: q.since,
        until: q.until,
        before_id: pager.after()?,
        limit: pager.fetch(),
    };
    let runs = state
        .store()
        .list_flow_runs(&auth.workspace_id, &filter)
        .await?;
    Ok(Json(pager.page(
        runs,
        |r| json!(r.id),
        |r| run_json(&r, None),
    )))
}

/// Filters of the task-runs list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskListQuery {
    /// State types, comma-separated, in any case.
    pub state: Option<String>,
    /// A task name.
    pub task: Option<String>,
    /// Only task runs of this flow run.
    pub flow_run: Option<String>,
}

/// Task runs of the workspace, newest first.
#[utoipa::path(get, path = "/api/task-runs", tag = "runs", security(("bearer" = [])),
    params(TaskListQuery, PageQuery),
    responses((status = 200, body = Page<TaskRun>)))]
pub async fn list_task_runs(
    auth: Auth,
    State(state): State<AppState>,
    Paged { filter: q, page }: Paged<TaskListQuery>,
) -> ApiResult<Json<Page<TaskRun>>> {
    let pager = page.check(&state, "task-runs", &auth.workspace_id)?;
    let filter = TaskRunFilter {
        states: parse_states(q.state.as_deref().unwrap_or(""))?,
        task_name: q.task.filter(|t| !t.is_empty()),
        flow_run_id: q.flow_run.filter(|t| !t.is_empty()),
        before_id: pager.after()?,
        limit: pager.fetch(),
    };
    let runs = state
        .store()
        .list_task_runs(&auth.workspace_id, &filter)
        .await?;
    Ok(Json(pager.page(runs, |r| json!(r.id), TaskRun::from)))
}

/// State types from a comma-separated list (any case); empty for none. The OpenAPI
/// document says the same with `openapi::state_list_pattern`.
pub(crate) fn parse_states(list: &str) -> ApiResult<Vec<StateType>> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|s| {
            StateType::parse(&s.to_ascii_uppercase())
                .ok_or_else(|| ApiError::BadRequest(format!("unknown state {s:?}")))
        })
        .collect()
}

pub(crate) async fn find_run(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> ApiResult<FlowRunRecord> {
    state
        .store()
        .workspace_flow_run(workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("flow run"))
}

/// A flow run with its state history.
#[utoipa::path(get, path = "/api/flow-runs/{id}", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = FlowRun), (status = 404, body = super::Problem)))]
pub async fn get(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<FlowRun>> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    let history = state.store().state_history(&run.id).await?;
    let mut json = run_json(&run, Some(history));
    if run.state.kind == StateType::Paused {
        json.pause = state.store().open_pause(&run.id).await?.map(Into::into);
    }
    Ok(Json(json))
}

#[derive(Serialize, ToSchema)]
pub struct TaskRun {
    pub id: String,
    pub flow_run_id: String,
    pub name: String,
    pub task: String,
    pub position: Option<i64>,
    pub state: StateJson,
    pub run_count: i64,
    /// The task's return value: any JSON.
    pub result: Option<Value>,
    pub cache_key: Option<String>,
    pub tags: Vec<String>,
    pub created: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// The task runs this one waited for (`wait_for`).
    pub wait_for: Vec<String>,
    /// The transaction the task run belongs to (see the flow run's transactions).
    pub transaction_id: Option<String>,
}

impl From<TaskRunRecord> for TaskRun {
    fn from(t: TaskRunRecord) -> Self {
        Self {
            state: (&t.state).into(),
            id: t.id,
            flow_run_id: t.flow_run_id,
            name: t.name,
            task: t.task_name,
            position: t.position,
            run_count: t.run_count,
            result: t.result,
            cache_key: t.cache_key,
            tags: t.tags,
            created: t.created,
            start_time: t.start_time,
            end_time: t.end_time,
            wait_for: t.upstream,
            transaction_id: t.transaction_id,
        }
    }
}

/// A transaction of a flow run (Prefect's `with transaction()`).
#[derive(Serialize, ToSchema)]
pub struct Transaction {
    pub id: String,
    /// Its begin's position among the run's calls.
    pub position: i64,
    /// The transaction it began inside.
    pub parent_id: Option<String>,
    pub key: Option<String>,
    #[schema(pattern = "^(read-committed|serializable)$")]
    pub isolation: String,
    #[schema(pattern = "^(eager|lazy|off)$")]
    pub commit_mode: String,
    /// `active`, `committed` or `rolled-back`.
    #[schema(pattern = "^(active|committed|rolled-back)$")]
    pub state: String,
    pub created: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct Transactions {
    /// In the order they began (at most the first 10,000).
    pub items: Vec<Transaction>,
}

/// A flow run's transactions and how each ended; its task runs name theirs.
#[utoipa::path(get, path = "/api/flow-runs/{id}/transactions", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The flow run's id")),
    responses((status = 200, body = Transactions), (status = 404, body = super::Problem)))]
pub async fn transactions(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Transactions>> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    let items = state
        .store()
        .transactions(&run.id)
        .await?
        .into_iter()
        .map(|t| Transaction {
            id: t.id,
            position: t.position,
            parent_id: t.parent_id,
            key: t.key,
            isolation: t.isolation.as_str().to_owned(),
            commit_mode: t.commit_mode.as_str().to_owned(),
            state: t.state.as_str().to_owned(),
            created: t.created,
            ended: t.ended,
        })
        .collect();
    Ok(Json(Transactions { items }))
}

/// A flow run's task runs in call order; those called from tasks (without a position)
/// last.
#[utoipa::path(get, path = "/api/flow-runs/{id}/task-runs", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The flow run's id"), PageQuery),
    responses((status = 200, body = Page<TaskRun>), (status = 404, body = super::Problem)))]
pub async fn task_runs(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<TaskRun>>> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    let pager = page.check(&state, "flow-run-task-runs", &run.id)?;
    let after: Option<(Option<i64>, String)> = pager.after()?;
    let items = state
        .store()
        .task_runs_page(
            &run.id,
            after.as_ref().map(|(p, id)| (*p, id.as_str())),
            pager.fetch(),
        )
        .await?;
    Ok(Json(pager.page(
        items,
        |t| json!([t.position, t.id]),
        TaskRun::from,
    )))
}

/// How to read a flow run's logs.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines after this sequence number (instead of a cursor; also where following
    /// starts).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Follow as server-sent events until the run is final.
    pub follow: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct LogLine {
    pub seq: i64,
    pub level: String,
    pub message: String,
    pub timestamp: DateTime<Utc>,
    pub task_run_id: Option<String>,
}

/// An event of followed logs (the schema of each server-sent event): `log` events, then
/// one `end` once the run is final.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LogEvent {
    /// `log` or `end`.
    #[schema(pattern = "^(log|end)$")]
    pub event: String,
    /// A `LogLine` as JSON text (`{}` for `end`).
    pub data: String,
}

fn log_json(l: crate::store::LogLine) -> LogLine {
    LogLine {
        seq: l.seq,
        level: l.record.level,
        message: l.record.message,
        timestamp: l.record.timestamp,
        task_run_id: l.record.task_run_id,
    }
}

/// Logs of a flow run and its task runs, oldest first; with `Accept: text/event-stream`
/// or `follow=true`, a stream of events `log` (from `after` or the cursor on) that ends
/// with an event `end` once the run is final.
#[utoipa::path(get, path = "/api/flow-runs/{id}/logs", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The flow run's id"), LogQuery, PageQuery),
    responses((status = 200, content(
        (Page<LogLine> = "application/json"),
        (LogEvent = "text/event-stream")
    )), (status = 404, body = super::Problem)))]
pub async fn logs(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Paged { filter: q, page }: Paged<LogQuery>,
) -> ApiResult<Response> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    let pager = page.check(&state, "flow-run-logs", &run.id)?;
    let wants_stream = q.follow.unwrap_or(false)
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream"));
    let after = match (q.after, pager.after::<i64>()?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give 'after' or 'cursor', not both".into(),
            ));
        }
        (Some(a), None) if a < 0 => {
            return Err(ApiError::BadRequest("'after' must not be negative".into()));
        }
        (a, c) => a.or(c).unwrap_or(0),
    };
    if !wants_stream {
        let lines = state
            .store()
            .logs_after(&run.id, after, pager.fetch())
            .await?;
        return Ok(Json(pager.page(lines, |l| json!(l.seq), log_json)).into_response());
    }
    let stream = futures_util::stream::unfold(Some((state, run.id, after)), |st| async move {
        let (state, run_id, after) = st?;
        loop {
            let lines = match state.store().logs_after(&run_id, after, 500).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("following logs of {run_id}: {e}");
                    return Some((vec![Event::default().event("end").data("{}")], None));
                }
            };
            if let Some(last) = lines.last() {
                let next = last.seq;
                let events = lines
                    .into_iter()
                    .map(|l| {
                        Event::default()
                            .event("log")
                            .json_data(log_json(l))
                            .unwrap_or_else(|_| Event::default().event("log"))
                    })
                    .collect();
                return Some((events, Some((state, run_id, next))));
            }
            let finished = match state.store().flow_run(&run_id).await {
                Ok(Some(r)) => r.state.is_final(),
                _ => true,
            };
            if finished {
                // One more look: lines written just before the run ended.
                let _ = state.store().flush().await;
                let late = state
                    .store()
                    .logs_after(&run_id, after, 500)
                    .await
                    .unwrap_or_default();
                if !late.is_empty() {
                    let next = late.last().map(|l| l.seq).unwrap_or(after);
                    let events = late
                        .into_iter()
                        .map(|l| {
                            Event::default()
                                .event("log")
                                .json_data(log_json(l))
                                .unwrap_or_default()
                        })
                        .collect();
                    return Some((events, Some((state, run_id, next))));
                }
                return Some((vec![Event::default().event("end").data("{}")], None));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .flat_map(|events| futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Artifact {
    pub id: String,
    pub key: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    /// Depends on the type: markdown text, a table's rows, a link, a progress value.
    pub data: Value,
    pub flow_run_id: String,
    pub task_run_id: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

impl From<ArtifactRecord> for Artifact {
    fn from(a: ArtifactRecord) -> Self {
        Self {
            id: a.id,
            key: a.key,
            kind: a.kind,
            description: a.description,
            data: a.data,
            flow_run_id: a.flow_run_id,
            task_run_id: a.task_run_id,
            created: a.created,
            updated: a.updated,
        }
    }
}

/// Artifacts of a flow run and its task runs, oldest first.
#[utoipa::path(get, path = "/api/flow-runs/{id}/artifacts", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The flow run's id"), PageQuery),
    responses((status = 200, body = Page<Artifact>), (status = 404, body = super::Problem)))]
pub async fn artifacts(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Artifact>>> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    let pager = page.check(&state, "flow-run-artifacts", &run.id)?;
    let after: Option<(DateTime<Utc>, String)> = pager.after()?;
    let items = state
        .store()
        .artifacts_page(
            &run.id,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            pager.fetch(),
        )
        .await?;
    Ok(Json(pager.page(
        items,
        |a| json!([a.created, a.id]),
        Artifact::from,
    )))
}

/// Which artifact's versions to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ArtifactQuery {
    /// The artifact's key.
    pub key: String,
}

/// Versions of an artifact, latest first.
#[utoipa::path(get, path = "/api/artifacts", tag = "runs", security(("bearer" = [])),
    params(ArtifactQuery, PageQuery),
    responses((status = 200, body = Page<Artifact>)))]
pub async fn artifacts_by_key(
    auth: Auth,
    State(state): State<AppState>,
    Paged { filter: q, page }: Paged<ArtifactQuery>,
) -> ApiResult<Json<Page<Artifact>>> {
    // The key is part of the list's identity: a cursor of one key's versions is no
    // cursor of another's.
    let scope = format!("{}\n{}", auth.workspace_id, q.key);
    let pager = page.check(&state, "artifact-versions", &scope)?;
    let before: Option<(DateTime<Utc>, String)> = pager.after()?;
    let items = state
        .store()
        .workspace_artifacts_by_key(
            &auth.workspace_id,
            &q.key,
            before.as_ref().map(|(t, id)| (*t, id.as_str())),
            pager.fetch(),
        )
        .await?;
    Ok(Json(pager.page(
        items,
        |a| json!([a.created, a.id]),
        Artifact::from,
    )))
}

/// Cancels a run: a running instance is interrupted within a second; it ends Cancelled.
#[utoipa::path(post, path = "/api/flow-runs/{id}/cancel", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = FlowRun), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem)))]
pub async fn cancel(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    state.executor.cancel_run(&run).await?;
    Ok((StatusCode::ACCEPTED, Json(run_json(&run, None))))
}

/// Runs a failed, crashed or cancelled run again, replaying its completed tasks.
#[utoipa::path(post, path = "/api/flow-runs/{id}/retry", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = FlowRun), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem)))]
pub async fn retry(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    let run = state.executor.retry_run(&run).await?;
    Ok((StatusCode::ACCEPTED, Json(run_json(&run, None))))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResumeRun {
    /// The input the pause asks for; it must match the pause's input schema. Leave it
    /// out for a pause that takes none.
    #[serde(default)]
    pub input: Option<Value>,
}

/// Resumes a paused or suspended run with input that matches the pause's schema (422
/// otherwise, and nothing changes). A paused run continues in its instance; a suspended
/// run runs again from the start, replaying what it completed, and its pause returns
/// the input.
#[utoipa::path(post, path = "/api/flow-runs/{id}/resume", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Option<ResumeRun>,
    responses((status = 202, body = FlowRun), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn resume(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson<ResumeRun>,
) -> ApiResult<(StatusCode, Json<FlowRun>)> {
    let run = find_run(&state, &auth.workspace_id, &id).await?;
    let input = body.unwrap_or_default().input.unwrap_or(Value::Null);
    state.executor.resume_run(&run, input).await?;
    Ok((StatusCode::ACCEPTED, Json(run_json(&run, None))))
}
