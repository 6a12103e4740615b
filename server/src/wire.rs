//! JSON shapes of channels and messages, as upstream's clients expect them (see
//! `docs/wire-contract.md`). Shared by HTTP responses and realtime event payloads.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::storage::channels::{ChannelRow, MemberRow};
use crate::storage::messages::{MessageRow, ReactionGroup};
use crate::storage::users::UserRow;

/// Channel object; the membership fields are the viewer's (`null` for non-members).
pub fn channel(row: &ChannelRow) -> Value {
    let unread = row.last_read_seq.map(|read| (row.last_seq - read).max(0));
    let mut value = json!({
        "id": row.id,
        "cid": row.cid,
        "type": row.kind,
        "name": row.name,
        "image": row.image_url,
        "memberCount": row.member_count,
        "messageCount": row.message_count,
        "lastMessageAt": row.last_message_at,
        "createdBy": row.created_by,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "config": row.config,
        "workspaceId": null,
        "lastReadSeq": row.last_read_seq,
        "unreadCount": unread,
        "muted": row.muted,
        "starred": row.starred,
        "role": row.role,
    });
    if let (Some(key), Some(obj)) = (&row.idempotency_key, value.as_object_mut()) {
        obj.insert("idempotencyKey".into(), Value::String(key.clone()));
    }
    value
}

fn email(custom: Option<&Value>) -> Value {
    custom
        .and_then(|c| c.get("email"))
        .filter(|e| e.is_string())
        .cloned()
        .unwrap_or(Value::Null)
}

/// Member entry of channel lists and `GET /:id/members`.
pub fn member(row: &MemberRow) -> Value {
    json!({
        "id": row.user_id,
        "name": row.name,
        "image": row.image_url,
        "email": email(row.custom_data.as_ref()),
        "custom": row.custom_data.clone().unwrap_or_else(|| json!({})),
        "role": row.role,
        "joinedAt": row.joined_at,
    })
}

/// Member entry of `GET /api/channels/:id`.
pub fn channel_member(row: &MemberRow) -> Value {
    json!({
        "userId": row.user_id,
        "role": row.role,
        "joinedAt": row.joined_at,
        "user": {
            "id": row.user_id,
            "name": row.name,
            "image": row.image_url,
            "email": email(row.custom_data.as_ref()),
            "custom": row.custom_data.clone().unwrap_or_else(|| json!({})),
        },
    })
}

/// `[]` for the fields upstream always sends empty.
type Empty = [(); 0];

/// A deleted message's attachments.
static NO_ATTACHMENTS: Value = Value::Array(Vec::new());

/// Message object (camelCase plus upstream's legacy snake_case timestamps). Serialized straight
/// from the row: the hottest responses (message pages) are built without a `Value` tree.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message<'a> {
    id: Uuid,
    channel_id: Uuid,
    cid: Uuid,
    user_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    text: Option<&'a str>,
    seq: i64,
    client_msg_id: Cow<'a, str>,
    user: Sender<'a>,
    attachments: &'a Value,
    parent_id: Option<Uuid>,
    reply_to_id: Option<Uuid>,
    reaction_count: i32,
    reply_count: i32,
    thread_count: i32,
    status: &'a str,
    pinned: bool,
    pinned_at: Option<DateTime<Utc>>,
    pinned_by: Option<&'a str>,
    link_previews: Empty,
    poll_id: Option<Uuid>,
    poll: Option<()>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    hard_deleted_at: Option<()>,
    #[serde(rename = "created_at")]
    legacy_created_at: DateTime<Utc>,
    #[serde(rename = "updated_at")]
    legacy_updated_at: DateTime<Utc>,
    #[serde(rename = "deleted_at")]
    legacy_deleted_at: Option<DateTime<Utc>>,
    #[serde(rename = "hard_deleted_at")]
    legacy_hard_deleted_at: Option<()>,
    /// Only in [`message_full`].
    #[serde(skip_serializing_if = "Option::is_none")]
    reactions: Option<Vec<Reaction<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mentions: Option<Empty>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Sender<'a> {
    id: &'a str,
    name: Option<&'a str>,
    image: Option<&'a str>,
    custom: Option<&'a Value>,
    last_active_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `type` is the emoji, as upstream sends it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Reaction<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    emoji: &'a str,
    count: i64,
    user_ids: &'a [String],
    own: bool,
}

pub fn message(row: &MessageRow) -> Message<'_> {
    let deleted = row.deleted_at.is_some();
    let updated_at = row.edited_at.unwrap_or(row.created_at);
    Message {
        id: row.id,
        channel_id: row.channel_id,
        cid: row.channel_id,
        user_id: &row.user_id,
        kind: if deleted { "deleted" } else { "regular" },
        text: if deleted { None } else { row.text.as_deref() },
        seq: row.seq,
        client_msg_id: row
            .client_msg_id
            .as_deref()
            .map_or_else(|| Cow::Owned(row.id.to_string()), Cow::Borrowed),
        user: Sender {
            id: &row.user_id,
            name: row.user_name.as_deref(),
            image: row.user_image.as_deref(),
            custom: row.user_custom.as_ref(),
            last_active_at: row.user_last_active_at,
            created_at: row.user_created_at.unwrap_or(row.created_at),
            updated_at: row.user_updated_at.unwrap_or(row.created_at),
        },
        attachments: if deleted {
            &NO_ATTACHMENTS
        } else {
            &row.attachments
        },
        parent_id: row.parent_id,
        reply_to_id: row.reply_to_id,
        reaction_count: row.reaction_count,
        reply_count: row.reply_count,
        thread_count: row.reply_count,
        status: &row.status,
        pinned: row.pinned_at.is_some(),
        pinned_at: row.pinned_at,
        pinned_by: row.pinned_by.as_deref(),
        link_previews: [],
        poll_id: row.poll_id,
        poll: None,
        created_at: row.created_at,
        updated_at,
        deleted_at: row.deleted_at,
        hard_deleted_at: None,
        legacy_created_at: row.created_at,
        legacy_updated_at: updated_at,
        legacy_deleted_at: row.deleted_at,
        legacy_hard_deleted_at: None,
        reactions: None,
        mentions: None,
    }
}

/// Payload of the `message.*` realtime events.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent<'a> {
    pub channel_id: Uuid,
    pub message: Message<'a>,
}

/// A page of `GET /api/channels/:id/messages`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage<'a> {
    pub messages: Vec<Message<'a>>,
    pub max_seq: i64,
    pub has_more: bool,
}

/// Message with its reactions (`[{type, emoji, count, userIds, own}]`) and `mentions: []`.
pub fn message_full<'a>(row: &'a MessageRow, reactions: &'a [ReactionGroup], viewer: &str) -> Message<'a> {
    let list = reactions
        .iter()
        .filter(|r| r.message_id == row.id)
        .map(|r| Reaction {
            kind: &r.emoji,
            emoji: &r.emoji,
            count: r.count,
            user_ids: &r.user_ids,
            own: r.user_ids.iter().any(|u| u == viewer),
        })
        .collect();
    Message {
        reactions: Some(list),
        mentions: Some([]),
        ..message(row)
    }
}

/// User object of `/api/users`.
pub fn user(row: &UserRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "image": row.image_url,
        "email": email(Some(&row.custom_data)),
        "custom": row.custom_data,
        "lastActiveAt": row.last_active_at,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    })
}
