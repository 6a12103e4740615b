//! `/api/channels`: create, list, get, update, delete, members, ensure (app server), read state,
//! typing, search.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiQuery, AppKey, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::channels::{self, CreateChannel, UpdateChannel};
use crate::domain::messages;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{KeyErrors, UserErrors};
use crate::state::AppState;
use crate::storage::channels::ChannelRow;
use crate::wire;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(unread_count))
        .routes(routes!(ensure_dm))
        .routes(routes!(ensure_group))
        .routes(routes!(show, update, delete))
        .routes(routes!(members, add_members))
        .routes(routes!(set_role, remove_member))
        .routes(routes!(mark_read))
        .routes(routes!(typing))
        .routes(routes!(search_channel))
        .routes(routes!(search))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    image: Option<String>,
    /// Merged into the stored config.
    #[schema(value_type = Option<Object>)]
    config: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    /// owner, admin, moderator or member.
    role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReadBody {
    /// Read up to this message; absent = everything.
    message_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TypingBody {
    typing: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DmEnsureBody {
    requester_user_id: String,
    peer_user_id: String,
    /// Accepted for compatibility; the pair of users is the key.
    idempotency_key: Option<String>,
    #[schema(value_type = Option<Object>)]
    custom: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GroupEnsureBody {
    external_id: Option<String>,
    idempotency_key: Option<String>,
    name: Option<String>,
    image: Option<String>,
    /// 1..500 users; the first becomes owner.
    member_ids: Vec<String>,
    #[schema(value_type = Option<Object>)]
    custom: Option<Map<String, Value>>,
}

/// `q` 1..200 characters (websearch syntax), `limit` 1..100 (default 50).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(patch, path = "/api/channels/{channel_id}", tag = "channels", operation_id = "updateChannel", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")), request_body = UpdateBody,
    responses((status = 200, description = "The channel", body = Value), UserErrors))]
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

#[utoipa::path(delete, path = "/api/channels/{channel_id}", tag = "channels", operation_id = "deleteChannel", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "`{success: true}` (owner only)", body = Value), UserErrors))]
async fn delete(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Value>> {
    channels::delete(&state, &user, path_id(&channel_id, "channelId")?).await?;
    Ok(Json(json!({ "success": true })))
}

#[utoipa::path(patch, path = "/api/channels/{channel_id}/members/{user_id}", tag = "channels", operation_id = "setMemberRole", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("user_id" = String, Path, description = "Member's user id")), request_body = RoleBody,
    responses((status = 200, description = "`{success, userId, role}`", body = Value), UserErrors))]
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

#[utoipa::path(delete, path = "/api/channels/{channel_id}/members/{user_id}", tag = "channels", operation_id = "removeMember", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("user_id" = String, Path, description = "Member's user id")),
    responses((status = 200, description = "`{success: true}`", body = Value), UserErrors))]
async fn remove_member(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, target)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    channels::remove_member(&state, &user, path_id(&channel_id, "channelId")?, &target).await?;
    Ok(Json(json!({ "success": true })))
}

#[utoipa::path(post, path = "/api/channels/{channel_id}/read", tag = "channels", operation_id = "markRead", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")), request_body(content = Option<ReadBody>, description = "Optional; no body = everything read"),
    responses((status = 200, description = "`{success, lastReadSeq}`", body = Value), UserErrors))]
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

#[utoipa::path(post, path = "/api/channels/{channel_id}/typing", tag = "channels", operation_id = "typing", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")), request_body = TypingBody,
    responses((status = 200, description = "`{success: true}`", body = Value), UserErrors))]
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

#[utoipa::path(post, path = "/api/channels/dm/ensure", tag = "channels", operation_id = "ensureDm", security(("appApiKey" = [])),
    request_body = DmEnsureBody,
    responses((status = 201, description = "`{action: \"created\", created, channel}`", body = Value),
        (status = 200, description = "`{action: \"existing\", created, channel}`", body = Value), KeyErrors))]
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

#[utoipa::path(post, path = "/api/channels/group/ensure", tag = "channels", operation_id = "ensureGroup", security(("appApiKey" = [])),
    request_body = GroupEnsureBody,
    responses((status = 201, description = "`{action: \"created\", created, channel}`", body = Value),
        (status = 200, description = "`{action: \"existing\", created, channel}`", body = Value), KeyErrors))]
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
    let list: Vec<_> = rows
        .iter()
        .map(|r| wire::message_full(r, &reactions, &user.user_id))
        .collect();
    Ok(Json(json!({ "total": list.len(), "messages": list })))
}

#[utoipa::path(get, path = "/api/search", tag = "channels", operation_id = "search", security(("userToken" = [])),
    params(SearchQuery),
    responses((status = 200, description = "`{messages, total}`, newest first", body = Value), UserErrors))]
async fn search(
    user: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Value>> {
    search_in(&state, &user, None, query).await
}

#[utoipa::path(get, path = "/api/channels/{channel_id}/search", tag = "channels", operation_id = "searchChannel", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), SearchQuery),
    responses((status = 200, description = "`{messages, total}`, newest first", body = Value), UserErrors))]
async fn search_channel(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let id = path_id(&channel_id, "channelId")?;
    search_in(&state, &user, Some(id), query).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    /// messaging (DM, exactly one member id), group, team, livestream, public, private.
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    image: Option<String>,
    #[serde(default)]
    member_ids: Vec<String>,
    workspace_id: Option<String>,
    idempotency_key: Option<String>,
    #[schema(value_type = Option<Object>)]
    config: Option<Map<String, Value>>,
}

/// `limit` 1..100 (default 50), `offset` ≥ 0, `type` filters by channel type.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `userId` or `userIds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddMembersBody {
    user_id: Option<String>,
    user_ids: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/channels", tag = "channels", operation_id = "createChannel", security(("userToken" = [])),
    request_body = CreateBody,
    responses((status = 201, description = "The new channel", body = Value),
        (status = 200, description = "The existing channel (same DM pair or idempotencyKey)", body = Value), UserErrors))]
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

#[utoipa::path(get, path = "/api/channels", tag = "channels", operation_id = "listChannels", security(("userToken" = [])),
    params(ListQuery),
    responses((status = 200, description = "`{channels}` with unread counts", body = Value), UserErrors))]
async fn list(
    user: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = crate::domain::paging::limit(query.limit, 50, 100)?;
    let offset = crate::domain::paging::offset(query.offset)?;
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

#[utoipa::path(get, path = "/api/channels/unread-count", tag = "channels", operation_id = "unreadCount", security(("userToken" = [])),
    responses((status = 200, description = "`{count}` over all channels", body = Value), UserErrors))]
async fn unread_count(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "count": channels::total_unread(&state, &user).await? }),
    ))
}

#[utoipa::path(get, path = "/api/channels/{channel_id}", tag = "channels", operation_id = "getChannel", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "The channel with its members", body = Value), UserErrors))]
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

#[utoipa::path(get, path = "/api/channels/{channel_id}/members", tag = "channels", operation_id = "listMembers", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "`{members}`", body = Value), UserErrors))]
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

#[utoipa::path(post, path = "/api/channels/{channel_id}/members", tag = "channels", operation_id = "addMembers", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")), request_body = AddMembersBody,
    responses((status = 200, description = "`{success, addedCount}`", body = Value), UserErrors))]
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
