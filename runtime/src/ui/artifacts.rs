//! Artifacts: the workspace's artifact keys, a key's versions (latest rendered first),
//! and how an artifact is shown wherever it appears: markdown rendered and sanitized,
//! tables, links (web links only), progress bars, anything else as JSON.

use super::layout::{self, PageError, Section, time};
use super::session::{Viewer, urlencode};
use crate::api::{ApiError, AppState};
use crate::store::ArtifactRecord;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde_json::Value;

/// Keys per page, and versions a key's page shows.
const PAGE: i64 = 50;
const VERSIONS: i64 = 100;

/// Only web links are followed; anything else (`javascript:`, `data:`) is shown as text.
fn safe_url(url: &str) -> Option<&str> {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

fn table_artifact(data: &Value) -> Markup {
    let rows = data.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let columns: Vec<String> = match rows.first() {
        Some(Value::Object(first)) => first.keys().cloned().collect(),
        _ => vec![],
    };
    let cell = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    html! {
        table {
            @if !columns.is_empty() {
                thead { tr { @for c in &columns { th { (c) } } } }
            }
            tbody {
                @for row in rows.iter().take(1000) {
                    tr {
                        @match row {
                            Value::Object(m) => { @for c in &columns { td { (cell(m.get(c))) } } }
                            Value::Array(cells) => { @for c in cells { td { (cell(Some(c))) } } }
                            other => { td { (cell(Some(other))) } }
                        }
                    }
                }
            }
        }
    }
}

/// An artifact as a panel: its type, key and description, then its content.
pub fn view(a: &ArtifactRecord) -> Markup {
    html! {
        div.panel.artifact {
            div.muted {
                (a.kind)
                @if let Some(k) = &a.key { " · " a href={ "/artifacts/" (urlencode(k)) } { b { (k) } } }
                @if let Some(d) = &a.description { " · " (d) }
            }
            @match a.kind.as_str() {
                "markdown" => div.md { (super::markdown::render(a.data.as_str().unwrap_or(""))) },
                "table" => (table_artifact(&a.data)),
                "link" => {
                    @let url = a.data["url"].as_str().unwrap_or("");
                    @let text = a.data["text"].as_str().unwrap_or(url);
                    @match safe_url(url) {
                        Some(u) => a href=(u) rel="noopener noreferrer nofollow" target="_blank" { (text) },
                        None => span { (text) " " span.muted { "(" (url) ")" } },
                    }
                }
                "progress" => {
                    @let p = a.data.as_f64().unwrap_or(0.0);
                    progress max="100" value=(p) {} " " (format!("{p:.0}%"))
                }
                _ => (layout::json_block(&a.data)),
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    after: String,
}

/// The workspace's artifact keys in key order, in keyset pages.
pub async fn list(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Markup, PageError> {
    let mut keys = state
        .store()
        .artifact_keys(&viewer.workspace_id, &q.after, PAGE + 1)
        .await?;
    let more = keys.len() as i64 > PAGE;
    keys.truncate(PAGE as usize);
    let body = html! {
        h1 { "Artifacts" }
        p.muted { "Artifacts created with a key, latest version first. Artifacts without a key are on their run's page." }
        table #artifacts {
            thead { tr { th { "Key" } th { "Type" } th.num { "Versions" } th { "Latest" } } }
            tbody {
                @for k in &keys {
                    tr {
                        td { a href={ "/artifacts/" (urlencode(&k.key)) } { (k.key) } }
                        td { (k.kind) }
                        td.num { (k.versions) @if k.versions >= crate::store::MAX_COUNTED_VERSIONS { "+" } }
                        td { (time(k.latest)) }
                    }
                }
                @if keys.is_empty() { tr { td colspan="4" .muted { "No artifacts with a key yet." } } }
            }
        }
        div.pager {
            @if !q.after.is_empty() { a href="/artifacts" { "First" } }
            @if more { @if let Some(last) = keys.last() { a href={ "/artifacts?after=" (urlencode(&last.key)) } { "Next" } } }
        }
    };
    Ok(layout::page(&viewer, Section::Artifacts, "Artifacts", body))
}

/// A key's versions: the latest rendered, then each version with its run.
pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Markup, PageError> {
    let versions = state
        .store()
        .workspace_artifacts_by_key(&viewer.workspace_id, &key, None, VERSIONS + 1)
        .await?;
    let Some(latest) = versions.first() else {
        return Err(ApiError::NotFound("artifact").into());
    };
    let shown = &versions[..versions.len().min(VERSIONS as usize)];
    let body = html! {
        h1 { (key) }
        @if let Some(d) = &latest.description { p { (d) } }
        h2 { "Latest" }
        (view(latest))
        h2 { "Versions" }
        table #versions {
            thead { tr { th { "Created" } th { "Updated" } th { "Type" } th { "Flow run" } th { "" } } }
            tbody {
                @for a in shown {
                    tr {
                        td { (time(a.created)) }
                        td { (time(a.updated)) }
                        td { (a.kind) }
                        td.mono { a href={ "/runs/" (a.flow_run_id) } { (a.flow_run_id) } }
                        td { details { summary { "Show" } (view(a)) } }
                    }
                }
            }
        }
        @if versions.len() > shown.len() {
            p.muted { "The latest " (VERSIONS) " versions are shown." }
        }
    };
    Ok(layout::page(&viewer, Section::Artifacts, &key, body))
}
