//! Centrifugo channel names, event types (upstream's) and who may subscribe to what.

use uuid::Uuid;

use crate::domain::auth::AuthUser;
use crate::domain::channels::visible;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::begin_tenant;

pub fn chat_channel(app_id: Uuid, channel_id: Uuid) -> String {
    format!("chat:{app_id}:{channel_id}")
}

pub fn user_channel(app_id: Uuid, user_id: &str) -> String {
    format!("user:{app_id}:{user_id}")
}

pub mod events {
    pub const MESSAGE_NEW: &str = "message.new";
    pub const MESSAGE_UPDATED: &str = "message.updated";
    pub const MESSAGE_DELETED: &str = "message.deleted";
    pub const REACTION_ADDED: &str = "reaction.added";
    pub const REACTION_REMOVED: &str = "reaction.removed";
    pub const TYPING_START: &str = "typing.start";
    pub const TYPING_STOP: &str = "typing.stop";
    pub const READ_UPDATED: &str = "read.updated";
    pub const CHANNEL_CREATED: &str = "channel.created";
    pub const CHANNEL_UPDATED: &str = "channel.updated";
    pub const CHANNEL_DELETED: &str = "channel.deleted";
    pub const MEMBER_JOINED: &str = "channel.member_joined";
    pub const MEMBER_LEFT: &str = "channel.member_left";
    pub const UNREAD_CHANGED: &str = "channel.unread_changed";
    pub const PRESENCE_ONLINE: &str = "presence.online";
    pub const PRESENCE_OFFLINE: &str = "presence.offline";
    pub const POLL_CREATED: &str = "poll.created";
    pub const POLL_VOTED: &str = "poll.voted";
    pub const POLL_VOTE_REMOVED: &str = "poll.vote_removed";
}

/// A Centrifugo channel a client asked to subscribe to.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    User { app: &'a str, user: &'a str },
    Chat { app: &'a str, channel: &'a str },
}

fn parse_target(channel: &str) -> Option<Target<'_>> {
    // User ids may contain ':', so only the first two separate the parts.
    let mut parts = channel.splitn(3, ':');
    let (kind, app, rest) = (parts.next()?, parts.next()?, parts.next()?);
    match kind {
        "user" => Some(Target::User { app, user: rest }),
        "chat" => Some(Target::Chat { app, channel: rest }),
        _ => None,
    }
}

/// Mints a subscription token after checking access: one's own `user:` channel, or a `chat:`
/// channel one belongs to (or a public one). Another app's channel is 403.
pub async fn subscription_token(state: &AppState, user: &AuthUser, channel: &str) -> ApiResult<String> {
    let target = parse_target(channel).ok_or_else(|| {
        ApiError::invalid(
            "channel",
            "channel must be user:{appId}:{userId} or chat:{appId}:{channelId}",
        )
    })?;
    let own_app = user.app_id.to_string();
    let app = match &target {
        Target::User { app, .. } | Target::Chat { app, .. } => *app,
    };
    if app != own_app {
        return Err(ApiError::forbidden("FORBIDDEN", "Channel belongs to another app"));
    }
    match target {
        Target::User { user: owner, .. } if owner != user.user_id => Err(ApiError::forbidden(
            "FORBIDDEN",
            "Cannot subscribe to another user's channel",
        )),
        Target::User { .. } => Ok(()),
        Target::Chat { channel: id, .. } => {
            let id: Uuid = id
                .parse()
                .map_err(|_| ApiError::invalid("channel", "channel id must be a UUID"))?;
            let mut tx = begin_tenant(&state.pool, user.app_id).await?;
            visible(&mut tx, user, id).await?;
            tx.commit().await?;
            Ok(())
        }
    }?;
    state
        .tokens
        .subscription_token(user.app_id, &user.user_id, channel)
        .map_err(|err| ApiError::Internal(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_targets_parse() {
        assert_eq!(
            parse_target("user:a:b:c"),
            Some(Target::User {
                app: "a",
                user: "b:c"
            })
        );
        assert_eq!(
            parse_target("chat:a:x"),
            Some(Target::Chat {
                app: "a",
                channel: "x"
            })
        );
        assert_eq!(parse_target("presence:a:x"), None);
        assert_eq!(parse_target("chat:a"), None);
    }

    #[test]
    fn names_follow_upstream() {
        let app = Uuid::nil();
        let channel = Uuid::max();
        assert_eq!(
            chat_channel(app, channel),
            "chat:00000000-0000-0000-0000-000000000000:ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        assert_eq!(
            user_channel(app, "u1"),
            "user:00000000-0000-0000-0000-000000000000:u1"
        );
    }
}
