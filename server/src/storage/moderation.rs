//! Message reports and the moderation actions on their authors (inside a tenant transaction).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// `(author, channel)` of a message of the app.
pub async fn message(
    conn: &mut PgConnection,
    app_id: Uuid,
    message_id: Uuid,
) -> Result<Option<(String, Uuid)>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, channel_id FROM message WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(message_id)
        .fetch_optional(conn)
        .await
}

#[derive(Debug, Clone, FromRow)]
pub struct NewReport {
    pub id: Uuid,
    pub message_id: Uuid,
    pub reason: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// Files a report; `None` when this reporter reported the message before.
pub async fn insert(
    conn: &mut PgConnection,
    app_id: Uuid,
    message_id: Uuid,
    reporter: &str,
    reason: &str,
    details: Option<&str>,
) -> Result<Option<NewReport>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO message_report (app_id, id, message_id, reporter_user_id, reason, details)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (app_id, message_id, reporter_user_id) DO NOTHING
         RETURNING id, message_id, reason, status, created_at",
    )
    .bind(app_id)
    .bind(Uuid::now_v7())
    .bind(message_id)
    .bind(reporter)
    .bind(reason)
    .bind(details)
    .fetch_optional(conn)
    .await
}

/// A report with the people and the message it concerns.
#[derive(Debug, Clone, FromRow)]
pub struct ReportRow {
    pub id: Uuid,
    pub message_id: Uuid,
    pub reason: String,
    pub details: Option<String>,
    pub status: String,
    pub reporter_user_id: String,
    pub reporter_name: Option<String>,
    pub reporter_image: Option<String>,
    pub message_text: Option<String>,
    pub message_author_id: String,
    pub message_author_name: Option<String>,
    pub message_author_image: Option<String>,
    pub channel_id: Uuid,
    pub channel_name: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub action_taken: Option<String>,
    pub admin_notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

const REPORT_SELECT: &str = "SELECT r.id, r.message_id, r.reason, r.details, r.status, r.reporter_user_id,
        reporter.name AS reporter_name, reporter.image_url AS reporter_image,
        m.text AS message_text, m.user_id AS message_author_id,
        author.name AS message_author_name, author.image_url AS message_author_image,
        m.channel_id, c.name AS channel_name,
        r.reviewed_by, r.reviewed_at, r.action_taken, r.admin_notes, r.created_at
    FROM message_report r
    JOIN message m ON m.app_id = r.app_id AND m.id = r.message_id
    JOIN channel c ON c.app_id = m.app_id AND c.id = m.channel_id
    LEFT JOIN app_user reporter ON reporter.app_id = r.app_id AND reporter.id = r.reporter_user_id
    LEFT JOIN app_user author ON author.app_id = m.app_id AND author.id = m.user_id";

/// Reports, newest first, optionally of one status; with the count of all that match.
pub async fn list(
    conn: &mut PgConnection,
    app_id: Uuid,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ReportRow>, i64), sqlx::Error> {
    let sql = format!(
        "{REPORT_SELECT} WHERE r.app_id = $1 AND ($2::text IS NULL OR r.status = $2)
         ORDER BY r.created_at DESC, r.id DESC LIMIT $3 OFFSET $4"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(status)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
    let total = sqlx::query_scalar(
        "SELECT count(*) FROM message_report WHERE app_id = $1 AND ($2::text IS NULL OR status = $2)",
    )
    .bind(app_id)
    .bind(status)
    .fetch_one(conn)
    .await?;
    Ok((rows, total))
}

pub async fn get(conn: &mut PgConnection, app_id: Uuid, id: Uuid) -> Result<Option<ReportRow>, sqlx::Error> {
    let sql = format!("{REPORT_SELECT} WHERE r.app_id = $1 AND r.id = $2");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Locks the report for its review: `(message, author, channel)`.
pub async fn lock(
    conn: &mut PgConnection,
    app_id: Uuid,
    id: Uuid,
) -> Result<Option<(Uuid, String, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.message_id, m.user_id, m.channel_id
         FROM message_report r JOIN message m ON m.app_id = r.app_id AND m.id = r.message_id
         WHERE r.app_id = $1 AND r.id = $2
         FOR UPDATE OF r",
    )
    .bind(app_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct Reviewed {
    pub id: Uuid,
    pub status: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub action_taken: Option<String>,
    pub admin_notes: Option<String>,
}

pub async fn review(
    conn: &mut PgConnection,
    app_id: Uuid,
    id: Uuid,
    status: &str,
    reviewer: &str,
    action: &str,
    notes: Option<&str>,
) -> Result<Reviewed, sqlx::Error> {
    sqlx::query_as(
        "UPDATE message_report SET status = $3, reviewed_by = $4, reviewed_at = now(),
                action_taken = $5, admin_notes = $6
         WHERE app_id = $1 AND id = $2
         RETURNING id, status, reviewed_by, reviewed_at, action_taken, admin_notes",
    )
    .bind(app_id)
    .bind(id)
    .bind(status)
    .bind(reviewer)
    .bind(action)
    .bind(notes)
    .fetch_one(conn)
    .await
}

/// Counts a warning in the user's custom data (`warnings`, a number; anything else restarts it).
pub async fn warn(conn: &mut PgConnection, app_id: Uuid, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE app_user SET custom_data = custom_data || jsonb_build_object('warnings',
             coalesce(CASE WHEN jsonb_typeof(custom_data->'warnings') = 'number'
                           THEN floor((custom_data->>'warnings')::numeric) END, 0) + 1),
             updated_at = now()
         WHERE app_id = $1 AND id = $2",
    )
    .bind(app_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the user banned (`custom_data.banned = true`, as upstream).
pub async fn ban(conn: &mut PgConnection, app_id: Uuid, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE app_user SET custom_data = custom_data || '{\"banned\": true}'::jsonb, updated_at = now()
         WHERE app_id = $1 AND id = $2",
    )
    .bind(app_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}
