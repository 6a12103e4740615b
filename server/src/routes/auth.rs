//! `/api/auth`: connect (API key → user tokens) and refresh.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, AppKey, parse_json};
use crate::domain::auth::{self, ConnectInput};
use crate::domain::tokens::TokenBundle;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{KeyErrors, UserErrors};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connect))
        .routes(routes!(refresh))
        .routes(routes!(connect_dev))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConnectBody {
    user_id: String,
    display_name: Option<String>,
    avatar: Option<String>,
    email: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    /// The app server vouches that the user passed MFA (see `REQUIRE_MFA`).
    #[serde(default)]
    mfa: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: String,
}

fn bundle_json(tokens: &TokenBundle) -> Value {
    json!({
        "token": tokens.token,
        "refreshToken": tokens.refresh_token,
        "expiresIn": tokens.expires_in,
        "_internal": { "wsToken": tokens.ws_token },
    })
}

#[utoipa::path(post, path = "/api/auth/connect", tag = "auth", operation_id = "connect",
    security(("appApiKey" = [])), request_body = ConnectBody,
    responses((status = 200, description = "`{user, token, refreshToken, expiresIn, _internal: {wsToken}}`", body = Value), KeyErrors))]
async fn connect(
    key: AppKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConnectBody>,
) -> ApiResult<Json<Value>> {
    let connected = auth::connect(&state, key.app_id, body.into_input()).await?;
    Ok(Json(connected_json(&connected)))
}

/// Development only (`ALLOW_DEV_AUTH=true` with `NODE_ENV=development`; never beside
/// `NODE_ENV=production` or `FORCE_HTTPS`): `connect` into the development app without an API
/// key. Otherwise 404, as if the route did not exist.
#[utoipa::path(post, path = "/api/auth/connect-dev", tag = "auth", operation_id = "connectDev",
    request_body = ConnectBody,
    responses((status = 200, description = "`connect`'s answer plus `_dev: {warning, apiKey}`", body = Value),
        (status = 404, description = "Not in development mode", body = crate::openapi::ErrorBody), KeyErrors))]
async fn connect_dev(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConnectBody>,
) -> ApiResult<Json<Value>> {
    let connected = auth::connect_dev(&state, body.into_input()).await?;
    let mut response = connected_json(&connected);
    if let Some(obj) = response.as_object_mut() {
        obj.insert(
            "_dev".into(),
            json!({
                "warning": "Development mode - API key not required",
                "apiKey": crate::domain::apps::DEV_API_KEY,
            }),
        );
    }
    Ok(Json(response))
}

impl ConnectBody {
    fn into_input(self) -> ConnectInput {
        ConnectInput {
            user_id: self.user_id,
            display_name: self.display_name,
            avatar: self.avatar,
            email: self.email,
            metadata: self.metadata,
            mfa: self.mfa,
        }
    }
}

fn connected_json(connected: &auth::Connected) -> Value {
    let mut response = bundle_json(&connected.tokens);
    if let Some(obj) = response.as_object_mut() {
        obj.insert(
            "user".into(),
            json!({
                "id": connected.user_id,
                "displayName": connected.display_name,
                "avatar": connected.avatar,
                "metadata": connected.metadata,
            }),
        );
    }
    response
}

/// The refresh token comes as `Authorization: Bearer` (upstream server) or as the body
/// `{refreshToken}` (what upstream's client SDK sends).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", operation_id = "refresh",
    description = "The refresh JWT as `Authorization: Bearer` or in the body; each is single use, a replay revokes the session.",
    request_body(content = Option<RefreshBody>),
    responses((status = 200, description = "`{token, refreshToken, expiresIn, _internal}`", body = Value), UserErrors))]
async fn refresh(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Value>> {
    let from_header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let token = match from_header {
        Some(token) => token,
        None if body.iter().all(u8::is_ascii_whitespace) => {
            return Err(ApiError::unauthorized(
                "MISSING_REFRESH_TOKEN",
                "Missing refresh token",
            ));
        }
        None => parse_json::<RefreshBody>(&body)?.refresh_token,
    };
    let tokens = auth::refresh(&state, &token).await?;
    Ok(Json(bundle_json(&tokens)))
}
