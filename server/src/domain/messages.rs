//! Messages: idempotent, gap-free sequenced sends and seq-ordered pages.

use chrono::SubsecRound;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::auth::AuthUser;
use crate::domain::channels::{is_public, visible};
use crate::domain::paging;
use crate::domain::realtime::{chat_channel, events};
use crate::domain::roles::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::TenantTx;
use crate::storage::channels::ChannelRow;
use crate::storage::messages::{self, Direction, MessageRow, ReactionGroup};
use crate::storage::{begin_tenant, outbox};
use crate::wire;

pub const MAX_TEXT_CHARS: usize = 10_000;
pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 200;
const MAX_ATTACHMENTS: usize = 32;
const ATTACHMENT_TYPES: &[&str] = &["image", "video", "audio", "file", "giphy", "voicenote"];

#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    pub text: String,
    pub client_msg_id: Option<String>,
    pub attachments: Option<Vec<Value>>,
    pub parent_id: Option<Uuid>,
    pub reply_to_id: Option<Uuid>,
}

#[derive(Debug)]
pub enum Sent {
    Created(Box<MessageRow>),
    /// A message with this `clientMsgId` exists already: nothing was written.
    Duplicate {
        id: Uuid,
        seq: i64,
    },
}

fn validate_send(input: &SendMessage) -> ApiResult<()> {
    let chars = input.text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(ApiError::invalid(
            "text",
            format!("text must be 1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    if input
        .client_msg_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > 255)
    {
        return Err(ApiError::invalid(
            "clientMsgId",
            "clientMsgId must be 1 to 255 characters",
        ));
    }
    if let Some(list) = &input.attachments {
        if list.len() > MAX_ATTACHMENTS {
            return Err(ApiError::invalid(
                "attachments",
                format!("at most {MAX_ATTACHMENTS} attachments"),
            ));
        }
        for (i, item) in list.iter().enumerate() {
            let kind = item.get("type").and_then(Value::as_str);
            let url = item.get("url").and_then(Value::as_str);
            if !kind.is_some_and(|k| ATTACHMENT_TYPES.contains(&k)) {
                return Err(ApiError::invalid(
                    format!("attachments[{i}].type"),
                    "unknown attachment type",
                ));
            }
            if !url.is_some_and(|u| u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ApiError::invalid(
                    format!("attachments[{i}].url"),
                    "url must be an http(s) URL",
                ));
            }
        }
    }
    Ok(())
}

/// Sends a message: one statement checks membership (joining a public channel on the first
/// send) and the thread links, takes the channel's next `seq` under its row lock and writes the
/// message, the parent's reply count, the sender's read mark and the `message.new` outbox row
/// (see [`messages::send`]). A repeated `clientMsgId` answers with the message already stored,
/// also when the repeat raced the original.
pub async fn send(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    input: SendMessage,
) -> ApiResult<Sent> {
    validate_send(&input)?;
    let app_id = user.app_id;
    // The row as it will be stored: every column is given (PostgreSQL keeps microseconds),
    // so the answer and the event render it without reading it back.
    let mut row = MessageRow {
        id: Uuid::now_v7(),
        channel_id,
        seq: 0,
        user_id: user.user_id.clone(),
        client_msg_id: input.client_msg_id,
        text: Some(input.text),
        attachments: Value::Array(input.attachments.unwrap_or_default()),
        parent_id: input.parent_id,
        reply_to_id: input.reply_to_id,
        reply_count: 0,
        reaction_count: 0,
        status: "sent".to_owned(),
        created_at: chrono::Utc::now().trunc_subsecs(6),
        edited_at: None,
        deleted_at: None,
        pinned_at: None,
        pinned_by: None,
        poll_id: None,
        user_name: user.name.clone(),
        user_image: user.image.clone(),
        user_custom: user.profile.custom.clone(),
        user_last_active_at: user.profile.last_active_at,
        user_created_at: user.profile.created_at,
        user_updated_at: user.profile.updated_at,
    };
    let payload = wire::MessageEvent {
        channel_id,
        message: wire::message(&row),
    };
    let channels = [chat_channel(app_id, channel_id)];
    let outcome = messages::send(
        &state.pool,
        app_id,
        &row,
        events::MESSAGE_NEW,
        &channels,
        &payload,
    )
    .await?;
    match outcome {
        messages::Sent::Stored(seq) => {
            row.seq = seq;
            Ok(Sent::Created(Box::new(row)))
        }
        messages::Sent::NotMember => Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel")),
        messages::Sent::NoChannel => Err(ApiError::not_found("Channel not found")),
        messages::Sent::Duplicate { id, seq } => Ok(Sent::Duplicate { id, seq }),
        messages::Sent::LostRace => {
            let client_id = row.client_msg_id.as_deref().unwrap_or_default();
            let mut tx = begin_tenant(&state.pool, app_id).await?;
            let existing = messages::by_client_msg_id(&mut tx, app_id, channel_id, client_id).await?;
            tx.commit().await?;
            let (id, seq) = existing
                .ok_or_else(|| ApiError::Internal("duplicate clientMsgId without its message".into()))?;
            Ok(Sent::Duplicate { id, seq })
        }
        messages::Sent::BadParent => Err(ApiError::invalid(
            "parentId",
            "parentId is not a top-level message of this channel",
        )),
        messages::Sent::BadReplyTo => Err(ApiError::invalid(
            "replyToId",
            "replyToId is not a message of this channel",
        )),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery {
    pub since_seq: Option<i64>,
    pub before: Option<Uuid>,
    pub after: Option<Uuid>,
    pub limit: Option<i64>,
}

#[derive(Debug)]
pub struct Page {
    /// Ascending by `seq`.
    pub messages: Vec<MessageRow>,
    pub max_seq: i64,
    pub has_more: bool,
    /// Reactions of the page's messages (read in the same transaction).
    pub reactions: Vec<ReactionGroup>,
}

/// The page size: 1..=200, default 100.
pub fn page_size(limit: Option<i64>) -> ApiResult<i64> {
    paging::limit(limit, DEFAULT_PAGE, MAX_PAGE)
}

/// A page of top-level messages. `since_seq` and `after` page forward (hasMore: newer remain);
/// the default (latest) and `before` page backward (hasMore: older remain).
pub async fn list(state: &AppState, user: &AuthUser, channel_id: Uuid, query: ListQuery) -> ApiResult<Page> {
    let limit = page_size(query.limit)?;
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let (direction, seq, message) = match (query.since_seq.filter(|s| *s > 0), query.before, query.after) {
        (Some(since), _, _) => (Direction::Forward, since, None),
        (None, Some(before), _) => (Direction::Backward, 0, Some((before, "before"))),
        (None, None, Some(after)) => (Direction::Forward, 0, Some((after, "after"))),
        (None, None, None) => (Direction::Backward, i64::MAX, None),
    };
    let cursor = match message {
        None => seq,
        // A message cursor is looked up only for those who may see the channel.
        Some((id, field)) => {
            visible(&mut tx, user, channel_id).await?;
            messages::seq_of(&mut tx, app_id, channel_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid(field, format!("{field} is not a message of this channel"))
                })?
        }
    };
    // One row more than asked tells whether another page exists.
    let page = messages::page(
        &mut tx,
        app_id,
        channel_id,
        &user.user_id,
        direction,
        cursor,
        limit + 1,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("Channel not found"))?;
    if !page.is_member && !is_public(&page.kind) {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
    }
    let mut rows = page.messages;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let reactions = messages::reactions_of_rows(&mut tx, app_id, &rows).await?;
    tx.commit().await?;
    if direction == Direction::Backward {
        rows.reverse();
    }
    Ok(Page {
        messages: rows,
        max_seq: page.last_seq,
        has_more,
        reactions,
    })
}

/// A message with its reactions.
pub type Full = (MessageRow, Vec<ReactionGroup>);

const MAX_EMOJI_CHARS: usize = 64;
const THREAD_PAGE: i64 = 200;

/// Opens a tenant transaction and finds the message in a channel the user may see.
async fn open(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    id: Uuid,
) -> ApiResult<(TenantTx, ChannelRow, MessageRow)> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let channel = visible(&mut tx, user, channel_id).await?;
    let row = messages::get(&mut tx, user.app_id, channel_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message not found"))?;
    Ok((tx, channel, row))
}

async fn full(tx: &mut TenantTx, app_id: Uuid, channel_id: Uuid, id: Uuid) -> ApiResult<Full> {
    let row = messages::get(tx, app_id, channel_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message not found"))?;
    let reactions = messages::reactions(tx, app_id, &[id]).await?;
    Ok((row, reactions))
}

fn role_of(channel: &ChannelRow) -> Option<Role> {
    channel.role.as_deref().and_then(Role::parse)
}

async fn announce_update(
    tx: &mut TenantTx,
    app_id: Uuid,
    (row, reactions): &Full,
    viewer: &str,
) -> ApiResult<()> {
    outbox::enqueue(
        tx,
        app_id,
        events::MESSAGE_UPDATED,
        &[chat_channel(app_id, row.channel_id)],
        &wire::MessageEvent {
            channel_id: row.channel_id,
            message: wire::message_full(row, reactions, viewer),
        },
    )
    .await?;
    Ok(())
}

pub async fn get(state: &AppState, user: &AuthUser, channel_id: Uuid, id: Uuid) -> ApiResult<Full> {
    let (mut tx, _, _) = open(state, user, channel_id, id).await?;
    let found = full(&mut tx, user.app_id, channel_id, id).await?;
    tx.commit().await?;
    Ok(found)
}

/// Edits the text (author only; deleted messages cannot be edited).
pub async fn edit(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    id: Uuid,
    text: &str,
) -> ApiResult<Full> {
    validate_send(&SendMessage {
        text: text.to_owned(),
        ..Default::default()
    })?;
    let (mut tx, _, row) = open(state, user, channel_id, id).await?;
    if row.user_id != user.user_id {
        return Err(ApiError::forbidden(
            "FORBIDDEN",
            "Only the author can edit a message",
        ));
    }
    if !messages::edit(&mut tx, user.app_id, id, text).await? {
        return Err(ApiError::not_found("Message not found"));
    }
    let updated = full(&mut tx, user.app_id, channel_id, id).await?;
    announce_update(&mut tx, user.app_id, &updated, &user.user_id).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Soft delete by the author or a moderator (or higher) of the channel.
pub async fn delete(state: &AppState, user: &AuthUser, channel_id: Uuid, id: Uuid) -> ApiResult<()> {
    let (mut tx, channel, row) = open(state, user, channel_id, id).await?;
    if row.user_id != user.user_id && !role_of(&channel).is_some_and(Role::can_moderate) {
        return Err(ApiError::forbidden("FORBIDDEN", "Permission denied"));
    }
    if !messages::soft_delete(&mut tx, user.app_id, id).await? {
        return Err(ApiError::not_found("Message not found"));
    }
    outbox::enqueue(
        &mut tx,
        user.app_id,
        events::MESSAGE_DELETED,
        &[chat_channel(user.app_id, channel_id)],
        &json!({ "channelId": channel_id, "messageId": id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Replies of a top-level message, oldest first.
pub async fn thread(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    parent: Uuid,
) -> ApiResult<(MessageRow, Vec<MessageRow>, Vec<ReactionGroup>)> {
    let (mut tx, _, root) = open(state, user, channel_id, parent).await?;
    if root.parent_id.is_some() {
        return Err(ApiError::invalid("messageId", "not a top-level message"));
    }
    let replies = messages::thread(&mut tx, user.app_id, parent, THREAD_PAGE).await?;
    let reactions = messages::reactions_of_rows(&mut tx, user.app_id, &replies).await?;
    tx.commit().await?;
    Ok((root, replies, reactions))
}

fn validate_emoji(emoji: &str) -> ApiResult<()> {
    let chars = emoji.chars().count();
    if chars == 0 || chars > MAX_EMOJI_CHARS || emoji.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(
            "emoji",
            "emoji must be 1 to 64 characters without spaces",
        ));
    }
    Ok(())
}

/// Adds (`add`) or removes the user's reaction; live messages only.
pub async fn react(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    id: Uuid,
    emoji: &str,
    add: bool,
) -> ApiResult<Full> {
    validate_emoji(emoji)?;
    let (mut tx, channel, row) = open(state, user, channel_id, id).await?;
    if channel.role.is_none() {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
    }
    if row.deleted_at.is_some() {
        return Err(ApiError::not_found("Message not found"));
    }
    let changed = if add {
        messages::add_reaction(&mut tx, user.app_id, id, &user.user_id, emoji).await?
    } else {
        messages::remove_reaction(&mut tx, user.app_id, id, &user.user_id, emoji).await?
    };
    if !add && !changed {
        return Err(ApiError::not_found("Reaction not found"));
    }
    if changed {
        outbox::enqueue(
            &mut tx,
            user.app_id,
            if add {
                events::REACTION_ADDED
            } else {
                events::REACTION_REMOVED
            },
            &[chat_channel(user.app_id, channel_id)],
            &json!({ "channelId": channel_id, "messageId": id, "userId": user.user_id, "emoji": emoji }),
        )
        .await?;
    }
    let updated = full(&mut tx, user.app_id, channel_id, id).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Pins or unpins (moderator or higher); live messages only.
pub async fn pin(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    id: Uuid,
    pinned: bool,
) -> ApiResult<Full> {
    let (mut tx, channel, row) = open(state, user, channel_id, id).await?;
    if !role_of(&channel).is_some_and(Role::can_moderate) {
        return Err(ApiError::forbidden("FORBIDDEN", "Permission denied"));
    }
    if row.deleted_at.is_some() {
        return Err(ApiError::not_found("Message not found"));
    }
    messages::set_pin(&mut tx, user.app_id, id, pinned.then_some(user.user_id.as_str())).await?;
    let updated = full(&mut tx, user.app_id, channel_id, id).await?;
    announce_update(&mut tx, user.app_id, &updated, &user.user_id).await?;
    tx.commit().await?;
    Ok(updated)
}

pub async fn pins(state: &AppState, user: &AuthUser, channel_id: Uuid) -> ApiResult<Vec<MessageRow>> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    visible(&mut tx, user, channel_id).await?;
    let rows = messages::pinned(&mut tx, user.app_id, channel_id).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Reactions of the given messages (for pages).
pub async fn reactions_of(
    state: &AppState,
    app_id: Uuid,
    rows: &[MessageRow],
) -> ApiResult<Vec<ReactionGroup>> {
    if rows.iter().all(|r| r.reaction_count == 0) {
        return Ok(Vec::new());
    }
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let found = messages::reactions_of_rows(&mut tx, app_id, rows).await?;
    tx.commit().await?;
    Ok(found)
}

pub const SEARCH_LIMIT: i64 = 50;

/// Full-text search in the user's channels (or one channel).
pub async fn search(
    state: &AppState,
    user: &AuthUser,
    channel_id: Option<Uuid>,
    q: &str,
    limit: Option<i64>,
) -> ApiResult<Vec<MessageRow>> {
    let limit = paging::limit(limit, SEARCH_LIMIT, 100)?;
    let q = q.trim();
    if q.is_empty() || q.chars().count() > 200 {
        return Err(ApiError::invalid("q", "q must be 1 to 200 characters"));
    }
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    if let Some(id) = channel_id {
        visible(&mut tx, user, id).await?;
    }
    let rows = messages::search(&mut tx, user.app_id, &user.user_id, channel_id, q, limit).await?;
    tx.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_rules() {
        assert!(validate_emoji("👍").is_ok());
        assert!(validate_emoji("thumbs_up").is_ok());
        assert!(validate_emoji("").is_err());
        assert!(validate_emoji("a b").is_err());
        assert!(validate_emoji(&"x".repeat(65)).is_err());
    }

    fn field_of(r: ApiResult<()>) -> Option<String> {
        match r {
            Err(ApiError::BadRequest { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        }
    }

    #[test]
    fn send_input_rules() {
        let msg = |text: &str| SendMessage {
            text: text.into(),
            ..Default::default()
        };
        assert!(validate_send(&msg("hi")).is_ok());
        assert_eq!(field_of(validate_send(&msg(""))), Some("text".into()));
        assert!(validate_send(&msg(&"é".repeat(MAX_TEXT_CHARS))).is_ok());
        assert_eq!(
            field_of(validate_send(&msg(&"x".repeat(MAX_TEXT_CHARS + 1)))),
            Some("text".into())
        );
        let with_client = SendMessage {
            client_msg_id: Some(String::new()),
            ..msg("x")
        };
        assert_eq!(field_of(validate_send(&with_client)), Some("clientMsgId".into()));
        let attachment = |v: Value| SendMessage {
            attachments: Some(vec![v]),
            ..msg("x")
        };
        assert!(validate_send(&attachment(json!({"type": "image", "url": "https://x/y.png"}))).is_ok());
        assert_eq!(
            field_of(validate_send(&attachment(
                json!({"type": "exe", "url": "https://x"})
            ))),
            Some("attachments[0].type".into())
        );
        assert_eq!(
            field_of(validate_send(&attachment(
                json!({"type": "file", "url": "file:///etc/passwd"})
            ))),
            Some("attachments[0].url".into())
        );
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(page_size(None).ok(), Some(100));
        assert_eq!(page_size(Some(200)).ok(), Some(200));
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(201)).is_err());
    }
}
