//! Automations (Prefect's automations): a trigger and actions, with the runs each event
//! set off and what their actions did; events posted to an automation.

use super::webhooks::{Issued, Webhook, WebhookSpec};
use super::{ApiError, ApiJson, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use crate::model::automation::{Action, Trigger, check};
use crate::store::{AutomationRecord, AutomationRunRecord, Saved};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Automation {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    /// `{"type": "flow-run-state", "deployments", "tags", "states", "threshold",
    /// "within_seconds"}`, `{"type": "flow-run-stuck", "deployments", "tags", "state",
    /// "for_seconds"}` or `{"type": "event"}`.
    #[schema(value_type = Object)]
    pub trigger: Value,
    /// In order: `run-deployment` (`deployment`, `parameters`), `cancel-run`,
    /// `retry-run`, `pause-deployment`, `resume-deployment`, `pause-schedules` and
    /// `resume-schedules` (`deployment`), `create-artifact` (`markdown`, `key`,
    /// `description`), `call-plugin` (`task`, `arguments`, `deployment`),
    /// `pause-automation` and `resume-automation` (`automation`), `do-nothing`
    /// (`cancel-flow-run` is taken for `cancel-run`, as Prefect names it). Strings in
    /// `parameters`, `arguments` and `markdown` are templates over the event.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    /// An `event` trigger's own URL, `/hooks/automations/<token>`, which takes events
    /// without the API key.
    pub webhook: Webhook,
    pub created: chrono::DateTime<Utc>,
    pub updated: chrono::DateTime<Utc>,
}

fn to_json(a: AutomationRecord, issued: Option<Issued>) -> Automation {
    Automation {
        webhook: Webhook::new(
            "/hooks/automations",
            a.webhook_token_hash.is_some(),
            a.webhook_secret.is_some(),
            issued,
        ),
        id: a.id,
        name: a.name,
        description: a.description,
        enabled: a.enabled,
        trigger: a.trigger,
        actions: a.actions,
        created: a.created,
        updated: a.updated,
    }
}

impl From<AutomationRecord> for Automation {
    fn from(a: AutomationRecord) -> Self {
        to_json(a, None)
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAutomation {
    pub name: String,
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[schema(value_type = Object)]
    pub trigger: Value,
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    /// A URL of its own for an `event` trigger (`{"enabled": true, "signed": false}`); its
    /// token (and secret) are in the answer, once.
    #[serde(default, deserialize_with = "super::object")]
    pub webhook: WebhookSpec,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateAutomation {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub trigger: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub actions: Option<Value>,
    /// Switches the webhook on or off, or signing; the token is kept otherwise.
    #[serde(default, deserialize_with = "super::object_opt")]
    pub webhook: Option<WebhookSpec>,
}

/// One firing of an automation: the event, and what each action did.
#[derive(Serialize, ToSchema)]
pub struct AutomationRun {
    pub id: String,
    pub automation_id: String,
    /// `pending` (to run, again after `next_attempt`), `completed` or `failed`.
    pub state: String,
    /// What set it off: the flow run and its state, or the posted body.
    #[schema(value_type = Object)]
    pub event: Value,
    pub attempts: i64,
    pub next_attempt: chrono::DateTime<Utc>,
    /// One entry per action done: `{"type", "ok", "output"}` or `{"type", "ok", "message"}`.
    #[schema(value_type = Vec<Object>)]
    pub results: Value,
    /// Why the last attempt failed.
    pub error: Option<String>,
    pub created: chrono::DateTime<Utc>,
    pub updated: chrono::DateTime<Utc>,
}

impl From<AutomationRunRecord> for AutomationRun {
    fn from(r: AutomationRunRecord) -> Self {
        AutomationRun {
            id: r.id,
            automation_id: r.automation_id,
            state: serde_json::to_value(r.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            event: r.event,
            attempts: r.attempts,
            next_attempt: r.next_attempt,
            results: r.results,
            error: r.error,
            created: r.created,
            updated: r.updated,
        }
    }
}

const MAX_DESCRIPTION: usize = 2000;
/// The largest body an event may bring.
const MAX_EVENT_BYTES: usize = 64 << 10;

/// Reads and checks a trigger and actions (and that only an `event` trigger has a
/// webhook); one message per problem.
fn parse(trigger: &Value, actions: &Value, webhook: bool) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let trigger: Option<Trigger> = serde_json::from_value(trigger.clone())
        .map_err(|e| errors.push(format!("'trigger': {e}")))
        .ok();
    if webhook
        && trigger
            .as_ref()
            .is_some_and(|t| !matches!(t, Trigger::Event {}))
    {
        errors.push(
            "'webhook': only an automation whose trigger is `event` takes posted events \
             (switch the webhook off to change the trigger)"
                .into(),
        );
    }
    let actions: Option<Vec<Action>> = match actions.as_array() {
        None => {
            errors.push("'actions' must be a list".into());
            None
        }
        Some(list) => {
            let mut parsed = Vec::with_capacity(list.len());
            for (i, a) in list.iter().enumerate() {
                match serde_json::from_value::<Action>(a.clone()) {
                    Ok(a) => parsed.push(a),
                    Err(e) => errors.push(format!("'actions[{i}]': {e}")),
                }
            }
            Some(parsed)
        }
    };
    if let (Some(t), Some(a)) = (&trigger, &actions)
        && errors.is_empty()
    {
        errors.extend(check(t, a));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_fields(name: &str, description: Option<&str>, errors: &mut Vec<String>) {
    if !super::workspaces::valid_name(name) {
        errors.push(format!("'name' must be {}", super::workspaces::NAME_RULE));
    } else if uuid::Uuid::try_parse(name).is_ok() {
        errors.push("'name' must not look like an automation id (a UUID)".into());
    }
    if description.is_some_and(|d| d.len() > MAX_DESCRIPTION) {
        errors.push(format!(
            "'description' is longer than {MAX_DESCRIPTION} bytes"
        ));
    }
}

#[utoipa::path(post, path = "/api/automations", tag = "automations", security(("bearer" = [])),
    request_body = CreateAutomation,
    responses((status = 201, body = Automation), (status = 409, body = super::Problem),
              (status = 422, body = super::Problem)))]
pub async fn create(
    auth: Auth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAutomation>,
) -> ApiResult<(StatusCode, Json<Automation>)> {
    let mut errors = Vec::new();
    check_fields(&body.name, body.description.as_deref(), &mut errors);
    if let Err(e) = parse(&body.trigger, &body.actions, body.webhook.enabled) {
        errors.extend(e);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("Invalid automation", errors));
    }
    let now = Utc::now();
    let mut a = AutomationRecord {
        id: uuid::Uuid::now_v7().to_string(),
        workspace_id: auth.workspace_id,
        name: body.name,
        description: body.description,
        enabled: body.enabled,
        trigger: body.trigger,
        actions: body.actions,
        fired_at: None,
        webhook_token_hash: None,
        webhook_secret: None,
        created: now,
        updated: now,
    };
    let issued = Issued::into_record(
        &state,
        &body.webhook,
        &mut a.webhook_token_hash,
        &mut a.webhook_secret,
    );
    match state.store().insert_automation(&a).await? {
        Saved::Done => {
            state.automations.wake.notify_one();
            Ok((StatusCode::CREATED, Json(to_json(a, issued))))
        }
        _ => Err(ApiError::Conflict(format!(
            "an automation named '{}' exists",
            a.name
        ))),
    }
}

#[utoipa::path(get, path = "/api/automations", tag = "automations", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Automation>)))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Automation>>> {
    let pager = page.check(&state, "automations", &auth.workspace_id)?;
    let after: Option<String> = pager.after()?;
    let items = state
        .store()
        .automations_page(&auth.workspace_id, after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(items, |a| json!(a.name), Automation::from)))
}

async fn find(state: &AppState, workspace_id: &str, id: &str) -> ApiResult<AutomationRecord> {
    state
        .store()
        .automation(workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("automation"))
}

#[utoipa::path(get, path = "/api/automations/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = String, Path, description = "The automation's id or name")),
    responses((status = 200, body = Automation), (status = 404, body = super::Problem)))]
