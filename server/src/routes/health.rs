//! Probes: `/health` (process up), `/live`, `/ready` (database reachable, migrations applied).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::storage::migrate;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(crate::metrics::handler))
        .routes(routes!(crate::openapi::document))
}

#[utoipa::path(get, path = "/health", tag = "health", operation_id = "health",
    responses((status = 200, description = "`{status: \"ok\", timestamp, uptime}`", body = Value)))]
async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "timestamp": chrono::Utc::now(),
        "uptime": state.started.elapsed().as_secs_f64(),
    }))
}

#[utoipa::path(get, path = "/live", tag = "health", operation_id = "live",
    responses((status = 200, description = "The process answers", body = Value)))]
async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/ready", tag = "health", operation_id = "ready",
    responses(
        (status = 200, description = "`{ready: true, checks}`", body = Value),
        (status = 503, description = "Database unreachable or migrations pending", body = Value),
    ))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = sqlx::query("SELECT 1").execute(&state.pool).await;
    let pending = match &database {
        Ok(_) => migrate::pending(&state.pool).await.map_err(|e| e.to_string()),
        Err(_) => Err("database unreachable".to_owned()),
    };
    let database_ok = database.is_ok();
    let migrations_ok = pending.as_ref().is_ok_and(Vec::is_empty);
    let status = |ok| if ok { "ok" } else { "error" };
    let body = json!({
        "ready": database_ok && migrations_ok,
        "checks": {
            "database": { "status": status(database_ok) },
            "migrations": {
                "status": status(migrations_ok),
                "pending": pending.as_ref().ok(),
            },
        },
    });
    if let Err(err) = &database {
        tracing::warn!(%err, "readiness: database check failed");
    }
    let code = if database_ok && migrations_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
