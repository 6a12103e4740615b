//! Centrifugo channel names and event types (upstream's).

use uuid::Uuid;

pub fn chat_channel(app_id: Uuid, channel_id: Uuid) -> String {
    format!("chat:{app_id}:{channel_id}")
}

pub fn user_channel(app_id: Uuid, user_id: &str) -> String {
    format!("user:{app_id}:{user_id}")
}

pub mod events {
    pub const MESSAGE_NEW: &str = "message.new";
    pub const CHANNEL_CREATED: &str = "channel.created";
    pub const MEMBER_JOINED: &str = "channel.member_joined";
}

#[cfg(test)]
mod tests {
    use super::*;

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