pub async fn get(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    Ok(Json(find(&state, &auth.workspace_id, &id).await?.into()))
}

#[utoipa::path(patch, path = "/api/automations/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = String, Path, description = "The automation's id or name")),
    request_body = UpdateAutomation,
    responses((status = 200, body = Automation), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn update(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateAutomation>,
) -> ApiResult<Json<Automation>> {
    let mut a = find(&state, &auth.workspace_id, &id).await?;
    if let Some(v) = body.name {
        a.name = v;
    }
    if body.description.is_some() {
        a.description = body.description;
    }
    if let Some(v) = body.enabled {
        a.enabled = v;
    }
    if let Some(v) = body.trigger {
        a.trigger = v;
    }
    if let Some(v) = body.actions {
        a.actions = v;
    }
    // A webhook keeps its token unless it is switched on, off, or signing changes.
    let issued = match &body.webhook {
        Some(spec)
            if spec.enabled != a.webhook_token_hash.is_some()
                || spec.signed != a.webhook_secret.is_some() =>
        {
            Issued::into_record(
                &state,
                spec,
                &mut a.webhook_token_hash,
                &mut a.webhook_secret,
            )
        }
        _ => None,
    };
    let mut errors = Vec::new();
    check_fields(&a.name, a.description.as_deref(), &mut errors);
    if let Err(e) = parse(&a.trigger, &a.actions, a.webhook_token_hash.is_some()) {
        errors.extend(e);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("Invalid automation", errors));
    }
    a.updated = Utc::now();
    match state.store().update_automation(&a).await? {
        Saved::Done => Ok(Json(to_json(a, issued))),
        Saved::Missing => Err(ApiError::NotFound("automation")),
        Saved::NameTaken => Err(ApiError::Conflict(format!(
            "an automation named '{}' exists",
            a.name
        ))),
    }
}

