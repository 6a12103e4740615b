//! `/admin/apps`: the platform administrator manages apps (tenants) and their API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::extract::{Admin, ApiJson, ApiQuery, path_id};
use crate::domain::apps;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::storage::apps::{AppRow, AppStats};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/apps", get(list).post(create))
        .route("/admin/apps/{id}", get(show).patch(update).delete(remove))
        .route("/admin/apps/{id}/regenerate-key", post(regenerate_key))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    name: String,
    settings: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateApp {
    name: Option<String>,
    settings: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
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

async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> ApiResult<Json<Value>> {
    let limit = paging.limit.unwrap_or(50).clamp(1, 200);
    let offset = paging.offset.unwrap_or(0).max(0);
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

async fn show(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (app, stats) = apps::get(&state.pool, path_id(&id, "id")?).await?;
    Ok(Json(app_json(&app, stats)))
}

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

async fn remove(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let stats = apps::delete(&state.pool, path_id(&id, "id")?).await?;
    Ok(Json(json!({
        "success": true,
        "deleted": { "users": stats.users, "channels": stats.channels, "messages": stats.messages },
    })))
}

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
