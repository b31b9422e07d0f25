//! Uploaded components: the list with an upload form, and a component's flows and
//! tasks with their descriptions, parameter schemas and options (from its manifest).

use super::layout::{self, PageError, Section, time};
use super::session::Viewer;
use crate::api::{ApiError, AppState};
use axum::extract::{Multipart, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;

fn count(manifest: &Value, kind: &str) -> usize {
    manifest[kind].as_array().map_or(0, Vec::len)
}

pub async fn list(viewer: Viewer, State(state): State<AppState>) -> Result<Markup, PageError> {
    render(&state, &viewer, None).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    problem: Option<&ApiError>,
) -> Result<Markup, PageError> {
    let components = state
        .store()
        .workspace_components(&viewer.workspace_id)
        .await?;
    let body = html! {
        h1 { "Components" }
        form.panel method="post" action="/components" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label { "Component (.wasm) " input type="file" name="component" accept=".wasm,application/wasm" required; }
            " "
            button type="submit" { "Upload" }
            p.muted { "Or with " code { "weir upload FILE.wasm" } " or " code { "POST /api/components" } "." }
            @if let Some(e) = problem {
                @let (_, _, detail, errors) = e.parts();
                (layout::problem(&detail, &errors))
            }
        }
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
        viewer,
        Section::Components,
        "Components",
        body,
    ))
}

/// Uploads a component from the page's form (multipart): checked, compiled and stored
/// as `POST /api/components` does; a bad file shows the API's problem on the page.
pub async fn upload(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Response, PageError> {
    // The form is read before it is checked, so that a refused browser still reads
    // the answer instead of a connection closed mid-upload. The file goes to disk as
    // it arrives, as `POST /api/components` receives it.
    let mut csrf = String::new();
    let mut upload = match state.uploads.begin().await {
        Ok(u) => u,
        Err(e) => {
            // Read the rest of the form, so the browser gets the answer.
            while let Ok(Some(mut field)) = form.next_field().await {
                while let Ok(Some(_)) = field.chunk().await {}
            }
            return Err(e.into());
        }
    };
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("reading the form failed: {e}"))
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(bad)?,
            Some("component") => {
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    upload.write(&chunk).await?;
                    if upload.drained() {
                        break;
                    }
                }
            }
            _ => {}
        }
        if upload.drained() {
            break;
        }
    }
    let received = upload.finish().await?;
    viewer.check(&headers, &csrf)?;
    match crate::api::components::add_component(&state, &viewer.workspace_id, received).await {
        Ok((_, c)) => Ok(Redirect::to(&format!("/components/{}", c.digest)).into_response()),
        Err(e @ ApiError::Invalid { .. }) => {
            let status = e.parts().0;
            Ok((status, render(&state, &viewer, Some(&e)).await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn definitions(manifest: &Value, kind: &str) -> Markup {
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
