//! The server-to-server token broker (upstream's `/api/server`).
//!
//! An app server holds an RS256 key pair whose public half the platform admin registered (a
//! broker client, its credential, and the credential's scope in each app). For every call it
//! signs a short service JWT (`kid` names the key, `iss` the client's slug, `aud`
//! `CHATSDK_SERVER_MINT_AUDIENCE`, a single-use `jti`, at most
//! `CHATSDK_SERVER_MINT_JWT_MAX_LIFETIME_SECONDS` between `iat` and `exp`). With it, it syncs a
//! user's membership snapshot (`PUT …/memberships/:userId`: profile, channel memberships,
//! account status) and mints that user's scoped tokens (`POST …/tokens/mint`), which only work
//! while the snapshot is active and fresh. Every decision is written to `broker_mint_audit`.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::auth::validate_user_id;
use crate::domain::realtime::{chat_channel, events, user_channel};
use crate::domain::roles::Role;
use crate::domain::scopes::BROKER_SCOPES;
use crate::domain::tokens::{BrokerGrant, MintedTokens, now_secs, subject};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::broker::{
    self, AuditEntry, BrokerSession, ClientRow, CredentialRow, MembershipState, NewCredential, ScopeGrant,
    ScopeRow, Verifier,
};
use crate::storage::{begin_tenant, is_unique_violation, outbox, sessions};

/// Clock skew tolerated between the app server and us.
const LEEWAY_SECS: u64 = 5;
/// Smallest accepted RSA modulus: 2048 bits.
const MIN_RSA_MODULUS_BYTES: usize = 256;
const MAX_MEMBERSHIPS: usize = 5000;
const MAX_METADATA_BYTES: usize = 4096;
/// Scopes a credential may hand out and which it hands out unasked, when the admin gives none.
const DEFAULT_SCOPES: &[&str] = &["chat:read", "chat:write"];

pub const MINT: &str = "mint";
pub const MEMBERSHIP_SYNC: &str = "membership_sync";

fn disabled() -> ApiError {
    ApiError::NotFound {
        code: "SERVER_MINT_DISABLED",
        message: "The server token broker is disabled (CHATSDK_ENABLE_SERVER_MINT)".into(),
    }
}

/// A checked service call: which credential signed it and what it may do in the app.
#[derive(Debug, Clone)]
pub struct Caller {
    pub verifier: Verifier,
    pub jti: String,
    pub scope: ScopeRow,
}

impl Caller {
    fn audit(&self, operation: &'static str) -> AuditEntry {
        AuditEntry {
            client_id: Some(self.verifier.client_id),
            credential_id: Some(self.verifier.credential_id),
            credential_kid: Some(self.verifier.kid.clone()),
            operation,
            token_jti: Some(self.jti.clone()),
            ..AuditEntry::default()
        }
    }
}

/// Records a refusal (when the app exists) and returns the error to answer.
async fn deny(
    state: &AppState,
    app_id: Uuid,
    mut entry: AuditEntry,
    reason: &'static str,
    error: ApiError,
) -> ApiError {
    entry.denial_reason = Some(reason);
    if let Err(err) = write_audit(state, app_id, &entry).await {
        tracing::error!(%err, %app_id, reason, "broker audit row not written");
    }
    tracing::warn!(%app_id, reason, operation = entry.operation, "broker request denied");
    error
}

async fn write_audit(state: &AppState, app_id: Uuid, entry: &AuditEntry) -> Result<(), sqlx::Error> {
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    broker::audit(&mut tx, app_id, entry).await?;
    tx.commit().await
}

fn invalid_token(message: &'static str) -> ApiError {
    ApiError::unauthorized("BROKER_AUTH_INVALID", message)
}

fn scope_denied(code: &'static str, message: &'static str) -> ApiError {
    ApiError::forbidden(code, message)
}

#[derive(Debug, Deserialize)]
struct ServiceClaims {
    jti: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
}

