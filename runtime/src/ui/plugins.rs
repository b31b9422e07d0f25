//! Plugins: the list the workspace's flows can call (its own and the built-in ones),
//! and a plugin's versions with its tasks' arguments and options.

use super::components::definitions;
use super::layout::{self, PageError, Section, time};
use super::session::Viewer;
use crate::api::{ApiError, AppState};
use axum::extract::{Path, State};
use maud::{Markup, html};
use serde_json::Value;

fn task_names(manifest: &Value) -> Vec<&str> {
    manifest["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect()
}

pub async fn list(viewer: Viewer, State(state): State<AppState>) -> Result<Markup, PageError> {
    let plugins = state.store().plugins(&viewer.workspace_id).await?;
    let body = html! {
        h1 { "Plugins" }
        p.muted {
            "A flow calls a plugin's task by name, as an ordinary task run of its own: "
            code { "weir_sdk::plugin(\"http/request\")" } " (the latest version) or "
            code { "\"http@1/request\"" } ". Register your own with "
            code { "weir plugin add NAME FILE.wasm" } " or " code { "POST /api/plugins" } "."
        }
        table #plugins {
            thead { tr { th { "Name" } th.num { "Latest" } th { "Kind" } th { "Tasks" } th { "Registered" } } }
            tbody {
                @for p in &plugins {
                    tr {
                        td { a href={ "/plugins/" (p.name) } { (p.name) } }
                        td.num { (p.version) }
                        td { @if p.builtin { "built-in" } @else { "workspace" } }
                        td.mono { (task_names(&p.manifest).join(", ")) }
                        td { (time(p.created)) }
                    }
                }
                @if plugins.is_empty() { tr { td colspan="5" .muted { "No plugins yet." } } }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Plugins, "Plugins", body))
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Markup, PageError> {
    let versions = state
        .store()
        .plugin_versions(&viewer.workspace_id, &name)
        .await?;
    let latest = versions.first().ok_or(ApiError::NotFound("plugin"))?;
    let body = html! {
        h1 { "Plugin " (latest.name) }
        div.panel {
            dl.kv {
                dt { "Kind" } dd { @if latest.builtin { "built-in (every workspace has it)" } @else { "this workspace's" } }
                @if let Some(d) = &latest.description { dt { "Description" } dd { (d) } }
                dt { "Call" } dd.mono { (latest.name) "/<task>, or " (latest.name) "@" (latest.version) "/<task> for this version" }
            }
        }
        table #versions {
            thead { tr { th.num { "Version" } th { "Component" } th { "Registered" } } }
            tbody {
                @for v in &versions {
                    tr {
                        td.num { (v.version) }
                        td.mono { (&v.digest[..v.digest.len().min(16)]) "…" }
                        td { (time(v.created)) }
                    }
                }
            }
        }
        h2 { "Tasks of version " (latest.version) }
        (definitions(&latest.manifest, "tasks"))
    };
    Ok(layout::page(&viewer, Section::Plugins, "Plugin", body))
}
