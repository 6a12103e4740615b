//! `/api/realtime`: Centrifugo subscription tokens.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::domain::auth::AuthUser;
use crate::domain::realtime;
use crate::domain::tokens::SUBSCRIPTION_TTL;
use crate::error::ApiResult;
use crate::openapi::UserErrors;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(subscription_token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    /// `chat:{appId}:{channelId}` or `user:{appId}:{userId}`.
    channel: String,
}

#[utoipa::path(post, path = "/api/realtime/subscription-token", tag = "realtime", operation_id = "subscriptionToken",
    security(("userToken" = [])), request_body = SubscriptionBody,
    responses((status = 200, description = "`{token, expiresIn: 900}`", body = Value), UserErrors))]
async fn subscription_token(
    user: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> ApiResult<Json<Value>> {
    let token = realtime::subscription_token(&state, &user, &body.channel).await?;
    Ok(Json(
        json!({ "token": token, "expiresIn": SUBSCRIPTION_TTL.as_secs() }),
    ))
}
