//! The operator against the real test API server: create → Ready, spec changes, drift,
//! deletion, secret rotation, restarts and zero-write convergence.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_testenv::TestEnv;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use support::{DATABASE_URL, Operator, TestNamespace, condition, eventually, wait_ready};

fn minimal(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "chatsdk.io/v1alpha1",
        "kind": "ChatSDKDeployment",
        "metadata": {"name": name},
        "spec": {"database": {"existingSecret": {"name": "db"}}}
    })
}

fn secret_value(secret: &Secret, key: &str) -> String {
    let bytes = secret.data.as_ref().and_then(|d| d.get(key)).expect(key);
    String::from_utf8(bytes.0.clone()).expect("utf-8")
}

fn pod_annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

#[tokio::test]
async fn create_reaches_ready_with_every_child_as_specified() {
    let ns = TestNamespace::new("op-create").await;
    ns.database_secret("db", DATABASE_URL).await;
    let _operator = Operator::start(&ns.name, false, "create");
    ns.create(minimal("chat")).await.expect("create");
    let cr = wait_ready(&ns, "chat").await;

    let status = cr.status.clone().expect("status");
    assert_eq!(status.phase, Some(chatsdk_crds::v1alpha1::Phase::Ready));
    assert_eq!(status.api_replicas.as_deref(), Some("2/2"));
    assert_eq!(status.migrated_image.as_deref(), Some(cr.spec.api.image.as_str()));
    assert_eq!(
        status.api_endpoint,
        Some(format!("http://chat-api.{}.svc:5501", ns.name))
    );
    for type_ in [
        "Ready",
        "ApiAvailable",
        "CentrifugoAvailable",
        "SecretsSynced",
        "NetworkPolicyApplied",
        "RetentionScheduled",
    ] {
        assert_eq!(
            condition(&cr, type_).map(|c| c.0),
            Some("True".into()),
            "{type_}: {status:?}"
        );
    }
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.observed_generation, cr.metadata.generation);

    // The instance Secret: the database URL with sslmode=require, generated keys kept.
    let secrets = ns.api::<Secret>();
    let instance = secrets.get("chat-secrets").await.expect("instance secret");
    assert_eq!(
        secret_value(&instance, "DATABASE_URL"),
        format!("{DATABASE_URL}?sslmode=require")
    );
    let generated = secrets.get("chat-generated").await.expect("generated secret");
    for key in [
        "JWT_SECRET",
        "CENTRIFUGO_TOKEN_SECRET",
        "CENTRIFUGO_API_KEY",
        "ADMIN_API_KEY",
    ] {
        let value = secret_value(&instance, key);
        assert_eq!(value.len(), 64, "{key} is 32 random bytes in hex");
        assert_eq!(
            value,
            secret_value(&generated, key),
            "{key} is kept in chat-generated"
        );
    }

    // The API Deployment: image, environment, probes, restricted security, owner reference.
    let api = ns
        .api::<Deployment>()
        .get("chat-api")
        .await
        .expect("api deployment");
    assert_eq!(api.owner_references()[0].uid, cr.uid().expect("uid"));
    assert_eq!(api.owner_references()[0].controller, Some(true));
    let pod = api
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod spec");
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(cr.spec.api.image.as_str()));
    let env: BTreeMap<_, _> = container
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.clone().unwrap_or_default()))
        .collect();
    for (name, value) in [
        ("NODE_ENV", "production"),
        ("LOG_LEVEL", "info"),
        ("FORCE_HTTPS", "true"),
        ("SECURE_COOKIES", "true"),
        ("SESSION_TIMEOUT_MINUTES", "15"),
        ("REQUIRE_MFA", "false"),
        ("PORT", "5501"),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(
        env.get("CENTRIFUGO_API_URL").map(String::as_str),
        Some(format!("http://chat-centrifugo.{}.svc:9000/api", ns.name).as_str())
    );
    assert_eq!(
        container.env_from.as_ref().expect("envFrom")[0]
            .secret_ref
            .as_ref()
            .expect("ref")
            .name,
        "chat-secrets"
    );
    let path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(path(&container.readiness_probe).as_deref(), Some("/ready"));
    assert_eq!(path(&container.liveness_probe).as_deref(), Some("/health"));
    let security = container.security_context.as_ref().expect("security context");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_owned()])
    );
    let pod_security = pod.security_context.as_ref().expect("pod security");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert!(
        container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some()
    );

    // Centrifugo, Services, the migration Job, the retention CronJob.
    let services = ns.api::<Service>();
    assert_eq!(
        services
            .get("chat-api")
            .await
            .expect("api svc")
            .spec
            .expect("spec")
            .ports
            .expect("ports")[0]
            .port,
        5501
    );
    let centrifugo_ports: Vec<i32> = services
        .get("chat-centrifugo")
        .await
        .expect("centrifugo svc")
        .spec
        .and_then(|s| s.ports)
        .expect("ports")
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(centrifugo_ports, vec![8000, 9000]);
    let config = secrets
        .get("chat-centrifugo-config")
        .await
        .expect("centrifugo config");
    let config: serde_json::Value =
        serde_json::from_str(&secret_value(&config, "config.json")).expect("json");
    assert_eq!(
        config["client"]["token"]["hmac_secret_key"],
        secret_value(&instance, "CENTRIFUGO_TOKEN_SECRET")
    );
    assert_eq!(
        config["http_api"]["key"],
        secret_value(&instance, "CENTRIFUGO_API_KEY")
    );
    let jobs = ns.api::<Job>().list(&ListParams::default()).await.expect("jobs");
    assert_eq!(jobs.items.len(), 1, "one migration Job");
    let job_args = jobs.items[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].args.clone());
    assert_eq!(job_args, Some(Some(vec!["migrate".to_owned()])));
    let cronjob = ns.api::<CronJob>().get("chat-retention").await.expect("cronjob");
    let spec = cronjob.spec;
    assert_eq!(spec.schedule, "0 2 * * 0");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(spec.successful_jobs_history_limit, Some(3));
    let args = spec
        .job_template
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].args.clone());
    assert_eq!(
        args,
        Some(Some(
            ["retention", "--days", "2555", "--batch-size", "1000"]
                .map(String::from)
                .to_vec()
        ))
    );

    // NetworkPolicies: default deny first, then per component.
    let policies = ns
        .api::<NetworkPolicy>()
        .list(&ListParams::default())
        .await
        .expect("policies");
    let mut names: Vec<String> = policies.items.iter().map(|p| p.name_any()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "chat-api",
            "chat-centrifugo",
            "chat-default-deny",
            "chat-migration",
            "chat-retention"
        ]
    );
    let deny = policies
        .items
        .iter()
        .find(|p| p.name_any() == "chat-default-deny")
        .expect("deny");
    let deny = deny.spec.as_ref().expect("spec");
    assert_eq!(
        deny.policy_types,
        Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
    );
    assert!(
        deny.ingress.as_ref().is_none_or(Vec::is_empty) && deny.egress.as_ref().is_none_or(Vec::is_empty)
    );
    let api_policy = policies
        .items
        .iter()
        .find(|p| p.name_any() == "chat-api")
        .expect("api policy");
    let api_policy = api_policy.spec.as_ref().expect("spec");
    let ingress_port = api_policy.ingress.as_ref().expect("ingress")[0]
        .ports
        .as_ref()
        .expect("ports")[0]
        .port
        .clone();
    assert_eq!(
        ingress_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
            5501
        ))
    );
    let egress_ports: Vec<_> = api_policy
        .egress
        .iter()
        .flatten()
        .flat_map(|rule| rule.ports.iter().flatten())
        .filter_map(|p| p.port.clone())
        .collect();
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int;
    assert_eq!(egress_ports, vec![Int(5432), Int(9000), Int(53), Int(53)]);
}

