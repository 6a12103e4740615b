//! The outbox drainer: publishes queued events to Centrifugo, at least once and in commit order.
//!
//! Woken by `NOTIFY chatsdk_outbox` (sent at commit by the outbox trigger) through a
//! `PgListener`; a slow safety timer covers notifications lost while the listener reconnects.
//! Each round, in one transaction: take the drainer advisory lock (one publisher per database,
//! so several replicas neither duplicate nor reorder), read the oldest rows, publish them in one
//! Centrifugo `batch`, and delete exactly the rows Centrifugo accepted. When Centrifugo is
//! unreachable the rows stay (their `attempts` counted) and the drainer backs off
//! exponentially; rows written while no server ran are published at the next start.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::centrifugo::{Centrifugo, CentrifugoError, Outcome, Publication};
use crate::metrics::Metrics;
use crate::storage::outbox;

pub const NOTIFY_CHANNEL: &str = "chatsdk_outbox";

#[derive(Debug, Clone)]
pub struct DrainerConfig {
    /// Rows per Centrifugo batch.
    pub batch_size: i64,
    /// Drain this often even without a notification.
    pub safety_interval: Duration,
    /// Wait while another replica holds the drainer lock.
    pub busy_interval: Duration,
    /// After a wake-up, let the burst of commits behind it land so one round carries them all
    /// (each round costs a handful of statements; at thousands of sends per second, rounds of
    /// one event would cost the database more than the sends).
    pub coalesce: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for DrainerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            safety_interval: Duration::from_secs(30),
            busy_interval: Duration::from_millis(250),
            coalesce: Duration::from_millis(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Centrifugo(#[from] CentrifugoError),
    #[error("{0} events refused transiently, first: {1}")]
    Transient(usize, String),
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Nothing queued.
    Empty,
    /// Another drainer holds the lock.
    Busy,
    /// This many rows left the outbox (accepted, or refused for good and logged).
    Published(usize),
}

#[derive(Debug, Clone)]
pub struct Drainer {
    pool: PgPool,
    centrifugo: Centrifugo,
    config: DrainerConfig,
    metrics: Option<Arc<Metrics>>,
}

/// A running drainer; `stop` ends it after its current round.
#[derive(Debug)]
pub struct DrainerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DrainerHandle {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Drainer {
    pub fn new(pool: PgPool, centrifugo: Centrifugo, config: DrainerConfig) -> Self {
        Self {
            pool,
            centrifugo,
            config,
            metrics: None,
        }
    }

    /// Records publish lag, deliveries and failures (the server passes its `/metrics` set).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn spawn(self) -> DrainerHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        DrainerHandle { stop, task }
    }

    /// One transaction: lock, read, publish, delete what was delivered.
    pub async fn drain_once(&self) -> Result<Round, DrainError> {
        let Some(mut tx) = outbox::begin_drain(&self.pool).await? else {
            return Ok(Round::Busy);
        };
        let rows = outbox::claim(&mut tx, self.config.batch_size).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Round::Empty);
        }
        let publications: Vec<Publication<'_>> = rows
            .iter()
            .map(|row| Publication {
                channels: &row.channels,
                data: &row.payload,
                idempotency_key: Some(format!("outbox:{}:{}", row.app_id, row.id)),
            })
            .collect();
        let outcomes = match self.centrifugo.batch(&publications).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                outbox::record_attempt(&mut tx, &ids).await?;
                tx.commit().await?;
                if let Some(metrics) = &self.metrics {
                    metrics.publish_failures.inc();
                }
                return Err(err.into());
            }
        };
        let (mut done, mut accepted, mut retry, mut first_retry) = (Vec::new(), Vec::new(), Vec::new(), None);
        for (row, outcome) in rows.iter().zip(outcomes) {
            match outcome {
                Outcome::Accepted => {
                    done.push(row.id);
                    accepted.push(row.id);
                }
                Outcome::Rejected(reason) => {
                    // Centrifugo will never take it (e.g. unknown namespace): keeping it would
                    // retry forever, so it is logged and dropped.
                    tracing::error!(id = row.id, app_id = %row.app_id, %reason, "event refused by centrifugo, dropped");
                    done.push(row.id);
                }
                Outcome::Retry(reason) => {
                    first_retry.get_or_insert(reason);
                    retry.push(row.id);
                }
            }
        }
        let removed = outbox::remove(&mut tx, &done).await?;
        outbox::record_attempt(&mut tx, &retry).await?;
        tx.commit().await?;
        if let Some(metrics) = &self.metrics {
            let accepted: std::collections::HashSet<i64> = accepted.into_iter().collect();
            for (_, lag) in removed.iter().filter(|(id, _)| accepted.contains(id)) {
                metrics.publish_lag.observe(*lag);
            }
            metrics.published.inc_by(accepted.len() as u64);
            if !retry.is_empty() {
                metrics.publish_failures.inc();
            }
        }
        match first_retry {
            Some(reason) => Err(DrainError::Transient(retry.len(), reason)),
            None => Ok(Round::Published(done.len())),
        }
    }

    /// Rounds until the outbox is empty (or another drainer has it). Returns the rows published.
    /// A round short of a full batch saw everything committed before it: later commits notify,
    /// so no extra round is spent to see the outbox empty.
    pub async fn drain(&self) -> Result<(Round, usize), DrainError> {
        let mut total = 0;
        loop {
            match self.drain_once().await? {
                Round::Published(n) if (n as i64) < self.config.batch_size => {
                    return Ok((Round::Published(n), total + n));
                }
                Round::Published(n) => total += n,
                other => return Ok((other, total)),
            }
        }
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(listener)
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut listener: Option<PgListener> = None;
        let mut backoff = self.config.backoff_min;
        while !*stop.borrow() {
            // Listen before draining, so a commit during the round still wakes the next one.
            if listener.is_none() {
                match self.listen().await {
                    Ok(l) => listener = Some(l),
                    Err(err) => tracing::warn!(%err, "outbox listener unavailable; draining on a timer"),
                }
            }
            let wait = match self.drain().await {
                Ok((round, published)) => {
                    backoff = self.config.backoff_min;
                    if published > 0 {
                        tracing::debug!(published, "outbox drained");
                    }
                    if round == Round::Busy {
                        self.config.busy_interval
                    } else {
                        self.config.safety_interval
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, retry_in_ms = backoff.as_millis() as u64, "outbox delivery failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                    // During an outage only the backoff wakes us: notifications would hammer it.
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            };
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(wait) => {}
                lost = wait_notification(&mut listener) => {
                    // A wake-up folds the rest of its burst into the next round.
                    if lost || fold_burst(&mut listener, self.config.coalesce).await {
                        listener = None;
                    }
                }
            }
        }
    }
}

/// Takes in the notifications of the commits that land within `window` after a wake-up: each
/// commit sends one, and the next round reads them all. Only notifications that arrive before
/// that round are consumed, so none announcing a later commit is lost. True when the listener
/// failed and must be rebuilt.
async fn fold_burst(listener: &mut Option<PgListener>, window: Duration) -> bool {
    let Some(l) = listener else {
        return false;
    };
    let until = tokio::time::Instant::now() + window;
    while let Ok(received) = tokio::time::timeout_at(until, l.try_recv()).await {
        if let Err(err) = received {
            tracing::warn!(%err, "outbox listener failed");
            return true;
        }
    }
    false
}

/// Waits for a notification; true when the listener failed and must be rebuilt.
async fn wait_notification(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(l) => match l.try_recv().await {
            Ok(Some(_)) => false,
            // Reconnected: notifications may have been missed, so drain now (the caller does).
            Ok(None) => false,
            Err(err) => {
                tracing::warn!(%err, "outbox listener failed");
                true
            }
        },
        None => std::future::pending().await,
    }
}
