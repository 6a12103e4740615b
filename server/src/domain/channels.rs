//! Channels: creation (DMs deduplicated, idempotency keys), visibility, membership.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::auth::{AuthUser, Profile, validate_user_id};
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
    if kind == "messaging" && users::blocked_between(&mut tx, app_id, &user.user_id, &others[0]).await? {
        return Err(ApiError::forbidden(
            "BLOCKED",
            "A block exists between these users",
        ));
    }
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

fn role_of(row: &ChannelRow) -> Option<Role> {
    row.role.as_deref().and_then(Role::parse)
}

#[derive(Debug, Clone, Default)]
pub struct UpdateChannel {
    pub name: Option<String>,
    pub image: Option<String>,
    pub config: Option<Value>,
}

/// Renames or reconfigures (admin or owner).
pub async fn update(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    input: UpdateChannel,
) -> ApiResult<ChannelRow> {
    if input.name.is_none() && input.image.is_none() && input.config.is_none() {
        return Err(ApiError::invalid("body", "Nothing to update"));
    }
    if input.name.as_ref().is_some_and(|n| n.chars().count() > 255) {
        return Err(ApiError::invalid("name", "name must be at most 255 characters"));
    }
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    if !role_of(&row).is_some_and(Role::can_edit_channel) {
        return Err(ApiError::forbidden("FORBIDDEN", "Permission denied"));
    }
    channels::update(
        &mut tx,
        app_id,
        channel_id,
        input.name.as_deref(),
        input.image.as_deref(),
        input.config.as_ref(),
    )
    .await?;
    let row = channels::get(&mut tx, app_id, channel_id, &user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Channel not found"))?;
    outbox::enqueue(
        &mut tx,
        app_id,
        events::CHANNEL_UPDATED,
        &[chat_channel(app_id, channel_id)],
        &json!({ "channel": wire::channel(&row) }),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes the channel with its messages (owner only); members hear `channel.deleted`.
pub async fn delete(state: &AppState, user: &AuthUser, channel_id: Uuid) -> ApiResult<()> {
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    if !role_of(&row).is_some_and(Role::can_delete_channel) {
        return Err(ApiError::forbidden(
            "FORBIDDEN",
            "Only the owner can delete a channel",
        ));
    }
    let recipients: Vec<String> = channels::member_ids(&mut tx, app_id, channel_id)
        .await?
        .iter()
        .map(|u| user_channel(app_id, u))
        .chain(std::iter::once(chat_channel(app_id, channel_id)))
        .collect();
    channels::delete(&mut tx, app_id, channel_id).await?;
    outbox::enqueue(
        &mut tx,
        app_id,
        events::CHANNEL_DELETED,
        &recipients,
        &json!({ "channelId": channel_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a member's role. The actor must be admin or owner, may not touch someone of equal
/// or higher rank (except the owner), and may grant at most their own rank.
pub async fn set_role(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    target: &str,
    role: &str,
) -> ApiResult<()> {
    let new_role = Role::parse(role)
        .ok_or_else(|| ApiError::invalid("role", "role must be owner, admin, moderator or member"))?;
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    let actor = role_of(&row)
        .filter(|r| r.can_edit_channel())
        .ok_or_else(|| ApiError::forbidden("FORBIDDEN", "Permission denied"))?;
    let current = channels::member_role(&mut tx, app_id, channel_id, target)
        .await?
        .and_then(|r| Role::parse(&r))
        .ok_or_else(|| ApiError::not_found("Member not found"))?;
    if new_role > actor || (current >= actor && actor != Role::Owner) || target == user.user_id {
        return Err(ApiError::forbidden("FORBIDDEN", "Permission denied"));
    }
    channels::set_role(&mut tx, app_id, channel_id, target, new_role.as_str()).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a member: oneself (leaving), or someone of lower rank by a moderator or higher.
pub async fn remove_member(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    target: &str,
) -> ApiResult<()> {
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    if row.kind == "messaging" {
        return Err(ApiError::forbidden(
            "FORBIDDEN",
            "Direct message membership is fixed",
        ));
    }
    let current = channels::member_role(&mut tx, app_id, channel_id, target)
        .await?
        .and_then(|r| Role::parse(&r))
        .ok_or_else(|| ApiError::not_found("Member not found"))?;
    if target != user.user_id {
        let actor = role_of(&row)
            .filter(|r| r.can_moderate())
            .ok_or_else(|| ApiError::forbidden("FORBIDDEN", "Permission denied"))?;
        if current >= actor {
            return Err(ApiError::forbidden("FORBIDDEN", "Permission denied"));
        }
    }
    channels::remove_member(&mut tx, app_id, channel_id, target).await?;
    outbox::enqueue(
        &mut tx,
        app_id,
        events::MEMBER_LEFT,
        &[chat_channel(app_id, channel_id), user_channel(app_id, target)],
        &json!({ "channelId": channel_id, "userId": target }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Moves the caller's read mark to `message_id` (or the latest message); returns it.
pub async fn mark_read(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    message_id: Option<Uuid>,
) -> ApiResult<i64> {
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let row = visible(&mut tx, user, channel_id).await?;
    if row.role.is_none() {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a member of this channel"));
    }
    let seq = match message_id {
        Some(id) => crate::storage::messages::seq_of(&mut tx, app_id, channel_id, id)
            .await?
            .ok_or_else(|| ApiError::invalid("messageId", "messageId is not a message of this channel"))?,
        None => row.last_seq,
    };
    crate::storage::messages::mark_read(&mut tx, app_id, channel_id, &user.user_id, seq).await?;
    let row = channels::get(&mut tx, app_id, channel_id, &user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Channel not found"))?;
    let last_read = row.last_read_seq.unwrap_or(seq);
    outbox::enqueue(
        &mut tx,
        app_id,
        events::READ_UPDATED,
        &[chat_channel(app_id, channel_id)],
        &json!({ "channelId": channel_id, "userId": user.user_id, "lastReadSeq": last_read }),
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        app_id,
        events::UNREAD_CHANGED,
        &[user_channel(app_id, &user.user_id)],
        &json!({ "channelId": channel_id, "count": (row.last_seq - last_read).max(0) }),
    )
    .await?;
    tx.commit().await?;
    Ok(last_read)
}

/// Typing indicator: checked like a send, published directly (not durable, not retried).
pub async fn typing(state: &AppState, user: &AuthUser, channel_id: Uuid, typing: bool) -> ApiResult<()> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    visible(&mut tx, user, channel_id).await?;
    tx.commit().await?;
    if let Some(centrifugo) = &state.centrifugo {
        let event = json!({
            "type": if typing { events::TYPING_START } else { events::TYPING_STOP },
            "payload": { "channelId": channel_id, "userId": user.user_id },
        });
        // A lost typing event only hides an indicator for a moment: log, do not fail the call.
        if let Err(err) = centrifugo
            .publish(&chat_channel(user.app_id, channel_id), &event)
            .await
        {
            tracing::warn!(%err, "typing event not published");
        }
    }
    Ok(())
}

/// The server-side identity of an app server acting for `user_id` (ensure endpoints).
fn acting_as(app_id: Uuid, user_id: &str) -> AuthUser {
    AuthUser {
        app_id,
        user_id: user_id.to_owned(),
        session_id: Uuid::nil(),
        name: None,
        image: None,
        is_app_admin: false,
        profile: Profile::default(),
        scopes: None,
    }
}

/// `dm/ensure`: the DM of two users, created if needed.
pub async fn ensure_dm(
    state: &AppState,
    app_id: Uuid,
    requester: &str,
    peer: &str,
    custom: Option<Value>,
) -> ApiResult<(ChannelRow, bool)> {
    validate_user_id("requesterUserId", requester)?;
    validate_user_id("peerUserId", peer)?;
    {
        let mut tx = begin_tenant(&state.pool, app_id).await?;
        require_users(&mut tx, app_id, &[requester.to_owned()]).await?;
        tx.commit().await?;
    }
    create(
        state,
        &acting_as(app_id, requester),
        CreateChannel {
            kind: Some("messaging".into()),
            member_ids: vec![peer.to_owned()],
            config: custom,
            ..Default::default()
        },
    )
    .await
}

/// `group/ensure`: the group with this external id / idempotency key, created if needed; the
/// first member owns it.
pub async fn ensure_group(
    state: &AppState,
    app_id: Uuid,
    key: Option<String>,
    name: Option<String>,
    image: Option<String>,
    member_ids: Vec<String>,
    custom: Option<Value>,
) -> ApiResult<(ChannelRow, bool)> {
    let Some(owner) = member_ids.first().cloned() else {
        return Err(ApiError::invalid(
            "memberIds",
            "memberIds must name 1 to 500 users",
        ));
    };
    validate_user_id("memberIds", &owner)?;
    {
        let mut tx = begin_tenant(&state.pool, app_id).await?;
        require_users(&mut tx, app_id, std::slice::from_ref(&owner)).await?;
        tx.commit().await?;
    }
    create(
        state,
        &acting_as(app_id, &owner),
        CreateChannel {
            kind: Some("group".into()),
            name,
            image,
            member_ids: member_ids[1..].to_vec(),
            idempotency_key: key,
            config: custom,
        },
    )
    .await
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