#[tokio::test]
async fn spec_changes_drift_and_deletion_are_reconciled() {
    let ns = TestNamespace::new("op-drift").await;
    ns.database_secret("db", DATABASE_URL).await;
    let _operator = Operator::start(&ns.name, false, "drift");
    ns.create(minimal("chat")).await.expect("create");
    wait_ready(&ns, "chat").await;
    let crs = ns.api::<ChatSDKDeployment>();
    let deployments = ns.api::<Deployment>();

    // Spec change: replicas, log level and an Ingress.
    let change = json!({"spec": {"api": {"replicas": 3, "logLevel": "debug"},
        "ingress": {"enabled": true, "host": "chat.example.com", "tlsSecretName": "chat-tls"}}});
    crs.patch("chat", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .expect("patch");
    eventually(
        "the API Deployment to follow the spec",
        Duration::from_secs(60),
        || async {
            let d = deployments.get("chat-api").await.ok()?;
            let spec = d.spec?;
            let env = spec.template.spec?.containers[0].env.clone()?;
            let level = env.iter().find(|e| e.name == "LOG_LEVEL")?.value.clone()?;
            (spec.replicas == Some(3) && level == "debug").then_some(())
        },
    )
    .await;
    let ingress = eventually("the Ingress", Duration::from_secs(30), || async {
        ns.api::<Ingress>().get("chat").await.ok()
    })
    .await;
    let tls = ingress.spec.and_then(|s| s.tls).expect("tls");
    assert_eq!(tls[0].secret_name.as_deref(), Some("chat-tls"));
    let cr = wait_ready(&ns, "chat").await;
    assert_eq!(cr.status.and_then(|s| s.api_replicas).as_deref(), Some("3/3"));

    // Disabling the Ingress deletes it.
    let change = json!({"spec": {"ingress": {"enabled": false}}});
    crs.patch("chat", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .expect("patch");
    eventually("the Ingress to be deleted", Duration::from_secs(30), || async {
        ns.api::<Ingress>()
            .get_opt("chat")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // A child deleted by hand is recreated.
    ns.api::<Service>()
        .delete("chat-api", &DeleteParams::default())
        .await
        .expect("delete service");
    eventually("the Service to be recreated", Duration::from_secs(30), || async {
        let svc = ns.api::<Service>().get_opt("chat-api").await.ok()??;
        svc.metadata.deletion_timestamp.is_none().then_some(())
    })
    .await;

    // A child edited by hand is reverted (the operator owns replicas without an HPA).
    let edit = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 7}});
    deployments
        .patch(
            "chat-api",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&edit),
        )
        .await
        .expect("edit by hand");
    eventually(
        "the hand edit to be reverted",
        Duration::from_secs(30),
        || async { (deployments.get("chat-api").await.ok()?.spec?.replicas == Some(3)).then_some(()) },
    )
    .await;

    // Rotating the database Secret changes the instance Secret and rolls the API pods.
    let before = pod_annotation(
        &deployments.get("chat-api").await.expect("get"),
        "chatsdk.io/secrets-checksum",
    );
    ns.database_secret(
        "db",
        "postgres://chatsdk:rotated@postgres.databases.svc:5432/chatsdk",
    )
    .await;
    eventually(
        "the pods to roll on the new secret",
        Duration::from_secs(30),
        || async {
            let after = pod_annotation(
                &deployments.get("chat-api").await.ok()?,
                "chatsdk.io/secrets-checksum",
            );
            (after.is_some() && after != before).then_some(())
        },
    )
    .await;
    let instance = ns
        .api::<Secret>()
        .get("chat-secrets")
        .await
        .expect("instance secret");
    assert!(secret_value(&instance, "DATABASE_URL").contains(":rotated@"));

    // Deleting the resource deletes every child through owner references (garbage collector).
    crs.delete("chat", &DeleteParams::default())
        .await
        .expect("delete");
    eventually(
        "children to be garbage-collected",
        Duration::from_secs(60),
        || async {
            let deployments = deployments.list(&ListParams::default()).await.ok()?.items;
            let services = ns.api::<Service>().list(&ListParams::default()).await.ok()?.items;
            let secrets = ns
                .api::<Secret>()
                .list(&ListParams::default().labels("app.kubernetes.io/managed-by=chatsdk-operator"))
                .await
                .ok()?
                .items;
            let policies = ns
                .api::<NetworkPolicy>()
                .list(&ListParams::default())
                .await
                .ok()?
                .items;
            (deployments.is_empty() && services.is_empty() && secrets.is_empty() && policies.is_empty())
                .then_some(())
        },
    )
    .await;
}