/// Checks the service JWT of a call for `app_id`: a known, usable key (`kid`), its signature,
/// issuer (the client's slug), audience and lifetime, a `jti` never seen before, an active
/// scope of the credential in this app and, when the scope lists origins, the caller's
/// `Origin`.
pub async fn authenticate(
    state: &AppState,
    app_id: Uuid,
    bearer: Option<&str>,
    origin: Option<&str>,
    operation: &'static str,
) -> ApiResult<Caller> {
    if !state.config.broker.enabled {
        return Err(disabled());
    }
    let entry = AuditEntry {
        operation,
        ..AuditEntry::default()
    };
    let Some(token) = bearer else {
        return Err(deny(
            state,
            app_id,
            entry,
            "missing_service_jwt",
            ApiError::unauthorized("BROKER_AUTH_MISSING", "Missing broker service token"),
        )
        .await);
    };
    let header = match decode_header(token) {
        Ok(header) => header,
        Err(_) => {
            return Err(deny(
                state,
                app_id,
                entry,
                "invalid_jwt_format",
                invalid_token("Invalid broker service token format"),
            )
            .await);
        }
    };
    let kid = match (header.alg, header.kid) {
        (Algorithm::RS256, Some(kid)) if !kid.is_empty() && kid.len() <= 255 => kid,
        _ => {
            return Err(deny(
                state,
                app_id,
                entry,
                "unsupported_broker_jwt_header",
                invalid_token("Unsupported broker service token"),
            )
            .await);
        }
    };
    let entry = AuditEntry {
        credential_kid: Some(kid.clone()),
        ..entry
    };
    let Some(verifier) = broker::verifier_for_kid(&state.pool, &kid).await? else {
        return Err(deny(
            state,
            app_id,
            entry,
            "unknown_or_inactive_broker_credential",
            invalid_token("Unknown or inactive broker credential"),
        )
        .await);
    };
    let entry = AuditEntry {
        client_id: Some(verifier.client_id),
        credential_id: Some(verifier.credential_id),
        ..entry
    };
    let claims = match verify_service_jwt(state, token, &verifier) {
        Ok(claims) => claims,
        Err(reason) => {
            let message = match reason {
                "broker_jwt_lifetime_too_long" => "Broker service token lifetime is too long",
                "invalid_broker_jti" => "Invalid broker service token ID",
                _ => "Invalid broker service token",
            };
            return Err(deny(state, app_id, entry, reason, invalid_token(message)).await);
        }
    };
    let entry = AuditEntry {
        token_jti: Some(claims.jti.clone()),
        ..entry
    };
    let expires_at = DateTime::<Utc>::from_timestamp(i64::try_from(claims.exp).unwrap_or(i64::MAX), 0)
        .unwrap_or_else(Utc::now);
    if !broker::record_jti(&state.pool, verifier.credential_id, &claims.jti, expires_at).await? {
        return Err(deny(
            state,
            app_id,
            entry,
            "broker_jwt_replay",
            ApiError::unauthorized("BROKER_AUTH_REPLAY", "Broker service token replay detected"),
        )
        .await);
    }
    let scope = {
        let mut tx = begin_tenant(&state.pool, app_id).await?;
        let scope = broker::active_scope(&mut tx, app_id, verifier.credential_id).await?;
        tx.commit().await?;
        scope
    };
    let Some(scope) = scope else {
        return Err(deny(
            state,
            app_id,
            entry,
            "broker_scope_denied",
            scope_denied(
                "BROKER_SCOPE_DENIED",
                "Broker credential is not scoped to this app",
            ),
        )
        .await);
    };
    if let Some(origin) = origin
        && !scope.allowed_origins.is_empty()
        && !scope.allowed_origins.iter().any(|o| o == origin)
    {
        return Err(deny(
            state,
            app_id,
            entry,
            "broker_origin_denied",
            scope_denied(
                "BROKER_ORIGIN_DENIED",
                "Broker credential is not allowed from this origin",
            ),
        )
        .await);
    }
    Ok(Caller {
        verifier,
        jti: claims.jti,
        scope,
    })
}

struct CheckedClaims {
    jti: String,
    exp: u64,
}

/// Signature, `iss`, `aud`, `exp`/`nbf` (with leeway), then upstream's lifetime and `jti`
/// rules. The error is the audit's denial reason.
fn verify_service_jwt(
    state: &AppState,
    token: &str,
    verifier: &Verifier,
) -> Result<CheckedClaims, &'static str> {
    let key = rsa_key(&verifier.public_key_jwk).map_err(|_| "invalid_broker_service_jwt")?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.config.broker.audience]);
    validation.set_issuer(&[&verifier.client_slug]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    let claims = decode::<ServiceClaims>(token, &key, &validation)
        .map_err(|_| "invalid_broker_service_jwt")?
        .claims;
    let jti = claims
        .jti
        .filter(|j| (16..=255).contains(&j.len()))
        .ok_or("invalid_broker_jti")?;
    let (Some(iat), Some(exp)) = (claims.iat, claims.exp) else {
        return Err("broker_jwt_lifetime_too_long");
    };
    let max = state.config.broker.max_jwt_lifetime.as_secs();
    let now = now_secs();
    let lifetime = exp.checked_sub(iat);
    if iat > now.saturating_add(LEEWAY_SECS)
        || exp > now.saturating_add(max).saturating_add(LEEWAY_SECS)
        || lifetime.is_none_or(|l| l > max)
    {
        return Err("broker_jwt_lifetime_too_long");
    }
    Ok(CheckedClaims { jti, exp })
}

/// The RSA verification key of a JWK `{kty: "RSA", n, e}`.
fn rsa_key(jwk: &Value) -> Result<DecodingKey, &'static str> {
    let n = jwk.get("n").and_then(Value::as_str).ok_or("n is missing")?;
    let e = jwk.get("e").and_then(Value::as_str).ok_or("e is missing")?;
    DecodingKey::from_rsa_components(n, e).map_err(|_| "n and e must be base64url")
}

