//! Devices and push preferences: the tokens a user's phones registered for mobile push (APNs,
//! FCM, Expo) and what the user wants to be notified of.
//!
//! Upstream hands the tokens to Novu and never sends a push itself (its notification
//! functions are wired to events nothing emits); this server stores and manages them the
//! same way, ready for a push provider.

use serde_json::{Map, Value, json};

use crate::domain::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::begin_tenant;
use crate::storage::devices::{self, DeviceRow, NewDevice};

pub const PLATFORMS: &[&str] = &["ios", "android", "web", "expo"];
const MAX_TOKEN_BYTES: usize = 4096;
/// Boolean preferences and their defaults (upstream's).
const FLAGS: &[(&str, bool)] = &[
    ("newMessages", true),
    ("mentions", true),
    ("reactions", true),
    ("threadReplies", true),
    ("channelInvites", true),
    ("quietHoursEnabled", false),
];
const TIMES: &[(&str, &str)] = &[("quietHoursStart", "22:00"), ("quietHoursEnd", "07:00")];

fn text(field: &'static str, value: &str, max: usize) -> ApiResult<()> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to {max} bytes without control characters"),
        ));
    }
    Ok(())
}

pub async fn register(state: &AppState, user: &AuthUser, device: NewDevice<'_>) -> ApiResult<()> {
    text("token", device.token, MAX_TOKEN_BYTES)?;
    if !PLATFORMS.contains(&device.platform) {
        return Err(ApiError::invalid(
            "platform",
            format!("platform must be one of {}", PLATFORMS.join(", ")),
        ));
    }
    if let Some(id) = device.device_id {
        text("deviceId", id, 255)?;
    }
    if let Some(name) = device.device_name {
        text("deviceName", name, 255)?;
    }
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    devices::upsert(&mut tx, user.app_id, &user.user_id, &device).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes one of the caller's tokens (absent is fine: a logout may repeat, as upstream).
pub async fn unregister(state: &AppState, user: &AuthUser, token: &str) -> ApiResult<()> {
    text("token", token, MAX_TOKEN_BYTES)?;
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    devices::delete(&mut tx, user.app_id, &user.user_id, token).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(state: &AppState, user: &AuthUser) -> ApiResult<Vec<DeviceRow>> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let rows = devices::list(&mut tx, user.app_id, &user.user_id).await?;
    tx.commit().await?;
    Ok(rows)
}

fn is_clock_time(value: &str) -> bool {
    let bytes = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    bytes.len() == 5
        && bytes[2] == b':'
        && digits(0..2)
        && digits(3..5)
        && value[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && value[3..].parse::<u8>().is_ok_and(|m| m < 60)
}

/// Checks a preference patch: known keys only, booleans and `HH:MM` times.
fn validate_patch(patch: &Map<String, Value>) -> ApiResult<()> {
    for (key, value) in patch {
        if FLAGS.iter().any(|(k, _)| k == key) {
            if !value.is_boolean() {
                return Err(ApiError::invalid(key.clone(), format!("{key} must be a boolean")));
            }
        } else if TIMES.iter().any(|(k, _)| k == key) {
            if !value.as_str().is_some_and(is_clock_time) {
                return Err(ApiError::invalid(
                    key.clone(),
                    format!("{key} must be a time HH:MM"),
                ));
            }
        } else {
            return Err(ApiError::invalid(key.clone(), format!("unknown field `{key}`")));
        }
    }
    Ok(())
}

/// Upstream's defaults overlaid with what the user stored (only known keys).
fn with_defaults(stored: Option<&Value>) -> Value {
    let mut prefs = Map::new();
    for (key, default) in FLAGS {
        let value = stored
            .and_then(|s| s.get(*key))
            .and_then(Value::as_bool)
            .unwrap_or(*default);
        prefs.insert((*key).into(), json!(value));
    }
    for (key, default) in TIMES {
        let value = stored
            .and_then(|s| s.get(*key))
            .and_then(Value::as_str)
            .filter(|v| is_clock_time(v))
            .unwrap_or(default);
        prefs.insert((*key).into(), json!(value));
    }
    Value::Object(prefs)
}

pub async fn preferences(state: &AppState, user: &AuthUser) -> ApiResult<Value> {
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let stored = devices::preferences(&mut tx, user.app_id, &user.user_id).await?;
    tx.commit().await?;
    Ok(with_defaults(stored.as_ref()))
}

/// Merges the patch into the stored preferences **[ours]** (upstream replaces the whole
/// object, so an update of one key resets the others to their defaults); returns them all.
pub async fn update_preferences(
    state: &AppState,
    user: &AuthUser,
    patch: Map<String, Value>,
) -> ApiResult<Value> {
    validate_patch(&patch)?;
    let mut tx = begin_tenant(&state.pool, user.app_id).await?;
    let stored =
        devices::merge_preferences(&mut tx, user.app_id, &user.user_id, &Value::Object(patch)).await?;
    tx.commit().await?;
    Ok(with_defaults(stored.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_patches_are_typed() {
        let field = |v: Value| match validate_patch(v.as_object().unwrap_or(&Map::new())) {
            Err(ApiError::BadRequest { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        };
        assert_eq!(
            field(json!({"mentions": false, "quietHoursStart": "23:30"})),
            None
        );
        assert_eq!(field(json!({"mentions": "no"})), Some("mentions".into()));
        assert_eq!(
            field(json!({"quietHoursEnd": "24:00"})),
            Some("quietHoursEnd".into())
        );
        assert_eq!(
            field(json!({"quietHoursEnd": "7:00"})),
            Some("quietHoursEnd".into())
        );
        assert_eq!(
            field(json!({"quietHoursEnd": "0٧:00"})),
            Some("quietHoursEnd".into())
        );
        assert_eq!(field(json!({"volume": 11})), Some("volume".into()));
        assert_eq!(with_defaults(None)["newMessages"], true);
        assert_eq!(
            with_defaults(Some(&json!({"mentions": false})))["mentions"],
            false
        );
    }
}
