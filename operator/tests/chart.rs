//! The Helm chart against the real test API server: lint, server-side dry-run of its output,
//! and least-privilege RBAC proven by running the operator as the chart's ServiceAccount.

mod support;

use std::process::Command;
use std::time::Duration;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_testenv::TestEnv;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use support::{DATABASE_URL, Operator, TestNamespace, condition, eventually, wait_ready};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/chatsdk-operator");

fn tool(path: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(path)
        .args(args)
        .env("KUBECONFIG", &TestEnv::get().endpoints.kubernetes.kubeconfig)
        .env(
            "HELM_CACHE_HOME",
            TestEnv::get().endpoints.state_dir.join("helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            TestEnv::get().endpoints.state_dir.join("helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            TestEnv::get().endpoints.state_dir.join("helm/data"),
        )
        .output()
        .expect("run tool");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn helm(args: &[&str]) -> (bool, String) {
    tool(&TestEnv::get().endpoints.tools.helm, args)
}

#[test]
fn chart_lints_clean() {
    let (ok, out) = helm(&["lint", "--strict", CHART]);
    assert!(ok && out.contains("0 chart(s) failed"), "{out}");
}

#[tokio::test]
async fn rendered_chart_is_accepted_by_a_server_side_dry_run() {
    let ns = TestNamespace::new("chart-dry").await;
    let watch = format!("watchNamespace={}", ns.name);
    for values in [
        vec![],
        vec!["--set", "aws.roleArn=arn:aws:iam::123456789012:role/chatsdk"],
        vec!["--set", watch.as_str()],
    ] {
        let mut args = vec!["template", "chatsdk", CHART, "--namespace", ns.name.as_str()];
        args.extend(values.iter().copied());
        let (ok, manifests) = helm(&args);
        assert!(ok, "{manifests}");
        let file = TestEnv::get()
            .endpoints
            .state_dir
            .join(format!("{}-rendered.yaml", ns.name));
        std::fs::write(&file, &manifests).expect("write");
        let (ok, out) = tool(
            &TestEnv::get().endpoints.tools.kubectl,
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "-n",
                &ns.name,
                "-f",
                file.to_str().expect("path"),
            ],
        );
        assert!(ok, "{out}");
    }
}

/// Installs the chart watching `ns`, then returns a token of its ServiceAccount.
async fn install(ns: &TestNamespace) -> String {
    let (ok, out) = helm(&[
        "install",
        "chatsdk-operator",
        CHART,
        "--namespace",
        &ns.name,
        "--set",
        &format!("watchNamespace={}", ns.name),
        "--set",
        "replicaCount=1",
        "--wait=false",
    ]);
    assert!(ok, "helm install: {out}");
    let accounts = ns.api::<ServiceAccount>();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    accounts
        .create_token_request("chatsdk-operator", &PostParams::default(), &request)
        .await
        .expect("token")
        .status
        .and_then(|s| s.token)
        .expect("token issued")
}

fn minimal() -> serde_json::Value {
    json!({"apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment", "metadata": {"name": "chat"},
        "spec": {"database": {"existingSecret": {"name": "db"}}}})
}

#[tokio::test]
async fn the_charts_rbac_is_enough_for_a_full_reconcile() {
    let ns = TestNamespace::new("chart-rbac").await;
    let token = install(&ns).await;
    ns.database_secret("db", DATABASE_URL).await;
    let _operator = Operator::start_as(&ns.name, "chart-sa", &token);
    ns.create(minimal()).await.expect("create");
    let cr = wait_ready(&ns, "chat").await;
    assert_eq!(condition(&cr, "Ready"), Some(("True".into(), "Ready".into())));
}

#[tokio::test]
async fn a_missing_rule_is_reported_as_forbidden_not_a_crash() {
    let ns = TestNamespace::new("chart-forbid").await;
    let token = install(&ns).await;
    // Take away writing NetworkPolicies (reading them stays).
    let roles = ns.api::<Role>();
    let mut role = roles.get("chatsdk-operator").await.expect("role");
    for rule in role.rules.get_or_insert_default() {
        if rule.resources.iter().flatten().any(|r| r == "networkpolicies") {
            rule.verbs.retain(|v| !matches!(v.as_str(), "create" | "patch"));
        }
    }
    roles
        .replace("chatsdk-operator", &PostParams::default(), &role)
        .await
        .expect("replace role");

    ns.database_secret("db", DATABASE_URL).await;
    let operator = Operator::start_as(&ns.name, "chart-forbidden", &token);
    ns.create(minimal()).await.expect("create");
    let crs = ns.api::<ChatSDKDeployment>();
    let cr = eventually("Ready=False/Forbidden", Duration::from_secs(60), || async {
        let cr = crs.get("chat").await.ok()?;
        (condition(&cr, "Ready")? == ("False".into(), "Forbidden".into())).then_some(cr)
    })
    .await;
    let ready = cr
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .expect("Ready");
    assert!(
        ready.message.contains("networkpolicies") && ready.message.contains("forbidden"),
        "{}",
        ready.message
    );
    let events = ns.api::<k8s_openapi::api::events::v1::Event>();
    eventually("a Forbidden warning", Duration::from_secs(30), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("Forbidden"))
            .then_some(())
    })
    .await;
    assert!(operator.metrics().await.is_some(), "the operator keeps running");
}
