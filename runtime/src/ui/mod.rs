//! The web UI, served by `weir server` on the API's port: server-rendered HTML (maud),
//! htmx for partial updates and server-sent events for live ones (a run's state, task
//! runs and log tail), assets embedded in the binary.
//!
//! Pages read through the same store queries and call the same executor commands as
//! the API, and show the API's problem messages. Every page is scoped to the session's
//! workspace (another workspace's object is a 404). Sessions are HttpOnly, SameSite=Strict
//! cookies the server can revoke; every form that changes something carries the
//! session's CSRF token and must come from this origin. The Content-Security-Policy
//! allows scripts only from the UI's own assets, so nothing in content ever runs;
//! names, logs, parameters and results are escaped, markdown artifacts sanitized.

mod artifacts;
mod assets;
mod automations;
mod components;
mod dashboard;
mod deployments;
mod form;
mod graph;
mod layout;
mod markdown;
mod plugins;
mod runs;
mod session;
mod settings;
mod timeline;

use crate::api::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use session::{SESSION_COOKIE, urlencode};

/// The UI's policy: scripts and styles only from `/ui/assets`, no plugins, no framing,
/// forms only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every UI route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/signin", get(session::signin_page).post(session::signin))
        .route("/signout", post(session::signout))
        .route("/workspace", post(session::pick_workspace))
        .route("/runs", get(runs::list))
        .route("/runs/bulk", post(runs::bulk))
        .route("/task-runs", get(runs::task_list))
        .route("/runs/{id}", get(runs::page))
        .route("/runs/{id}/live", get(runs::live))
        .route("/runs/{id}/logs", get(runs::logs))
        .route("/runs/{id}/logs.txt", get(runs::logs_text))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/retry", post(runs::retry))
        .route("/runs/{id}/resume", post(runs::resume))
        .route("/deployments", get(deployments::list))
        .route("/deployments/{name}", get(deployments::page))
        .route(
            "/deployments/{name}/run",
            get(deployments::run_form).post(deployments::run),
        )
        .route("/deployments/{name}/pause", post(deployments::pause))
        .route("/deployments/{name}/resume", post(deployments::resume))
        .route(
            "/deployments/{name}/schedules/{id}/pause",
            post(deployments::pause_schedule),
        )
        .route(
            "/deployments/{name}/schedules/{id}/resume",
            post(deployments::resume_schedule),
        )
        .route("/artifacts", get(artifacts::list))
        .route("/artifacts/{key}", get(artifacts::page))
        .route(
            "/components",
            get(components::list)
                .post(components::upload)
                // The upload counts the file against the upload limit itself.
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/components/{digest}", get(components::page))
        .route("/automations", get(automations::list))
        .route("/automations/{name}", get(automations::page))
        .route("/automations/{name}/enable", post(automations::enable))
        .route("/automations/{name}/disable", post(automations::disable))
        .route("/plugins", get(plugins::list))
        .route("/plugins/{name}", get(plugins::page))
        .route("/settings", get(settings::page))
        .route("/settings/variables", post(settings::set_variable))
        .route(
            "/settings/variables/{name}/delete",
            post(settings::delete_variable),
        )
        .route("/settings/secrets", post(settings::set_secret))
        .route(
            "/settings/secrets/{name}/delete",
            post(settings::delete_secret),
        )
        .route("/settings/pools/{name}", post(settings::update_pool))
        .route("/settings/limits", post(settings::set_limit))
        .route("/settings/retention", post(settings::set_retention))
        .route(
            "/settings/limits/{tag}/delete",
            post(settings::delete_limit),
        )
        .route("/settings/keys", post(settings::create_key))
        .route("/settings/keys/{id}/revoke", post(settings::revoke_key))
        .route("/ui/assets/{file}", get(assets::serve))
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

/// Security headers on every UI response; pages are not cached (they show live state
/// and carry a CSRF token).
async fn headers(req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/ui/assets/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
