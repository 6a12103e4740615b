//! `/api/channels`: create, list, get, update, delete, members, ensure (app server), read state,
//! typing, search.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::extract::{ApiJson, ApiQuery, AppKey, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::channels::{self, CreateChannel, UpdateChannel};
use crate::domain::messages;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::channels::ChannelRow;
use crate::wire;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/channels", get(list).post(create))
        .route("/api/channels/unread-count", get(unread_count))
        .route("/api/channels/dm/ensure", post(ensure_dm))
        .route("/api/channels/group/ensure", post(ensure_group))
        .route(
            "/api/channels/{channel_id}",
            get(show).patch(update).delete(delete),
        )
        .route(
            "/api/channels/{channel_id}/members",
            get(members).post(add_members),
        )
        .route(
            "/api/channels/{channel_id}/members/{user_id}",
            patch(set_role).delete(remove_member),
        )
        .route("/api/channels/{channel_id}/read", post(mark_read))
        .route("/api/channels/{channel_id}/typing", post(typing))
        .route("/api/channels/{channel_id}/search", get(search_channel))
        .route("/api/search", get(search))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    image: Option<String>,
    config: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReadBody {
    message_id: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingBody {
    typing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DmEnsureBody {
    requester_user_id: String,
    peer_user_id: String,
    idempotency_key: Option<String>,
    custom: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GroupEnsureBody {
    external_id: Option<String>,
    idempotency_key: Option<String>,
    name: Option<String>,
    image: Option<String>,
    member_ids: Vec<String>,
    custom: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<i64>,
}

async fn update(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let input = UpdateChannel {
        name: body.name,
        image: body.image,
        config: body.config.map(Value::Object),
    };
    let row = channels::update(&state, &user, path_id(&channel_id, "channelId")?, input).await?;
    Ok(Json(wire::channel(&row)))
}

async fn delete(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Value>> {
    channels::delete(&state, &user, path_id(&channel_id, "channelId")?).await?;
    Ok(Json(json!({ "success": true })))
}

async fn set_role(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, target)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Json<Value>> {
    channels::set_role(
        &state,
        &user,
        path_id(&channel_id, "channelId")?,
        &target,
        &body.role,
    )
    .await?;
    Ok(Json(
        json!({ "success": true, "userId": target, "role": body.role }),
    ))
}

async fn remove_member(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, target)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    channels::remove_member(&state, &user, path_id(&channel_id, "channelId")?, &target).await?;
    Ok(Json(json!({ "success": true })))
}

async fn mark_read(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional: `{}` or nothing marks everything read.
    let message_id = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        super::extract::parse_json::<ReadBody>(&body)?.message_id
    };
    let seq = channels::mark_read(&state, &user, path_id(&channel_id, "channelId")?, message_id).await?;
    Ok(Json(json!({ "success": true, "lastReadSeq": seq })))
}

async fn typing(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<TypingBody>,
) -> ApiResult<Json<Value>> {
    channels::typing(&state, &user, path_id(&channel_id, "channelId")?, body.typing).await?;
    Ok(Json(json!({ "success": true })))
}

fn ensured(row: &ChannelRow, created: bool) -> (StatusCode, Json<Value>) {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let action = if created { "created" } else { "existing" };
    (
        status,
        Json(json!({ "action": action, "created": created, "channel": wire::channel(row) })),
    )
}

async fn ensure_dm(
    key: AppKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DmEnsureBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // A DM is keyed by its pair of users already; the idempotency key adds nothing.
    let _ = body.idempotency_key;
    let (row, created) = channels::ensure_dm(
        &state,
        key.app_id,
        &body.requester_user_id,
        &body.peer_user_id,
        body.custom.map(Value::Object),
    )
    .await?;
    Ok(ensured(&row, created))
}

async fn ensure_group(
    key: AppKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<GroupEnsureBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if body.member_ids.is_empty() || body.member_ids.len() > 500 {
        return Err(ApiError::invalid(
            "memberIds",
            "memberIds must name 1 to 500 users",
        ));
    }
    let (row, created) = channels::ensure_group(
        &state,
        key.app_id,
        body.external_id.or(body.idempotency_key),
        body.name,
        body.image,
        body.member_ids,
        body.custom.map(Value::Object),
    )
    .await?;
    Ok(ensured(&row, created))
}

async fn search_in(
    state: &AppState,
    user: &AuthUser,
    channel_id: Option<Uuid>,
    query: SearchQuery,
) -> ApiResult<Json<Value>> {
    let q = query.q.unwrap_or_default();
    let rows = messages::search(state, user, channel_id, &q, query.limit).await?;
    let reactions = messages::reactions_of(state, user.app_id, &rows).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| wire::message_full(r, &reactions, &user.user_id))
        .collect();
    Ok(Json(json!({ "messages": list, "total": list.len() })))
}

async fn search(
    user: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Value>> {
    search_in(&state, &user, None, query).await
}

async fn search_channel(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let id = path_id(&channel_id, "channelId")?;
    search_in(&state, &user, Some(id), query).await
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
