//! Migrations under concurrency, probes, row-level security and retention, against the real
//! PostgreSQL of the test environment.

mod common;

use chatsdk_server::domain::retention;
use chatsdk_server::storage::{begin_tenant, migrate, retention as retention_storage};
use common::{TestDb, TestResult, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn concurrent_migrate_runs_apply_each_migration_once() -> TestResult {
    let db = TestDb::create().await?;
    assert!(!migrate::pending(&db.pool).await?.is_empty());
    // Several "pods" at once, each on its own connection (the futures interleave on the
    // runtime; sqlx's migrator future cannot be `tokio::spawn`ed, see sqlx#1015).
    let pools: Vec<_> = (0..6).map(|_| db.pool.clone()).collect();
    for result in futures::future::join_all(pools.iter().map(migrate::run)).await {
        result?;
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(applied, migrate::migrator().iter().count() as i64);
    assert!(migrate::pending(&db.pool).await?.is_empty());
    // A later run finds nothing to do.
    migrate::run(&db.pool).await?;
    db.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn ready_needs_migrations_and_health_live_always_answer() -> TestResult {
    let server = TestServer::on(TestDb::create().await?, |_| {}).await?;
    let (status, body) = server.call(Method::GET, "/ready", &[], None).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["migrations"]["status"], "error");

    migrate::run(server.pool()).await?;
    let (status, body) = server.call(Method::GET, "/ready", &[], None).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);

    let (status, body) = server.call(Method::GET, "/health", &[], None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert!(
        body["uptime"].is_number() && body["timestamp"].is_string(),
        "{body}"
    );
    let (status, _) = server.call(Method::GET, "/live", &[], None).await?;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = server.call(Method::GET, "/no/such/route", &[], None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn ready_reports_an_unreachable_database() -> TestResult {
    let server = TestServer::start().await?;
    server.pool().close().await;
    let (status, body) = server.call(Method::GET, "/ready", &[], None).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "error");
    server.cleanup().await;
    Ok(())
}

/// Two apps with one user, channel and message each, written straight through storage.
async fn seed_two_apps(
    server: &TestServer,
) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
    let (a, key_a) = server.create_app("A").await?;
    let (b, key_b) = server.create_app("B").await?;
    for (key, other) in [(&key_a, "a2"), (&key_b, "b2")] {
        let token = server.token(key, "u1").await?;
        server.connect(key, other).await?;
        let (_, channel) = server
            .user(
                &token,
                Method::POST,
                "/api/channels",
                Some(json!({"memberIds": [other]})),
            )
            .await?;
        let path = format!(
            "/api/channels/{}/messages",
            channel["id"].as_str().unwrap_or_default()
        );
        let (status, _) = server
            .user(&token, Method::POST, &path, Some(json!({"text": "hello"})))
            .await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    Ok((a, b))
}

#[tokio::test]
async fn row_level_security_refuses_what_a_forgotten_filter_would_leak() -> TestResult {
    let server = TestServer::start().await?;
    let (a, b) = seed_two_apps(&server).await?;
    let (a, b): (Uuid, Uuid) = (a.parse()?, b.parse()?);
    let pool = server.pool();

    // The runtime role is an ordinary role: it cannot bypass RLS, and RLS is forced on owners.
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await?;
    assert!(!superuser && !bypass);
    let unforced: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relname = ANY($1) AND NOT (relrowsecurity AND relforcerowsecurity)",
    )
    .bind(["app_user", "auth_session", "channel", "channel_member", "message", "archived_messages", "reaction", "outbox", "audit_log"])
    .fetch_all(pool)
    .await?;
    assert!(unforced.is_empty(), "tables without forced RLS: {unforced:?}");

    // No tenant context: no tenant row is visible at all.
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM message")
        .fetch_one(pool)
        .await?;
    assert_eq!(visible, 0);

    // Inside A's context, queries without any app filter see A's rows only.
    let mut tx = begin_tenant(pool, a).await?;
    let apps: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT app_id FROM message")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(apps, vec![a]);
    let users: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT app_id FROM app_user")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(users, vec![a]);
    // Changing B's rows from A's context touches nothing.
    let changed = sqlx::query("UPDATE message SET text = 'pwned' WHERE app_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await?;
    assert_eq!(changed.rows_affected(), 0);
    tx.commit().await?;

    // Writing a row for B from A's context is refused by the policy's WITH CHECK.
    let mut tx = begin_tenant(pool, a).await?;
    let refused = sqlx::query("INSERT INTO app_user (app_id, id) VALUES ($1, 'intruder')")
        .bind(b)
        .execute(&mut *tx)
        .await;
    assert!(refused.is_err(), "insert into another tenant must fail");
    drop(tx);

    let mut tx = begin_tenant(pool, b).await?;
    let text: String = sqlx::query_scalar("SELECT text FROM message LIMIT 1")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(text, "hello");
    tx.commit().await?;

    // The setting is transaction-local: a pooled connection does not keep A's context.
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM app_user")
        .fetch_one(pool)
        .await?;
    assert_eq!(visible, 0);
    server.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn retention_archives_in_batches_and_survives_interruption() -> TestResult {
    let server = TestServer::start().await?;
    let (app, key) = server.create_app("retention").await?;
    let app: Uuid = app.parse()?;
    let token = server.token(&key, "alice").await?;
    server.connect(&key, "bob").await?;
    let (_, channel) = server
        .user(
            &token,
            Method::POST,
            "/api/channels",
            Some(json!({"memberIds": ["bob"]})),
        )
        .await?;
    let path = format!(
        "/api/channels/{}/messages",
        channel["id"].as_str().unwrap_or_default()
    );
    for i in 0..12 {
        let (status, _) = server
            .user(
                &token,
                Method::POST,
                &path,
                Some(json!({"text": format!("m{i}")})),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    // Age the first 9 messages by 40 days.
    let pool = server.pool();
    let mut tx = begin_tenant(pool, app).await?;
    sqlx::query("UPDATE message SET created_at = now() - interval '40 days' WHERE app_id = $1 AND seq <= 9")
        .bind(app)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    // An "interrupted" run: one batch of 4, then stop.
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    assert_eq!(retention_storage::archive_batch(pool, app, cutoff, 4).await?, 4);
    let counts = |pool: sqlx::PgPool| async move {
        let mut tx = begin_tenant(&pool, app).await?;
        let live: i64 = sqlx::query_scalar("SELECT count(*) FROM message")
            .fetch_one(&mut *tx)
            .await?;
        let archived: i64 = sqlx::query_scalar("SELECT count(*) FROM archived_messages")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>((live, archived))
    };
    assert_eq!(counts(pool.clone()).await?, (8, 4));

    // The re-run finishes the job and records it.
    let report = retention::run(pool, 30, 4).await?;
    assert_eq!((report.apps, report.archived, report.batches), (1, 5, 2));
    assert_eq!(counts(pool.clone()).await?, (3, 9));
    let mut tx = begin_tenant(pool, app).await?;
    let (action, metadata): (String, serde_json::Value) =
        sqlx::query_as("SELECT action, metadata FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut *tx)
            .await?;
    let archived_seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM archived_messages ORDER BY seq")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    assert_eq!(action, "retention.archive");
    assert_eq!(metadata["archived"], 5);
    assert_eq!(archived_seqs, (1..=9).collect::<Vec<i64>>());

    // Nothing left to do: a third run moves nothing and loses nothing.
    assert_eq!(retention::run(pool, 30, 4).await?.archived, 0);
    assert_eq!(counts(pool.clone()).await?, (3, 9));
    server.cleanup().await;
    Ok(())
}

/// Every table with an `app_id` column is tenant data under forced row-level security, except
/// the tenant registry (`app_api_key`, read before a tenant is known): a new table that forgets
/// its policy fails here, whoever adds it.
#[tokio::test]
async fn every_table_with_an_app_id_has_forced_row_level_security() -> TestResult {
    let db = common::TestDb::migrated().await?;
    let unprotected: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
           AND EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'app_id' AND NOT a.attisdropped)
           AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                    AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
         ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(
        unprotected,
        ["app_api_key"],
        "tenant tables without forced RLS and a policy"
    );
    db.cleanup().await;
    Ok(())
}
