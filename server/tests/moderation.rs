//! Moderation against the real PostgreSQL and Centrifugo: members report messages, the app
//! admin (made one by the app server through `connect`'s `metadata.is_admin`) works the queue
//! and deletes, warns, bans or dismisses; a ban ends the author's sessions and `connect` until
//! the app server lifts it. Hostile input and another app.

mod common;

use std::time::Duration;

use chatsdk_testenv::TestEnv;
use common::centrifugo::WsClient;
use common::{TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct World {
    s: TestServer,
    key: String,
    app: String,
    /// The app admin (not a member of the channel).
    admin: Value,
    alice: String,
    bob: String,
    carol: String,
    channel: String,
}

async fn connect_admin(s: &TestServer, key: &str, user: &str) -> Result<Value, Error> {
    let (status, body) = s
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-API-Key", key)],
            Some(json!({"userId": user, "displayName": "Moderator", "metadata": {"is_admin": true}})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body)
}

async fn world() -> Result<World, Error> {
    let s = TestServer::start().await?;
    let (app, key) = s.create_app("A").await?;
    let admin = connect_admin(&s, &key, "mod").await?;
    let alice = s.token(&key, "alice").await?;
    let bob = s.token(&key, "bob").await?;
    let carol = s.token(&key, "carol").await?;
    let (_, group) = s
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "name": "town square", "memberIds": ["bob", "carol"]})),
        )
        .await?;
    Ok(World {
        s,
        key,
        app,
        admin,
        alice,
        bob,
        carol,
        channel: str_of(&group, "id"),
    })
}

impl World {
    fn admin(&self) -> String {
        str_of(&self.admin, "token")
    }

