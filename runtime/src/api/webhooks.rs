//! `POST /hooks/{token}`: a deployment's webhook. The JSON body becomes the run's
//! parameters; with signing on, an HMAC-SHA256 signature over timestamp and body.

use super::runs::{CreateRun, trigger};
use super::{ApiError, ApiResult, AppState, parse_json, read_body};
use crate::secrets::{self, webhook};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

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
    let headers = req.headers();
    let signature = headers
        .get("x-weir-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let delivery = DELIVERY_HEADERS
        .iter()
        .find_map(|h| headers.get(*h))
        .map(|v| v.to_str().map(str::to_owned).ok());
    let delivery = match delivery {
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
    let mut signed = None;
    if let Some(sealed) = &deployment.webhook_secret {
        let secret = state.secrets.open(sealed).map_err(ApiError::internal)?;
        let mac = webhook::verify(
            &secret,
            signature.as_deref(),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        signed = Some(mac);
    }
    // The sender's delivery id makes a redelivery the same run; without one, a signed
    // request replayed within the signature's window is too (its MAC names it).
    let idempotency_key = match (delivery, signed) {
        (Some(id), _) => Some(format!("delivery:{id}")),
        (None, Some(mac)) => Some(format!("signature:{}", hex::encode(mac))),
        (None, None) => None,
    };
    let parameters: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
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
