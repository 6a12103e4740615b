//! `/api/channels/{channelId}/messages`: send, list, get, edit, delete, threads, reactions, pins.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiQuery, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::messages::{self, ListQuery, SendMessage, Sent};
use crate::error::ApiResult;
use crate::openapi::UserErrors;
use crate::state::AppState;
use crate::wire;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, send))
        .routes(routes!(pins))
        .routes(routes!(show, edit, remove))
        .routes(routes!(thread, reply))
        .routes(routes!(react))
        .routes(routes!(unreact))
        .routes(routes!(pin, unpin))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EditBody {
    /// 1..10 000 characters.
    text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReactBody {
    /// 1..64 characters without spaces.
    emoji: String,
}

fn ids(channel_id: &str, message_id: &str) -> ApiResult<(Uuid, Uuid)> {
    Ok((
        path_id(channel_id, "channelId")?,
        path_id(message_id, "messageId")?,
    ))
}

#[utoipa::path(get, path = "/api/channels/{channel_id}/messages/{message_id}", tag = "messages", operation_id = "getMessage", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The message with reactions", body = Value), UserErrors))]
async fn show(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::get(&state, &user, c, m).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)).into_response())
}

#[utoipa::path(patch, path = "/api/channels/{channel_id}/messages/{message_id}", tag = "messages", operation_id = "editMessage", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")), request_body = EditBody,
    responses((status = 200, description = "The edited message (author only)", body = Value), UserErrors))]
async fn edit(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EditBody>,
) -> ApiResult<Response> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::edit(&state, &user, c, m, &body.text).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)).into_response())
}

#[utoipa::path(delete, path = "/api/channels/{channel_id}/messages/{message_id}", tag = "messages", operation_id = "deleteMessage", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "`{success: true}` (soft delete)", body = Value), UserErrors))]
async fn remove(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    messages::delete(&state, &user, c, m).await?;
    Ok(Json(json!({ "success": true })))
}

#[utoipa::path(get, path = "/api/channels/{channel_id}/messages/{message_id}/thread", tag = "messages", operation_id = "getThread", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "`{parent, replies}`", body = Value), UserErrors))]
async fn thread(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (root, replies, reactions) = messages::thread(&state, &user, c, m).await?;
    let replies: Vec<_> = replies
        .iter()
        .map(|r| wire::message_full(r, &reactions, &user.user_id))
        .collect();
    Ok(Json(json!({ "parent": wire::message(&root), "replies": replies })).into_response())
}

/// A thread reply: a send with `parentId` taken from the path.
#[utoipa::path(post, path = "/api/channels/{channel_id}/messages/{message_id}/thread", tag = "messages", operation_id = "replyInThread", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")), request_body = SendBody,
    responses((status = 201, description = "The reply", body = Value),
        (status = 200, description = "Duplicate `clientMsgId`: `{id, seq, status, duplicate: true}`", body = Value), UserErrors))]
async fn reply(
    user: AuthUser,
    state: State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<SendBody>,
) -> ApiResult<Response> {
    body.parent_id = Some(path_id(&message_id, "messageId")?);
    send(user, state, Path(channel_id), ApiJson(body)).await
}

#[utoipa::path(post, path = "/api/channels/{channel_id}/messages/{message_id}/reactions", tag = "messages", operation_id = "addReaction", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")), request_body = ReactBody,
    responses((status = 200, description = "The message with reactions", body = Value), UserErrors))]
async fn react(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ReactBody>,
) -> ApiResult<Response> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::react(&state, &user, c, m, &body.emoji, true).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)).into_response())
}

#[utoipa::path(delete, path = "/api/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", tag = "messages", operation_id = "removeReaction", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id"), ("emoji" = String, Path, description = "The reaction")),
    responses((status = 200, description = "The message with reactions", body = Value), UserErrors))]
async fn unreact(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id, emoji)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::react(&state, &user, c, m, &emoji, false).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)).into_response())
}

