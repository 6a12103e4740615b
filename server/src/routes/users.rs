//! `/api/users`: profile, directory, blocks; deletion by the app server.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::extract::{ApiJson, ApiQuery, AppKey};
use crate::domain::auth::AuthUser;
use crate::domain::users::{self, UpdateUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::wire;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/users", get(list))
        .route("/api/users/me", get(me).patch(update_me))
        .route("/api/users/me/blocked", get(blocked))
        .route("/api/users/{user_id}", get(show).delete(delete))
        .route("/api/users/{user_id}/block", post(block).delete(unblock))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    q: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    image: Option<String>,
    custom: Option<Map<String, Value>>,
}

async fn me(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(wire::user(
        &users::get(&state, user.app_id, &user.user_id).await?,
    )))
}

async fn update_me(
    user: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let input = UpdateUser {
        name: body.name,
        image: body.image,
        custom: body.custom,
    };
    Ok(Json(wire::user(&users::update_me(&state, &user, input).await?)))
}

async fn show(
    user: AuthUser,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(wire::user(
        &users::get(&state, user.app_id, &user_id).await?,
    )))
}

async fn list(
    user: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let offset = query.offset.unwrap_or(0).max(0);
    let rows = users::list(&state, &user, query.q.as_deref(), limit, offset).await?;
    Ok(Json(json!({
        "users": rows.iter().map(wire::user).collect::<Vec<_>>(),
        "limit": limit,
        "offset": offset,
    })))
}

async fn block(
    user: AuthUser,
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> ApiResult<Json<Value>> {
    users::block(&state, &user, &target, true).await?;
    Ok(Json(json!({ "success": true })))
}

async fn unblock(
    user: AuthUser,
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> ApiResult<Json<Value>> {
    users::block(&state, &user, &target, false).await?;
    Ok(Json(json!({ "success": true })))
}

async fn blocked(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let rows = users::blocked(&state, &user).await?;
    Ok(Json(
        json!({ "users": rows.iter().map(wire::user).collect::<Vec<_>>() }),
    ))
}

/// App-server only (`X-API-Key`); a user token is refused even when valid.
async fn delete(
    headers: HeaderMap,
    key: Result<AppKey, ApiError>,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let key = match key {
        Ok(key) => key,
        Err(_)
            if headers.contains_key(axum::http::header::AUTHORIZATION)
                && !headers.contains_key("x-api-key") =>
        {
            return Err(ApiError::forbidden(
                "FORBIDDEN",
                "Deleting users needs the app's API key",
            ));
        }
        Err(err) => return Err(err),
    };
    users::delete(&state, key.app_id, &user_id).await?;
    Ok(Json(json!({ "success": true })))
}
