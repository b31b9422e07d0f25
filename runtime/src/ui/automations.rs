//! Automations: the workspace's triggers and actions, each with the runs its events set
//! off (what set each off, what each action did, why one failed and when it is tried
//! again), and switching one on or off.

use super::layout::{self, PageError, Section, json_block, time};
use super::session::{CsrfForm, Viewer};
use crate::api::{ApiError, AppState};
use crate::model::automation::{Trigger, action_kinds, describe_trigger};
use crate::store::{AutomationRecord, AutomationRunRecord, AutomationRunState};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

/// The most automations the list shows (names in order).
const LIST_LIMIT: i64 = 500;
/// The runs an automation's page shows, newest first.
const RUNS_SHOWN: i64 = 50;

fn run_state(state: AutomationRunState) -> Markup {
    let (class, label) = match state {
        AutomationRunState::Pending => ("s-PENDING", "Pending"),
        AutomationRunState::Completed => ("s-COMPLETED", "Completed"),
        AutomationRunState::Failed => ("s-FAILED", "Failed"),
    };
    html! { span class={ "badge " (class) } { (label) } }
}

fn webhook(a: &AutomationRecord) -> &'static str {
    match (&a.webhook_token_hash, &a.webhook_secret) {
        (None, _) => "–",
        (Some(_), None) => "yes",
        (Some(_), Some(_)) => "signed",
    }
}

pub async fn list(viewer: Viewer, State(state): State<AppState>) -> Result<Markup, PageError> {
    let store = state.store();
    let automations = store
        .automations_page(&viewer.workspace_id, None, LIST_LIMIT)
        .await?;
    let ids: Vec<String> = automations.iter().map(|a| a.id.clone()).collect();
    let mut by_automation: std::collections::HashMap<String, AutomationRunRecord> = store
        .latest_automation_runs(&viewer.workspace_id, &ids)
        .await?
        .into_iter()
        .map(|r| (r.automation_id.clone(), r))
        .collect();
    let latest: Vec<Option<AutomationRunRecord>> = automations
        .iter()
        .map(|a| by_automation.remove(&a.id))
        .collect();
    let body = html! {
        h1 { "Automations" }
        p.muted {
            "An automation runs its actions when its trigger fires: a run entering a state, "
            "a run stuck in one, or an event posted to it. Create them with "
            code { "weir automation apply FILE" } ", the deployment file's "
            code { "automations:" } " or " code { "POST /api/automations" } "."
        }
        table #automations {
            thead { tr { th { "Name" } th { "Enabled" } th { "When" } th { "Then" } th { "Webhook" } th { "Last run" } } }
            tbody {
                @for (a, last) in automations.iter().zip(&latest) {
                    tr {
                        td { a href={ "/automations/" (a.name) } { (a.name) } }
                        td { @if a.enabled { "yes" } @else { span.muted { "no" } } }
                        td { (describe_trigger(&a.trigger)) }
                        td.mono { (action_kinds(&a.actions)) }
                        td { (webhook(a)) }
                        td {
                            @if let Some(r) = last { (run_state(r.state)) " " (time(r.created)) }
                            @else { span.muted { "never" } }
                        }
                    }
                }
                @if automations.is_empty() { tr { td colspan="6" .muted { "No automations yet." } } }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Automations,
        "Automations",
        body,
    ))
}

/// What set a run off: the flow run (linked) and its state, or the posted event.
fn event(r: &AutomationRunRecord) -> Markup {
    let e = &r.event;
    html! {
        @if let Some(id) = e["flow_run"]["id"].as_str() {
            a href={ "/runs/" (id) } { (e["flow_run"]["name"].as_str().unwrap_or(id)) }
            " " (e["state"]["name"].as_str().or(e["flow_run"]["state"]["name"].as_str()).unwrap_or(""))
        } @else {
            "event "
            details { summary { "body" } (json_block(&e["body"])) }
        }
    }
}

