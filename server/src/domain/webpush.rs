//! Web Push: browsers subscribe (endpoint + keys) and unsubscribe; `test` sends a real,
//! encrypted, VAPID-signed message to each of the caller's subscriptions and forgets the ones
//! the push service says are gone.
//!
//! The server posts to the endpoint a browser gave it, so endpoints are restricted: `https`,
//! a DNS name (no IP literal, no `localhost`) unless `WEB_PUSH_ALLOW_LOCAL_ENDPOINTS` (tests)
//! allows local ones, at most 2048 bytes; redirects are not followed.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::begin_tenant;
use crate::storage::webpush::{self, NewSubscription};
use crate::webpush::{Delivery, Subscription, WebPush, auth_secret, public_key};

const MAX_ENDPOINT_BYTES: usize = 2048;

pub fn configured(state: &AppState) -> ApiResult<&WebPush> {
    state.web_push.as_deref().ok_or_else(|| ApiError::Unavailable {
        code: "WEB_PUSH_NOT_CONFIGURED",
        message: "Web Push not configured (VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY)".into(),
    })
}

/// Refuses endpoints a push service cannot have.
fn validate_endpoint(endpoint: &str, allow_local: bool) -> ApiResult<()> {
    let bad = |why: &str| Err(ApiError::invalid("endpoint", format!("endpoint {why}")));
    if endpoint.len() > MAX_ENDPOINT_BYTES || endpoint.chars().any(char::is_control) {
        return bad("must be a URL of at most 2048 bytes");
    }
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return bad("must be a URL");
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return bad("must be an absolute URL");
    };
    if allow_local {
        return if matches!(scheme, "https" | "http") {
            Ok(())
        } else {
            bad("must be an http(s) URL")
        };
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if scheme != "https" {
        return bad("must use https");
    }
    if host.parse::<std::net::IpAddr>().is_ok()
        || host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || !host.contains('.')
    {
        return bad("must name a push service by its DNS name");
    }
    Ok(())
}

pub struct SubscribeInput<'a> {
    pub endpoint: &'a str,
    /// Milliseconds since the epoch (the browser's `PushSubscription.expirationTime`).
    pub expiration_time: Option<f64>,
    pub p256dh: &'a str,
    pub auth: &'a str,
    pub user_agent: Option<&'a str>,
}

pub async fn subscribe(state: &AppState, user: &AuthUser, input: SubscribeInput<'_>) -> ApiResult<()> {
    validate_endpoint(input.endpoint, state.config.web_push_allow_local)?;
    if public_key(input.p256dh).is_err() {
        return Err(ApiError::invalid(
            "keys.p256dh",
            "keys.p256dh must be the base64url uncompressed P-256 public key",
        ));
    }
    if auth_secret(input.auth).is_err() {
        return Err(ApiError::invalid(
            "keys.auth",
            "keys.auth must be 16 bytes, base64url",
        ));
    }
    let expires_at = match input.expiration_time {
        None => None,
        // JavaScript's date range; NaN and infinities fall outside it.
        Some(ms) if (0.0..8.64e15).contains(&ms) => DateTime::<Utc>::from_timestamp_millis(ms as i64),
        Some(_) => {
            return Err(ApiError::invalid(
                "expirationTime",
                "expirationTime must be milliseconds since the epoch",
            ));
        }
    };
    let user_agent = input.user_agent.map(|ua| {
        // Stored for the user's own device list only; bounded.
        ua.chars()
            .filter(|c| !c.is_control())
            .take(512)
            .collect::<String>()
    });
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    webpush::upsert(
        &mut tx,
        user.app_id,
        &user.user_id,
        &NewSubscription {
            endpoint: input.endpoint,
            p256dh: input.p256dh,
            auth: input.auth,
            user_agent: user_agent.as_deref(),
            expires_at,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn unsubscribe(state: &AppState, user: &AuthUser, endpoint: &str) -> ApiResult<()> {
    if endpoint.is_empty() || endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err(ApiError::invalid("endpoint", "endpoint must be 1 to 2048 bytes"));
    }
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    webpush::delete(&mut tx, user.app_id, &user.user_id, endpoint).await?;
    tx.commit().await?;
    Ok(())
}

/// What a send to the caller's subscriptions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    pub failed: usize,
}

/// Upstream's test notification (`webPushPayloads.newMessage`), to every subscription.
pub async fn send_test(state: &AppState, user: &AuthUser) -> ApiResult<Sent> {
    let push = configured(state)?;
    let payload = json!({
        "title": "Test User",
        "body": "This is a test notification from ChatSDK!",
        "icon": "/icons/chat-icon-192.png",
        "badge": "/icons/chat-badge-72.png",
        "tag": "message-test-channel",
        "data": {
            "type": "new-message",
            "channelId": "test-channel",
            "messageId": "test-message",
            "url": "/channel/test-channel",
        },
        "actions": [{"action": "reply", "title": "Reply"}, {"action": "view", "title": "View"}],
    });
    let body = serde_json::to_vec(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
    let subscriptions = {
        let mut tx = begin_tenant(&state.pool, user.app_id).await?;
        let rows = webpush::live(&mut tx, user.app_id, &user.user_id).await?;
        tx.commit().await?;
        rows
    };
    let mut result = Sent::default();
    for row in subscriptions {
        let subscription = Subscription {
            endpoint: row.endpoint,
            p256dh: row.p256dh,
            auth: row.auth,
        };
        match push.send(&subscription, &body).await {
            Ok(Delivery::Accepted) => result.sent += 1,
            Ok(Delivery::Gone) => {
                result.failed += 1;
                let mut tx = begin_tenant(&state.pool, user.app_id).await?;
                webpush::delete(&mut tx, user.app_id, &user.user_id, &subscription.endpoint).await?;
                tx.commit().await?;
            }
            Ok(Delivery::Failed) => result.failed += 1,
            Err(err) => {
                tracing::warn!(%err, "web push not sent");
                result.failed += 1;
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_public_https_push_services() {
        let ok = |e: &str, local| validate_endpoint(e, local).is_ok();
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc", false));
        assert!(ok("https://updates.push.services.mozilla.com/wpush/v2/x", false));
        for bad in [
            "http://fcm.googleapis.com/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/x",
            "https://push.localhost/x",
            "https://intranet/x",
            "ftp://push.example.com/x",
            "not a url",
            "/relative",
        ] {
            assert!(!ok(bad, false), "{bad}");
        }
        assert!(ok("http://127.0.0.1:9999/push", true));
        assert!(!ok("file:///etc/passwd", true));
        assert!(!ok(
            &format!("https://push.example.com/{}", "x".repeat(2048)),
            false
        ));
    }
}