#[utoipa::path(post, path = "/api/channels/{channel_id}/messages/{message_id}/pin", tag = "messages", operation_id = "pinMessage", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The pinned message (moderator+)", body = Value), UserErrors))]
async fn pin(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::pin(&state, &user, c, m, true).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)).into_response())
}

#[utoipa::path(delete, path = "/api/channels/{channel_id}/messages/{message_id}/pin", tag = "messages", operation_id = "unpinMessage", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The unpinned message", body = Value), UserErrors))]
async fn unpin(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::pin(&state, &user, c, m, false).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)).into_response())
}

#[utoipa::path(get, path = "/api/channels/{channel_id}/messages/pins", tag = "messages", operation_id = "listPins", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "`{messages}`, newest pin first", body = Value), UserErrors))]
async fn pins(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let rows = messages::pins(&state, &user, path_id(&channel_id, "channelId")?).await?;
    let reactions = messages::reactions_of(&state, user.app_id, &rows).await?;
    let messages: Vec<_> = rows
        .iter()
        .map(|r| wire::message_full(r, &reactions, &user.user_id))
        .collect();
    Ok(Json(json!({ "messages": messages })).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SendBody {
    /// 1..10 000 characters.
    text: String,
    /// Makes the send idempotent (1..255 characters, unique per channel).
    client_msg_id: Option<String>,
    /// `{type: image|video|audio|file|giphy|voicenote, url, …}`, at most 32.
    #[schema(value_type = Option<Vec<Object>>)]
    attachments: Option<Vec<Value>>,
    parent_id: Option<Uuid>,
    reply_to_id: Option<Uuid>,
}

/// `since_seq` / `after` page forward, `before` (or nothing) pages backward; `limit` 1..200
/// (default 100).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    since_seq: Option<i64>,
    before: Option<Uuid>,
    after: Option<Uuid>,
    limit: Option<i64>,
}

#[utoipa::path(post, path = "/api/channels/{channel_id}/messages", tag = "messages", operation_id = "sendMessage", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id")), request_body = SendBody,
    responses((status = 201, description = "The message (with its gap-free `seq`)", body = Value),
        (status = 200, description = "Duplicate `clientMsgId`: `{id, seq, status, duplicate: true}`", body = Value), UserErrors))]
async fn send(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> ApiResult<Response> {
    let input = SendMessage {
        text: body.text,
        client_msg_id: body.client_msg_id,
        attachments: body.attachments,
        parent_id: body.parent_id,
        reply_to_id: body.reply_to_id,
    };
    Ok(
        match messages::send(&state, &user, path_id(&channel_id, "channelId")?, input).await? {
            Sent::Created(row) => (
                StatusCode::CREATED,
                Json(wire::message_full(&row, &[], &user.user_id)),
            )
                .into_response(),
            Sent::Duplicate { id, seq } => (
                StatusCode::OK,
                Json(json!({ "id": id, "seq": seq, "status": "sent", "duplicate": true })),
            )
                .into_response(),
        },
    )
}

#[utoipa::path(get, path = "/api/channels/{channel_id}/messages", tag = "messages", operation_id = "listMessages", security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ListParams),
    responses((status = 200, description = "`{messages, maxSeq, hasMore}`, ascending by seq", body = Value), UserErrors))]
async fn list(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let query = ListQuery {
        since_seq: params.since_seq,
        before: params.before,
        after: params.after,
        limit: params.limit,
    };
    let page = messages::list(&state, &user, path_id(&channel_id, "channelId")?, query).await?;
    let messages: Vec<_> = page
        .messages
        .iter()
        .map(|row| wire::message_full(row, &page.reactions, &user.user_id))
        .collect();
    Ok(Json(wire::MessagePage {
        messages,
        max_seq: page.max_seq,
        has_more: page.has_more,
    })
    .into_response())
}
