//! Uploaded components: the list, and a component's flows and tasks with their
//! descriptions, parameter schemas and options (from its manifest).

use super::layout::{self, PageError, Section, time};
use super::session::Viewer;
use crate::api::{ApiError, AppState};
use axum::extract::{Path, State};
use maud::{Markup, html};
use serde_json::Value;

fn count(manifest: &Value, kind: &str) -> usize {
    manifest[kind].as_array().map_or(0, Vec::len)
}

pub async fn list(viewer: Viewer, State(state): State<AppState>) -> Result<Markup, PageError> {
    let components = state
        .store()
        .workspace_components(&viewer.workspace_id)
        .await?;
    let body = html! {
        h1 { "Components" }
        p.muted { "Upload one with " code { "weir upload FILE.wasm" } " or " code { "POST /api/components" } "." }
        table #components {
            thead { tr { th { "Digest" } th.num { "Size" } th.num { "Flows" } th.num { "Tasks" } th { "Uploaded" } } }
            tbody {
                @for c in &components {
                    tr {
                        td.mono { a href={ "/components/" (c.digest) } { (&c.digest[..c.digest.len().min(16)]) "…" } }
                        td.num { (format!("{:.1} KiB", c.size as f64 / 1024.0)) }
                        td.num { (count(&c.manifest, "flows")) }
                        td.num { (count(&c.manifest, "tasks")) }
                        td { (time(c.created)) }
                    }
                }
                @if components.is_empty() { tr { td colspan="5" .muted { "No components yet." } } }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Components,
        "Components",
        body,
    ))
}

fn definitions(manifest: &Value, kind: &str) -> Markup {
    let items = manifest[kind].as_array().map(Vec::as_slice).unwrap_or(&[]);
    html! {
        @for d in items {
            div.panel {
                h2.first { (d["name"].as_str().unwrap_or("?")) }
                @if let Some(desc) = d["description"].as_str() { p { (desc) } }
                @if let Some(v) = d["version"].as_str() { p.muted { "Version " (v) } }
                details {
                    summary { "Parameter schema" }
                    (layout::json_block(&d["parameters"]))
                }
                details {
                    summary { "Options" }
                    (layout::json_block(&d["options"]))
                }
            }
        }
        @if items.is_empty() { p.muted { "None." } }
    }
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Markup, PageError> {
    let c = state
        .store()
        .workspace_component(&viewer.workspace_id, &digest)
        .await?
        .ok_or(ApiError::NotFound("component"))?;
    let body = html! {
        h1 { "Component" }
        div.panel {
            dl.kv {
                dt { "Digest" } dd.mono { (c.digest) }
                dt { "Size" } dd { (c.size) " bytes" }
                dt { "Uploaded" } dd { (time(c.created)) }
            }
        }
        h2 { "Flows" }
        (definitions(&c.manifest, "flows"))
        h2 { "Tasks" }
        (definitions(&c.manifest, "tasks"))
    };
    Ok(layout::page(
        &viewer,
        Section::Components,
        "Component",
        body,
    ))
}
