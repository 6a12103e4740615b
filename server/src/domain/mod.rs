//! Business rules: who may do what, how sequences, sessions and channels behave. Handlers call
//! these; these call `storage`.

pub mod apps;
pub mod auth;
pub mod broker;
pub mod channels;
pub mod devices;
pub mod messages;
pub mod moderation;
pub mod paging;
pub mod polls;
pub mod presence;
pub mod realtime;
pub mod retention;
pub mod roles;
pub mod scopes;
pub mod tokens;
pub mod users;
pub mod webpush;
