//! The page shell (navigation, assets), the error page, and small pieces every page
//! uses: state badges, times, durations.

use super::session::Viewer;
use crate::api::ApiError;
use crate::model::state::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

/// The sections of the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Runs,
    Deployments,
    Components,
    Plugins,
    Automations,
    Artifacts,
    Settings,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // htmx without eval and without its inline indicator styles (the CSP forbids both).
            meta name="htmx-config" content=r#"{"allowEval":false,"includeIndicatorStyles":false,"allowScriptTags":false}"#;
            title { (title) " · Weir" }
            link rel="stylesheet" href="/ui/assets/weir.css";
            script src="/ui/assets/htmx.min.js" defer {}
            script src="/ui/assets/sse.min.js" defer {}
            script src="/ui/assets/weir.js" defer {}
        }
    }
}

/// A page of the signed-in UI.
pub fn page(viewer: &Viewer, section: Section, title: &str, body: Markup) -> Markup {
    let link = |s: Section, href: &str, label: &str| {
        html! { a href=(href) class=[(s == section).then_some("on")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                nav.side {
                    a.brand href="/" { "Weir" }
                    (link(Section::Dashboard, "/", "Dashboard"))
                    (link(Section::Runs, "/runs", "Runs"))
                    (link(Section::Deployments, "/deployments", "Deployments"))
                    (link(Section::Components, "/components", "Components"))
                    (link(Section::Plugins, "/plugins", "Plugins"))
                    (link(Section::Automations, "/automations", "Automations"))
                    (link(Section::Artifacts, "/artifacts", "Artifacts"))
                    (link(Section::Settings, "/settings", "Settings"))
                    div.who {
                        "Workspace " b { (viewer.label) }
                        form method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Sign out" }
                        }
                        @if viewer.admin {
                            a.switch href="/signin?pick=1" { "Switch workspace" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page outside the signed-in UI (sign-in, errors before sign-in).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main { (body) } }
        }
    }
}

/// An API error as a page: the same status and message the API would give.
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self.0 {
            tracing::error!("page failed: {e:#}");
        }
        let retry_after = match &self.0 {
            ApiError::Unavailable { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let (status, title, detail, errors) = self.0.parts();
        let body = html! {
            div.panel {
                h1 { (status.as_u16()) " " (title) }
                (problem(&detail, &errors))
                p { a href="/" { "Back to the dashboard" } }
            }
        };
        let mut res = (status, bare(title, body)).into_response();
        if let Some(seconds) = retry_after {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        res
    }
}

/// A problem message with its list of errors.
pub fn problem(detail: &str, errors: &[String]) -> Markup {
    html! {
        div.problem role="alert" {
            (detail)
            @if !errors.is_empty() && errors.first().map(String::as_str) != Some(detail) {
                ul { @for e in errors { li { (e) } } }
            }
        }
    }
}

/// A state as a coloured badge (a Cached completion has its own colour).
pub fn badge(state: &State) -> Markup {
    let class = if state.name == "Cached" {
        "s-Cached".to_owned()
    } else {
        format!("s-{}", state.kind.as_str())
    };
    html! { span class={ "badge " (class) } title=[state.message.as_deref()] { (state.name) } }
}

/// A time, shown in the browser's timezone by the UI's script (UTC without it).
pub fn time(t: DateTime<Utc>) -> Markup {
    let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    html! { time datetime=(iso) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

pub fn maybe_time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { "–" } },
    }
}

/// A duration in the largest fitting unit: 850 ms, 12.3 s, 4 m 05 s, 2 h 10 m.
pub fn duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} m {:02} s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{} h {:02} m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// How long a run took (or has taken so far).
pub fn elapsed(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => duration(e - s),
        (Some(s), None) => format!("{} so far", duration(Utc::now() - s)),
        _ => "–".into(),
    }
}

/// Pretty JSON in a `pre`, escaped.
pub fn json_block(v: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre { (text) } }
}
