//! Smoke tests proving that every part of the test environment is real: each one exercises
//! behaviour a mock would not have (scheduling, garbage collection, RBAC, TLS enforcement,
//! secret versioning, Centrifugo history, a working helm binary).

use std::time::Duration;

use aws_sdk_rds as rds;
use aws_sdk_secretsmanager as secretsmanager;
use chatsdk_testenv::{TestEnv, eventually, unique_name};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let name = unique_name(prefix);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

#[tokio::test]
async fn deployment_becomes_available_on_kwok_nodes_and_cascades_on_delete() {
    let client = TestEnv::get().kube_client().await.expect("kube client");
    let ns = namespace(&client, "smoke-deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");

    // ReplicaSet (controller-manager) → pods bound to a node (scheduler) → Ready (kwok).
    eventually("2 available replicas", Duration::from_secs(90), || async {
        let d = deployments.get("web").await.ok()?;
        (d.status?.available_replicas? == 2).then_some(())
    })
    .await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("pods");
    assert_eq!(pods.items.len(), 2);
    let nodes = &TestEnv::get().endpoints.kubernetes.nodes;
    for pod in &pods.items {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .expect("pod is scheduled");
        assert!(nodes.contains(&node), "pod on unexpected node {node}");
    }

    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    assert_eq!(
        replicasets
            .list(&ListParams::default())
            .await
            .expect("rs")
            .items
            .len(),
        1
    );
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .expect("delete deployment");
    // The garbage collector removes the ReplicaSet through its owner reference.
    eventually(
        "the ReplicaSet to be garbage-collected",
        Duration::from_secs(60),
        || async {
            replicasets
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;
    Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
}

#[tokio::test]
async fn service_account_without_permissions_is_forbidden() {
    let env = TestEnv::get();
    let admin = env.kube_client().await.expect("kube client");
    let ns = namespace(&admin, "smoke-rbac").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "nobody"}})).expect("sa");
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("create service account");

    // A real token from the TokenRequest API, signed by the API server's service-account key.
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request("nobody", &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .expect("token status")
        .token
        .expect("token issued");

    let as_nobody = env.kube_client_with_token(&token).await.expect("client");
    let err = Api::<Pod>::namespaced(as_nobody, &ns)
        .list(&ListParams::default())
        .await
        .expect_err("listing pods without a role must fail");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 403, "authenticated but not authorized: {status:?}");
            assert!(
                status
                    .message
                    .contains(&format!("system:serviceaccount:{ns}:nobody")),
                "the API server identified the token's account: {}",
                status.message
            );
        }
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
    Api::<Namespace>::all(admin)
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
}

#[tokio::test]
async fn postgres_round_trip_over_tls_and_plaintext_refused() {
    let env = TestEnv::get();
    let pool = env.pg_pool().await.expect("connect with sslmode=require");
    let (ssl, version): (bool, String) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .expect("pg_stat_ssl");
    assert!(ssl, "connection is encrypted");
    assert!(version.starts_with("TLS"), "TLS version {version}");

    // A temporary table lives on one connection: use the same one throughout.
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("CREATE TEMP TABLE smoke (id int PRIMARY KEY, body text NOT NULL)")
        .execute(&mut *conn)
        .await
        .expect("create table");
    sqlx::query("INSERT INTO smoke VALUES ($1, $2)")
        .bind(1)
        .bind("hello over TLS")
        .execute(&mut *conn)
        .await
        .expect("insert");
    let body: String = sqlx::query_scalar("SELECT body FROM smoke WHERE id = $1")
        .bind(1)
        .fetch_one(&mut *conn)
        .await
        .expect("select");
    assert_eq!(body, "hello over TLS");

    // The server's certificate verifies against the environment's CA.
    let pg = &env.endpoints.postgres;
    let verify_full = pg.url.replace(
        "sslmode=require",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca_cert.display()),
    );
    sqlx::PgPool::connect(&verify_full)
        .await
        .expect("sslmode=verify-full");

    let plaintext = pg.url.replace("sslmode=require", "sslmode=disable");
    let err = sqlx::PgPool::connect(&plaintext)
        .await
        .expect_err("plaintext must be refused");
    let message = err.to_string();
    assert!(
        message.contains("no pg_hba.conf entry") && message.contains("no encryption"),
        "refused by pg_hba.conf for lack of TLS: {message}"
    );
}

