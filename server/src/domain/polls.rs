//! Polls: the author of a message attaches one poll to it; channel members vote (one option,
//! or several on a multi-choice poll) until `endsAt`, change or withdraw their vote, and read
//! the results (voters named unless the poll is anonymous). Each change is announced on the
//! channel (`poll.created`, `poll.voted`, `poll.vote_removed`) through the outbox.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::auth::AuthUser;
use crate::domain::channels::visible;
use crate::domain::realtime::{chat_channel, events};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::polls::{self, NewPoll, PollRow, VoterRow};
use crate::storage::{begin_tenant, outbox};

const MIN_OPTIONS: usize = 2;
const MAX_OPTIONS: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PollOption {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct CreatePoll {
    pub question: String,
    pub options: Vec<PollOption>,
    pub is_anonymous: bool,
    pub is_multi_choice: bool,
    pub ends_at: Option<DateTime<Utc>>,
}

fn validate(input: &CreatePoll) -> ApiResult<()> {
    let chars = input.question.chars().count();
    if chars == 0 || chars > 1000 {
        return Err(ApiError::invalid(
            "question",
            "question must be 1 to 1000 characters",
        ));
    }
    if !(MIN_OPTIONS..=MAX_OPTIONS).contains(&input.options.len()) {
        return Err(ApiError::invalid(
            "options",
            format!("a poll has {MIN_OPTIONS} to {MAX_OPTIONS} options"),
        ));
    }
    for (i, option) in input.options.iter().enumerate() {
        if option.id.is_empty() || option.id.chars().count() > 64 || option.id.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                format!("options[{i}].id"),
                "option id must be 1 to 64 characters",
            ));
        }
        if input.options[..i].iter().any(|o| o.id == option.id) {
            return Err(ApiError::invalid(
                format!("options[{i}].id"),
                "option ids must be unique",
            ));
        }
        let chars = option.text.chars().count();
        if chars == 0 || chars > 500 {
            return Err(ApiError::invalid(
                format!("options[{i}].text"),
                "option text must be 1 to 500 characters",
            ));
        }
    }
    Ok(())
}

/// The poll as upstream's create answer and `poll.created` event show it.
pub fn summary(row: &PollRow) -> Value {
    json!({
        "id": row.id,
        "question": row.question,
        "options": row.options,
        "isAnonymous": row.is_anonymous,
        "isMultiChoice": row.is_multi_choice,
        "totalVotes": row.total_votes,
        "endsAt": row.ends_at,
    })
}

/// Members only (public channels included: reading is not voting).
async fn member(conn: &mut PgConnection, user: &AuthUser, channel_id: Uuid) -> ApiResult<()> {
    let channel = visible(conn, user, channel_id).await?;
    if channel.role.is_none() {
        return Err(ApiError::forbidden("FORBIDDEN", "Not a channel member"));
    }
    Ok(())
}

fn poll_not_found() -> ApiError {
    ApiError::NotFound {
        code: "POLL_NOT_FOUND",
        message: "Poll not found".into(),
    }
}