/// What each action did: its kind, and its output or why it failed.
fn results(r: &AutomationRunRecord) -> Markup {
    html! {
        ul.plain {
            @for res in r.results.as_array().into_iter().flatten() {
                li {
                    span.mono { (res["type"].as_str().unwrap_or("action")) } " "
                    @if res["ok"] == true { "done" } @else { "failed" }
                    @if let Some(m) = res["message"].as_str() { ": " (m) }
                    @if let Some(id) = res["output"]["flow_run_id"].as_str() {
                        " (" a href={ "/runs/" (id) } { "run" } ")"
                    }
                }
            }
        }
    }
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Markup, PageError> {
    let store = state.store();
    let a = store
        .automation(&viewer.workspace_id, &name)
        .await?
        .ok_or(ApiError::NotFound("automation"))?;
    let runs = store
        .automation_runs(&viewer.workspace_id, &a.id, None, RUNS_SHOWN)
        .await?;
    let switch = if a.enabled { "disable" } else { "enable" };
    let body = html! {
        h1 { "Automation " (a.name) }
        div.panel {
            dl.kv {
                dt { "Enabled" } dd {
                    (if a.enabled { "yes" } else { "no (its events fire nothing)" })
                    form.inline method="post" action={ "/automations/" (a.name) "/" (switch) } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" { (if a.enabled { "Disable" } else { "Enable" }) }
                    }
                }
                @if let Some(d) = &a.description { dt { "Description" } dd { (d) } }
                dt { "When" } dd { (describe_trigger(&a.trigger)) }
                dt { "Then" } dd.mono { (action_kinds(&a.actions)) }
                @if matches!(serde_json::from_value::<Trigger>(a.trigger.clone()), Ok(Trigger::Event {})) {
                    dt { "Events" } dd {
                        code { "POST /api/automations/" (a.name) "/events" } " with the API key"
                        @match webhook(&a) {
                            "yes" => { ", or " code { "POST /hooks/automations/<token>" } " (its URL was shown once)" },
                            "signed" => { ", or " code { "POST /hooks/automations/<token>" } " signed with its secret" },
                            _ => {},
                        }
                    }
                }
                dt { "Updated" } dd { (time(a.updated)) }
            }
        }
        details {
            summary { "Trigger and actions" }
            h3 { "Trigger" } (json_block(&a.trigger))
            h3 { "Actions" } (json_block(&a.actions))
        }
        h2 { "Runs" }
        table #automation-runs {
            thead { tr { th { "Fired" } th { "State" } th.num { "Attempts" } th { "Set off by" } th { "Actions" } th { "Error" } } }
            tbody {
                @for r in &runs {
                    tr {
                        td { (time(r.created)) }
                        td {
                            (run_state(r.state))
                            @if r.state == AutomationRunState::Pending && r.attempts > 0 {
                                br; span.muted { "again at " (time(r.next_attempt)) }
                            }
                        }
                        td.num { (r.attempts) }
                        td { (event(r)) }
                        td { (results(r)) }
                        td { @if let Some(e) = &r.error { (e) } }
                    }
                }
                @if runs.is_empty() { tr { td colspan="6" .muted { "It has not fired yet." } } }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Automations,
        "Automation",
        body,
    ))
}

async fn set_enabled(
    viewer: Viewer,
    state: AppState,
    name: String,
    headers: HeaderMap,
    csrf: &str,
    enabled: bool,
) -> Result<Response, PageError> {
    viewer.check(&headers, csrf)?;
    let body: crate::api::automations::UpdateAutomation =
        serde_json::from_value(serde_json::json!({ "enabled": enabled }))
            .map_err(ApiError::internal)?;
    let axum::Json(a) = crate::api::automations::update(
        viewer.auth(),
        State(state),
        Path(name),
        crate::api::ApiJson(body),
    )
    .await?;
    Ok(Redirect::to(&format!("/automations/{}", a.name)).into_response())
}

pub async fn enable(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_enabled(viewer, state, name, headers, &f.csrf, true).await
}

pub async fn disable(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_enabled(viewer, state, name, headers, &f.csrf, false).await
}
