//! The server-to-server token broker and token scopes, client level against the real
//! PostgreSQL and Centrifugo: registration, membership sync, minting, what a scoped token may
//! reach (upstream's route guard) and what a `connect` token may reach (everything: upstream's
//! `requireScope` defect fixed), service-JWT checks and replay, hostile input, another app.

mod common;

use std::time::Duration;

use chatsdk_testenv::TestEnv;
use common::broker::{AUDIENCE, Broker, KeyPair, claims, now, snapshot};
use common::centrifugo::WsClient;
use common::{TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn broker_server() -> Result<TestServer, Error> {
    TestServer::start_with(|config| config.broker.enabled = true).await
}

/// The scope most tests use: tenant `t1`, users `ext-…`, group channels.
fn scope() -> Value {
    json!({
        "allowedExternalTenantIds": ["t1"],
        "allowedUserIdPrefixes": ["ext-"],
        "allowedChannelIdPrefixes": ["group:"],
    })
}

fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn code(status: StatusCode, body: &Value) -> (StatusCode, String) {
    (status, error_of(body).0)
}

async fn audit_rows(s: &TestServer, app: &str) -> Result<Vec<(String, String, Option<String>)>, sqlx::Error> {
    let app: uuid::Uuid = app.parse().unwrap_or_default();
    let mut tx = chatsdk_server::storage::begin_tenant(s.pool(), app).await?;
    let rows = sqlx::query_as(
        "SELECT operation, status, denial_reason FROM broker_mint_audit WHERE app_id = $1 ORDER BY id",
    )
    .bind(app)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// A group channel made by a connected user of the app: `(id, cid)`.
async fn group(s: &TestServer, token: &str) -> Result<(String, String), Error> {
    let (status, channel) = s
        .user(
            token,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "name": "brokered"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    Ok((str_of(&channel, "id"), str_of(&channel, "cid")))
}

#[tokio::test]
async fn a_synced_user_gets_scoped_tokens_that_reach_only_their_routes() -> TestResult {
    let s = broker_server().await?;
    let drainer = s.drainer(&TestEnv::get().centrifugo().api_url)?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let (channel_id, cid) = group(&s, &alice).await?;
    let broker = Broker::register(&s, "acme", &app, scope()).await?;

    // The snapshot creates the user and makes it a member of the channel named by cid.
    let first = snapshot(1, "t1", &[&cid], "active");
    let (status, synced) = broker.sync(&s, &app, "ext-bob", first.clone()).await?;
    assert_eq!(status, StatusCode::OK, "{synced}");
    assert_eq!(synced["appId"], app.as_str());
    assert_eq!(synced["userId"], "ext-bob");
    assert_eq!(
        (
            synced["membershipVersion"].as_str(),
            synced["membershipRevision"].as_i64()
        ),
        (Some("v1"), Some(1))
    );
    assert_eq!(synced["stateHash"], "state-hash-0001");
    assert_eq!(synced["statusChanged"], true);
    assert_eq!(synced["enqueuedRealtimeCommands"], false);
    assert!(synced["freshUntil"].is_string() && synced["appliedAt"].is_string());
    // The exact repeat is idempotent.
    let (status, again) = broker.sync(&s, &app, "ext-bob", first).await?;
    assert_eq!(
        (status, &again["idempotent"]),
        (StatusCode::OK, &json!(true)),
        "{again}"
    );
    assert_eq!(again["statusChanged"], false);

    let (status, minted) = broker
        .mint(
            &s,
            &app,
            json!({"userId": "ext-bob", "externalTenantId": "t1", "externalSessionId": "browser-1"}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{minted}");
    assert_eq!(minted["expiresIn"], 900);
    assert!(minted["sessionId"].is_string());
    assert_eq!(
        minted["user"],
        json!({"id": "ext-bob", "externalTenantId": "t1", "membershipVersion": "v1", "membershipRevision": 1})
    );
    assert!(minted.get("refreshToken").is_none());
    let token = str_of(&minted, "token");
    let raw = claims_of(&token);
    assert_eq!(raw["scopes"], json!(["chat:read", "chat:write"]));
    assert_eq!(raw["broker_client_id"], broker.client_id.as_str());
    assert_eq!(raw["broker_credential_id"], broker.credential_id.as_str());
    assert_eq!(raw["external_tenant_id"], "t1");
    assert_eq!(raw["membership_version"], "v1");
    assert_eq!(raw["sub"], format!("{app}:ext-bob"));
    assert_eq!(
        raw["exp"].as_u64().unwrap_or(0) - raw["iat"].as_u64().unwrap_or(0),
        900
    );

    // chat:read and chat:write routes pass.
    let (status, list) = s.user(&token, Method::GET, "/api/channels", None).await?;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["channels"][0]["id"], channel_id.as_str());
    let messages = format!("/api/channels/{channel_id}/messages");
    let (status, sent) = s
        .user(
            &token,
            Method::POST,
            &messages,
            Some(json!({"text": "from the broker"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    // A route in the guard whose scope was not granted: 403 naming the scope.
    let (status, body) = s
        .user(
            &token,
            Method::POST,
            &format!("/api/channels/{channel_id}/typing"),
            Some(json!({"typing": true})),
        )
        .await?;
    assert_eq!(
        code(status, &body),
        (StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE".into())
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("typing:write"))
    );
    // Routes outside upstream's broker guard are refused to scoped tokens altogether.
    for (method, path, body) in [
        (Method::POST, "/api/users/alice/block".to_owned(), None),
        (
            Method::PATCH,
            "/api/users/me".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            format!("{messages}/{}/pin", str_of(&sent, "id")),
            None,
        ),
    ] {
        let (status, reply) = s.user(&token, method.clone(), &path, body).await?;
        assert_eq!(
            code(status, &reply),
            (StatusCode::FORBIDDEN, "SCOPE_ROUTE_DENIED".into()),
            "{method} {path}"
        );
    }
    // A token minted with typing:write may type.
    let (_, typing) = broker
        .mint(
            &s,
            &app,
            json!({"userId": "ext-bob", "externalTenantId": "t1", "requestedScopes": ["typing:write"], "ttlSeconds": 120}),
        )
        .await?;
    assert_eq!(typing["expiresIn"], 120);
    let (status, _) = s
        .user(
            &str_of(&typing, "token"),
            Method::POST,
            &format!("/api/channels/{channel_id}/typing"),
            Some(json!({"typing": true})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);

    // Upstream refuses `connect` tokens (no scopes) on every `requireScope` route; here they
    // are unscoped sessions and pass.
    for (method, path, body) in [
        (Method::GET, "/api/channels".to_owned(), None),
        (
            Method::POST,
            format!("/api/channels/{channel_id}/typing"),
            Some(json!({"typing": false})),
        ),
        (Method::GET, "/api/search?q=broker".to_owned(), None),
        (
            Method::POST,
            format!("{messages}/{}/pin", str_of(&sent, "id")),
            None,
        ),
    ] {
        let (status, reply) = s.user(&alice, method.clone(), &path, body).await?;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {reply}");
    }

    // The minted connection token works with Centrifugo; chat:read grants the subscription,
    // and the member hears the channel's events over the socket.
    let mut ws = WsClient::connect(minted["_internal"]["wsToken"].as_str().unwrap_or_default()).await?;
    let chat = format!("chat:{app}:{channel_id}");
    let (status, sub) = s
        .user(
            &token,
            Method::POST,
            "/api/realtime/subscription-token",
            Some(json!({"channel": chat})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{sub}");
    let reply = ws.subscribe(&chat, &str_of(&sub, "token")).await?;
    assert!(reply.get("subscribe").is_some(), "{reply}");
    s.user(
        &alice,
        Method::POST,
        &messages,
        Some(json!({"text": "hello broker user"})),
    )
    .await?;
    let pubs = ws.publications(&chat, 1, Duration::from_secs(10)).await?;
    assert_eq!(
        pubs.first().map(|p| p["type"].clone()),
        Some(json!("message.new"))
    );
    assert_eq!(pubs[0]["payload"]["message"]["text"], "hello broker user");
    ws.close().await;

    let audit = audit_rows(&s, &app).await?;
    let successes = audit.iter().filter(|(_, status, _)| status == "success").count();
    assert_eq!(successes, 4, "{audit:?}");
    drainer.stop().await;
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn service_jwts_are_verified_and_single_use() -> TestResult {
    let s = broker_server().await?;
    let (app, _) = s.create_app("A").await?;
    let broker = Broker::register(&s, "acme", &app, scope()).await?;
    let path = format!("/api/server/apps/{app}/tokens/mint");
    let body = json!({"userId": "ext-bob", "externalTenantId": "t1"});
    let send = |auth: Option<String>| {
        let headers: Vec<(&str, String)> = auth.into_iter().map(|a| ("Authorization", a)).collect();
        let path = path.clone();
        let body = body.clone();
        let s = &s;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.call(Method::POST, &path, &headers, Some(body)).await
        }
    };
    let bearer = |t: String| Some(format!("Bearer {t}"));
    let other = KeyPair::fixture("b")?;
    let with = |patch: Value| {
        let mut c = claims(&broker.slug);
        if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
            c.extend(p.clone());
        }
        c
    };
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(broker.kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(&broker.slug),
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )?;
    let now = now();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "BROKER_AUTH_MISSING"),
        ("not a JWT", bearer("garbage".into()), "BROKER_AUTH_INVALID"),
        ("HS256", bearer(hs256), "BROKER_AUTH_INVALID"),
        (
            "unknown kid",
            bearer(broker.key.sign("nobody", &claims(&broker.slug))?),
            "BROKER_AUTH_INVALID",
        ),
        (
            "another key under the kid",
            bearer(other.sign(&broker.kid, &claims(&broker.slug))?),
            "BROKER_AUTH_INVALID",
        ),
        (
            "wrong audience",
            bearer(
                broker
                    .key
                    .sign(&broker.kid, &with(json!({"aud": "someone-else"})))?,
            ),
            "BROKER_AUTH_INVALID",
        ),
        (
            "wrong issuer",
            bearer(
                broker
                    .key
                    .sign(&broker.kid, &with(json!({"iss": "other-client"})))?,
            ),
            "BROKER_AUTH_INVALID",
        ),
        (
            "expired",
            bearer(
                broker
                    .key
                    .sign(&broker.kid, &with(json!({"iat": now - 120, "exp": now - 60})))?,
            ),
            "BROKER_AUTH_INVALID",
        ),
        (
            "lives too long",
            bearer(broker.key.sign(&broker.kid, &with(json!({"exp": now + 300})))?),
            "BROKER_AUTH_INVALID",
        ),
        (
            "issued in the future",
            bearer(
                broker
                    .key
                    .sign(&broker.kid, &with(json!({"iat": now + 60, "exp": now + 90})))?,
            ),
            "BROKER_AUTH_INVALID",
        ),
        (
            "short jti",
            bearer(broker.key.sign(&broker.kid, &with(json!({"jti": "short"})))?),
            "BROKER_AUTH_INVALID",
        ),
        (
            "no jti",
            bearer(broker.key.sign(&broker.kid, &with(json!({"jti": null})))?),
            "BROKER_AUTH_INVALID",
        ),
    ];
    for (what, auth, expected) in cases {
        let (status, reply) = send(auth).await?;
        assert_eq!(
            code(status, &reply),
            (StatusCode::UNAUTHORIZED, expected.into()),
            "{what}: {reply}"
        );
    }

    // A service JWT is accepted once: the replay is refused even though the first use was
    // refused further on (no membership yet).
    let jwt = broker.jwt()?;
    let (status, first) = send(bearer(jwt.clone())).await?;
    assert_eq!(
        code(status, &first),
        (StatusCode::FORBIDDEN, "BROKER_MEMBERSHIP_STALE".into())
    );
    let (status, replay) = send(bearer(jwt)).await?;
    assert_eq!(
        code(status, &replay),
        (StatusCode::UNAUTHORIZED, "BROKER_AUTH_REPLAY".into())
    );

    // An origin outside the scope's list is refused; the listed one passes authentication.
    let mut scoped = scope();
    scoped["allowedOrigins"] = json!(["https://app.example"]);
    broker.scope(&s, &app, scoped).await?;
    for (origin, expected) in [
        ("https://evil.example", "BROKER_ORIGIN_DENIED"),
        ("https://app.example", "BROKER_MEMBERSHIP_STALE"),
    ] {
        let auth = format!("Bearer {}", broker.jwt()?);
        let (status, reply) = s
            .call(
                Method::POST,
                &path,
                &[("Authorization", &auth), ("Origin", origin)],
                Some(body.clone()),
            )
            .await?;
        assert_eq!(
            code(status, &reply),
            (StatusCode::FORBIDDEN, expected.into()),
            "{origin}"
        );
    }
    broker.scope(&s, &app, scope()).await?;

    // A disabled credential is refused at once.
    let (status, _) = s
        .admin(
            Method::PATCH,
            &format!("/admin/broker/credentials/{}", broker.credential_id),
            Some(json!({"status": "disabled"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = send(bearer(broker.jwt()?)).await?;
    assert_eq!(
        code(status, &reply),
        (StatusCode::UNAUTHORIZED, "BROKER_AUTH_INVALID".into())
    );

    let audit = audit_rows(&s, &app).await?;
    for reason in [
        "missing_service_jwt",
        "invalid_jwt_format",
        "unsupported_broker_jwt_header",
        "unknown_or_inactive_broker_credential",
        "invalid_broker_service_jwt",
        "broker_jwt_lifetime_too_long",
        "invalid_broker_jti",
        "broker_jwt_replay",
        "broker_origin_denied",
        "BROKER_MEMBERSHIP_STALE",
    ] {
        assert!(
            audit
                .iter()
                .any(|(_, status, r)| status == "denied" && r.as_deref() == Some(reason)),
            "{reason} not audited: {audit:?}"
        );
    }
    let _ = AUDIENCE;
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn mint_and_sync_refuse_hostile_or_out_of_scope_input() -> TestResult {
    let s = broker_server().await?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let (_, cid) = group(&s, &alice).await?;
    let broker = Broker::register(&s, "acme", &app, scope()).await?;
    let (status, _) = broker
        .sync(&s, &app, "ext-bob", snapshot(1, "t1", &[&cid], "active"))
        .await?;
    assert_eq!(status, StatusCode::OK);

    let mint_cases = [
        (
            json!({"userId": "ext-bob", "externalTenantId": "t1", "admin": true}),
            StatusCode::BAD_REQUEST,
            "admin",
        ),
        (
            json!({"userId": "", "externalTenantId": "t1"}),
            StatusCode::BAD_REQUEST,
            "userId",
        ),
        (
            json!({"userId": "ext-bob"}),
            StatusCode::BAD_REQUEST,
            "externalTenantId",
        ),
        (
            json!({"userId": "ext-bob", "externalTenantId": "t\u{0}1"}),
            StatusCode::BAD_REQUEST,
            "externalTenantId",
        ),
        (
            json!({"userId": "ext-bob", "externalTenantId": "t1", "ttlSeconds": 0}),
            StatusCode::BAD_REQUEST,
            "ttlSeconds",
        ),
        (
            json!({"userId": "ext-bob", "externalTenantId": "t1", "ttlSeconds": 1.5}),
            StatusCode::BAD_REQUEST,
            "ttlSeconds",
        ),
        (
            json!({"userId": "ext-bob", "externalTenantId": "t1", "requestedScopes": ["x".repeat(65)]}),
            StatusCode::BAD_REQUEST,
            "requestedScopes",
        ),
        (
            json!({"userId": "x".repeat(256), "externalTenantId": "t1"}),
            StatusCode::BAD_REQUEST,
            "userId",
        ),
    ];
    for (body, status, field) in mint_cases {
        let (got, reply) = broker.mint(&s, &app, body.clone()).await?;
        assert_eq!(
            (got, error_of(&reply).1.as_deref()),
            (status, Some(field)),
            "{body}: {reply}"
        );
    }
    let denied = [
        (
            json!({"userId": "ext-bob", "externalTenantId": "t1", "requestedScopes": ["channel:create"]}),
            "BROKER_SCOPE_DENIED",
        ),
        (
            json!({"userId": "mallory", "externalTenantId": "t1"}),
            "BROKER_USER_DENIED",
        ),
        (
            json!({"userId": "ext-bob", "externalTenantId": "t2"}),
            "BROKER_TENANT_DENIED",
        ),
        (
            json!({"userId": "ext-carol", "externalTenantId": "t1"}),
            "BROKER_MEMBERSHIP_STALE",
        ),
        (
            json!({"userId": "ext-bob", "externalTenantId": "t1", "ttlSeconds": 3600}),
            "BROKER_TTL_DENIED",
        ),
    ];
    for (body, expected) in denied {
        let (status, reply) = broker.mint(&s, &app, body.clone()).await?;
        assert_eq!(
            code(status, &reply),
            (StatusCode::FORBIDDEN, expected.into()),
            "{body}"
        );
    }

    let sync_path = |user: &str| format!("/api/server/apps/{app}/memberships/{user}");
    let bad_snapshots = [
        (json!({"revision": 2}), "version"),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["revision"] = json!(-1);
                v
            },
            "revision",
        ),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["revision"] = json!(9_007_199_254_740_992_i64);
                v
            },
            "revision",
        ),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["freshUntil"] = json!("tomorrow");
                v
            },
            "freshUntil",
        ),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["status"] = json!("banned");
                v
            },
            "status",
        ),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["memberships"] = json!([{"type": "channel", "id": cid, "role": "root"}]);
                v
            },
            "memberships[0].role",
        ),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["memberships"] = json!([{"type": "dm", "id": cid}]);
                v
            },
            "memberships[0].type",
        ),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["metadata"] = json!({"blob": "x".repeat(5000)});
                v
            },
            "metadata",
        ),
        (
            {
                let mut v = snapshot(2, "t1", &[], "active");
                v["avatarUrl"] = json!("javascript:alert(1)");
                v
            },
            "avatarUrl",
        ),
    ];
    for (body, field) in bad_snapshots {
        let (status, reply) = broker.call(&s, Method::PUT, &sync_path("ext-bob"), body).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{reply}"
        );
    }
    let refusals = [
        (
            "ext-bob",
            snapshot(0, "t1", &[&cid], "active"),
            StatusCode::CONFLICT,
            "BROKER_MEMBERSHIP_ROLLBACK",
        ),
        (
            "ext-bob",
            {
                let mut v = snapshot(1, "t1", &[&cid], "active");
                v["stateHash"] = json!("changed-hash");
                v
            },
            StatusCode::CONFLICT,
            "BROKER_MEMBERSHIP_CONFLICT",
        ),
        (
            "ext-bob",
            snapshot(2, "t1-other", &[&cid], "active"),
            StatusCode::FORBIDDEN,
            "BROKER_TENANT_DENIED",
        ),
        (
            "ext-bob",
            snapshot(2, "t1", &["group:no-such-channel"], "active"),
            StatusCode::BAD_REQUEST,
            "BROKER_CHANNEL_NOT_FOUND",
        ),
        (
            "ext-bob",
            snapshot(2, "t1", &["messaging:dm:abc"], "active"),
            StatusCode::FORBIDDEN,
            "BROKER_CHANNEL_DENIED",
        ),
        (
            "mallory",
            snapshot(1, "t1", &[], "active"),
            StatusCode::FORBIDDEN,
            "BROKER_USER_DENIED",
        ),
    ];
    for (user, body, status, expected) in refusals {
        let (got, reply) = broker.sync(&s, &app, user, body).await?;
        assert_eq!(code(got, &reply), (status, expected.into()), "{user}: {reply}");
    }
    // A second tenant allowed by the scope still cannot take over a synced user.
    let mut two = scope();
    two["allowedExternalTenantIds"] = json!(["t1", "t2"]);
    two["maxMembershipFanout"] = json!(1);
    broker.scope(&s, &app, two).await?;
    let (status, reply) = broker
        .sync(&s, &app, "ext-bob", snapshot(2, "t2", &[&cid], "active"))
        .await?;
    assert_eq!(
        code(status, &reply),
        (StatusCode::CONFLICT, "BROKER_TENANT_REASSIGN_DENIED".into())
    );
    let (status, reply) = broker
        .sync(
            &s,
            &app,
            "ext-bob",
            snapshot(2, "t1", &[&cid, "group:b"], "active"),
        )
        .await?;
    assert_eq!(
        code(status, &reply),
        (
            StatusCode::BAD_REQUEST,
            "BROKER_MEMBERSHIP_FANOUT_EXCEEDED".into()
        )
    );

    // Path and disabled-broker answers.
    let (status, reply) = broker
        .call(
            &s,
            Method::POST,
            "/api/server/apps/not-a-uuid/tokens/mint",
            json!({}),
        )
        .await?;
    assert_eq!(
        (status, error_of(&reply).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("appId"))
    );
    let off = TestServer::start().await?;
    let (status, reply) = broker.mint(&off, &app, json!({})).await?;
    assert_eq!(
        code(status, &reply),
        (StatusCode::NOT_FOUND, "SERVER_MINT_DISABLED".into())
    );
    off.cleanup().await;
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn an_account_that_stops_being_active_loses_memberships_tokens_and_sessions() -> TestResult {
    let s = broker_server().await?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let (channel_id, cid) = group(&s, &alice).await?;
    let (second_id, second_cid) = group(&s, &alice).await?;
    let broker = Broker::register(&s, "acme", &app, scope()).await?;
    broker
        .sync(
            &s,
            &app,
            "ext-bob",
            snapshot(1, "t1", &[&cid, &second_cid], "active"),
        )
        .await?;
    let (_, minted) = broker
        .mint(&s, &app, json!({"userId": "ext-bob", "externalTenantId": "t1"}))
        .await?;
    let token = str_of(&minted, "token");
    let members = |id: &str| format!("/api/channels/{id}/members");
    let (_, list) = s.user(&alice, Method::GET, &members(&second_id), None).await?;
    assert_eq!(list["members"].as_array().map(Vec::len), Some(2), "{list}");

    // Revision 2 drops the second channel: bob leaves it, keeps the first, and his token lives.
    let (status, synced) = broker
        .sync(&s, &app, "ext-bob", snapshot(2, "t1", &[&cid], "active"))
        .await?;
    assert_eq!(status, StatusCode::OK, "{synced}");
    assert_eq!(synced["enqueuedRealtimeCommands"], true);
    assert_eq!(synced["statusChanged"], false);
    let (_, list) = s.user(&alice, Method::GET, &members(&second_id), None).await?;
    assert_eq!(list["members"].as_array().map(Vec::len), Some(1));
    let (_, channel) = s
        .user(&alice, Method::GET, &format!("/api/channels/{second_id}"), None)
        .await?;
    assert_eq!(channel["memberCount"], 1);
    let (status, _) = s.user(&token, Method::GET, &members(&channel_id), None).await?;
    assert_eq!(status, StatusCode::OK);

    // Suspension: every membership, token and session ends; minting stops.
    let (status, synced) = broker
        .sync(&s, &app, "ext-bob", snapshot(3, "t1", &[&cid], "suspended"))
        .await?;
    assert_eq!(status, StatusCode::OK, "{synced}");
    assert_eq!(
        (
            synced["statusChanged"].clone(),
            synced["enqueuedRealtimeCommands"].clone()
        ),
        (json!(true), json!(true))
    );
    let (status, reply) = s.user(&token, Method::GET, "/api/channels", None).await?;
    assert_eq!(
        code(status, &reply),
        (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED".into())
    );
    let (_, list) = s.user(&alice, Method::GET, &members(&channel_id), None).await?;
    assert_eq!(list["members"].as_array().map(Vec::len), Some(1));
    let (status, reply) = broker
        .mint(&s, &app, json!({"userId": "ext-bob", "externalTenantId": "t1"}))
        .await?;
    assert_eq!(
        code(status, &reply),
        (StatusCode::FORBIDDEN, "BROKER_MEMBERSHIP_STALE".into())
    );

    // Joins and departures were announced through the outbox.
    let mut tx = s
        .pool()
        .begin_with("BEGIN; SELECT set_config('app.outbox_drainer', 'on', true)")
        .await?;
    let events: Vec<(String, Value)> = sqlx::query_as("SELECT event_type, payload FROM outbox ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let of = |kind: &str| {
        events
            .iter()
            .filter(|(t, p)| t == kind && p["payload"]["userId"] == "ext-bob")
            .count()
    };
    assert_eq!(
        (of("channel.member_joined"), of("channel.member_left")),
        (2, 2),
        "{events:?}"
    );
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn registration_is_admin_only_and_refuses_bad_keys() -> TestResult {
    let s = broker_server().await?;
    let (app, _) = s.create_app("A").await?;
    let key = KeyPair::fixture("a")?;
    let (status, _) = s
        .call(
            Method::POST,
            "/admin/broker/clients",
            &[],
            Some(json!({"slug": "x", "name": "x"})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, client) = s
        .admin(
            Method::POST,
            "/admin/broker/clients",
            Some(json!({"slug": "acme", "name": "Acme"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (client["slug"].as_str(), client["status"].as_str()),
        (Some("acme"), Some("active"))
    );
    let (status, reply) = s
        .admin(
            Method::POST,
            "/admin/broker/clients",
            Some(json!({"slug": "acme", "name": "Again"})),
        )
        .await?;
    assert_eq!(code(status, &reply), (StatusCode::CONFLICT, "SLUG_TAKEN".into()));
    for (body, field) in [
        (json!({"slug": "", "name": "x"}), "slug"),
        (json!({"slug": "a b", "name": "x"}), "slug"),
        (json!({"slug": "x".repeat(65), "name": "x"}), "slug"),
        (json!({"slug": "ok", "name": "x", "secret": "y"}), "secret"),
    ] {
        let (status, reply) = s.admin(Method::POST, "/admin/broker/clients", Some(body)).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field))
        );
    }
    let credentials = format!("/admin/broker/clients/{}/credentials", str_of(&client, "id"));
    let mut private = key.jwk.clone();
    private["d"] = json!("AQAB");
    let mut small = key.jwk.clone();
    small["n"] = json!("AQAB");
    for (body, field) in [
        (json!({"kid": "k1", "publicKeyJwk": private}), "publicKeyJwk.d"),
        (json!({"kid": "k1", "publicKeyJwk": small}), "publicKeyJwk.n"),
        (
            json!({"kid": "k1", "publicKeyJwk": {"kty": "oct", "k": "c2VjcmV0"}}),
            "publicKeyJwk.kty",
        ),
        (json!({"kid": "", "publicKeyJwk": key.jwk}), "kid"),
        (json!({"kid": "k1"}), "publicKeyJwk"),
    ] {
        let (status, reply) = s.admin(Method::POST, &credentials, Some(body)).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{reply}"
        );
    }
    let (status, credential) = s
        .admin(
            Method::POST,
            &credentials,
            Some(json!({"kid": "k1", "publicKeyJwk": key.jwk})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{credential}");
    assert!(credential.get("publicKeyJwk").is_none());
    let (status, reply) = s
        .admin(
            Method::POST,
            &credentials,
            Some(json!({"kid": "k1", "publicKeyJwk": key.jwk})),
        )
        .await?;
    assert_eq!(code(status, &reply), (StatusCode::CONFLICT, "KID_TAKEN".into()));
    let (status, _) = s
        .admin(
            Method::POST,
            &format!("/admin/broker/clients/{}/credentials", uuid::Uuid::now_v7()),
            Some(json!({"kid": "k2", "publicKeyJwk": key.jwk})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let scope_path = format!("/admin/apps/{app}/broker-scopes/{}", str_of(&credential, "id"));
    for (body, field) in [
        (
            json!({"allowedScopes": ["chat:read", "admin:all"]}),
            "allowedScopes",
        ),
        (
            json!({"allowedScopes": ["chat:read"], "defaultScopes": ["chat:write"]}),
            "defaultScopes",
        ),
        (json!({"allowedOrigins": ["*"]}), "allowedOrigins"),
        (json!({"maxTokenTtlSeconds": 7200}), "maxTokenTtlSeconds"),
        (json!({"maxMembershipFanout": 0}), "maxMembershipFanout"),
        (json!({"status": "paused"}), "status"),
    ] {
        let (status, reply) = s.admin(Method::PUT, &scope_path, Some(body)).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{reply}"
        );
    }
    let (status, scope) = s.admin(Method::PUT, &scope_path, Some(json!({}))).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(scope["defaultScopes"], json!(["chat:read", "chat:write"]));
    assert_eq!(scope["maxTokenTtlSeconds"], 900);
    let (status, _) = s
        .admin(
            Method::PUT,
            &format!(
                "/admin/apps/{}/broker-scopes/{}",
                uuid::Uuid::now_v7(),
                str_of(&credential, "id")
            ),
            Some(json!({})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.cleanup().await;
    Ok(())
}

/// The cross-app cases of this group, for the route-list test: `(method, path, body)` built
/// for app B's credentials against app A's resources.
fn cross_app_cases(app_a: &str, cid_a: &str) -> Vec<(Method, String, Value)> {
    vec![
        (
            Method::POST,
            format!("/api/server/apps/{app_a}/tokens/mint"),
            json!({"userId": "ext-bob", "externalTenantId": "t1"}),
        ),
        (
            Method::PUT,
            format!("/api/server/apps/{app_a}/memberships/ext-eve"),
            snapshot(1, "t1", &[cid_a], "active"),
        ),
    ]
}

#[tokio::test]
async fn a_credential_scoped_into_one_app_reaches_no_other() -> TestResult {
    let s = broker_server().await?;
    let (app_a, key_a) = s.create_app("A").await?;
    let (app_b, _) = s.create_app("B").await?;
    let alice = s.token(&key_a, "alice").await?;
    let (channel_a, cid_a) = group(&s, &alice).await?;
    // The broker is scoped into B only.
    let broker = Broker::register(&s, "acme", &app_b, scope()).await?;
    for (method, path, body) in cross_app_cases(&app_a, &cid_a) {
        let (status, reply) = broker.call(&s, method.clone(), &path, body).await?;
        assert_eq!(
            code(status, &reply),
            (StatusCode::FORBIDDEN, "BROKER_SCOPE_DENIED".into()),
            "{method} {path}"
        );
    }
    // A's cid named in B's snapshot does not exist there.
    let (status, reply) = broker
        .sync(&s, &app_b, "ext-eve", snapshot(1, "t1", &[&cid_a], "active"))
        .await?;
    assert_eq!(
        code(status, &reply),
        (StatusCode::BAD_REQUEST, "BROKER_CHANNEL_NOT_FOUND".into())
    );
    broker
        .sync(&s, &app_b, "ext-eve", snapshot(1, "t1", &[], "active"))
        .await?;
    let (_, minted) = broker
        .mint(&s, &app_b, json!({"userId": "ext-eve", "externalTenantId": "t1"}))
        .await?;
    let token = str_of(&minted, "token");
    let (status, _) = s
        .user(
            &token,
            Method::GET,
            &format!("/api/channels/{channel_a}/messages"),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing was written into A.
    assert!(
        audit_rows(&s, &app_a).await?.is_empty()
            || audit_rows(&s, &app_a)
                .await?
                .iter()
                .all(|(_, st, _)| st == "denied")
    );
    let (_, members) = s
        .user(
            &alice,
            Method::GET,
            &format!("/api/channels/{channel_a}/members"),
            None,
        )
        .await?;
    assert_eq!(members["members"].as_array().map(Vec::len), Some(1));
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn connect_dev_exists_only_in_explicit_development_mode() -> TestResult {
    let s = TestServer::start().await?;
    let body = json!({"userId": "dev-user"});
    let (status, _) = s
        .call(Method::POST, "/api/auth/connect-dev", &[], Some(body.clone()))
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.cleanup().await;

    let s = TestServer::start_with(|config| config.dev_auth = true).await?;
    let (status, connected) = s
        .call(Method::POST, "/api/auth/connect-dev", &[], Some(body.clone()))
        .await?;
    assert_eq!(status, StatusCode::OK, "{connected}");
    assert_eq!(connected["user"]["id"], "dev-user");
    assert_eq!(connected["_dev"]["apiKey"], "dev-api-key");
    assert!(connected["_dev"]["warning"].is_string());
    let token = str_of(&connected, "token");
    let (status, me) = s.user(&token, Method::GET, "/api/users/me", None).await?;
    assert_eq!((status, me["id"].as_str()), (StatusCode::OK, Some("dev-user")));
    // The same development app every time, reachable with its fixed key.
    let (_, again) = s
        .call(
            Method::POST,
            "/api/auth/connect-dev",
            &[],
            Some(json!({"userId": "other"})),
        )
        .await?;
    assert_eq!(
        claims_of(&str_of(&again, "token"))["app_id"],
        claims_of(&token)["app_id"]
    );
    let dev_key = s.connect("dev-api-key", "keyed").await?;
    assert_eq!(
        claims_of(&str_of(&dev_key, "token"))["app_id"],
        claims_of(&token)["app_id"]
    );
    // Input rules are connect's.
    let (status, reply) = s
        .call(
            Method::POST,
            "/api/auth/connect-dev",
            &[],
            Some(json!({"userId": ""})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&reply).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("userId"))
    );
    s.cleanup().await;
    Ok(())
}
