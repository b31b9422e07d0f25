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

/// Triggers the deployment that owns the token.
#[utoipa::path(post, path = "/hooks/{token}", tag = "webhooks",
    params(("token" = String, Path), ("X-Weir-Signature" = Option<String>, Header,
        description = "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>, when signing is on")),
    request_body(content = Object, description = "The run's parameters"),
    responses((status = 202, body = Accepted), (status = 401, body = super::Problem),
              (status = 404, body = super::Problem), (status = 422, body = super::Problem),
              (status = 503, body = super::Problem, description = "The run cannot be stored now (see Retry-After); none was created")))]
pub async fn trigger_hook(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let deployment = state
        .store()
        .deployment_by_webhook(&secrets::token_hash(&token))
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let signature = req
        .headers()
        .get("x-weir-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_body(req, state.limits.json).await?;
    if let Some(sealed) = &deployment.webhook_secret {
        let secret = state.secrets.open(sealed).map_err(ApiError::internal)?;
        webhook::verify(
            &secret,
            signature.as_deref(),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    }
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
    let (run, _) = trigger(
        &state,
        &deployment,
        CreateRun {
            parameters,
            ..CreateRun::default()
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            flow_run_id: run.id,
        }),
    ))
}
