//! Webhooks: URLs whose token is their credential, for senders that cannot send an API
//! key. `POST /hooks/{token}` triggers a deployment (the JSON body becomes the run's
//! parameters); `POST /hooks/automations/{token}` posts an event to an automation. With
//! signing on, an HMAC-SHA256 signature over timestamp and body.

use super::automations::{EventAccepted, accept_event};
use super::runs::{CreateRun, trigger};
use super::{ApiError, ApiResult, AppState, parse_json, read_body};
use crate::secrets::{self, webhook};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Whether a deployment (or an automation) has a webhook, and whether its calls must be
/// signed.
#[derive(Deserialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Require an HMAC-SHA256 signature (`X-Weir-Signature`).
    #[serde(default)]
    pub signed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Webhook {
    pub enabled: bool,
    pub signed: bool,
    /// `/hooks/<token>` (`/hooks/automations/<token>` for an automation): shown when the
    /// webhook is created or rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The HMAC secret: shown when the webhook is created or rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Webhook {
    /// What the API says of a webhook under `prefix`; the token and secret only when
    /// they were just issued.
    pub(super) fn new(prefix: &str, enabled: bool, signed: bool, issued: Option<Issued>) -> Self {
        let (url, token, secret) = match issued {
            Some(i) => (
                Some(format!("{prefix}/{}", i.token)),
                Some(i.token),
                i.secret,
            ),
            None => (None, None, None),
        };
        Webhook {
            enabled,
            signed,
            url,
            token,
            secret,
        }
    }
}

/// A freshly issued webhook token and secret, before they are hashed and sealed.
pub(super) struct Issued {
    token: String,
    secret: Option<String>,
}

impl Issued {
    /// Issues what `spec` asks for into a record's stored token hash and sealed secret,
    /// and returns the token and secret to show once; clears both when the webhook is off.
    pub(super) fn into_record(
        state: &AppState,
        spec: &WebhookSpec,
        token_hash: &mut Option<String>,
        sealed_secret: &mut Option<String>,
    ) -> Option<Issued> {
        if !spec.enabled {
            *token_hash = None;
            *sealed_secret = None;
            return None;
        }
        let token = secrets::new_token();
        let secret = spec.signed.then(secrets::new_token);
        *token_hash = Some(secrets::token_hash(&token));
        *sealed_secret = secret.as_deref().map(|s| state.secrets.seal(s));
        Some(Issued { token, secret })
    }
}

/// A webhook call whose signature (when its webhook is signed) was checked.
struct Delivery {
    body: Bytes,
    /// The sender's delivery id (`Idempotency-Key` or `X-GitHub-Delivery`).
    id: Option<String>,
    /// The signature's MAC, which names a signed call within its window.
    mac: Option<Vec<u8>>,
}

/// Reads a webhook call, checking its signature against the sealed secret if there is one.
async fn receive(state: &AppState, sealed: Option<&str>, req: Request) -> ApiResult<Delivery> {
    let headers = req.headers();
    let signature = headers
        .get("x-weir-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let id = DELIVERY_HEADERS
        .iter()
        .find_map(|h| headers.get(*h))
        .map(|v| v.to_str().map(str::to_owned).ok());
    let id = match id {
        None => None,
        Some(Some(id)) if (1..=200).contains(&id.len()) => Some(id),
        Some(_) => {
            return Err(ApiError::invalid(
                "Invalid delivery id",
                vec!["a delivery id header must be 1 to 200 visible ASCII characters".into()],
            ));
        }
    };
    let body = read_body(req, state.limits.json).await?;
    let mut mac = None;
    if let Some(sealed) = sealed {
        let secret = state.secrets.open(sealed).map_err(ApiError::internal)?;
        let checked = webhook::verify(
            &secret,
            signature.as_deref(),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        mac = Some(checked);
    }
    Ok(Delivery { body, id, mac })
}

impl Delivery {
    /// What names the delivery: the sender's id under `prefix`, else a signed call's MAC
    /// (a replay within the signature's window is the same call); `None` for neither.
    fn key(&self, prefix: &str) -> Option<String> {
        match (&self.id, &self.mac) {
            (Some(id), _) => Some(format!("{prefix}:{id}")),
            (None, Some(mac)) => Some(format!("signature:{}", hex::encode(mac))),
            (None, None) => None,
        }
    }
}

/// Whether a body is empty (nothing but white space).
fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub flow_run_id: String,
}

/// Headers naming a delivery, in the order they are looked for: a redelivery with the
/// same id is answered with the run of the first delivery.
const DELIVERY_HEADERS: [&str; 2] = ["idempotency-key", "x-github-delivery"];

/// Triggers the deployment that owns the token. A repeated delivery (the same
/// `Idempotency-Key` or `X-GitHub-Delivery`, or the same signature within its window)
/// creates no second run: it is answered with the first one's id and
/// `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/hooks/{token}", tag = "webhooks",
    params(("token" = String, Path), ("X-Weir-Signature" = Option<String>, Header,
        description = "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>, when signing is on"),
        ("Idempotency-Key" = Option<String>, Header,
        description = "A delivery id (or X-GitHub-Delivery): a repeat returns the first run")),
    request_body(content = Option<Object>, description = "The run's parameters (a JSON object; none: no parameters)"),
    responses((status = 202, body = Accepted), (status = 401, body = super::Problem),
              (status = 403, body = super::Problem, description = "The workspace is over a quota"),
              (status = 404, body = super::Problem),
              (status = 409, body = super::Problem, description = "The deployment is paused"),
              (status = 422, body = super::Problem),
              (status = 503, body = super::Problem, description = "The run cannot be stored now (see Retry-After); none was created")))]
