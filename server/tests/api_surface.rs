//! The API's outer surface: `/openapi.json` (valid, and equal to the router), `/metrics`, and
//! bad-input hardening (body size, unknown fields, page sizes, the per-user rate limit).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Body;
use chatsdk_server::config::RateLimitConfig;
use chatsdk_server::routes::{NoRoute, router};
use common::{TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Structural checks of an OpenAPI 3 document; returns every problem found.
fn openapi_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail = |p: String| problems.push(p);
    if !doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")) {
        fail(format!("openapi version {}", doc["openapi"]));
    }
    if !doc["info"]["title"].is_string() || !doc["info"]["version"].is_string() {
        fail("info.title / info.version missing".into());
    }
    let schemes: BTreeSet<&str> = doc["components"]["securitySchemes"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    let Some(paths) = doc["paths"].as_object().filter(|p| !p.is_empty()) else {
        fail("no paths".into());
        return problems;
    };
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        if !path.starts_with('/') {
            fail(format!("path {path} does not start with /"));
        }
        let template: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
            .collect();
        let Some(item) = item.as_object() else {
            fail(format!("{path}: not an object"));
            continue;
        };
        for (method, op) in item {
            if !METHODS.contains(&method.as_str()) {
                // Only path-level `parameters`, `summary`, … may sit beside the operations.
                if !matches!(
                    method.as_str(),
                    "parameters" | "summary" | "description" | "servers"
                ) {
                    fail(format!("{path}: unknown key {method}"));
                }
                continue;
            }
            let at = format!("{} {path}", method.to_uppercase());
            match op["operationId"].as_str() {
                Some(id) if operation_ids.insert(id.to_owned()) => {}
                Some(id) => fail(format!("{at}: duplicate operationId {id}")),
                None => fail(format!("{at}: no operationId")),
            }
            match op["responses"].as_object() {
                Some(responses) if !responses.is_empty() => {
                    for (code, response) in responses {
                        let valid_code = code == "default"
                            || (code.len() == 3 && code.chars().all(|c| c.is_ascii_digit() || c == 'X'));
                        if !valid_code {
                            fail(format!("{at}: response code {code}"));
                        }
                        if !response["description"].is_string() {
                            fail(format!("{at}: response {code} without description"));
                        }
                    }
                }
                _ => fail(format!("{at}: no responses")),
            }
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .inspect(|p| {
                            if p["required"] != true {
                                fail(format!("{at}: path parameter {} not required", p["name"]));
                            }
                        })
                        .filter_map(|p| p["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if declared != template {
                fail(format!(
                    "{at}: path parameters {declared:?} ≠ template {template:?}"
                ));
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if !matches!(p["in"].as_str(), Some("path" | "query" | "header" | "cookie")) {
                    fail(format!("{at}: parameter {} in {}", p["name"], p["in"]));
                }
            }
            for requirement in op["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !schemes.contains(name.as_str()) {
                        fail(format!("{at}: unknown security scheme {name}"));
                    }
                }
            }
            for tag in op["tags"].as_array().into_iter().flatten() {
                if !tag.as_str().is_some_and(|t| tags.contains(t)) {
                    fail(format!("{at}: undeclared tag {tag}"));
                }
            }
        }
    }
    // Every `$ref` points at a component that exists.
    let mut stack = vec![doc];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                    let resolved = target
                        .strip_prefix("#/")
                        .map(|p| p.split('/').fold(doc, |node, key| &node[key]));
                    if resolved.is_none_or(Value::is_null) {
                        fail(format!("dangling $ref {target}"));
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    problems
}

