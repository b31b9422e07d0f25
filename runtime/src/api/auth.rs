//! Who is calling: a workspace (by its API key) or the admin (by the admin token).

use super::{ApiError, AppState};
use crate::secrets;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The caller's workspace, from `Authorization: Bearer <API key>`.
pub struct Auth {
    pub workspace_id: String,
}

/// The admin, from `Authorization: Bearer <admin token>`.
pub struct Admin;

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("the request has no Authorization header".into()))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    // The scheme is case-insensitive (RFC 9110), the token follows after whitespace.
    let (scheme, token) = value.trim().split_once([' ', '\t']).unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthorized(
            "the Authorization header must be 'Bearer <key>'".into(),
        ));
    }
    Ok(token)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?;
        let invalid = || ApiError::Unauthorized("the API key is invalid or revoked".into());
        let prefix = secrets::api_key_prefix(key).ok_or_else(invalid)?;
        let record = state
            .store()
            .key_by_prefix(prefix)
            .await?
            .ok_or_else(invalid)?;
        if !secrets::same(&secrets::token_hash(key), &record.hash) {
            return Err(invalid());
        }
        state.rate.workspace(&record.workspace_id)?;
        Ok(Auth {
            workspace_id: record.workspace_id,
        })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if secrets::same(&secrets::token_hash(token), &state.admin_hash) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized(
                "this route needs the admin token".into(),
            ))
        }
    }
}

/// Declares bearer authentication in the OpenAPI document.
pub struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
