//! `/api/moderation`: report a message; the app admin's queue, report and review.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiQuery, path_id};
use crate::domain::auth::AuthUser;
use crate::domain::{moderation, paging};
use crate::error::ApiResult;
use crate::openapi::UserErrors;
use crate::state::AppState;
use crate::storage::moderation::ReportRow;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(review))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    /// harassment, spam, inappropriate, violence or hate_speech.
    reason: String,
    /// At most 1000 characters.
    details: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReportCreated {
    id: Uuid,
    message_id: Uuid,
    reason: String,
    status: String,
    created_at: DateTime<Utc>,
}

/// Reports another member's message (members of its channel only, once per message).
#[utoipa::path(post, path = "/api/moderation/{message_id}/report", tag = "moderation", operation_id = "reportMessage",
    security(("userToken" = [])), params(("message_id" = Uuid, Path, description = "Message id")), request_body = ReportBody,
    responses((status = 200, description = "The pending report", body = ReportCreated), UserErrors))]
async fn report(
    user: AuthUser,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
    ApiJson(body): ApiJson<ReportBody>,
) -> ApiResult<Json<ReportCreated>> {
    let created = moderation::report(
        &state,
        &user,
        path_id(&message_id, "messageId")?,
        &body.reason,
        body.details.as_deref(),
    )
    .await?;
    Ok(Json(ReportCreated {
        id: created.id,
        message_id: created.message_id,
        reason: created.reason,
        status: created.status,
        created_at: created.created_at,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
struct Person {
    id: String,
    name: Option<String>,
    image: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReportedMessage {
    /// `null` once deleted.
    text: Option<String>,
    author: Person,
    channel_id: Uuid,
    channel_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Report {
    id: Uuid,
    message_id: Uuid,
    reason: String,
    details: Option<String>,
    /// pending, reviewed (dismissed) or actioned.
    status: String,
    reporter: Person,
    message: ReportedMessage,
    reviewed_by: Option<String>,
    reviewed_at: Option<DateTime<Utc>>,
    action_taken: Option<String>,
    admin_notes: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<ReportRow> for Report {
    fn from(r: ReportRow) -> Self {
        Self {
            id: r.id,
            message_id: r.message_id,
            reason: r.reason,
            details: r.details,
            status: r.status,
            reporter: Person {
                id: r.reporter_user_id,
                name: r.reporter_name,
                image: r.reporter_image,
            },
            message: ReportedMessage {
                text: r.message_text,
                author: Person {
                    id: r.message_author_id,
                    name: r.message_author_name,
                    image: r.message_author_image,
                },
                channel_id: r.channel_id,
                channel_name: r.channel_name,
            },
            reviewed_by: r.reviewed_by,
            reviewed_at: r.reviewed_at,
            action_taken: r.action_taken,
            admin_notes: r.admin_notes,
            created_at: r.created_at,
        }
    }
}

/// `status` pending|reviewed|actioned|dismissed, `limit` 1..100 (default 50), `offset`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ReportPage {
    reports: Vec<Report>,
    /// Reports matching the filter (upstream: the page's length) **[ours]**.
    total: i64,
}

#[utoipa::path(get, path = "/api/moderation/reports", tag = "moderation", operation_id = "listReports",
    security(("userToken" = [])), params(ListQuery),
    responses((status = 200, description = "The queue, newest first (app admins only)", body = ReportPage), UserErrors))]
async fn list(
    user: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<ReportPage>> {
    let limit = paging::limit(query.limit, 50, 100)?;
    let offset = paging::offset(query.offset)?;
    let (rows, total) = moderation::list(&state, &user, query.status.as_deref(), limit, offset).await?;
    Ok(Json(ReportPage {
        reports: rows.into_iter().map(Into::into).collect(),
        total,
    }))
}

#[utoipa::path(get, path = "/api/moderation/reports/{report_id}", tag = "moderation", operation_id = "getReport",
    security(("userToken" = [])), params(("report_id" = Uuid, Path, description = "Report id")),
    responses((status = 200, description = "The report (app admins only)", body = Report), UserErrors))]
async fn show(
    user: AuthUser,
    State(state): State<AppState>,
    Path(report_id): Path<String>,
) -> ApiResult<Json<Report>> {
    Ok(Json(
        moderation::get(&state, &user, path_id(&report_id, "reportId")?)
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReviewBody {
    /// delete_message, warn_user (`custom.warnings` + 1), ban_user (`custom.banned`, sessions
    /// revoked, `connect` refused) or dismiss.
    action: String,
    /// At most 1000 characters.
    admin_notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReviewResponse {
    id: Uuid,
    status: String,
    reviewed_by: Option<String>,
    reviewed_at: Option<DateTime<Utc>>,
    action_taken: Option<String>,
    admin_notes: Option<String>,
}

#[utoipa::path(put, path = "/api/moderation/reports/{report_id}/review", tag = "moderation", operation_id = "reviewReport",
    security(("userToken" = [])), params(("report_id" = Uuid, Path, description = "Report id")), request_body = ReviewBody,
    responses((status = 200, description = "The closed report (app admins only)", body = ReviewResponse), UserErrors))]
async fn review(
    user: AuthUser,
    State(state): State<AppState>,
    Path(report_id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> ApiResult<Json<ReviewResponse>> {
    let done = moderation::review(
        &state,
        &user,
        path_id(&report_id, "reportId")?,
        &body.action,
        body.admin_notes.as_deref(),
    )
    .await?;
    Ok(Json(ReviewResponse {
        id: done.id,
        status: done.status,
        reviewed_by: done.reviewed_by,
        reviewed_at: done.reviewed_at,
        action_taken: done.action_taken,
        admin_notes: done.admin_notes,
    }))
}