#[utoipa::path(delete, path = "/api/automations/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = String, Path, description = "The automation's id or name")),
    responses((status = 204), (status = 404, body = super::Problem)))]
pub async fn delete(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let a = find(&state, &auth.workspace_id, &id).await?;
    if state
        .store()
        .delete_automation(&auth.workspace_id, &a.id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("automation"))
    }
}

/// The automation's runs, newest first: what set each off and what its actions did.
#[utoipa::path(get, path = "/api/automations/{id}/runs", tag = "automations", security(("bearer" = [])),
    params(("id" = String, Path, description = "The automation's id or name"), PageQuery),
    responses((status = 200, body = Page<AutomationRun>), (status = 404, body = super::Problem)))]
pub async fn runs(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<AutomationRun>>> {
    let a = find(&state, &auth.workspace_id, &id).await?;
    let pager = page.check(&state, "automation-runs", &a.id)?;
    let before: Option<String> = pager.after()?;
    let items = state
        .store()
        .automation_runs(&auth.workspace_id, &a.id, before.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        items,
        |r| json!(r.id),
        AutomationRun::from,
    )))
}

#[derive(Serialize, ToSchema)]
pub struct EventAccepted {
    /// False when an event with the same `Idempotency-Key` was posted before.
    pub new: bool,
}

/// Posts an event to an automation whose trigger is `event`: it fires once per event
/// (an `Idempotency-Key` header makes a repeated post the same event). The body, any
/// JSON, is `event.body` in the actions' templates.
#[utoipa::path(post, path = "/api/automations/{id}/events", tag = "automations", security(("bearer" = [])),
    params(("id" = String, Path, description = "The automation's id or name")),
    request_body(content = Value, description = "Any JSON, at most 64 KiB"),
    responses((status = 202, body = EventAccepted), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem), (status = 413, body = super::Problem)))]
pub async fn post_event(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<EventAccepted>)> {
    let a = find(&state, &auth.workspace_id, &id).await?;
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(k)) if !k.is_empty() && k.len() <= 256 => Some(format!("key:{k}")),
        Some(_) => {
            return Err(ApiError::invalid(
                "Invalid header",
                vec!["'Idempotency-Key' must be 1 to 256 visible characters".into()],
            ));
        }
        None => None,
    };
    let new = accept_event(&state, &a, key, body).await?;
    Ok((StatusCode::ACCEPTED, Json(EventAccepted { new })))
}

/// Fires an automation whose trigger is `event` with a posted body, once per `key` (a
/// fresh event without one); false when the key's event was posted before.
pub(super) async fn accept_event(
    state: &AppState,
    a: &AutomationRecord,
    key: Option<String>,
    body: Value,
) -> ApiResult<bool> {
    if !matches!(
        serde_json::from_value::<Trigger>(a.trigger.clone()),
        Ok(Trigger::Event {})
    ) {
        return Err(ApiError::Conflict(
            "the automation's trigger is not `event`: it takes no posted events".into(),
        ));
    }
    if !a.enabled {
        return Err(ApiError::Conflict("the automation is disabled".into()));
    }
    if body.to_string().len() > MAX_EVENT_BYTES {
        return Err(ApiError::TooLarge(MAX_EVENT_BYTES));
    }
    let key = key.unwrap_or_else(|| format!("event:{}", uuid::Uuid::now_v7()));
    let event = json!({"kind": "event", "occurred": Utc::now(), "body": body});
    state
        .automations
        .fire(a, key, event)
        .await
        .map_err(ApiError::Internal)
}

/// Issues a new token (and secret) for the automation's webhook; the old ones stop working.
#[utoipa::path(post, path = "/api/automations/{id}/webhook/rotate", tag = "automations", security(("bearer" = [])),
    params(("id" = String, Path, description = "The automation's id or name")),
    responses((status = 200, body = Automation), (status = 404, body = super::Problem),
              (status = 409, body = super::Problem)))]
pub async fn rotate_webhook(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Automation>> {
    let mut a = find(&state, &auth.workspace_id, &id).await?;
    if a.webhook_token_hash.is_none() {
        return Err(ApiError::Conflict("the automation has no webhook".into()));
    }
    let spec = WebhookSpec {
        enabled: true,
        signed: a.webhook_secret.is_some(),
    };
    let issued = Issued::into_record(
        &state,
        &spec,
        &mut a.webhook_token_hash,
        &mut a.webhook_secret,
    );
    a.updated = Utc::now();
    match state.store().update_automation(&a).await? {
        Saved::Done => Ok(Json(to_json(a, issued))),
        _ => Err(ApiError::NotFound("automation")),
    }
}
