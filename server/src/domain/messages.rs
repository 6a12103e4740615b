//! Messages: idempotent, gap-free sequenced sends and seq-ordered pages.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::auth::AuthUser;
use crate::domain::channels::{is_public, visible};
use crate::domain::realtime::{chat_channel, events};
use crate::domain::roles::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::messages::{self, MessageRow, NewMessage};
use crate::storage::{begin_tenant, channels, outbox};
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

/// Sends a message. Within one transaction: membership (auto-join for public channels), the
/// channel's next `seq` under its row lock, the insert, the sender's read mark and the
/// `message.new` outbox row. Concurrent sends with the same `clientMsgId` serialize on the
/// channel lock, and the one that comes second finds the first and writes nothing.
pub async fn send(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    input: SendMessage,
) -> ApiResult<Sent> {
    validate_send(&input)?;
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let channel = channels::get(&mut tx, app_id, channel_id, &user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Channel not found"))?;
    if channel.role.is_none() {
        if !is_public(&channel.kind) {
            return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
        }
        channels::add_members(
            &mut tx,
            app_id,
            channel_id,
            std::slice::from_ref(&user.user_id),
            Role::Member.as_str(),
        )
        .await?;
    }
    let client_id = input.client_msg_id.as_deref();
    if let Some(client_id) = client_id
        && let Some((id, seq)) = messages::by_client_msg_id(&mut tx, app_id, channel_id, client_id).await?
    {
        return Ok(Sent::Duplicate { id, seq });
    }
    let seq = messages::next_seq(&mut tx, app_id, channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Channel not found"))?;
    // Checked again under the channel lock: a concurrent retry may have committed meanwhile.
    if let Some(client_id) = client_id
        && let Some((id, seq)) = messages::by_client_msg_id(&mut tx, app_id, channel_id, client_id).await?
    {
        tx.rollback().await?;
        return Ok(Sent::Duplicate { id, seq });
    }
    if let Some(parent) = input.parent_id {
        if !messages::is_thread_root(&mut tx, app_id, channel_id, parent).await? {
            return Err(ApiError::invalid(
                "parentId",
                "parentId is not a top-level message of this channel",
            ));
        }
        messages::bump_reply_count(&mut tx, app_id, parent).await?;
    }
    if let Some(reply_to) = input.reply_to_id
        && messages::seq_of(&mut tx, app_id, channel_id, reply_to)
            .await?
            .is_none()
    {
        return Err(ApiError::invalid(
            "replyToId",
            "replyToId is not a message of this channel",
        ));
    }
    let attachments = Value::Array(input.attachments.unwrap_or_default());
    let row = messages::insert(
        &mut tx,
        app_id,
        &NewMessage {
            id: Uuid::now_v7(),
            channel_id,
            seq,
            user_id: &user.user_id,
            client_msg_id: client_id,
            text: &input.text,
            attachments: &attachments,
            parent_id: input.parent_id,
            reply_to_id: input.reply_to_id,
        },
    )
    .await?;
    messages::mark_read(&mut tx, app_id, channel_id, &user.user_id, seq).await?;
    outbox::enqueue(
        &mut tx,
        app_id,
        events::MESSAGE_NEW,
        &[chat_channel(app_id, channel_id)],
        &json!({ "channelId": channel_id, "message": wire::message(&row) }),
    )
    .await?;
    tx.commit().await?;
    Ok(Sent::Created(Box::new(row)))
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
}

/// Clamps the page size to 1..=200 (default 100).
pub fn page_size(limit: Option<i64>) -> i64 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

/// A page of top-level messages. `since_seq` and `after` page forward (hasMore: newer remain);
/// the default (latest) and `before` page backward (hasMore: older remain).
pub async fn list(state: &AppState, user: &AuthUser, channel_id: Uuid, query: ListQuery) -> ApiResult<Page> {
    let limit = page_size(query.limit);
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let channel = visible(&mut tx, user, channel_id).await?;
    let cursor =
        |field: &'static str| ApiError::invalid(field, format!("{field} is not a message of this channel"));
    let (forward, from) = match (query.since_seq.filter(|s| *s > 0), query.before, query.after) {
        (Some(since), _, _) => (true, since),
        (None, Some(before), _) => (
            false,
            messages::seq_of(&mut tx, app_id, channel_id, before)
                .await?
                .ok_or_else(|| cursor("before"))?,
        ),
        (None, None, Some(after)) => (
            true,
            messages::seq_of(&mut tx, app_id, channel_id, after)
                .await?
                .ok_or_else(|| cursor("after"))?,
        ),
        (None, None, None) => (false, i64::MAX),
    };
    // One row more than asked tells whether another page exists.
    let mut rows = if forward {
        messages::page_forward(&mut tx, app_id, channel_id, from, limit + 1).await?
    } else {
        messages::page_backward(&mut tx, app_id, channel_id, from, limit + 1).await?
    };
    tx.commit().await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !forward {
        rows.reverse();
    }
    Ok(Page {
        messages: rows,
        max_seq: channel.last_seq,
        has_more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn page_size_is_clamped() {
        assert_eq!(page_size(None), 100);
        assert_eq!(page_size(Some(0)), 1);
        assert_eq!(page_size(Some(500)), 200);
        assert_eq!(page_size(Some(50)), 50);
    }
}
