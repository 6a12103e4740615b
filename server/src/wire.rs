//! JSON shapes of channels and messages, as upstream's clients expect them (see
//! `docs/wire-contract.md`). Shared by HTTP responses and realtime event payloads.

use serde_json::{Value, json};

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

/// Message object (camelCase plus upstream's legacy snake_case timestamps).
pub fn message(row: &MessageRow) -> Value {
    let deleted = row.deleted_at.is_some();
    let updated_at = row.edited_at.unwrap_or(row.created_at);
    json!({
        "id": row.id,
        "channelId": row.channel_id,
        "cid": row.channel_id,
        "userId": row.user_id,
        "type": if deleted { "deleted" } else { "regular" },
        "text": if deleted { None } else { row.text.as_deref() },
        "seq": row.seq,
        "clientMsgId": row.client_msg_id.clone().unwrap_or_else(|| row.id.to_string()),
        "user": {
            "id": row.user_id,
            "name": row.user_name,
            "image": row.user_image,
            "custom": row.user_custom,
            "lastActiveAt": row.user_last_active_at,
            "createdAt": row.user_created_at.unwrap_or(row.created_at),
            "updatedAt": row.user_updated_at.unwrap_or(row.created_at),
        },
        "attachments": if deleted { json!([]) } else { row.attachments.clone() },
        "parentId": row.parent_id,
        "replyToId": row.reply_to_id,
        "reactionCount": row.reaction_count,
        "replyCount": row.reply_count,
        "threadCount": row.reply_count,
        "status": row.status,
        "pinned": row.pinned_at.is_some(),
        "pinnedAt": row.pinned_at,
        "pinnedBy": row.pinned_by,
        "linkPreviews": [],
        "pollId": null,
        "poll": null,
        "createdAt": row.created_at,
        "updatedAt": updated_at,
        "deletedAt": row.deleted_at,
        "hardDeletedAt": null,
        "created_at": row.created_at,
        "updated_at": updated_at,
        "deleted_at": row.deleted_at,
        "hard_deleted_at": null,
    })
}

/// Message with its reactions (`[{type, emoji, count, userIds, own}]`, `type` = emoji as in
/// upstream) and `mentions: []`.
pub fn message_full(row: &MessageRow, reactions: &[ReactionGroup], viewer: &str) -> Value {
    let mut value = message(row);
    let list: Vec<Value> = reactions
        .iter()
        .filter(|r| r.message_id == row.id)
        .map(|r| {
            json!({
                "type": r.emoji,
                "emoji": r.emoji,
                "count": r.count,
                "userIds": r.user_ids,
                "own": r.user_ids.iter().any(|u| u == viewer),
            })
        })
        .collect();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("reactions".into(), Value::Array(list));
        obj.insert("mentions".into(), json!([]));
    }
    value
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
