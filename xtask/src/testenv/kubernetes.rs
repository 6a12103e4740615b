//! A real Kubernetes control plane: etcd, kube-apiserver (TLS, RBAC, service-account tokens,
//! audit log), kube-controller-manager (garbage collector, ReplicaSets, tokens), kube-scheduler
//! and kwok, which plays the kubelet for fake nodes so pods get scheduled and become Ready.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::endpoints::KubernetesEndpoints;
use crate::install::{Installed, KUBERNETES_VERSION, run};
use crate::pki::Pki;
use crate::process;

const NODES: [&str; 2] = ["kwok-node-0", "kwok-node-1"];

/// Write requests only, at `Metadata` level: enough to count what a reconcile changes.
const AUDIT_POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
";

pub fn start(installed: &Installed, pki: &Pki, state: &Path) -> Result<KubernetesEndpoints> {
    let dir = state.join("kubernetes");
    fs::create_dir_all(&dir)?;

    let etcd_port = process::free_port()?;
    let etcd_peer_port = process::free_port()?;
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
    let etcd = process::spawn(
        state,
        "etcd",
        Command::new(&installed.etcd)
            .args(["--name", "testenv", "--data-dir"])
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &etcd_url,
                "--advertise-client-urls",
                &etcd_url,
            ])
            .args([
                "--listen-peer-urls",
                &etcd_peer_url,
                "--initial-advertise-peer-urls",
                &etcd_peer_url,
            ])
            .args(["--initial-cluster", &format!("testenv={etcd_peer_url}")])
            .args(["--unsafe-no-fsync", "--log-level", "warn"]),
    )?;
    process::wait_for(&etcd, "etcd", Duration::from_secs(30), || {
        process::http_status(etcd_port, "/health") == Some(200)
    })?;

    let audit_policy = dir.join("audit-policy.yaml");
    fs::write(&audit_policy, AUDIT_POLICY)?;
    let audit_log = dir.join("audit.log");
    let api_port = process::free_port()?;
    let server = format!("https://127.0.0.1:{api_port}");
    let apiserver = process::spawn(
        state,
        "kube-apiserver",
        Command::new(&installed.kube_apiserver)
            .args(["--etcd-servers", &etcd_url])
            .args(["--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1"])
            .args(["--secure-port", &api_port.to_string()])
            .arg(flag("--tls-cert-file", &pki.apiserver.cert))
            .arg(flag("--tls-private-key-file", &pki.apiserver.key))
            .arg(flag("--client-ca-file", &pki.ca_cert))
            .args(["--authorization-mode", "RBAC"])
            .args([
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
            ])
            .arg(flag("--service-account-key-file", &pki.service_account_pub))
            .arg(flag(
                "--service-account-signing-key-file",
                &pki.service_account_key,
            ))
            // Room for the operator benchmark's thousand Services.
            .args(["--service-cluster-ip-range", "10.96.0.0/16"])
            .arg(flag("--audit-policy-file", &audit_policy))
            .arg(flag("--audit-log-path", &audit_log))
            .args(["--audit-log-format", "json", "--audit-log-mode", "blocking"])
            .args(["--profiling=false", "--v", "1"]),
    )?;

    let admin_kubeconfig = dir.join("admin.kubeconfig");
    fs::write(&admin_kubeconfig, kubeconfig(&server, pki))?;
    let kubectl = |args: &[&str]| -> Command {
        let mut cmd = Command::new(&installed.kubectl);
        cmd.arg("--kubeconfig").arg(&admin_kubeconfig).args(args);
        cmd
    };
    process::wait_for(
        &apiserver,
        "kube-apiserver /readyz",
        Duration::from_secs(120),
        || {
            kubectl(&["get", "--raw", "/readyz"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        },
    )?;

    let controller_manager = process::spawn(
        state,
        "kube-controller-manager",
        Command::new(&installed.kube_controller_manager)
            .arg(flag("--kubeconfig", &admin_kubeconfig))
            .arg(flag("--authentication-kubeconfig", &admin_kubeconfig))
            .arg(flag("--authorization-kubeconfig", &admin_kubeconfig))
            .args([
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &process::free_port()?.to_string(),
            ])
            .arg(flag(
                "--service-account-private-key-file",
                &pki.service_account_key,
            ))
            .arg(flag("--root-ca-file", &pki.ca_cert))
            .args(["--use-service-account-credentials", "--leader-elect=false"])
            .args(["--controllers", "*,-bootstrapsigner,-tokencleaner", "--v", "1"]),
    )?;
    let scheduler = process::spawn(
        state,
        "kube-scheduler",
        Command::new(&installed.kube_scheduler)
            .arg(flag("--kubeconfig", &admin_kubeconfig))
            .arg(flag("--authentication-kubeconfig", &admin_kubeconfig))
            .arg(flag("--authorization-kubeconfig", &admin_kubeconfig))
            .args([
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &process::free_port()?.to_string(),
            ])
            .args(["--leader-elect=false", "--v", "1"]),
    )?;
    let kwok = process::spawn(
        state,
        "kwok",
        Command::new(&installed.kwok)
            .arg(flag("--kubeconfig", &admin_kubeconfig))
            .arg(flag("--config", &installed.kwok_stages))
            .args([
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector",
                "kwok.x-k8s.io/node=fake",
            ])
            .args(["--cidr", "10.0.1.1/24", "--node-ip", "10.0.0.100"])
            .args(["--node-lease-duration-seconds", "40"])
            .args([
                "--server-address",
                &format!("127.0.0.1:{}", process::free_port()?),
            ]),
    )?;

    let nodes_file = dir.join("nodes.yaml");
    fs::write(
        &nodes_file,
        NODES.iter().map(|n| node_manifest(n)).collect::<String>(),
    )?;
    run(kubectl(&["apply", "--server-side", "-f"])
        .arg(&nodes_file)
        .stdout(std::process::Stdio::null()))
    .context("registering the kwok nodes")?;
    for node in NODES {
        process::wait_for(
            &kwok,
            &format!("node {node} to be Ready"),
            Duration::from_secs(60),
            || {
                kubectl(&[
                    "get",
                    "node",
                    node,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .output()
                .is_ok_and(|out| out.stdout == b"True")
            },
        )?;
    }
    // Pods need their namespace's `default` ServiceAccount: wait for the controller that makes it.
    process::wait_for(
        &controller_manager,
        "the default ServiceAccount",
        Duration::from_secs(60),
        || {
            kubectl(&["get", "serviceaccount", "default", "-n", "default"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        },
    )?;
    scheduler.ensure_running()?;

    Ok(KubernetesEndpoints {
        kubeconfig: admin_kubeconfig,
        server,
        audit_log,
        version: KUBERNETES_VERSION.into(),
        nodes: NODES.iter().map(|n| (*n).to_owned()).collect(),
    })
}

fn flag(name: &str, path: &Path) -> String {
    format!("{name}={}", path.display())
}

fn kubeconfig(server: &str, pki: &Pki) -> String {
    let abs = |p: &PathBuf| p.display().to_string();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: testenv
  context: {{cluster: testenv, user: admin, namespace: default}}
current-context: testenv
",
        ca = abs(&pki.ca_cert),
        cert = abs(&pki.admin.cert),
        key = abs(&pki.admin.key),
    )
}

/// A fake node managed by kwok (selected by its annotation), untainted so pods land on it.
/// Its capacity is generous because its pods cost nothing: the operator benchmark runs
/// hundreds of instances.
fn node_manifest(name: &str) -> String {
    format!(
        "---
apiVersion: v1
kind: Node
metadata:
  name: {name}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {{cpu: \"1000\", memory: 4Ti, pods: \"5000\"}}
  capacity: {{cpu: \"1000\", memory: 4Ti, pods: \"5000\"}}
"
    )
}
