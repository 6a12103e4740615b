//! Message operations (get, edit, delete, threads, reactions, pins), channel management, read
//! state, typing, ensure endpoints, users, search, and another app's reach into all of them.

mod common;

use common::centrifugo::history;
use common::{TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct World {
    s: TestServer,
    app: String,
    key: String,
    alice: String,
    bob: String,
    carol: String,
    dave: String,
    /// Group owned by alice with bob and carol; dave is outside.
    group: String,
}

async fn world() -> Result<World, Error> {
    let s = TestServer::start().await?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let bob = s.token(&key, "bob").await?;
    let carol = s.token(&key, "carol").await?;
    let dave = s.token(&key, "dave").await?;
    let (status, group) = s
        .user(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "name": "g", "memberIds": ["bob", "carol"]})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group = str_of(&group, "id");
    Ok(World {
        s,
        app,
        key,
        alice,
        bob,
        carol,
        dave,
        group,
    })
}

impl World {
    async fn send(&self, token: &str, text: &str) -> Result<Value, Error> {
        let (status, body) = self
            .s
            .user(
                token,
                Method::POST,
                &format!("/api/channels/{}/messages", self.group),
                Some(json!({ "text": text })),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Ok(body)
    }

    fn msg(&self, id: &str, rest: &str) -> String {
        format!("/api/channels/{}/messages/{id}{rest}", self.group)
    }

    async fn outbox_types(&self) -> Result<Vec<String>, sqlx::Error> {
        let mut tx = self
            .s
            .pool()
            .begin_with("BEGIN; SELECT set_config('app.outbox_drainer', 'on', true)")
            .await?;
        let types = sqlx::query_scalar("SELECT event_type FROM outbox ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(types)
    }

    /// Asserts that the outbox holds at least one event of each of `expected`.
    async fn assert_outbox_has(&self, expected: &[&str]) -> Result<(), sqlx::Error> {
        let types = self.outbox_types().await?;
        for event in expected {
            assert!(types.iter().any(|t| t == event), "{event} missing in {types:?}");
        }
        Ok(())
    }
}

fn code(status: StatusCode, body: &Value) -> (StatusCode, String) {
    (status, error_of(body).0)
}

#[tokio::test]
async fn messages_are_read_edited_threaded_reacted_pinned_and_deleted() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let m1 = w.send(&w.bob, "first").await?;
    let id = str_of(&m1, "id");

    let (status, got) = s.user(&w.alice, Method::GET, &w.msg(&id, ""), None).await?;
    assert_eq!((status, got["text"].as_str()), (StatusCode::OK, Some("first")));
    assert_eq!(got["reactions"], json!([]));
    let (status, body) = s.user(&w.dave, Method::GET, &w.msg(&id, ""), None).await?;
    assert_eq!(code(status, &body), (StatusCode::FORBIDDEN, "FORBIDDEN".into()));
    let (status, body) = s.user(&w.alice, Method::GET, &w.msg("nope", ""), None).await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("messageId"))
    );
    let missing = uuid::Uuid::now_v7().to_string();
    let (status, _) = s.user(&w.alice, Method::GET, &w.msg(&missing, ""), None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Edit: author only, text rules apply.
    let edit = |text: &str| Some(json!({ "text": text }));
    let (status, _) = s
        .user(&w.alice, Method::PATCH, &w.msg(&id, ""), edit("hijack"))
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s.user(&w.bob, Method::PATCH, &w.msg(&id, ""), edit("")).await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("text"))
    );
    let (status, edited) = s
        .user(&w.bob, Method::PATCH, &w.msg(&id, ""), edit("first, edited"))
        .await?;
    assert_eq!(
        (status, edited["text"].as_str()),
        (StatusCode::OK, Some("first, edited"))
    );
    assert_ne!(edited["updatedAt"], edited["createdAt"]);
    assert_eq!(edited["seq"], m1["seq"]);

    // Threads: replies stay out of the channel page and count on the parent.
    let (status, reply) = s
        .user(
            &w.carol,
            Method::POST,
            &w.msg(&id, "/thread"),
            Some(json!({"text": "a reply"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["parentId"].as_str(), Some(id.as_str()));
    let (status, thread) = s
        .user(&w.alice, Method::GET, &w.msg(&id, "/thread"), None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(thread["parent"]["replyCount"], 1);
    assert_eq!(thread["replies"][0]["text"], "a reply");
    let (status, _) = s
        .user(
            &w.alice,
            Method::GET,
            &w.msg(&str_of(&reply, "id"), "/thread"),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, page) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("/api/channels/{}/messages", w.group),
            None,
        )
        .await?;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1));

    // Reactions: one per user and emoji; counted; own marked.
    for token in [&w.bob, &w.alice, &w.alice] {
        let (status, body) = s
            .user(
                token,
                Method::POST,
                &w.msg(&id, "/reactions"),
                Some(json!({"emoji": "👍"})),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, got) = s.user(&w.bob, Method::GET, &w.msg(&id, ""), None).await?;
    assert_eq!(got["reactionCount"], 2);
    assert_eq!(got["reactions"][0]["count"], 2);
    assert_eq!(got["reactions"][0]["own"], true);
    let (status, after) = s
        .user(&w.bob, Method::DELETE, &w.msg(&id, "/reactions/👍"), None)
        .await?;
    assert_eq!(
        (status, after["reactionCount"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(after["reactions"][0]["own"], false);
    let (status, _) = s
        .user(&w.bob, Method::DELETE, &w.msg(&id, "/reactions/👍"), None)
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s
        .user(
            &w.alice,
            Method::POST,
            &w.msg(&id, "/reactions"),
            Some(json!({"emoji": ""})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("emoji"))
    );
    let (status, _) = s
        .user(
            &w.dave,
            Method::POST,
            &w.msg(&id, "/reactions"),
            Some(json!({"emoji": "x"})),
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Pins: moderators and up.
    let (status, _) = s.user(&w.bob, Method::POST, &w.msg(&id, "/pin"), None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, pinned) = s.user(&w.alice, Method::POST, &w.msg(&id, "/pin"), None).await?;
    assert_eq!((status, pinned["pinned"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(pinned["pinnedBy"], "alice");
    let pins_path = format!("/api/channels/{}/messages/pins", w.group);
    let (_, pins) = s.user(&w.carol, Method::GET, &pins_path, None).await?;
    assert_eq!(pins["messages"][0]["id"].as_str(), Some(id.as_str()));
    let (_, unpinned) = s
        .user(&w.alice, Method::DELETE, &w.msg(&id, "/pin"), None)
        .await?;
    assert_eq!(unpinned["pinned"], false);
    let (_, pins) = s.user(&w.carol, Method::GET, &pins_path, None).await?;
    assert_eq!(pins["messages"], json!([]));

    // Delete: the author or a moderator; a soft delete keeps the seq.
    let (status, _) = s.user(&w.carol, Method::DELETE, &w.msg(&id, ""), None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.user(&w.bob, Method::DELETE, &w.msg(&id, ""), None).await?;
    assert_eq!(status, StatusCode::OK);
    let (_, gone) = s.user(&w.alice, Method::GET, &w.msg(&id, ""), None).await?;
    assert_eq!(
        (gone["type"].as_str(), gone["text"].clone(), gone["seq"].clone()),
        (Some("deleted"), Value::Null, m1["seq"].clone())
    );
    assert!(gone["deletedAt"].is_string());
    for (method, path) in [(Method::DELETE, w.msg(&id, "")), (Method::PATCH, w.msg(&id, ""))] {
        let (status, _) = s.user(&w.bob, method, &path, edit("again")).await?;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let carols = w.send(&w.carol, "moderate me").await?;
    let (status, _) = s
        .user(&w.alice, Method::DELETE, &w.msg(&str_of(&carols, "id"), ""), None)
        .await?;
    assert_eq!(status, StatusCode::OK, "the owner moderates");

    w.assert_outbox_has(&[
        "message.updated",
        "message.deleted",
        "reaction.added",
        "reaction.removed",
    ])
    .await?;
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn channels_are_managed_read_marked_typed_and_ensured() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let channel = format!("/api/channels/{}", w.group);

    // Update: admins and owners.
    let (status, _) = s
        .user(&w.bob, Method::PATCH, &channel, Some(json!({"name": "x"})))
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s.user(&w.alice, Method::PATCH, &channel, Some(json!({}))).await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    let (status, updated) = s
        .user(
            &w.alice,
            Method::PATCH,
            &channel,
            Some(json!({"name": "Ward 4", "config": {"a": 1}})),
        )
        .await?;
    assert_eq!(
        (status, updated["name"].as_str()),
        (StatusCode::OK, Some("Ward 4"))
    );
    assert_eq!(updated["config"]["a"], 1);

    // Roles: admins grant up to their rank, never over an equal or higher one.
    let role = |who: &str| format!("{channel}/members/{who}");
    let (status, _) = s
        .user(
            &w.alice,
            Method::PATCH,
            &role("bob"),
            Some(json!({"role": "admin"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .user(
            &w.bob,
            Method::PATCH,
            &role("carol"),
            Some(json!({"role": "moderator"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .user(
            &w.bob,
            Method::PATCH,
            &role("alice"),
            Some(json!({"role": "member"})),
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .user(
            &w.bob,
            Method::PATCH,
            &role("carol"),
            Some(json!({"role": "owner"})),
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .user(
            &w.alice,
            Method::PATCH,
            &role("carol"),
            Some(json!({"role": "root"})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("role"))
    );
    let (status, _) = s
        .user(
            &w.alice,
            Method::PATCH,
            &role("dave"),
            Some(json!({"role": "member"})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, members) = s
        .user(&w.alice, Method::GET, &format!("{channel}/members"), None)
        .await?;
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .map(|m| m.iter().map(|m| (str_of(m, "id"), str_of(m, "role"))).collect())
        .unwrap_or_default();
    assert!(
        roles.contains(&("bob".into(), "admin".into()))
            && roles.contains(&("carol".into(), "moderator".into())),
        "{roles:?}"
    );

    // Read state: a mark per member, unread counts follow.
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(w.send(&w.bob, &format!("r{i}")).await?);
    }
    let unread = |token: &String| {
        let token = token.clone();
        async move {
            s.user(&token, Method::GET, "/api/channels/unread-count", None)
                .await
        }
    };
    assert_eq!(unread(&w.alice).await?.1["count"], 3);
    let read = format!("{channel}/read");
    let (status, body) = s
        .user(
            &w.alice,
            Method::POST,
            &read,
            Some(json!({"messageId": sent[1]["id"]})),
        )
        .await?;
    assert_eq!((status, body["lastReadSeq"].as_i64()), (StatusCode::OK, Some(2)));
    assert_eq!(unread(&w.alice).await?.1["count"], 1);
    let (_, shown) = s.user(&w.alice, Method::GET, &channel, None).await?;
    assert_eq!(
        (shown["lastReadSeq"].as_i64(), shown["unreadCount"].as_i64()),
        (Some(2), Some(1))
    );
    let (status, body) = s
        .call(
            Method::POST,
            &read,
            &[("Authorization", &format!("Bearer {}", w.alice))],
            None,
        )
        .await?;
    assert_eq!((status, body["lastReadSeq"].as_i64()), (StatusCode::OK, Some(3)));
    assert_eq!(unread(&w.alice).await?.1["count"], 0);
    let (status, body) = s
        .user(
            &w.alice,
            Method::POST,
            &read,
            Some(json!({"messageId": uuid::Uuid::now_v7()})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("messageId"))
    );
    let (status, _) = s.user(&w.dave, Method::POST, &read, Some(json!({}))).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Typing is published straight to Centrifugo (no outbox).
    let typing = format!("{channel}/typing");
    let (status, body) = s
        .user(&w.carol, Method::POST, &typing, Some(json!({"typing": true})))
        .await?;
    assert_eq!((status, body["success"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, _) = s
        .user(&w.dave, Method::POST, &typing, Some(json!({"typing": true})))
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s.user(&w.carol, Method::POST, &typing, Some(json!({}))).await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("typing"))
    );
    let chat = format!("chat:{}:{}", w.app, w.group);
    let typed = history(&chat).await?;
    assert!(
        typed
            .iter()
            .any(|e| e["type"] == "typing.start" && e["payload"]["userId"] == "carol"),
        "{typed:?}"
    );
    assert!(!w.outbox_types().await?.iter().any(|t| t.starts_with("typing")));

    // Removal: lower ranks only, or oneself; DMs are fixed.
    let (status, _) = s.user(&w.carol, Method::DELETE, &role("bob"), None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.user(&w.bob, Method::DELETE, &role("carol"), None).await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.user(&w.carol, Method::GET, &channel, None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.user(&w.bob, Method::DELETE, &role("bob"), None).await?;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = s.user(&w.alice, Method::GET, &channel, None).await?;
    assert_eq!(shown["memberCount"], 1);
    let (status, _) = s.user(&w.alice, Method::DELETE, &role("dave"), None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Ensure endpoints: app server key only, idempotent.
    let api_key = [("X-API-Key", w.key.as_str())];
    let dm = json!({"requesterUserId": "alice", "peerUserId": "dave"});
    let (status, first) = s
        .call(
            Method::POST,
            "/api/channels/dm/ensure",
            &api_key,
            Some(dm.clone()),
        )
        .await?;
    assert_eq!(
        (status, first["action"].as_str()),
        (StatusCode::CREATED, Some("created")),
        "{first}"
    );
    let (status, again) = s
        .call(
            Method::POST,
            "/api/channels/dm/ensure",
            &api_key,
            Some(dm.clone()),
        )
        .await?;
    assert_eq!(
        (status, again["created"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    assert_eq!(again["channel"]["id"], first["channel"]["id"]);
    let (status, _) = s
        .call(
            Method::POST,
            "/api/channels/dm/ensure",
            &api_key,
            Some(json!({"requesterUserId": "alice", "peerUserId": "zed"})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .user(&w.alice, Method::POST, "/api/channels/dm/ensure", Some(dm))
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let group = json!({"externalId": "crm-7", "name": "Care team", "memberIds": ["alice", "dave"]});
    let (status, g1) = s
        .call(
            Method::POST,
            "/api/channels/group/ensure",
            &api_key,
            Some(group.clone()),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{g1}");
    assert_eq!(
        (
            g1["channel"]["memberCount"].as_i64(),
            g1["channel"]["role"].as_str()
        ),
        (Some(2), Some("owner"))
    );
    let (status, g2) = s
        .call(Method::POST, "/api/channels/group/ensure", &api_key, Some(group))
        .await?;
    assert_eq!(
        (status, g2["channel"]["id"].clone()),
        (StatusCode::OK, g1["channel"]["id"].clone())
    );
    let (status, body) = s
        .call(
            Method::POST,
            "/api/channels/group/ensure",
            &api_key,
            Some(json!({"memberIds": []})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("memberIds"))
    );

    // Delete: the owner only.
    let (status, _) = s.user(&w.dave, Method::DELETE, &channel, None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.user(&w.alice, Method::DELETE, &channel, None).await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.user(&w.alice, Method::GET, &channel, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.assert_outbox_has(&[
        "channel.updated",
        "channel.deleted",
        "channel.member_left",
        "read.updated",
        "channel.unread_changed",
    ])
    .await?;
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn users_have_profiles_a_directory_blocks_and_deletion() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let (status, me) = s.user(&w.alice, Method::GET, "/api/users/me", None).await?;
    assert_eq!(
        (status, me["id"].as_str(), me["name"].as_str()),
        (StatusCode::OK, Some("alice"), Some("alice"))
    );
    let (status, me) = s
        .user(
            &w.alice,
            Method::PATCH,
            "/api/users/me",
            Some(json!({"name": "Alice A", "custom": {"team": "x"}})),
        )
        .await?;
    assert_eq!(
        (status, me["name"].as_str(), me["custom"]["team"].as_str()),
        (StatusCode::OK, Some("Alice A"), Some("x"))
    );
    for (body, field) in [
        (json!({}), "body"),
        (json!({"bogus": 1}), "bogus"),
        (json!({"image": "ftp://x"}), "image"),
        (json!({"name": "n".repeat(256)}), "name"),
    ] {
        let (status, err) = s
            .user(&w.alice, Method::PATCH, "/api/users/me", Some(body.clone()))
            .await?;
        assert_eq!(
            (status, error_of(&err).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}"
        );
    }
    let (status, bob) = s.user(&w.alice, Method::GET, "/api/users/bob", None).await?;
    assert_eq!((status, bob["id"].as_str()), (StatusCode::OK, Some("bob")));
    let (status, _) = s.user(&w.alice, Method::GET, "/api/users/zed", None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let ids = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .map(|u| u.iter().map(|u| str_of(u, "id")).collect())
            .unwrap_or_default()
    };
    let (_, all) = s.user(&w.alice, Method::GET, "/api/users", None).await?;
    assert_eq!(ids(&all), ["alice", "bob", "carol", "dave"]);
    let (_, some) = s.user(&w.alice, Method::GET, "/api/users?q=BO", None).await?;
    assert_eq!(ids(&some), ["bob"]);
    let (_, none) = s.user(&w.alice, Method::GET, "/api/users?q=%25", None).await?;
    assert!(ids(&none).is_empty(), "% is literal");
    let (_, paged) = s
        .user(&w.alice, Method::GET, "/api/users?limit=2&offset=1", None)
        .await?;
    assert_eq!(ids(&paged), ["bob", "carol"]);

    // Blocks: listed, and no DM between the two while they last.
    let (status, _) = s
        .user(&w.alice, Method::POST, "/api/users/dave/block", None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (_, blocked) = s
        .user(&w.alice, Method::GET, "/api/users/me/blocked", None)
        .await?;
    assert_eq!(ids(&blocked), ["dave"]);
    let (status, body) = s
        .user(
            &w.dave,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["alice"]})),
        )
        .await?;
    assert_eq!(code(status, &body), (StatusCode::FORBIDDEN, "BLOCKED".into()));
    let (status, _) = s
        .user(&w.alice, Method::POST, "/api/users/alice/block", None)
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .user(&w.alice, Method::POST, "/api/users/zed/block", None)
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .user(&w.alice, Method::DELETE, "/api/users/dave/block", None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .user(&w.alice, Method::DELETE, "/api/users/dave/block", None)
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .user(
            &w.dave,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["alice"]})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED);

    // Deletion: the app server's key only; the user's tokens die with it.
    let (status, _) = s.user(&w.alice, Method::DELETE, "/api/users/carol", None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let key = [("X-API-Key", w.key.as_str())];
    let (status, body) = s.call(Method::DELETE, "/api/users/carol", &key, None).await?;
    assert_eq!((status, body["success"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, _) = s.user(&w.carol, Method::GET, "/api/users/me", None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.user(&w.alice, Method::GET, "/api/users/carol", None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call(Method::DELETE, "/api/users/carol", &key, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn search_finds_words_in_visible_channels_only() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    w.send(&w.bob, "the quick brown fox jumps").await?;
    let gone = w.send(&w.bob, "a deleted fox").await?;
    s.user(&w.bob, Method::DELETE, &w.msg(&str_of(&gone, "id"), ""), None)
        .await?;
    let (_, private) = s
        .user(
            &w.dave,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "private", "name": "p"})),
        )
        .await?;
    let (_, public) = s
        .user(
            &w.dave,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "public", "name": "lobby"})),
        )
        .await?;
    for (channel, text) in [(&private, "secret fox"), (&public, "public fox")] {
        let (status, _) = s
            .user(
                &w.dave,
                Method::POST,
                &format!("/api/channels/{}/messages", str_of(channel, "id")),
                Some(json!({"text": text})),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    let texts = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .map(|m| m.iter().map(|m| str_of(m, "text")).collect())
            .unwrap_or_default()
    };
    let (status, found) = s.user(&w.alice, Method::GET, "/api/search?q=fox", None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(texts(&found), ["public fox", "the quick brown fox jumps"]);
    let (_, found) = s
        .user(&w.alice, Method::GET, "/api/search?q=quick%20jumps", None)
        .await?;
    assert_eq!(texts(&found).len(), 1);
    let (_, found) = s
        .user(&w.alice, Method::GET, "/api/search?q=elephant", None)
        .await?;
    assert!(texts(&found).is_empty());
    let (_, found) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("/api/channels/{}/search?q=fox", w.group),
            None,
        )
        .await?;
    assert_eq!(texts(&found), ["the quick brown fox jumps"]);
    let (status, body) = s.user(&w.alice, Method::GET, "/api/search", None).await?;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("q"))
    );
    let (status, _) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("/api/channels/{}/search?q=fox", str_of(&private, "id")),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn another_apps_credentials_reach_none_of_the_new_routes() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let m = w.send(&w.bob, "tenant fox").await?;
    let id = str_of(&m, "id");
    let (_, other_key) = s.create_app("B").await?;
    // Same user id in the other app: only the app of the token counts.
    let eve = s.token(&other_key, "alice").await?;
    let channel = format!("/api/channels/{}", w.group);
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, w.msg(&id, ""), None),
        (Method::PATCH, w.msg(&id, ""), Some(json!({"text": "x"}))),
        (Method::DELETE, w.msg(&id, ""), None),
        (Method::GET, w.msg(&id, "/thread"), None),
        (Method::POST, w.msg(&id, "/thread"), Some(json!({"text": "x"}))),
        (
            Method::POST,
            w.msg(&id, "/reactions"),
            Some(json!({"emoji": "x"})),
        ),
        (Method::POST, w.msg(&id, "/pin"), None),
        (Method::GET, format!("{channel}/messages/pins"), None),
        (Method::PATCH, channel.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, channel.clone(), None),
        (
            Method::PATCH,
            format!("{channel}/members/bob"),
            Some(json!({"role": "admin"})),
        ),
        (Method::DELETE, format!("{channel}/members/bob"), None),
        (Method::POST, format!("{channel}/read"), Some(json!({}))),
        (
            Method::POST,
            format!("{channel}/typing"),
            Some(json!({"typing": true})),
        ),
        (Method::GET, format!("{channel}/search?q=fox"), None),
        (Method::GET, "/api/users/bob".to_owned(), None),
        (Method::POST, "/api/users/bob/block".to_owned(), None),
    ];
    for (method, path, body) in cases {
        let (status, reply) = s.user(&eve, method.clone(), &path, body).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {reply}");
    }
    let (_, found) = s.user(&eve, Method::GET, "/api/search?q=fox", None).await?;
    assert_eq!(found["messages"], json!([]));
    let (_, users) = s.user(&eve, Method::GET, "/api/users", None).await?;
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
    let key = [("X-API-Key", other_key.as_str())];
    let (status, _) = s
        .call(
            Method::POST,
            "/api/channels/dm/ensure",
            &key,
            Some(json!({"requesterUserId": "alice", "peerUserId": "bob"})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call(Method::DELETE, "/api/users/bob", &key, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing of app A changed.
    let (_, still) = s.user(&w.alice, Method::GET, &w.msg(&id, ""), None).await?;
    assert_eq!(
        (still["text"].as_str(), still["pinned"].as_bool()),
        (Some("tenant fox"), Some(false))
    );
    let (status, _) = s.user(&w.bob, Method::GET, "/api/users/me", None).await?;
    assert_eq!(status, StatusCode::OK);
    w.s.cleanup().await;
    Ok(())
}
