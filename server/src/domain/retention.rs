//! `chatsdk-server retention --days N`: archive messages older than N days, app by app, batch
//! by batch. Each batch commits on its own, so an interrupted run loses nothing and a re-run
//! continues where it stopped.

use chrono::{Duration, Utc};
use serde_json::json;
use sqlx::PgPool;

use crate::storage::retention;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    pub apps: usize,
    pub archived: u64,
    pub batches: u64,
}

pub async fn run(pool: &PgPool, days: u32, batch_size: i64) -> Result<RetentionReport, sqlx::Error> {
    let cutoff = Utc::now() - Duration::days(i64::from(days));
    let batch_size = batch_size.max(1);
    let mut report = RetentionReport::default();
    for app_id in retention::app_ids(pool).await? {
        let (mut archived, mut batches) = (0u64, 0u64);
        loop {
            let moved = retention::archive_batch(pool, app_id, cutoff, batch_size).await?;
            if moved == 0 {
                break;
            }
            archived += moved;
            batches += 1;
        }
        let metadata = json!({ "days": days, "cutoff": cutoff, "archived": archived, "batches": batches, "batchSize": batch_size });
        retention::record(pool, app_id, &metadata).await?;
        tracing::info!(%app_id, archived, batches, "retention: app done");
        report.apps += 1;
        report.archived += archived;
        report.batches += batches;
    }
    Ok(report)
}
