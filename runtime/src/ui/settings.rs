//! The workspace's settings: variables (view and edit), secrets (names; set or replace,
//! never shown), work pools and tag concurrency limits (view and edit), retention (view
//! and set), API keys (create, shown once; revoke). Every change goes through the API's own handler, so the checks
//! and the problem messages are the API's.

use super::layout::{self, PageError, Section, maybe_time, time};
use super::session::{CsrfForm, Viewer};
use crate::api::{self, ApiError, ApiJson, AppState, MaybeJson};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

/// The settings page, with a problem or a new key's secret at the top.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    problem: Option<&ApiError>,
    new_key: Option<&str>,
) -> Result<Markup, PageError> {
    let store = state.store();
    let ws = &viewer.workspace_id;
    let variables = store.variables(ws).await?;
    let secrets = store.secret_names(ws).await?;
    let pools = api::pools::list(viewer.auth(), State(state.clone()), api::Paged::largest())
        .await?
        .0
        .items;
    let limits =
        api::pools::list_limits(viewer.auth(), State(state.clone()), api::Paged::largest())
            .await?
            .0
            .items;
    let keys = store.keys(ws).await?;
    let retention = api::retention::report(state, ws).await?;
    let csrf = &viewer.csrf;
    let body = html! {
        h1 { "Settings" }
        @if let Some(e) = problem {
            @let (_, _, detail, errors) = e.parts();
            (layout::problem(&detail, &errors))
        }
        @if let Some(secret) = new_key {
            div.panel #new-key {
                b { "The new key: " } code { (secret) }
                p.muted { "It is shown this once; copy it now." }
            }
        }
        h2 { "Variables" }
        table #variables {
            thead { tr { th { "Name" } th { "Value" } th {} } }
            tbody {
                @for (name, value) in &variables {
                    tr {
                        td.mono { (name) }
                        td { code { (value.to_string()) } }
                        td { (delete_button(&format!("/settings/variables/{name}/delete"), csrf)) }
                    }
                }
            }
        }
        form.filters method="post" action="/settings/variables" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Name" input type="text" name="name" required; }
            label { "Value (JSON)" input type="text" name="value" size="40" required; }
            button type="submit" { "Set variable" }
        }
        h2 { "Secrets" }
        table #secrets {
            thead { tr { th { "Name" } th {} } }
            tbody {
                @for name in &secrets {
                    tr { td.mono { (name) } td { (delete_button(&format!("/settings/secrets/{name}/delete"), csrf)) } }
                }
            }
        }
        form.filters method="post" action="/settings/secrets" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Name" input type="text" name="name" required; }
            label { "Value" input type="password" name="value" autocomplete="off" required; }
            button type="submit" { "Set or replace secret" }
        }
        h2 { "Work pools" }
        table #pools {
            thead { tr { th { "Pool" } th.num { "Running" } th { "Limit and status" } } }
            tbody {
                @for p in &pools {
                    tr {
                        td { (p.name) }
                        td.num { (p.running) }
                        td {
                            form.filters method="post" action={ "/settings/pools/" (p.name) } {
                                input type="hidden" name="csrf" value=(csrf);
                                label { "Concurrency limit" input type="number" min="0" name="limit" value=[p.concurrency_limit] placeholder="none"; }
                                label.check { input type="checkbox" name="paused" value="1" checked[p.paused]; "paused" }
                                button.secondary type="submit" { "Save" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Tag concurrency limits" }
        table #limits {
            thead { tr { th { "Tag" } th.num { "Running" } th.num { "Limit" } th {} } }
            tbody {
                @for l in &limits {
                    tr {
                        td { (l.tag) } td.num { (l.running) } td.num { (l.limit) }
                        td { (delete_button(&format!("/settings/limits/{}/delete", l.tag), csrf)) }
                    }
                }
            }
        }
        form.filters method="post" action="/settings/limits" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Tag" input type="text" name="tag" required; }
            label { "Limit" input type="number" min="0" name="limit" required; }
            button type="submit" { "Set limit" }
        }
        h2 #retention { "Retention" }
        p #retention-summary {
            (retention.summary) "."
            @if retention.policy.days.is_none() && retention.policy.runs.is_none() {
                span.muted { " (the server's default)" }
            }
            " Deleted so far: " (retention.runs_deleted) " runs"
            @if let Some(at) = retention.last_deleted { ", last at " (time(at)) }
            "."
        }
        @if !retention.deployments.is_empty() {
            table #retention-deployments {
                thead { tr { th { "Deployment with its own" } th { "Kept" } } }
                tbody {
                    @for d in &retention.deployments {
                        tr { td { a href={ "/deployments/" (d.id) } { (d.name) } } td { (d.summary) } }
                    }
                }
            }
        }
        form.filters method="post" action="/settings/retention" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Days" input type="number" min="1" name="days" value=[retention.policy.days] placeholder="none"; }
            label { "Newest runs" input type="number" min="1" name="runs" value=[retention.policy.runs] placeholder="none"; }
            button type="submit" { "Set retention" }
        }
        h2 { "API keys" }
        table #keys {
            thead { tr { th { "Prefix" } th { "Name" } th { "Created" } th { "Revoked" } th {} } }
            tbody {
                @for k in &keys {
                    tr {
                        td.mono { (k.prefix) }
                        td { (k.name.as_deref().unwrap_or("")) }
                        td { (time(k.created)) }
                        td { (maybe_time(k.revoked)) }
                        td { @if k.revoked.is_none() { (delete_button(&format!("/settings/keys/{}/revoke", k.id), csrf)) } }
                    }
                }
            }
        }
        form.filters method="post" action="/settings/keys" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Name" input type="text" name="name"; }
            button type="submit" { "Create key" }
        }
    };
    Ok(layout::page(viewer, Section::Settings, "Settings", body))
}

