//! Presence as upstream stores it: `app_user.last_active_at` and `custom_data.online`
//! (inside a tenant transaction). A user counts as online while flagged online and active in
//! the last [`ONLINE_WINDOW`].

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// Upstream's threshold: five minutes without a heartbeat and an online user reads offline.
pub const ONLINE_WINDOW: &str = "5 minutes";

/// Marks the user active now; returns that instant (`None` for an unknown user).
pub async fn touch(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE app_user SET last_active_at = now() WHERE app_id = $1 AND id = $2 RETURNING last_active_at",
    )
    .bind(app_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}

/// Sets the online flag (and activity); returns the instant.
pub async fn set_online(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    online: bool,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE app_user SET last_active_at = now(),
                custom_data = custom_data || jsonb_build_object('online', $3::boolean)
         WHERE app_id = $1 AND id = $2 RETURNING last_active_at",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(online)
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}

/// Channels the user belongs to.
pub async fn channels_of(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT channel_id FROM channel_member WHERE app_id = $1 AND user_id = $2 ORDER BY channel_id",
    )
    .bind(app_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct PresenceRow {
    pub id: String,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub online: bool,
}

fn online_expr() -> String {
    format!(
        "(coalesce(u.custom_data->>'online', 'false') = 'true'
          AND u.last_active_at > now() - interval '{ONLINE_WINDOW}') AS online"
    )
}

/// Presence of those of `ids` who share a channel with `viewer` (others stay unknown).
pub async fn of_users(
    conn: &mut PgConnection,
    app_id: Uuid,
    viewer: &str,
    ids: &[String],
) -> Result<Vec<PresenceRow>, sqlx::Error> {
    let sql = format!(
        "SELECT u.id, u.name, u.image_url, u.last_active_at, {}
         FROM app_user u
         WHERE u.app_id = $1 AND u.id = ANY($3) AND u.deleted_at IS NULL
           AND EXISTS (
               SELECT 1 FROM channel_member target
               JOIN channel_member caller ON caller.app_id = target.app_id
                    AND caller.channel_id = target.channel_id AND caller.user_id = $2
               WHERE target.app_id = u.app_id AND target.user_id = u.id)
         ORDER BY u.id",
        online_expr()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(viewer)
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Presence of a channel's members, most recently active first.
pub async fn of_channel(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
) -> Result<Vec<PresenceRow>, sqlx::Error> {
    let sql = format!(
        "SELECT u.id, u.name, u.image_url, u.last_active_at, {}
         FROM channel_member m JOIN app_user u ON u.app_id = m.app_id AND u.id = m.user_id
         WHERE m.app_id = $1 AND m.channel_id = $2
         ORDER BY u.last_active_at DESC NULLS LAST, u.id",
        online_expr()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(channel_id)
        .fetch_all(conn)
        .await
}
