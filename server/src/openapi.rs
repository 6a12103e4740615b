//! The OpenAPI 3.1 document (`GET /openapi.json`).
//!
//! One source of truth: each handler carries a `#[utoipa::path]` and is mounted only through
//! `utoipa_axum::routes!`, which registers the handler in the router and its operation in the
//! document together, so the two cannot drift apart (a test also probes the router against
//! the document). Responses are JSON objects described in prose; `docs/wire-contract.md` holds
//! their exact shapes.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The error body of every 4xx/5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `VALIDATION_ERROR`, `NOT_FOUND`, `RATE_LIMITED`.
    pub code: String,
    pub message: String,
    /// The offending JSON path, header or parameter, when one is to blame.
    pub field: Option<String>,
}

/// `{success: true}`, the answer of many upstream actions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub const fn ok() -> Self {
        Self { success: true }
    }
}

/// Security scheme names used by the handlers' `security(...)`.
pub const USER: &str = "userToken";
pub const APP_KEY: &str = "appApiKey";
pub const ADMIN: &str = "adminKey";
pub const SERVICE_JWT: &str = "serviceJwt";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            USER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access JWT from /api/auth/connect or /api/auth/refresh"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            APP_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The app server's API key (chatsdk_…)",
            ))),
        );
        components.add_security_scheme(
            ADMIN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The platform's ADMIN_API_KEY"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SERVICE_JWT,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "RS256 service JWT of a registered broker credential (kid, iss = client slug, single-use jti)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ChatSDK API",
        description = "Drop-in replacement of the ChatSDK API server; see docs/wire-contract.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, ErrorDetail, Success)),
    tags(
        (name = "health", description = "Probes and metrics"),
        (name = "admin", description = "Platform administration of apps (tenants)"),
        (name = "auth", description = "Sessions and tokens"),
        (name = "users", description = "User profiles, directory and blocks"),
        (name = "channels", description = "Channels, members, read state, typing, search"),
        (name = "messages", description = "Messages, threads, reactions, pins"),
        (name = "realtime", description = "Centrifugo subscription tokens"),
        (name = "moderation", description = "Message reports and their review by app admins"),
        (name = "devices", description = "Push tokens of devices and notification preferences"),
        (name = "webpush", description = "Browser Web Push subscriptions (VAPID)"),
        (name = "polls", description = "Polls on messages, votes, results"),
        (name = "presence", description = "Online state, heartbeats, who is in a channel"),
        (name = "broker", description = "Server-to-server token broker: scoped tokens minted with RS256 service JWTs"),
    )
)]
pub struct ApiDoc;

/// The document, rendered once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let (_, doc) = crate::routes::api().split_for_parts();
    doc.to_json().unwrap_or_else(|err| {
        tracing::error!(%err, "openapi document not serializable");
        String::from("{}")
    })
});

/// The OpenAPI document of every route.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = serde_json::Value))
)]
pub async fn document() -> Response {
    let mut response = DOCUMENT.as_str().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Error answers of end-user (Bearer) routes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: answers are built by `ApiError`
pub enum UserErrors {
    #[response(status = 400, description = "Bad input; `error.field` names what was wrong")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing, invalid, expired or revoked token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Not allowed (role, membership, MFA)")]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "Not found, or another app's")]
    NotFound(ErrorBody),
    #[response(status = 413, description = "Request body too large")]
    PayloadTooLarge(ErrorBody),
    #[response(status = 429, description = "Per-user rate limit; see `Retry-After`")]
    RateLimited(ErrorBody),
}

/// Error answers of app-server (`X-API-Key`) routes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum KeyErrors {
    #[response(status = 400, description = "Bad input; `error.field` names what was wrong")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing or invalid API key")]
    Unauthorized(ErrorBody),
    #[response(status = 404, description = "Unknown user")]
    NotFound(ErrorBody),
    #[response(status = 413, description = "Request body too large")]
    PayloadTooLarge(ErrorBody),
}

/// Error answers of the platform admin routes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum AdminErrors {
    #[response(status = 400, description = "Bad input; `error.field` names what was wrong")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing or wrong admin key")]
    Unauthorized(ErrorBody),
    #[response(status = 404, description = "Unknown app")]
    NotFound(ErrorBody),
    #[response(status = 503, description = "ADMIN_API_KEY is not configured")]
    Unavailable(ErrorBody),
}