fn delete_button(action: &str, csrf: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button.secondary type="submit" { "Delete" }
        }
    }
}

pub async fn page(viewer: Viewer, State(state): State<AppState>) -> Result<Markup, PageError> {
    render(&state, &viewer, None, None).await
}

/// After a change: back to the page, or the page again with the API's problem.
async fn done(
    state: &AppState,
    viewer: &Viewer,
    outcome: Result<(), ApiError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to("/settings").into_response()),
        Err(e @ (ApiError::Invalid { .. } | ApiError::Conflict(_) | ApiError::NotFound(_))) => {
            let status = e.parts().0;
            let page = render(state, viewer, Some(&e), None).await?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks the form, then makes the change (a future of the API's handler, which does
/// nothing until awaited) and shows the outcome.
async fn apply<T>(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    csrf: &str,
    change: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<Response, PageError> {
    viewer.check(headers, csrf)?;
    done(state, viewer, change.await.map(|_| ())).await
}

#[derive(Deserialize)]
pub struct NameValue {
    #[serde(default)]
    csrf: String,
    name: String,
    value: String,
}

pub async fn set_variable(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<NameValue>,
) -> Result<Response, PageError> {
    viewer.check(&headers, &f.csrf)?;
    let outcome = match serde_json::from_str::<Value>(&f.value) {
        Ok(value) => api::variables::put_variable(
            viewer.auth(),
            State(state.clone()),
            Path(f.name.trim().to_owned()),
            ApiJson(api::variables::PutVariable { value }),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(ApiError::invalid(
            "Invalid variable",
            vec![format!("the value must be JSON (a string in quotes): {e}")],
        )),
    };
    done(&state, &viewer, outcome).await
}

pub async fn set_secret(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<NameValue>,
) -> Result<Response, PageError> {
    let change = api::variables::put_secret(
        viewer.auth(),
        State(state.clone()),
        Path(f.name.trim().to_owned()),
        ApiJson(api::variables::PutSecret { value: f.value }),
    );
    apply(&state, &viewer, &headers, &f.csrf, change).await
}

pub async fn delete_variable(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let change = api::variables::delete_variable(viewer.auth(), State(state.clone()), Path(name));
    apply(&state, &viewer, &headers, &f.csrf, change).await
}

pub async fn delete_secret(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let change = api::variables::delete_secret(viewer.auth(), State(state.clone()), Path(name));
    apply(&state, &viewer, &headers, &f.csrf, change).await
}

#[derive(Deserialize)]
pub struct PoolForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    limit: String,
    paused: Option<String>,
}

pub async fn update_pool(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<PoolForm>,
) -> Result<Response, PageError> {
    viewer.check(&headers, &f.csrf)?;
    let limit = match f.limit.trim() {
        "" => Ok(Value::Null),
        text => text.parse::<i64>().map(Value::from).map_err(|_| {
            ApiError::invalid(
                "Invalid pool update",
                vec![format!("the limit {text:?} is not a whole number")],
            )
        }),
    };
    let outcome = match limit {
        Ok(limit) => {
            let mut body = serde_json::Map::new();
            body.insert("concurrency_limit".into(), limit);
            body.insert("paused".into(), Value::Bool(f.paused.is_some()));
            api::pools::update(
                viewer.auth(),
                State(state.clone()),
                Path(name),
                ApiJson(body),
            )
            .await
            .map(|_| ())
        }
        Err(e) => Err(e),
    };
    done(&state, &viewer, outcome).await
}

#[derive(Deserialize)]
pub struct RetentionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    runs: String,
}

/// An optional whole number from a form field (empty: none).
fn optional_number(field: &str, text: &str) -> Result<Option<i64>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        t => t.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid(
                "Invalid retention",
                vec![format!("'{field}' {t:?} is not a whole number")],
            )
        }),
    }
}

