//! Auth sessions and the per-request token check (inside a tenant transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

pub async fn insert(
    conn: &mut PgConnection,
    app_id: Uuid,
    session_id: Uuid,
    user_id: &str,
    refresh_jti: Uuid,
    mfa: bool,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth_session (app_id, id, user_id, refresh_jti, mfa, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(app_id)
    .bind(session_id)
    .bind(user_id)
    .bind(refresh_jti)
    .bind(mfa)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Outcome of presenting a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the session's current one; `next_jti` replaces it. Carries the session's MFA flag.
    Rotated { mfa: bool },
    /// The token was already used (or superseded): the session is now revoked.
    Replayed,
    /// No live session (unknown, revoked or expired).
    NoSession,
}

/// Swaps the session's refresh token `presented` for `next`, once. A second use of the same
/// token finds `refresh_jti` changed and revokes the session (stolen-token detection). Rows are
/// locked by the UPDATE, so two concurrent uses cannot both succeed.
pub async fn rotate_refresh(
    conn: &mut PgConnection,
    app_id: Uuid,
    session_id: Uuid,
    user_id: &str,
    presented: Uuid,
    next: Uuid,
) -> Result<Rotation, sqlx::Error> {
    let rotated: Option<bool> = sqlx::query_scalar(
        "UPDATE auth_session SET refresh_jti = $5, last_used_at = now()
         WHERE app_id = $1 AND id = $2 AND user_id = $3 AND refresh_jti = $4
           AND revoked_at IS NULL AND expires_at > now()
         RETURNING mfa",
    )
    .bind(app_id)
    .bind(session_id)
    .bind(user_id)
    .bind(presented)
    .bind(next)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(mfa) = rotated {
        return Ok(Rotation::Rotated { mfa });
    }
    let revoked = sqlx::query(
        "UPDATE auth_session SET revoked_at = now(), revoke_reason = 'refresh_replay'
         WHERE app_id = $1 AND id = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(app_id)
    .bind(session_id)
    .bind(user_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(if revoked > 0 {
        Rotation::Replayed
    } else {
        Rotation::NoSession
    })
}

/// What the access check needs about a token's user and session.
#[derive(Debug, Clone, FromRow)]
pub struct TokenSubject {
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub is_admin: bool,
    /// Whole seconds since the epoch (JWT `iat` has no finer grain).
    pub tokens_valid_after: Option<i64>,
    pub session_found: bool,
    pub session_live: bool,
    /// The rest of the profile, which a send renders (absent from [`token_subject`]).
    #[sqlx(default)]
    pub custom_data: Option<Value>,
    #[sqlx(default)]
    pub last_active_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn token_subject(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    session_id: Uuid,
) -> Result<Option<TokenSubject>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.name, u.image_url, u.is_admin,
                floor(extract(epoch FROM u.tokens_valid_after))::bigint AS tokens_valid_after,
                s.id IS NOT NULL AS session_found,
                coalesce(s.revoked_at IS NULL AND s.expires_at > now(), false) AS session_live
         FROM app_user u
         LEFT JOIN auth_session s ON s.app_id = u.app_id AND s.id = $3 AND s.user_id = u.id
         WHERE u.app_id = $1 AND u.id = $2 AND u.deleted_at IS NULL",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(conn)
    .await
}

/// [`token_subject`] with the user's profile, in one round trip outside any transaction: the
/// `chatsdk_token_profile` function (migration 0004) sets the tenant for its own statement
/// only (RLS applies).
pub async fn token_subject_once(
    pool: &sqlx::PgPool,
    app_id: Uuid,
    user_id: &str,
    session_id: Uuid,
) -> Result<Option<TokenSubject>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM chatsdk_token_profile($1, $2, $3)")
        .bind(app_id)
        .bind(user_id)
        .bind(session_id)
        .fetch_optional(pool)
        .await
}

/// Revokes every token of the user issued so far.
pub async fn revoke_user(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE app_user SET tokens_valid_after = now(), updated_at = now() WHERE app_id = $1 AND id = $2",
    )
    .bind(app_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE auth_session SET revoked_at = now(), revoke_reason = $3
         WHERE app_id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}
