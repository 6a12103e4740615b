//! `/api/channels`: create, list, get, members, unread count.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::extract::{ApiJson, ApiQuery, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::channels::{self, CreateChannel};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::wire;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/channels", get(list).post(create))
        .route("/api/channels/unread-count", get(unread_count))
        .route("/api/channels/{channel_id}", get(show))
        .route(
            "/api/channels/{channel_id}/members",
            get(members).post(add_members),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    image: Option<String>,
    #[serde(default)]
    member_ids: Vec<String>,
    workspace_id: Option<String>,
    idempotency_key: Option<String>,
    config: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddMembersBody {
    user_id: Option<String>,
    user_ids: Option<Vec<String>>,
}

async fn create(
    user: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if body.workspace_id.is_some() {
        return Err(ApiError::invalid(
            "workspaceId",
            "workspaces are not supported yet",
        ));
    }
    let input = CreateChannel {
        kind: body.kind,
        name: body.name,
        image: body.image,
        member_ids: body.member_ids,
        idempotency_key: body.idempotency_key,
        config: body.config.map(Value::Object),
    };
    let (row, created) = channels::create(&state, &user, input).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(wire::channel(&row))))
}

async fn list(
    user: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let offset = query.offset.unwrap_or(0).max(0);
    let rows = channels::list(&state, &user, query.kind.as_deref(), limit, offset).await?;
    let channels: Vec<Value> = rows
        .iter()
        .map(|(row, members)| {
            let mut value = wire::channel(row);
            if let (Some(members), Some(obj)) = (members, value.as_object_mut()) {
                obj.insert("members".into(), members.iter().map(wire::member).collect());
            }
            value
        })
        .collect();
    Ok(Json(json!({ "channels": channels })))
}

async fn unread_count(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "count": channels::total_unread(&state, &user).await? }),
    ))
}

async fn show(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (row, members) = channels::get(&state, &user, path_id(&channel_id, "channelId")?).await?;
    let mut value = wire::channel(&row);
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "members".into(),
            members.iter().map(wire::channel_member).collect(),
        );
    }
    Ok(Json(value))
}

async fn members(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let members = channels::members(&state, &user, path_id(&channel_id, "channelId")?).await?;
    Ok(Json(
        json!({ "members": members.iter().map(wire::member).collect::<Vec<_>>() }),
    ))
}

async fn add_members(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<AddMembersBody>,
) -> ApiResult<Json<Value>> {
    let ids = match (body.user_ids, body.user_id) {
        (Some(ids), _) => ids,
        (None, Some(id)) => vec![id],
        (None, None) => {
            return Err(ApiError::invalid(
                "userIds",
                "Either userId or userIds must be provided",
            ));
        }
    };
    let added = channels::add_members(&state, &user, path_id(&channel_id, "channelId")?, ids).await?;
    Ok(Json(json!({ "success": true, "addedCount": added })))
}
