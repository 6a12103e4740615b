//! Channels: creation (DMs deduplicated, idempotency keys), visibility, membership.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::auth::{AuthUser, validate_user_id};
use crate::domain::realtime::{chat_channel, events, user_channel};
use crate::domain::roles::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::channels::{self, ChannelRow, MemberRow, NewChannel};
use crate::storage::{begin_tenant, outbox, users};
use crate::wire;

pub const CHANNEL_TYPES: &[&str] = &["messaging", "group", "team", "livestream", "public", "private"];
/// Members shown inline in channel objects.
const INLINE_MEMBERS: i64 = 100;
const MAX_MEMBERS_PER_CALL: usize = 500;

/// Channel types every user of the app can see and join.
pub fn is_public(kind: &str) -> bool {
    matches!(kind, "public" | "team")
}

/// Upstream's DM key: `messaging:dm:` + SHA-256 of the JSON array of both ids, sorted.
pub fn direct_message_cid(a: &str, b: &str) -> String {
    let mut pair = [a, b];
    pair.sort_unstable();
    let json = serde_json::to_string(&pair).unwrap_or_default();
    format!("messaging:dm:{}", hex::encode(Sha256::digest(json.as_bytes())))
}

#[derive(Debug, Clone, Default)]
pub struct CreateChannel {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub image: Option<String>,
    pub member_ids: Vec<String>,
    pub idempotency_key: Option<String>,
    pub config: Option<Value>,
}

fn validate_create(input: &CreateChannel) -> ApiResult<&str> {
    let kind = input.kind.as_deref().unwrap_or("messaging");
    if !CHANNEL_TYPES.contains(&kind) {
        return Err(ApiError::invalid(
            "type",
            format!("type must be one of {}", CHANNEL_TYPES.join(", ")),
        ));
    }
    if kind == "messaging" && input.member_ids.len() != 1 {
        return Err(ApiError::invalid(
            "memberIds",
            "Direct messages require exactly one member ID",
        ));
    }
    if input.member_ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(ApiError::invalid(
            "memberIds",
            format!("at most {MAX_MEMBERS_PER_CALL} members"),
        ));
    }
    for id in &input.member_ids {
        validate_user_id("memberIds", id)?;
    }
    if input.name.as_ref().is_some_and(|n| n.chars().count() > 255) {
        return Err(ApiError::invalid("name", "name must be at most 255 characters"));
    }
    if input
        .idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 255)
    {
        return Err(ApiError::invalid(
            "idempotencyKey",
            "idempotencyKey must be 1 to 255 characters",
        ));
    }
    if input.config.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(ApiError::invalid("config", "config must be an object"));
    }
    Ok(kind)
}

/// Fails with 404 naming the first unknown user (upstream answers 404 "User not found").
async fn require_users(conn: &mut PgConnection, app_id: Uuid, ids: &[String]) -> ApiResult<()> {
    let found = users::existing_ids(conn, app_id, ids).await?;
    match ids.iter().find(|id| !found.contains(id)) {
        Some(missing) => Err(ApiError::NotFound {
            code: "USER_NOT_FOUND",
            message: format!("User not found: {missing}").into(),
        }),
        None => Ok(()),
    }
}

/// Creates a channel; a DM that exists already, or a repeated idempotency key, returns the
/// existing channel with `created = false`.
pub async fn create(
    state: &AppState,
    user: &AuthUser,
    input: CreateChannel,
) -> ApiResult<(ChannelRow, bool)> {
    let kind = validate_create(&input)?.to_owned();
    let app_id = user.app_id;
    let id = Uuid::now_v7();
    let cid = if kind == "messaging" {
        direct_message_cid(&user.user_id, &input.member_ids[0])
    } else {
        format!("{kind}:{id}")
    };
    if kind == "messaging" && input.member_ids[0] == user.user_id {
        return Err(ApiError::invalid(
            "memberIds",
            "Direct messages require two distinct users",
        ));
    }
    let mut others: Vec<String> = input
        .member_ids
        .iter()
        .filter(|m| **m != user.user_id)
        .cloned()
        .collect();
    others.sort();
    others.dedup();

    let mut tx = begin_tenant(&state.pool, app_id).await?;
    require_users(&mut tx, app_id, &others).await?;
    let config = input.config.clone().unwrap_or_else(|| json!({}));
    let new = NewChannel {
        id,
        cid: &cid,
        kind: &kind,
        name: input.name.as_deref(),
        image_url: input.image.as_deref(),
        config: &config,
        created_by: Some(&user.user_id),
        idempotency_key: input.idempotency_key.as_deref(),
    };
    if !channels::insert(&mut tx, app_id, &new).await? {
        let existing = channels::get_by_key(
            &mut tx,
            app_id,
            Some(&cid),
            input.idempotency_key.as_deref(),
            &user.user_id,
        )
        .await?
        .ok_or_else(|| ApiError::conflict("CONFLICT", "Channel was created concurrently; retry"))?;
        tx.commit().await?;
        if existing.role.is_none() && !is_public(&existing.kind) {
            return Err(ApiError::conflict(
                "CONFLICT",
                "A channel with this idempotencyKey exists",
            ));
        }
        return Ok((existing, false));
    }
    channels::add_members(
        &mut tx,
        app_id,
        id,
        std::slice::from_ref(&user.user_id),
        Role::Owner.as_str(),
    )
    .await?;
    channels::add_members(&mut tx, app_id, id, &others, Role::Member.as_str()).await?;
    let row = channels::get(&mut tx, app_id, id, &user.user_id)
        .await?
        .ok_or_else(|| ApiError::Internal("created channel vanished".into()))?;
    let recipients: Vec<String> = std::iter::once(&user.user_id)
        .chain(&others)
        .map(|u| user_channel(app_id, u))
        .collect();
    outbox::enqueue(
        &mut tx,
        app_id,
        events::CHANNEL_CREATED,
        &recipients,
        &json!({ "channel": wire::channel(&row) }),
    )
    .await?;
    tx.commit().await?;
    Ok((row, true))
}

