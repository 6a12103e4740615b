//! Moderation: members report messages of others; an app admin (`app_user.is_admin`, set by
//! the app server through `connect`'s `metadata.is_admin`) reviews the queue and deletes the
//! message, warns or bans its author, or dismisses the report.
//!
//! A ban is upstream's `custom.banned = true`, made binding here **[ours]**: the author's
//! sessions and tokens are revoked at once and `connect` refuses a banned user until the app
//! server connects them with `metadata.banned: false`.

use serde_json::json;
use uuid::Uuid;

use crate::domain::auth::AuthUser;
use crate::domain::channels::visible;
use crate::domain::realtime::{chat_channel, events};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::moderation::{self, NewReport, ReportRow, Reviewed};
use crate::storage::{begin_tenant, messages, outbox, sessions};

pub const REASONS: &[&str] = &["harassment", "spam", "inappropriate", "violence", "hate_speech"];
pub const ACTIONS: &[&str] = &["delete_message", "warn_user", "ban_user", "dismiss"];
pub const STATUSES: &[&str] = &["pending", "reviewed", "actioned", "dismissed"];
const MAX_NOTE_CHARS: usize = 1000;

fn admin(user: &AuthUser) -> ApiResult<()> {
    if !user.is_app_admin {
        return Err(ApiError::forbidden("ADMIN_REQUIRED", "Admin access required"));
    }
    Ok(())
}

fn note(field: &'static str, text: Option<&str>) -> ApiResult<()> {
    if text.is_some_and(|t| t.chars().count() > MAX_NOTE_CHARS) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Reports another member's message of a channel the reporter belongs to, once.
pub async fn report(
    state: &AppState,
    user: &AuthUser,
    message_id: Uuid,
    reason: &str,
    details: Option<&str>,
) -> ApiResult<NewReport> {
    if !REASONS.contains(&reason) {
        return Err(ApiError::invalid(
            "reason",
            format!("reason must be one of {}", REASONS.join(", ")),
        ));
    }
    note("details", details)?;
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let (author, channel_id) = moderation::message(&mut tx, app_id, message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message not found"))?;
    let channel = visible(&mut tx, user, channel_id).await?;
    if channel.role.is_none() {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
    }
    if author == user.user_id {
        return Err(ApiError::bad_request(
            "OWN_MESSAGE",
            "Cannot report your own messages",
            "messageId",
        ));
    }
    let report = moderation::insert(&mut tx, app_id, message_id, &user.user_id, reason, details)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "ALREADY_REPORTED",
                "You have already reported this message",
                "messageId",
            )
        })?;
    tx.commit().await?;
    Ok(report)
}

pub async fn list(
    state: &AppState,
    user: &AuthUser,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<ReportRow>, i64)> {
    admin(user)?;
    if let Some(status) = status
        && !STATUSES.contains(&status)
    {
        return Err(ApiError::invalid(
            "status",
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let page = moderation::list(&mut tx, user.app_id, status, limit, offset).await?;
    tx.commit().await?;
    Ok(page)
}

fn report_not_found() -> ApiError {
    ApiError::NotFound {
        code: "REPORT_NOT_FOUND",
        message: "Report not found".into(),
    }
}

pub async fn get(state: &AppState, user: &AuthUser, id: Uuid) -> ApiResult<ReportRow> {
    admin(user)?;
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let row = moderation::get(&mut tx, user.app_id, id).await?;
    tx.commit().await?;
    row.ok_or_else(report_not_found)
}

/// Takes `action` on the report's message and author, and closes the report (`actioned`, or
/// `reviewed` when dismissed, as upstream). The action and the report change commit together.
pub async fn review(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
    action: &str,
    notes: Option<&str>,
) -> ApiResult<Reviewed> {
    admin(user)?;
    if !ACTIONS.contains(&action) {
        return Err(ApiError::invalid(
            "action",
            format!("action must be one of {}", ACTIONS.join(", ")),
        ));
    }
    note("adminNotes", notes)?;
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let (message_id, author, channel_id) = moderation::lock(&mut tx, app_id, id)
        .await?
        .ok_or_else(report_not_found)?;
    match action {
        "delete_message" => {
            // An already deleted message is not announced again.
            let deleted = messages::soft_delete(&mut tx, app_id, message_id).await?;
            if deleted {
                outbox::enqueue(
                    &mut tx,
                    app_id,
                    events::MESSAGE_DELETED,
                    &[chat_channel(app_id, channel_id)],
                    &json!({ "channelId": channel_id, "messageId": message_id }),
                )
                .await?;
            }
        }
        "warn_user" => moderation::warn(&mut tx, app_id, &author).await?,
        "ban_user" => {
            moderation::ban(&mut tx, app_id, &author).await?;
            sessions::revoke_user(&mut tx, app_id, &author, "moderation_ban").await?;
        }
        _ => {}
    }
    let status = if action == "dismiss" {
        "reviewed"
    } else {
        "actioned"
    };
    let reviewed = moderation::review(&mut tx, app_id, id, status, &user.user_id, action, notes).await?;
    tx.commit().await?;
    Ok(reviewed)
}