/// Checks a JWK offered for registration: an RSA public key of at least 2048 bits for RS256,
/// with no private part (the platform must never hold the app server's private key).
pub fn validate_public_jwk(jwk: &Value) -> ApiResult<()> {
    let field = "publicKeyJwk";
    let Some(obj) = jwk.as_object() else {
        return Err(ApiError::invalid(field, "publicKeyJwk must be a JWK object"));
    };
    if obj.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err(ApiError::invalid("publicKeyJwk.kty", "kty must be \"RSA\""));
    }
    if let Some(private) = ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .find(|k| obj.contains_key(**k))
    {
        return Err(ApiError::invalid(
            format!("publicKeyJwk.{private}"),
            "publicKeyJwk must be a public key: private parameters are refused",
        ));
    }
    if obj.get("alg").is_some_and(|a| a != "RS256") {
        return Err(ApiError::invalid("publicKeyJwk.alg", "alg must be RS256"));
    }
    let modulus = obj
        .get("n")
        .and_then(Value::as_str)
        .and_then(|n| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n).ok())
        .ok_or_else(|| ApiError::invalid("publicKeyJwk.n", "n must be the base64url modulus"))?;
    let significant = modulus.iter().skip_while(|b| **b == 0).count();
    if significant < MIN_RSA_MODULUS_BYTES {
        return Err(ApiError::invalid(
            "publicKeyJwk.n",
            "the RSA key must have at least 2048 bits",
        ));
    }
    rsa_key(jwk).map_err(|reason| ApiError::invalid("publicKeyJwk.e", reason))?;
    Ok(())
}

