//! The token broker's tables: the registry (clients, credentials, the service-JWT replay
//! store; no tenant policy, like `app_api_key`) and per-app state (scopes, membership
//! snapshots, audit; inside a tenant transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct ClientRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_client(
    pool: &PgPool,
    id: Uuid,
    slug: &str,
    name: &str,
) -> Result<ClientRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO broker_client (id, slug, name) VALUES ($1, $2, $3)
         RETURNING id, slug, name, status, created_at",
    )
    .bind(id)
    .bind(slug)
    .bind(name)
    .fetch_one(pool)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct CredentialRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub kid: String,
    pub status: String,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const CREDENTIAL_COLUMNS: &str = "id, client_id, kid, status, not_before, expires_at, created_at";

pub struct NewCredential<'a> {
    pub id: Uuid,
    pub client_id: Uuid,
    pub kid: &'a str,
    pub public_key_jwk: &'a Value,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert_credential(pool: &PgPool, c: &NewCredential<'_>) -> Result<CredentialRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO broker_credential (id, client_id, kid, public_key_jwk, not_before, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CREDENTIAL_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(c.id)
        .bind(c.client_id)
        .bind(c.kid)
        .bind(c.public_key_jwk)
        .bind(c.not_before)
        .bind(c.expires_at)
        .fetch_one(pool)
        .await
}

pub async fn set_credential_status(
    pool: &PgPool,
    id: Uuid,
    status: &str,
) -> Result<Option<CredentialRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE broker_credential SET status = $2, updated_at = now() WHERE id = $1
         RETURNING {CREDENTIAL_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(status)
        .fetch_optional(pool)
        .await
}

/// A usable credential with its client, found by the service JWT's `kid`.
#[derive(Debug, Clone, FromRow)]
pub struct Verifier {
    pub client_id: Uuid,
    pub client_slug: String,
    pub credential_id: Uuid,
    pub kid: String,
    pub public_key_jwk: Value,
}

pub async fn verifier_for_kid(pool: &PgPool, kid: &str) -> Result<Option<Verifier>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id AS client_id, c.slug AS client_slug, k.id AS credential_id, k.kid, k.public_key_jwk
         FROM broker_credential k JOIN broker_client c ON c.id = k.client_id
         WHERE k.kid = $1 AND k.status IN ('active', 'rotating') AND c.status = 'active'
           AND (k.not_before IS NULL OR k.not_before <= now())
           AND (k.expires_at IS NULL OR k.expires_at > now())",
    )
    .bind(kid)
    .fetch_optional(pool)
    .await
}

/// Records a service JWT's id; false when it was seen before (a replay). Ids of tokens that
/// expired (beyond the clock-skew leeway, so no valid token can carry them) are forgotten in
/// the same statement, which keeps the store bounded.
pub async fn record_jti(
    pool: &PgPool,
    credential_id: Uuid,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let fresh: Option<String> = sqlx::query_scalar(
        "WITH gc AS (
             DELETE FROM broker_jwt_replay
             WHERE credential_id = $1 AND expires_at < now() - interval '1 minute'),
         used AS (UPDATE broker_credential SET last_used_at = now() WHERE id = $1)
         INSERT INTO broker_jwt_replay (credential_id, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING jti",
    )
    .bind(credential_id)
    .bind(jti)
    .bind(expires_at)
    .fetch_optional(pool)
    .await?;
    Ok(fresh.is_some())
}

/// A credential's rights in one app.
#[derive(Debug, Clone, FromRow)]
pub struct ScopeRow {
    pub app_id: Uuid,
    pub credential_id: Uuid,
    pub status: String,
    pub allowed_external_tenant_ids: Vec<String>,
    pub allowed_user_id_prefixes: Vec<String>,
    pub allowed_channel_id_prefixes: Vec<String>,
    pub max_membership_fanout: i32,
    pub allowed_origins: Vec<String>,
    pub max_token_ttl_seconds: i32,
    pub default_scopes: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

const SCOPE_COLUMNS: &str = "app_id, credential_id, status, allowed_external_tenant_ids,
    allowed_user_id_prefixes, allowed_channel_id_prefixes, max_membership_fanout, allowed_origins,
    max_token_ttl_seconds, default_scopes, allowed_scopes, updated_at";

pub async fn active_scope(
    conn: &mut PgConnection,
    app_id: Uuid,
    credential_id: Uuid,
) -> Result<Option<ScopeRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {SCOPE_COLUMNS} FROM broker_app_scope
         WHERE app_id = $1 AND credential_id = $2 AND status = 'active'"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(credential_id)
        .fetch_optional(conn)
        .await
}

