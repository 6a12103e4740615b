//! Extractors: credentials (admin key, app API key, user bearer token) and input (JSON bodies,
//! queries, path ids) with every rejection rendered as an [`ApiError`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::audit::AuditIdentity;
use crate::domain::{apps, auth, scopes};
use crate::error::ApiError;
use crate::state::AppState;

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn record(parts: &Parts, app_id: Uuid, user_id: Option<&str>) {
    if let Some(identity) = parts.extensions.get::<AuditIdentity>() {
        identity.set(app_id, user_id);
    }
}

/// The platform administrator (`Authorization: Bearer $ADMIN_API_KEY`).
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.config.admin_api_key.as_deref() else {
            return Err(ApiError::Unavailable {
                code: "ADMIN_NOT_CONFIGURED",
                message: "Admin API not configured".into(),
            });
        };
        let presented = bearer(parts)
            .ok_or_else(|| ApiError::unauthorized("UNAUTHORIZED", "Missing admin authorization"))?;
        // Comparing digests keeps the time independent of both content and length.
        let same: bool = Sha256::digest(presented.as_bytes())
            .ct_eq(&Sha256::digest(expected.as_bytes()))
            .into();
        if !same {
            return Err(ApiError::unauthorized(
                "UNAUTHORIZED",
                "Invalid admin credentials",
            ));
        }
        Ok(Admin)
    }
}

/// An app server authenticated by `X-API-Key`.
#[derive(Debug, Clone, Copy)]
pub struct AppKey {
    pub app_id: Uuid,
}

impl FromRequestParts<AppState> for AppKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::unauthorized("MISSING_API_KEY", "Missing API key"))?;
        let app_id = apps::authenticate_key(&state.pool, key).await?;
        record(parts, app_id, None);
        Ok(AppKey { app_id })
    }
}

impl FromRequestParts<AppState> for auth::AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            bearer(parts).ok_or_else(|| ApiError::unauthorized("UNAUTHORIZED", "Missing authorization"))?;
        let user = auth::authenticate(state, token).await?;
        record(parts, user.app_id, Some(&user.user_id));
        scopes::check(user.scopes.as_deref(), &parts.method, parts.uri.path())?;
        if let Some(limiter) = &state.rate_limit
            && let Err(wait) = limiter.check(user.app_id, &user.user_id)
        {
            state.metrics.rate_limited.inc();
            return Err(ApiError::TooManyRequests {
                // Rounded up: a client that waits this long finds a token.
                retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            });
        }
        Ok(user)
    }
}

/// A JSON body; malformed JSON, wrong types and unknown fields give 400 naming the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|err| match err {
            BytesRejection::FailedToBufferBody(_) => ApiError::PayloadTooLarge {
                message: "Request body is too large".into(),
            },
            other => ApiError::invalid("body", other.body_text()),
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "Request body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let message = err.inner().to_string();
        // serde names unknown/missing fields in backquotes; that name is the offending field.
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"));
        let path = err.path().to_string();
        let field = match named {
            Some(name) if path == "." => name.to_owned(),
            // Unknown fields already end the path; missing ones are named by the parent's path.
            Some(name) if path == name || path.ends_with(&format!(".{name}")) => path,
            Some(name) => format!("{path}.{name}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        ApiError::invalid(field, message)
    })
}

/// Query parameters with a JSON 400 on failure.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|err| query_error(&err.body_text()))
    }
}

/// axum reports `Failed to deserialize query string: limit: invalid digit …`; the segment
/// before the second colon is the parameter's name.
fn query_error(text: &str) -> ApiError {
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(text);
    match detail.split_once(": ") {
        Some((name, reason)) if !name.is_empty() && !name.contains(' ') => {
            ApiError::invalid(name.to_owned(), format!("{name}: {reason}"))
        }
        _ => ApiError::invalid("query", detail.to_owned()),
    }
}

/// Parses a path id; a malformed one cannot exist.
pub fn path_id(raw: &str, field: &'static str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid(field, format!("{field} must be a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        user_id: String,
        tags: Option<Vec<u32>>,
    }

    fn field(result: Result<Body, ApiError>) -> Option<String> {
        match result {
            Err(ApiError::BadRequest { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert!(parse_json::<Body>(br#"{"userId":"a"}"#).is_ok());
        assert_eq!(
            field(parse_json(br#"{"userId":"a","admin":true}"#)),
            Some("admin".into())
        );
        assert_eq!(field(parse_json(br#"{}"#)), Some("userId".into()));
        assert_eq!(
            field(parse_json(br#"{"userId":"a","tags":[1,"x"]}"#)),
            Some("tags[1]".into())
        );
        assert_eq!(field(parse_json(b"not json")), Some("body".into()));
        assert_eq!(field(parse_json(b"")), Some("body".into()));
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let named = |err: ApiError| match err {
            ApiError::BadRequest { field, .. } => field.map(|f| f.into_owned()),
            _ => None,
        };
        assert_eq!(
            named(query_error(
                "Failed to deserialize query string: limit: invalid digit found in string"
            )),
            Some("limit".into())
        );
        assert_eq!(
            named(query_error("Failed to deserialize query string: expected `,`")),
            Some("query".into())
        );
    }
}
