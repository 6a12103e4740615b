//! Retention: moving old messages to `archived_messages`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::begin_tenant;

/// Moves up to `batch` of the app's messages created before `cutoff` in ONE statement: the
/// DELETE and the INSERT commit or fail together, so a row is never lost nor duplicated. There
/// is deliberately no ON CONFLICT: a clash aborts the batch instead of dropping a message.
pub async fn archive_batch(
    pool: &PgPool,
    app_id: Uuid,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let mut tx = begin_tenant(pool, app_id).await?;
    let moved = sqlx::query(
        "WITH doomed AS (
             SELECT id FROM message
             WHERE app_id = $1 AND created_at < $2
             ORDER BY created_at, id
             LIMIT $3
             FOR UPDATE SKIP LOCKED),
         moved AS (
             DELETE FROM message m USING doomed
             WHERE m.app_id = $1 AND m.id = doomed.id
             RETURNING m.*)
         INSERT INTO archived_messages (app_id, channel_id, id, seq, user_id, client_msg_id, text, attachments,
                                        parent_id, reply_to_id, reply_count, reaction_count, status, created_at,
                                        edited_at, deleted_at, pinned_at, pinned_by)
         SELECT app_id, channel_id, id, seq, user_id, client_msg_id, text, attachments, parent_id, reply_to_id,
                reply_count, reaction_count, status, created_at, edited_at, deleted_at, pinned_at, pinned_by
         FROM moved",
    )
    .bind(app_id)
    .bind(cutoff)
    .bind(batch)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(moved)
}

pub async fn app_ids(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM app ORDER BY id")
        .fetch_all(pool)
        .await
}

pub async fn record(pool: &PgPool, app_id: Uuid, metadata: &Value) -> Result<(), sqlx::Error> {
    let mut tx = begin_tenant(pool, app_id).await?;
    sqlx::query(
        "INSERT INTO audit_log (app_id, action, resource_type, metadata)
         VALUES ($1, 'retention.archive', 'message', $2)",
    )
    .bind(app_id)
    .bind(metadata)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
