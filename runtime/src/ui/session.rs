//! Signing in and out, the session a page is served in, and the checks every form that
//! changes something passes: the session's CSRF token, and a request from this origin.

use super::layout::{self, PageError};
use crate::api::{ApiError, AppState};
use crate::secrets;
use crate::store::SessionRecord;
use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

/// The cookie holding the session's token.
pub const SESSION_COOKIE: &str = "weir_session";

/// How long a session lasts after sign-in.
const SESSION_DAYS: i64 = 7;

/// The signed-in user of a page: the workspace they act in and their session.
pub struct Viewer {
    pub workspace_id: String,
    /// Shown in the navigation.
    pub label: String,
    pub admin: bool,
    pub csrf: String,
    token_hash: String,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Why a page cannot be served to this request as it is.
pub enum NoViewer {
    /// No live session: sign in first (back to `next` after).
    SignIn {
        next: String,
    },
    /// An admin session that has not picked a workspace yet.
    PickWorkspace,
    Failed(ApiError),
}

impl IntoResponse for NoViewer {
    fn into_response(self) -> Response {
        match self {
            NoViewer::SignIn { next } => {
                let to = format!("/signin?next={}", urlencode(&next));
                Redirect::to(&to).into_response()
            }
            NoViewer::PickWorkspace => Redirect::to("/signin?pick=1").into_response(),
            NoViewer::Failed(e) => PageError(e).into_response(),
        }
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn session(parts: &Parts, state: &AppState) -> Result<Option<SessionRecord>, ApiError> {
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state
        .store()
        .live_session(&secrets::token_hash(token), Utc::now())
        .await?)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = NoViewer;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NoViewer> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let s = session(parts, state)
            .await
            .map_err(NoViewer::Failed)?
            .ok_or(NoViewer::SignIn { next })?;
        let Some(workspace_id) = s.workspace_id.clone() else {
            return Err(NoViewer::PickWorkspace);
        };
        let label = match state.store().workspace(&workspace_id).await {
            Ok(Some(w)) => w.name,
            Ok(None) => workspace_id.clone(),
            Err(e) => return Err(NoViewer::Failed(e.into())),
        };
        Ok(Viewer {
            workspace_id,
            label: if s.admin {
                format!("{label} (admin)")
            } else {
                label
            },
            admin: s.admin,
            csrf: s.csrf,
            token_hash: s.token_hash,
        })
    }
}

/// Refuses a request that changes something unless it comes from this origin: browsers
/// send `Sec-Fetch-Site` (and `Origin` on POST); a cross-site one is refused even before
/// its CSRF token is looked at.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = || ApiError::Forbidden("the form was not sent from this site".into());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return Err(refuse());
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        if origin_host != host {
            return Err(refuse());
        }
    }
    Ok(())
}

impl Viewer {
    /// The session's identity (the stored hash of its token), to count what it holds.
    pub fn session_id(&self) -> &str {
        &self.token_hash
    }

    /// The viewer as the API's caller, to call the API's own handlers.
    pub fn auth(&self) -> crate::api::Auth {
        crate::api::Auth {
            workspace_id: self.workspace_id.clone(),
        }
    }

