//! Users: profile, directory, blocks, deletion by the app server.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::auth::{AuthUser, validate_user_id};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::users::{self, UserRow};
use crate::storage::{begin_tenant, sessions};

fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "USER_NOT_FOUND",
        message: "User not found".into(),
    }
}

pub async fn get(state: &AppState, app_id: Uuid, user_id: &str) -> ApiResult<UserRow> {
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = users::get(&mut tx, app_id, user_id).await?;
    tx.commit().await?;
    row.ok_or_else(not_found)
}

pub async fn list(
    state: &AppState,
    user: &AuthUser,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> ApiResult<Vec<UserRow>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 255) {
        return Err(ApiError::invalid("q", "q must be at most 255 characters"));
    }
    // `%` and `_` typed by a user are literal text, not patterns.
    let escaped = q.map(|q| q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let rows = users::list(&mut tx, user.app_id, escaped.as_deref(), limit, offset).await?;
    tx.commit().await?;
    Ok(rows)
}

#[derive(Debug, Clone, Default)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub image: Option<String>,
    pub custom: Option<Map<String, Value>>,
}

pub async fn update_me(state: &AppState, user: &AuthUser, input: UpdateUser) -> ApiResult<UserRow> {
    if input.name.is_none() && input.image.is_none() && input.custom.is_none() {
        return Err(ApiError::invalid("body", "Nothing to update"));
    }
    if input.name.as_ref().is_some_and(|n| n.chars().count() > 255) {
        return Err(ApiError::invalid("name", "name must be at most 255 characters"));
    }
    if input
        .image
        .as_ref()
        .is_some_and(|u| !u.is_empty() && !u.starts_with("https://") && !u.starts_with("http://"))
    {
        return Err(ApiError::invalid("image", "image must be an http(s) URL"));
    }
    let custom = input.custom.map(Value::Object);
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let row = users::update(
        &mut tx,
        user.app_id,
        &user.user_id,
        input.name.as_deref(),
        input.image.as_deref(),
        custom.as_ref(),
    )
    .await?;
    tx.commit().await?;
    row.ok_or_else(not_found)
}

pub async fn block(state: &AppState, user: &AuthUser, target: &str, blocked: bool) -> ApiResult<()> {
    validate_user_id("userId", target)?;
    if target == user.user_id {
        return Err(ApiError::invalid("userId", "Cannot block yourself"));
    }
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    if blocked {
        users::get(&mut tx, user.app_id, target)
            .await?
            .ok_or_else(not_found)?;
        users::block(&mut tx, user.app_id, &user.user_id, target).await?;
    } else if !users::unblock(&mut tx, user.app_id, &user.user_id, target).await? {
        return Err(ApiError::not_found("User is not blocked"));
    }
    tx.commit().await?;
    Ok(())
}

pub async fn blocked(state: &AppState, user: &AuthUser) -> ApiResult<Vec<UserRow>> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let rows = users::blocked(&mut tx, user.app_id, &user.user_id).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Deletion by the app server: the user can no longer sign in and every session ends.
pub async fn delete(state: &AppState, app_id: Uuid, user_id: &str) -> ApiResult<()> {
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    if !users::soft_delete(&mut tx, app_id, user_id).await? {
        return Err(not_found());
    }
    sessions::revoke_user(&mut tx, app_id, user_id, "user_deleted").await?;
    tx.commit().await?;
    Ok(())
}
