//! `/api/devices`: push tokens of the user's devices and notification preferences.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::ApiJson;
use crate::domain::auth::AuthUser;
use crate::domain::devices;
use crate::error::ApiResult;
use crate::openapi::{Success, UserErrors};
use crate::state::AppState;
use crate::storage::devices::NewDevice;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(get_preferences, update_preferences))
        .routes(routes!(unregister))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegisterBody {
    /// The APNs/FCM/Expo token (1..4096 bytes); registering it for this user takes it from any
    /// other user of the app.
    token: String,
    /// ios, android, web or expo.
    platform: String,
    device_id: Option<String>,
    device_name: Option<String>,
}

#[utoipa::path(post, path = "/api/devices", tag = "devices", operation_id = "registerDevice",
    security(("userToken" = [])), request_body = RegisterBody,
    responses((status = 200, description = "Registered (or refreshed)", body = Success), UserErrors))]
async fn register(
    user: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<Json<Success>> {
    let device = NewDevice {
        token: &body.token,
        platform: &body.platform,
        device_id: body.device_id.as_deref(),
        device_name: body.device_name.as_deref(),
    };
    devices::register(&state, &user, device).await?;
    Ok(Json(Success::ok()))
}

/// A device as listed (never its token).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Device {
    id: Uuid,
    platform: String,
    device_id: Option<String>,
    device_name: Option<String>,
    last_active_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
struct DeviceList {
    devices: Vec<Device>,
}

#[utoipa::path(get, path = "/api/devices", tag = "devices", operation_id = "listDevices",
    security(("userToken" = [])),
    responses((status = 200, description = "The caller's devices, most recently active first", body = DeviceList), UserErrors))]
async fn list(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<DeviceList>> {
    let rows = devices::list(&state, &user).await?;
    Ok(Json(DeviceList {
        devices: rows
            .into_iter()
            .map(|d| Device {
                id: d.id,
                platform: d.platform,
                device_id: d.device_id,
                device_name: d.device_name,
                last_active_at: d.last_active_at,
                created_at: d.created_at,
            })
            .collect(),
    }))
}

/// The token is the path segment, percent-encoded (FCM tokens contain `:`).
#[utoipa::path(delete, path = "/api/devices/{token}", tag = "devices", operation_id = "unregisterDevice",
    security(("userToken" = [])), params(("token" = String, Path, description = "The device token")),
    responses((status = 200, description = "Gone (also when it was not registered)", body = Success), UserErrors))]
async fn unregister(
    user: AuthUser,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<Success>> {
    devices::unregister(&state, &user, &token).await?;
    Ok(Json(Success::ok()))
}

/// Notification preferences; every key is optional in an update.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // the schema of `preferences`; the handlers keep the JSON object as sent
struct Preferences {
    new_messages: bool,
    mentions: bool,
    reactions: bool,
    thread_replies: bool,
    channel_invites: bool,
    quiet_hours_enabled: bool,
    /// `HH:MM`.
    quiet_hours_start: String,
    quiet_hours_end: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PreferencesResponse {
    #[schema(value_type = Preferences)]
    preferences: Value,
    /// Upstream's Novu preferences; always `null` (no Novu).
    #[schema(value_type = Option<Object>)]
    novu_preferences: Option<Value>,
}

#[utoipa::path(get, path = "/api/devices/preferences", tag = "devices", operation_id = "getPushPreferences",
    security(("userToken" = [])),
    responses((status = 200, description = "Stored preferences over upstream's defaults", body = PreferencesResponse), UserErrors))]
async fn get_preferences(
    user: AuthUser,
    State(state): State<AppState>,
) -> ApiResult<Json<PreferencesResponse>> {
    Ok(Json(PreferencesResponse {
        preferences: devices::preferences(&state, &user).await?,
        novu_preferences: None,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
struct UpdatedPreferences {
    success: bool,
    #[schema(value_type = Preferences)]
    preferences: Value,
}

#[utoipa::path(patch, path = "/api/devices/preferences", tag = "devices", operation_id = "updatePushPreferences",
    security(("userToken" = [])), request_body(content = Object, description = "Any of the `Preferences` keys"),
    responses((status = 200, description = "All preferences after the merge", body = UpdatedPreferences), UserErrors))]
async fn update_preferences(
    user: AuthUser,
    State(state): State<AppState>,
    ApiJson(patch): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<UpdatedPreferences>> {
    Ok(Json(UpdatedPreferences {
        success: true,
        preferences: devices::update_preferences(&state, &user, patch).await?,
    }))
}