#[tokio::test]
async fn secrets_manager_create_read_rotate() {
    let sdk = TestEnv::get().aws_config().await;
    let client = secretsmanager::Client::new(&sdk);
    let id = format!("chatsdk/smoke/{}", unique_name("postgres"));
    let first = json!({"username": "chatsdk", "password": "first", "engine": "postgres", "host": "db", "port": 5432, "dbname": "chatsdk"});
    let created = client
        .create_secret()
        .name(&id)
        .secret_string(first.to_string())
        .send()
        .await
        .expect("create secret");
    let v1 = created.version_id().expect("version id").to_owned();
    let read = client
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .expect("get secret");
    assert_eq!(read.version_id(), Some(v1.as_str()));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(read.secret_string().expect("string")).expect("json"),
        first
    );

    let rotated = client
        .put_secret_value()
        .secret_id(&id)
        .secret_string(json!({"username": "chatsdk", "password": "second"}).to_string())
        .send()
        .await
        .expect("rotate");
    let v2 = rotated.version_id().expect("version id").to_owned();
    assert_ne!(v1, v2, "rotation creates a new version");
    let read = client
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .expect("get rotated");
    assert_eq!(read.version_id(), Some(v2.as_str()));
    assert!(read.secret_string().expect("string").contains("second"));
    let previous = client
        .get_secret_value()
        .secret_id(&id)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .expect("previous version");
    assert_eq!(previous.version_id(), Some(v1.as_str()));
}

#[tokio::test]
async fn rds_create_and_describe_instance() {
    let sdk = TestEnv::get().aws_config().await;
    let client = rds::Client::new(&sdk);
    let id = unique_name("chatsdk-db");
    client
        .create_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class("db.t3.medium")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("chatsdk")
        .master_user_password("not-a-real-password")
        .storage_encrypted(true)
        .backup_retention_period(35)
        .multi_az(true)
        .publicly_accessible(false)
        .deletion_protection(true)
        .send()
        .await
        .expect("create db instance");
    let described = client
        .describe_db_instances()
        .db_instance_identifier(&id)
        .send()
        .await
        .expect("describe");
    let instance = described.db_instances().first().expect("one instance");
    assert_eq!(instance.db_instance_identifier(), Some(id.as_str()));
    assert_eq!(instance.storage_encrypted(), Some(true));
    assert_eq!(instance.backup_retention_period(), Some(35));
    assert_eq!(instance.multi_az(), Some(true));
    assert_eq!(instance.publicly_accessible(), Some(false));
    assert!(
        instance.endpoint().and_then(|e| e.address()).is_some(),
        "instance has an endpoint"
    );
}

#[tokio::test]
async fn centrifugo_publish_then_read_history() {
    let centrifugo = TestEnv::get().centrifugo();
    let http = reqwest::Client::new();
    let channel = format!("chat:{}:{}", unique_name("app"), unique_name("channel"));
    let event = json!({"type": "message.new", "payload": {"id": "m1", "text": "hello"}});
    let api = |method: &str, body: serde_json::Value| {
        http.post(format!("{}/{method}", centrifugo.api_url))
            .header("X-API-Key", &centrifugo.api_key)
            .json(&body)
            .send()
    };
    let published: serde_json::Value = api("publish", json!({"channel": channel, "data": event}))
        .await
        .expect("publish")
        .error_for_status()
        .expect("publish status")
        .json()
        .await
        .expect("publish reply");
    assert!(published.get("error").is_none(), "publish error: {published}");

    let history: serde_json::Value = api("history", json!({"channel": channel, "limit": 10}))
        .await
        .expect("history")
        .json()
        .await
        .expect("history reply");
    let publications = history["result"]["publications"]
        .as_array()
        .expect("publications");
    assert_eq!(publications.len(), 1, "{history}");
    assert_eq!(publications[0]["data"], event);

    let unauthorized = http
        .post(format!("{}/publish", centrifugo.api_url))
        .header("X-API-Key", "wrong-key")
        .json(&json!({"channel": channel, "data": event}))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthorized.status(), 401, "a wrong API key is refused");
}

#[test]
fn helm_runs() {
    let helm = &TestEnv::get().endpoints.tools.helm;
    let out = std::process::Command::new(helm)
        .args(["version", "--short"])
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm version failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.starts_with("v4."),
        "helm 4 built from the module proxy: {version}"
    );
}
