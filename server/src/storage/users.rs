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

/// Grants or withdraws the app-admin role (moderation).
pub async fn set_admin(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    admin: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET is_admin = $3 WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(user_id)
        .bind(admin)
        .execute(conn)
        .await?;
    Ok(())
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

const USER_COLUMNS: &str = "id, name, image_url, custom_data, last_active_at, created_at, updated_at";

pub async fn get(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    let sql =
        format!("SELECT {USER_COLUMNS} FROM app_user WHERE app_id = $1 AND id = $2 AND deleted_at IS NULL");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// Users of the app, by id; `q` matches id or name (case-insensitive substring).
pub async fn list(
    conn: &mut PgConnection,
    app_id: Uuid,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM app_user
         WHERE app_id = $1 AND deleted_at IS NULL
           AND ($2::text IS NULL OR id ILIKE '%' || $2 || '%' OR name ILIKE '%' || $2 || '%')
         ORDER BY id LIMIT $3 OFFSET $4"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(q)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await
}

/// Updates the fields given (custom data merged).
pub async fn update(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    name: Option<&str>,
    image_url: Option<&str>,
    custom: Option<&Value>,
) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE app_user SET name = coalesce($3, name), image_url = coalesce($4, image_url),
                custom_data = custom_data || coalesce($5, '{{}}'::jsonb), updated_at = now()
         WHERE app_id = $1 AND id = $2 AND deleted_at IS NULL
         RETURNING {USER_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(user_id)
        .bind(name)
        .bind(image_url)
        .bind(custom)
        .fetch_optional(conn)
        .await
}

/// Soft delete: the user can no longer authenticate; messages stay.
pub async fn soft_delete(conn: &mut PgConnection, app_id: Uuid, user_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE app_user SET deleted_at = now(), tokens_valid_after = now(), updated_at = now()
         WHERE app_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(app_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn block(
    conn: &mut PgConnection,
    app_id: Uuid,
    blocker: &str,
    blocked: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_block (app_id, blocker_id, blocked_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(app_id)
    .bind(blocker)
    .bind(blocked)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn unblock(
    conn: &mut PgConnection,
    app_id: Uuid,
    blocker: &str,
    blocked: &str,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM user_block WHERE app_id = $1 AND blocker_id = $2 AND blocked_id = $3")
            .bind(app_id)
            .bind(blocker)
            .bind(blocked)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn blocked(
    conn: &mut PgConnection,
    app_id: Uuid,
    blocker: &str,
) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.name, u.image_url, u.custom_data, u.last_active_at, u.created_at, u.updated_at
         FROM user_block b JOIN app_user u ON u.app_id = b.app_id AND u.id = b.blocked_id
         WHERE b.app_id = $1 AND b.blocker_id = $2 ORDER BY b.created_at",
    )
    .bind(app_id)
    .bind(blocker)
    .fetch_all(conn)
    .await
}

/// True when either user blocked the other.
pub async fn blocked_between(
    conn: &mut PgConnection,
    app_id: Uuid,
    a: &str,
    b: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_block WHERE app_id = $1
                        AND ((blocker_id = $2 AND blocked_id = $3) OR (blocker_id = $3 AND blocked_id = $2)))",
    )
    .bind(app_id)
    .bind(a)
    .bind(b)
    .fetch_one(conn)
    .await
}
