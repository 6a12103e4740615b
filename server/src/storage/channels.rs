//! Channels and memberships (inside a tenant transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// A channel as seen by one user (membership columns are `None` for non-members).
#[derive(Debug, Clone, FromRow)]
pub struct ChannelRow {
    pub id: Uuid,
    pub cid: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub config: Value,
    pub created_by: Option<String>,
    pub member_count: i32,
    pub message_count: i64,
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub role: Option<String>,
    pub last_read_seq: Option<i64>,
    pub muted: Option<bool>,
    pub starred: Option<bool>,
}

const CHANNEL_COLUMNS: &str =
    "c.id, c.cid, c.type, c.name, c.image_url, c.config, c.created_by, c.member_count,
    c.message_count, c.last_seq, c.last_message_at, c.idempotency_key, c.created_at, c.updated_at,
    m.role, m.last_read_seq, m.muted, m.starred";

pub struct NewChannel<'a> {
    pub id: Uuid,
    pub cid: &'a str,
    pub kind: &'a str,
    pub name: Option<&'a str>,
    pub image_url: Option<&'a str>,
    pub config: &'a Value,
    pub created_by: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

/// Inserts the channel unless its `cid` or idempotency key already exists (then `false`).
pub async fn insert(conn: &mut PgConnection, app_id: Uuid, c: &NewChannel<'_>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO channel (app_id, id, cid, type, name, image_url, config, created_by, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT DO NOTHING",
    )
    .bind(app_id)
    .bind(c.id)
    .bind(c.cid)
    .bind(c.kind)
    .bind(c.name)
    .bind(c.image_url)
    .bind(c.config)
    .bind(c.created_by)
    .bind(c.idempotency_key)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Adds members with `role` (existing members keep theirs) and refreshes `member_count`.
/// Returns the user ids actually added.
pub async fn add_members(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    user_ids: &[String],
    role: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let added: Vec<String> = sqlx::query_scalar(
        "INSERT INTO channel_member (app_id, channel_id, user_id, role)
         SELECT $1, $2, u, $4 FROM unnest($3::text[]) AS u
         ON CONFLICT DO NOTHING
         RETURNING user_id",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(user_ids)
    .bind(role)
    .fetch_all(&mut *conn)
    .await?;
    if !added.is_empty() {
        sqlx::query(
            "UPDATE channel SET member_count = member_count + $3, updated_at = now()
             WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(channel_id)
        .bind(i32::try_from(added.len()).unwrap_or(i32::MAX))
        .execute(conn)
        .await?;
    }
    Ok(added)
}

pub async fn get(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    viewer: &str,
) -> Result<Option<ChannelRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CHANNEL_COLUMNS} FROM channel c
         LEFT JOIN channel_member m ON m.app_id = c.app_id AND m.channel_id = c.id AND m.user_id = $3
         WHERE c.app_id = $1 AND c.id = $2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(channel_id)
        .bind(viewer)
        .fetch_optional(conn)
        .await
}

pub async fn get_by_key(
    conn: &mut PgConnection,
    app_id: Uuid,
    cid: Option<&str>,
    idempotency_key: Option<&str>,
    viewer: &str,
) -> Result<Option<ChannelRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CHANNEL_COLUMNS} FROM channel c
         LEFT JOIN channel_member m ON m.app_id = c.app_id AND m.channel_id = c.id AND m.user_id = $4
         WHERE c.app_id = $1 AND (c.cid = $2 OR c.idempotency_key = $3)
         LIMIT 1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(cid)
        .bind(idempotency_key)
        .bind(viewer)
        .fetch_optional(conn)
        .await
}

/// Channels the user belongs to, plus public/team channels, most recently active first.
pub async fn list_for_user(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<ChannelRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CHANNEL_COLUMNS} FROM channel c
         LEFT JOIN channel_member m ON m.app_id = c.app_id AND m.channel_id = c.id AND m.user_id = $2
         WHERE c.app_id = $1
           AND (m.user_id IS NOT NULL OR c.type IN ('public', 'team'))
           AND ($3::text IS NULL OR c.type = $3)
         ORDER BY c.last_message_at DESC NULLS LAST, c.created_at DESC, c.id
         LIMIT $4 OFFSET $5"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(user_id)
        .bind(kind)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await
}

#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub channel_id: Uuid,
    pub user_id: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub custom_data: Option<Value>,
}

/// Members of the given channels, oldest first.
pub async fn members(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_ids: &[Uuid],
    limit: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.channel_id, m.user_id, m.role, m.joined_at, u.name, u.image_url, u.custom_data
         FROM channel_member m
         JOIN app_user u ON u.app_id = m.app_id AND u.id = m.user_id
         WHERE m.app_id = $1 AND m.channel_id = ANY($2)
         ORDER BY m.joined_at, m.user_id
         LIMIT $3",
    )
    .bind(app_id)
    .bind(channel_ids)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Sum of unread messages over the user's channels.
pub async fn total_unread(conn: &mut PgConnection, app_id: Uuid, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(greatest(c.last_seq - m.last_read_seq, 0)), 0)::bigint
         FROM channel_member m JOIN channel c ON c.app_id = m.app_id AND c.id = m.channel_id
         WHERE m.app_id = $1 AND m.user_id = $2",
    )
    .bind(app_id)
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// Updates name, image and config (merged) of a channel.
pub async fn update(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    name: Option<&str>,
    image_url: Option<&str>,
    config: Option<&Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE channel SET name = coalesce($3, name), image_url = coalesce($4, image_url),
                config = config || coalesce($5, '{}'::jsonb), updated_at = now()
         WHERE app_id = $1 AND id = $2",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(name)
    .bind(image_url)
    .bind(config)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, app_id: Uuid, channel_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM channel WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(channel_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn member_role(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT role FROM channel_member WHERE app_id = $1 AND channel_id = $2 AND user_id = $3",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

pub async fn set_role(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    user_id: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE channel_member SET role = $4 WHERE app_id = $1 AND channel_id = $2 AND user_id = $3")
        .bind(app_id)
        .bind(channel_id)
        .bind(user_id)
        .bind(role)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a member and refreshes `member_count`; false when not a member.
pub async fn remove_member(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let removed =
        sqlx::query("DELETE FROM channel_member WHERE app_id = $1 AND channel_id = $2 AND user_id = $3")
            .bind(app_id)
            .bind(channel_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
    if removed {
        sqlx::query(
            "UPDATE channel SET member_count = greatest(member_count - 1, 0), updated_at = now()
             WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(channel_id)
        .execute(conn)
        .await?;
    }
    Ok(removed)
}

/// Ids of all members (for per-user events).
pub async fn member_ids(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM channel_member WHERE app_id = $1 AND channel_id = $2 ORDER BY user_id",
    )
    .bind(app_id)
    .bind(channel_id)
    .fetch_all(conn)
    .await
}
