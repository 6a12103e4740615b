//! The transactional outbox: events are written in the transaction of the change they announce.

use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// Queues `{type, payload}` for the given Centrifugo channels.
pub async fn enqueue(
    conn: &mut PgConnection,
    app_id: Uuid,
    event_type: &str,
    channels: &[String],
    payload: &(impl Serialize + Sync),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (app_id, event_type, channels, payload)
         VALUES ($1, $2, $3, jsonb_build_object('type', $2::text, 'payload', $4::jsonb))",
    )
    .bind(app_id)
    .bind(event_type)
    .bind(channels)
    .bind(Json(payload))
    .execute(conn)
    .await?;
    Ok(())
}

/// Any bigint unique to this use: the transaction-level advisory lock that lets one drainer of
/// the database publish at a time, so events leave in commit order even with several replicas.
const DRAINER_LOCK: i64 = 0x6368_6174_6f75_7462; // "chatoutb"

/// A queued event as the drainer reads it (across tenants).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub app_id: Uuid,
    pub id: i64,
    pub channels: Vec<String>,
    pub payload: Value,
    pub attempts: i32,
}

/// Begins a drainer transaction: sees every app's outbox rows (the `outbox_drainer` policy) and
/// holds the drainer lock. `None` when another drainer holds it.
pub async fn begin_drain(
    pool: &sqlx::PgPool,
) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>, sqlx::Error> {
    let mut tx = pool
        .begin_with("BEGIN; SELECT set_config('app.outbox_drainer', 'on', true)")
        .await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(DRAINER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        tx.rollback().await?;
        return Ok(None);
    }
    Ok(Some(tx))
}

/// The oldest queued events, locked until the transaction ends. `SKIP LOCKED` keeps a drainer
/// that lacks the advisory lock (none should) from publishing the same rows concurrently.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT app_id, id, channels, payload, attempts FROM outbox
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Removes delivered events (identity ids are unique across apps). Returns each removed row's
/// age in seconds: how long it waited from its insert (just before its commit) until now, right
/// after Centrifugo accepted it — the publish lag, on the database's clock only.
pub async fn remove(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<(i64, f64)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "DELETE FROM outbox WHERE id = ANY($1)
         RETURNING id, extract(epoch FROM clock_timestamp() - created_at)::float8",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Queued events across apps and the age in seconds of the oldest (0 when empty).
pub async fn depth(pool: &sqlx::PgPool) -> Result<(i64, f64), sqlx::Error> {
    let mut tx = pool
        .begin_with("BEGIN; SELECT set_config('app.outbox_drainer', 'on', true)")
        .await?;
    let row = sqlx::query_as(
        "SELECT count(*),
                coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8
         FROM outbox",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Counts a failed delivery attempt; the rows stay queued.
pub async fn record_attempt(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}
