//! Test harness: each test gets its own database (created through the admin pool, owned by the
//! non-superuser `chatsdk` role, migrated) and its own server on a loopback port. The database
//! is dropped at the end, also when the test panics.
#![allow(dead_code)]

pub mod broker;
pub mod centrifugo;

use std::sync::Arc;

use chatsdk_server::audit::MemorySink;
use chatsdk_server::centrifugo::Centrifugo;
use chatsdk_server::drainer::{Drainer, DrainerConfig, DrainerHandle};
use chatsdk_server::storage::{self, migrate};
use chatsdk_server::{AppState, Config};
use chatsdk_testenv::{TestEnv, unique_name};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgPool};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123456789";

/// A fresh database owned by `chatsdk`, dropped on `cleanup` or drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    dropped: bool,
}

impl TestDb {
    pub async fn create() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let env = TestEnv::get();
        let name = unique_name("srv").replace('-', "_");
        let admin = env.pg_admin_pool().await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name} OWNER chatsdk")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let base = &env.endpoints.postgres.url;
        let (head, tail) = base.split_once('?').unwrap_or((base.as_str(), ""));
        let prefix = head.rsplit_once('/').map_or(head, |(p, _)| p);
        let url = format!("{prefix}/{name}?{tail}");
        let pool = storage::connect(&url, 16).await?;
        Ok(Self {
            name,
            url,
            pool,
            dropped: false,
        })
    }

    pub async fn migrated() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let db = Self::create().await?;
        migrate::run(&db.pool).await?;
        Ok(db)
    }

    pub async fn cleanup(mut self) {
        self.pool.close().await;
        drop_database(&self.name).await;
        self.dropped = true;
    }
}

async fn drop_database(name: &str) {
    if let Ok(admin) = TestEnv::get().pg_admin_pool().await {
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await;
        admin.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // A panicking test still removes its database, from a thread with its own runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(drop_database(&name));
            }
        })
        .join();
    }
}

pub fn test_config(url: &str) -> Config {
    let centrifugo = TestEnv::get().centrifugo();
    let vars = [
        ("DATABASE_URL", url.to_owned()),
        (
            "JWT_SECRET",
            "jwt-secret-for-tests-0123456789abcdef0123".to_owned(),
        ),
        ("CENTRIFUGO_TOKEN_SECRET", centrifugo.token_hmac_secret.clone()),
        ("CENTRIFUGO_API_URL", centrifugo.api_url.clone()),
        ("CENTRIFUGO_API_KEY", centrifugo.api_key.clone()),
        ("ADMIN_API_KEY", ADMIN_KEY.to_owned()),
    ];
    match Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())) {
        Ok(config) => config,
        Err(err) => panic!("test config: {err}"),
    }
}

/// A running server on a migrated test database.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub audit: Arc<MemorySink>,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub db: Option<TestDb>,
}

impl TestServer {
    pub async fn start() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let db = TestDb::migrated().await?;
        Self::on(db, adjust).await
    }

    /// Serves on an existing (possibly unmigrated) database.
    pub async fn on(
        db: TestDb,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let mut config = test_config(&db.url);
        adjust(&mut config);
        let audit = Arc::new(MemorySink::default());
        let state = AppState::new(db.pool.clone(), config, audit.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(chatsdk_server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Ok(Self {
            base,
            http: reqwest::Client::new(),
            audit,
            state,
            shutdown: Some(tx),
            task: Some(task),
            db: Some(db),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// Starts an outbox drainer on this server's database publishing to `api_url` (the test
    /// environment's Centrifugo unless a test simulates an outage), with test-sized timers.
    pub fn drainer(&self, api_url: &str) -> Result<DrainerHandle, Box<dyn std::error::Error + Send + Sync>> {
        let client = Centrifugo::new(api_url, Some(TestEnv::get().centrifugo().api_key.clone()))?;
        let config = DrainerConfig {
            backoff_min: std::time::Duration::from_millis(50),
            backoff_max: std::time::Duration::from_millis(400),
            safety_interval: std::time::Duration::from_secs(5),
            ..DrainerConfig::default()
        };
        Ok(Drainer::new(self.state.pool.clone(), client, config)
            .with_metrics(self.state.metrics.clone())
            .spawn())
    }

    pub async fn cleanup(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }

    /// Sends a request; `auth` is a full header (`("Authorization", "Bearer …")` etc.).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let auth = format!("Bearer {ADMIN_KEY}");
        self.call(method, path, &[("Authorization", &auth)], body).await
    }

    pub async fn user(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let auth = format!("Bearer {token}");
        self.call(method, path, &[("Authorization", &auth)], body).await
    }

    /// Creates an app through the admin API: `(app id, API key)`.
    pub async fn create_app(
        &self,
        name: &str,
    ) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
        let (status, body) = self
            .admin(Method::POST, "/admin/apps", Some(json!({ "name": name })))
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Ok((str_of(&body, "id"), str_of(&body, "apiKey")))
    }

    /// Connects a user: the whole `/api/auth/connect` response.
    pub async fn connect(
        &self,
        api_key: &str,
        user_id: &str,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/connect",
                &[("X-API-Key", api_key)],
                Some(json!({ "userId": user_id, "displayName": user_id })),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(body)
    }

    /// Access token of a freshly connected user.
    pub async fn token(
        &self,
        api_key: &str,
        user_id: &str,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        Ok(str_of(&self.connect(api_key, user_id).await?, "token"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn str_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The `error.code` / `error.field` of an error body.
pub fn error_of(body: &Value) -> (String, Option<String>) {
    let error = &body["error"];
    (
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["field"].as_str().map(str::to_owned),
    )
}
