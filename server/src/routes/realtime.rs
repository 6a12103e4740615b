//! `/api/realtime`: Centrifugo subscription tokens.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::ApiJson;
use crate::domain::auth::AuthUser;
use crate::domain::realtime;
use crate::domain::tokens::SUBSCRIPTION_TTL;
use crate::error::ApiResult;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/realtime/subscription-token", post(subscription_token))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    channel: String,
}

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