/// `ScopeRow` without the keys and timestamps: what the platform admin sets.
#[derive(Debug, Clone)]
pub struct ScopeGrant {
    pub status: String,
    pub allowed_external_tenant_ids: Vec<String>,
    pub allowed_user_id_prefixes: Vec<String>,
    pub allowed_channel_id_prefixes: Vec<String>,
    pub max_membership_fanout: i32,
    pub allowed_origins: Vec<String>,
    pub max_token_ttl_seconds: i32,
    pub default_scopes: Vec<String>,
    pub allowed_scopes: Vec<String>,
}

pub async fn put_scope(
    conn: &mut PgConnection,
    app_id: Uuid,
    credential_id: Uuid,
    g: &ScopeGrant,
) -> Result<ScopeRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO broker_app_scope (app_id, credential_id, status, allowed_external_tenant_ids,
             allowed_user_id_prefixes, allowed_channel_id_prefixes, max_membership_fanout,
             allowed_origins, max_token_ttl_seconds, default_scopes, allowed_scopes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (app_id, credential_id) DO UPDATE SET
             status = EXCLUDED.status,
             allowed_external_tenant_ids = EXCLUDED.allowed_external_tenant_ids,
             allowed_user_id_prefixes = EXCLUDED.allowed_user_id_prefixes,
             allowed_channel_id_prefixes = EXCLUDED.allowed_channel_id_prefixes,
             max_membership_fanout = EXCLUDED.max_membership_fanout,
             allowed_origins = EXCLUDED.allowed_origins,
             max_token_ttl_seconds = EXCLUDED.max_token_ttl_seconds,
             default_scopes = EXCLUDED.default_scopes,
             allowed_scopes = EXCLUDED.allowed_scopes,
             updated_at = now()
         RETURNING {SCOPE_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(credential_id)
        .bind(&g.status)
        .bind(&g.allowed_external_tenant_ids)
        .bind(&g.allowed_user_id_prefixes)
        .bind(&g.allowed_channel_id_prefixes)
        .bind(g.max_membership_fanout)
        .bind(&g.allowed_origins)
        .bind(g.max_token_ttl_seconds)
        .bind(&g.default_scopes)
        .bind(&g.allowed_scopes)
        .fetch_one(conn)
        .await
}

#[derive(Debug, Clone, FromRow)]
pub struct MembershipState {
    pub external_tenant_id: String,
    pub version: String,
    pub revision: i64,
    pub state_hash: String,
    pub fresh_until: DateTime<Utc>,
    pub status: String,
}

const STATE_COLUMNS: &str = "external_tenant_id, version, revision, state_hash, fresh_until, status";

/// The user's membership state, locked until the transaction ends when `lock`.
pub async fn membership_state(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    lock: bool,
) -> Result<Option<MembershipState>, sqlx::Error> {
    let sql = format!(
        "SELECT {STATE_COLUMNS} FROM broker_membership_state WHERE app_id = $1 AND user_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(app_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

pub async fn put_membership_state(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    state: &MembershipState,
    credential_id: Uuid,
    metadata: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO broker_membership_state (app_id, user_id, external_tenant_id, version, revision,
             state_hash, fresh_until, status, synced_by_credential_id, tombstoned_at, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                 CASE WHEN $8 = 'active' THEN NULL ELSE now() END, $10)
         ON CONFLICT (app_id, user_id) DO UPDATE SET
             external_tenant_id = EXCLUDED.external_tenant_id, version = EXCLUDED.version,
             revision = EXCLUDED.revision, state_hash = EXCLUDED.state_hash,
             fresh_until = EXCLUDED.fresh_until, status = EXCLUDED.status,
             synced_by_credential_id = EXCLUDED.synced_by_credential_id,
             tombstoned_at = CASE WHEN EXCLUDED.status = 'active' THEN NULL
                                  ELSE coalesce(broker_membership_state.tombstoned_at, now()) END,
             metadata = EXCLUDED.metadata, updated_at = now()",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(&state.external_tenant_id)
    .bind(&state.version)
    .bind(state.revision)
    .bind(&state.state_hash)
    .bind(state.fresh_until)
    .bind(&state.status)
    .bind(credential_id)
    .bind(metadata)
    .execute(conn)
    .await?;
    Ok(())
}

/// The broker's user upsert: the profile fields given, custom data merged; a soft-deleted
/// user stays deleted (the broker syncs memberships, it does not resurrect accounts).
pub async fn upsert_user(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    name: Option<&str>,
    image_url: Option<&str>,
    custom: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO app_user (app_id, id, name, image_url, custom_data, last_active_at)
         VALUES ($1, $2, coalesce($3, $2), $4, $5, now())
         ON CONFLICT (app_id, id) DO UPDATE SET
             name = coalesce($3, app_user.name, $2),
             image_url = coalesce($4, app_user.image_url),
             custom_data = app_user.custom_data || $5,
             updated_at = now()",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(name)
    .bind(image_url)
    .bind(custom)
    .execute(conn)
    .await?;
    Ok(())
}

/// `(channel id, cid)` of the user's current memberships.
pub async fn memberships(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id, c.cid FROM channel_member m JOIN channel c ON c.app_id = m.app_id AND c.id = m.channel_id
         WHERE m.app_id = $1 AND m.user_id = $2 ORDER BY c.id",
    )
    .bind(app_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// `(channel id, cid)` of the channels with these cids.
pub async fn channels_by_cid(
    conn: &mut PgConnection,
    app_id: Uuid,
    cids: &[String],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, cid FROM channel WHERE app_id = $1 AND cid = ANY($2) ORDER BY id")
        .bind(app_id)
        .bind(cids)
        .fetch_all(conn)
        .await
}

/// Makes the user's memberships exactly `(channel, role)` (roles of kept channels follow the
/// snapshot) and recounts the members of every channel touched. Channels are locked in id
/// order, as every other writer of `member_count` does one channel at a time.
pub async fn apply_snapshot(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    desired: &[(Uuid, String)],
    touched: &[Uuid],
) -> Result<(), sqlx::Error> {
    let (channels, roles): (Vec<Uuid>, Vec<String>) = desired.iter().cloned().unzip();
    sqlx::query("SELECT 1 FROM channel WHERE app_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE")
        .bind(app_id)
        .bind(touched)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO channel_member (app_id, channel_id, user_id, role)
         SELECT $1, c, $3, r FROM unnest($2::uuid[], $4::text[]) AS s(c, r)
         ON CONFLICT (app_id, channel_id, user_id) DO UPDATE SET role = EXCLUDED.role",
    )
    .bind(app_id)
    .bind(&channels)
    .bind(user_id)
    .bind(&roles)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM channel_member WHERE app_id = $1 AND user_id = $2 AND NOT (channel_id = ANY($3))",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(&channels)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE channel c SET member_count = (
             SELECT count(*) FROM channel_member m WHERE m.app_id = c.app_id AND m.channel_id = c.id),
             updated_at = now()
         WHERE c.app_id = $1 AND c.id = ANY($2)",
    )
    .bind(app_id)
    .bind(touched)
    .execute(conn)
    .await?;
    Ok(())
}

/// A session opened by a mint (its refresh id is never handed out).
pub struct BrokerSession<'a> {
    pub id: Uuid,
    pub user_id: &'a str,
    pub expires_at: DateTime<Utc>,
    pub credential_id: Uuid,
    pub external_tenant_id: &'a str,
    pub external_user_id: &'a str,
    pub external_session_hash: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub membership_version: &'a str,
    pub scopes: &'a [String],
}

