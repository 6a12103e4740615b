//! `/admin/apps`, `/api/auth/*`, token checks and the audit log.

mod common;

use base64::Engine as _;
use chatsdk_server::domain::apps::hash_api_key;
use common::{ADMIN_KEY, TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

#[tokio::test]
async fn admin_api_requires_the_admin_key() -> TestResult {
    let server = TestServer::start().await?;
    let (status, body) = server.call(Method::GET, "/admin/apps", &[], None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let wrong = format!("Bearer {ADMIN_KEY}x");
    let (status, body) = server
        .call(Method::GET, "/admin/apps", &[("Authorization", &wrong)], None)
        .await?;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    let (status, _) = server
        .call(Method::GET, "/admin/apps", &[("Authorization", "Bearer ")], None)
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.cleanup().await;

    let unconfigured = TestServer::start_with(|c| c.admin_api_key = None).await?;
    let auth = format!("Bearer {ADMIN_KEY}");
    let (status, body) = unconfigured
        .call(Method::GET, "/admin/apps", &[("Authorization", &auth)], None)
        .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    unconfigured.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn admin_app_crud_and_key_regeneration() -> TestResult {
    let server = TestServer::start().await?;
    let (status, created) = server
        .admin(
            Method::POST,
            "/admin/apps",
            Some(json!({"name": "Clinic", "settings": {"ai_enabled": true}})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = str_of(&created, "id");
    let key = str_of(&created, "apiKey");
    assert!(key.starts_with("chatsdk_") && key.len() == 48, "{key}");
    assert_eq!(created["settings"]["ai_enabled"], true);
    assert!(created["apiKeyId"].is_string() && created["createdAt"].is_string());

    // Only the hash is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM app_api_key")
        .fetch_all(server.pool())
        .await?;
    assert_eq!(stored, vec![hash_api_key(&key)]);

    // Bad input names the field.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "color": "red"}), "color"),
        (json!({"name": 5}), "name"),
        (json!({}), "name"),
        (json!({"name": "x", "settings": []}), "settings"),
    ] {
        let (status, err) = server
            .admin(Method::POST, "/admin/apps", Some(body.clone()))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {err}");
        assert_eq!(error_of(&err).1.as_deref(), Some(field), "{body} → {err}");
    }

    server.connect(&key, "alice").await?;
    let (status, got) = server
        .admin(Method::GET, &format!("/admin/apps/{id}"), None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (got["name"].as_str(), got["stats"]["userCount"].as_i64()),
        (Some("Clinic"), Some(1))
    );

    let (status, patched) = server
        .admin(
            Method::PATCH,
            &format!("/admin/apps/{id}"),
            Some(json!({"name": "Clinic 2", "settings": {"max_file_size": 5}})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Clinic 2");
    assert_eq!(
        patched["settings"],
        json!({"ai_enabled": true, "max_file_size": 5})
    );
    let (status, _) = server
        .admin(Method::PATCH, &format!("/admin/apps/{id}"), Some(json!({})))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    server.create_app("Other").await?;
    let (status, list) = server.admin(Method::GET, "/admin/apps?limit=1", None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (list["total"].as_i64(), list["apps"].as_array().map(Vec::len)),
        (Some(2), Some(1))
    );

    // Regeneration revokes the old key.
    let (status, regenerated) = server
        .admin(Method::POST, &format!("/admin/apps/{id}/regenerate-key"), None)
        .await?;
    assert_eq!(status, StatusCode::OK, "{regenerated}");
    let new_key = str_of(&regenerated, "apiKey");
    assert_ne!(new_key, key);
    let connect = |k: String| {
        let server = &server;
        async move {
            server
                .call(
                    Method::POST,
                    "/api/auth/connect",
                    &[("X-API-Key", &k)],
                    Some(json!({"userId": "bob"})),
                )
                .await
        }
    };
    assert_eq!(connect(key.clone()).await?.0, StatusCode::UNAUTHORIZED);
    assert_eq!(connect(new_key.clone()).await?.0, StatusCode::OK);

    let (status, deleted) = server
        .admin(Method::DELETE, &format!("/admin/apps/{id}"), None)
        .await?;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["deleted"]["users"], 2);
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = server.admin(method, &format!("/admin/apps/{id}"), None).await?;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = server
        .admin(Method::POST, &format!("/admin/apps/{id}/regenerate-key"), None)
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(connect(new_key).await?.0, StatusCode::UNAUTHORIZED);
    let (status, body) = server.admin(Method::GET, "/admin/apps/not-a-uuid", None).await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn connect_issues_upstream_shaped_tokens() -> TestResult {
    let server = TestServer::start().await?;
    let (app, key) = server.create_app("A").await?;

    let (status, body) = server
        .call(
            Method::POST,
            "/api/auth/connect",
            &[],
            Some(json!({"userId": "u"})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (StatusCode::UNAUTHORIZED, "MISSING_API_KEY")
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-API-Key", "chatsdk_nope")],
            Some(json!({"userId": "u"})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (StatusCode::UNAUTHORIZED, "INVALID_API_KEY")
    );
    for (body, field) in [
        (json!({}), "userId"),
        (json!({"userId": ""}), "userId"),
        (json!({"userId": "u", "role": "admin"}), "role"),
        (json!({"userId": "u", "email": "x"}), "email"),
    ] {
        let (status, err) = server
            .call(
                Method::POST,
                "/api/auth/connect",
                &[("X-API-Key", &key)],
                Some(body.clone()),
            )
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_of(&err).1.as_deref(), Some(field), "{body} → {err}");
    }

    let (status, body) = server
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-API-Key", &key)],
            Some(json!({"userId": "alice", "displayName": "Alice", "email": "a@example.org", "metadata": {"ward": 3}})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["user"],
        json!({"id": "alice", "displayName": "Alice", "avatar": null, "metadata": {"ward": 3, "email": "a@example.org"}})
    );
    assert_eq!(body["expiresIn"], 900);
    let access = claims(body["token"].as_str().unwrap_or_default());
    assert_eq!(access["sub"], format!("{app}:alice"));
    assert_eq!(
        (access["app_id"].as_str(), access["user_id"].as_str()),
        (Some(app.as_str()), Some("alice"))
    );
    assert_eq!(
        (access["iss"].as_str(), access["aud"].as_str()),
        (Some("chatsdk-api"), Some("chatsdk-client"))
    );
    assert!(access["sid"].is_string() && access["jti"].is_string());
    let ws = claims(body["_internal"]["wsToken"].as_str().unwrap_or_default());
    assert_eq!(ws["sub"], format!("{app}:alice"));
    assert_eq!(
        claims(body["refreshToken"].as_str().unwrap_or_default())["type"],
        "refresh"
    );

    // The access token opens user routes; missing and garbage tokens do not.
    let token = str_of(&body, "token");
    assert_eq!(
        server.user(&token, Method::GET, "/api/channels", None).await?.0,
        StatusCode::OK
    );
    let (status, err) = server.call(Method::GET, "/api/channels", &[], None).await?;
    assert_eq!(
        (status, error_of(&err).0.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    assert_eq!(
        server.user("x.y.z", Method::GET, "/api/channels", None).await?.0,
        StatusCode::UNAUTHORIZED
    );
    // A refresh token is not an access token.
    let (status, err) = server
        .user(&str_of(&body, "refreshToken"), Method::GET, "/api/channels", None)
        .await?;
    assert_eq!(
        (status, error_of(&err).0.as_str()),
        (StatusCode::UNAUTHORIZED, "INVALID_TOKEN_TYPE")
    );
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_a_replay_revokes_the_session() -> TestResult {
    let server = TestServer::start().await?;
    let (_, key) = server.create_app("A").await?;
    let first = server.connect(&key, "alice").await?;
    let refresh1 = str_of(&first, "refreshToken");

    // Header form (upstream server) …
    let (status, second) = server
        .user(&refresh1, Method::POST, "/api/auth/refresh", None)
        .await?;
    assert_eq!(status, StatusCode::OK, "{second}");
    let refresh2 = str_of(&second, "refreshToken");
    assert_ne!(refresh1, refresh2);
    assert!(second["_internal"]["wsToken"].is_string());
    // … and body form (upstream client SDK).
    let (status, third) = server
        .call(
            Method::POST,
            "/api/auth/refresh",
            &[],
            Some(json!({"refreshToken": refresh2})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{third}");
    let access3 = str_of(&third, "token");
    assert_eq!(
        server.user(&access3, Method::GET, "/api/channels", None).await?.0,
        StatusCode::OK
    );

    // Replaying an already used refresh token revokes the whole session.
    let (status, err) = server
        .user(&refresh1, Method::POST, "/api/auth/refresh", None)
        .await?;
    assert_eq!(
        (status, error_of(&err).0.as_str()),
        (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN")
    );
    let (status, err) = server.user(&access3, Method::GET, "/api/channels", None).await?;
    assert_eq!(
        (status, error_of(&err).0.as_str()),
        (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED")
    );
    let (status, _) = server
        .user(
            &str_of(&third, "refreshToken"),
            Method::POST,
            "/api/auth/refresh",
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Another session of the same user is unaffected.
    let other = server.connect(&key, "alice").await?;
    assert_eq!(
        server
            .user(&str_of(&other, "token"), Method::GET, "/api/channels", None)
            .await?
            .0,
        StatusCode::OK
    );

    let (status, err) = server.call(Method::POST, "/api/auth/refresh", &[], None).await?;
    assert_eq!(
        (status, error_of(&err).0.as_str()),
        (StatusCode::UNAUTHORIZED, "MISSING_REFRESH_TOKEN")
    );
    let access_as_refresh = str_of(&other, "token");
    assert_eq!(
        server
            .user(&access_as_refresh, Method::POST, "/api/auth/refresh", None)
            .await?
            .0,
        StatusCode::UNAUTHORIZED
    );
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_let_at_most_one_through() -> TestResult {
    let server = TestServer::start().await?;
    let (_, key) = server.create_app("A").await?;
    let refresh = str_of(&server.connect(&key, "alice").await?, "refreshToken");
    let attempts = futures::future::join_all(
        (0..8).map(|_| server.user(&refresh, Method::POST, "/api/auth/refresh", None)),
    )
    .await;
    let ok = attempts
        .iter()
        .filter(|r| matches!(r, Ok((StatusCode::OK, _))))
        .count();
    assert!(ok <= 1, "{ok} refreshes succeeded with one token");
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn revoking_a_user_refuses_older_tokens() -> TestResult {
    let server = TestServer::start().await?;
    let (app, key) = server.create_app("A").await?;
    let token = server.token(&key, "alice").await?;
    assert_eq!(
        server.user(&token, Method::GET, "/api/channels", None).await?.0,
        StatusCode::OK
    );
    chatsdk_server::domain::auth::revoke_user_tokens(&server.state, app.parse()?, "alice").await?;
    let (status, err) = server.user(&token, Method::GET, "/api/channels", None).await?;
    assert_eq!(
        (status, error_of(&err).0.as_str()),
        (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED")
    );
    // A new connect after the revocation works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = server.token(&key, "alice").await?;
    assert_eq!(
        server.user(&fresh, Method::GET, "/api/channels", None).await?.0,
        StatusCode::OK
    );
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn require_mfa_refuses_tokens_without_mfa() -> TestResult {
    let server = TestServer::start_with(|c| c.require_mfa = true).await?;
    let (_, key) = server.create_app("A").await?;
    let plain = server.token(&key, "alice").await?;
    let (status, err) = server.user(&plain, Method::GET, "/api/channels", None).await?;
    assert_eq!(
        (status, error_of(&err).0.as_str()),
        (StatusCode::FORBIDDEN, "MFA_REQUIRED")
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-API-Key", &key)],
            Some(json!({"userId": "alice", "mfa": true})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        claims(body["token"].as_str().unwrap_or_default())["amr"],
        json!(["mfa"])
    );
    assert_eq!(
        server
            .user(&str_of(&body, "token"), Method::GET, "/api/channels", None)
            .await?
            .0,
        StatusCode::OK
    );
    // MFA survives a refresh.
    let (status, refreshed) = server
        .user(
            &str_of(&body, "refreshToken"),
            Method::POST,
            "/api/auth/refresh",
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server
            .user(&str_of(&refreshed, "token"), Method::GET, "/api/channels", None)
            .await?
            .0,
        StatusCode::OK
    );
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn force_https_redirects_or_refuses_plain_http_from_the_proxy() -> TestResult {
    let server = TestServer::start_with(|c| c.force_https = true).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .get(format!("{}/api/channels?x=1", server.base))
        .header("X-Forwarded-Proto", "http")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        location.starts_with("https://") && location.ends_with("/api/channels?x=1"),
        "{location}"
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-Forwarded-Proto", "http")],
            Some(json!({"userId": "u"})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (StatusCode::FORBIDDEN, "HTTPS_REQUIRED")
    );
    let response = client
        .get(format!("{}/health", server.base))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("strict-transport-security"));
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn audit_lines_name_the_request_and_never_carry_secrets() -> TestResult {
    let server = TestServer::start().await?;
    let (app, key) = server.create_app("A").await?;
    let connected = server.connect(&key, "alice").await?;
    let token = str_of(&connected, "token");
    let (status, _) = server
        .call(
            Method::GET,
            "/api/channels?limit=5",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("X-Forwarded-For", "10.0.1.50, 10.0.0.1"),
            ],
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    server.user("bogus", Method::GET, "/api/channels", None).await?;

    let lines = server.audit.lines();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l))
        .collect::<Result<_, _>>()?;
    let list = parsed
        .iter()
        .find(|l| l["req"]["url"] == "/api/channels" && l["req"]["userId"] == "alice")
        .ok_or("no audit line for the channel list")?;
    assert_eq!(list["msg"], "API request");
    assert_eq!(list["level"], "info");
    assert_eq!(list["req"]["method"], "GET");
    assert_eq!(list["req"]["appId"], app.as_str());
    assert_eq!(list["req"]["ip"], "10.0.1.50");
    assert_eq!(list["res"]["statusCode"], 200);
    assert!(list["responseTime"].is_u64() && list["time"].is_u64(), "{list}");

    let connect = parsed
        .iter()
        .find(|l| l["req"]["url"] == "/api/auth/connect")
        .ok_or("no connect line")?;
    assert_eq!(
        (
            connect["req"]["appId"].as_str(),
            connect["req"]["userId"].is_null()
        ),
        (Some(app.as_str()), true)
    );
    let refused = parsed
        .iter()
        .find(|l| l["res"]["statusCode"] == 401)
        .ok_or("no 401 line")?;
    assert!(
        refused["req"]["userId"].is_null() && refused["req"]["ip"] == "127.0.0.1",
        "{refused}"
    );
    let admin = parsed
        .iter()
        .find(|l| l["req"]["url"] == "/admin/apps")
        .ok_or("no admin line")?;
    assert_eq!(admin["res"]["statusCode"], 201);

    for line in &lines {
        for secret in [
            token.as_str(),
            key.as_str(),
            ADMIN_KEY,
            str_of(&connected, "refreshToken").as_str(),
            "bogus",
            "limit=5",
        ] {
            assert!(!line.contains(secret), "audit line leaks {secret}: {line}");
        }
    }
    server.cleanup().await;
    Ok(())
}
