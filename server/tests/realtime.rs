//! Real time against the test environment's Centrifugo: subscription tokens, a WebSocket client
//! receiving `message.new` through the outbox drainer, delivery after a Centrifugo outage, and
//! several drainers (replicas) on one database.

mod common;

use std::time::Duration;

use chatsdk_testenv::TestEnv;
use common::centrifugo::{WsClient, history};
use common::{TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An address where nothing listens: Centrifugo "down".
const DEAD_CENTRIFUGO: &str = "http://127.0.0.1:1/api";

async fn subscription_token(
    s: &TestServer,
    token: &str,
    channel: &str,
) -> Result<(StatusCode, Value), reqwest::Error> {
    s.user(
        token,
        Method::POST,
        "/api/realtime/subscription-token",
        Some(json!({ "channel": channel })),
    )
    .await
}

async fn outbox_rows(s: &TestServer) -> Result<Vec<(String, i32)>, sqlx::Error> {
    let mut tx = s
        .pool()
        .begin_with("BEGIN; SELECT set_config('app.outbox_drainer', 'on', true)")
        .await?;
    let rows = sqlx::query_as("SELECT event_type, attempts FROM outbox ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

#[tokio::test]
async fn subscription_tokens_check_access() -> TestResult {
    let s = TestServer::start().await?;
    let (app, key) = s.create_app("A").await?;
    let (other_app, other_key) = s.create_app("B").await?;
    let alice = s.token(&key, "alice").await?;
    let _bob = s.token(&key, "bob").await?;
    let carol = s.token(&key, "carol").await?;
    let mallory = s.token(&other_key, "alice").await?;

    let (_, group) = s
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "memberIds": ["bob"]})),
        )
        .await?;
    let (_, public) = s
        .user(
            &carol,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "public", "name": "lobby"})),
        )
        .await?;
    let group_channel = format!("chat:{app}:{}", str_of(&group, "id"));
    let public_channel = format!("chat:{app}:{}", str_of(&public, "id"));

    // Allowed: one's own user channel, a channel one belongs to, a public channel.
    for channel in [format!("user:{app}:alice"), group_channel.clone(), public_channel] {
        let (status, body) = subscription_token(&s, &alice, &channel).await?;
        assert_eq!(status, StatusCode::OK, "{channel}: {body}");
        assert_eq!(body["expiresIn"], 900);
        assert!(!str_of(&body, "token").is_empty());
    }

    let cases = [
        (&alice, format!("user:{app}:bob"), StatusCode::FORBIDDEN),
        (&carol, group_channel.clone(), StatusCode::FORBIDDEN),
        (
            &alice,
            format!("chat:{app}:{}", uuid::Uuid::now_v7()),
            StatusCode::NOT_FOUND,
        ),
        (&alice, format!("chat:{app}:not-a-uuid"), StatusCode::BAD_REQUEST),
        (&alice, "presence:x:y".to_owned(), StatusCode::BAD_REQUEST),
        (&alice, format!("user:{other_app}:alice"), StatusCode::FORBIDDEN),
        // Same user id in another app: the app of the token decides.
        (&mallory, format!("user:{app}:alice"), StatusCode::FORBIDDEN),
        (&mallory, group_channel.clone(), StatusCode::FORBIDDEN),
    ];
    for (token, channel, expected) in cases {
        let (status, body) = subscription_token(&s, token, &channel).await?;
        assert_eq!(status, expected, "{channel}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    let (status, body) = s
        .user(
            &alice,
            Method::POST,
            "/api/realtime/subscription-token",
            Some(json!({"chan": "x"})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("chan"))
    );
    let (status, _) = s
        .call(
            Method::POST,
            "/api/realtime/subscription-token",
            &[],
            Some(json!({"channel": group_channel})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn websocket_client_receives_message_new_sent_through_the_api() -> TestResult {
    let s = TestServer::start().await?;
    let drainer = s.drainer(&TestEnv::get().centrifugo().api_url)?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.connect(&key, "alice").await?;
    let bob = s.token(&key, "bob").await?;
    let alice_token = str_of(&alice, "token");
    let (_, group) = s
        .user(
            &alice_token,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "memberIds": ["bob"]})),
        )
        .await?;
    let channel_id = str_of(&group, "id");
    let chat = format!("chat:{app}:{channel_id}");

    let mut ws = WsClient::connect(alice["_internal"]["wsToken"].as_str().unwrap_or_default()).await?;
    let (_, sub) = subscription_token(&s, &alice_token, &chat).await?;
    let reply = ws.subscribe(&chat, &str_of(&sub, "token")).await?;
    assert!(reply.get("subscribe").is_some(), "{reply}");

    let (status, sent) = s
        .user(
            &bob,
            Method::POST,
            &format!("/api/channels/{channel_id}/messages"),
            Some(json!({"text": "hello over the socket"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let pubs = ws.publications(&chat, 1, Duration::from_secs(10)).await?;
    assert_eq!(pubs.len(), 1, "no message.new arrived");
    let event = &pubs[0];
    assert_eq!(event["type"], "message.new");
    assert_eq!(event["payload"]["channelId"], channel_id.as_str());
    assert_eq!(event["payload"]["message"]["id"], sent["id"]);
    assert_eq!(event["payload"]["message"]["text"], "hello over the socket");
    assert_eq!(event["payload"]["message"]["seq"], 1);

    // Delivered rows leave the outbox.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !outbox_rows(&s).await?.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox not drained: {:?}",
            outbox_rows(&s).await?
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.close().await;

    // Centrifugo itself refuses a token minted for another channel (it drops the connection).
    let mut intruder = WsClient::connect(alice["_internal"]["wsToken"].as_str().unwrap_or_default()).await?;
    let (_, own) = subscription_token(&s, &alice_token, &format!("user:{app}:alice")).await?;
    match intruder
        .subscribe(&format!("user:{app}:bob"), &str_of(&own, "token"))
        .await
    {
        Ok(reply) => assert!(reply.get("error").is_some(), "{reply}"),
        Err(err) => assert!(err.to_string().contains("invalid token"), "{err}"),
    }
    drainer.stop().await;
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn every_event_arrives_after_a_centrifugo_outage_with_several_drainers() -> TestResult {
    const DURING_OUTAGE: usize = 30;
    const AFTER: usize = 40;
    let s = TestServer::start().await?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.connect(&key, "alice").await?;
    let alice_token = str_of(&alice, "token");
    let (_, group) = s
        .user(
            &alice_token,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "name": "g"})),
        )
        .await?;
    let channel_id = str_of(&group, "id");
    let chat = format!("chat:{app}:{channel_id}");
    let path = format!("/api/channels/{channel_id}/messages");
    let mut ws = WsClient::connect(alice["_internal"]["wsToken"].as_str().unwrap_or_default()).await?;
    let (_, sub) = subscription_token(&s, &alice_token, &chat).await?;
    assert!(
        ws.subscribe(&chat, &str_of(&sub, "token"))
            .await?
            .get("subscribe")
            .is_some()
    );

    // Outage: the only drainer points at a dead Centrifugo while messages are sent.
    let broken = s.drainer(DEAD_CENTRIFUGO)?;
    for i in 0..DURING_OUTAGE {
        let (status, body) = s
            .user(
                &alice_token,
                Method::POST,
                &path,
                Some(json!({"text": format!("m{i}")})),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued = outbox_rows(&s).await?;
    let new_rows: Vec<_> = queued.iter().filter(|(t, _)| t == "message.new").collect();
    assert_eq!(new_rows.len(), DURING_OUTAGE, "{queued:?}");
    assert!(
        queued.iter().any(|(_, attempts)| *attempts > 0),
        "the drainer never tried: {queued:?}"
    );
    assert!(
        ws.publications(&chat, 1, Duration::from_millis(300))
            .await?
            .is_empty()
    );
    // The broken server goes away (a restart); two healthy replicas take over.
    broken.stop().await;
    let url = &TestEnv::get().centrifugo().api_url;
    let (first, second) = (s.drainer(url)?, s.drainer(url)?);

    // More sends from concurrent clients while both replicas drain.
    let mut senders = Vec::new();
    for task in 0..4 {
        let (http, base, token, path) = (s.http.clone(), s.base.clone(), alice_token.clone(), path.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..AFTER / 4 {
                let response = http
                    .post(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("t{task}-{i}")}))
                    .send()
                    .await?;
                assert_eq!(response.status(), StatusCode::CREATED);
            }
            Ok::<_, reqwest::Error>(())
        }));
    }
    for sender in senders {
        sender.await??;
    }

    let total = DURING_OUTAGE + AFTER;
    let received = ws.publications(&chat, total, Duration::from_secs(20)).await?;
    let seqs: Vec<i64> = received
        .iter()
        .filter(|e| e["type"] == "message.new")
        .filter_map(|e| e["payload"]["message"]["seq"].as_i64())
        .collect();
    let expected: Vec<i64> = (1..=total as i64).collect();
    // All of them, once each, in commit order.
    assert_eq!(seqs, expected);
    let stored: Vec<i64> = history(&chat)
        .await?
        .iter()
        .filter_map(|e| e["payload"]["message"]["seq"].as_i64())
        .collect();
    assert_eq!(stored, expected, "centrifugo history");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !outbox_rows(&s).await?.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "outbox not drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.close().await;
    first.stop().await;
    second.stop().await;
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_drainer_started_later_publishes_what_was_queued() -> TestResult {
    // No drainer while sending (the server was down): the next start publishes the backlog.
    let s = TestServer::start().await?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let (_, group) = s
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group"})),
        )
        .await?;
    let channel_id = str_of(&group, "id");
    for i in 0..5 {
        s.user(
            &alice,
            Method::POST,
            &format!("/api/channels/{channel_id}/messages"),
            Some(json!({"text": format!("queued {i}")})),
        )
        .await?;
    }
    assert_eq!(outbox_rows(&s).await?.len(), 6, "channel.created + 5 message.new");
    let chat = format!("chat:{app}:{channel_id}");
    assert!(history(&chat).await?.is_empty());
    let drainer = s.drainer(&TestEnv::get().centrifugo().api_url)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let texts = loop {
        let texts: Vec<String> = history(&chat)
            .await?
            .iter()
            .filter_map(|e| e["payload"]["message"]["text"].as_str().map(str::to_owned))
            .collect();
        if texts.len() >= 5 || tokio::time::Instant::now() > deadline {
            break texts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(texts, (0..5).map(|i| format!("queued {i}")).collect::<Vec<_>>());
    let created = history(&format!("user:{app}:alice")).await?;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["type"], "channel.created");
    drainer.stop().await;
    s.cleanup().await;
    Ok(())
}
