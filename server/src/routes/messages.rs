//! `/api/channels/{channelId}/messages`: send, list, get, edit, delete, threads, reactions, pins.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{ApiJson, ApiQuery, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::messages::{self, ListQuery, SendMessage, Sent};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::wire;

const BASE: &str = "/api/channels/{channel_id}/messages";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list).post(send))
        .route(&format!("{BASE}/pins"), get(pins))
        .route(
            &format!("{BASE}/{{message_id}}"),
            get(show).patch(edit).delete(remove),
        )
        .route(&format!("{BASE}/{{message_id}}/thread"), get(thread).post(reply))
        .route(&format!("{BASE}/{{message_id}}/reactions"), post(react))
        .route(
            &format!("{BASE}/{{message_id}}/reactions/{{emoji}}"),
            delete(unreact),
        )
        .route(&format!("{BASE}/{{message_id}}/pin"), post(pin).delete(unpin))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactBody {
    emoji: String,
}

fn ids(channel_id: &str, message_id: &str) -> ApiResult<(Uuid, Uuid)> {
    Ok((
        path_id(channel_id, "channelId")?,
        path_id(message_id, "messageId")?,
    ))
}

async fn show(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::get(&state, &user, c, m).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)))
}

async fn edit(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EditBody>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::edit(&state, &user, c, m, &body.text).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)))
}

async fn remove(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    messages::delete(&state, &user, c, m).await?;
    Ok(Json(json!({ "success": true })))
}

async fn thread(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (root, replies, reactions) = messages::thread(&state, &user, c, m).await?;
    Ok(Json(json!({
        "parent": wire::message(&root),
        "replies": replies.iter().map(|r| wire::message_full(r, &reactions, &user.user_id)).collect::<Vec<_>>(),
    })))
}

/// A thread reply: a send with `parentId` taken from the path.
async fn reply(
    user: AuthUser,
    state: State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    body.parent_id = Some(path_id(&message_id, "messageId")?);
    send(user, state, Path(channel_id), ApiJson(body)).await
}

async fn react(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ReactBody>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::react(&state, &user, c, m, &body.emoji, true).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)))
}

async fn unreact(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id, emoji)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::react(&state, &user, c, m, &emoji, false).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)))
}

async fn pin(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::pin(&state, &user, c, m, true).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)))
}

async fn unpin(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (c, m) = ids(&channel_id, &message_id)?;
    let (row, reactions) = messages::pin(&state, &user, c, m, false).await?;
    Ok(Json(wire::message_full(&row, &reactions, &user.user_id)))
}

async fn pins(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let rows = messages::pins(&state, &user, path_id(&channel_id, "channelId")?).await?;
    let reactions = messages::reactions_of(&state, user.app_id, &rows).await?;
    Ok(Json(json!({
        "messages": rows.iter().map(|r| wire::message_full(r, &reactions, &user.user_id)).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SendBody {
    text: String,
    client_msg_id: Option<String>,
    attachments: Option<Vec<Value>>,
    parent_id: Option<Uuid>,
    reply_to_id: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
struct ListParams {
    since_seq: Option<i64>,
    before: Option<Uuid>,
    after: Option<Uuid>,
    limit: Option<i64>,
}

async fn send(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = SendMessage {
        text: body.text,
        client_msg_id: body.client_msg_id,
        attachments: body.attachments,
        parent_id: body.parent_id,
        reply_to_id: body.reply_to_id,
    };
    Ok(
        match messages::send(&state, &user, path_id(&channel_id, "channelId")?, input).await? {
            Sent::Created(row) => {
                let mut value = wire::message(&row);
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("mentions".into(), json!([]));
                    obj.insert("reactions".into(), json!([]));
                }
                (StatusCode::CREATED, Json(value))
            }
            Sent::Duplicate { id, seq } => (
                StatusCode::OK,
                Json(json!({ "id": id, "seq": seq, "status": "sent", "duplicate": true })),
            ),
        },
    )
}

async fn list(
    user: AuthUser,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    let query = ListQuery {
        since_seq: params.since_seq,
        before: params.before,
        after: params.after,
        limit: params.limit,
    };
    let page = messages::list(&state, &user, path_id(&channel_id, "channelId")?, query).await?;
    let reactions = messages::reactions_of(&state, user.app_id, &page.messages).await?;
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|row| wire::message_full(row, &reactions, &user.user_id))
        .collect();
    Ok(Json(
        json!({ "messages": messages, "maxSeq": page.max_seq, "hasMore": page.has_more }),
    ))
}