/// The channel as the user sees it: 404 if absent, 403 if private and not a member.
pub async fn visible(conn: &mut PgConnection, user: &AuthUser, channel_id: Uuid) -> ApiResult<ChannelRow> {
    let row = channels::get(conn, user.app_id, channel_id, &user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Channel not found"))?;
    if row.role.is_none() && !is_public(&row.kind) {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
    }
    Ok(row)
}

/// Channels with members inlined for DMs and groups.
pub async fn list(
    state: &AppState,
    user: &AuthUser,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> ApiResult<Vec<(ChannelRow, Option<Vec<MemberRow>>)>> {
    if let Some(kind) = kind
        && !CHANNEL_TYPES.contains(&kind)
    {
        return Err(ApiError::invalid("type", "unknown channel type"));
    }
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let rows = channels::list_for_user(&mut tx, user.app_id, &user.user_id, kind, limit, offset).await?;
    let with_members: Vec<Uuid> = rows
        .iter()
        .filter(|r| matches!(r.kind.as_str(), "messaging" | "group"))
        .map(|r| r.id)
        .collect();
    let members = if with_members.is_empty() {
        Vec::new()
    } else {
        channels::members(
            &mut tx,
            user.app_id,
            &with_members,
            INLINE_MEMBERS * with_members.len() as i64,
        )
        .await?
    };
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let inline = with_members.contains(&row.id).then(|| {
                members
                    .iter()
                    .filter(|m| m.channel_id == row.id)
                    .cloned()
                    .collect::<Vec<_>>()
            });
            (row, inline)
        })
        .collect())
}

pub async fn get(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
) -> ApiResult<(ChannelRow, Vec<MemberRow>)> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    let members = channels::members(&mut tx, user.app_id, &[channel_id], INLINE_MEMBERS).await?;
    tx.commit().await?;
    Ok((row, members))
}

pub async fn members(state: &AppState, user: &AuthUser, channel_id: Uuid) -> ApiResult<Vec<MemberRow>> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    if row.role.is_none() {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
    }
    let members = channels::members(&mut tx, user.app_id, &[channel_id], i64::MAX).await?;
    tx.commit().await?;
    Ok(members)
}

/// Adds members (owner, admin or moderator only; DM membership is fixed). Returns how many joined.
pub async fn add_members(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    user_ids: Vec<String>,
) -> ApiResult<usize> {
    if user_ids.is_empty() {
        return Err(ApiError::invalid("userIds", "No users to add"));
    }
    if user_ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(ApiError::invalid(
            "userIds",
            format!("at most {MAX_MEMBERS_PER_CALL} users"),
        ));
    }
    for id in &user_ids {
        validate_user_id("userIds", id)?;
    }
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    let role = row.role.as_deref().and_then(Role::parse);
    if !role.is_some_and(Role::can_moderate) {
        return Err(ApiError::forbidden("FORBIDDEN", "Permission denied"));
    }
    if row.kind == "messaging" {
        return Err(ApiError::forbidden(
            "FORBIDDEN",
            "Direct message membership is fixed",
        ));
    }
    require_users(&mut tx, app_id, &user_ids).await?;
    let added = channels::add_members(&mut tx, app_id, channel_id, &user_ids, Role::Member.as_str()).await?;
    for joined in &added {
        outbox::enqueue(
            &mut tx,
            app_id,
            events::MEMBER_JOINED,
            &[chat_channel(app_id, channel_id), user_channel(app_id, joined)],
            &json!({ "channelId": channel_id, "userId": joined }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(added.len())
}

pub async fn total_unread(state: &AppState, user: &AuthUser) -> ApiResult<i64> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let count = channels::total_unread(&mut tx, user.app_id, &user.user_id).await?;
    tx.commit().await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_cid_matches_upstream_and_ignores_order() {
        // sha256 of the JSON text ["alice","bob"], as upstream computes it.
        let expected = format!(
            "messaging:dm:{}",
            hex::encode(Sha256::digest(br#"["alice","bob"]"#))
        );
        assert_eq!(direct_message_cid("alice", "bob"), expected);
        assert_eq!(direct_message_cid("bob", "alice"), expected);
    }

    #[test]
    fn create_input_rules() {
        let dm = |ids: &[&str]| CreateChannel {
            member_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(validate_create(&dm(&["bob"])).is_ok());
        assert!(validate_create(&dm(&[])).is_err());
        assert!(validate_create(&dm(&["a", "b"])).is_err());
        let group = CreateChannel {
            kind: Some("group".into()),
            ..Default::default()
        };
        assert_eq!(validate_create(&group).ok(), Some("group"));
        let bad = CreateChannel {
            kind: Some("secret".into()),
            ..Default::default()
        };
        assert!(
            matches!(validate_create(&bad), Err(ApiError::BadRequest { field: Some(f), .. }) if f == "type")
        );
    }
}
