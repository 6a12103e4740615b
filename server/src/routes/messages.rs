//! `/api/channels/{channelId}/messages`: send and list.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
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

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/channels/{channel_id}/messages", get(list).post(send))
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
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|row| {
            let mut value = wire::message(row);
            if let Some(obj) = value.as_object_mut() {
                obj.insert("reactions".into(), json!([]));
                obj.insert("mentions".into(), json!([]));
            }
            value
        })
        .collect();
    Ok(Json(
        json!({ "messages": messages, "maxSeq": page.max_seq, "hasMore": page.has_more }),
    ))
}
