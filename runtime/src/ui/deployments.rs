//! Deployments: the list, a deployment's page (component and versions, parameters,
//! limits and capabilities, webhook, schedules with their next fire times, recent runs)
//! and its **Run** form, generated from the flow's parameter schema.

use super::form;
use super::layout::{self, PageError, Section, badge, time};
use super::session::{CsrfForm, Viewer};
use crate::api::{ApiError, AppState, find_deployment};
use crate::executor::{TriggerError, TriggerRequest};
use crate::schedule::ScheduleSpec;
use crate::store::{DeploymentRecord, RunFilter};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDateTime, TimeZone, Utc};
use maud::{Markup, html};
use serde_json::Value;

pub async fn list(viewer: Viewer, State(state): State<AppState>) -> Result<Markup, PageError> {
    let deployments = state.store().deployments(&viewer.workspace_id).await?;
    let body = html! {
        h1 { "Deployments" }
        table #deployments {
            thead { tr { th { "Name" } th { "Flow" } th { "Pool" } th { "Tags" } th { "Status" } th {} } }
            tbody {
                @for d in &deployments {
                    tr {
                        td { a href={ "/deployments/" (d.name) } { (d.name) } }
                        td { (d.flow) }
                        td { (d.pool) }
                        td.muted { (d.tags.join(", ")) }
                        td { @if d.paused { span.badge.s-PAUSED { "Paused" } } @else { span.badge.s-COMPLETED { "Ready" } } }
                        td { a.button href={ "/deployments/" (d.name) "/run" } { "Run" } }
                    }
                }
                @if deployments.is_empty() {
                    tr { td colspan="6" .muted { "No deployments yet: upload a component and deploy a flow of it (weir deploy)." } }
                }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Deployments,
        "Deployments",
        body,
    ))
}

/// The flow's parameter schema, from the deployment's component manifest.
async fn parameter_schema(
    state: &AppState,
    viewer: &Viewer,
    d: &DeploymentRecord,
) -> Result<Value, ApiError> {
    let component = state
        .store()
        .workspace_component(&viewer.workspace_id, &d.component_digest)
        .await?
        .ok_or(ApiError::NotFound("component"))?;
    // The deployment names its flow as triggers do: by name, function or dashed alias.
    let manifest: Option<crate::model::manifest::Manifest> =
        serde_json::from_value(component.manifest.clone()).ok();
    Ok(manifest
        .as_ref()
        .and_then(|m| m.flow(&d.flow))
        .map(|f| f.parameters.clone())
        .unwrap_or_else(|| serde_json::json!({"type": "object"})))
}