/// Attaches a poll to the caller's own message.
pub async fn create(
    state: &AppState,
    user: &AuthUser,
    channel_id: Uuid,
    message_id: Uuid,
    input: CreatePoll,
) -> ApiResult<PollRow> {
    validate(&input)?;
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    member(&mut tx, user, channel_id).await?;
    let author = polls::message_author(&mut tx, app_id, channel_id, message_id).await?;
    if author.as_deref() != Some(user.user_id.as_str()) {
        return Err(ApiError::not_found("Message not found or not authorized"));
    }
    let options = serde_json::to_value(&input.options).map_err(|e| ApiError::Internal(e.to_string()))?;
    let new = NewPoll {
        id: Uuid::now_v7(),
        channel_id,
        message_id,
        question: &input.question,
        options: &options,
        is_anonymous: input.is_anonymous,
        is_multi_choice: input.is_multi_choice,
        ends_at: input.ends_at,
        created_by: &user.user_id,
    };
    let row = polls::insert(&mut tx, app_id, &new)
        .await?
        .ok_or_else(|| ApiError::conflict("POLL_EXISTS", "This message has a poll already"))?;
    outbox::enqueue(
        &mut tx,
        app_id,
        events::POLL_CREATED,
        &[chat_channel(app_id, channel_id)],
        &json!({ "channelId": channel_id, "messageId": message_id, "poll": summary(&row) }),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

fn option_ids(row: &PollRow) -> Vec<&str> {
    row.options
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("id").and_then(Value::as_str))
        .collect()
}

/// Replaces the caller's vote; returns the number of distinct voters.
pub async fn vote(
    state: &AppState,
    user: &AuthUser,
    poll_id: Uuid,
    mut chosen: Vec<String>,
) -> ApiResult<i32> {
    if chosen.is_empty() {
        return Err(ApiError::invalid("optionIds", "choose at least one option"));
    }
    if chosen.len() > MAX_OPTIONS {
        return Err(ApiError::invalid(
            "optionIds",
            format!("at most {MAX_OPTIONS} options"),
        ));
    }
    chosen.sort();
    chosen.dedup();
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let poll = polls::get(&mut tx, app_id, poll_id, true)
        .await?
        .ok_or_else(poll_not_found)?;
    member(&mut tx, user, poll.channel_id).await?;
    if poll.ends_at.is_some_and(|end| end <= Utc::now()) {
        return Err(ApiError::BadRequest {
            code: "POLL_ENDED",
            message: "Poll has ended".into(),
            field: None,
        });
    }
    let valid = option_ids(&poll);
    if let Some(bad) = chosen.iter().find(|c| !valid.contains(&c.as_str())) {
        return Err(ApiError::invalid(
            "optionIds",
            format!("{bad:?} is not an option of this poll"),
        ));
    }
    if !poll.is_multi_choice && chosen.len() > 1 {
        return Err(ApiError::invalid("optionIds", "This poll allows only one choice"));
    }
    let (_, total) = polls::set_votes(&mut tx, app_id, poll_id, &user.user_id, &chosen).await?;
    let payload = if poll.is_anonymous {
        json!({ "channelId": poll.channel_id, "pollId": poll_id, "userId": null, "totalVotes": total })
    } else {
        json!({ "channelId": poll.channel_id, "pollId": poll_id, "userId": user.user_id,
                "optionIds": chosen, "totalVotes": total })
    };
    outbox::enqueue(
        &mut tx,
        app_id,
        events::POLL_VOTED,
        &[chat_channel(app_id, poll.channel_id)],
        &payload,
    )
    .await?;
    tx.commit().await?;
    Ok(total)
}

/// Withdraws the caller's vote (a no-op when there was none, as upstream).
pub async fn unvote(state: &AppState, user: &AuthUser, poll_id: Uuid) -> ApiResult<()> {
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let poll = polls::get(&mut tx, app_id, poll_id, true)
        .await?
        .ok_or_else(poll_not_found)?;
    member(&mut tx, user, poll.channel_id).await?;
    let (removed, total) = polls::set_votes(&mut tx, app_id, poll_id, &user.user_id, &[]).await?;
    if removed > 0 {
        let voter = (!poll.is_anonymous).then_some(user.user_id.as_str());
        outbox::enqueue(
            &mut tx,
            app_id,
            events::POLL_VOTE_REMOVED,
            &[chat_channel(app_id, poll.channel_id)],
            &json!({ "channelId": poll.channel_id, "pollId": poll_id, "userId": voter, "totalVotes": total }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A poll with its counts, the caller's choices and (unless anonymous) the voters.
#[derive(Debug, Clone)]
pub struct Results {
    pub poll: PollRow,
    pub counts: Vec<(String, i64)>,
    pub own: Vec<String>,
    /// `None` for an anonymous poll.
    pub voters: Option<Vec<VoterRow>>,
}

impl Results {
    /// `(id, text)` of each option, in the poll's order.
    pub fn options(&self) -> Vec<(String, String)> {
        self.poll
            .options
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                (text("id"), text("text"))
            })
            .collect()
    }
}

pub async fn results(state: &AppState, user: &AuthUser, poll_id: Uuid) -> ApiResult<Results> {
    let app_id = user.app_id;
    let mut tx = begin_tenant(&state.pool, app_id).await?;
    let poll = polls::get(&mut tx, app_id, poll_id, false)
        .await?
        .ok_or_else(poll_not_found)?;
    member(&mut tx, user, poll.channel_id).await?;
    let counts = polls::counts(&mut tx, app_id, poll_id).await?;
    let own = polls::votes_of(&mut tx, app_id, poll_id, &user.user_id).await?;
    let voters = if poll.is_anonymous {
        None
    } else {
        Some(polls::voters(&mut tx, app_id, poll_id).await?)
    };
    tx.commit().await?;
    Ok(Results {
        poll,
        counts,
        own,
        voters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(options: &[(&str, &str)]) -> CreatePoll {
        CreatePoll {
            question: "Lunch?".into(),
            options: options
                .iter()
                .map(|(id, text)| PollOption {
                    id: (*id).into(),
                    text: (*text).into(),
                })
                .collect(),
            is_anonymous: false,
            is_multi_choice: false,
            ends_at: None,
        }
    }

    #[test]
    fn polls_need_two_to_ten_distinct_options() {
        let field = |p: CreatePoll| match validate(&p) {
            Err(ApiError::BadRequest { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        };
        assert_eq!(field(poll(&[("a", "A"), ("b", "B")])), None);
        assert_eq!(field(poll(&[("a", "A")])), Some("options".into()));
        assert_eq!(
            field(poll(&[("a", "A"), ("a", "B")])),
            Some("options[1].id".into())
        );
        assert_eq!(
            field(poll(&[("a", "A"), ("", "B")])),
            Some("options[1].id".into())
        );
        assert_eq!(
            field(poll(&[("a", ""), ("b", "B")])),
            Some("options[0].text".into())
        );
        let many: Vec<(String, String)> = (0..11).map(|i| (format!("o{i}"), "x".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(field(poll(&many)), Some("options".into()));
        assert_eq!(
            field(CreatePoll {
                question: String::new(),
                ..poll(&[("a", "A"), ("b", "B")])
            }),
            Some("question".into())
        );
    }
}
