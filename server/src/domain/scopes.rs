//! Token scopes: what a broker-minted token may reach.
//!
//! Upstream checks scopes twice: its `brokerScopedRouteGuard` lets a broker token reach only a
//! fixed list of routes, each with the scope it needs, and `requireScope` on the routes asks
//! every user token for the same scope. Tokens from `/api/auth/connect` carry no scopes, so
//! upstream's `requireScope` refuses them with 403 on every guarded route. Here an absent
//! `scopes` claim is an unscoped session (the app server vouched for the user with its API
//! key) and passes; a token that carries scopes reaches only the routes below, with the scope
//! each names. The patterns are upstream's, matched on the request path as upstream matches
//! them, so the rule does not depend on how a route template names its parameters.

use std::sync::LazyLock;

use axum::http::Method;
use regex::Regex;

use crate::error::{ApiError, ApiResult};

/// Every scope a broker credential may be granted (upstream's `broker_app_scope` check).
pub const BROKER_SCOPES: &[&str] = &[
    "chat:read",
    "chat:write",
    "reaction:write",
    "typing:write",
    "upload:write",
    "search:read",
];

/// `(method, path pattern, scope)`, upstream's `BROKER_SCOPED_ROUTES`.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", r"^/api/channels(?:/[^/]+)?$", "chat:read"),
    ("POST", r"^/api/channels$", "channel:create"),
    ("PATCH", r"^/api/channels/[^/]+$", "chat:write"),
    ("DELETE", r"^/api/channels/[^/]+$", "chat:write"),
    ("GET", r"^/api/channels/[^/]+/members$", "chat:read"),
    ("POST", r"^/api/channels/[^/]+/members$", "chat:write"),
    ("PATCH", r"^/api/channels/[^/]+/members/[^/]+$", "chat:write"),
    ("DELETE", r"^/api/channels/[^/]+/members/[^/]+$", "chat:write"),
    ("GET", r"^/api/channels/[^/]+/messages(?:/[^/]+)?$", "chat:read"),
    ("POST", r"^/api/channels/[^/]+/messages$", "chat:write"),
    ("PATCH", r"^/api/channels/[^/]+/messages/[^/]+$", "chat:write"),
    (
        "DELETE",
        r"^/api/channels/[^/]+/messages/[^/]+(?:/purge)?$",
        "chat:write",
    ),
    (
        "GET",
        r"^/api/channels/[^/]+/messages/[^/]+/thread(?:/participants)?$",
        "chat:read",
    ),
    (
        "POST",
        r"^/api/channels/[^/]+/messages/[^/]+/thread$",
        "chat:write",
    ),
    ("POST", r"^/api/messages/[^/]+/reactions$", "reaction:write"),
    (
        "DELETE",
        r"^/api/messages/[^/]+/reactions/[^/]+$",
        "reaction:write",
    ),
    ("POST", r"^/api/messages/[^/]+/polls$", "chat:write"),
    ("GET", r"^/api/polls/[^/]+/results$", "chat:read"),
    ("POST", r"^/api/polls/[^/]+/vote$", "chat:write"),
    ("DELETE", r"^/api/polls/[^/]+/vote$", "chat:write"),
    ("POST", r"^/api/realtime/subscription-token$", "chat:read"),
    ("GET", r"^/api/presence(?:/.*)?$", "chat:read"),
    (
        "POST",
        r"^/api/presence/(?:heartbeat|online|offline)$",
        "typing:write",
    ),
    ("POST", r"^/api/channels/[^/]+/typing$", "typing:write"),
    ("GET", r"^/api/channels/[^/]+/presence$", "chat:read"),
    ("GET", r"^/api/channels/[^/]+/search$", "search:read"),
    ("GET", r"^/api/search(?:/.*)?$", "search:read"),
    ("GET", r"^/api/channels/[^/]+/uploads$", "chat:read"),
    ("GET", r"^/api/uploads(?:/.*)?$", "chat:read"),
    ("POST", r"^/api/uploads(?:/.*)?$", "upload:write"),
    ("DELETE", r"^/api/uploads(?:/.*)?$", "upload:write"),
    ("GET", r"^/api/channels/[^/]+/receipts(?:/.*)?$", "chat:read"),
    ("POST", r"^/api/channels/[^/]+/read$", "chat:write"),
    ("GET", r"^/api/mentions(?:/.*)?$", "chat:read"),
];

struct Rule {
    method: Method,
    pattern: Regex,
    scope: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .filter_map(|&(method, pattern, scope)| {
            // The table is constant and covered by a unit test, so nothing is dropped here.
            Some(Rule {
                method: method.parse().ok()?,
                pattern: Regex::new(pattern).ok()?,
                scope,
            })
        })
        .collect()
});

/// The scope a scoped token needs for `method path`; `None` when no scoped token may call it.
pub fn required(method: &Method, path: &str) -> Option<&'static str> {
    RULES
        .iter()
        .find(|rule| rule.method == method && rule.pattern.is_match(path))
        .map(|rule| rule.scope)
}

/// Refuses a scoped token on a route it may not reach (403, as upstream); unscoped tokens pass.
pub fn check(granted: Option<&[String]>, method: &Method, path: &str) -> ApiResult<()> {
    let Some(granted) = granted else {
        return Ok(());
    };
    match required(method, path) {
        None => Err(ApiError::forbidden(
            "SCOPE_ROUTE_DENIED",
            "Broker-scoped token is not allowed for this route",
        )),
        Some(scope) if granted.iter().any(|g| g == scope) => Ok(()),
        Some(scope) => Err(ApiError::forbidden(
            "INSUFFICIENT_SCOPE",
            format!("Token scope required: {scope}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(RULES.len(), ROUTES.len());
    }

    #[test]
    fn scoped_tokens_reach_only_listed_routes_with_their_scope() {
        let read = vec!["chat:read".to_owned()];
        let get = Method::GET;
        let post = Method::POST;
        assert!(check(Some(&read), &get, "/api/channels").is_ok());
        assert!(check(Some(&read), &get, "/api/channels/abc/messages").is_ok());
        let code = |r: ApiResult<()>| match r {
            Err(ApiError::Forbidden { code, .. }) => Some(code),
            _ => None,
        };
        assert_eq!(
            code(check(Some(&read), &post, "/api/channels/abc/messages")),
            Some("INSUFFICIENT_SCOPE")
        );
        assert_eq!(
            code(check(Some(&read), &post, "/api/users/bob/block")),
            Some("SCOPE_ROUTE_DENIED")
        );
        // Anchored: a longer path does not borrow a shorter route's rule.
        assert_eq!(required(&get, "/api/channels/a/b/c"), None);
        assert_eq!(required(&post, "/api/presence/heartbeat"), Some("typing:write"));
        // Unscoped sessions (`/api/auth/connect`) are not limited.
        assert!(check(None, &post, "/api/users/bob/block").is_ok());
    }

    #[test]
    fn granted_broker_scopes_are_the_ones_routes_ask_for() {
        for (_, _, scope) in ROUTES {
            assert!(
                BROKER_SCOPES.contains(scope) || *scope == "channel:create",
                "{scope}"
            );
        }
    }
}
