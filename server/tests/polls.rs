//! Polls against the real PostgreSQL and Centrifugo: create on one's own message, vote,
//! change and withdraw votes, results in the shapes upstream's API and `usePolls` hook read,
//! `poll.*` events over a real WebSocket, anonymous and multi-choice rules, the end time,
//! hostile input, and another app.

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
    app: String,
    alice: Value,
    bob: String,
    carol: String,
    outsider: String,
    channel: String,
    message: String,
}

impl World {
    fn alice(&self) -> String {
        str_of(&self.alice, "token")
    }
}

async fn world() -> Result<World, Error> {
    let s = TestServer::start().await?;
    let (app, key) = s.create_app("A").await?;
    let alice = s.connect(&key, "alice").await?;
    let bob = s.token(&key, "bob").await?;
    let carol = s.token(&key, "carol").await?;
    let outsider = s.token(&key, "dave").await?;
    let (_, group) = s
        .user(
            &str_of(&alice, "token"),
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "memberIds": ["bob", "carol"]})),
        )
        .await?;
    let channel = str_of(&group, "id");
    let (_, message) = s
        .user(
            &str_of(&alice, "token"),
            Method::POST,
            &format!("/api/channels/{channel}/messages"),
            Some(json!({"text": "Where do we eat?"})),
        )
        .await?;
    Ok(World {
        s,
        app,
        alice,
        bob,
        carol,
        outsider,
        channel,
        message: str_of(&message, "id"),
    })
}

fn poll_body() -> Value {
    json!({
        "question": "Lunch?",
        "options": [{"id": "pizza", "text": "Pizza"}, {"id": "sushi", "text": "Sushi"}, {"id": "salad", "text": "Salad"}],
    })
}

