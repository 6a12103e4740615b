//! `chatsdk-server`: the ChatSDK chat API (`serve`), its schema migrations (`migrate`) and
//! message retention (`retention`).

use std::process::ExitCode;
use std::sync::Arc;

use chatsdk_server::audit::StdoutSink;
use chatsdk_server::domain::retention;
use chatsdk_server::drainer::{Drainer, DrainerConfig};
use chatsdk_server::storage::{self, migrate};
use chatsdk_server::{AppState, Config};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// ChatSDK chat API server (drop-in replacement for the upstream TypeScript server).
#[derive(Debug, Parser)]
#[command(name = "chatsdk-server", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (PORT, default 5501).
    Serve,
    /// Apply pending schema migrations (safe when several pods start at once).
    Migrate,
    /// Move messages older than N days to `archived_messages`.
    Retention {
        #[arg(long)]
        days: u32,
        #[arg(long, default_value_t = 1000)]
        batch_size: i64,
    },
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error("configuration: {0}")]
    Config(#[from] chatsdk_server::config::ConfigError),
    #[error("DATABASE_URL is required")]
    NoDatabase,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

fn init_tracing(level: &str) {
    // Operational logs go to stderr; stdout carries only the audit lines.
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn run(cli: Cli) -> Result<(), MainError> {
    match cli.command {
        Command::Serve => {
            let config = Config::from_env()?;
            init_tracing(&config.log_level);
            tracing::info!(?config, "starting");
            let pool = storage::connect(&config.database_url, 32).await?;
            let listener = TcpListener::bind(("0.0.0.0", config.port)).await?;
            let state = AppState::new(pool.clone(), config, Arc::new(StdoutSink));
            // Without Centrifugo, events wait in the outbox until a configured server starts.
            let drainer = match &state.centrifugo {
                Some(client) => Some(
                    Drainer::new(pool, client.clone(), DrainerConfig::default())
                        .with_metrics(state.metrics.clone())
                        .spawn(),
                ),
                None => {
                    tracing::warn!("CENTRIFUGO_API_URL unset: real-time events stay queued");
                    None
                }
            };
            chatsdk_server::serve(listener, state, shutdown_signal()).await?;
            if let Some(drainer) = drainer {
                drainer.stop().await;
            }
        }
        Command::Migrate | Command::Retention { .. } => {
            // These need the database only, not the JWT or Centrifugo secrets.
            let url = std::env::var("DATABASE_URL").map_err(|_| MainError::NoDatabase)?;
            init_tracing(&std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into()));
            let pool = storage::connect(&url, 2).await?;
            if let Command::Retention { days, batch_size } = cli.command {
                let report = retention::run(&pool, days, batch_size).await?;
                tracing::info!(?report, "retention done");
            } else {
                migrate::run(&pool).await?;
                tracing::info!("migrations applied");
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chatsdk-server: {err}");
            ExitCode::FAILURE
        }
    }
}
