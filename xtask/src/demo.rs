//! The README's main command: the operator's local demo on the test environment.
//!
//! Starts the environment, installs the CRD, runs the operator (as a part of the environment,
//! so `cargo xtask testenv down` stops it), applies `examples/minimal.yaml`, waits for
//! `Ready=True` and shows the resource and its children.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::install::run;
use crate::testenv::endpoints::Endpoints;
use crate::{paths, process, testenv};

const NAMESPACE: &str = "chatsdk-demo";

pub fn demo() -> Result<()> {
    let endpoints = testenv::up()?;
    crate::cargo(&[
        "build",
        "--package",
        "chatsdk-operator",
        "--bin",
        "chatsdk-operator",
    ])?;
    let operator = target_dir().join("debug").join("chatsdk-operator");
    let kubectl = |args: &[&str]| -> Command {
        let mut cmd = Command::new(&endpoints.tools.kubectl);
        cmd.env("KUBECONFIG", &endpoints.kubernetes.kubeconfig).args(args);
        cmd
    };
    let root = paths::workspace_root();

    step("installing the ChatSDKDeployment CRD");
    run(kubectl(&["apply", "--server-side", "-f"])
        .arg(root.join("charts/chatsdk-operator/crds/chatsdkdeployments.chatsdk.io.yaml")))?;
    run(&mut kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/chatsdkdeployments.chatsdk.io",
    ]))?;
    let namespace_exists = kubectl(&["get", "namespace", NAMESPACE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !namespace_exists {
        run(&mut kubectl(&["create", "namespace", NAMESPACE]))?;
    }

    step("starting the operator (leader election on, metrics on a free port)");
    start_operator(&endpoints, &operator)?;

    step("applying examples/minimal.yaml");
    run(kubectl(&["apply", "-n", NAMESPACE, "-f"]).arg(root.join("examples/minimal.yaml")))?;
    run(&mut kubectl(&[
        "wait",
        "-n",
        NAMESPACE,
        "--for=condition=Ready",
        "--timeout=120s",
        "chatsdkdeployment/chat",
    ]))
    .context("the demo resource did not become Ready; see target/testenv/logs/operator.log")?;

    step("kubectl get chatsdkdeployments");
    run(&mut kubectl(&[
        "get",
        "chatsdkdeployments",
        "-n",
        NAMESPACE,
        "-o",
        "wide",
    ]))?;
    step("its children");
    run(&mut kubectl(&[
        "get",
        "deployments,services,secrets,networkpolicies,cronjobs,jobs,pods",
        "-n",
        NAMESPACE,
        "-l",
        "app.kubernetes.io/instance=chat",
    ]))?;
    step("its conditions");
    run(&mut kubectl(&[
        "get",
        "chatsdkdeployment/chat",
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{\"\\n\"}{end}",
    ]))?;
    println!();
    testenv::print_usage(&endpoints);
    println!(
        "The operator keeps running (log: {}).\nTry: KUBECONFIG={} {} edit chatsdkdeployment chat -n {NAMESPACE}",
        paths::state_dir().join("logs/operator.log").display(),
        endpoints.kubernetes.kubeconfig.display(),
        endpoints.tools.kubectl.display(),
    );
    Ok(())
}

fn start_operator(endpoints: &Endpoints, binary: &std::path::Path) -> Result<()> {
    let state = paths::state_dir();
    let pid_file = state.join("pids").join("operator");
    if let Ok(pid) = std::fs::read_to_string(&pid_file)
        && std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
    {
        // A demo run before this one left it running: restart it on the fresh build.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", pid.trim()))
            .status();
        std::thread::sleep(Duration::from_millis(500));
    }
    let port = process::free_port()?;
    let daemon = process::spawn(
        &state,
        "operator",
        Command::new(binary)
            .arg("run")
            .env("KUBECONFIG", &endpoints.kubernetes.kubeconfig)
            .env("POD_NAMESPACE", NAMESPACE)
            // Only the demo namespace, so tests run on the same environment keep their own operators.
            .env("WATCH_NAMESPACE", NAMESPACE)
            .env("POD_NAME", "chatsdk-operator-demo")
            .env("METRICS_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info,kube=warn"),
    )?;
    process::wait_for(&daemon, "the operator's /readyz", Duration::from_secs(60), || {
        process::http_status(port, "/readyz") == Some(200)
    })?;
    println!("operator running, metrics at http://127.0.0.1:{port}/metrics");
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| paths::workspace_root().join("target"))
}

fn step(what: &str) {
    println!("\n==> {what}");
}