#[tokio::test]
async fn members_vote_on_a_poll_and_hear_every_change() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let drainer = s.drainer(&TestEnv::get().centrifugo().api_url)?;
    let chat = format!("chat:{}:{}", w.app, w.channel);
    let mut ws = WsClient::connect(w.alice["_internal"]["wsToken"].as_str().unwrap_or_default()).await?;
    let (_, sub) = s
        .user(
            &w.alice(),
            Method::POST,
            "/api/realtime/subscription-token",
            Some(json!({"channel": chat})),
        )
        .await?;
    ws.subscribe(&chat, &str_of(&sub, "token")).await?;

    let create = format!("/api/channels/{}/messages/{}/polls", w.channel, w.message);
    let (status, poll) = s
        .user(&w.alice(), Method::POST, &create, Some(poll_body()))
        .await?;
    assert_eq!(status, StatusCode::OK, "{poll}");
    assert_eq!(poll["question"], "Lunch?");
    assert_eq!(poll["options"], poll_body()["options"]);
    assert_eq!(
        (poll["isAnonymous"].as_bool(), poll["isMultiChoice"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(poll["totalVotes"], 0);
    assert!(poll["endsAt"].is_null() && poll["createdAt"].is_string());
    let poll_id = str_of(&poll, "id");
    let created = ws.publications(&chat, 1, Duration::from_secs(10)).await?;
    assert_eq!(created[0]["type"], "poll.created");
    assert_eq!(created[0]["payload"]["messageId"], w.message.as_str());
    assert_eq!(created[0]["payload"]["channelId"], w.channel.as_str());
    assert_eq!(created[0]["payload"]["poll"]["id"], poll_id.as_str());
    assert_eq!(created[0]["payload"]["poll"]["totalVotes"], 0);
    // The message now names its poll.
    let (_, message) = s
        .user(
            &w.bob,
            Method::GET,
            &format!("/api/channels/{}/messages/{}", w.channel, w.message),
            None,
        )
        .await?;
    assert_eq!(message["pollId"], poll_id.as_str());
    // One poll per message.
    let (status, reply) = s
        .user(&w.alice(), Method::POST, &create, Some(poll_body()))
        .await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::CONFLICT, "POLL_EXISTS")
    );

    let vote = format!("/api/polls/{poll_id}/vote");
    let (status, voted) = s
        .user(&w.bob, Method::POST, &vote, Some(json!({"optionIds": ["pizza"]})))
        .await?;
    assert_eq!(
        (status, voted),
        (StatusCode::OK, json!({"success": true, "totalVotes": 1}))
    );
    let (_, voted) = s
        .user(
            &w.carol,
            Method::POST,
            &vote,
            Some(json!({"optionIds": ["sushi"]})),
        )
        .await?;
    assert_eq!(voted["totalVotes"], 2);
    // A new vote replaces the voter's previous one.
    let (_, voted) = s
        .user(
            &w.carol,
            Method::POST,
            &vote,
            Some(json!({"optionIds": ["pizza"]})),
        )
        .await?;
    assert_eq!(voted["totalVotes"], 2);
    let events = ws.publications(&chat, 3, Duration::from_secs(10)).await?;
    assert_eq!(
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["poll.voted"; 3]
    );
    assert_eq!(
        events[2]["payload"],
        json!({"channelId": w.channel, "pollId": poll_id, "userId": "carol", "optionIds": ["pizza"], "totalVotes": 2})
    );

    let (status, results) = s
        .user(
            &w.bob,
            Method::GET,
            &format!("/api/polls/{poll_id}/results"),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["id"], poll_id.as_str());
    assert_eq!(results["totalVotes"], 2);
    assert_eq!(results["userVotes"], json!(["pizza"]));
    let pizza = &results["options"][0];
    assert_eq!(
        (
            pizza["id"].as_str(),
            pizza["text"].as_str(),
            pizza["voteCount"].as_i64()
        ),
        (Some("pizza"), Some("Pizza"), Some(2))
    );
    let voters: Vec<&str> = pizza["voters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["userId"].as_str())
        .collect();
    assert_eq!(voters, ["carol", "bob"], "newest vote first");
    assert_eq!(pizza["voters"][0]["name"], "carol");
    assert_eq!(results["options"][1]["voteCount"], 0);
    assert_eq!(results["options"][1]["voters"], json!([]));
    // What upstream's usePolls hook reads (snake_case) is there too.
    assert_eq!(pizza["vote_count"], 2);
    assert_eq!(
        (
            results["is_anonymous"].clone(),
            results["is_multi_choice"].clone()
        ),
        (json!(false), json!(false))
    );
    assert_eq!(
        (results["total_votes"].clone(), results["user_votes"].clone()),
        (json!(2), json!(["pizza"]))
    );
    assert!(results["created_at"].is_string() && results.get("ends_at").is_some());

    // Withdrawing: counted once, announced once.
    let (status, body) = s.user(&w.bob, Method::DELETE, &vote, None).await?;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, _) = s.user(&w.bob, Method::DELETE, &vote, None).await?;
    assert_eq!(status, StatusCode::OK);
    let removed = ws.publications(&chat, 2, Duration::from_secs(3)).await?;
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(
        removed[0],
        json!({"type": "poll.vote_removed", "payload": {"channelId": w.channel, "pollId": poll_id, "userId": "bob", "totalVotes": 1}})
    );
    ws.close().await;
    drainer.stop().await;
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn anonymous_multi_choice_and_ended_polls_follow_their_rules() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let create = format!("/api/channels/{}/messages/{}/polls", w.channel, w.message);
    let mut body = poll_body();
    body["isAnonymous"] = json!(true);
    body["isMultiChoice"] = json!(true);
    let (_, poll) = s.user(&w.alice(), Method::POST, &create, Some(body)).await?;
    let poll_id = str_of(&poll, "id");
    let vote = format!("/api/polls/{poll_id}/vote");
    // Several options, repeats folded.
    let (status, voted) = s
        .user(
            &w.bob,
            Method::POST,
            &vote,
            Some(json!({"optionIds": ["pizza", "salad", "pizza"]})),
        )
        .await?;
    assert_eq!(
        (status, voted["totalVotes"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{voted}"
    );
    let (_, results) = s
        .user(
            &w.carol,
            Method::GET,
            &format!("/api/polls/{poll_id}/results"),
            None,
        )
        .await?;
    assert_eq!(results["options"][0]["voteCount"], 1);
    assert_eq!(results["options"][2]["voteCount"], 1);
    assert_eq!(
        results["options"][0]["voters"],
        Value::Null,
        "anonymous: no voters"
    );
    assert_eq!(results["userVotes"], json!([]));
    // The event does not name the voter either.
    let mut tx = s
        .pool()
        .begin_with("BEGIN; SELECT set_config('app.outbox_drainer', 'on', true)")
        .await?;
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE event_type = 'poll.voted' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    assert_eq!(payload["payload"]["userId"], Value::Null);
    assert!(payload["payload"].get("optionIds").is_none(), "{payload}");

    // A single-choice poll refuses two options; an ended one refuses votes.
    let (_, second) = s
        .user(
            &w.bob,
            Method::POST,
            &format!("/api/channels/{}/messages", w.channel),
            Some(json!({"text": "vote!"})),
        )
        .await?;
    let mut ended = poll_body();
    ended["endsAt"] = json!("2020-01-01T00:00:00Z");
    let (status, old) = s
        .user(
            &w.bob,
            Method::POST,
            &format!(
                "/api/channels/{}/messages/{}/polls",
                w.channel,
                str_of(&second, "id")
            ),
            Some(ended),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{old}");
    let (status, reply) = s
        .user(
            &w.carol,
            Method::POST,
            &format!("/api/polls/{}/vote", str_of(&old, "id")),
            Some(json!({"optionIds": ["pizza"]})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::BAD_REQUEST, "POLL_ENDED")
    );
    let (_, third) = s
        .user(
            &w.carol,
            Method::POST,
            &format!("/api/channels/{}/messages", w.channel),
            Some(json!({"text": "one only"})),
        )
        .await?;
    let (_, single) = s
        .user(
            &w.carol,
            Method::POST,
            &format!(
                "/api/channels/{}/messages/{}/polls",
                w.channel,
                str_of(&third, "id")
            ),
            Some(poll_body()),
        )
        .await?;
    let (status, reply) = s
        .user(
            &w.bob,
            Method::POST,
            &format!("/api/polls/{}/vote", str_of(&single, "id")),
            Some(json!({"optionIds": ["pizza", "sushi"]})),
        )
        .await?;
    assert_eq!(
        (status, error_of(&reply).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("optionIds"))
    );
    w.s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn polls_refuse_strangers_and_bad_input() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let create = format!("/api/channels/{}/messages/{}/polls", w.channel, w.message);
    // Only the author of the message attaches a poll; only members take part.
    let (status, _) = s.user(&w.bob, Method::POST, &create, Some(poll_body())).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .user(&w.outsider, Method::POST, &create, Some(poll_body()))
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (patch, field) in [
        (json!({"question": ""}), "question"),
        (json!({"question": "x".repeat(1001)}), "question"),
        (json!({"options": [{"id": "a", "text": "A"}]}), "options"),
        (
            json!({"options": [{"id": "a", "text": "A"}, {"id": "a", "text": "B"}]}),
            "options[1].id",
        ),
        (
            json!({"options": [{"id": "a", "text": "A"}, {"id": "b", "text": ""}]}),
            "options[1].text",
        ),
        (
            json!({"options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B", "color": "red"}]}),
            "options[1].color",
        ),
        (json!({"options": "a,b"}), "options"),
        (json!({"endsAt": "next week"}), "endsAt"),
        (json!({"isAnonymous": "yes"}), "isAnonymous"),
        (json!({"secret": true}), "secret"),
    ] {
        let mut body = poll_body();
        if let (Some(b), Some(p)) = (body.as_object_mut(), patch.as_object()) {
            b.extend(p.clone());
        }
        let (status, reply) = s.user(&w.alice(), Method::POST, &create, Some(body)).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{patch}: {reply}"
        );
    }
    let (_, poll) = s
        .user(&w.alice(), Method::POST, &create, Some(poll_body()))
        .await?;
    let poll_id = str_of(&poll, "id");
    let vote = format!("/api/polls/{poll_id}/vote");
    for (body, field) in [
        (json!({"optionIds": []}), "optionIds"),
        (json!({"optionIds": ["burger"]}), "optionIds"),
        (json!({"optionIds": "pizza"}), "optionIds"),
        (json!({}), "optionIds"),
    ] {
        let (status, reply) = s.user(&w.bob, Method::POST, &vote, Some(body.clone())).await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}"
        );
    }
    for (method, path) in [
        (Method::POST, vote.clone()),
        (Method::DELETE, vote.clone()),
        (Method::GET, format!("/api/polls/{poll_id}/results")),
    ] {
        let body = (method == Method::POST).then(|| json!({"optionIds": ["pizza"]}));
        let (status, _) = s.user(&w.outsider, method.clone(), &path, body).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let (status, reply) = s
        .user(&w.bob, Method::GET, "/api/polls/not-a-uuid/results", None)
        .await?;
    assert_eq!(
        (status, error_of(&reply).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("pollId"))
    );
    let (status, reply) = s
        .user(
            &w.bob,
            Method::GET,
            &format!("/api/polls/{}/results", uuid::Uuid::now_v7()),
            None,
        )
        .await?;
    assert_eq!(
        (status, error_of(&reply).0.as_str()),
        (StatusCode::NOT_FOUND, "POLL_NOT_FOUND")
    );
    w.s.cleanup().await;
    Ok(())
}

