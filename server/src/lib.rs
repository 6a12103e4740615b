//! `chatsdk-server`: a drop-in replacement for the upstream ChatSDK API server.
//!
//! Layers, outermost first: `routes` (axum handlers: extract, call the domain, shape JSON per
//! `docs/wire-contract.md`) → `domain` (rules: auth and sessions, roles, channels, sequencing)
//! → `storage` (sqlx queries in tenant-scoped transactions; migrations in `migrations/`).
//! `audit` writes one JSON line per request; `config` reads the environment; `drainer` publishes
//! the outbox to Centrifugo (`centrifugo` is its HTTP client).

pub mod audit;
pub mod centrifugo;
pub mod config;
pub mod domain;
pub mod drainer;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod storage;
pub mod webpush;
pub mod wire;

use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use config::Config;
pub use state::AppState;

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
