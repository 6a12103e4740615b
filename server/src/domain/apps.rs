//! Apps (tenants) and their API keys.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::storage::apps::{self, ApiKeyRow, AppRow, AppStats};

/// Name of the key created with an app (upstream's).
const FIRST_KEY_NAME: &str = "admin-created-server";

/// A new API key: `chatsdk_` and 40 hex digits (160 random bits), upstream's format.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 20];
    rand::fill(&mut bytes[..]);
    format!("chatsdk_{}", hex::encode(bytes))
}

/// Keys are stored as SHA-256: they are random and long, so no slow hash or salt is needed,
/// and a lookup by hash stays an index probe.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub fn validate_name(name: &str) -> ApiResult<&str> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::invalid("name", "name must be 1 to 255 characters"));
    }
    Ok(trimmed)
}

fn validate_settings(settings: &Value) -> ApiResult<()> {
    if !settings.is_object() {
        return Err(ApiError::invalid("settings", "settings must be an object"));
    }
    Ok(())
}

#[derive(Debug)]
pub struct CreatedApp {
    pub app: AppRow,
    pub key: ApiKeyRow,
    /// Plaintext key, returned once.
    pub api_key: String,
}

pub async fn create(pool: &PgPool, name: &str, settings: Option<Value>) -> ApiResult<CreatedApp> {
    let name = validate_name(name)?;
    let settings = settings.unwrap_or_else(|| serde_json::json!({ "ai_enabled": false }));
    validate_settings(&settings)?;
    let api_key = generate_api_key();
    let mut tx = pool.begin().await?;
    let app = apps::insert_app(&mut tx, Uuid::now_v7(), name, &settings).await?;
    let key = apps::insert_api_key(&mut tx, app.id, FIRST_KEY_NAME, &hash_api_key(&api_key)).await?;
    tx.commit().await?;
    Ok(CreatedApp { app, key, api_key })
}

pub async fn update(
    pool: &PgPool,
    id: Uuid,
    name: Option<&str>,
    settings: Option<&Value>,
) -> ApiResult<AppRow> {
    if name.is_none() && settings.is_none() {
        return Err(ApiError::bad_request(
            "VALIDATION_ERROR",
            "No fields to update",
            "body",
        ));
    }
    let name = name.map(validate_name).transpose()?;
    if let Some(settings) = settings {
        validate_settings(settings)?;
    }
    apps::update_app(pool, id, name, settings)
        .await?
        .ok_or_else(|| ApiError::not_found("App not found"))
}

pub async fn get(pool: &PgPool, id: Uuid) -> ApiResult<(AppRow, AppStats)> {
    let mut conn = pool.acquire().await?;
    let app = apps::get_app(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("App not found"))?;
    drop(conn);
    Ok((app, apps::stats(pool, id).await?))
}

/// Deletes the app and (by cascade) all its data; returns what was there.
pub async fn delete(pool: &PgPool, id: Uuid) -> ApiResult<AppStats> {
    let stats = apps::stats(pool, id).await?;
    let mut conn = pool.acquire().await?;
    if !apps::delete_app(&mut conn, id).await? {
        return Err(ApiError::not_found("App not found"));
    }
    Ok(stats)
}

/// Revokes every key of the app and issues a new one.
pub async fn regenerate_key(pool: &PgPool, id: Uuid) -> ApiResult<(ApiKeyRow, String)> {
    let mut tx = pool.begin().await?;
    // Lock the app row so two regenerations cannot both leave a live key.
    let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM app WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(ApiError::not_found("App not found"));
    }
    apps::revoke_api_keys(&mut tx, id).await?;
    let api_key = generate_api_key();
    let key = apps::insert_api_key(&mut tx, id, "regenerated-server", &hash_api_key(&api_key)).await?;
    tx.commit().await?;
    Ok((key, api_key))
}

/// The key of the app `POST /api/auth/connect-dev` signs users into (upstream's fixed
/// development key; that route exists only in explicit development mode).
pub const DEV_API_KEY: &str = "dev-api-key";

/// The development app, created with [`DEV_API_KEY`] on first use.
pub async fn dev_app(pool: &PgPool) -> ApiResult<Uuid> {
    let hash = hash_api_key(DEV_API_KEY);
    if let Some(id) = apps::app_for_key_hash(pool, &hash).await? {
        return Ok(id);
    }
    let mut tx = pool.begin().await?;
    let app = apps::insert_app(&mut tx, Uuid::now_v7(), "Development App", &serde_json::json!({})).await?;
    match apps::insert_api_key(&mut tx, app.id, "dev", &hash).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(app.id)
        }
        // A concurrent first use created it: take that one.
        Err(err) if crate::storage::is_unique_violation(&err, "app_api_key_key_hash_key") => {
            drop(tx);
            apps::app_for_key_hash(pool, &hash)
                .await?
                .ok_or_else(|| ApiError::Internal("development app vanished".into()))
        }
        Err(err) => Err(err.into()),
    }
}

/// The app of an active API key.
pub async fn authenticate_key(pool: &PgPool, key: &str) -> ApiResult<Uuid> {
    apps::app_for_key_hash(pool, &hash_api_key(key))
        .await?
        .ok_or_else(|| ApiError::unauthorized("INVALID_API_KEY", "Invalid API key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_upstream_format_and_are_unique() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), "chatsdk_".len() + 40);
        assert!(a.starts_with("chatsdk_") && a[8..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn key_hash_is_sha256_hex() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn names_are_bounded() {
        assert!(validate_name("  ").is_err());
        assert!(validate_name(&"x".repeat(256)).is_err());
        assert_eq!(validate_name(" ok ").ok(), Some("ok"));
    }
}
