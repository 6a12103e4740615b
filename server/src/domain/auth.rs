//! Sessions: connect (API key → user tokens), refresh with rotation, and the per-request check
//! of access tokens against revocation.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::tokens::{Claims, TokenBundle, TokenError, TokenType};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::sessions::{self, Rotation};
use crate::storage::{begin_tenant, users};

/// The authenticated end user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub app_id: Uuid,
    pub user_id: String,
    pub session_id: Uuid,
    pub name: Option<String>,
    pub image: Option<String>,
    pub is_app_admin: bool,
    /// Read with the token check: what a message renders about its sender.
    pub profile: Profile,
    /// The token's scopes (broker-minted tokens); `None` for an unscoped session.
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub custom: Option<Value>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectInput {
    pub user_id: String,
    pub display_name: Option<String>,
    pub avatar: Option<String>,
    pub email: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    /// The app server vouches that the user passed MFA.
    pub mfa: bool,
}

#[derive(Debug)]
pub struct Connected {
    pub user_id: String,
    pub display_name: String,
    pub avatar: Option<String>,
    pub metadata: Map<String, Value>,
    pub tokens: TokenBundle,
}

pub fn validate_user_id(field: &'static str, id: &str) -> ApiResult<()> {
    if id.is_empty() || id.chars().count() > 255 {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to 255 characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

fn validate_connect(input: &ConnectInput) -> ApiResult<()> {
    validate_user_id("userId", &input.user_id)?;
    if let Some(name) = &input.display_name
        && name.chars().count() > 255
    {
        return Err(ApiError::invalid(
            "displayName",
            "displayName must be at most 255 characters",
        ));
    }
    if let Some(avatar) = input.avatar.as_deref().filter(|a| !a.is_empty())
        && !(avatar.starts_with("https://") || avatar.starts_with("http://"))
    {
        return Err(ApiError::invalid("avatar", "avatar must be an http(s) URL"));
    }
    if let Some(email) = &input.email {
        let valid = email.len() <= 320
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !valid {
            return Err(ApiError::invalid("email", "email is not a valid address"));
        }
    }
    Ok(())
}

/// `metadata.is_admin` as upstream writes it (a boolean, or the strings "true"/"false").
fn admin_flag(metadata: &Map<String, Value>) -> Option<bool> {
    match metadata.get("is_admin")? {
        Value::Bool(flag) => Some(*flag),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// Creates or updates the user and opens a session.
pub async fn connect(state: &AppState, app_id: Uuid, input: ConnectInput) -> ApiResult<Connected> {
    validate_connect(&input)?;
    let mut metadata = input.metadata.unwrap_or_default();
    if let Some(email) = &input.email {
        metadata.insert("email".into(), Value::String(email.clone()));
    }
    let avatar = input.avatar.filter(|a| !a.is_empty());
    let session_id = Uuid::new_v4();
    let tokens = state
        .tokens
        .issue(app_id, &input.user_id, session_id, input.mfa)
        .map_err(token_fault)?;
    let expires_at = Utc::now() + state.tokens.refresh_ttl();

    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let custom = Value::Object(metadata.clone());
    let stored = users::upsert(
        &mut tx,
        app_id,
        &input.user_id,
        input.display_name.as_deref(),
        avatar.as_deref(),
        &custom,
    )
    .await?;
    // A moderation ban holds until the app server lifts it with `metadata.banned: false`
    // (dropping the transaction undoes the upsert).
    if stored.custom_data.get("banned") == Some(&Value::Bool(true)) {
        return Err(ApiError::forbidden("USER_BANNED", "This user is banned"));
    }
    // Upstream's admin flag is `metadata.is_admin`; only the app server (this API key) sets it,
    // never the user's own profile edits.
    if let Some(admin) = admin_flag(&metadata) {
        users::set_admin(&mut tx, app_id, &input.user_id, admin).await?;
    }
    sessions::insert(
        &mut tx,
        app_id,
        session_id,
        &input.user_id,
        tokens.refresh_jti,
        input.mfa,
        expires_at,
    )
    .await?;
    tx.commit().await?;

    Ok(Connected {
        display_name: input.display_name.unwrap_or_else(|| input.user_id.clone()),
        user_id: input.user_id,
        avatar,
        metadata,
        tokens,
    })
}

/// `POST /api/auth/connect-dev`: [`connect`] into the development app, without an API key.
/// Only in explicit development mode (`Config::dev_auth`); otherwise the route does not exist.
pub async fn connect_dev(state: &AppState, input: ConnectInput) -> ApiResult<Connected> {
    if !state.config.dev_auth {
        return Err(ApiError::not_found("Not Found"));
    }
    validate_connect(&input)?;
    tracing::warn!("development authentication used (no API key)");
    let app_id = crate::domain::apps::dev_app(&state.pool).await?;
    connect(state, app_id, input).await
}

/// Exchanges a refresh token for a new bundle; a second use of the same token revokes the session.
pub async fn refresh(state: &AppState, refresh_token: &str) -> ApiResult<TokenBundle> {
    let claims = state
        .tokens
        .verify(refresh_token, TokenType::Refresh)
        .map_err(|err| match err {
            TokenError::Expired => ApiError::unauthorized("REFRESH_TOKEN_EXPIRED", "Refresh token expired"),
            _ => ApiError::unauthorized("INVALID_REFRESH_TOKEN", "Invalid refresh token"),
        })?;
    let mut tx = begin_tenant(&state.pool, claims.app_id).await?;
    let subject = sessions::token_subject(&mut tx, claims.app_id, &claims.user_id, claims.sid).await?;
    if let Some(subject) = &subject
        && subject
            .tokens_valid_after
            .is_some_and(|after| claims.iat < after.unsigned_abs())
    {
        return Err(ApiError::unauthorized(
            "INVALID_REFRESH_TOKEN",
            "Token has been revoked",
        ));
    }
    if subject.is_none() {
        return Err(ApiError::unauthorized(
            "INVALID_REFRESH_TOKEN",
            "Token user not found",
        ));
    }
    let next = state
        .tokens
        .issue(claims.app_id, &claims.user_id, claims.sid, claims.has_mfa())
        .map_err(token_fault)?;
    let rotation = sessions::rotate_refresh(
        &mut tx,
        claims.app_id,
        claims.sid,
        &claims.user_id,
        claims.jti,
        next.refresh_jti,
    )
    .await?;
    // Commit in every case: a replay must leave the session revoked.
    tx.commit().await?;
    match rotation {
        Rotation::Rotated { .. } => Ok(next),
        Rotation::Replayed => {
            tracing::warn!(app_id = %claims.app_id, session = %claims.sid, "refresh token replay: session revoked");
            Err(ApiError::unauthorized(
                "INVALID_REFRESH_TOKEN",
                "Refresh token replay detected",
            ))
        }
        Rotation::NoSession => Err(ApiError::unauthorized(
            "INVALID_REFRESH_TOKEN",
            "Token session has been revoked",
        )),
    }
}

/// Checks an access token: signature and claims, MFA when required, then that the user exists,
/// its tokens were not revoked after `iat`, and the session is live.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<AuthUser> {
    let claims: Claims = state
        .tokens
        .verify(token, TokenType::Access)
        .map_err(|err| match err {
            TokenError::Expired => ApiError::unauthorized("TOKEN_EXPIRED", "Token expired"),
            TokenError::WrongType => ApiError::unauthorized("INVALID_TOKEN_TYPE", "Invalid token type"),
            _ => ApiError::unauthorized("INVALID_TOKEN", "Invalid token"),
        })?;
    if state.config.require_mfa && !claims.has_mfa() {
        return Err(ApiError::forbidden(
            "MFA_REQUIRED",
            "Multi-factor authentication is required",
        ));
    }
    // One round trip on every authenticated request (see migration 0003).
    let subject =
        sessions::token_subject_once(&state.pool, claims.app_id, &claims.user_id, claims.sid).await?;
    let subject = subject.ok_or_else(|| ApiError::unauthorized("INVALID_TOKEN", "Token user not found"))?;
    if subject
        .tokens_valid_after
        .is_some_and(|after| claims.iat < after.unsigned_abs())
    {
        return Err(ApiError::unauthorized("TOKEN_REVOKED", "Token has been revoked"));
    }
    if !subject.session_found || !subject.session_live {
        return Err(ApiError::unauthorized(
            "TOKEN_REVOKED",
            "Token session has been revoked",
        ));
    }
    Ok(AuthUser {
        app_id: claims.app_id,
        user_id: claims.user_id,
        session_id: claims.sid,
        name: subject.name,
        image: subject.image_url,
        is_app_admin: subject.is_admin,
        profile: Profile {
            custom: subject.custom_data,
            last_active_at: subject.last_active_at,
            created_at: subject.created_at,
            updated_at: subject.updated_at,
        },
        scopes: claims.scopes,
    })
}

/// Revokes all of a user's tokens and sessions.
pub async fn revoke_user_tokens(state: &AppState, app_id: Uuid, user_id: &str) -> ApiResult<()> {
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    sessions::revoke_user(&mut tx, app_id, user_id, "user_token_revoke").await?;
    tx.commit().await?;
    Ok(())
}

fn token_fault(err: TokenError) -> ApiError {
    ApiError::Internal(format!("token signing: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(user_id: &str) -> ConnectInput {
        ConnectInput {
            user_id: user_id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn connect_input_is_validated_field_by_field() {
        let field = |r: ApiResult<()>| match r {
            Err(ApiError::BadRequest { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        };
        assert!(validate_connect(&input("alice")).is_ok());
        assert_eq!(field(validate_connect(&input(""))), Some("userId".into()));
        assert_eq!(
            field(validate_connect(&input(&"x".repeat(256)))),
            Some("userId".into())
        );
        assert_eq!(field(validate_connect(&input("a\u{0}b"))), Some("userId".into()));
        let bad_avatar = ConnectInput {
            avatar: Some("javascript:alert(1)".into()),
            ..input("a")
        };
        assert_eq!(field(validate_connect(&bad_avatar)), Some("avatar".into()));
        let empty_avatar = ConnectInput {
            avatar: Some(String::new()),
            ..input("a")
        };
        assert!(validate_connect(&empty_avatar).is_ok());
        let bad_email = ConnectInput {
            email: Some("nope".into()),
            ..input("a")
        };
        assert_eq!(field(validate_connect(&bad_email)), Some("email".into()));
    }
}
