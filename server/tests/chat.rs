//! Channels and messages: creation, visibility, membership, seq under concurrency,
//! idempotent sends, paging, the outbox, and tenant isolation over HTTP.

mod common;

use std::collections::BTreeSet;

use chatsdk_server::storage::begin_tenant;
use common::{TestResult, TestServer, error_of, str_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

struct World {
    server: TestServer,
    app: String,
    key: String,
    alice: String,
    bob: String,
    carol: String,
}

async fn world() -> Result<World, Box<dyn std::error::Error + Send + Sync>> {
    let server = TestServer::start().await?;
    let (app, key) = server.create_app("A").await?;
    let alice = server.token(&key, "alice").await?;
    let bob = server.token(&key, "bob").await?;
    let carol = server.token(&key, "carol").await?;
    Ok(World {
        server,
        app,
        key,
        alice,
        bob,
        carol,
    })
}

fn messages_path(channel: &Value) -> String {
    format!(
        "/api/channels/{}/messages",
        channel["id"].as_str().unwrap_or_default()
    )
}

fn seqs(page: &Value) -> Vec<i64> {
    page["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["seq"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn channels_are_created_listed_and_guarded() -> TestResult {
    let w = world().await?;
    let s = &w.server;

    // A DM is unique per pair, whoever creates it.
    let (status, dm) = s
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["bob"]})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{dm}");
    assert_eq!(
        (
            dm["type"].as_str(),
            dm["role"].as_str(),
            dm["memberCount"].as_i64()
        ),
        (Some("messaging"), Some("owner"), Some(2))
    );
    assert!(
        dm["cid"]
            .as_str()
            .unwrap_or_default()
            .starts_with("messaging:dm:")
    );
    let (status, again) = s
        .user(
            &w.bob,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "messaging", "memberIds": ["alice"]})),
        )
        .await?;
    assert_eq!((status, again["id"].clone()), (StatusCode::OK, dm["id"].clone()));

    // Bad input names the field; unknown users are 404.
    for (body, field) in [
        (json!({"memberIds": []}), "memberIds"),
        (json!({"memberIds": ["alice"]}), "memberIds"),
        (json!({"type": "secret"}), "type"),
        (json!({"type": "group", "owner": "x"}), "owner"),
        (json!({"type": "group", "memberIds": "bob"}), "memberIds"),
    ] {
        let (status, err) = s
            .user(&w.alice, Method::POST, "/api/channels", Some(body.clone()))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {err}");
        assert_eq!(error_of(&err).1.as_deref(), Some(field), "{body} → {err}");
    }
    let (status, _) = s
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["nobody"]})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Idempotency key: one group, however often it is created.
    let group_body =
        json!({"type": "group", "name": "Ward 3", "memberIds": ["bob"], "idempotencyKey": "ward-3"});
    let (status, group) = s
        .user(&w.alice, Method::POST, "/api/channels", Some(group_body.clone()))
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, same) = s
        .user(&w.alice, Method::POST, "/api/channels", Some(group_body))
        .await?;
    assert_eq!(
        (status, same["id"].clone()),
        (StatusCode::OK, group["id"].clone())
    );
    let (status, public) = s
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "public", "name": "Lobby"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED);

    // Carol sees only the public channel; alice sees all three, members inlined for DM/group.
    let (_, carol_list) = s.user(&w.carol, Method::GET, "/api/channels", None).await?;
    let ids = |list: &Value| -> BTreeSet<String> {
        list["channels"]
            .as_array()
            .map(|c| c.iter().map(|c| str_of(c, "id")).collect())
            .unwrap_or_default()
    };
    assert_eq!(ids(&carol_list), BTreeSet::from([str_of(&public, "id")]));
    let (_, alice_list) = s.user(&w.alice, Method::GET, "/api/channels", None).await?;
    assert_eq!(ids(&alice_list).len(), 3);
    let listed_group = alice_list["channels"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == group["id"]))
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed_group["members"].as_array().map(Vec::len), Some(2));
    let (_, only_groups) = s
        .user(&w.alice, Method::GET, "/api/channels?type=group", None)
        .await?;
    assert_eq!(ids(&only_groups), BTreeSet::from([str_of(&group, "id")]));

    // Get and members: private channels refuse non-members, unknown ids are 404.
    let group_path = format!("/api/channels/{}", str_of(&group, "id"));
    let (status, got) = s.user(&w.bob, Method::GET, &group_path, None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (got["role"].as_str(), got["members"].as_array().map(Vec::len)),
        (Some("member"), Some(2))
    );
    assert_eq!(
        s.user(&w.carol, Method::GET, &group_path, None).await?.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.user(&w.carol, Method::GET, &format!("{group_path}/members"), None)
            .await?
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.user(
            &w.alice,
            Method::GET,
            &format!("/api/channels/{}", Uuid::new_v4()),
            None
        )
        .await?
        .0,
        StatusCode::NOT_FOUND
    );
    let (status, err) = s.user(&w.alice, Method::GET, "/api/channels/xyz", None).await?;
    assert_eq!(
        (status, error_of(&err).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("channelId"))
    );
    let (status, public_view) = s
        .user(
            &w.carol,
            Method::GET,
            &format!("/api/channels/{}", str_of(&public, "id")),
            None,
        )
        .await?;
    assert_eq!(
        (status, public_view["role"].clone()),
        (StatusCode::OK, Value::Null)
    );

    // Adding members: moderators and up only, never to a DM.
    let members_path = format!("{group_path}/members");
    assert_eq!(
        s.user(
            &w.bob,
            Method::POST,
            &members_path,
            Some(json!({"userId": "carol"}))
        )
        .await?
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, added) = s
        .user(
            &w.alice,
            Method::POST,
            &members_path,
            Some(json!({"userIds": ["carol", "bob"]})),
        )
        .await?;
    assert_eq!((status, added["addedCount"].as_i64()), (StatusCode::OK, Some(1)));
    let (status, members) = s.user(&w.carol, Method::GET, &members_path, None).await?;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .map(|m| m.iter().map(|m| (str_of(m, "id"), str_of(m, "role"))).collect())
        .unwrap_or_default();
    assert_eq!(
        roles,
        [("alice", "owner"), ("bob", "member"), ("carol", "member")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let dm_members = format!("/api/channels/{}/members", str_of(&dm, "id"));
    assert_eq!(
        s.user(
            &w.alice,
            Method::POST,
            &dm_members,
            Some(json!({"userId": "carol"}))
        )
        .await?
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.user(&w.alice, Method::POST, &members_path, Some(json!({})))
            .await?
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.user(
            &w.alice,
            Method::POST,
            &members_path,
            Some(json!({"userId": "ghost"}))
        )
        .await?
        .0,
        StatusCode::NOT_FOUND
    );
    w.server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn messages_get_sequences_pages_and_unread_counts() -> TestResult {
    let w = world().await?;
    let s = &w.server;
    let (_, dm) = s
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["bob"]})),
        )
        .await?;
    let path = messages_path(&dm);

    let (status, first) = s
        .user(
            &w.alice,
            Method::POST,
            &path,
            Some(json!({"text": "hello", "clientMsgId": "c-1"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (
            first["seq"].as_i64(),
            first["text"].as_str(),
            first["clientMsgId"].as_str()
        ),
        (Some(1), Some("hello"), Some("c-1"))
    );
    assert_eq!(
        (
            first["userId"].as_str(),
            first["user"]["name"].as_str(),
            first["type"].as_str()
        ),
        (Some("alice"), Some("alice"), Some("regular"))
    );
    assert_eq!(first["channelId"], dm["id"]);

    // Same clientMsgId again: the same message, nothing new.
    let (status, dup) = s
        .user(
            &w.alice,
            Method::POST,
            &path,
            Some(json!({"text": "hello", "clientMsgId": "c-1"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        dup,
        json!({"id": first["id"], "seq": 1, "status": "sent", "duplicate": true})
    );

    for i in 2..=7 {
        let (status, m) = s
            .user(
                &w.bob,
                Method::POST,
                &path,
                Some(json!({"text": format!("m{i}")})),
            )
            .await?;
        assert_eq!((status, m["seq"].as_i64()), (StatusCode::CREATED, Some(i)));
    }
    // A thread reply takes a seq but stays out of the channel list.
    let (status, reply) = s
        .user(
            &w.bob,
            Method::POST,
            &path,
            Some(json!({"text": "reply", "parentId": first["id"]})),
        )
        .await?;
    assert_eq!((status, reply["seq"].as_i64()), (StatusCode::CREATED, Some(8)));

    let (status, page) = s.user(&w.alice, Method::GET, &path, None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (seqs(&page), page["maxSeq"].as_i64(), page["hasMore"].as_bool()),
        ((1..=7).collect(), Some(8), Some(false))
    );
    let (_, latest) = s
        .user(&w.alice, Method::GET, &format!("{path}?limit=3"), None)
        .await?;
    assert_eq!(
        (seqs(&latest), latest["hasMore"].as_bool()),
        (vec![5, 6, 7], Some(true))
    );
    let oldest_shown = latest["messages"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, older) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("{path}?limit=3&before={oldest_shown}"),
            None,
        )
        .await?;
    assert_eq!(
        (seqs(&older), older["hasMore"].as_bool()),
        (vec![2, 3, 4], Some(true))
    );
    let (_, since) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("{path}?since_seq=4&limit=2"),
            None,
        )
        .await?;
    assert_eq!(
        (seqs(&since), since["hasMore"].as_bool()),
        (vec![5, 6], Some(true))
    );
    let (_, tail) = s
        .user(&w.alice, Method::GET, &format!("{path}?since_seq=6"), None)
        .await?;
    assert_eq!((seqs(&tail), tail["hasMore"].as_bool()), (vec![7], Some(false)));
    let (_, after) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("{path}?after={oldest_shown}"),
            None,
        )
        .await?;
    assert_eq!(seqs(&after), vec![6, 7]);
    let (status, err) = s
        .user(
            &w.alice,
            Method::GET,
            &format!("{path}?before={}", Uuid::new_v4()),
            None,
        )
        .await?;
    assert_eq!(
        (status, error_of(&err).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("before"))
    );
    let (status, _) = s
        .user(&w.alice, Method::GET, &format!("{path}?limit=abc"), None)
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Unread: alice read up to her own message (seq 1); bob's 7 later messages are unread.
    let (_, unread) = s
        .user(&w.alice, Method::GET, "/api/channels/unread-count", None)
        .await?;
    assert_eq!(unread["count"], 7);
    let (_, bob_unread) = s
        .user(&w.bob, Method::GET, "/api/channels/unread-count", None)
        .await?;
    assert_eq!(bob_unread["count"], 0);

    // Bad sends and strangers.
    for (body, field) in [
        (json!({"text": ""}), "text"),
        (json!({"text": "x".repeat(10_001)}), "text"),
        (json!({"text": "x", "html": "<b>"}), "html"),
        (json!({"text": "x", "parentId": Uuid::new_v4()}), "parentId"),
        (json!({"text": "x", "parentId": reply["id"]}), "parentId"),
        (
            json!({"text": "x", "attachments": [{"type": "file", "url": "ftp://x"}]}),
            "attachments[0].url",
        ),
    ] {
        let (status, err) = s.user(&w.alice, Method::POST, &path, Some(body.clone())).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(error_of(&err).1.as_deref(), Some(field), "{err}");
    }
    assert_eq!(
        s.user(&w.carol, Method::POST, &path, Some(json!({"text": "hi"})))
            .await?
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.user(&w.carol, Method::GET, &path, None).await?.0,
        StatusCode::FORBIDDEN
    );
    let nowhere = format!("/api/channels/{}/messages", Uuid::new_v4());
    assert_eq!(
        s.user(&w.alice, Method::POST, &nowhere, Some(json!({"text": "hi"})))
            .await?
            .0,
        StatusCode::NOT_FOUND
    );
    // Failed sends left no gap.
    let (_, m) = s
        .user(
            &w.alice,
            Method::POST,
            &path,
            Some(json!({"text": "after failures"})),
        )
        .await?;
    assert_eq!(m["seq"], 9);

    // Each message.new went to the outbox in its transaction (with the message payload).
    let app: Uuid = w.app.parse()?;
    let mut tx = begin_tenant(s.pool(), app).await?;
    let events: Vec<(String, Vec<String>, Value)> = sqlx::query_as(
        "SELECT event_type, channels, payload FROM outbox WHERE event_type = 'message.new' ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    assert_eq!(events.len(), 9);
    let chat = format!("chat:{}:{}", w.app, str_of(&dm, "id"));
    assert!(
        events
            .iter()
            .all(|(_, channels, _)| channels == &vec![chat.clone()])
    );
    assert_eq!(events[0].2["type"], "message.new");
    assert_eq!(events[0].2["payload"]["message"]["text"], "hello");
    w.server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn public_channels_auto_join_on_send() -> TestResult {
    let w = world().await?;
    let s = &w.server;
    let (_, lobby) = s
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "public", "name": "Lobby"})),
        )
        .await?;
    let path = messages_path(&lobby);
    assert_eq!(
        s.user(&w.carol, Method::GET, &path, None).await?.0,
        StatusCode::OK
    );
    // A refused first send joins nobody (the join is part of the send).
    let channel_path = format!("/api/channels/{}", str_of(&lobby, "id"));
    let bad_parent = json!({"text": "hi", "parentId": Uuid::new_v4()});
    let (status, _) = s.user(&w.carol, Method::POST, &path, Some(bad_parent)).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, got) = s.user(&w.carol, Method::GET, &channel_path, None).await?;
    assert_eq!(
        (got["role"].as_str(), got["memberCount"].as_i64()),
        (None, Some(1))
    );
    let (status, m) = s
        .user(&w.carol, Method::POST, &path, Some(json!({"text": "hi all"})))
        .await?;
    assert_eq!((status, m["seq"].as_i64()), (StatusCode::CREATED, Some(1)));
    let (_, got) = s.user(&w.carol, Method::GET, &channel_path, None).await?;
    assert_eq!(
        (got["role"].as_str(), got["memberCount"].as_i64()),
        (Some("member"), Some(2))
    );
    w.server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn concurrent_senders_get_gap_free_sequences_and_retries_stay_single() -> TestResult {
    let w = world().await?;
    let (_, group) = w
        .server
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "memberIds": ["bob", "carol"]})),
        )
        .await?;
    let path = messages_path(&group);
    const TASKS: usize = 20;
    const PER_TASK: usize = 50;
    let tokens = [w.alice.clone(), w.bob.clone(), w.carol.clone()];
    let base = w.server.base.clone();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (client, url, token) = (
            reqwest::Client::new(),
            format!("{base}{path}"),
            tokens[t % 3].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..PER_TASK {
                // Every message is sent twice with the same clientMsgId (a client retry).
                for attempt in 0..2 {
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"text": format!("t{t} m{i}"), "clientMsgId": format!("t{t}-m{i}")}))
                        .send()
                        .await?;
                    let status = response.status();
                    let body: Value = response.json().await?;
                    let expected = if attempt == 0 {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    assert_eq!(status, expected, "{body}");
                    if attempt == 0 {
                        seen.push(body["seq"].as_i64().unwrap_or_default());
                    }
                }
            }
            Ok::<_, reqwest::Error>(seen)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seen = task.await??;
        // Each sender's own messages come out in increasing order.
        assert!(seen.windows(2).all(|p| p[0] < p[1]), "{seen:?}");
        all.extend(seen);
    }
    all.sort_unstable();
    let total = (TASKS * PER_TASK) as i64;
    assert_eq!(all, (1..=total).collect::<Vec<_>>());

    let app: Uuid = w.app.parse()?;
    let mut tx = begin_tenant(w.server.pool(), app).await?;
    let (count, max, distinct): (i64, Option<i64>, i64) =
        sqlx::query_as("SELECT count(*), max(seq), count(DISTINCT client_msg_id) FROM message")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    assert_eq!((count, max, distinct), (total, Some(total), total));

    // Paging back from the latest page with `before`, then forward again with `since_seq`
    // (0 means "latest", as upstream), each visits every message exactly once.
    let mut collected = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let cursor = before
            .as_deref()
            .map(|b| format!("&before={b}"))
            .unwrap_or_default();
        let (_, page) = w
            .server
            .user(&w.bob, Method::GET, &format!("{path}?limit=200{cursor}"), None)
            .await?;
        let got = seqs(&page);
        assert!(got.windows(2).all(|p| p[1] == p[0] + 1), "page not contiguous");
        collected.splice(0..0, got);
        before = page["messages"][0]["id"].as_str().map(str::to_owned);
        if page["hasMore"] != true {
            break;
        }
    }
    assert_eq!(collected, (1..=total).collect::<Vec<_>>());
    let mut since = 1;
    let mut pages = 0;
    loop {
        let (_, page) = w
            .server
            .user(
                &w.bob,
                Method::GET,
                &format!("{path}?since_seq={since}&limit=200"),
                None,
            )
            .await?;
        let got = seqs(&page);
        assert_eq!(
            got,
            ((since + 1)..=(since + got.len() as i64)).collect::<Vec<_>>()
        );
        since += got.len() as i64;
        pages += 1;
        if page["hasMore"] != true {
            break;
        }
    }
    assert_eq!((since, pages), (total, (total as usize - 1).div_ceil(200)));
    w.server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn another_apps_credentials_reach_nothing() -> TestResult {
    let w = world().await?;
    let s = &w.server;
    let (_, group) = s
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "group", "memberIds": ["bob"]})),
        )
        .await?;
    let (_, public) = s
        .user(
            &w.alice,
            Method::POST,
            "/api/channels",
            Some(json!({"type": "public"})),
        )
        .await?;
    s.user(
        &w.alice,
        Method::POST,
        &messages_path(&group),
        Some(json!({"text": "secret"})),
    )
    .await?;

    // App B has a user with the same id as A's owner.
    let (_, key_b) = s.create_app("B").await?;
    let mallory = s.token(&key_b, "alice").await?;
    for channel in [&group, &public] {
        let id = str_of(channel, "id");
        for (method, path, body) in [
            (Method::GET, format!("/api/channels/{id}"), None),
            (Method::GET, format!("/api/channels/{id}/members"), None),
            (
                Method::POST,
                format!("/api/channels/{id}/members"),
                Some(json!({"userId": "alice"})),
            ),
            (Method::GET, format!("/api/channels/{id}/messages"), None),
            (
                Method::POST,
                format!("/api/channels/{id}/messages"),
                Some(json!({"text": "intrusion"})),
            ),
        ] {
            let (status, body) = s.user(&mallory, method.clone(), &path, body).await?;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} → {body}");
        }
    }
    let (_, list) = s.user(&mallory, Method::GET, "/api/channels", None).await?;
    assert_eq!(list["channels"], json!([]));
    let (_, unread) = s
        .user(&mallory, Method::GET, "/api/channels/unread-count", None)
        .await?;
    assert_eq!(unread["count"], 0);
    // B cannot name A's users as members either.
    let (status, _) = s
        .user(
            &mallory,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["bob"]})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A's data is untouched.
    let (_, page) = s
        .user(&w.alice, Method::GET, &messages_path(&group), None)
        .await?;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1));
    let _ = &w.key;
    w.server.cleanup().await;
    Ok(())
}