pub async fn insert_session(
    conn: &mut PgConnection,
    app_id: Uuid,
    s: &BrokerSession<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth_session (app_id, id, user_id, refresh_jti, expires_at, broker_credential_id,
             external_tenant_id, external_user_id, external_session_hash, device_id,
             membership_version, scopes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(app_id)
    .bind(s.id)
    .bind(s.user_id)
    .bind(Uuid::new_v4())
    .bind(s.expires_at)
    .bind(s.credential_id)
    .bind(s.external_tenant_id)
    .bind(s.external_user_id)
    .bind(s.external_session_hash)
    .bind(s.device_id)
    .bind(s.membership_version)
    .bind(s.scopes)
    .execute(conn)
    .await?;
    Ok(())
}

/// One audit row (never a token).
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub client_id: Option<Uuid>,
    pub credential_id: Option<Uuid>,
    pub credential_kid: Option<String>,
    pub operation: &'static str,
    pub user_id: Option<String>,
    pub external_tenant_id: Option<String>,
    pub requested_scopes: Option<Vec<String>>,
    pub granted_scopes: Option<Vec<String>>,
    pub token_jti: Option<String>,
    pub session_id: Option<Uuid>,
    pub denial_reason: Option<&'static str>,
}

/// Appends an audit row when the app exists (a request naming an unknown app has no tenant to
/// record it under; the caller logs it instead). Returns whether a row was written.
pub async fn audit(conn: &mut PgConnection, app_id: Uuid, e: &AuditEntry) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "INSERT INTO broker_mint_audit (app_id, client_id, credential_id, credential_kid, operation,
             user_id, external_tenant_id, requested_scopes, granted_scopes, token_jti, session_id,
             status, denial_reason)
         SELECT $1, $2, $3, left($4, 255), $5, left($6, 255), left($7, 255), $8, $9, left($10, 255),
                $11, CASE WHEN $12::text IS NULL THEN 'success' ELSE 'denied' END, $12
         WHERE EXISTS (SELECT 1 FROM app WHERE id = $1)",
    )
    .bind(app_id)
    .bind(e.client_id)
    .bind(e.credential_id)
    .bind(&e.credential_kid)
    .bind(e.operation)
    .bind(&e.user_id)
    .bind(&e.external_tenant_id)
    .bind(&e.requested_scopes)
    .bind(&e.granted_scopes)
    .bind(&e.token_jti)
    .bind(e.session_id)
    .bind(e.denial_reason)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(written == 1)
}
