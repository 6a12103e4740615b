//! API errors and their JSON rendering: `{"error": {"code", "message", "field"}}`.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

type Text = Cow<'static, str>;

/// Every failure a handler can return. Client errors carry a stable `code` and, for bad input,
/// the `field` that was wrong; server errors are logged and rendered without their details.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: Text,
        field: Option<Text>,
    },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: Text },
    #[error("{message}")]
    Forbidden { code: &'static str, message: Text },
    #[error("{message}")]
    NotFound { code: &'static str, message: Text },
    #[error("{message}")]
    Conflict { code: &'static str, message: Text },
    #[error("{message}")]
    PayloadTooLarge { message: Text },
    #[error("{message}")]
    Unavailable { code: &'static str, message: Text },
    /// The per-user rate limit; `Retry-After` tells when the next request passes.
    #[error("Too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<Text>, field: impl Into<Text>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn invalid(field: impl Into<Text>, message: impl Into<Text>) -> Self {
        Self::bad_request("VALIDATION_ERROR", message, field)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<Text>) -> Self {
        Self::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<Text>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<Text>) -> Self {
        Self::NotFound {
            code: "NOT_FOUND",
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<Text>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> ErrorBody<'_> {
        let (code, message, field): (&str, &str, Option<&str>) = match self {
            Self::BadRequest { code, message, field } => (code, message, field.as_deref()),
            Self::Unauthorized { code, message }
            | Self::Forbidden { code, message }
            | Self::NotFound { code, message }
            | Self::Conflict { code, message }
            | Self::Unavailable { code, message } => (code, message, None),
            Self::PayloadTooLarge { message } => ("PAYLOAD_TOO_LARGE", message, None),
            Self::TooManyRequests { .. } => ("RATE_LIMITED", "Too many requests, slow down", None),
            // Details of server faults stay in the log: they may name tables or hosts.
            Self::Database(_) | Self::Internal(_) => ("INTERNAL_ERROR", "Internal Server Error", None),
        };
        ErrorBody {
            error: ErrorDetail { code, message, field },
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(err: &ApiError) -> serde_json::Value {
        serde_json::to_value(err.body()).unwrap_or_default()
    }

    #[test]
    fn client_errors_name_code_message_and_field() {
        let err = ApiError::invalid("name", "name must not be empty");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            render(&err),
            serde_json::json!({"error": {"code": "VALIDATION_ERROR", "message": "name must not be empty", "field": "name"}})
        );
        let err = ApiError::forbidden("FORBIDDEN", "Not a member of this channel");
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(render(&err)["error"]["field"], serde_json::Value::Null);
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let err = ApiError::Internal("relation \"secret_table\" does not exist".into());
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = render(&err).to_string();
        assert!(!body.contains("secret_table"), "{body}");
        assert!(body.contains("INTERNAL_ERROR"));
    }
}
