//! HTTP routes. Handlers are thin: extract, call `domain`, shape the JSON of the wire contract.

mod admin;
mod auth;
mod broker;
mod channels;
mod devices;
pub mod extract;
mod health;
mod messages;
mod moderation;
mod polls;
mod presence;
mod realtime;
mod users;
mod webpush;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Json, Router};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::state::AppState;
use crate::{audit, metrics};

/// Largest accepted request body (a 10 000-character message with attachments fits easily).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Every route with its OpenAPI operation: the one table both the router and `/openapi.json`
/// come from.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(admin::routes())
        .merge(auth::routes())
        .merge(broker::routes())
        .merge(channels::routes())
        .merge(messages::routes())
        .merge(moderation::routes())
        .merge(devices::routes())
        .merge(webpush::routes())
        .merge(polls::routes())
        .merge(presence::routes())
        .merge(realtime::routes())
        .merge(users::routes())
}

pub fn router(state: AppState) -> Router {
    let (routes, _) = api().split_for_parts();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // `DefaultBodyLimit` bounds what extractors buffer (bodies without a length);
        // `RequestBodyLimitLayer` refuses a declared oversize length before reading anything.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::map_response(json_payload_too_large))
        .layer(middleware::from_fn_with_state(state.clone(), require_https))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::middleware))
        .layer(middleware::from_fn_with_state(state.clone(), audit::middleware))
        .with_state(state)
}

/// Marks answers of the router's fallbacks (no such route / method), so a test can tell them
/// from a handler's own 404.
#[derive(Debug, Clone, Copy)]
pub struct NoRoute;

async fn not_found() -> Response {
    let mut response = ApiError::not_found("Not Found").into_response();
    response.extensions_mut().insert(NoRoute);
    response
}

async fn method_not_allowed() -> Response {
    let body =
        json!({"error": {"code": "METHOD_NOT_ALLOWED", "message": "Method not allowed", "field": null}});
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response();
    response.extensions_mut().insert(NoRoute);
    response
}

/// `RequestBodyLimitLayer` answers a plain-text 413; clients get the JSON error shape instead.
async fn json_payload_too_large(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::PayloadTooLarge {
            message: format!("Request body is larger than {MAX_BODY_BYTES} bytes").into(),
        }
        .into_response();
    }
    response
}

/// With `FORCE_HTTPS`, a request the proxy received over plain HTTP (`X-Forwarded-Proto: http`)
/// is redirected (GET/HEAD) or refused; probes that reach the pod directly carry no such header.
async fn require_https(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.config.force_https {
        return next.run(request).await;
    }
    let proto = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok());
    if proto.is_some_and(|p| p.eq_ignore_ascii_case("http")) {
        let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok());
        if let (Some(host), true) = (host, matches!(*request.method(), Method::GET | Method::HEAD)) {
            let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
            return Redirect::permanent(&format!("https://{host}{target}")).into_response();
        }
        return ApiError::forbidden("HTTPS_REQUIRED", "HTTPS is required").into_response();
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    response
}