fn text(field: &'static str, value: &str, max: usize) -> ApiResult<()> {
    if value.is_empty() || value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

fn opt_text(field: &'static str, value: Option<&str>, max: usize) -> ApiResult<()> {
    value.map_or(Ok(()), |v| text(field, v, max))
}

/// Upstream's `assertBrokerScopeAllowsMembership`: every constraint list must be set, and the
/// external tenant, the user id and every channel must fall inside it.
fn check_membership_scope(
    scope: &ScopeRow,
    external_tenant_id: &str,
    user_id: &str,
    cids: &[String],
) -> Result<(), (&'static str, ApiError)> {
    if scope.allowed_external_tenant_ids.is_empty()
        || scope.allowed_user_id_prefixes.is_empty()
        || scope.allowed_channel_id_prefixes.is_empty()
    {
        return Err((
            "BROKER_SCOPE_INVALID",
            scope_denied(
                "BROKER_SCOPE_INVALID",
                "Broker scope constraints must be non-empty",
            ),
        ));
    }
    if !scope
        .allowed_external_tenant_ids
        .iter()
        .any(|t| t == external_tenant_id)
    {
        return Err((
            "BROKER_TENANT_DENIED",
            scope_denied(
                "BROKER_TENANT_DENIED",
                "Broker credential is not allowed for this external tenant",
            ),
        ));
    }
    if !scope
        .allowed_user_id_prefixes
        .iter()
        .any(|p| user_id.starts_with(p.as_str()))
    {
        return Err((
            "BROKER_USER_DENIED",
            scope_denied(
                "BROKER_USER_DENIED",
                "Broker credential is not allowed for this user",
            ),
        ));
    }
    if cids.len() > usize::try_from(scope.max_membership_fanout).unwrap_or(0) {
        return Err((
            "BROKER_MEMBERSHIP_FANOUT_EXCEEDED",
            ApiError::bad_request(
                "BROKER_MEMBERSHIP_FANOUT_EXCEEDED",
                "Membership snapshot exceeds broker fanout limit",
                "memberships",
            ),
        ));
    }
    if cids.iter().any(|cid| {
        !scope
            .allowed_channel_id_prefixes
            .iter()
            .any(|p| cid.starts_with(p.as_str()))
    }) {
        return Err((
            "BROKER_CHANNEL_DENIED",
            scope_denied(
                "BROKER_CHANNEL_DENIED",
                "Broker credential is not allowed for one or more channels",
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct MintInput {
    pub user_id: String,
    pub external_tenant_id: String,
    pub external_user_id: Option<String>,
    pub external_session_id: Option<String>,
    pub device_id: Option<String>,
    pub requested_scopes: Option<Vec<String>>,
    pub ttl_seconds: Option<i64>,
}

fn validate_mint(input: &MintInput) -> ApiResult<()> {
    validate_user_id("userId", &input.user_id)?;
    text("externalTenantId", &input.external_tenant_id, 255)?;
    opt_text("externalUserId", input.external_user_id.as_deref(), 255)?;
    opt_text("externalSessionId", input.external_session_id.as_deref(), 255)?;
    opt_text("deviceId", input.device_id.as_deref(), 255)?;
    if let Some(scopes) = &input.requested_scopes {
        if scopes.len() > 50 {
            return Err(ApiError::invalid("requestedScopes", "at most 50 scopes"));
        }
        for scope in scopes {
            text("requestedScopes", scope, 64)?;
        }
    }
    if input.ttl_seconds.is_some_and(|t| !(1..=3600).contains(&t)) {
        return Err(ApiError::invalid(
            "ttlSeconds",
            "ttlSeconds must be between 1 and 3600",
        ));
    }
    Ok(())
}

/// A minted token bundle and the membership it rests on.
#[derive(Debug, Clone)]
pub struct Minted {
    pub tokens: MintedTokens,
    pub session_id: Uuid,
    pub membership_version: String,
    pub membership_revision: i64,
}

/// Mints a scoped access token for a user whose synced membership is active and fresh.
pub async fn mint(state: &AppState, app_id: Uuid, caller: &Caller, input: MintInput) -> ApiResult<Minted> {
    let mut entry = caller.audit(MINT);
    entry.user_id = Some(input.user_id.clone());
    entry.external_tenant_id = Some(input.external_tenant_id.clone());
    entry.requested_scopes = input.requested_scopes.clone();
    if let Err(err) = validate_mint(&input) {
        return Err(deny(state, app_id, entry, "invalid_token_mint_payload", err).await);
    }
    let scope = &caller.scope;
    let scopes = input
        .requested_scopes
        .clone()
        .unwrap_or_else(|| scope.default_scopes.clone());
    if scopes.iter().any(|s| !scope.allowed_scopes.contains(s)) {
        let err = scope_denied("BROKER_SCOPE_DENIED", "Requested token scopes are not allowed");
        return Err(deny(state, app_id, entry, "BROKER_SCOPE_DENIED", err).await);
    }
    if let Err((reason, err)) = check_membership_scope(scope, &input.external_tenant_id, &input.user_id, &[])
    {
        return Err(deny(state, app_id, entry, reason, err).await);
    }
    let ttl = input
        .ttl_seconds
        .unwrap_or_else(|| i64::from(scope.max_token_ttl_seconds));
    if ttl > i64::from(scope.max_token_ttl_seconds) {
        let err = scope_denied("BROKER_TTL_DENIED", "Requested token TTL exceeds broker scope");
        return Err(deny(state, app_id, entry, "BROKER_TTL_DENIED", err).await);
    }
    let ttl = Duration::from_secs(ttl.unsigned_abs());

    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let membership = broker::membership_state(&mut tx, app_id, &input.user_id, false).await?;
    let membership = match membership {
        Some(m)
            if m.status == "active"
                && m.external_tenant_id == input.external_tenant_id
                && m.fresh_until > Utc::now() =>
        {
            m
        }
        _ => {
            drop(tx);
            let err = scope_denied("BROKER_MEMBERSHIP_STALE", "Broker membership is missing or stale");
            return Err(deny(state, app_id, entry, "BROKER_MEMBERSHIP_STALE", err).await);
        }
    };
    let session_id = Uuid::new_v4();
    let grant = BrokerGrant {
        client_id: caller.verifier.client_id,
        credential_id: caller.verifier.credential_id,
        external_tenant_id: input.external_tenant_id.clone(),
        membership_version: membership.version.clone(),
        scopes: scopes.clone(),
        ttl,
    };
    let tokens = state
        .tokens
        .issue_broker(app_id, &input.user_id, session_id, &grant)
        .map_err(|err| ApiError::Internal(format!("token signing: {err}")))?;
    let session_hash = input
        .external_session_id
        .as_deref()
        .map(|s| hex::encode(Sha256::digest(s.as_bytes())));
    broker::insert_session(
        &mut tx,
        app_id,
        &BrokerSession {
            id: session_id,
            user_id: &input.user_id,
            expires_at: Utc::now() + ttl,
            credential_id: caller.verifier.credential_id,
            external_tenant_id: &input.external_tenant_id,
            external_user_id: input.external_user_id.as_deref().unwrap_or(&input.user_id),
            external_session_hash: session_hash.as_deref(),
            device_id: input.device_id.as_deref(),
            membership_version: &membership.version,
            scopes: &scopes,
        },
    )
    .await?;
    entry.granted_scopes = Some(scopes);
    entry.session_id = Some(session_id);
    broker::audit(&mut tx, app_id, &entry).await?;
    tx.commit().await?;
    Ok(Minted {
        tokens,
        session_id,
        membership_version: membership.version,
        membership_revision: membership.revision,
    })
}

#[derive(Debug, Clone)]
pub struct MembershipEntry {
    /// Always `"channel"` (upstream's only kind).
    pub kind: String,
    /// The channel's `cid`.
    pub id: String,
    pub role: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MembershipInput {
    pub version: String,
    pub revision: i64,
    pub fresh_until: DateTime<Utc>,
    pub state_hash: String,
    pub external_tenant_id: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub memberships: Vec<MembershipEntry>,
    pub status: String,
    pub metadata: Option<Map<String, Value>>,
}

const STATUSES: &[&str] = &["active", "disabled", "suspended", "removed"];
/// Largest integer a JSON number carries exactly (upstream's `z.number().int().safe()`).
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Checks the snapshot; returns `(cid, role)` for each distinct channel.
fn validate_membership(input: &MembershipInput) -> ApiResult<Vec<(String, Role)>> {
    text("version", &input.version, 255)?;
    if !(0..=MAX_SAFE_INTEGER).contains(&input.revision) {
        return Err(ApiError::invalid(
            "revision",
            "revision must be a non-negative safe integer",
        ));
    }
    text("stateHash", &input.state_hash, 255)?;
    if input.state_hash.len() < 8 {
        return Err(ApiError::invalid(
            "stateHash",
            "stateHash must be 8 to 255 characters",
        ));
    }
    text("externalTenantId", &input.external_tenant_id, 255)?;
    if let Some(name) = &input.display_name
        && (name.chars().count() > 255 || name.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "displayName",
            "displayName must be at most 255 characters without control characters",
        ));
    }
    if let Some(url) = &input.avatar_url
        && (url.len() > 2048 || !(url.starts_with("https://") || url.starts_with("http://")))
    {
        return Err(ApiError::invalid("avatarUrl", "avatarUrl must be an http(s) URL"));
    }
    if !STATUSES.contains(&input.status.as_str()) {
        return Err(ApiError::invalid(
            "status",
            "status must be active, disabled, suspended or removed",
        ));
    }
    if input.memberships.len() > MAX_MEMBERSHIPS {
        return Err(ApiError::invalid(
            "memberships",
            format!("at most {MAX_MEMBERSHIPS} memberships"),
        ));
    }
    if let Some(metadata) = &input.metadata
        && serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len()) > MAX_METADATA_BYTES
    {
        return Err(ApiError::invalid(
            "metadata",
            format!("metadata must be at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    let mut out: Vec<(String, Role)> = Vec::with_capacity(input.memberships.len());
    for (i, m) in input.memberships.iter().enumerate() {
        if m.kind != "channel" {
            return Err(ApiError::invalid(
                format!("memberships[{i}].type"),
                "type must be \"channel\"",
            ));
        }
        if m.id.is_empty() || m.id.chars().count() > 255 || m.id.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                format!("memberships[{i}].id"),
                "id must be a channel cid of 1 to 255 characters",
            ));
        }
        let role = match m.role.as_deref() {
            None => Role::Member,
            Some(r) => Role::parse(r).ok_or_else(|| {
                ApiError::invalid(
                    format!("memberships[{i}].role"),
                    "role must be owner, admin, moderator or member",
                )
            })?,
        };
        // A later entry for the same channel wins, as upstream's map of the snapshot.
        match out.iter_mut().find(|(cid, _)| *cid == m.id) {
            Some(existing) => existing.1 = role,
            None => out.push((m.id.clone(), role)),
        }
    }
    Ok(out)
}

/// What a membership sync did (upstream's answer).
#[derive(Debug, Clone)]
pub struct Synced {
    pub membership_version: String,
    pub membership_revision: i64,
    pub state_hash: String,
    pub fresh_until: DateTime<Utc>,
    pub applied_at: DateTime<Utc>,
    pub status_changed: bool,
    /// A repeat of the stored revision: nothing changed.
    pub idempotent: bool,
    /// Channels left or the account ended: Centrifugo subscriptions were cut.
    pub enqueued_realtime_commands: bool,
}

/// Applies a user's membership snapshot: profile, channel memberships (exactly the listed
/// cids, with their roles), and status. A revision lower than the stored one is refused, the
/// same one is accepted only as an exact repeat, and the external tenant of a user is fixed.
/// An account that stops being active loses every membership, token and session.
pub async fn sync_membership(
    state: &AppState,
    app_id: Uuid,
    user_id: &str,
    caller: &Caller,
    input: MembershipInput,
) -> ApiResult<Synced> {
    let mut entry = caller.audit(MEMBERSHIP_SYNC);
    entry.user_id = Some(user_id.to_owned());
    entry.external_tenant_id = Some(input.external_tenant_id.clone());
    let desired = match validate_user_id("userId", user_id).and_then(|()| validate_membership(&input)) {
        Ok(desired) => desired,
        Err(err) => return Err(deny(state, app_id, entry, "invalid_membership_payload", err).await),
    };
    let cids: Vec<String> = desired.iter().map(|(cid, _)| cid.clone()).collect();
    if let Err((reason, err)) =
        check_membership_scope(&caller.scope, &input.external_tenant_id, user_id, &cids)
    {
        return Err(deny(state, app_id, entry, reason, err).await);
    }
    let outcome = apply_membership(state, app_id, user_id, caller, &input, &desired, &cids).await;
    let (synced, removed) = match outcome {
        Ok(done) => done,
        Err(Refusal::Denied(reason, err)) => return Err(deny(state, app_id, entry, reason, err).await),
        Err(Refusal::Failed(err)) => return Err(err),
    };
    if let Some(centrifugo) = &state.centrifugo {
        // Best effort: the memberships, tokens and sessions are already gone in the database,
        // so a lost command only delays the cut until the client's next subscription refresh.
        let subject = subject(app_id, user_id);
        for channel in &removed {
            if let Err(err) = centrifugo
                .unsubscribe(&chat_channel(app_id, *channel), &subject)
                .await
            {
                tracing::warn!(%err, "centrifugo unsubscribe failed");
            }
        }
        if synced.status_changed
            && input.status != "active"
            && let Err(err) = centrifugo.disconnect(&subject).await
        {
            tracing::warn!(%err, "centrifugo disconnect failed");
        }
    }
    Ok(synced)
}

enum Refusal {
    Denied(&'static str, ApiError),
    Failed(ApiError),
}

impl From<sqlx::Error> for Refusal {
    fn from(err: sqlx::Error) -> Self {
        Refusal::Failed(err.into())
    }
}

fn conflict(code: &'static str, message: &'static str) -> Refusal {
    Refusal::Denied(code, ApiError::conflict(code, message))
}

/// The transaction of a sync; returns the result and the channels the user left.
async fn apply_membership(
    state: &AppState,
    app_id: Uuid,
    user_id: &str,
    caller: &Caller,
    input: &MembershipInput,
    desired: &[(String, Role)],
    cids: &[String],
) -> Result<(Synced, Vec<Uuid>), Refusal> {
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let current = broker::membership_state(&mut tx, app_id, user_id, true).await?;
    let synced = |status_changed, idempotent, commands| Synced {
        membership_version: input.version.clone(),
        membership_revision: input.revision,
        state_hash: input.state_hash.clone(),
        fresh_until: input.fresh_until,
        applied_at: Utc::now(),
        status_changed,
        idempotent,
        enqueued_realtime_commands: commands,
    };
    if let Some(current) = &current {
        if current.external_tenant_id != input.external_tenant_id {
            return Err(conflict(
                "BROKER_TENANT_REASSIGN_DENIED",
                "Broker membership external tenant reassignment denied",
            ));
        }
        if input.revision < current.revision {
            return Err(conflict(
                "BROKER_MEMBERSHIP_ROLLBACK",
                "Membership revision rollback denied",
            ));
        }
        if input.revision == current.revision {
            let same = current.status == input.status
                && current.version == input.version
                && current.state_hash == input.state_hash
                && current.fresh_until == input.fresh_until;
            if !same {
                return Err(conflict(
                    "BROKER_MEMBERSHIP_CONFLICT",
                    "Membership revision conflicts with stored state",
                ));
            }
            broker::audit(
                &mut tx,
                app_id,
                &caller.audit_success(MEMBERSHIP_SYNC, user_id, input),
            )
            .await?;
            tx.commit().await?;
            return Ok((
                Synced {
                    fresh_until: current.fresh_until,
                    ..synced(false, true, false)
                },
                Vec::new(),
            ));
        }
    }

    let mut custom = input.metadata.clone().unwrap_or_default();
    custom.insert("externalTenantId".into(), json!(input.external_tenant_id));
    custom.insert("brokerMembershipVersion".into(), json!(input.version));
    custom.insert("brokerMembershipRevision".into(), json!(input.revision));
    broker::upsert_user(
        &mut tx,
        app_id,
        user_id,
        input.display_name.as_deref(),
        input.avatar_url.as_deref(),
        &Value::Object(custom),
    )
    .await?;
    let next = MembershipState {
        external_tenant_id: input.external_tenant_id.clone(),
        version: input.version.clone(),
        revision: input.revision,
        state_hash: input.state_hash.clone(),
        fresh_until: input.fresh_until,
        status: input.status.clone(),
    };
    let metadata = Value::Object(input.metadata.clone().unwrap_or_default());
    broker::put_membership_state(
        &mut tx,
        app_id,
        user_id,
        &next,
        caller.verifier.credential_id,
        &metadata,
    )
    .await?;

    let active = input.status == "active";
    let before = broker::memberships(&mut tx, app_id, user_id).await?;
    let wanted: Vec<(Uuid, String)> = if active && !cids.is_empty() {
        let found = broker::channels_by_cid(&mut tx, app_id, cids).await?;
        desired
            .iter()
            .map(|(cid, role)| {
                found
                    .iter()
                    .find(|(_, c)| c == cid)
                    .map(|(id, _)| (*id, role.as_str().to_owned()))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Refusal::Denied(
                    "BROKER_CHANNEL_NOT_FOUND",
                    ApiError::bad_request(
                        "BROKER_CHANNEL_NOT_FOUND",
                        "One or more membership channels do not exist",
                        "memberships",
                    ),
                )
            })?
    } else {
        Vec::new()
    };
    let mut touched: Vec<Uuid> = before
        .iter()
        .map(|(id, _)| *id)
        .chain(wanted.iter().map(|(id, _)| *id))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    broker::apply_snapshot(&mut tx, app_id, user_id, &wanted, &touched).await?;

    let removed: Vec<Uuid> = before
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !wanted.iter().any(|(w, _)| w == id))
        .collect();
    let joined: Vec<Uuid> = wanted
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !before.iter().any(|(b, _)| b == id))
        .collect();
    for (kind, channels) in [(events::MEMBER_JOINED, &joined), (events::MEMBER_LEFT, &removed)] {
        for channel in channels {
            outbox::enqueue(
                &mut tx,
                app_id,
                kind,
                &[chat_channel(app_id, *channel), user_channel(app_id, user_id)],
                &json!({ "channelId": channel, "userId": user_id }),
            )
            .await?;
        }
    }
    let status_changed = current.as_ref().is_none_or(|c| c.status != input.status);
    if !active && status_changed {
        sessions::revoke_user(&mut tx, app_id, user_id, broker_revoke_reason(&input.status)).await?;
    }
    broker::audit(
        &mut tx,
        app_id,
        &caller.audit_success(MEMBERSHIP_SYNC, user_id, input),
    )
    .await?;
    tx.commit().await?;
    let commands = !removed.is_empty() || (!active && status_changed);
    Ok((synced(status_changed, false, commands), removed))
}

fn broker_revoke_reason(status: &str) -> &'static str {
    match status {
        "disabled" => "broker_membership_disabled",
        "suspended" => "broker_membership_suspended",
        _ => "broker_membership_removed",
    }
}

impl Caller {
    fn audit_success(&self, operation: &'static str, user_id: &str, input: &MembershipInput) -> AuditEntry {
        AuditEntry {
            user_id: Some(user_id.to_owned()),
            external_tenant_id: Some(input.external_tenant_id.clone()),
            ..self.audit(operation)
        }
    }
}

/// Registers a broker client (platform admin).
pub async fn create_client(state: &AppState, slug: &str, name: &str) -> ApiResult<ClientRow> {
    text("slug", slug, 64)?;
    if slug.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid("slug", "slug must not contain spaces"));
    }
    text("name", name, 255)?;
    broker::insert_client(&state.pool, Uuid::now_v7(), slug, name)
        .await
        .map_err(|err| {
            if is_unique_violation(&err, "broker_client_slug_key") {
                ApiError::conflict("SLUG_TAKEN", "A broker client with this slug exists")
            } else {
                err.into()
            }
        })
}

/// Registers a public key of a client (platform admin).
pub async fn add_credential(
    state: &AppState,
    client_id: Uuid,
    kid: &str,
    jwk: &Value,
    not_before: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
) -> ApiResult<CredentialRow> {
    text("kid", kid, 255)?;
    validate_public_jwk(jwk)?;
    if let (Some(from), Some(to)) = (not_before, expires_at)
        && to <= from
    {
        return Err(ApiError::invalid(
            "expiresAt",
            "expiresAt must be after notBefore",
        ));
    }
    let new = NewCredential {
        id: Uuid::now_v7(),
        client_id,
        kid,
        public_key_jwk: jwk,
        not_before,
        expires_at,
    };
    broker::insert_credential(&state.pool, &new).await.map_err(|err| {
        if is_unique_violation(&err, "broker_credential_kid_key") {
            ApiError::conflict("KID_TAKEN", "A credential with this kid exists")
        } else if matches!(&err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23503")) {
            ApiError::not_found("Broker client not found")
        } else {
            err.into()
        }
    })
}

pub async fn set_credential_status(state: &AppState, id: Uuid, status: &str) -> ApiResult<CredentialRow> {
    if !["active", "disabled", "rotating"].contains(&status) {
        return Err(ApiError::invalid(
            "status",
            "status must be active, disabled or rotating",
        ));
    }
    broker::set_credential_status(&state.pool, id, status)
        .await?
        .ok_or_else(|| ApiError::not_found("Broker credential not found"))
}

/// What the admin may set of a credential's scope in an app; absent lists are empty, absent
/// limits take upstream's defaults.
#[derive(Debug, Clone, Default)]
pub struct ScopeInput {
    pub status: Option<String>,
    pub allowed_external_tenant_ids: Vec<String>,
    pub allowed_user_id_prefixes: Vec<String>,
    pub allowed_channel_id_prefixes: Vec<String>,
    pub max_membership_fanout: Option<i32>,
    pub allowed_origins: Vec<String>,
    pub max_token_ttl_seconds: Option<i32>,
    pub default_scopes: Option<Vec<String>>,
    pub allowed_scopes: Option<Vec<String>>,
}

fn text_list(field: &'static str, list: &[String], max_items: usize) -> ApiResult<()> {
    if list.len() > max_items {
        return Err(ApiError::invalid(field, format!("at most {max_items} entries")));
    }
    list.iter().try_for_each(|item| text(field, item, 255))
}

pub async fn put_scope(
    state: &AppState,
    app_id: Uuid,
    credential_id: Uuid,
    input: ScopeInput,
) -> ApiResult<ScopeRow> {
    let status = input.status.unwrap_or_else(|| "active".into());
    if !["active", "disabled"].contains(&status.as_str()) {
        return Err(ApiError::invalid("status", "status must be active or disabled"));
    }
    text_list(
        "allowedExternalTenantIds",
        &input.allowed_external_tenant_ids,
        1000,
    )?;
    text_list("allowedUserIdPrefixes", &input.allowed_user_id_prefixes, 100)?;
    text_list(
        "allowedChannelIdPrefixes",
        &input.allowed_channel_id_prefixes,
        100,
    )?;
    text_list("allowedOrigins", &input.allowed_origins, 100)?;
    if input.allowed_origins.iter().any(|o| o == "*") {
        return Err(ApiError::invalid(
            "allowedOrigins",
            "a wildcard origin is refused",
        ));
    }
    let fanout = input.max_membership_fanout.unwrap_or(1000);
    if !(1..=5000).contains(&fanout) {
        return Err(ApiError::invalid(
            "maxMembershipFanout",
            "maxMembershipFanout must be between 1 and 5000",
        ));
    }
    let ttl = input.max_token_ttl_seconds.unwrap_or(900);
    if !(60..=3600).contains(&ttl) {
        return Err(ApiError::invalid(
            "maxTokenTtlSeconds",
            "maxTokenTtlSeconds must be between 60 and 3600",
        ));
    }
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let allowed = input.allowed_scopes.unwrap_or_else(|| owned(BROKER_SCOPES));
    if let Some(bad) = allowed.iter().find(|s| !BROKER_SCOPES.contains(&s.as_str())) {
        return Err(ApiError::invalid(
            "allowedScopes",
            format!("unknown scope {bad:?}; allowed: {}", BROKER_SCOPES.join(", ")),
        ));
    }
    let defaults = input.default_scopes.unwrap_or_else(|| owned(DEFAULT_SCOPES));
    if defaults.iter().any(|s| !allowed.contains(s)) {
        return Err(ApiError::invalid(
            "defaultScopes",
            "defaultScopes must be a subset of allowedScopes",
        ));
    }
    let grant = ScopeGrant {
        status,
        allowed_external_tenant_ids: input.allowed_external_tenant_ids,
        allowed_user_id_prefixes: input.allowed_user_id_prefixes,
        allowed_channel_id_prefixes: input.allowed_channel_id_prefixes,
        max_membership_fanout: fanout,
        allowed_origins: input.allowed_origins,
        max_token_ttl_seconds: ttl,
        default_scopes: defaults,
        allowed_scopes: allowed,
    };
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = broker::put_scope(&mut tx, app_id, credential_id, &grant)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => {
                ApiError::not_found("App or broker credential not found")
            }
            _ => err.into(),
        })?;
    tx.commit().await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: ApiResult<()>) -> Option<String> {
        match r {
            Err(ApiError::BadRequest { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        }
    }

    #[test]
    fn registered_keys_are_public_rsa_of_at_least_2048_bits() {
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
        let good = json!({"kty": "RSA", "n": n, "e": "AQAB"});
        assert!(validate_public_jwk(&good).is_ok());
        let short = json!({"kty": "RSA", "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xc5u8; 128]), "e": "AQAB"});
        assert_eq!(field(validate_public_jwk(&short)), Some("publicKeyJwk.n".into()));
        let private = json!({"kty": "RSA", "n": n, "e": "AQAB", "d": "AQAB"});
        assert_eq!(
            field(validate_public_jwk(&private)),
            Some("publicKeyJwk.d".into())
        );
        assert_eq!(
            field(validate_public_jwk(&json!({"kty": "EC", "crv": "P-256"}))),
            Some("publicKeyJwk.kty".into())
        );
        assert_eq!(
            field(validate_public_jwk(&json!("pem"))),
            Some("publicKeyJwk".into())
        );
        assert_eq!(
            field(validate_public_jwk(
                &json!({"kty": "RSA", "n": "%%%", "e": "AQAB"})
            )),
            Some("publicKeyJwk.n".into())
        );
    }

    fn snapshot() -> MembershipInput {
        MembershipInput {
            version: "v1".into(),
            revision: 1,
            fresh_until: Utc::now(),
            state_hash: "hash-0001".into(),
            external_tenant_id: "t1".into(),
            display_name: None,
            avatar_url: None,
            memberships: vec![],
            status: "active".into(),
            metadata: None,
        }
    }

    #[test]
    fn membership_snapshots_are_validated_field_by_field() {
        let check = |i: MembershipInput| field(validate_membership(&i).map(drop));
        assert_eq!(check(snapshot()), None);
        assert_eq!(
            check(MembershipInput {
                revision: MAX_SAFE_INTEGER + 1,
                ..snapshot()
            }),
            Some("revision".into())
        );
        assert_eq!(
            check(MembershipInput {
                state_hash: "short".into(),
                ..snapshot()
            }),
            Some("stateHash".into())
        );
        assert_eq!(
            check(MembershipInput {
                status: "banned".into(),
                ..snapshot()
            }),
            Some("status".into())
        );
        let entry = |kind: &str, id: &str, role: Option<&str>| MembershipEntry {
            kind: kind.into(),
            id: id.into(),
            role: role.map(str::to_owned),
        };
        assert_eq!(
            check(MembershipInput {
                memberships: vec![entry("channel", "a", None), entry("workspace", "b", None)],
                ..snapshot()
            }),
            Some("memberships[1].type".into())
        );
        assert_eq!(
            check(MembershipInput {
                memberships: vec![entry("channel", "a", Some("root"))],
                ..snapshot()
            }),
            Some("memberships[0].role".into())
        );
        assert_eq!(
            check(MembershipInput {
                memberships: vec![entry("channel", "a\u{0}", None)],
                ..snapshot()
            }),
            Some("memberships[0].id".into())
        );
        // Repeats of a channel fold into one, the last role winning.
        let folded = validate_membership(&MembershipInput {
            memberships: vec![entry("channel", "a", None), entry("channel", "a", Some("admin"))],
            ..snapshot()
        });
        assert!(matches!(folded.as_deref(), Ok([(cid, Role::Admin)]) if cid == "a"));
    }
}