/// The cross-app cases of this group for the route-list test: `(method, path, body)` against
/// app A's channel, message and poll; every one is 404 to app B's user.
fn cross_app_cases(channel: &str, message: &str, poll: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            format!("/api/channels/{channel}/messages/{message}/polls"),
            Some(poll_body()),
        ),
        (
            Method::POST,
            format!("/api/polls/{poll}/vote"),
            Some(json!({"optionIds": ["pizza"]})),
        ),
        (Method::DELETE, format!("/api/polls/{poll}/vote"), None),
        (Method::GET, format!("/api/polls/{poll}/results"), None),
    ]
}

#[tokio::test]
async fn another_apps_user_reaches_no_poll() -> TestResult {
    let w = world().await?;
    let s = &w.s;
    let (_, poll) = s
        .user(
            &w.alice(),
            Method::POST,
            &format!("/api/channels/{}/messages/{}/polls", w.channel, w.message),
            Some(poll_body()),
        )
        .await?;
    let poll_id = str_of(&poll, "id");
    let (_, key_b) = s.create_app("B").await?;
    let eve = s.token(&key_b, "bob").await?;
    for (method, path, body) in cross_app_cases(&w.channel, &w.message, &poll_id) {
        let (status, reply) = s.user(&eve, method.clone(), &path, body).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {reply}");
    }
    let (_, results) = s
        .user(
            &w.bob,
            Method::GET,
            &format!("/api/polls/{poll_id}/results"),
            None,
        )
        .await?;
    assert_eq!(results["totalVotes"], 0);
    w.s.cleanup().await;
    Ok(())
}
