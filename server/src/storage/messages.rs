//! Messages and their per-channel sequence (inside a tenant transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// A message with its author's profile.
#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub seq: i64,
    pub user_id: String,
    pub client_msg_id: Option<String>,
    pub text: Option<String>,
    pub attachments: Value,
    pub parent_id: Option<Uuid>,
    pub reply_to_id: Option<Uuid>,
    pub reply_count: i32,
    pub reaction_count: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub user_name: Option<String>,
    pub user_image: Option<String>,
    pub user_custom: Option<Value>,
    pub user_last_active_at: Option<DateTime<Utc>>,
    pub user_created_at: Option<DateTime<Utc>>,
    pub user_updated_at: Option<DateTime<Utc>>,
}

/// Takes the channel's next `seq`. The UPDATE locks the channel row until the transaction
/// ends, so concurrent senders queue here and a rollback gives the number back: gap-free.
/// `None` when the channel does not exist in this app.
pub async fn next_seq(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE channel SET last_seq = last_seq + 1, message_count = message_count + 1,
                            last_message_at = now()
         WHERE app_id = $1 AND id = $2
         RETURNING last_seq",
    )
    .bind(app_id)
    .bind(channel_id)
    .fetch_optional(conn)
    .await
}

/// The message already sent with this client id, as `(id, seq)`.
pub async fn by_client_msg_id(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    client_msg_id: &str,
) -> Result<Option<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT id, seq FROM message WHERE app_id = $1 AND channel_id = $2 AND client_msg_id = $3")
        .bind(app_id)
        .bind(channel_id)
        .bind(client_msg_id)
        .fetch_optional(conn)
        .await
}

pub struct NewMessage<'a> {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub seq: i64,
    pub user_id: &'a str,
    pub client_msg_id: Option<&'a str>,
    pub text: &'a str,
    pub attachments: &'a Value,
    pub parent_id: Option<Uuid>,
    pub reply_to_id: Option<Uuid>,
}

pub async fn insert(
    conn: &mut PgConnection,
    app_id: Uuid,
    m: &NewMessage<'_>,
) -> Result<MessageRow, sqlx::Error> {
    sqlx::query_as(
        "WITH ins AS (
             INSERT INTO message (app_id, channel_id, id, seq, user_id, client_msg_id, text, attachments,
                                  parent_id, reply_to_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING *)
         SELECT ins.id, ins.channel_id, ins.seq, ins.user_id, ins.client_msg_id, ins.text, ins.attachments,
                ins.parent_id, ins.reply_to_id, ins.reply_count, ins.reaction_count, ins.status,
                ins.created_at, ins.edited_at, ins.deleted_at,
                u.name AS user_name, u.image_url AS user_image, u.custom_data AS user_custom,
                u.last_active_at AS user_last_active_at, u.created_at AS user_created_at,
                u.updated_at AS user_updated_at
         FROM ins LEFT JOIN app_user u ON u.app_id = ins.app_id AND u.id = ins.user_id",
    )
    .bind(app_id)
    .bind(m.channel_id)
    .bind(m.id)
    .bind(m.seq)
    .bind(m.user_id)
    .bind(m.client_msg_id)
    .bind(m.text)
    .bind(m.attachments)
    .bind(m.parent_id)
    .bind(m.reply_to_id)
    .fetch_one(conn)
    .await
}

/// True when `parent_id` is a top-level message of the channel.
pub async fn is_thread_root(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM message
                        WHERE app_id = $1 AND channel_id = $2 AND id = $3 AND parent_id IS NULL)",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(id)
    .fetch_one(conn)
    .await
}

pub async fn bump_reply_count(conn: &mut PgConnection, app_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE message SET reply_count = reply_count + 1 WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves the member's read mark forward (never back).
pub async fn mark_read(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    user_id: &str,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE channel_member SET last_read_seq = greatest(last_read_seq, $4)
         WHERE app_id = $1 AND channel_id = $2 AND user_id = $3",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(user_id)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn seq_of(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM message WHERE app_id = $1 AND channel_id = $2 AND id = $3")
        .bind(app_id)
        .bind(channel_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Top-level messages with `seq > after`, ascending, at most `limit`.
pub async fn page_forward(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id, m.channel_id, m.seq, m.user_id, m.client_msg_id, m.text, m.attachments, m.parent_id,
                m.reply_to_id, m.reply_count, m.reaction_count, m.status, m.created_at, m.edited_at,
                m.deleted_at, u.name AS user_name, u.image_url AS user_image, u.custom_data AS user_custom,
                u.last_active_at AS user_last_active_at, u.created_at AS user_created_at,
                u.updated_at AS user_updated_at
         FROM message m LEFT JOIN app_user u ON u.app_id = m.app_id AND u.id = m.user_id
         WHERE m.app_id = $1 AND m.channel_id = $2 AND m.seq > $3 AND m.parent_id IS NULL
         ORDER BY m.seq ASC
         LIMIT $4",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Top-level messages with `seq < before`, newest first, at most `limit`.
pub async fn page_backward(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    before: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id, m.channel_id, m.seq, m.user_id, m.client_msg_id, m.text, m.attachments, m.parent_id,
                m.reply_to_id, m.reply_count, m.reaction_count, m.status, m.created_at, m.edited_at,
                m.deleted_at, u.name AS user_name, u.image_url AS user_image, u.custom_data AS user_custom,
                u.last_active_at AS user_last_active_at, u.created_at AS user_created_at,
                u.updated_at AS user_updated_at
         FROM message m LEFT JOIN app_user u ON u.app_id = m.app_id AND u.id = m.user_id
         WHERE m.app_id = $1 AND m.channel_id = $2 AND m.seq < $3 AND m.parent_id IS NULL
         ORDER BY m.seq DESC
         LIMIT $4",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}
