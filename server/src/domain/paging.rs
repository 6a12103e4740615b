//! Page-size and offset rules shared by every list endpoint: a `limit` outside `1..=max` or a
//! negative `offset` is refused (400 naming the parameter) rather than silently changed, so a
//! client learns the bound instead of receiving a shorter page than it asked for.

use crate::error::{ApiError, ApiResult};

/// Largest accepted `offset`: deeper pages should use cursors, and huge offsets cost a scan.
pub const MAX_OFFSET: i64 = 100_000;

pub fn limit(value: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            format!("limit must be between 1 and {max}"),
        )),
    }
}

pub fn offset(value: Option<i64>) -> ApiResult<i64> {
    match value {
        None => Ok(0),
        Some(n) if (0..=MAX_OFFSET).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "offset",
            format!("offset must be between 0 and {MAX_OFFSET}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T>(r: ApiResult<T>) -> Option<String> {
        match r {
            Err(ApiError::BadRequest { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        }
    }

    #[test]
    fn limits_and_offsets_outside_the_bounds_are_refused() {
        assert_eq!(limit(None, 100, 200).ok(), Some(100));
        assert_eq!(limit(Some(1), 100, 200).ok(), Some(1));
        assert_eq!(limit(Some(200), 100, 200).ok(), Some(200));
        assert_eq!(field(limit(Some(0), 100, 200)), Some("limit".into()));
        assert_eq!(field(limit(Some(201), 100, 200)), Some("limit".into()));
        assert_eq!(field(limit(Some(-5), 100, 200)), Some("limit".into()));
        assert_eq!(offset(None).ok(), Some(0));
        assert_eq!(offset(Some(MAX_OFFSET)).ok(), Some(MAX_OFFSET));
        assert_eq!(field(offset(Some(-1))), Some("offset".into()));
        assert_eq!(field(offset(Some(MAX_OFFSET + 1))), Some("offset".into()));
    }
}
