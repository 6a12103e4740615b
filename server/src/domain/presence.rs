//! Presence: heartbeats, online/offline, and who of a channel or a list of users is online.
//!
//! Upstream keeps the state in the user row (`custom_data.online`, `last_active_at`) and
//! announces changes as `presence.online` / `presence.offline` on the user's own channel only,
//! where nobody else listens. Here the event also goes to every channel the user belongs to
//! **[ours]**, so members' clients (upstream's `useChannelPresence` refreshes on these events)
//! learn of it. It travels through the outbox, in the transaction that changed the state, so
//! an online and a following offline are delivered in that order.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::auth::{AuthUser, validate_user_id};
use crate::domain::channels::visible;
use crate::domain::realtime::{chat_channel, events, user_channel};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::presence::{self, PresenceRow};
use crate::storage::{begin_tenant, outbox};

const MAX_QUERY_USERS: usize = 100;

fn gone() -> ApiError {
    ApiError::unauthorized("INVALID_TOKEN", "Token user not found")
}

/// `POST /api/presence/heartbeat`: the user is active now.
pub async fn heartbeat(state: &AppState, user: &AuthUser) -> ApiResult<()> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    presence::touch(&mut tx, user.app_id, &user.user_id)
        .await?
        .ok_or_else(gone)?;
    tx.commit().await?;
    Ok(())
}

/// `POST /api/presence/online|offline`: stores the state and announces it.
pub async fn set(state: &AppState, user: &AuthUser, online: bool) -> ApiResult<()> {
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let at = presence::set_online(&mut tx, app_id, &user.user_id, online)
        .await?
        .ok_or_else(gone)?;
    let recipients: Vec<String> = std::iter::once(user_channel(app_id, &user.user_id))
        .chain(
            presence::channels_of(&mut tx, app_id, &user.user_id)
                .await?
                .into_iter()
                .map(|channel| chat_channel(app_id, channel)),
        )
        .collect();
    let (kind, payload) = if online {
        (events::PRESENCE_ONLINE, json!({ "userId": user.user_id }))
    } else {
        (
            events::PRESENCE_OFFLINE,
            json!({ "userId": user.user_id, "lastSeen": at }),
        )
    };
    outbox::enqueue(&mut tx, app_id, kind, &recipients, &payload).await?;
    tx.commit().await?;
    Ok(())
}

/// Presence of up to 100 users, keyed by id; users who share no channel with the caller (or
/// do not exist) are absent, as upstream.
pub async fn query(
    state: &AppState,
    user: &AuthUser,
    ids: &[String],
) -> ApiResult<BTreeMap<String, PresenceRow>> {
    if ids.is_empty() || ids.len() > MAX_QUERY_USERS {
        return Err(ApiError::invalid(
            "userIds",
            format!("userIds must name 1 to {MAX_QUERY_USERS} users"),
        ));
    }
    for id in ids {
        validate_user_id("userIds", id)?;
    }
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let rows = presence::of_users(&mut tx, user.app_id, &user.user_id, ids).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
}

/// A channel's members split into online and offline (members only).
pub async fn channel(state: &AppState, user: &AuthUser, channel_id: Uuid) -> ApiResult<Vec<PresenceRow>> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    member(&mut tx, user, channel_id).await?;
    let rows = presence::of_channel(&mut tx, user.app_id, channel_id).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn member(conn: &mut sqlx::PgConnection, user: &AuthUser, channel_id: Uuid) -> ApiResult<()> {
    let row = visible(conn, user, channel_id).await?;
    if row.role.is_none() {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
    }
    Ok(())
}

/// A client connected to a channel now, from Centrifugo's presence.
#[derive(Debug, Clone)]
pub struct LiveClient {
    pub client_id: String,
    pub user_id: String,
    pub conn_info: Option<Value>,
}

/// Who is subscribed to the channel now, from Centrifugo (members only). Centrifugo being down
/// or unconfigured answers an empty list, as upstream.
pub async fn live(state: &AppState, user: &AuthUser, channel_id: Uuid) -> ApiResult<Vec<LiveClient>> {
    {
        let mut tx = begin_tenant(&state.pool, user.app_id).await?;
        member(&mut tx, user, channel_id).await?;
        tx.commit().await?;
    }
    let Some(centrifugo) = &state.centrifugo else {
        return Ok(Vec::new());
    };
    let presence = match centrifugo.presence(&chat_channel(user.app_id, channel_id)).await {
        Ok(presence) => presence,
        Err(err) => {
            tracing::warn!(%err, "centrifugo presence unavailable");
            return Ok(Vec::new());
        }
    };
    // Centrifugo's `user` is the token subject `{appId}:{userId}`; clients get the user id.
    let prefix = format!("{}:", user.app_id);
    let mut clients: Vec<LiveClient> = presence
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|info| {
            let subject = info.get("user")?.as_str()?;
            Some(LiveClient {
                client_id: info.get("client")?.as_str()?.to_owned(),
                user_id: subject.strip_prefix(&prefix).unwrap_or(subject).to_owned(),
                conn_info: info.get("conn_info").cloned(),
            })
        })
        .collect();
    clients.sort_by(|a, b| (&a.user_id, &a.client_id).cmp(&(&b.user_id, &b.client_id)));
    Ok(clients)
}
