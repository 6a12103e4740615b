//! `/api/webpush`: the VAPID public key, browser subscriptions, and a test notification.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::domain::auth::AuthUser;
use crate::domain::webpush::{self, SubscribeInput};
use crate::error::ApiResult;
use crate::openapi::{ErrorBody, Success, UserErrors};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(vapid_key))
        .routes(routes!(subscribe))
        .routes(routes!(unsubscribe))
        .routes(routes!(test))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct VapidKey {
    /// For `pushManager.subscribe({applicationServerKey})`.
    public_key: String,
}

#[utoipa::path(get, path = "/api/webpush/vapid-key", tag = "webpush", operation_id = "vapidKey",
    security(("userToken" = [])),
    responses((status = 200, description = "The VAPID public key", body = VapidKey),
        (status = 503, description = "Web Push not configured", body = ErrorBody), UserErrors))]
async fn vapid_key(_: AuthUser, State(state): State<AppState>) -> ApiResult<Json<VapidKey>> {
    Ok(Json(VapidKey {
        public_key: webpush::configured(&state)?.vapid().public_key().to_owned(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// Base64url uncompressed P-256 public key.
    p256dh: String,
    /// Base64url 16-byte secret.
    auth: String,
}

/// A browser `PushSubscription` as `toJSON()` gives it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SubscribeBody {
    /// The push service URL (https, a DNS name).
    endpoint: String,
    /// Milliseconds since the epoch, or null.
    expiration_time: Option<f64>,
    keys: Keys,
}

#[utoipa::path(post, path = "/api/webpush/subscribe", tag = "webpush", operation_id = "webPushSubscribe",
    security(("userToken" = [])), request_body = SubscribeBody,
    responses((status = 200, description = "Subscribed (or keys refreshed)", body = Success), UserErrors))]
async fn subscribe(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubscribeBody>,
) -> ApiResult<Json<Success>> {
    let input = SubscribeInput {
        endpoint: &body.endpoint,
        expiration_time: body.expiration_time,
        p256dh: &body.keys.p256dh,
        auth: &body.keys.auth,
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()),
    };
    webpush::subscribe(&state, &user, input).await?;
    Ok(Json(Success::ok()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UnsubscribeBody {
    endpoint: String,
}

#[utoipa::path(post, path = "/api/webpush/unsubscribe", tag = "webpush", operation_id = "webPushUnsubscribe",
    security(("userToken" = [])), request_body = UnsubscribeBody,
    responses((status = 200, description = "Unsubscribed (also when unknown)", body = Success), UserErrors))]
async fn unsubscribe(
    user: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UnsubscribeBody>,
) -> ApiResult<Json<Success>> {
    webpush::unsubscribe(&state, &user, &body.endpoint).await?;
    Ok(Json(Success::ok()))
}

#[derive(Debug, Serialize, ToSchema)]
struct TestResult {
    success: bool,
    sent: usize,
    failed: usize,
    /// Only when the caller has no subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

#[utoipa::path(post, path = "/api/webpush/test", tag = "webpush", operation_id = "webPushTest",
    security(("userToken" = [])),
    responses((status = 200, description = "Sent to each subscription; gone ones (404/410) are forgotten", body = TestResult),
        (status = 503, description = "Web Push not configured", body = ErrorBody), UserErrors))]
async fn test(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<TestResult>> {
    let sent = webpush::send_test(&state, &user).await?;
    let none = sent.sent == 0 && sent.failed == 0;
    Ok(Json(TestResult {
        success: sent.sent > 0,
        sent: sent.sent,
        failed: sent.failed,
        message: none.then_some("No subscriptions found. Enable notifications in your browser first."),
    }))
}
