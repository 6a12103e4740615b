//! `/api/presence` (heartbeat, online, offline, query) and `/api/channels/:id/presence`
//! (members online, and Centrifugo's live subscribers).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::presence;
use crate::error::ApiResult;
use crate::openapi::{Success, UserErrors};
use crate::state::AppState;
use crate::storage::presence::PresenceRow;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(heartbeat))
        .routes(routes!(online))
        .routes(routes!(offline))
        .routes(routes!(query))
        .routes(routes!(channel))
        .routes(routes!(live))
}

#[utoipa::path(post, path = "/api/presence/heartbeat", tag = "presence", operation_id = "presenceHeartbeat",
    security(("userToken" = [])),
    responses((status = 200, description = "Activity recorded (online stays true for 5 minutes after the last one)", body = Success), UserErrors))]
async fn heartbeat(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Success>> {
    presence::heartbeat(&state, &user).await?;
    Ok(Json(Success::ok()))
}

#[utoipa::path(post, path = "/api/presence/online", tag = "presence", operation_id = "presenceOnline",
    security(("userToken" = [])),
    responses((status = 200, description = "Online; `presence.online {userId}` to the user's and their channels' realtime channels", body = Success), UserErrors))]
async fn online(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Success>> {
    presence::set(&state, &user, true).await?;
    Ok(Json(Success::ok()))
}

#[utoipa::path(post, path = "/api/presence/offline", tag = "presence", operation_id = "presenceOffline",
    security(("userToken" = [])),
    responses((status = 200, description = "Offline; `presence.offline {userId, lastSeen}` as for online", body = Success), UserErrors))]
async fn offline(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Success>> {
    presence::set(&state, &user, false).await?;
    Ok(Json(Success::ok()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QueryBody {
    /// 1..100 user ids.
    user_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct PresenceUser {
    id: String,
    name: Option<String>,
    image: Option<String>,
}

/// One user's presence (what upstream's `usePresence` reads as `UserPresence`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct UserPresence {
    user_id: String,
    online: bool,
    last_seen: Option<DateTime<Utc>>,
    user: PresenceUser,
}

impl From<PresenceRow> for UserPresence {
    fn from(row: PresenceRow) -> Self {
        Self {
            user_id: row.id.clone(),
            online: row.online,
            last_seen: row.last_active_at,
            user: PresenceUser {
                id: row.id,
                name: row.name,
                image: row.image_url,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct QueryResponse {
    /// Keyed by user id; users sharing no channel with the caller are absent.
    presence: BTreeMap<String, UserPresence>,
}

#[utoipa::path(post, path = "/api/presence/query", tag = "presence", operation_id = "presenceQuery",
    security(("userToken" = [])), request_body = QueryBody,
    responses((status = 200, description = "Presence of the users the caller shares a channel with", body = QueryResponse), UserErrors))]
async fn query(
    user: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<QueryBody>,
) -> ApiResult<Json<QueryResponse>> {
    let rows = presence::query(&state, &user, &body.user_ids).await?;
    Ok(Json(QueryResponse {
        presence: rows.into_iter().map(|(id, row)| (id, row.into())).collect(),
    }))
}

/// A member's entry in a channel's presence: upstream's `{id, name, image, online, lastSeen}`
/// plus `userId` and `user`, which the React hooks' `UserPresence` type reads **[ours]**.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MemberPresence {
    id: String,
    user_id: String,
    name: Option<String>,
    image: Option<String>,
    online: bool,
    last_seen: Option<DateTime<Utc>>,
    user: PresenceUser,
}

impl From<PresenceRow> for MemberPresence {
    fn from(row: PresenceRow) -> Self {
        Self {
            id: row.id.clone(),
            user_id: row.id.clone(),
            name: row.name.clone(),
            image: row.image_url.clone(),
            online: row.online,
            last_seen: row.last_active_at,
            user: PresenceUser {
                id: row.id,
                name: row.name,
                image: row.image_url,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ChannelPresence {
    online: Vec<MemberPresence>,
    offline: Vec<MemberPresence>,
    total_online: usize,
    total_members: usize,
}

#[utoipa::path(get, path = "/api/channels/{channel_id}/presence", tag = "presence", operation_id = "channelPresence",
    security(("userToken" = [])), params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "Members online and offline, most recently active first (members only)", body = ChannelPresence), UserErrors))]
async fn channel(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<ChannelPresence>> {
    let rows = presence::channel(&state, &user, path_id(&channel_id, "channelId")?).await?;
    let total_members = rows.len();
    let (online, offline): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.online);
    Ok(Json(ChannelPresence {
        total_online: online.len(),
        total_members,
        online: online.into_iter().map(Into::into).collect(),
        offline: offline.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LiveClient {
    client_id: String,
    /// The user id (Centrifugo's subject without the app prefix **[ours]**).
    user_id: String,
    #[schema(value_type = Option<Object>)]
    conn_info: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
struct LivePresence {
    clients: Vec<LiveClient>,
    count: usize,
}

#[utoipa::path(get, path = "/api/channels/{channel_id}/presence/live", tag = "presence", operation_id = "channelLivePresence",
    security(("userToken" = [])), params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "Clients subscribed now (Centrifugo presence); empty when Centrifugo is unavailable", body = LivePresence), UserErrors))]
async fn live(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<LivePresence>> {
    let clients = presence::live(&state, &user, path_id(&channel_id, "channelId")?).await?;
    Ok(Json(LivePresence {
        count: clients.len(),
        clients: clients
            .into_iter()
            .map(|c| LiveClient {
                client_id: c.client_id,
                user_id: c.user_id,
                conn_info: c.conn_info,
            })
            .collect(),
    }))
}
