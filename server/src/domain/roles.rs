//! Channel member roles: owner > admin > moderator > member.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Moderator,
    Admin,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Self::Member),
            "moderator" => Some(Self::Moderator),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Add and remove members, delete others' messages, pin.
    pub fn can_moderate(self) -> bool {
        self >= Self::Moderator
    }

    /// Rename or reconfigure the channel.
    pub fn can_edit_channel(self) -> bool {
        self >= Self::Admin
    }

    pub fn can_delete_channel(self) -> bool {
        self == Self::Owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_follow_the_hierarchy() {
        let all = [Role::Member, Role::Moderator, Role::Admin, Role::Owner];
        for role in all {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(all.map(Role::can_moderate), [false, true, true, true]);
        assert_eq!(all.map(Role::can_edit_channel), [false, false, true, true]);
        assert_eq!(all.map(Role::can_delete_channel), [false, false, false, true]);
        assert_eq!(Role::parse("root"), None);
    }
}