fn schedule_text(spec: &Value) -> String {
    match serde_json::from_value::<ScheduleSpec>(spec.clone()) {
        Ok(ScheduleSpec::Cron { cron, timezone }) => format!("cron {cron} ({timezone})"),
        Ok(ScheduleSpec::Interval {
            interval_seconds, ..
        }) => format!("every {interval_seconds} s"),
        Ok(ScheduleSpec::Rrule { rrule, .. }) => format!("RRULE {rrule}"),
        Err(_) => spec.to_string(),
    }
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Markup, PageError> {
    let d = find_deployment(&state, &viewer.workspace_id, &name).await?;
    let store = state.store();
    let versions = store.deployment_versions(&d.id).await?;
    let schedules = store.deployment_schedules(&d.id).await?;
    let recent = store
        .list_flow_runs(
            &viewer.workspace_id,
            &RunFilter {
                deployment_id: Some(d.id.clone()),
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await?;
    let now = Utc::now();
    let body = html! {
        h1 { (d.name) @if d.paused { " " span.badge.s-PAUSED { "Paused" } } }
        @if let Some(desc) = &d.description { p { (desc) } }
        div.actions {
            a.button href={ "/deployments/" (d.name) "/run" } { "Run" }
            form method="post" action={ "/deployments/" (d.name) (if d.paused { "/resume" } else { "/pause" }) } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.secondary type="submit" { (if d.paused { "Resume deployment" } else { "Pause deployment" }) }
            }
            a href={ "/runs?deployment=" (super::session::urlencode(&d.name)) } { "All runs" }
        }
        div.panel {
            dl.kv {
                dt { "Flow" } dd { (d.flow) }
                dt { "Component" } dd.mono { (d.component_digest) }
                @if let Some(v) = &d.version { dt { "Version" } dd { (v) } }
                dt { "Pool" } dd { (d.pool) " (work queue " (d.work_queue) ")" }
                dt { "Tags" } dd { (d.tags.join(", ")) }
                dt { "Concurrency limit" } dd { (d.concurrency_limit.map(|n| n.to_string()).unwrap_or_else(|| "none".into())) }
                dt { "Memory" } dd { (d.memory_mb.map(|m| format!("{m} MiB")).unwrap_or_else(|| "the server's default".into())) }
                dt { "Timeout" } dd { (d.timeout_seconds.map(|t| format!("{t} s")).unwrap_or_else(|| "the flow's own".into())) }
                dt { "Outbound HTTP" } dd { @if d.allowed_hosts.is_empty() { "none" } @else { (d.allowed_hosts.join(", ")) } }
                dt { "Secrets plugins read" } dd { @if d.plugin_secrets.is_empty() { "none" } @else { (d.plugin_secrets.join(", ")) } }
                dt { "Webhook" } dd {
                    @if d.webhook_token_hash.is_some() {
                        "enabled" @if d.webhook_secret.is_some() { ", signed" } span.muted { " (its URL was shown once when it was created; rotate it to get a new one)" }
                    } @else { "none" }
                }
                dt { "Retention" } dd #retention {
                    @if d.retention.is_empty() {
                        "the workspace's " a href="/settings#retention" { "(settings)" }
                    } @else {
                        (d.retention.to_string())
                    }
                }
                dt { "Updated" } dd { (time(d.updated)) }
            }
        }
        h2 { "Default parameters" }
        (layout::json_block(&d.parameters))
        h2 { "Schedules" }
        @if schedules.is_empty() { p.muted { "No schedules." } } @else {
            table {
                thead { tr { th { "Schedule" } th { "Status" } th { "Next fire times" } th { "Catch-up" } th { "Overlap" } th {} } }
                tbody {
                    @for s in &schedules {
                        @let next = serde_json::from_value::<ScheduleSpec>(s.spec.clone()).ok().and_then(|spec| spec.compile().ok()).map(|c| c.preview(now, 3)).unwrap_or_default();
                        tr {
                            td { (schedule_text(&s.spec)) }
                            td { @if s.active { "active" } @else { span.badge.s-PAUSED { "paused" } } }
                            td { @for t in &next { (time(*t)) br; } }
                            td { (s.catchup) }
                            td { (s.overlap) }
                            td {
                                form method="post" action={ "/deployments/" (d.name) "/schedules/" (s.id) (if s.active { "/pause" } else { "/resume" }) } {
                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                    button.secondary type="submit" { (if s.active { "Pause" } else { "Resume" }) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Recent runs" }
        table {
            thead { tr { th { "Name" } th { "State" } th { "Created" } th { "Duration" } } }
            tbody {
                @for r in &recent {
                    tr { td { a href={ "/runs/" (r.id) } { (r.name) } } td { (badge(&r.state)) } td { (time(r.created)) } td { (layout::elapsed(r.start_time, r.end_time)) } }
                }
                @if recent.is_empty() { tr { td colspan="4" .muted { "No runs yet." } } }
            }
        }
        h2 { "Versions" }
        table {
            thead { tr { th.num { "#" } th { "Component" } th { "Flow" } th { "Created" } } }
            tbody {
                @for v in versions.iter().rev() {
                    tr { td.num { (v.version_no) } td.mono { (v.component_digest) } td { (v.flow) } td { (time(v.created)) } }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Deployments, &d.name, body))
}

fn render_run_form(
    viewer: &Viewer,
    d: &DeploymentRecord,
    schema: &Value,
    values: &Value,
    errors: &form::Errors,
    at: &str,
) -> Markup {
    let body = html! {
        h1 { "Run " (d.name) }
        p.muted { "Flow " b { (d.flow) } ". Fields start from the deployment's default parameters; " span.req { "*" } " marks a required one." }
        @if d.paused { (layout::problem("This deployment is paused: a run cannot be created until it is resumed.", &[])) }
        @if let Some(top) = errors.get("") { (layout::problem("The run was not created:", top)) }
        @if errors.keys().any(|k| !k.is_empty()) && !errors.contains_key("") {
            (layout::problem("The run was not created: see the fields below.", &[]))
        }
        form.panel #run-form method="post" action={ "/deployments/" (d.name) "/run" } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            (form::fields(schema, values, errors))
            (form::json_editor(values))
            div.field {
                label for="f-at" { "Start" }
                input #f-at type="datetime-local" name="_at" value=(at);
                div.hint { "Leave empty to start now; a time is in UTC." }
                @if let Some(es) = errors.get("_at") { @for e in es { div.error { (e) } } }
            }
            button type="submit" { "Run" }
        }
    };
    layout::page(
        viewer,
        Section::Deployments,
        &format!("Run {}", d.name),
        body,
    )
}

pub async fn run_form(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Markup, PageError> {
    let d = find_deployment(&state, &viewer.workspace_id, &name).await?;
    let schema = parameter_schema(&state, &viewer, &d).await?;
    Ok(render_run_form(
        &viewer,
        &d,
        &schema,
        &d.parameters,
        &form::Errors::new(),
        "",
    ))
}

/// Creates a run from the form: the same trigger as the API; a bad value shows the
/// form again with the errors beside their fields (422), and no run is created.
pub async fn run(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    viewer.check(&headers, get("csrf"))?;
    let d = find_deployment(&state, &viewer.workspace_id, &name).await?;
    let schema = parameter_schema(&state, &viewer, &d).await?;
    let at_text = get("_at").trim().to_owned();
    let again = |values: &Value, errors: &form::Errors| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            render_run_form(&viewer, &d, &schema, values, errors, &at_text),
        )
            .into_response()
    };
    let parameters = match form::parse(&schema, &pairs) {
        Ok(p) => p,
        Err(errors) => return Ok(again(&d.parameters, &errors)),
    };
    let scheduled_at = if at_text.is_empty() {
        None
    } else {
        match NaiveDateTime::parse_from_str(&at_text, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(&at_text, "%Y-%m-%dT%H:%M:%S"))
        {
            Ok(t) => Some(Utc.from_utc_datetime(&t)),
            Err(_) => {
                let mut errors = form::Errors::new();
                errors.insert(
                    "_at".into(),
                    vec![format!("{at_text:?} is not a date and time")],
                );
                return Ok(again(&Value::Object(parameters), &errors));
            }
        }
    };
    let request = TriggerRequest {
        parameters: parameters.clone(),
        idempotency_key: None,
        scheduled_at,
        tags: vec![],
        schedule_id: None,
        task: None,
        plugin: None,
    };
    let mut shown = d.parameters.as_object().cloned().unwrap_or_default();
    shown.extend(parameters);
    let shown = Value::Object(shown);
    match state.executor.trigger(&d, request).await {
        Ok((run, _)) => Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response()),
        Err(TriggerError::InvalidParameters(messages)) => {
            Ok(again(&shown, &form::errors_by_field(&messages)))
        }
        Err(e @ (TriggerError::Invalid(_) | TriggerError::Paused(_) | TriggerError::Quota(_))) => {
            let mut errors = form::Errors::new();
            errors.insert(String::new(), vec![e.to_string()]);
            Ok(again(&shown, &errors))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn set_paused(
    viewer: Viewer,
    state: AppState,
    name: String,
    headers: HeaderMap,
    csrf: &str,
    paused: bool,
) -> Result<Response, PageError> {
    viewer.check(&headers, csrf)?;
    let d = find_deployment(&state, &viewer.workspace_id, &name).await?;
    let body: crate::api::deployments::UpdateDeployment =
        serde_json::from_value(serde_json::json!({ "paused": paused }))
            .map_err(ApiError::internal)?;
    let _updated = crate::api::deployments::update(
        viewer.auth(),
        State(state),
        Path(d.id),
        crate::api::ApiJson(body),
    )
    .await?;
    Ok(Redirect::to(&format!("/deployments/{}", d.name)).into_response())
}

/// Pauses the deployment (the API's update, so its scheduled runs are cancelled too).
pub async fn pause(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_paused(viewer, state, name, headers, &f.csrf, true).await
}

pub async fn resume(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_paused(viewer, state, name, headers, &f.csrf, false).await
}

async fn set_schedule(
    viewer: Viewer,
    state: AppState,
    (name, id): (String, String),
    headers: HeaderMap,
    csrf: &str,
    active: bool,
) -> Result<Response, PageError> {
    viewer.check(&headers, csrf)?;
    let d = find_deployment(&state, &viewer.workspace_id, &name).await?;
    let schedule = state
        .store()
        .schedule(&viewer.workspace_id, &id)
        .await?
        .filter(|s| s.deployment_id == d.id)
        .ok_or(ApiError::NotFound("schedule"))?;
    let (a, st, p) = (viewer.auth(), State(state), Path(schedule.id));
    if active {
        let _resumed = crate::api::schedules::resume(a, st, p).await?;
    } else {
        let _paused = crate::api::schedules::pause(a, st, p).await?;
    }
    Ok(Redirect::to(&format!("/deployments/{}", d.name)).into_response())
}

pub async fn pause_schedule(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_schedule(viewer, state, ids, headers, &f.csrf, false).await
}

pub async fn resume_schedule(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_schedule(viewer, state, ids, headers, &f.csrf, true).await
}
