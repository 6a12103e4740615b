//! Secrets Manager sources and RDS compliance checks, through the real aws-sdk against the
//! test environment's moto server and the real test API server; for AccessDenied a moto of the
//! test's own with IAM enforced, for throttling a fault-injecting proxy in front of moto.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_iam as iam;
use aws_sdk_iam::config::SharedCredentialsProvider;
use aws_sdk_rds as rds;
use aws_sdk_secretsmanager as secretsmanager;
use chatsdk_crds::ChatSDKDeployment;
use chatsdk_testenv::{TestEnv, unique_name};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use serde_json::json;
use support::{Operator, TestNamespace, condition, eventually, wait_ready};
use tokio::time::Instant;

async fn secrets_client() -> secretsmanager::Client {
    secretsmanager::Client::new(&TestEnv::get().aws_config().await)
}

async fn put_secret(client: &secretsmanager::Client, id: &str, value: &str) -> String {
    match client.create_secret().name(id).secret_string(value).send().await {
        Ok(created) => created.version_id().unwrap_or_default().to_owned(),
        Err(_) => client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .expect("put secret value")
            .version_id()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn from_secrets_manager(name: &str, secret_id: &str, refresh: &str) -> serde_json::Value {
    json!({
        "apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment",
        "metadata": {"name": name},
        "spec": {"database": {"secretsManager": {"secretId": secret_id, "refreshInterval": refresh}}}
    })
}

/// The test PostgreSQL's credentials as the guide's JSON secret.
fn postgres_credentials(password_override: Option<&str>) -> (serde_json::Value, String) {
    let url = url::Url::parse(&TestEnv::get().endpoints.postgres.url).expect("postgres url");
    let password = password_override
        .unwrap_or(url.password().expect("password"))
        .to_owned();
    let secret = json!({
        "username": url.username(), "password": password, "engine": "postgres",
        "host": url.host_str().expect("host"), "port": url.port().expect("port"),
        "dbname": url.path().trim_start_matches('/'),
    });
    (secret, password)
}

fn secret_value(secret: &Secret, key: &str) -> String {
    let bytes = secret.data.as_ref().and_then(|d| d.get(key)).expect(key);
    String::from_utf8(bytes.0.clone()).expect("utf-8")
}

fn checksum(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get("chatsdk.io/secrets-checksum")
        .cloned()
}

async fn events_text(ns: &TestNamespace) -> String {
    let events = ns
        .api::<k8s_openapi::api::events::v1::Event>()
        .list(&ListParams::default())
        .await
        .expect("events");
    serde_json::to_string(&events.items).expect("json")
}

#[tokio::test]
async fn database_url_from_secrets_manager_connects_and_follows_rotation() {
    let ns = TestNamespace::new("aws-sync").await;
    let sm = secrets_client().await;
    let secret_id = format!("chatsdk/{}/postgres", ns.name);
    let (credentials, password) = postgres_credentials(None);
    let v1 = put_secret(&sm, &secret_id, &credentials.to_string()).await;
    let operator = Operator::start(&ns.name, false, "aws-sync");
    ns.create(from_secrets_manager("chat", &secret_id, "3s"))
        .await
        .expect("create");
    let cr = wait_ready(&ns, "chat").await;
    assert_eq!(
        cr.status.as_ref().and_then(|s| s.secrets_version.clone()),
        Some(format!("{secret_id}@{v1}"))
    );

    // The composed URL is the test database's, with sslmode=require, and it really connects.
    let instance = ns
        .api::<Secret>()
        .get("chat-secrets")
        .await
        .expect("instance secret");
    let database_url = secret_value(&instance, "DATABASE_URL");
    assert!(database_url.ends_with("?sslmode=require"), "{database_url}");
    let pool = sqlx::PgPool::connect(&database_url)
        .await
        .expect("connect with the composed DATABASE_URL");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert!(ssl);

    // Rotation: a new version reaches the Secret, the pods' checksum and status within one
    // refresh interval (3 s here), with an Event.
    let deployments = ns.api::<Deployment>();
    let before = checksum(&deployments.get("chat-api").await.expect("api"));
    let (rotated, new_password) = postgres_credentials(Some("rotated/p@ss word"));
    let v2 = put_secret(&sm, &secret_id, &rotated.to_string()).await;
    assert_ne!(v1, v2);
    let crs = ns.api::<ChatSDKDeployment>();
    eventually(
        "the rotation to reach status",
        Duration::from_secs(20),
        || async {
            let cr = crs.get("chat").await.ok()?;
            (cr.status?.secrets_version? == format!("{secret_id}@{v2}")).then_some(())
        },
    )
    .await;
    let instance = ns
        .api::<Secret>()
        .get("chat-secrets")
        .await
        .expect("instance secret");
    assert!(
        secret_value(&instance, "DATABASE_URL").contains(":rotated%2Fp%40ss%20word@"),
        "the password is URL-encoded"
    );
    let after = checksum(&deployments.get("chat-api").await.expect("api"));
    assert_ne!(before, after, "the API pods roll");
    eventually("a SecretsRotated event", Duration::from_secs(10), || async {
        events_text(&ns).await.contains("SecretsRotated").then_some(())
    })
    .await;

    assert_no_leak(
        &ns,
        &operator,
        &[password.as_str(), new_password.as_str(), "rotated%2Fp%40ss"],
    )
    .await;
}

#[tokio::test]
async fn each_failure_has_its_reason_and_keeps_the_last_good_secret() {
    let ns = TestNamespace::new("aws-fail").await;
    ns.database_secret("db", support::DATABASE_URL).await;
    let sm = secrets_client().await;
    let operator = Operator::start(&ns.name, false, "aws-fail");
    let failed = |name, reason| secrets_synced(&ns, name, "False", reason, Duration::from_secs(30));
    let message = secrets_synced_message;

    // The secret does not exist.
    let missing = format!("chatsdk/{}/missing", ns.name);
    ns.create(from_secrets_manager("missing", &missing, "1h"))
        .await
        .expect("create");
    let cr = failed("missing", "AwsResourceNotFound").await;
    assert!(message(&cr).contains(&missing), "{}", message(&cr));

    // Not JSON.
    let malformed = format!("chatsdk/{}/malformed", ns.name);
    put_secret(&sm, &malformed, "hunter2-not-json").await;
    ns.create(from_secrets_manager("malformed", &malformed, "1h"))
        .await
        .expect("create");
    let cr = failed("malformed", "MalformedSecret").await;
    assert_eq!(
        message(&cr),
        format!("spec.database.secretsManager: Secrets Manager secret {malformed} is not a JSON object")
    );

    // A key missing.
    let no_password = format!("chatsdk/{}/no-password", ns.name);
    put_secret(
        &sm,
        &no_password,
        &json!({"username": "u", "host": "db", "port": 5432, "dbname": "chat"}).to_string(),
    )
    .await;
    ns.create(from_secrets_manager("nopassword", &no_password, "1h"))
        .await
        .expect("create");
    let cr = failed("nopassword", "SecretKeyMissing").await;
    assert_eq!(
        message(&cr),
        format!("spec.database.secretsManager: Secrets Manager secret {no_password} has no key password")
    );

    // A good secret that later breaks: the last good Secret and the running pods stay.
    let good = format!("chatsdk/{}/good", ns.name);
    let (credentials, password) = postgres_credentials(None);
    put_secret(&sm, &good, &credentials.to_string()).await;
    ns.create(from_secrets_manager("good", &good, "2s"))
        .await
        .expect("create");
    wait_ready(&ns, "good").await;
    let (secret_before, checksum_before) = last_good(&ns, "good").await;
    put_secret(&sm, &good, "{broken").await;
    let cr = failed("good", "MalformedSecret").await;
    assert_eq!(condition(&cr, "Ready").map(|c| c.0), Some("False".into()));
    let (secret_after, checksum_after) = last_good(&ns, "good").await;
    assert_eq!(secret_after, secret_before, "last good Secret kept");
    assert_eq!(checksum_after, checksum_before, "pods untouched");

    // AWS unreachable (a second operator in its own namespace, pointed at a closed port).
    let offline = TestNamespace::new("aws-offline").await;
    let offline_operator = Operator::start_with_aws(
        &offline.name,
        false,
        "aws-offline",
        &support::Aws::at("http://127.0.0.1:1"),
    );
    offline
        .create(from_secrets_manager("chat", &good, "1h"))
        .await
        .expect("create");
    let cr = secrets_synced(
        &offline,
        "chat",
        "False",
        "AwsUnreachable",
        Duration::from_secs(60),
    )
    .await;
    assert!(message(&cr).contains(&good));

    // Nothing leaked anywhere.
    let values = [password.as_str(), "hunter2-not-json", "{broken"];
    assert_no_leak(&ns, &operator, &values).await;
    assert_no_leak(&offline, &offline_operator, &values).await;
}

#[tokio::test]
async fn fifty_resources_sharing_a_secret_cost_one_read_per_refresh_interval() {
    let ns = TestNamespace::new("aws-shared").await;
    let sm = secrets_client().await;
    let secret_id = format!("chatsdk/{}/shared", ns.name);
    put_secret(&sm, &secret_id, &postgres_credentials(None).0.to_string()).await;
    let operator = Operator::start(&ns.name, false, "aws-shared");
    for i in 0..50 {
        ns.create(from_secrets_manager(&format!("chat-{i}"), &secret_id, "1h"))
            .await
            .expect("create");
    }
    let crs = ns.api::<ChatSDKDeployment>();
    eventually(
        "50 resources with their secrets synced",
        Duration::from_secs(120),
        || async {
            let list = crs.list(&ListParams::default()).await.ok()?;
            let synced = list
                .items
                .iter()
                .filter(|cr| condition(cr, "SecretsSynced").is_some_and(|c| c.0 == "True"))
                .count();
            (synced == 50).then_some(())
        },
    )
    .await;
    let calls = operator
        .metrics()
        .await
        .expect("metrics")
        .lines()
        .find(|l| l.starts_with("chatsdk_operator_aws_calls_total{") && l.contains("GetSecretValue"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(
        calls,
        Some(1.0),
        "one GetSecretValue for 50 resources within the refresh interval"
    );
}

/// A parameter group with `rds.force_ssl = 1`, and an instance using it (or not).
async fn rds_instance(client: &rds::Client, compliant: bool) -> String {
    let id = unique_name(if compliant { "compliant" } else { "lax" });
    let mut create = client
        .create_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class("db.r6g.large")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("chatsdk")
        .master_user_password("not-used-here");
    if compliant {
        let group = unique_name("hipaa-params");
        client
            .create_db_parameter_group()
            .db_parameter_group_name(&group)
            .db_parameter_group_family("postgres15")
            .description("force TLS")
            .send()
            .await
            .expect("parameter group");
        client
            .modify_db_parameter_group()
            .db_parameter_group_name(&group)
            .parameters(
                rds::types::Parameter::builder()
                    .parameter_name("rds.force_ssl")
                    .parameter_value("1")
                    .apply_method(rds::types::ApplyMethod::Immediate)
                    .build(),
            )
            .send()
            .await
            .expect("force_ssl");
        create = create
            .db_parameter_group_name(group)
            .storage_encrypted(true)
            .backup_retention_period(35)
            .multi_az(true)
            .publicly_accessible(false)
            .deletion_protection(true);
    } else {
        create = create.backup_retention_period(7).publicly_accessible(true);
    }
    create.send().await.expect("create instance");
    id
}

#[tokio::test]
async fn rds_findings_hold_ready_under_hipaa_and_warn_otherwise() {
    let ns = TestNamespace::new("aws-rds").await;
    ns.database_secret("db", support::DATABASE_URL).await;
    let client = rds::Client::new(&TestEnv::get().aws_config().await);
    let compliant = rds_instance(&client, true).await;
    let lax = rds_instance(&client, false).await;
    let _operator = Operator::start(&ns.name, false, "aws-rds");
    let resource = |name: &str, instance: &str, profile: &str| {
        json!({"apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment", "metadata": {"name": name},
            "spec": {"database": {"existingSecret": {"name": "db"}, "rds": {"instanceIdentifier": instance}},
                     "compliance": {"profile": profile}}})
    };
    ns.create(resource("compliant", &compliant, "hipaa"))
        .await
        .expect("create");
    ns.create(resource("lax-hipaa", &lax, "hipaa"))
        .await
        .expect("create");
    ns.create(resource("lax-none", &lax, "none"))
        .await
        .expect("create");

    let cr = wait_ready(&ns, "compliant").await;
    assert_eq!(
        condition(&cr, "DatabaseCompliant"),
        Some(("True".into(), "Compliant".into()))
    );
    let findings = cr.status.expect("status").compliance_findings;
    assert_eq!(findings.len(), 6);
    assert!(findings.iter().all(|f| f.passed), "{findings:?}");

    let expected_failures = "failed: StorageEncrypted (storage is not encrypted at rest); \
        BackupRetentionPeriod (automated backups are kept 7 days (at least 35 required)); \
        MultiAZ (Multi-AZ is off); PubliclyAccessible (the instance is publicly accessible); \
        DeletionProtection (deletion protection is off); \
        ForceSSL (rds.force_ssl is not set in parameter group default.postgres";
    let crs = ns.api::<ChatSDKDeployment>();
    let cr = eventually(
        "lax-hipaa held by DatabaseNotCompliant",
        Duration::from_secs(60),
        || async {
            let cr = crs.get("lax-hipaa").await.ok()?;
            (condition(&cr, "Ready")? == ("False".into(), "DatabaseNotCompliant".into())).then_some(cr)
        },
    )
    .await;
    let ready = cr
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned())
        .expect("Ready");
    assert!(
        ready
            .message
            .starts_with(&format!("DatabaseCompliant: {expected_failures}")),
        "{}",
        ready.message
    );

    let cr = wait_ready(&ns, "lax-none").await;
    assert_eq!(
        condition(&cr, "DatabaseCompliant"),
        Some(("False".into(), "DatabaseNotCompliant".into()))
    );
    assert_eq!(
        cr.status
            .expect("status")
            .compliance_findings
            .iter()
            .filter(|f| !f.passed)
            .count(),
        6
    );
    eventually(
        "a DatabaseNotCompliant warning",
        Duration::from_secs(30),
        || async {
            let text = events_text(&ns).await;
            (text.contains("DatabaseNotCompliant") && text.contains("Warning")).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn force_sync_annotation_reads_secrets_manager_at_once() {
    let ns = TestNamespace::new("aws-force").await;
    let sm = secrets_client().await;
    let secret_id = format!("chatsdk/{}/postgres", ns.name);
    put_secret(&sm, &secret_id, &postgres_credentials(None).0.to_string()).await;
    let _operator = Operator::start(&ns.name, false, "aws-force");
    // A long refresh interval: without the annotation the new version would wait an hour.
    ns.create(from_secrets_manager("chat", &secret_id, "1h"))
        .await
        .expect("create");
    wait_ready(&ns, "chat").await;
    let v2 = put_secret(
        &sm,
        &secret_id,
        &postgres_credentials(Some("forced")).0.to_string(),
    )
    .await;
    let crs = ns.api::<ChatSDKDeployment>();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let unchanged = crs
        .get("chat")
        .await
        .expect("cr")
        .status
        .and_then(|s| s.secrets_version);
    assert_ne!(
        unchanged,
        Some(format!("{secret_id}@{v2}")),
        "the cache holds until the interval"
    );

    let annotate = json!({"metadata": {"annotations": {"chatsdk.io/force-sync": "2026-11-23T17:00"}}});
    crs.patch(
        "chat",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&annotate),
    )
    .await
    .expect("annotate");
    eventually("the forced sync", Duration::from_secs(20), || async {
        let cr = crs.get("chat").await.ok()?;
        (cr.status?.secrets_version? == format!("{secret_id}@{v2}")).then_some(())
    })
    .await;
    let instance = ns.api::<Secret>().get("chat-secrets").await.expect("secret");
    assert!(secret_value(&instance, "DATABASE_URL").contains(":forced@"));
}

/// The `SecretsSynced` condition's message.
fn secrets_synced_message(cr: &ChatSDKDeployment) -> String {
    cr.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "SecretsSynced"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// Waits for `SecretsSynced` of `name` to have `status` and `reason`.
async fn secrets_synced(
    ns: &TestNamespace,
    name: &str,
    status: &str,
    reason: &str,
    timeout: Duration,
) -> ChatSDKDeployment {
    let crs = ns.api::<ChatSDKDeployment>();
    eventually(
        &format!("{name}: SecretsSynced={status}/{reason}"),
        timeout,
        || async {
            let cr = crs.get(name).await.ok()?;
            (condition(&cr, "SecretsSynced")? == (status.into(), reason.into())).then_some(cr)
        },
    )
    .await
}

/// The instance Secret's data and the API pods' checksum: what a failed sync must not touch.
async fn last_good(ns: &TestNamespace, name: &str) -> (Option<BTreeMap<String, ByteString>>, Option<String>) {
    let secret = ns
        .api::<Secret>()
        .get(&format!("{name}-secrets"))
        .await
        .expect("instance secret");
    let api = ns
        .api::<Deployment>()
        .get(&format!("{name}-api"))
        .await
        .expect("api deployment");
    (secret.data, checksum(&api))
}

/// Asserts that no secret value is in the operator's log, the namespace's Events or the status.
async fn assert_no_leak(ns: &TestNamespace, operator: &Operator, values: &[&str]) {
    let crs = ns.api::<ChatSDKDeployment>();
    let statuses =
        serde_json::to_string(&crs.list(&ListParams::default()).await.expect("list").items).expect("json");
    for (place, text) in [
        ("log", operator.log()),
        ("events", events_text(ns).await),
        ("status", statuses),
    ] {
        for value in values {
            assert!(!text.contains(value), "a secret value leaked into the {place}");
        }
    }
}

/// A moto server of the test's own with IAM enforced (the shared one accepts any caller, and
/// must, for the tests running beside this one): the first `free_actions` AWS actions are not
/// checked, every later one is signature-checked against moto's IAM access keys and authorised
/// by the user's policies. Killed when dropped.
struct IamMoto {
    child: Child,
    endpoint_url: String,
}

impl IamMoto {
    async fn start(name: &str, free_actions: u32) -> Self {
        let env = TestEnv::get();
        // Port 0 picks a free port; dropping the listener frees it for moto.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(env.endpoints.state_dir.join(format!("logs/moto-{name}.log")))
            .expect("moto log");
        let child = Command::new(&env.endpoints.tools.moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", free_actions.to_string())
            .stdout(log.try_clone().expect("moto log"))
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let moto = Self {
            child,
            endpoint_url: format!("http://127.0.0.1:{port}"),
        };
        let dashboard = format!("{}/moto-api/", moto.endpoint_url);
        eventually("moto with IAM to answer", Duration::from_secs(60), || async {
            let response = reqwest::get(&dashboard).await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
        moto
    }

    /// An SDK configuration for this moto, signing as `key`.
    async fn config(&self, key: &iam::types::AccessKey) -> aws_config::SdkConfig {
        TestEnv::get()
            .aws_config()
            .await
            .into_builder()
            .endpoint_url(&self.endpoint_url)
            .credentials_provider(SharedCredentialsProvider::new(iam::config::Credentials::new(
                key.access_key_id(),
                key.secret_access_key(),
                None,
                None,
                "moto-iam",
            )))
            .build()
    }
}

impl Drop for IamMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates IAM user `user` with inline policy `policy` and returns a new access key of it.
async fn iam_user(client: &iam::Client, user: &str, policy: &serde_json::Value) -> iam::types::AccessKey {
    client
        .create_user()
        .user_name(user)
        .send()
        .await
        .expect("create user");
    allow(client, user, policy).await;
    client
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .expect("create access key")
        .access_key
        .expect("access key")
}

async fn allow(client: &iam::Client, user: &str, policy: &serde_json::Value) {
    client
        .put_user_policy()
        .user_name(user)
        .policy_name("chatsdk")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put user policy");
}

fn policy(actions: &[&str]) -> serde_json::Value {
    // "Resource": "*": moto authorises Secrets Manager actions against "*" rather than the
    // secret's ARN, so a policy naming `arn:aws:secretsmanager:…:secret:chatsdk/*` (as the
    // README's does for real AWS) would be refused here.
    json!({"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
}

#[tokio::test]
async fn access_denied_keeps_the_last_good_secret_and_recovers_when_granted() {
    let ns = TestNamespace::new("aws-denied").await;
    // Three free actions: just enough to create an administrator with a key; from then on
    // every call, the operator's included, is authorised by IAM.
    let moto = IamMoto::start(&ns.name, 3).await;
    let anonymous = TestEnv::get()
        .aws_config()
        .await
        .into_builder()
        .endpoint_url(&moto.endpoint_url)
        .build();
    let admin_key = iam_user(&iam::Client::new(&anonymous), "admin", &policy(&["*"])).await;
    let admin = moto.config(&admin_key).await;
    let admin_iam = iam::Client::new(&admin);
    let secret_id = format!("chatsdk/{}/postgres", ns.name);
    let (credentials, password) = postgres_credentials(None);
    put_secret(
        &secretsmanager::Client::new(&admin),
        &secret_id,
        &credentials.to_string(),
    )
    .await;
    // The README's actions for secrets.
    let reader = policy(&["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]);
    let operator_key = iam_user(&admin_iam, "chatsdk-operator", &reader).await;

    let operator = Operator::start_with_aws(
        &ns.name,
        false,
        "aws-denied",
        &support::Aws {
            endpoint_url: moto.endpoint_url.clone(),
            access_key_id: operator_key.access_key_id().to_owned(),
            secret_access_key: operator_key.secret_access_key().to_owned(),
        },
    );
    ns.create(from_secrets_manager("chat", &secret_id, "2s"))
        .await
        .expect("create");
    wait_ready(&ns, "chat").await;
    let before = last_good(&ns, "chat").await;

    // The grant is revoked: the next read (within the 2 s refresh interval) is refused.
    admin_iam
        .delete_user_policy()
        .user_name("chatsdk-operator")
        .policy_name("chatsdk")
        .send()
        .await
        .expect("revoke");
    let cr = secrets_synced(&ns, "chat", "False", "AwsAccessDenied", Duration::from_secs(30)).await;
    let message = secrets_synced_message(&cr);
    assert!(message.contains(&secret_id), "{message}");
    assert_eq!(condition(&cr, "Ready").map(|c| c.0), Some("False".into()));
    assert_eq!(
        last_good(&ns, "chat").await,
        before,
        "last good Secret and pods kept"
    );

    // Granted again: the operator picks it up by itself.
    allow(&admin_iam, "chatsdk-operator", &reader).await;
    secrets_synced(&ns, "chat", "True", "Synced", Duration::from_secs(60)).await;
    wait_ready(&ns, "chat").await;
    assert_eq!(last_good(&ns, "chat").await, before, "the same secret, no roll");

    assert_no_leak(
        &ns,
        &operator,
        &[password.as_str(), operator_key.secret_access_key()],
    )
    .await;
}

/// An HTTP proxy between the operator and the shared moto that forwards every request as it is
/// and returns moto's answer, except that while `throttle` is set it answers Secrets Manager's
/// `GetSecretValue` as AWS does when throttling. Counts the `GetSecretValue` requests; stops
/// when dropped.
struct ThrottlingProxy {
    url: String,
    state: Arc<ProxyState>,
    server: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    throttle: AtomicBool,
    get_secret_value: AtomicU32,
}

impl ThrottlingProxy {
    async fn start(upstream: &str) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().no_proxy().build().expect("client"),
            throttle: AtomicBool::new(false),
            get_secret_value: AtomicU32::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(forward).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, server }
    }

    fn throttle(&self, on: bool) {
        self.state.throttle.store(on, Ordering::SeqCst);
    }

    fn get_secret_value_requests(&self) -> u32 {
        self.state.get_secret_value.load(Ordering::SeqCst)
    }
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::{HeaderName, StatusCode, header};
    use axum::response::IntoResponse;

    let (parts, body) = request.into_parts();
    if parts
        .headers
        .get("x-amz-target")
        .is_some_and(|target| target == "secretsmanager.GetSecretValue")
    {
        state.get_secret_value.fetch_add(1, Ordering::SeqCst);
        if state.throttle.load(Ordering::SeqCst) {
            // What Secrets Manager sends: 400 with the error type in a header and in the body.
            return (
                StatusCode::BAD_REQUEST,
                [
                    ("x-amzn-errortype", "ThrottlingException"),
                    ("content-type", "application/x-amz-json-1.1"),
                ],
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            )
                .into_response();
        }
    }
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    // Connection-level headers are the two hops' own; everything else (the signature
    // included) passes unchanged. moto does not check signatures, so the new Host is fine.
    let hop = |name: &HeaderName| {
        [
            header::HOST,
            header::CONTENT_LENGTH,
            header::CONNECTION,
            header::TRANSFER_ENCODING,
        ]
        .contains(name)
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = state
        .client
        .request(parts.method, format!("{}{path}", state.upstream))
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(name, _)| !hop(name)) {
        upstream = upstream.header(name, value);
    }
    let Ok(answer) = upstream.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let headers: Vec<_> = answer
        .headers()
        .iter()
        .filter(|(name, _)| !hop(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let Ok(body) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = (status, body).into_response();
    response.headers_mut().extend(headers);
    response
}

#[tokio::test]
async fn throttling_keeps_the_last_good_secret_backs_off_and_recovers() {
    let ns = TestNamespace::new("aws-throttle").await;
    let sm = secrets_client().await;
    let secret_id = format!("chatsdk/{}/postgres", ns.name);
    let (credentials, password) = postgres_credentials(None);
    put_secret(&sm, &secret_id, &credentials.to_string()).await;
    let proxy = ThrottlingProxy::start(&TestEnv::get().endpoints.aws.endpoint_url).await;
    let operator = Operator::start_with_aws(&ns.name, false, "aws-throttle", &support::Aws::at(&proxy.url));
    // Refreshed every 2 s: a storm would show quickly.
    ns.create(from_secrets_manager("chat", &secret_id, "2s"))
        .await
        .expect("create");
    wait_ready(&ns, "chat").await;
    assert!(
        proxy.get_secret_value_requests() >= 1,
        "the reads go through the proxy"
    );
    let before = last_good(&ns, "chat").await;

    proxy.throttle(true);
    let throttled_at = Instant::now();
    let requests_before = proxy.get_secret_value_requests();
    let cr = secrets_synced(&ns, "chat", "False", "AwsThrottled", Duration::from_secs(30)).await;
    let message = secrets_synced_message(&cr);
    assert!(message.contains(&secret_id), "{message}");
    assert_eq!(condition(&cr, "Ready").map(|c| c.0), Some("False".into()));
    assert_eq!(
        last_good(&ns, "chat").await,
        before,
        "last good Secret and pods kept"
    );

    // Backing off, not storming. The secret cache remembers a throttled read's failure for
    // 8–10 s (10 s, jittered to 80–100 %), then 16–20 s, and the controller's retries (10 s
    // and longer) go through it; so a window shorter than 8 + 16 = 24 s holds at most two reads, each of at most 3 attempts (the SDK's standard retries): 6 requests.
    // Reading every 2 s refresh interval would be 8 reads and up to 25 requests (with both
    // backoffs removed, 15 were measured).
    tokio::time::sleep_until(throttled_at + Duration::from_secs(17)).await;
    let window = throttled_at.elapsed();
    let requests = proxy.get_secret_value_requests() - requests_before;
    eprintln!("{requests} GetSecretValue requests in {window:?} of throttling");
    assert!(window < Duration::from_secs(24), "the bound holds for {window:?}");
    assert!(
        requests <= 6,
        "{requests} GetSecretValue requests in {window:?} of throttling: a retry storm"
    );
    let cr = ns.api::<ChatSDKDeployment>().get("chat").await.expect("cr");
    assert_eq!(
        condition(&cr, "SecretsSynced"),
        Some(("False".into(), "AwsThrottled".into()))
    );
    assert_eq!(last_good(&ns, "chat").await, before, "still kept");

    // Throttling ends: the operator recovers by itself, with the same secret (no roll).
    proxy.throttle(false);
    let recovering = Instant::now();
    secrets_synced(&ns, "chat", "True", "Synced", Duration::from_secs(60)).await;
    eprintln!("recovered {:?} after throttling ended", recovering.elapsed());
    wait_ready(&ns, "chat").await;
    assert_eq!(last_good(&ns, "chat").await, before, "the same secret, no roll");

    assert_no_leak(&ns, &operator, &[password.as_str()]).await;
}
