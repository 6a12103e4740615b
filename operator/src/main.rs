//! `chatsdk-operator`: reconciles `ChatSDKDeployment` resources into a running chat backend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chatsdk_operator::controller::{self, Scope};
use chatsdk_operator::telemetry::{self, Metrics};
use clap::{Parser, Subcommand};
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{info, warn};

/// Kubernetes operator for a HIPAA-ready ChatSDK chat backend.
#[derive(Debug, Parser)]
#[command(name = "chatsdk-operator", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller (in-cluster config, or KUBECONFIG).
    Run(RunArgs),
    /// Print the ChatSDKDeployment CustomResourceDefinition as YAML.
    Crd,
    /// Print the manifests a reconcile would apply for the resources in a file, without a cluster.
    Render {
        /// YAML file with one or more ChatSDKDeployment documents (`-` for standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace for resources that name none.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Elect a leader through a Lease so that only one replica reconciles.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the leader-election Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Identity in the Lease (default: the pod name, else the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", chatsdk_crds::crd_yaml()?);
            Ok(())
        }
        Command::Render { file, namespace } => {
            let yaml = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            print!("{}", chatsdk_operator::render::render(&yaml, &namespace)?);
            Ok(())
        }
        Command::Run(args) => run(args).await,
    }
}

async fn run(args: RunArgs) -> Result<()> {
    telemetry::init_logging();
    let mut config = kube::Config::infer()
        .await
        .context("loading the Kubernetes client configuration")?;
    // Named in the API server's audit log, so its requests can be told from everyone else's.
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(concat!("chatsdk-operator/", env!("CARGO_PKG_VERSION"))),
    ));
    let client = kube::Client::try_from(config).context("connecting to Kubernetes")?;
    let metrics = Arc::new(Metrics::default());
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let metrics = metrics.clone();
        let shutdown = stopped(shutdown_rx.clone());
        async move {
            if let Err(err) = telemetry::serve(args.metrics_addr, metrics, shutdown).await {
                warn!(error = %err, "metrics server failed");
            }
        }
    });
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
        // In-flight reconciles get a grace period; a hung one must not keep the pod alive.
        tokio::time::sleep(std::time::Duration::from_secs(20)).await;
        warn!("graceful shutdown took too long; exiting");
        std::process::exit(1);
    });

    let scope = Scope {
        namespace: args.namespace,
    };
    if !args.leader_election {
        controller::run(client, scope, metrics, stopped(shutdown_rx)).await;
        return Ok(());
    }

    let identity = args
        .identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("chatsdk-operator-{}", std::process::id()));
    let lease_namespace = args.lease_namespace.unwrap_or_else(|| "default".into());
    let manager = LeaseManagerBuilder::new(client.clone(), "chatsdk-operator-leader")
        .with_namespace(&lease_namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leader, lease_task) = manager.watch().await;
    info!(%identity, lease = %lease_namespace, "waiting for leadership");
    let mut stop = shutdown_rx.clone();
    tokio::select! {
        result = leader.wait_for(|is_leader| *is_leader) => { result.context("leader election ended")?; }
        _ = stop.wait_for(|s| *s) => { lease_task.abort(); return Ok(()); }
    }
    info!(%identity, "became leader");
    // Losing the lease stops reconciling at once: another replica has taken over.
    let lost = async move {
        let _ = leader.wait_for(|is_leader| !*is_leader).await;
        warn!("lost leadership");
    };
    let mut stop = shutdown_rx.clone();
    let stop_or_lost = async move {
        tokio::select! {
            _ = lost => {},
            _ = stop.wait_for(|s| *s) => {},
        }
    };
    controller::run(client, scope, metrics, stop_or_lost).await;
    drop(lease_task);
    Ok(())
}

/// Resolves once shutdown has been requested.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
