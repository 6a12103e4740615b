//! Operator scale benchmark against the test environment (a command, not a timed test):
//! `cargo bench -p chatsdk-operator --bench scale [-- N ...]` (default N = 10 100 500).
//!
//! For each N: one operator process, N ChatSDKDeployments in a fresh namespace; prints the time
//! until all are Ready, reconciles per second, write requests per resource (from the API
//! server's audit log, by the operator's User-Agent) and the operator's peak RSS.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_testenv::{TestEnv, unique_name};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect::<Vec<_>>();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 500]
    } else {
        sizes
    };
    let env = TestEnv::get();
    let client = env.kube_client().await.expect("kube client");
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            "chatsdkdeployments.chatsdk.io",
            &PatchParams::apply("chatsdk-bench").force(),
            &Patch::Apply(chatsdk_crds::crd()),
        )
        .await
        .expect("CRD");
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!(
        "{:>5}  {:>14}  {:>14}  {:>16}  {:>18}  {:>14}",
        "N", "all Ready (s)", "reconciles", "reconciles/s", "writes/resource", "peak RSS (MiB)"
    );
    for n in sizes {
        let result = run(&client, n).await;
        println!(
            "{:>5}  {:>14.1}  {:>14}  {:>16.1}  {:>18.1}  {:>14.1}",
            n,
            result.seconds,
            result.reconciles,
            result.reconciles as f64 / result.seconds,
            result.writes as f64 / n as f64,
            result.peak_rss_kib as f64 / 1024.0
        );
    }
}

struct Outcome {
    seconds: f64,
    reconciles: u64,
    writes: u64,
    peak_rss_kib: u64,
}

async fn run(client: &kube::Client, n: usize) -> Outcome {
    let env = TestEnv::get();
    let ns = unique_name(&format!("bench-{n}"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "db"},
        "stringData": {"DATABASE_URL": "postgres://chatsdk:pw@postgres:5432/chatsdk"}}))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");

    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let audit_before = audit_writes(&ns);
    let mut operator = Command::new(env!("CARGO_BIN_EXE_chatsdk-operator"))
        .arg("run")
        .env("KUBECONFIG", &env.endpoints.kubernetes.kubeconfig)
        .env("WATCH_NAMESPACE", &ns)
        .env("LEADER_ELECTION", "false")
        .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("operator");

    let crs: Api<ChatSDKDeployment> = Api::namespaced(client.clone(), &ns);
    let started = Instant::now();
    for i in 0..n {
        let cr: ChatSDKDeployment = serde_json::from_value(json!({
            "apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment",
            "metadata": {"name": format!("chat-{i}")},
            "spec": {"database": {"existingSecret": {"name": "db"}}}
        }))
        .expect("resource");
        crs.create(&PostParams::default(), &cr).await.expect("create");
    }
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let list = crs.list(&ListParams::default()).await.expect("list");
        let ready = list
            .items
            .iter()
            .filter(|cr| {
                cr.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        if ready == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready}/{n} Ready after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let reconciles = counter(&metrics, "chatsdk_operator_reconciles_total") as u64;
    let peak_rss_kib = std::fs::read_to_string(format!("/proc/{}/status", operator.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let writes = (audit_writes(&ns) - audit_before) as u64;
    let _ = operator.kill();
    let _ = operator.wait();
    let _ = namespaces.delete(&ns, &DeleteParams::background()).await;
    Outcome {
        seconds,
        reconciles,
        writes,
        peak_rss_kib,
    }
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Write requests by the operator (its User-Agent) in `namespace`, from the audit log.
fn audit_writes(namespace: &str) -> usize {
    let log = std::fs::read_to_string(&TestEnv::get().endpoints.kubernetes.audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("chatsdk-operator/"))
        })
        .filter(|e| e["objectRef"]["namespace"] == namespace)
        .count()
}
