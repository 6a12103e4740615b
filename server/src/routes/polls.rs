//! Polls: `POST /api/channels/:channelId/messages/:messageId/polls` and `/api/polls/:id`
//! (vote, withdraw, results).

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::polls::{self, CreatePoll, PollOption};
use crate::error::ApiResult;
use crate::openapi::{Success, UserErrors};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(vote, unvote))
        .routes(routes!(results))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OptionBody {
    /// 1..64 characters, unique in the poll.
    id: String,
    /// 1..500 characters.
    text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    /// 1..1000 characters.
    question: String,
    /// 2..10 options.
    options: Vec<OptionBody>,
    #[serde(default)]
    is_anonymous: bool,
    #[serde(default)]
    is_multi_choice: bool,
    /// Votes are refused from this instant on.
    ends_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PollResponse {
    id: Uuid,
    question: String,
    /// `[{id, text}]`.
    #[schema(value_type = Vec<Object>)]
    options: Value,
    is_anonymous: bool,
    is_multi_choice: bool,
    total_votes: i32,
    ends_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// Attaches a poll to the caller's own message (one per message); `poll.created` on the
/// channel.
#[utoipa::path(post, path = "/api/channels/{channel_id}/messages/{message_id}/polls", tag = "polls", operation_id = "createPoll",
    security(("userToken" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ("message_id" = Uuid, Path, description = "The caller's message")),
    request_body = CreateBody,
    responses((status = 200, description = "The poll", body = PollResponse),
        (status = 409, description = "The message has a poll already", body = crate::openapi::ErrorBody), UserErrors))]
async fn create(
    user: AuthUser,
    State(state): State<AppState>,
    Path((channel_id, message_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<Json<PollResponse>> {
    let input = CreatePoll {
        question: body.question,
        options: body
            .options
            .into_iter()
            .map(|o| PollOption {
                id: o.id,
                text: o.text,
            })
            .collect(),
        is_anonymous: body.is_anonymous,
        is_multi_choice: body.is_multi_choice,
        ends_at: body.ends_at,
    };
    let row = polls::create(
        &state,
        &user,
        path_id(&channel_id, "channelId")?,
        path_id(&message_id, "messageId")?,
        input,
    )
    .await?;
    Ok(Json(PollResponse {
        id: row.id,
        question: row.question,
        options: row.options,
        is_anonymous: row.is_anonymous,
        is_multi_choice: row.is_multi_choice,
        total_votes: row.total_votes,
        ends_at: row.ends_at,
        created_at: row.created_at,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VoteBody {
    /// One option (several on a multi-choice poll); replaces the caller's earlier vote.
    option_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct VoteResponse {
    success: bool,
    /// Distinct voters.
    total_votes: i32,
}

#[utoipa::path(post, path = "/api/polls/{poll_id}/vote", tag = "polls", operation_id = "votePoll",
    security(("userToken" = [])), params(("poll_id" = Uuid, Path, description = "Poll id")), request_body = VoteBody,
    responses((status = 200, description = "Voted; `poll.voted` on the channel (no voter named on an anonymous poll)", body = VoteResponse), UserErrors))]
async fn vote(
    user: AuthUser,
    State(state): State<AppState>,
    Path(poll_id): Path<String>,
    ApiJson(body): ApiJson<VoteBody>,
) -> ApiResult<Json<VoteResponse>> {
    let total = polls::vote(&state, &user, path_id(&poll_id, "pollId")?, body.option_ids).await?;
    Ok(Json(VoteResponse {
        success: true,
        total_votes: total,
    }))
}

#[utoipa::path(delete, path = "/api/polls/{poll_id}/vote", tag = "polls", operation_id = "unvotePoll",
    security(("userToken" = [])), params(("poll_id" = Uuid, Path, description = "Poll id")),
    responses((status = 200, description = "Vote withdrawn (`poll.vote_removed` when there was one)", body = Success), UserErrors))]
async fn unvote(
    user: AuthUser,
    State(state): State<AppState>,
    Path(poll_id): Path<String>,
) -> ApiResult<Json<Success>> {
    polls::unvote(&state, &user, path_id(&poll_id, "pollId")?).await?;
    Ok(Json(Success::ok()))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Voter {
    user_id: String,
    name: Option<String>,
    image: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OptionResult {
    id: String,
    text: String,
    vote_count: i64,
    /// `null` on an anonymous poll.
    voters: Option<Vec<Voter>>,
    /// Alias of `voteCount`: what upstream's `usePolls` hook reads **[ours]**.
    #[serde(rename = "vote_count")]
    legacy_vote_count: i64,
}

/// Upstream's answer (camelCase) plus the snake_case names its `usePolls` hook reads
/// (`is_anonymous`, `total_votes`, `user_votes`, …) **[ours]**: both clients work.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ResultsResponse {
    id: Uuid,
    question: String,
    options: Vec<OptionResult>,
    is_anonymous: bool,
    is_multi_choice: bool,
    total_votes: i32,
    user_votes: Vec<String>,
    ends_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    #[serde(rename = "is_anonymous")]
    legacy_is_anonymous: bool,
    #[serde(rename = "is_multi_choice")]
    legacy_is_multi_choice: bool,
    #[serde(rename = "total_votes")]
    legacy_total_votes: i32,
    #[serde(rename = "user_votes")]
    legacy_user_votes: Vec<String>,
    #[serde(rename = "ends_at")]
    legacy_ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "created_at")]
    legacy_created_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/polls/{poll_id}/results", tag = "polls", operation_id = "pollResults",
    security(("userToken" = [])), params(("poll_id" = Uuid, Path, description = "Poll id")),
    responses((status = 200, description = "Counts, the caller's votes, voters unless anonymous (members only)", body = ResultsResponse), UserErrors))]
async fn results(
    user: AuthUser,
    State(state): State<AppState>,
    Path(poll_id): Path<String>,
) -> ApiResult<Json<ResultsResponse>> {
    let results = polls::results(&state, &user, path_id(&poll_id, "pollId")?).await?;
    let options = results
        .options()
        .into_iter()
        .map(|(id, text)| {
            let count = results
                .counts
                .iter()
                .find(|(option, _)| *option == id)
                .map_or(0, |(_, n)| *n);
            let voters = results.voters.as_ref().map(|all| {
                all.iter()
                    .filter(|v| v.option_id == id)
                    .map(|v| Voter {
                        user_id: v.user_id.clone(),
                        name: v.name.clone(),
                        image: v.image_url.clone(),
                    })
                    .collect()
            });
            OptionResult {
                id,
                text,
                vote_count: count,
                voters,
                legacy_vote_count: count,
            }
        })
        .collect();
    let poll = results.poll;
    Ok(Json(ResultsResponse {
        id: poll.id,
        question: poll.question,
        options,
        is_anonymous: poll.is_anonymous,
        is_multi_choice: poll.is_multi_choice,
        total_votes: poll.total_votes,
        user_votes: results.own.clone(),
        ends_at: poll.ends_at,
        created_at: poll.created_at,
        legacy_is_anonymous: poll.is_anonymous,
        legacy_is_multi_choice: poll.is_multi_choice,
        legacy_total_votes: poll.total_votes,
        legacy_user_votes: results.own,
        legacy_ends_at: poll.ends_at,
        legacy_created_at: poll.created_at,
    }))
}
