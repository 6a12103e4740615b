//! The tenant registry: apps and their hashed API keys (no tenant policy: read before a tenant
//! is known). Per-app statistics read tenant tables, so they run in that app's context.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::begin_tenant;

#[derive(Debug, Clone, FromRow)]
pub struct AppRow {
    pub id: Uuid,
    pub name: String,
    pub settings: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, FromRow)]
pub struct AppStats {
    pub users: i64,
    pub channels: i64,
    pub messages: i64,
}

pub async fn insert_app(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    settings: &Value,
) -> Result<AppRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO app (id, name, settings) VALUES ($1, $2, $3)
         RETURNING id, name, settings, created_at, updated_at",
    )
    .bind(id)
    .bind(name)
    .bind(settings)
    .fetch_one(conn)
    .await
}

pub async fn insert_api_key(
    conn: &mut PgConnection,
    app_id: Uuid,
    name: &str,
    key_hash: &str,
) -> Result<ApiKeyRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO app_api_key (app_id, id, name, key_hash) VALUES ($1, $2, $3, $4)
         RETURNING id, name, created_at",
    )
    .bind(app_id)
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(key_hash)
    .fetch_one(conn)
    .await
}

/// Revokes every active key of the app; returns how many.
pub async fn revoke_api_keys(conn: &mut PgConnection, app_id: Uuid) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE app_api_key SET revoked_at = now() WHERE app_id = $1 AND revoked_at IS NULL")
            .bind(app_id)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// The app owning an active key with this hash.
pub async fn app_for_key_hash(pool: &PgPool, key_hash: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE app_api_key SET last_used_at = now()
         WHERE key_hash = $1 AND revoked_at IS NULL
         RETURNING app_id",
    )
    .bind(key_hash)
    .fetch_optional(pool)
    .await
}

pub async fn get_app(conn: &mut PgConnection, id: Uuid) -> Result<Option<AppRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, settings, created_at, updated_at FROM app WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn list_apps(pool: &PgPool, limit: i64, offset: i64) -> Result<(Vec<AppRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(
        "SELECT id, name, settings, created_at, updated_at FROM app
         ORDER BY created_at DESC, id LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM app")
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// Renames and/or merges settings (`settings || patch`).
pub async fn update_app(
    pool: &PgPool,
    id: Uuid,
    name: Option<&str>,
    settings_patch: Option<&Value>,
) -> Result<Option<AppRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE app SET name = coalesce($2, name),
                        settings = CASE WHEN $3::jsonb IS NULL THEN settings ELSE settings || $3::jsonb END,
                        updated_at = now()
         WHERE id = $1
         RETURNING id, name, settings, created_at, updated_at",
    )
    .bind(id)
    .bind(name)
    .bind(settings_patch)
    .fetch_optional(pool)
    .await
}

pub async fn delete_app(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM app WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// Counts of the app's tenant rows, read inside its own tenant context.
pub async fn stats(pool: &PgPool, app_id: Uuid) -> Result<AppStats, sqlx::Error> {
    let mut tx = begin_tenant(pool, app_id).await?;
    let stats = sqlx::query_as(
        "SELECT (SELECT count(*) FROM app_user WHERE app_id = $1) AS users,
                (SELECT count(*) FROM channel WHERE app_id = $1) AS channels,
                (SELECT count(*) FROM message WHERE app_id = $1) AS messages",
    )
    .bind(app_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(stats)
}