    /// Checks a form's CSRF token and origin.
    pub fn check(&self, headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
        same_origin(headers)?;
        if !secrets::same(token, &self.csrf) {
            return Err(ApiError::Forbidden(
                "the form's security token is missing or stale; reload the page and send it again"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    pick: Option<String>,
}

/// Only paths of this site are followed after sign-in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn signin_form(next: &str, problem: Option<&str>) -> Markup {
    html! {
        div.signin.panel {
            h1 { "Sign in to Weir" }
            @if let Some(p) = problem { div.problem { (p) } }
            form method="post" action="/signin" {
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="key" { "API key or admin token" }
                    input #key type="password" name="key" autocomplete="current-password" required;
                    div.hint { "The key "  code { "weir server" } " or " code { "scripts/demo" } " printed (also in " code { ".weir/demo.env" } ")." }
                }
                button type="submit" { "Sign in" }
            }
        }
    }
}

fn pick_form(workspaces: &[crate::store::WorkspaceRecord], csrf: &str) -> Markup {
    html! {
        div.signin.panel {
            h1 { "Pick a workspace" }
            @if workspaces.is_empty() {
                p.muted { "There is no workspace yet: create one with " code { "weir workspace create NAME" } "." }
            } @else {
                form method="post" action="/workspace" {
                    input type="hidden" name="csrf" value=(csrf);
                    div.field {
                        select name="workspace" {
                            @for w in workspaces { option value=(w.id) { (w.name) } }
                        }
                    }
                    button type="submit" { "Open" }
                }
            }
        }
    }
}

pub async fn signin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    if q.pick.is_some()
        && let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Some(s) = state
            .store()
            .live_session(&secrets::token_hash(token), Utc::now())
            .await?
        && s.admin
    {
        let workspaces = state.store().workspaces().await?;
        return Ok(
            layout::bare("Pick a workspace", pick_form(&workspaces, &s.csrf)).into_response(),
        );
    }
    Ok(layout::bare("Sign in", signin_form(next, None)).into_response())
}

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
    next: Option<String>,
}

/// Opens a session for an API key (acting in its workspace) or the admin token (acting
/// in a workspace picked next).
pub async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let key = form.key.trim();
    let next = safe_next(form.next.as_deref()).to_owned();
    let now = Utc::now();
    let mut session = SessionRecord {
        token_hash: String::new(),
        workspace_id: None,
        key_id: None,
        admin: false,
        csrf: secrets::new_token(),
        created: now,
        expires: now + chrono::Duration::days(SESSION_DAYS),
    };
    if secrets::same(&secrets::token_hash(key), &state.admin_hash) {
        session.admin = true;
    } else {
        let found = match secrets::api_key_prefix(key) {
            Some(prefix) => state.store().key_by_prefix(prefix).await?,
            None => None,
        };
        match found {
            Some(k) if secrets::same(&secrets::token_hash(key), &k.hash) => {
                session.workspace_id = Some(k.workspace_id);
                session.key_id = Some(k.id);
            }
            _ => {
                let page = layout::bare(
                    "Sign in",
                    signin_form(&next, Some("That key is invalid or revoked.")),
                );
                let mut res = (axum::http::StatusCode::UNAUTHORIZED, page).into_response();
                res.extensions_mut().insert(crate::api::rate::AuthFailure(
                    "UI sign-in with an invalid or revoked key".into(),
                ));
                return Ok(res);
            }
        }
    }
    let token = secrets::new_token();
    session.token_hash = secrets::token_hash(&token);
    state.store().open_session(&session).await?;
    let to = if session.admin {
        "/signin?pick=1".to_owned()
    } else {
        next
    };
    let mut res = Redirect::to(&to).into_response();
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https");
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_DAYS * 86_400,
        if secure { "; Secure" } else { "" }
    );
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(res)
}

/// A form that brings only the session's CSRF token (a button that changes something).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn signout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check(&headers, &form.csrf)?;
    state.store().close_session(&viewer.token_hash).await?;
    let mut res = Redirect::to("/signin").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("weir_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub struct PickWorkspace {
    workspace: String,
    #[serde(default)]
    csrf: String,
}

/// An admin's choice of the workspace to act in.
pub async fn pick_workspace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PickWorkspace>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let token = cookie(&headers, SESSION_COOKIE)
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))?;
    let hash = secrets::token_hash(token);
    let s = state
        .store()
        .live_session(&hash, Utc::now())
        .await?
        .filter(|s| s.admin)
        .ok_or_else(|| ApiError::Unauthorized("sign in with the admin token first".into()))?;
    if !secrets::same(&form.csrf, &s.csrf) {
        return Err(ApiError::Forbidden("the form's security token is stale".into()).into());
    }
    if state.store().workspace(&form.workspace).await?.is_none() {
        return Err(ApiError::NotFound("workspace").into());
    }
    state
        .store()
        .set_session_workspace(&hash, &form.workspace)
        .await?;
    Ok(Redirect::to("/").into_response())
}
