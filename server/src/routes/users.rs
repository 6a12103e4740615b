//! `/api/users`: profile, directory, blocks; deletion by the app server.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiQuery, AppKey};
use crate::domain::auth::AuthUser;
use crate::domain::users::{self, UpdateUser};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{KeyErrors, UserErrors};
use crate::state::AppState;
use crate::wire;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(me, update_me))
        .routes(routes!(blocked))
        .routes(routes!(show, delete))
        .routes(routes!(block, unblock))
}

/// `limit` 1..100 (default 50), `offset` ≥ 0, `q` a case-insensitive substring of id or name.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    q: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    image: Option<String>,
    /// Merged into the stored custom data.
    #[schema(value_type = Option<Object>)]
    custom: Option<Map<String, Value>>,
}

#[utoipa::path(get, path = "/api/users/me", tag = "users", operation_id = "getMe", security(("userToken" = [])),
    responses((status = 200, description = "The caller's user object", body = Value), UserErrors))]
async fn me(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(wire::user(
        &users::get(&state, user.app_id, &user.user_id).await?,
    )))
}

#[utoipa::path(patch, path = "/api/users/me", tag = "users", operation_id = "updateMe", security(("userToken" = [])),
    request_body = UpdateBody,
    responses((status = 200, description = "The updated user object", body = Value), UserErrors))]
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

#[utoipa::path(get, path = "/api/users/{user_id}", tag = "users", operation_id = "getUser", security(("userToken" = [])), params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "A user object", body = Value), UserErrors))]
async fn show(
    user: AuthUser,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(wire::user(
        &users::get(&state, user.app_id, &user_id).await?,
    )))
}

#[utoipa::path(get, path = "/api/users", tag = "users", operation_id = "listUsers", security(("userToken" = [])), params(ListQuery),
    responses((status = 200, description = "`{users, limit, offset}`", body = Value), UserErrors))]
async fn list(
    user: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = crate::domain::paging::limit(query.limit, 50, 100)?;
    let offset = crate::domain::paging::offset(query.offset)?;
    let rows = users::list(&state, &user, query.q.as_deref(), limit, offset).await?;
    Ok(Json(json!({
        "users": rows.iter().map(wire::user).collect::<Vec<_>>(),
        "limit": limit,
        "offset": offset,
    })))
}

#[utoipa::path(post, path = "/api/users/{user_id}/block", tag = "users", operation_id = "blockUser", security(("userToken" = [])), params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "`{success: true}`", body = Value), UserErrors))]
async fn block(
    user: AuthUser,
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> ApiResult<Json<Value>> {
    users::block(&state, &user, &target, true).await?;
    Ok(Json(json!({ "success": true })))
}

#[utoipa::path(delete, path = "/api/users/{user_id}/block", tag = "users", operation_id = "unblockUser", security(("userToken" = [])), params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "`{success: true}`", body = Value), UserErrors))]
async fn unblock(
    user: AuthUser,
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> ApiResult<Json<Value>> {
    users::block(&state, &user, &target, false).await?;
    Ok(Json(json!({ "success": true })))
}

#[utoipa::path(get, path = "/api/users/me/blocked", tag = "users", operation_id = "listBlocked", security(("userToken" = [])),
    responses((status = 200, description = "`{users}`", body = Value), UserErrors))]
async fn blocked(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let rows = users::blocked(&state, &user).await?;
    Ok(Json(
        json!({ "users": rows.iter().map(wire::user).collect::<Vec<_>>() }),
    ))
}

/// App-server only (`X-API-Key`); a user token is refused even when valid.
#[utoipa::path(delete, path = "/api/users/{user_id}", tag = "users", operation_id = "deleteUser",
    security(("appApiKey" = [])), params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "`{success: true}`; sessions revoked", body = Value),
        (status = 403, description = "A user token cannot delete users", body = crate::openapi::ErrorBody), KeyErrors))]
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
