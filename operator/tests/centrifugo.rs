//! The Centrifugo configuration the operator writes, run by the real Centrifugo binary (v5.4.9,
//! the version the test environment builds; upstream ChatSDK ships v5), started the way the
//! operator's Deployment starts it: its command and arguments, the config Secret's files in the
//! mounted directory, which is also the working directory (the official image's `WORKDIR`).
//!
//! The one deviation from the pod: Centrifugo's own environment overrides move its two listen
//! ports to free loopback ports (`CENTRIFUGO_ADDRESS`, `CENTRIFUGO_PORT`,
//! `CENTRIFUGO_INTERNAL_PORT`), so that parallel runs on a shared machine never collide; the
//! config's ports are checked to be the Deployment's containerPorts instead.
//!
//! What is checked is what ChatSDK needs, with the server's own code on the other side:
//! `/health` (the probes), the HTTP API with the operator's key through the server's Centrifugo
//! client, a WebSocket connect with a token the server's `TokenService` signs (configured from
//! the API pod's environment and the instance Secret, as in the pod), subscriptions to the
//! `chat:` and `user:` namespaces with the server's subscription tokens, history, and
//! `centrifugo checkconfig`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_operator::resources::{api_deployment, centrifugo, instance_secret};
use chatsdk_operator::secrets::keys;
use chatsdk_server::centrifugo::{Centrifugo as ServerCentrifugo, Outcome, Publication};
use chatsdk_server::domain::tokens::TokenService;
use chatsdk_testenv::{TestEnv, eventually, unique_name};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

fn resource(centrifugo: Value) -> ChatSDKDeployment {
    serde_json::from_value(json!({
        "apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment",
        "metadata": {"name": "chat", "namespace": "prod", "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": {"database": {"existingSecret": {"name": "db"}}, "centrifugo": centrifugo}
    }))
    .expect("resource")
}

fn random_hex() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// The instance Secret's data as the operator resolves it (generated keys, a database URL).
fn instance_data(redis_token: Option<&str>) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        (
            keys::DATABASE_URL.to_owned(),
            "postgres://chatsdk:x@db.invalid:5432/chatsdk?sslmode=require".to_owned(),
        ),
        (keys::JWT_SECRET.to_owned(), random_hex()),
        (keys::CENTRIFUGO_TOKEN_SECRET.to_owned(), random_hex()),
        (keys::CENTRIFUGO_API_KEY.to_owned(), random_hex()),
        (keys::ADMIN_API_KEY.to_owned(), random_hex()),
    ]);
    if let Some(token) = redis_token {
        data.insert(keys::REDIS_AUTH_TOKEN.to_owned(), token.to_owned());
    }
    data
}

fn container(deployment: &Deployment) -> Container {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].clone())
        .expect("a container")
}

