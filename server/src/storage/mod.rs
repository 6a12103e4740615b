//! PostgreSQL access: the pool, tenant-scoped transactions, migrations and the queries of each
//! aggregate. Nothing above this module writes SQL.

pub mod apps;
pub mod broker;
pub mod channels;
pub mod devices;
pub mod messages;
pub mod migrate;
pub mod moderation;
pub mod outbox;
pub mod polls;
pub mod presence;
pub mod retention;
pub mod sessions;
pub mod users;
pub mod webpush;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A transaction whose rows are limited to one app by row-level security.
pub type TenantTx = Transaction<'static, Postgres>;

/// Opens the pool. The URL carries `sslmode`, so TLS follows the deployment's setting.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.application_name("chatsdk-server"))
        .await
}

/// Begins a transaction that sees and writes only `app_id`'s rows.
///
/// `BEGIN` and the tenant setting travel in one round trip; the setting is transaction-local
/// (`set_config(.., true)`), so a pooled connection never carries it to the next request.
pub async fn begin_tenant(pool: &PgPool, app_id: Uuid) -> Result<TenantTx, sqlx::Error> {
    // A formatted UUID is hex digits and dashes only, so splicing it into SQL is safe.
    let statement = format!("BEGIN; SELECT set_config('app.current_app_id', '{app_id}', true)");
    pool.begin_with(AssertSqlSafe(statement)).await
}

/// True when `err` is a unique violation of the named constraint or index.
pub fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}
