//! Presence against the real PostgreSQL and Centrifugo, in the shapes upstream's
//! `usePresence` / `useChannelPresence` read: online/offline and their events over a real
//! WebSocket, heartbeats and the 5-minute window, who is in a channel (stored and live from
//! Centrifugo's presence), hostile input, and another app.

mod common;

use std::time::Duration;

use chatsdk_testenv::TestEnv;
use common::centrifugo::WsClient;
use common::{TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn subscribe(s: &TestServer, token: &str, ws: &mut WsClient, channel: &str) -> Result<(), Error> {
    let (status, sub) = s
        .user(
            token,
            Method::POST,
            "/api/realtime/subscription-token",
            Some(json!({"channel": channel})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{sub}");
    let reply = ws.subscribe(channel, &str_of(&sub, "token")).await?;
    assert!(reply.get("subscribe").is_some(), "{reply}");
    Ok(())
}

async fn query(s: &TestServer, token: &str, ids: &[&str]) -> Result<Value, Error> {
    let (status, body) = s
        .user(
            token,
            Method::POST,
            "/api/presence/query",
            Some(json!({"userIds": ids})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["presence"].clone())
}

#[tokio::test]
async fn presence_is_stored_queried_and_announced_to_the_users_channels() -> TestResult {
    let s = TestServer::start().await?;
    let drainer = s.drainer(&TestEnv::get().centrifugo().api_url)?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let bob_session = s.connect(&key, "bob").await?;
    let bob = str_of(&bob_session, "token");
    let carol = s.token(&key, "carol").await?;
    let (_, group) = s
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "memberIds": ["bob"]})),
        )
        .await?;
    let channel_id = str_of(&group, "id");
    let chat = format!("chat:{app}:{channel_id}");
    let mut ws = WsClient::connect(bob_session["_internal"]["wsToken"].as_str().unwrap_or_default()).await?;
    subscribe(&s, &bob, &mut ws, &chat).await?;

    // Online: stored, and heard by the channel's members.
    let (status, body) = s.user(&alice, Method::POST, "/api/presence/online", None).await?;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let events = ws.publications(&chat, 1, Duration::from_secs(10)).await?;
    assert_eq!(
        events,
        vec![json!({"type": "presence.online", "payload": {"userId": "alice"}})]
    );
    let presence = query(&s, &bob, &["alice", "carol", "nobody"]).await?;
    let entry = &presence["alice"];
    assert_eq!(entry["userId"], "alice");
    assert_eq!(entry["online"], true);
    assert!(entry["lastSeen"].is_string(), "{entry}");
    assert_eq!(
        entry["user"],
        json!({"id": "alice", "name": "alice", "image": null})
    );
    // Users sharing no channel with the caller, and unknown ids, stay unknown.
    assert_eq!(presence.as_object().map(|m| m.len()), Some(1), "{presence}");

    let presence_path = format!("/api/channels/{channel_id}/presence");
    let (status, members) = s.user(&bob, Method::GET, &presence_path, None).await?;
    assert_eq!(status, StatusCode::OK, "{members}");
    assert_eq!(
        (members["totalOnline"].as_u64(), members["totalMembers"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(members["online"][0]["id"], "alice");
    assert_eq!(members["online"][0]["userId"], "alice");
    assert_eq!(members["online"][0]["online"], true);
    assert_eq!(members["offline"][0]["id"], "bob");
    assert!(members["offline"][0].get("lastSeen").is_some());

    // Live: Centrifugo knows bob's subscription.
    let (status, live) = s
        .user(&alice, Method::GET, &format!("{presence_path}/live"), None)
        .await?;
    assert_eq!(status, StatusCode::OK, "{live}");
    assert_eq!(live["count"], 1, "{live}");
    assert_eq!(live["clients"][0]["userId"], "bob");
    assert!(live["clients"][0]["clientId"].is_string());

    // Offline, with the instant last seen.
    let (status, _) = s
        .user(&alice, Method::POST, "/api/presence/offline", None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    let events = ws.publications(&chat, 1, Duration::from_secs(10)).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "presence.offline");
    assert_eq!(events[0]["payload"]["userId"], "alice");
    assert!(events[0]["payload"]["lastSeen"].is_string(), "{}", events[0]);
    assert_eq!(query(&s, &bob, &["alice"]).await?["alice"]["online"], false);

    // Online lapses five minutes after the last sign of activity; a heartbeat renews it.
    s.user(&alice, Method::POST, "/api/presence/online", None).await?;
    let app_id: uuid::Uuid = app.parse()?;
    let age = |minutes: i32| {
        let pool = s.pool().clone();
        async move {
            let mut tx = chatsdk_server::storage::begin_tenant(&pool, app_id).await?;
            sqlx::query(
                "UPDATE app_user SET last_active_at = now() - make_interval(mins => $2) WHERE app_id = $1 AND id = 'alice'",
            )
            .bind(app_id)
            .bind(minutes)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
    };
    age(6).await?;
    assert_eq!(query(&s, &bob, &["alice"]).await?["alice"]["online"], false);
    let (status, body) = s
        .user(&alice, Method::POST, "/api/presence/heartbeat", None)
        .await?;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert_eq!(query(&s, &bob, &["alice"]).await?["alice"]["online"], true);

    // Members only: an app user outside the channel is refused.
    let (status, body) = s.user(&carol, Method::GET, &presence_path, None).await?;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    let (status, _) = s
        .user(&carol, Method::GET, &format!("{presence_path}/live"), None)
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(query(&s, &carol, &["alice", "bob"]).await?, json!({}));
    ws.close().await;
    drainer.stop().await;
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn presence_refuses_bad_input_naming_the_field() -> TestResult {
    let s = TestServer::start().await?;
    let (_, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    for (body, field) in [
        (json!({"userIds": []}), "userIds"),
        (json!({"userIds": many}), "userIds"),
        (json!({"userIds": ["ok", "nul\u{0}"]}), "userIds"),
        (json!({"userIds": ["x".repeat(256)]}), "userIds"),
        (json!({"userIds": "alice"}), "userIds"),
        (json!({"userIds": ["a"], "all": true}), "all"),
        (json!({}), "userIds"),
    ] {
        let (status, reply) = s
            .user(&alice, Method::POST, "/api/presence/query", Some(body.clone()))
            .await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {reply}"
        );
    }
    for path in [
        "/api/channels/not-a-uuid/presence",
        "/api/channels/%00/presence/live",
    ] {
        let (status, reply) = s.user(&alice, Method::GET, path, None).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some("channelId")),
            "{path}"
        );
    }
    let (status, _) = s
        .user(
            &alice,
            Method::GET,
            &format!("/api/channels/{}/presence", uuid::Uuid::now_v7()),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [
        "/api/presence/online",
        "/api/presence/heartbeat",
        "/api/presence/offline",
    ] {
        let (status, _) = s.call(Method::POST, path, &[], None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    s.cleanup().await;
    Ok(())
}

/// The cross-app cases of this group for the route-list test: `(method, path, body)` against
/// app A's channel, each answered 404 to app B's user.
fn cross_app_cases(channel_a: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/api/channels/{channel_a}/presence"), None),
        (
            Method::GET,
            format!("/api/channels/{channel_a}/presence/live"),
            None,
        ),
    ]
}

#[tokio::test]
async fn another_apps_user_sees_no_presence_of_this_app() -> TestResult {
    let s = TestServer::start().await?;
    let (_, key_a) = s.create_app("A").await?;
    let (_, key_b) = s.create_app("B").await?;
    let alice = s.token(&key_a, "alice").await?;
    s.connect(&key_a, "bob").await?;
    let (_, group) = s
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "memberIds": ["bob"]})),
        )
        .await?;
    s.user(&alice, Method::POST, "/api/presence/online", None).await?;
    // B has users with the same ids, in a channel together.
    let eve = s.token(&key_b, "bob").await?;
    s.connect(&key_b, "alice").await?;
    s.user(
        &eve,
        Method::POST,
        "/api/channels",
        Some(json!({"type": "group", "memberIds": ["alice"]})),
    )
    .await?;
    for (method, path, body) in cross_app_cases(&str_of(&group, "id")) {
        let (status, reply) = s.user(&eve, method.clone(), &path, body).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {reply}");
    }
    // B's alice is not A's alice: never online there.
    assert_eq!(query(&s, &eve, &["alice"]).await?["alice"]["online"], false);
    // B's presence calls touch nothing of A.
    s.user(&eve, Method::POST, "/api/presence/offline", None).await?;
    assert_eq!(query(&s, &alice, &["alice"]).await?["alice"]["online"], true);
    s.cleanup().await;
    Ok(())
}