fn container_port(container: &Container, name: &str) -> i32 {
    container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
        .unwrap_or_else(|| panic!("containerPort {name}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One Centrifugo process started as the operator's Deployment starts it; killed when dropped.
struct Running {
    child: Child,
    log: PathBuf,
    client_port: u16,
    internal_port: u16,
}

impl Running {
    fn client(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.client_port)
    }
    fn internal(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.internal_port)
    }
    fn websocket_url(&self) -> String {
        format!("ws://127.0.0.1:{}/connection/websocket", self.client_port)
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn healthy(&self) -> bool {
        matches!(reqwest::get(self.internal("/health")).await, Ok(r) if r.status() == 200)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rendered config Secret and Deployment of `cr`, laid out and runnable.
struct Rendered {
    cr: ChatSDKDeployment,
    data: BTreeMap<String, String>,
    /// The config Secret's files, as the volume mounts them.
    dir: PathBuf,
    /// The container's argv, as Kubernetes builds it for an image without an entrypoint, with
    /// the mount path replaced by `dir`.
    argv: Vec<String>,
    config: Value,
}

impl Rendered {
    fn new(cr: ChatSDKDeployment, data: BTreeMap<String, String>) -> Self {
        let secret = centrifugo::config_secret(&cr, &data).expect("config secret");
        let deployment = centrifugo::deployment(&cr, "checksum").expect("deployment");
        let container = container(&deployment);
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "config")
            .map(|m| m.mount_path.clone())
            .expect("the config volume is mounted");
        let state = &TestEnv::get().endpoints.state_dir;
        let dir = state.join(unique_name("centrifugo-config"));
        std::fs::create_dir_all(&dir).expect("config dir");
        let mut config = Value::Null;
        for (file, bytes) in secret.data.iter().flatten() {
            std::fs::write(dir.join(file), &bytes.0).expect("config file");
            config = serde_json::from_slice(&bytes.0).expect("the config is JSON");
        }
        // Kubernetes: `command` replaces the entrypoint (the official images have none and
        // `CMD ["centrifugo"]`); `args` alone would replace the CMD.
        let argv: Vec<String> = container
            .command
            .clone()
            .unwrap_or_default()
            .into_iter()
            .chain(container.args.clone().unwrap_or_default())
            .map(|arg| arg.replace(&mount, &dir.to_string_lossy()))
            .collect();
        assert_eq!(argv.first().map(String::as_str), Some("centrifugo"), "{argv:?}");
        Self {
            cr,
            data,
            dir,
            argv,
            config,
        }
    }

    /// `centrifugo checkconfig` on the rendered file.
    fn checkconfig(&self) -> std::process::Output {
        let config = self
            .argv
            .iter()
            .skip_while(|a| *a != "--config")
            .nth(1)
            .expect("--config <file>");
        Command::new(centrifugo_binary())
            .args(["checkconfig", "--config", config])
            .current_dir(&self.dir)
            .output()
            .expect("run centrifugo checkconfig")
    }

    fn start(&self, extra_env: &[(&str, &str)]) -> Running {
        let (client_port, internal_port) = (free_port(), free_port());
        let log = self.dir.join(format!("centrifugo-{client_port}.log"));
        let out = std::fs::File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let bin_dir = centrifugo_binary()
            .parent()
            .map(Path::to_path_buf)
            .expect("bin dir");
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", bin_dir)
            .env("CENTRIFUGO_ADDRESS", "127.0.0.1")
            .env("CENTRIFUGO_PORT", client_port.to_string())
            .env("CENTRIFUGO_INTERNAL_PORT", internal_port.to_string())
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start centrifugo");
        Running {
            child,
            log,
            client_port,
            internal_port,
        }
    }

    /// The chat API server's configuration as its pod reads it: the Deployment's environment
    /// and the instance Secret (`envFrom`), with Centrifugo's in-cluster address moved to `at`.
    fn server_config(&self, at: &Running) -> chatsdk_server::Config {
        let deployment = api_deployment::build(&self.cr, "chatsdk-server:test", "sum").expect("api");
        let secret = instance_secret::build(&self.cr, &self.data).expect("instance secret");
        let mut env: BTreeMap<String, String> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        for var in container(&deployment).env.iter().flatten() {
            env.insert(var.name.clone(), var.value.clone().unwrap_or_default());
        }
        let in_cluster = env
            .get("CENTRIFUGO_API_URL")
            .cloned()
            .expect("CENTRIFUGO_API_URL");
        let url = url::Url::parse(&in_cluster).expect("a URL");
        assert_eq!(
            url.port().map(i32::from),
            self.config_internal_port(),
            "the API pods call Centrifugo's internal port"
        );
        env.insert(
            "CENTRIFUGO_API_URL".into(),
            format!("http://127.0.0.1:{}{}", at.internal_port, url.path()),
        );
        chatsdk_server::Config::from_lookup(|name| env.get(name).cloned()).expect("server config")
    }

    fn config_internal_port(&self) -> Option<i32> {
        self.config["internal_port"]
            .as_i64()
            .or_else(|| self.config["http_server"]["internal_port"].as_i64())
            .and_then(|p| i32::try_from(p).ok())
    }
}

impl Drop for Rendered {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn centrifugo_binary() -> PathBuf {
    TestEnv::get().endpoints.tools.centrifugo.clone()
}

async fn start_healthy(rendered: &Rendered, extra_env: &[(&str, &str)]) -> Running {
    let running = rendered.start(extra_env);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !running.healthy().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Centrifugo did not answer /health on its internal port:\n{}",
            running.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running
}

/// A minimal Centrifugo JSON-protocol WebSocket client.
struct WsClient {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
    pending: Vec<Value>,
}

impl WsClient {
    async fn open(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("websocket");
        Self {
            ws,
            next_id: 0,
            pending: Vec::new(),
        }
    }

    /// Sends a command; its reply, or `None` when Centrifugo closes the connection instead.
    async fn command(&mut self, mut command: Value) -> Option<Value> {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = json!(id);
        self.ws.send(Message::text(command.to_string())).await.ok()?;
        loop {
            if let Some(pos) = self.pending.iter().position(|v| v["id"].as_u64() == Some(id)) {
                return Some(self.pending.remove(pos));
            }
            self.read().await?;
        }
    }

    async fn read(&mut self) -> Option<()> {
        let frame = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
            .await
            .ok()??
            .ok()?;
        let Message::Text(text) = frame else {
            return match frame {
                Message::Close(_) => None,
                _ => Some(()),
            };
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line).ok()?;
            if value.as_object().is_some_and(|o| o.is_empty()) {
                // Server ping: answered, or Centrifugo disconnects.
                self.ws.send(Message::text("{}")).await.ok()?;
            } else {
                self.pending.push(value);
            }
        }
        Some(())
    }

    /// The data of the next publication pushed on `channel`.
    async fn publication(&mut self, channel: &str) -> Option<Value> {
        loop {
            if let Some(pos) = self
                .pending
                .iter()
                .position(|v| v["push"]["channel"] == channel && v["push"].get("pub").is_some())
            {
                return Some(self.pending.remove(pos)["push"]["pub"]["data"].take());
            }
            self.read().await?;
        }
    }
}

/// Connects with the server's connection token and subscribes to the user's `user:` channel
/// and a `chat:` channel with the server's subscription tokens.
async fn connect_and_subscribe(
    running: &Running,
    tokens: &TokenService,
    app: Uuid,
    user: &str,
    chat: &str,
) -> WsClient {
    let bundle = tokens.issue(app, user, Uuid::new_v4(), false).expect("tokens");
    let mut client = WsClient::open(&running.websocket_url()).await;
    let reply = client
        .command(json!({"connect": {"token": bundle.ws_token}}))
        .await
        .expect("a reply to connect");
    assert!(reply.get("connect").is_some(), "connect refused: {reply}");
    for channel in [format!("user:{app}:{user}"), chat.to_owned()] {
        let token = tokens.subscription_token(app, user, &channel).expect("token");
        let reply = client
            .command(json!({"subscribe": {"channel": channel, "token": token}}))
            .await
            .expect("a reply to subscribe");
        assert!(
            reply.get("subscribe").is_some(),
            "subscribe to {channel} refused: {reply}"
        );
    }
    client
}

async fn api_call(running: &Running, key: &str, method: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(running.internal(&format!("/api/{method}")))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .expect("HTTP API");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn v5_config_serves_health_the_api_and_websockets_for_chatsdk() {
    let cr = resource(json!({"image": "centrifugo/centrifugo:v5.4.9"}));
    let rendered = Rendered::new(cr, instance_data(None));
    let checked = rendered.checkconfig();
    assert!(
        checked.status.success(),
        "centrifugo checkconfig refused the config: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // The config listens where the Deployment's ports and probes point.
    let deployment = centrifugo::deployment(&rendered.cr, "checksum").expect("deployment");
    let container = container(&deployment);
    assert_eq!(rendered.config["port"], container_port(&container, "client"));
    assert_eq!(
        rendered.config_internal_port(),
        Some(container_port(&container, "internal"))
    );

    let running = start_healthy(&rendered, &[]).await;
    // Health, metrics and the API are on the internal port only (NetworkPolicies open it to the
    // API pods alone); the client port serves WebSockets.
    for path in ["/health", "/metrics", "/api/info"] {
        let status = reqwest::get(running.client(path))
            .await
            .expect("client port")
            .status();
        assert_eq!(status, 404, "{path} must not be on the client port");
    }
    let metrics = reqwest::get(running.internal("/metrics")).await.expect("metrics");
    assert_eq!(metrics.status(), 200);

    let server = rendered.server_config(&running);
    let tokens = TokenService::new(&server);
    let api_url = server.centrifugo.api_url.clone().expect("CENTRIFUGO_API_URL");
    let publisher = ServerCentrifugo::new(&api_url, server.centrifugo.api_key.clone()).expect("client");
    let app = Uuid::new_v4();
    let chat = format!("chat:{app}:{}", Uuid::new_v4());
    let mut alice = connect_and_subscribe(&running, &tokens, app, "alice", &chat).await;

    // The drainer's batch and the typing publish, as the server sends them.
    let message = json!({"type": "message.new", "payload": {"text": "héllo"}});
    let unread = json!({"type": "channel.unread_changed", "payload": {"count": 1}});
    let (chat_channels, user_channels) = ([chat.clone()], [format!("user:{app}:alice")]);
    let outcomes = publisher
        .batch(&[
            Publication {
                channels: &chat_channels,
                data: &message,
                idempotency_key: Some(Uuid::new_v4().to_string()),
            },
            Publication {
                channels: &user_channels,
                data: &unread,
                idempotency_key: None,
            },
        ])
        .await
        .expect("batch through the HTTP API with the operator's key");
    assert_eq!(outcomes, [Outcome::Accepted, Outcome::Accepted]);
    assert_eq!(alice.publication(&chat).await, Some(message.clone()));
    assert_eq!(alice.publication(&user_channels[0]).await, Some(unread));
    let typing = json!({"type": "typing.start", "payload": {"userId": "bob"}});
    publisher.publish(&chat, &typing).await.expect("publish");
    assert_eq!(alice.publication(&chat).await, Some(typing));

    // The namespaces keep history (the client's recovery after a reconnect needs it).
    let key = &rendered.data[keys::CENTRIFUGO_API_KEY];
    let (status, history) = api_call(&running, key, "history", json!({"channel": chat, "limit": 10})).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["result"]["publications"][0]["data"], message, "{history}");

    // What must be refused is refused: another key, a token signed with another secret, a
    // channel outside the two namespaces.
    let (status, _) = api_call(
        &running,
        &random_hex(),
        "publish",
        json!({"channel": chat, "data": {}}),
    )
    .await;
    assert_eq!(
        status, 401,
        "the HTTP API accepted a key that is not the operator's"
    );
    let (_, reply) = api_call(
        &running,
        key,
        "publish",
        json!({"channel": format!("other:{app}"), "data": {}}),
    )
    .await;
    assert_eq!(reply["error"]["code"], 102, "unknown namespace: {reply}");
    let forged = TokenService::new(
        &chatsdk_server::Config::from_lookup(|name| match name {
            "CENTRIFUGO_TOKEN_SECRET" | "JWT_SECRET" => Some(random_hex()),
            "DATABASE_URL" => Some("postgres://x@y/z".into()),
            _ => None,
        })
        .expect("config"),
    );
    let bundle = forged
        .issue(app, "mallory", Uuid::new_v4(), false)
        .expect("tokens");
    let mut mallory = WsClient::open(&running.websocket_url()).await;
    let reply = mallory
        .command(json!({"connect": {"token": bundle.ws_token}}))
        .await;
    assert!(
        reply.as_ref().is_none_or(|r| r.get("connect").is_none()),
        "a token signed with another secret connected: {reply:?}"
    );
    let log = running.log();
    assert!(
        !log.contains("unknown key"),
        "Centrifugo ignored part of the config:\n{log}"
    );
}

/// Two replicas on one Redis (TLS and AUTH, as ElastiCache with transit encryption): a
/// publication through one replica's API reaches a client of the other.
#[tokio::test]
async fn v5_config_with_redis_shares_publications_between_replicas() {
    let redis = RedisServer::start();
    let cr = resource(json!({
        "image": "centrifugo/centrifugo:v5.4.9",
        "replicas": 2,
        "redis": {"address": format!("localhost:{}", redis.port), "tls": true,
            "authToken": {"existingSecret": {"name": "redis", "key": "token"}}}
    }));
    let rendered = Rendered::new(cr, instance_data(Some(&redis.password)));
    assert!(rendered.checkconfig().status.success());
    // The pods trust the system roots; here the test's CA stands in for Amazon's.
    let ca = redis.ca_file.to_string_lossy().into_owned();
    let env = [("SSL_CERT_FILE", ca.as_str())];
    let (one, two) = (
        start_healthy(&rendered, &env).await,
        start_healthy(&rendered, &env).await,
    );
    assert!(one.log().contains("redis"), "{}", one.log());

    let server = rendered.server_config(&one);
    let tokens = TokenService::new(&server);
    let app = Uuid::new_v4();
    let chat = format!("chat:{app}:{}", Uuid::new_v4());
    let mut alice = connect_and_subscribe(&two, &tokens, app, "alice", &chat).await;
    let publisher = ServerCentrifugo::new(
        &server.centrifugo.api_url.clone().expect("api url"),
        server.centrifugo.api_key.clone(),
    )
    .expect("client");
    let message = json!({"type": "message.new", "payload": {"text": "across replicas"}});
    publisher
        .publish(&chat, &message)
        .await
        .expect("publish through replica one");
    assert_eq!(alice.publication(&chat).await, Some(message.clone()));
    let key = &rendered.data[keys::CENTRIFUGO_API_KEY];
    let (_, history) = api_call(&two, key, "history", json!({"channel": chat, "limit": 10})).await;
    assert_eq!(
        history["result"]["publications"][0]["data"], message,
        "history in Redis: {history}"
    );
}

/// The v6 format is not v5's: the same binary started with the v6 config of the same resource
/// serves no health endpoint (the probes fail), refuses the operator's API key and the server's
/// tokens. This is why the format follows the version.
#[tokio::test]
async fn the_v6_config_does_not_work_under_v5() {
    let cr = resource(json!({"image": "centrifugo/centrifugo:v5.4.9", "version": "v6"}));
    let rendered = Rendered::new(cr, instance_data(None));
    let running = rendered.start(&[]);
    let ready = eventually("Centrifugo to listen", Duration::from_secs(20), || async {
        reqwest::get(running.internal("/health"))
            .await
            .ok()
            .map(|r| r.status())
    })
    .await;
    assert_eq!(ready, 404, "no health endpoint: the readiness probe never passes");
    let key = &rendered.data[keys::CENTRIFUGO_API_KEY];
    let (status, _) = api_call(&running, key, "info", json!({})).await;
    assert_eq!(status, 401, "the operator's API key is not configured");
    let server = rendered.server_config(&running);
    let bundle = TokenService::new(&server)
        .issue(Uuid::new_v4(), "alice", Uuid::new_v4(), false)
        .expect("tokens");
    let mut alice = WsClient::open(&running.websocket_url()).await;
    let reply = alice
        .command(json!({"connect": {"token": bundle.ws_token}}))
        .await;
    assert!(
        reply.as_ref().is_none_or(|r| r.get("connect").is_none()),
        "connected without the token secret configured: {reply:?}"
    );
}

/// A Redis server from Debian's `redis-server` on a free loopback port, TLS only, with AUTH;
/// stopped when dropped.
struct RedisServer {
    child: Child,
    port: u16,
    password: String,
    ca_file: PathBuf,
    dir: PathBuf,
}

impl RedisServer {
    fn start() -> Self {
        let binary = TestEnv::get().endpoints.tools.redis_server.clone();
        let dir = TestEnv::get().endpoints.state_dir.join(unique_name("redis"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.is_ca = rcgen::IsCa::NoCa;
        let cert = params.self_signed(&key).expect("certificate");
        let (cert_file, key_file) = (dir.join("redis.crt"), dir.join("redis.key"));
        std::fs::write(&cert_file, cert.pem()).expect("cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("key");
        let port = free_port();
        let password = random_hex();
        let log = std::fs::File::create(dir.join("redis.log")).expect("log");
        let child = Command::new(&binary)
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(&cert_file)
            .arg("--tls-key-file")
            .arg(&key_file)
            .args(["--requirepass", &password])
            .arg("--dir")
            .arg(&dir)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let server = Self {
            child,
            port,
            password,
            ca_file: cert_file,
            dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
