//! `/admin/apps`: the platform administrator manages apps (tenants) and their API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admin, ApiJson, ApiQuery, path_id};
use crate::domain::apps;
use crate::error::ApiResult;
use crate::openapi::AdminErrors;
use crate::state::AppState;
use crate::storage::apps::{AppRow, AppStats};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(regenerate_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    /// 1..255 characters.
    name: String,
    #[schema(value_type = Option<Object>)]
    settings: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateApp {
    name: Option<String>,
    /// Merged into the stored settings.
    #[schema(value_type = Option<Object>)]
    settings: Option<Map<String, Value>>,
}

/// `limit` 1..200 (default 50), `offset` ≥ 0.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Paging {
    limit: Option<i64>,
    offset: Option<i64>,
}

fn stats_json(stats: AppStats) -> Value {
    json!({ "userCount": stats.users, "channelCount": stats.channels, "messageCount": stats.messages })
}

fn app_json(app: &AppRow, stats: AppStats) -> Value {
    json!({
        "id": app.id,
        "name": app.name,
        "settings": app.settings,
        "createdAt": app.created_at,
        "updatedAt": app.updated_at,
        "stats": stats_json(stats),
    })
}

#[utoipa::path(post, path = "/admin/apps", tag = "admin", operation_id = "createApp",
    security(("adminKey" = [])), request_body = CreateApp,
    responses((status = 201, description = "The app with its API key (shown once)", body = Value), AdminErrors))]
async fn create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateApp>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = apps::create(&state.pool, &body.name, body.settings.map(Value::Object)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": created.app.id,
            "name": created.app.name,
            "apiKey": created.api_key,
            "apiKeyId": created.key.id,
            "apiKeyName": created.key.name,
            "settings": created.app.settings,
            "createdAt": created.app.created_at,
            "warnings": ["apiKey is shown once; store it securely."],
        })),
    ))
}

#[utoipa::path(get, path = "/admin/apps", tag = "admin", operation_id = "listApps",
    security(("adminKey" = [])), params(Paging),
    responses((status = 200, description = "`{apps, total, limit, offset}`", body = Value), AdminErrors))]
async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> ApiResult<Json<Value>> {
    let limit = crate::domain::paging::limit(paging.limit, 50, 200)?;
    let offset = crate::domain::paging::offset(paging.offset)?;
    let (rows, total) = crate::storage::apps::list_apps(&state.pool, limit, offset).await?;
    let mut apps = Vec::with_capacity(rows.len());
    for app in &rows {
        apps.push(app_json(
            app,
            crate::storage::apps::stats(&state.pool, app.id).await?,
        ));
    }
    Ok(Json(
        json!({ "apps": apps, "total": total, "limit": limit, "offset": offset }),
    ))
}

#[utoipa::path(get, path = "/admin/apps/{id}", tag = "admin", operation_id = "getApp",
    security(("adminKey" = [])), params(("id" = Uuid, Path, description = "App id")),
    responses((status = 200, description = "The app with its stats", body = Value), AdminErrors))]
async fn show(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (app, stats) = apps::get(&state.pool, path_id(&id, "id")?).await?;
    Ok(Json(app_json(&app, stats)))
}

#[utoipa::path(patch, path = "/admin/apps/{id}", tag = "admin", operation_id = "updateApp",
    security(("adminKey" = [])), params(("id" = Uuid, Path, description = "App id")), request_body = UpdateApp,
    responses((status = 200, description = "`{id, name, settings, updatedAt}`", body = Value), AdminErrors))]
async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateApp>,
) -> ApiResult<Json<Value>> {
    let settings = body.settings.map(Value::Object);
    let app = apps::update(
        &state.pool,
        path_id(&id, "id")?,
        body.name.as_deref(),
        settings.as_ref(),
    )
    .await?;
    Ok(Json(
        json!({ "id": app.id, "name": app.name, "settings": app.settings, "updatedAt": app.updated_at }),
    ))
}

#[utoipa::path(delete, path = "/admin/apps/{id}", tag = "admin", operation_id = "deleteApp",
    security(("adminKey" = [])), params(("id" = Uuid, Path, description = "App id")),
    responses((status = 200, description = "`{success, deleted: {users, channels, messages}}`", body = Value), AdminErrors))]
async fn remove(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let stats = apps::delete(&state.pool, path_id(&id, "id")?).await?;
    Ok(Json(json!({
        "success": true,
        "deleted": { "users": stats.users, "channels": stats.channels, "messages": stats.messages },
    })))
}

#[utoipa::path(post, path = "/admin/apps/{id}/regenerate-key", tag = "admin", operation_id = "regenerateAppKey",
    security(("adminKey" = [])), params(("id" = Uuid, Path, description = "App id")),
    responses((status = 200, description = "`{id, apiKey, apiKeyId, createdAt}`; older keys revoked", body = Value), AdminErrors))]
async fn regenerate_key(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = path_id(&id, "id")?;
    let (key, api_key) = apps::regenerate_key(&state.pool, id).await?;
    Ok(Json(
        json!({ "id": id, "apiKey": api_key, "apiKeyId": key.id, "createdAt": key.created_at }),
    ))
}
