//! Browser Web Push subscriptions (inside a tenant transaction).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

pub struct NewSubscription<'a> {
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
    pub user_agent: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn upsert(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    s: &NewSubscription<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO web_push_subscription (app_id, user_id, endpoint, p256dh, auth, user_agent, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (app_id, user_id, endpoint) DO UPDATE SET
             p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, user_agent = EXCLUDED.user_agent,
             expires_at = EXCLUDED.expires_at, updated_at = now()",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(s.endpoint)
    .bind(s.p256dh)
    .bind(s.auth)
    .bind(s.user_agent)
    .bind(s.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    endpoint: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM web_push_subscription WHERE app_id = $1 AND user_id = $2 AND endpoint = $3")
            .bind(app_id)
            .bind(user_id)
            .bind(endpoint)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

#[derive(Debug, Clone, FromRow)]
pub struct SubscriptionRow {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// The user's unexpired subscriptions.
pub async fn live(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT endpoint, p256dh, auth FROM web_push_subscription
         WHERE app_id = $1 AND user_id = $2 AND (expires_at IS NULL OR expires_at > now())
         ORDER BY created_at, endpoint",
    )
    .bind(app_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}
