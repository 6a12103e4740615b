//! Prometheus metrics (`GET /metrics`, OpenMetrics text).
//!
//! Requests are counted and timed by route *template* (`/api/channels/{channel_id}/messages`,
//! never the concrete path: ids would explode the label space) and status. The drainer records
//! publish lag (outbox commit → Centrifugo acceptance) and delivery failures; the outbox depth,
//! the age of its oldest row and the pool's connections are read when scraped.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::outbox;

/// Label of requests that matched no route (scanners must not create one series per path).
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily,
    pub rate_limited: Counter,
    /// Seconds from the outbox insert (in the committing transaction) to Centrifugo's acceptance.
    pub publish_lag: Histogram,
    pub published: Counter,
    pub publish_failures: Counter,
    outbox_depth: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("chatsdk");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: HistogramFamily = Family::new_with_constructor(request_histogram);
        // 1 ms … ~25 s in steps of 1.5×: fine enough for a p99 estimate around 100 ms.
        let publish_lag = Histogram::new(exponential_buckets(0.001, 1.5, 26));
        let metrics = Self {
            http_requests,
            http_duration,
            rate_limited: Counter::default(),
            publish_lag,
            published: Counter::default(),
            publish_failures: Counter::default(),
            outbox_depth: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            pool_connections: Gauge::default(),
            pool_idle: Gauge::default(),
            pool_max: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            metrics.http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request latency by method, route template and status",
            Unit::Seconds,
            metrics.http_duration.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by the per-user rate limit",
            metrics.rate_limited.clone(),
        );
        registry.register_with_unit(
            "outbox_publish_lag",
            "Time from an event's outbox commit to Centrifugo accepting it",
            Unit::Seconds,
            metrics.publish_lag.clone(),
        );
        registry.register(
            "outbox_published",
            "Outbox events accepted by Centrifugo",
            metrics.published.clone(),
        );
        registry.register(
            "outbox_publish_failures",
            "Drainer rounds that left events queued (Centrifugo down or refusing transiently)",
            metrics.publish_failures.clone(),
        );
        registry.register(
            "outbox_depth",
            "Events waiting in the outbox",
            metrics.outbox_depth.clone(),
        );
        registry.register_with_unit(
            "outbox_oldest_age",
            "Age of the oldest queued event (drainer lag)",
            Unit::Seconds,
            metrics.outbox_oldest_age.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            metrics.pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            metrics.pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Configured maximum of database connections",
            metrics.pool_max.clone(),
        );
        Self { registry, ..metrics }
    }

    pub fn observe_request(&self, labels: HttpLabels, seconds: f64) {
        self.http_duration.get_or_create(&labels).observe(seconds);
        self.http_requests.get_or_create(&labels).inc();
    }

    /// Refreshes the gauges read from the database and the pool, then renders everything.
    pub async fn render(&self, pool: &PgPool) -> Result<String, ApiError> {
        self.pool_connections.set(i64::from(pool.size()));
        self.pool_idle
            .set(i64::try_from(pool.num_idle()).unwrap_or(i64::MAX));
        self.pool_max.set(i64::from(pool.options().get_max_connections()));
        match outbox::depth(pool).await {
            Ok((depth, oldest)) => {
                self.outbox_depth.set(depth);
                self.outbox_oldest_age.set(oldest);
            }
            // A scrape during a database outage still reports the in-process metrics.
            Err(err) => tracing::warn!(%err, "metrics: outbox depth unavailable"),
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|err| ApiError::Internal(format!("metrics encoding: {err}")))?;
        Ok(text)
    }
}

/// Times every request; the label is the matched route template.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.observe_request(
        HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        },
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "metrics",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", body = String,
        content_type = "application/openmetrics-text")))]
pub async fn handler(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.metrics.render(&state.pool).await?;
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}