pub async fn set_retention(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<RetentionForm>,
) -> Result<Response, PageError> {
    viewer.check(&headers, &f.csrf)?;
    let outcome = match (
        optional_number("days", &f.days),
        optional_number("runs", &f.runs),
    ) {
        (Ok(days), Ok(runs)) => api::retention::put(
            viewer.auth(),
            State(state.clone()),
            ApiJson(api::retention::RetentionPolicy { days, runs }),
        )
        .await
        .map(|_| ()),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    done(&state, &viewer, outcome).await
}

#[derive(Deserialize)]
pub struct LimitForm {
    #[serde(default)]
    csrf: String,
    tag: String,
    limit: String,
}

pub async fn set_limit(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LimitForm>,
) -> Result<Response, PageError> {
    viewer.check(&headers, &f.csrf)?;
    let outcome = match f.limit.trim().parse::<i64>() {
        Ok(limit) => api::pools::put_limit(
            viewer.auth(),
            State(state.clone()),
            Path(f.tag.trim().to_owned()),
            ApiJson(api::pools::PutLimit { limit }),
        )
        .await
        .map(|_| ()),
        Err(_) => Err(ApiError::invalid(
            "Invalid limit",
            vec![format!("the limit {:?} is not a whole number", f.limit)],
        )),
    };
    done(&state, &viewer, outcome).await
}

pub async fn delete_limit(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(tag): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let change = api::pools::delete_limit(viewer.auth(), State(state.clone()), Path(tag));
    apply(&state, &viewer, &headers, &f.csrf, change).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// Creates a key and shows its secret once, on this response only.
pub async fn create_key(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Result<Response, PageError> {
    viewer.check(&headers, &f.csrf)?;
    let name = f.name.trim();
    let (_, key) = api::workspaces::create_key(
        viewer.auth(),
        State(state.clone()),
        MaybeJson(Some(api::workspaces::CreateKey {
            name: (!name.is_empty()).then(|| name.to_owned()),
        })),
    )
    .await?;
    let secret = key.0.secret.unwrap_or_default();
    let page = render(&state, &viewer, None, Some(&secret)).await?;
    Ok((StatusCode::CREATED, page).into_response())
}

pub async fn revoke_key(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let change = api::workspaces::revoke_key(viewer.auth(), State(state.clone()), Path(id));
    apply(&state, &viewer, &headers, &f.csrf, change).await
}