/// Write requests made in `namespace` by the operator (its User-Agent), from the API server's audit
/// log, leaving out the leader-election Lease.
fn operator_writes(namespace: &str, since_line: usize) -> Vec<String> {
    let log = std::fs::read_to_string(&TestEnv::get().endpoints.kubernetes.audit_log).expect("audit log");
    log.lines()
        .skip(since_line)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("chatsdk-operator/"))
        })
        .filter(|e| e["objectRef"]["namespace"] == namespace && e["objectRef"]["resource"] != "leases")
        .map(|e| {
            let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            format!(
                "{} {}/{}",
                field(&e["verb"]),
                field(&e["objectRef"]["resource"]),
                field(&e["objectRef"]["name"])
            )
        })
        .collect()
}

fn audit_lines() -> usize {
    std::fs::read_to_string(&TestEnv::get().endpoints.kubernetes.audit_log)
        .expect("audit log")
        .lines()
        .count()
}

#[tokio::test]
async fn restart_mid_way_converges_without_duplicates_and_a_noop_reconcile_writes_nothing() {
    let ns = TestNamespace::new("op-restart").await;
    ns.database_secret("db", DATABASE_URL).await;
    let operator = Operator::start(&ns.name, false, "restart-1");
    ns.create(minimal("chat")).await.expect("create");
    // Stop it as soon as it has started creating children.
    eventually("the first child", Duration::from_secs(30), || async {
        ns.api::<Secret>().get_opt("chat-secrets").await.ok()?
    })
    .await;
    operator.stop();
    let operator = Operator::start(&ns.name, false, "restart-2");
    wait_ready(&ns, "chat").await;
    // The audit log does attribute the operator's writes (so the zero below means something).
    let creations = operator_writes(&ns.name, 0);
    assert!(
        creations.iter().any(|w| w == "patch deployments/chat-api"),
        "{creations:?}"
    );

    assert_eq!(
        ns.api::<Deployment>()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        2
    );
    assert_eq!(
        ns.api::<Job>()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let replicasets = ns
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    assert_eq!(
        replicasets.len(),
        2,
        "one ReplicaSet per Deployment: nothing rolled twice"
    );
    let generated = ns.api::<Secret>().get("chat-generated").await.expect("generated");

    // Let the first operator's in-flight work settle, then restart: the new process reconciles
    // the converged resource from scratch and must not write anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    operator.stop();
    let since = audit_lines();
    let operator = Operator::start(&ns.name, false, "restart-3");
    eventually(
        "a reconcile by the restarted operator",
        Duration::from_secs(30),
        || async { (operator.counter("chatsdk_operator_reconciles_total").await? >= 1.0).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        operator_writes(&ns.name, since),
        Vec::<String>::new(),
        "a no-op reconcile writes nothing"
    );
    assert_eq!(operator.counter("chatsdk_operator_writes_total").await, Some(0.0));
    let kept = ns.api::<Secret>().get("chat-generated").await.expect("generated");
    assert_eq!(kept.data, generated.data, "generated secrets survive restarts");
}

#[tokio::test]
async fn with_two_replicas_only_the_leader_writes() {
    let ns = TestNamespace::new("op-leader").await;
    ns.database_secret("db", DATABASE_URL).await;
    let first = Operator::start(&ns.name, true, "replica-a");
    eventually("replica-a to lead", Duration::from_secs(30), || async {
        let lease = ns
            .api::<k8s_openapi::api::coordination::v1::Lease>()
            .get("chatsdk-operator-leader")
            .await
            .ok()?;
        (lease.spec?.holder_identity.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let second = Operator::start(&ns.name, true, "replica-b");
    ns.create(minimal("chat")).await.expect("create");
    wait_ready(&ns, "chat").await;
    assert!(
        first
            .counter("chatsdk_operator_writes_total")
            .await
            .unwrap_or_default()
            > 0.0,
        "the leader writes"
    );
    let standby_reconciles = second.counter("chatsdk_operator_reconciles_total").await;
    assert_eq!(standby_reconciles, Some(0.0), "the standby never reconciles");
    assert_eq!(second.counter("chatsdk_operator_writes_total").await, Some(0.0));

    // When the leader goes, the standby takes over and keeps the resource converged.
    first.stop();
    ns.api::<Service>()
        .delete("chat-api", &DeleteParams::default())
        .await
        .expect("delete");
    eventually(
        "replica-b to take over and recreate the Service",
        Duration::from_secs(60),
        || async {
            ns.api::<Service>()
                .get_opt("chat-api")
                .await
                .ok()??
                .metadata
                .deletion_timestamp
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(
        second
            .counter("chatsdk_operator_reconciles_total")
            .await
            .unwrap_or_default()
            > 0.0
    );
}

#[tokio::test]
async fn a_missing_database_secret_is_reported_and_retried_without_crashing() {
    let ns = TestNamespace::new("op-missing").await;
    let operator = Operator::start(&ns.name, false, "missing");
    ns.create(minimal("chat")).await.expect("create");
    let crs = ns.api::<ChatSDKDeployment>();
    let cr = eventually("SecretsSynced=False", Duration::from_secs(30), || async {
        let cr = crs.get("chat").await.ok()?;
        (condition(&cr, "SecretsSynced")? == ("False".into(), "SecretNotFound".into())).then_some(cr)
    })
    .await;
    let status = cr.status.expect("status");
    assert_eq!(status.phase, Some(chatsdk_crds::v1alpha1::Phase::Failed));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(
        ready.message,
        "SecretsSynced: Secret db (referenced by spec.database.existingSecret) does not exist"
    );
    let events = ns.api::<k8s_openapi::api::events::v1::Event>();
    eventually("a Warning event", Duration::from_secs(30), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("SecretNotFound"))
            .then_some(())
    })
    .await;

    // Creating the Secret is picked up through the Secret watch, without a restart.
    ns.database_secret("db", DATABASE_URL).await;
    wait_ready(&ns, "chat").await;
    assert!(operator.metrics().await.is_some(), "the operator kept running");
}

/// `render` prints what a reconcile applies: every rendered child exists in the cluster with
/// every field as rendered (Secret values and the owner UID are the two stand-ins).
#[tokio::test]
async fn render_prints_what_the_operator_applies() {
    let ns = TestNamespace::new("op-render").await;
    ns.database_secret("db", DATABASE_URL).await;
    let _operator = Operator::start(&ns.name, false, "render");
    let resource = json!({
        "apiVersion": "chatsdk.io/v1alpha1",
        "kind": "ChatSDKDeployment",
        "metadata": {"name": "full"},
        "spec": {
            "database": {"existingSecret": {"name": "db"}},
            "api": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}, "podDisruptionBudget": {"minAvailable": 1}},
            "ingress": {"enabled": true, "host": "chat.example.com", "tlsSecretName": "chat-tls"}
        }
    });
    ns.create(resource.clone()).await.expect("create");
    let cr = wait_ready(&ns, "full").await;
    let uid = cr.uid().expect("uid");

    let rendered =
        chatsdk_operator::render::render(&serde_yaml::to_string(&resource).expect("yaml"), &ns.name)
            .expect("render")
            .replace(chatsdk_operator::render::PLACEHOLDER_UID, &uid);
    let client = support::client().await;
    let mut kinds = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&rendered) {
        let manifest: serde_json::Value = serde::Deserialize::deserialize(document).expect("manifest");
        let kind = manifest["kind"].as_str().expect("kind").to_owned();
        let name = manifest["metadata"]["name"].as_str().expect("name").to_owned();
        kinds.push(kind.clone());
        let resource = chatsdk_operator::resources::ChildKind::ALL
            .into_iter()
            .map(|k| k.api_resource())
            .find(|r| r.kind == kind)
            .expect("a known kind");
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client.clone(), &ns.name, &resource);
        let live = api
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("{kind} {name} rendered but not applied: {e}"));
        let mut expected = manifest.clone();
        if kind == "Secret" {
            // Values are redacted in render; the keys must match.
            let keys = |v: &serde_json::Value| {
                v["data"]
                    .as_object()
                    .map(|d| d.keys().cloned().collect::<Vec<_>>())
            };
            assert_eq!(
                keys(&expected),
                keys(&serde_json::to_value(&live).expect("json")),
                "Secret {name} keys"
            );
            expected.as_object_mut().expect("object").remove("data");
        }
        if kind == "Deployment" || kind == "CronJob" {
            // Checksums are computed from the real secret values.
            strip_checksum(&mut expected);
        }
        let live = serde_json::to_value(&live).expect("json");
        assert!(
            chatsdk_operator::apply::is_subset(&expected, &live),
            "{kind} {name} differs from what render printed:\nrendered {expected:#}\nlive {live:#}"
        );
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "CronJob",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Ingress",
            "Job",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Secret",
            "Service"
        ]
    );
    let hpa = ns
        .api::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>()
        .get("full-api")
        .await
        .expect("hpa");
    assert_eq!((hpa.spec.min_replicas, hpa.spec.max_replicas), (Some(2), 6));
}

fn strip_checksum(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("chatsdk.io/secrets-checksum");
            map.remove("chatsdk.io/config-checksum");
            map.values_mut().for_each(strip_checksum);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_checksum),
        _ => {}
    }
}
