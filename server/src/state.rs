//! Shared state of the HTTP handlers.

use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;

use crate::audit::AuditSink;
use crate::centrifugo::Centrifugo;
use crate::config::Config;
use crate::domain::tokens::TokenService;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::webpush::WebPush;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenService>,
    pub audit: Arc<dyn AuditSink>,
    /// Direct publishing of non-durable events (typing); `None` without `CENTRIFUGO_API_URL`.
    pub centrifugo: Option<Centrifugo>,
    pub started: Instant,
    pub metrics: Arc<Metrics>,
    /// Per-user request budget; `None` when `RATE_LIMIT_PER_MINUTE` is unset.
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// Web Push delivery; `None` without VAPID keys.
    pub web_push: Option<Arc<WebPush>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, audit: Arc<dyn AuditSink>) -> Self {
        let centrifugo = config.centrifugo.api_url.as_deref().and_then(|url| {
            Centrifugo::new(url, config.centrifugo.api_key.clone())
                .map_err(|err| tracing::error!(%err, "centrifugo client unavailable"))
                .ok()
        });
        let rate_limit = config
            .rate_limit
            .map(|limit| Arc::new(RateLimiter::new(limit.per_minute, limit.burst)));
        let web_push = config.web_push.clone().and_then(|vapid| {
            WebPush::new(vapid)
                .map(Arc::new)
                .map_err(|err| tracing::error!(%err, "web push client unavailable"))
                .ok()
        });
        Self {
            web_push,
            rate_limit,
            metrics: Arc::new(Metrics::new()),
            pool,
            centrifugo,
            tokens: Arc::new(TokenService::new(&config)),
            config: Arc::new(config),
            audit,
            started: Instant::now(),
        }
    }
}
