//! Polls and votes (inside a tenant transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct PollRow {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub question: String,
    /// `[{id, text}]`.
    pub options: Value,
    pub is_anonymous: bool,
    pub is_multi_choice: bool,
    pub ends_at: Option<DateTime<Utc>>,
    pub total_votes: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

const POLL_COLUMNS: &str = "id, channel_id, message_id, question, options, is_anonymous, is_multi_choice,
    ends_at, total_votes, created_by, created_at";

/// The author of a live message of the channel.
pub async fn message_author(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    message_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM message
         WHERE app_id = $1 AND channel_id = $2 AND id = $3 AND deleted_at IS NULL",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(message_id)
    .fetch_optional(conn)
    .await
}

pub struct NewPoll<'a> {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub question: &'a str,
    pub options: &'a Value,
    pub is_anonymous: bool,
    pub is_multi_choice: bool,
    pub ends_at: Option<DateTime<Utc>>,
    pub created_by: &'a str,
}

/// Stores the poll and links its message; `None` when the message has one already.
pub async fn insert(
    conn: &mut PgConnection,
    app_id: Uuid,
    p: &NewPoll<'_>,
) -> Result<Option<PollRow>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO poll (app_id, id, channel_id, message_id, question, options, is_anonymous,
                           is_multi_choice, ends_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (app_id, message_id) DO NOTHING
         RETURNING {POLL_COLUMNS}"
    );
    let row: Option<PollRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(p.id)
        .bind(p.channel_id)
        .bind(p.message_id)
        .bind(p.question)
        .bind(p.options)
        .bind(p.is_anonymous)
        .bind(p.is_multi_choice)
        .bind(p.ends_at)
        .bind(p.created_by)
        .fetch_optional(&mut *conn)
        .await?;
    if row.is_some() {
        sqlx::query("UPDATE message SET poll_id = $3 WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(p.message_id)
            .bind(p.id)
            .execute(conn)
            .await?;
    }
    Ok(row)
}

/// The poll, locked until the transaction ends when `lock` (votes serialize on it).
pub async fn get(
    conn: &mut PgConnection,
    app_id: Uuid,
    poll_id: Uuid,
    lock: bool,
) -> Result<Option<PollRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {POLL_COLUMNS} FROM poll WHERE app_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(poll_id)
        .fetch_optional(conn)
        .await
}

/// Replaces the user's votes with `option_ids` (empty: removes them) and refreshes the poll's
/// count of distinct voters. Returns `(votes removed, total voters)`.
pub async fn set_votes(
    conn: &mut PgConnection,
    app_id: Uuid,
    poll_id: Uuid,
    user_id: &str,
    option_ids: &[String],
) -> Result<(u64, i32), sqlx::Error> {
    let removed = sqlx::query("DELETE FROM poll_vote WHERE app_id = $1 AND poll_id = $2 AND user_id = $3")
        .bind(app_id)
        .bind(poll_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if !option_ids.is_empty() {
        sqlx::query(
            "INSERT INTO poll_vote (app_id, poll_id, user_id, option_id)
             SELECT $1, $2, $3, o FROM unnest($4::text[]) AS o",
        )
        .bind(app_id)
        .bind(poll_id)
        .bind(user_id)
        .bind(option_ids)
        .execute(&mut *conn)
        .await?;
    }
    let total: i32 = sqlx::query_scalar(
        "UPDATE poll SET total_votes = (
             SELECT count(DISTINCT user_id) FROM poll_vote WHERE app_id = $1 AND poll_id = $2)
         WHERE app_id = $1 AND id = $2 RETURNING total_votes",
    )
    .bind(app_id)
    .bind(poll_id)
    .fetch_one(conn)
    .await?;
    Ok((removed, total))
}

/// `(option id, votes)` of the poll.
pub async fn counts(
    conn: &mut PgConnection,
    app_id: Uuid,
    poll_id: Uuid,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT option_id, count(*) FROM poll_vote WHERE app_id = $1 AND poll_id = $2 GROUP BY option_id",
    )
    .bind(app_id)
    .bind(poll_id)
    .fetch_all(conn)
    .await
}

/// The options `user_id` voted for.
pub async fn votes_of(
    conn: &mut PgConnection,
    app_id: Uuid,
    poll_id: Uuid,
    user_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT option_id FROM poll_vote WHERE app_id = $1 AND poll_id = $2 AND user_id = $3 ORDER BY option_id",
    )
    .bind(app_id)
    .bind(poll_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct VoterRow {
    pub option_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub image_url: Option<String>,
}

/// Every vote with its voter, newest first.
pub async fn voters(
    conn: &mut PgConnection,
    app_id: Uuid,
    poll_id: Uuid,
) -> Result<Vec<VoterRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.option_id, v.user_id, u.name, u.image_url
         FROM poll_vote v JOIN app_user u ON u.app_id = v.app_id AND u.id = v.user_id
         WHERE v.app_id = $1 AND v.poll_id = $2
         ORDER BY v.voted_at DESC, v.user_id",
    )
    .bind(app_id)
    .bind(poll_id)
    .fetch_all(conn)
    .await
}
