//! Device tokens for mobile push and the user's notification preferences (inside a tenant
//! transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

pub struct NewDevice<'a> {
    pub token: &'a str,
    pub platform: &'a str,
    pub device_id: Option<&'a str>,
    pub device_name: Option<&'a str>,
}

/// Registers the token for the user; a token another user registered before moves to this one.
pub async fn upsert(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    d: &NewDevice<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO device_token (app_id, id, user_id, token, platform, device_id, device_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (app_id, token) DO UPDATE SET
             user_id = EXCLUDED.user_id, platform = EXCLUDED.platform,
             device_id = EXCLUDED.device_id, device_name = EXCLUDED.device_name,
             last_active_at = now()",
    )
    .bind(app_id)
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(d.token)
    .bind(d.platform)
    .bind(d.device_id)
    .bind(d.device_name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes one of the user's tokens; false when the user has no such token.
pub async fn delete(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    token: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM device_token WHERE app_id = $1 AND user_id = $2 AND token = $3")
            .bind(app_id)
            .bind(user_id)
            .bind(token)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

#[derive(Debug, Clone, FromRow)]
pub struct DeviceRow {
    pub id: Uuid,
    pub platform: String,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub last_active_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// The user's devices, most recently active first (never the tokens themselves).
pub async fn list(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
) -> Result<Vec<DeviceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, platform, device_id, device_name, last_active_at, created_at FROM device_token
         WHERE app_id = $1 AND user_id = $2 ORDER BY last_active_at DESC, id",
    )
    .bind(app_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// The stored preferences (`custom_data.notificationPrefs`, upstream's place).
pub async fn preferences(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT custom_data->'notificationPrefs' FROM app_user WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
}

/// Merges `patch` into the stored preferences; returns them.
pub async fn merge_preferences(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    patch: &Value,
) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE app_user SET custom_data = custom_data || jsonb_build_object('notificationPrefs',
             CASE WHEN jsonb_typeof(custom_data->'notificationPrefs') = 'object'
                  THEN custom_data->'notificationPrefs' ELSE '{}'::jsonb END || $3),
             updated_at = now()
         WHERE app_id = $1 AND id = $2
         RETURNING custom_data->'notificationPrefs'",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(patch)
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}
