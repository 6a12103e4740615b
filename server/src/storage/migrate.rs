//! Schema migrations (plain SQL files under `migrations/`, embedded in the binary).
//!
//! Several pods may start at once; each runs `migrate` under one PostgreSQL advisory lock, so
//! exactly one applies the pending files while the others wait and then find nothing to do.

use std::borrow::Cow;
use std::collections::HashMap;

use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType, Migrator};
use sqlx::{PgPool, SqlSafeStr};

/// Every migration, in order. A unit test checks that each file of `migrations/` is listed.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "baseline", include_str!("../../migrations/0001_baseline.sql")),
    (
        2,
        "pins_blocks",
        include_str!("../../migrations/0002_pins_blocks.sql"),
    ),
    (
        3,
        "token_subject",
        include_str!("../../migrations/0003_token_subject.sql"),
    ),
    (
        4,
        "send_in_one_statement",
        include_str!("../../migrations/0004_send_in_one_statement.sql"),
    ),
    (
        30,
        "token_broker",
        include_str!("../../migrations/0030_token_broker.sql"),
    ),
    (31, "polls", include_str!("../../migrations/0031_polls.sql")),
    (
        32,
        "moderation",
        include_str!("../../migrations/0032_moderation.sql"),
    ),
    (
        33,
        "devices_webpush",
        include_str!("../../migrations/0033_devices_webpush.sql"),
    ),
];

/// Advisory lock key of the migration step ("chatsdkm" in ASCII).
const MIGRATION_LOCK: i64 = 0x6368_6174_7364_6b6d;

pub fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    // Our own lock (below) covers the whole run; sqlx's would only nest inside it.
    migrator.set_locking(false);
    migrator
}

/// Applies pending migrations under the advisory lock.
pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = migrator().run(&mut *conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // A session lock dies with its connection: close it rather than pool it still locked.
        drop(conn.detach());
    }
    result
}

/// Versions not (or not successfully) applied, or applied with a different checksum.
pub async fn pending(pool: &PgPool) -> Result<Vec<i64>, MigrateError> {
    let mut conn = pool.acquire().await?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let applied: HashMap<i64, Vec<u8>> = if exists {
        conn.list_applied_migrations("_sqlx_migrations")
            .await?
            .into_iter()
            .map(|m| (m.version, m.checksum.into_owned()))
            .collect()
    } else {
        HashMap::new()
    };
    Ok(migrator()
        .iter()
        .filter(|m| applied.get(&m.version).map(Vec::as_slice) != Some(&*m.checksum))
        .map(|m| m.version)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(v, d, _)| format!("{v:04}_{d}.sql"))
            .collect();
        assert_eq!(files, listed);
        Ok(())
    }
}