pub async fn trigger_hook(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> ApiResult<(
    StatusCode,
    [(&'static str, &'static str); 1],
    Json<Accepted>,
)> {
    let deployment = state
        .store()
        .deployment_by_webhook(&secrets::token_hash(&token))
        .await?
        .ok_or(ApiError::UnknownToken("webhook"))?;
    state.rate.workspace(&deployment.workspace_id)?;
    let delivery = receive(&state, deployment.webhook_secret.as_deref(), req).await?;
    // A redelivery is the same run.
    let idempotency_key = delivery.key("delivery");
    let body = delivery.body;
    let parameters: Map<String, Value> = if blank(&body) {
        Map::new()
    } else {
        match parse_json::<Value>(&body)? {
            Value::Object(m) => m,
            _ => {
                return Err(ApiError::invalid(
                    "Invalid parameters",
                    vec!["the body must be a JSON object of parameters".into()],
                ));
            }
        }
    };
    let (run, new) = trigger(
        &state,
        &deployment,
        CreateRun {
            parameters,
            idempotency_key,
            ..CreateRun::default()
        },
    )
    .await?;
    let replayed = if new { "false" } else { "true" };
    Ok((
        StatusCode::ACCEPTED,
        [("idempotent-replayed", replayed)],
        Json(Accepted {
            flow_run_id: run.id,
        }),
    ))
}

/// Posts an event to the automation that owns the token (its trigger is `event`): the
/// body, any JSON (none: `{}`), is `event.body` in its actions' templates. A repeated
/// delivery (the same `Idempotency-Key` or `X-GitHub-Delivery`, or the same signature
/// within its window) is the same event: it fires the automation once, and is answered
/// with `new: false` and `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/hooks/automations/{token}", tag = "webhooks",
    params(("token" = String, Path), ("X-Weir-Signature" = Option<String>, Header,
        description = "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>, when signing is on"),
        ("Idempotency-Key" = Option<String>, Header,
        description = "An event id (or X-GitHub-Delivery): a repeat is the same event")),
    request_body(content = Option<Object>, description = "Any JSON, at most 64 KiB"),
    responses((status = 202, body = EventAccepted), (status = 401, body = super::Problem),
              (status = 404, body = super::Problem),
              (status = 409, body = super::Problem, description = "The automation is disabled"),
              (status = 413, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn post_automation_event(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> ApiResult<(
    StatusCode,
    [(&'static str, &'static str); 1],
    Json<EventAccepted>,
)> {
    let automation = state
        .store()
        .automation_by_webhook(&secrets::token_hash(&token))
        .await?
        .ok_or(ApiError::UnknownToken("webhook"))?;
    state.rate.workspace(&automation.workspace_id)?;
    let delivery = receive(&state, automation.webhook_secret.as_deref(), req).await?;
    // The same keys as the API's events: an id sent either way is one event.
    let key = delivery.key("key");
    let body = if blank(&delivery.body) {
        Value::Object(Map::new())
    } else {
        parse_json::<Value>(&delivery.body)?
    };
    let new = accept_event(&state, &automation, key, body).await?;
    let replayed = if new { "false" } else { "true" };
    Ok((
        StatusCode::ACCEPTED,
        [("idempotent-replayed", replayed)],
        Json(EventAccepted { new }),
    ))
}
