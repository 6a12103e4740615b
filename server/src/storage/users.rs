//! `app_user` rows (inside a tenant transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub custom_data: Value,
    pub last_active_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates the user or refreshes the fields given (custom data is merged).
pub async fn upsert(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    name: Option<&str>,
    image_url: Option<&str>,
    custom: &Value,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO app_user (app_id, id, name, image_url, custom_data, last_active_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (app_id, id) DO UPDATE SET
             name = coalesce(EXCLUDED.name, app_user.name),
             image_url = coalesce(EXCLUDED.image_url, app_user.image_url),
             custom_data = app_user.custom_data || EXCLUDED.custom_data,
             deleted_at = NULL,
             last_active_at = now(),
             updated_at = now()
         RETURNING id, name, image_url, custom_data, last_active_at, created_at, updated_at",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(name)
    .bind(image_url)
    .bind(custom)
    .fetch_one(conn)
    .await
}

/// Which of `ids` exist (and are not deleted) in the app.
pub async fn existing_ids(
    conn: &mut PgConnection,
    app_id: Uuid,
    ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM app_user WHERE app_id = $1 AND id = ANY($2) AND deleted_at IS NULL")
        .bind(app_id)
        .bind(ids)
        .fetch_all(conn)
        .await
}