/// `(METHOD, path)` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The paths registered in an axum router, read from its `Debug` output (axum prints the route
/// table as `path_router: PathRouter { …, node: Node { paths: {RouteId(n): "/path", …} } }`,
/// followed by the `fallback_router`, whose internal paths are not routes).
fn router_paths(debug: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let routes = debug.split_once("path_router:").map_or("", |(_, rest)| {
        rest.split("fallback_router:").next().unwrap_or_default()
    });
    for table in routes.split("paths: {").skip(1) {
        // Templates contain `}` themselves, so read quoted strings up to the table's end.
        let mut rest = table;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            let path = &after[..end];
            if !path.contains("__private__axum") {
                found.insert(path.to_owned());
            }
            rest = &after[end + 1..];
            // The table ends at the first `}` outside a quoted string.
            if rest.trim_start().starts_with('}') {
                break;
            }
        }
    }
    found
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn openapi_document_is_valid_and_equals_the_router() -> TestResult {
    let server = TestServer::start().await?;
    let response = server
        .http
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    );
    let doc: Value = response.json().await?;
    let problems = openapi_problems(&doc);
    assert!(
        problems.is_empty(),
        "invalid OpenAPI document:\n{}",
        problems.join("\n")
    );

    // The checker itself must catch a broken document.
    let mut broken = doc.clone();
    broken["paths"]["/api/channels/{channel_id}"]["get"]["parameters"] = json!([]);
    broken["paths"]["/health"]["get"]["responses"] = json!({});
    assert_eq!(
        openapi_problems(&broken).len(),
        2,
        "{:?}",
        openapi_problems(&broken)
    );

    let operations = documented(&doc);
    // Spot checks: the contract's routes are there, with their methods.
    for (method, path) in [
        ("POST", "/api/auth/connect"),
        ("GET", "/api/channels/{channel_id}/messages"),
        ("POST", "/api/channels/{channel_id}/messages"),
        (
            "DELETE",
            "/api/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
        ),
        ("POST", "/admin/apps/{id}/regenerate-key"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ] {
        assert!(
            operations.contains(&(method.into(), path.into())),
            "{method} {path}"
        );
    }

    // The router's path table equals the document's paths …
    let app = router(server.state.clone());
    let doc_paths: BTreeSet<String> = operations.iter().map(|(_, p)| p.clone()).collect();
    let routed = router_paths(&format!("{app:?}"));
    assert_eq!(routed, doc_paths, "router paths vs documented paths");

    // … and on every path exactly the documented methods reach a handler: the others end in
    // the router's method-not-allowed fallback.
    let mut mismatches = Vec::new();
    for path in &doc_paths {
        let uri = concrete(path);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let request = axum::http::Request::builder()
                .method(method)
                .uri(&uri)
                .header("content-type", "application/json")
                .body(Body::from("{}"))?;
            let response = app.clone().oneshot(request).await?;
            let routed = response.extensions().get::<NoRoute>().is_none();
            let expected = operations.contains(&(method.to_owned(), path.clone()));
            if routed != expected {
                mismatches.push(format!("{method} {path}: routed={routed} documented={expected}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // A path in neither answers the not-found fallback.
    let response = app
        .clone()
        .oneshot(
            axum::http::Request::builder()
                .uri("/api/nope")
                .body(Body::empty())?,
        )
        .await?;
    assert!(response.extensions().get::<NoRoute>().is_some());
    server.cleanup().await;
    Ok(())
}

/// Parses the OpenMetrics text into `series → value`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(server: &TestServer) -> Result<BTreeMap<String, f64>, Error> {
    let response = server.http.get(format!("{}/metrics", server.base)).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/openmetrics-text"))
    );
    let text = response.text().await?;
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    Ok(parse_metrics(&text))
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_follow_the_outbox() -> TestResult {
    let server = TestServer::start().await?;
    let (_, key) = server.create_app("M").await?;
    let alice = server.token(&key, "alice").await?;
    server.connect(&key, "bob").await?;
    for _ in 0..3 {
        server.call(Method::GET, "/health", &[], None).await?;
    }
    let (status, _) = server.call(Method::GET, "/no/such/path", &[], None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, channel) = server
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["bob"]})),
        )
        .await?;
    let path = format!("/api/channels/{}/messages", str_of(&channel, "id"));
    for i in 0..4 {
        let (status, _) = server
            .user(
                &alice,
                Method::POST,
                &path,
                Some(json!({"text": format!("m{i}")})),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = server
        .user(&alice, Method::POST, &path, Some(json!({"text": ""})))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // No drainer yet: the events wait in the outbox.
    let m = scrape(&server).await?;
    let series = |m: &BTreeMap<String, f64>, s: &str| m.get(s).copied().unwrap_or(-1.0);
    assert_eq!(
        series(
            &m,
            r#"chatsdk_http_requests_total{method="GET",route="/health",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        series(
            &m,
            r#"chatsdk_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        1.0
    );
    let send = r#"method="POST",route="/api/channels/{channel_id}/messages""#;
    assert_eq!(
        series(
            &m,
            &format!("chatsdk_http_requests_total{{{send},status=\"201\"}}")
        ),
        4.0
    );
    assert_eq!(
        series(
            &m,
            &format!("chatsdk_http_requests_total{{{send},status=\"400\"}}")
        ),
        1.0
    );
    assert_eq!(
        series(
            &m,
            &format!("chatsdk_http_request_duration_seconds_count{{{send},status=\"201\"}}")
        ),
        4.0
    );
    assert_eq!(
        series(
            &m,
            &format!("chatsdk_http_request_duration_seconds_bucket{{le=\"+Inf\",{send},status=\"201\"}}")
        ),
        4.0,
        "{m:#?}"
    );
    // No series carries a concrete id.
    assert!(m.keys().all(|k| !k.contains(&str_of(&channel, "id"))));
    let depth = series(&m, "chatsdk_outbox_depth");
    assert!(depth >= 4.0, "outbox depth {depth}");
    assert!(series(&m, "chatsdk_outbox_oldest_age_seconds") > 0.0);
    assert_eq!(series(&m, "chatsdk_db_pool_max_connections"), 16.0);
    assert!(series(&m, "chatsdk_db_pool_connections") >= 1.0);
    assert!(series(&m, "chatsdk_db_pool_idle_connections") >= 0.0);
    assert_eq!(series(&m, "chatsdk_outbox_publish_lag_seconds_count"), 0.0);

    // The drainer empties the outbox and records each event's publish lag.
    let drainer = server.drainer(&chatsdk_testenv::TestEnv::get().centrifugo().api_url)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let m = loop {
        let m = scrape(&server).await?;
        if series(&m, "chatsdk_outbox_depth") == 0.0 || tokio::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drainer.stop().await;
    assert_eq!(series(&m, "chatsdk_outbox_depth"), 0.0);
    assert_eq!(series(&m, "chatsdk_outbox_oldest_age_seconds"), 0.0);
    let published = series(&m, "chatsdk_outbox_published_total");
    assert!(published >= depth, "published {published} of {depth}");
    assert_eq!(series(&m, "chatsdk_outbox_publish_lag_seconds_count"), published);
    let lag_sum = series(&m, "chatsdk_outbox_publish_lag_seconds_sum");
    assert!(lag_sum > 0.0 && lag_sum < 60.0 * published, "lag sum {lag_sum}");
    server.cleanup().await;
    Ok(())
}

/// A raw HTTP/1.1 request with a chunked body (no `Content-Length`); returns the status.
async fn chunked_post(base: &str, path: &str, token: &str, size: usize) -> Result<u16, Error> {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let body = format!("{{\"text\":\"{}\"}}", "x".repeat(size));
    for chunk in body.as_bytes().chunks(16 * 1024) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    // The server may answer and close before reading everything; that is fine.
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))?;
    assert!(text.contains("PAYLOAD_TOO_LARGE") || status != 413, "{text}");
    Ok(status)
}

#[tokio::test]
async fn bad_input_is_refused_with_a_json_error_naming_it() -> TestResult {
    let server = TestServer::start().await?;
    let (_, key) = server.create_app("H").await?;
    let alice = server.token(&key, "alice").await?;
    server.connect(&key, "bob").await?;
    let (_, channel) = server
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["bob"]})),
        )
        .await?;
    let path = format!("/api/channels/{}/messages", str_of(&channel, "id"));

    // Body size: a declared length over the limit is refused before the body is read …
    let big = json!({"text": "x".repeat(chatsdk_server::routes::MAX_BODY_BYTES)});
    let (status, body) = server.user(&alice, Method::POST, &path, Some(big)).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_of(&body).0, "PAYLOAD_TOO_LARGE");
    assert!(body["error"]["message"].is_string());
    // … and so is a chunked body without a length, once it passes the limit.
    let base = server.base.clone();
    assert_eq!(
        chunked_post(&base, &path, &alice, chatsdk_server::routes::MAX_BODY_BYTES).await?,
        413
    );
    // Just under the limit is not refused for its size (the text rule answers instead).
    assert_eq!(chunked_post(&base, &path, &alice, 20_000).await?, 400);

    // Unknown fields are refused and named, at any depth of the JSON path.
    let (status, body) = server
        .user(
            &alice,
            Method::POST,
            &path,
            Some(json!({"text": "hi", "isAdmin": true})),
        )
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(&body),
        ("VALIDATION_ERROR".into(), Some("isAdmin".into()))
    );
    let (status, body) = server
        .user(&alice, Method::PATCH, "/api/users/me", Some(json!({"nick": "x"})))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1.as_deref(), Some("nick"));
    // Wrong types name the field too.
    let (_, body) = server
        .user(&alice, Method::POST, &path, Some(json!({"text": 5})))
        .await?;
    assert_eq!(error_of(&body).1.as_deref(), Some("text"));

    // Page sizes: out of range or malformed limits and offsets are 400 naming the parameter.
    for (url, field) in [
        (format!("{path}?limit=201"), "limit"),
        (format!("{path}?limit=0"), "limit"),
        (format!("{path}?limit=abc"), "limit"),
        ("/api/users?limit=101".to_owned(), "limit"),
        ("/api/users?offset=-1".to_owned(), "offset"),
        ("/api/channels?limit=500".to_owned(), "limit"),
        ("/api/search?q=hi&limit=1000".to_owned(), "limit"),
    ] {
        let (status, body) = server.user(&alice, Method::GET, &url, None).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(error_of(&body).1.as_deref(), Some(field), "{url}: {body}");
    }
    let (status, body) = server.admin(Method::GET, "/admin/apps?limit=201", None).await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    // The bounds themselves are accepted.
    let (status, _) = server
        .user(&alice, Method::GET, &format!("{path}?limit=200"), None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .user(&alice, Method::GET, "/api/users?limit=100", None)
        .await?;
    assert_eq!(status, StatusCode::OK);

    // Without RATE_LIMIT_PER_MINUTE there is no per-user limit.
    assert!(server.state.rate_limit.is_none());
    for _ in 0..30 {
        let (status, _) = server.user(&alice, Method::GET, "/api/users/me", None).await?;
        assert_eq!(status, StatusCode::OK);
    }
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_per_user_rate_limit_refuses_a_burst_with_429() -> TestResult {
    let server = TestServer::start_with(|config| {
        // One request a second, three at once: the test's requests all fall within a second.
        config.rate_limit = Some(RateLimitConfig {
            per_minute: 60,
            burst: 3,
        });
    })
    .await?;
    let (_, key) = server.create_app("R").await?;
    let alice = server.token(&key, "alice").await?;
    let bob = server.token(&key, "bob").await?;
    let me = |token: &str| {
        server
            .http
            .get(format!("{}/api/users/me", server.base))
            .bearer_auth(token)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(me(&alice).await?.status(), StatusCode::OK);
    }
    let refused = me(&alice).await?;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = refused.json().await?;
    assert_eq!(error_of(&body).0, "RATE_LIMITED");
    // Another user has a budget of their own; app-key routes are not per-user limited.
    assert_eq!(me(&bob).await?.status(), StatusCode::OK);
    server.connect(&key, "carol").await?;
    // The budget refills: after a second one more request passes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(me(&alice).await?.status(), StatusCode::OK);
    assert_eq!(me(&alice).await?.status(), StatusCode::TOO_MANY_REQUESTS);
    let m = scrape(&server).await?;
    assert_eq!(m.get("chatsdk_rate_limited_total").copied(), Some(2.0));
    server.cleanup().await;
    Ok(())
}

/// A send's answer is rendered without reading the row back, and its event is written in the
/// same statement: all three must equal what `GET` reads from the table.
#[tokio::test]
async fn a_sent_message_its_event_and_the_stored_row_agree() -> TestResult {
    let server = TestServer::start().await?;
    let (_, key) = server.create_app("S").await?;
    let alice = server.token(&key, "alice").await?;
    server.connect(&key, "bob").await?;
    let (_, channel) = server
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["bob"]})),
        )
        .await?;
    let path = format!("/api/channels/{}/messages", str_of(&channel, "id"));
    let (_, root) = server
        .user(&alice, Method::POST, &path, Some(json!({"text": "root"})))
        .await?;
    let (status, sent) = server
        .user(
            &alice,
            Method::POST,
            &path,
            Some(json!({
                "text": "reply with a picture",
                "clientMsgId": "c-1",
                "attachments": [{"type": "image", "url": "https://example.com/a.png"}],
                "parentId": root["id"],
                "replyToId": root["id"],
            })),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["seq"], 2);
    let (_, stored) = server
        .user(
            &alice,
            Method::GET,
            &format!("{path}/{}", str_of(&sent, "id")),
            None,
        )
        .await?;
    let mut tx = chatsdk_server::storage::outbox::begin_drain(server.pool())
        .await?
        .ok_or("drainer lock busy")?;
    let events = chatsdk_server::storage::outbox::claim(&mut tx, 100).await?;
    tx.rollback().await?;
    let event = events
        .iter()
        .map(|e| &e.payload)
        .find(|p| p["payload"]["message"]["id"] == sent["id"])
        .ok_or("no message.new event")?;
    assert_eq!(event["type"], "message.new");
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("reactions");
            o.remove("mentions");
        }
        v
    };
    assert_eq!(strip(&sent), strip(&stored));
    assert_eq!(strip(&event["payload"]["message"]), strip(&stored));
    // The sender's read mark moved with the send; the reply counted on its root.
    let (_, root_now) = server
        .user(
            &alice,
            Method::GET,
            &format!("{path}/{}", str_of(&root, "id")),
            None,
        )
        .await?;
    assert_eq!(root_now["replyCount"], 1);
    let (_, list) = server.user(&alice, Method::GET, "/api/channels", None).await?;
    assert_eq!(list["channels"][0]["unreadCount"], 0, "{list}");
    // A retry is answered from the first send and takes no seq.
    let (status, again) = server
        .user(
            &alice,
            Method::POST,
            &path,
            Some(json!({"text": "again", "clientMsgId": "c-1"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (again["id"].clone(), again["duplicate"].clone()),
        (sent["id"].clone(), json!(true))
    );
    let (_, next) = server
        .user(&alice, Method::POST, &path, Some(json!({"text": "next"})))
        .await?;
    assert_eq!(next["seq"], 3);
    server.cleanup().await;
    Ok(())
}
