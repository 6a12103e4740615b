//! The transactional outbox: events are written in the transaction of the change they announce.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Queues `{type, payload}` for the given Centrifugo channels.
pub async fn enqueue(
    conn: &mut PgConnection,
    app_id: Uuid,
    event_type: &str,
    channels: &[String],
    payload: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (app_id, event_type, channels, payload)
         VALUES ($1, $2, $3, jsonb_build_object('type', $2::text, 'payload', $4::jsonb))",
    )
    .bind(app_id)
    .bind(event_type)
    .bind(channels)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}