    async fn send(&self, token: &str, text: &str) -> Result<String, Error> {
        let (status, body) = self
            .s
            .user(
                token,
                Method::POST,
                &format!("/api/channels/{}/messages", self.channel),
                Some(json!({"text": text})),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Ok(str_of(&body, "id"))
    }

    async fn report(&self, token: &str, message: &str, body: Value) -> Result<(StatusCode, Value), Error> {
        Ok(self
            .s
            .user(
                token,
                Method::POST,
                &format!("/api/moderation/{message}/report"),
                Some(body),
            )
            .await?)
    }

    async fn review(&self, report: &str, action: &str) -> Result<Value, Error> {
        let (status, body) = self
            .s
            .user(
                &self.admin(),
                Method::PUT,
                &format!("/api/moderation/reports/{report}/review"),
                Some(json!({"action": action, "adminNotes": format!("{action} by policy")})),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(body)
    }
}

#[tokio::test]
async fn reports_are_filed_queued_and_reviewed_by_the_app_admin() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let drainer = s.drainer(&TestEnv::get().centrifugo().api_url)?;
    let spam = w.send(&w.bob, "buy cheap watches").await?;
    let (status, report) = w
        .report(
            &w.alice,
            &spam,
            json!({"reason": "spam", "details": "third time today"}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (
            report["messageId"].as_str(),
            report["reason"].as_str(),
            report["status"].as_str()
        ),
        (Some(spam.as_str()), Some("spam"), Some("pending"))
    );
    assert!(report["id"].is_string() && report["createdAt"].is_string());
    let (status, second) = w
        .report(&w.carol, &spam, json!({"reason": "inappropriate"}))
        .await?;
    assert_eq!(status, StatusCode::OK, "{second}");

    // The queue, newest first, with reporter, message, author and channel.
    let (status, queue) = s
        .user(
            &w.admin(),
            Method::GET,
            "/api/moderation/reports?status=pending",
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{queue}");
    assert_eq!(queue["total"], 2);
    let first = &queue["reports"][1];
    assert_eq!(first["id"], report["id"]);
    assert_eq!(first["details"], "third time today");
    assert_eq!(
        first["reporter"],
        json!({"id": "alice", "name": "alice", "image": null})
    );
    assert_eq!(first["message"]["text"], "buy cheap watches");
    assert_eq!(first["message"]["author"]["id"], "bob");
    assert_eq!(first["message"]["channelId"], w.channel.as_str());
    assert_eq!(first["message"]["channelName"], "town square");
    assert!(first["reviewedBy"].is_null() && first["actionTaken"].is_null());
    let (status, one) = s
        .user(
            &w.admin(),
            Method::GET,
            &format!("/api/moderation/reports/{}", str_of(&report, "id")),
            None,
        )
        .await?;
    assert_eq!(
        (status, &one["reporter"]["id"]),
        (StatusCode::OK, &json!("alice"))
    );

    // Deleting the message: soft delete, announced on the channel.
    let chat = format!("chat:{}:{}", w.app, w.channel);
    let alice_session = s.connect(&w.key, "alice").await?;
    let mut ws =
        WsClient::connect(alice_session["_internal"]["wsToken"].as_str().unwrap_or_default()).await?;
    let (_, sub) = s
        .user(
            &str_of(&alice_session, "token"),
            Method::POST,
            "/api/realtime/subscription-token",
            Some(json!({"channel": chat})),
        )
        .await?;
    ws.subscribe(&chat, &str_of(&sub, "token")).await?;
    let reviewed = w.review(&str_of(&report, "id"), "delete_message").await?;
    assert_eq!(reviewed["status"], "actioned");
    assert_eq!(reviewed["actionTaken"], "delete_message");
    assert_eq!(reviewed["reviewedBy"], "mod");
    assert_eq!(reviewed["adminNotes"], "delete_message by policy");
    assert!(reviewed["reviewedAt"].is_string());
    let events = ws.publications(&chat, 1, Duration::from_secs(10)).await?;
    assert_eq!(
        events,
        vec![json!({"type": "message.deleted", "payload": {"channelId": w.channel, "messageId": spam}})]
    );
    let (_, message) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("/api/channels/{}/messages/{spam}", w.channel),
            None,
        )
        .await?;
    assert_eq!(
        (message["type"].as_str(), message["text"].clone()),
        (Some("deleted"), Value::Null)
    );
    ws.close().await;

    // Dismissing closes as `reviewed`; the queue filters by status.
    let dismissed = w.review(&str_of(&second, "id"), "dismiss").await?;
    assert_eq!(
        (dismissed["status"].as_str(), dismissed["actionTaken"].as_str()),
        (Some("reviewed"), Some("dismiss"))
    );
    let (_, pending) = s
        .user(
            &w.admin(),
            Method::GET,
            "/api/moderation/reports?status=pending",
            None,
        )
        .await?;
    assert_eq!(
        (pending["total"].clone(), pending["reports"].clone()),
        (json!(0), json!([]))
    );
    let (_, all) = s
        .user(&w.admin(), Method::GET, "/api/moderation/reports?limit=1", None)
        .await?;
    assert_eq!(
        (all["total"].as_i64(), all["reports"].as_array().map(Vec::len)),
        (Some(2), Some(1))
    );

    // A warning counts up in the author's custom data.
    let rude = w.send(&w.bob, "you are all idiots").await?;
    for _ in 0..2 {
        let (_, r) = w.report(&w.alice, &rude, json!({"reason": "harassment"})).await?;
        if r["id"].is_string() {
            w.review(&str_of(&r, "id"), "warn_user").await?;
        }
    }
    let (_, r) = w.report(&w.carol, &rude, json!({"reason": "harassment"})).await?;
    w.review(&str_of(&r, "id"), "warn_user").await?;
    let (_, bob) = s.user(&w.alice, Method::GET, "/api/users/bob", None).await?;
    assert_eq!(bob["custom"]["warnings"], 2, "{bob}");
    drainer.stop().await;
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_ban_ends_the_authors_sessions_until_the_app_server_lifts_it() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let hate = w.send(&w.bob, "hateful words").await?;
    let (_, report) = w
        .report(&w.alice, &hate, json!({"reason": "hate_speech"}))
        .await?;
    w.review(&str_of(&report, "id"), "ban_user").await?;
    let (status, reply) = s.user(&w.bob, Method::GET, "/api/users/me", None).await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED")
    );
    let (_, profile) = s.user(&w.alice, Method::GET, "/api/users/bob", None).await?;
    assert_eq!(profile["custom"]["banned"], true);
    let (status, reply) = s
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-API-Key", &w.key)],
            Some(json!({"userId": "bob"})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::FORBIDDEN, "USER_BANNED")
    );
    // The app server lifts the ban explicitly.
    let (status, reply) = s
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-API-Key", &w.key)],
            Some(json!({"userId": "bob", "metadata": {"banned": false}})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, _) = s
        .user(&str_of(&reply, "token"), Method::GET, "/api/users/me", None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn only_members_report_only_admins_review_and_bad_input_is_named() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let message = w.send(&w.bob, "hello").await?;
    let outsider = s.token(&w.key, "dave").await?;
    let (status, _) = w.report(&outsider, &message, json!({"reason": "spam"})).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, reply) = w.report(&w.bob, &message, json!({"reason": "spam"})).await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::BAD_REQUEST, "OWN_MESSAGE")
    );
    let (status, _) = w.report(&w.alice, &message, json!({"reason": "spam"})).await?;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = w
        .report(&w.alice, &message, json!({"reason": "violence"}))
        .await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::BAD_REQUEST, "ALREADY_REPORTED")
    );
    for (body, field) in [
        (json!({"reason": "boring"}), "reason"),
        (json!({"reason": "spam", "details": "x".repeat(1001)}), "details"),
        (json!({"reason": "spam", "severity": 5}), "severity"),
        (json!({}), "reason"),
    ] {
        let (status, reply) = w.report(&w.carol, &message, body.clone()).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}"
        );
    }
    let (status, reply) = w
        .report(&w.carol, "not-a-uuid", json!({"reason": "spam"}))
        .await?;
    assert_eq!(
        (status, error_of(&reply).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("messageId"))
    );
    let (status, _) = w
        .report(
            &w.carol,
            &uuid::Uuid::now_v7().to_string(),
            json!({"reason": "spam"}),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Admin routes: a user who set `is_admin` on their own profile is still no admin.
    let (status, _) = s
        .user(
            &w.carol,
            Method::PATCH,
            "/api/users/me",
            Some(json!({"custom": {"is_admin": true}})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (_, queue) = s
        .user(&w.admin(), Method::GET, "/api/moderation/reports", None)
        .await?;
    let report = str_of(&queue["reports"][0], "id");
    for (method, path, body) in [
        (Method::GET, "/api/moderation/reports".to_owned(), None),
        (Method::GET, format!("/api/moderation/reports/{report}"), None),
        (
            Method::PUT,
            format!("/api/moderation/reports/{report}/review"),
            Some(json!({"action": "dismiss"})),
        ),
    ] {
        let (status, reply) = s.user(&w.carol, method.clone(), &path, body).await?;
        assert_eq!(
            (status, error_of(&reply).0.as_str()),
            (StatusCode::FORBIDDEN, "ADMIN_REQUIRED"),
            "{method} {path}"
        );
    }
    // The app server can withdraw the role again.
    let (_, demoted) = s
        .call(
            Method::POST,
            "/api/auth/connect",
            &[("X-API-Key", &w.key)],
            Some(json!({"userId": "mod", "metadata": {"is_admin": false}})),
        )
        .await?;
    let (status, _) = s
        .user(
            &str_of(&demoted, "token"),
            Method::GET,
            "/api/moderation/reports",
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = connect_admin(s, &w.key, "mod").await?;
    let admin = str_of(&admin, "token");
    let review = format!("/api/moderation/reports/{report}/review");
    for (body, field) in [
        (json!({"action": "shame"}), "action"),
        (
            json!({"action": "dismiss", "adminNotes": "x".repeat(1001)}),
            "adminNotes",
        ),
        (json!({"action": "dismiss", "escalate": true}), "escalate"),
    ] {
        let (status, reply) = s.user(&admin, Method::PUT, &review, Some(body.clone())).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}"
        );
    }
    for (url, field) in [
        ("/api/moderation/reports?status=open", "status"),
        ("/api/moderation/reports?limit=0", "limit"),
        ("/api/moderation/reports?offset=-1", "offset"),
        ("/api/moderation/reports/x%00y", "reportId"),
    ] {
        let (status, reply) = s.user(&admin, Method::GET, url, None).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{url}"
        );
    }
    let (status, reply) = s
        .user(
            &admin,
            Method::GET,
            &format!("/api/moderation/reports/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::NOT_FOUND, "REPORT_NOT_FOUND")
    );
    let _ = &w.app;
    w.s.cleanup().await;
    Ok(())
}

/// The cross-app cases of this group for the route-list test: `(method, path, body)` against
/// app A's message and report, each answered 404 to app B's (admin) user.
fn cross_app_cases(message: &str, report: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            format!("/api/moderation/{message}/report"),
            Some(json!({"reason": "spam"})),
        ),
        (Method::GET, format!("/api/moderation/reports/{report}"), None),
        (
            Method::PUT,
            format!("/api/moderation/reports/{report}/review"),
            Some(json!({"action": "ban_user"})),
        ),
    ]
}

#[tokio::test]
async fn another_apps_admin_sees_and_touches_nothing() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let message = w.send(&w.bob, "tenant message").await?;
    let (_, report) = w.report(&w.alice, &message, json!({"reason": "spam"})).await?;
    let (_, key_b) = s.create_app("B").await?;
    let eve = connect_admin(s, &key_b, "mod").await?;
    let eve = str_of(&eve, "token");
    for (method, path, body) in cross_app_cases(&message, &str_of(&report, "id")) {
        let (status, reply) = s.user(&eve, method.clone(), &path, body).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {reply}");
    }
    let (_, queue) = s.user(&eve, Method::GET, "/api/moderation/reports", None).await?;
    assert_eq!(
        (queue["total"].clone(), queue["reports"].clone()),
        (json!(0), json!([]))
    );
    let (status, _) = s.user(&w.bob, Method::GET, "/api/users/me", None).await?;
    assert_eq!(status, StatusCode::OK, "A's author was not banned");
    let (_, still) = s
        .user(
            &w.admin(),
            Method::GET,
            &format!("/api/moderation/reports/{}", str_of(&report, "id")),
            None,
        )
        .await?;
    assert_eq!(still["status"], "pending");
    w.s.cleanup().await;
    Ok(())
}
