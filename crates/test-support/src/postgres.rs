use anyhow::{Context, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

use crate::{Platform, run_detached, unique_suffix};

/// A PostgreSQL database that exists for one test, created by the platform's admin role and
/// dropped (closing any connection still open) when this guard drops.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    admin: PgConnectOptions,
    pool: PgPool,
}

impl TestDatabase {
    pub async fn create() -> Result<Self> {
        let platform = Platform::from_env();
        let admin: PgConnectOptions = platform
            .database_url
            .parse()
            .context("FTGO_DATABASE__URL is not a PostgreSQL URL")?;
        let admin = admin.disable_statement_logging();
        let name = format!("test_{}", unique_suffix());
        let mut connection = PgConnection::connect_with(&admin)
            .await
            .with_context(|| format!("connecting to {}", platform.database_url))?;
        connection
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .with_context(|| format!("creating database {name}"))?;
        connection.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(admin.clone().database(&name))
            .await
            .with_context(|| format!("connecting to database {name}"))?;
        Ok(Self { name, admin, pool })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of this database, as the admin role (for replication connections, say).
    pub fn url(&self) -> String {
        let platform = Platform::from_env().database_url;
        let base = platform
            .split_once('?')
            .map_or(platform.as_str(), |(base, _)| base);
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        format!("{server}/{}", self.name)
    }

    /// A pool on this database, as the admin role (its owner).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits until a replication connection streams `slot`. (The slot's `active` flag alone
    /// is also set while `pg_create_logical_replication_slot` waits for running transactions,
    /// before the relay has read the table: a test writing then races the relay's start.)
    pub async fn wait_until_streaming(&self, slot: &str) -> Result<()> {
        crate::wait_until(&format!("a relay streams slot {slot}"), || async {
            Ok(sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT FROM pg_replication_slots s
                                JOIN pg_stat_replication r ON r.pid = s.active_pid
                                WHERE s.slot_name = $1)",
            )
            .bind(slot)
            .fetch_one(&self.pool)
            .await?)
        })
        .await
    }
}

/// Replication slots keep a database from being dropped: their streams are ended and they are
/// dropped first (a test of the log-tailing relay may leave one behind when it fails).
async fn drop_replication_slots(connection: &mut PgConnection, database: &str) -> sqlx::Result<()> {
    for _ in 0..50 {
        sqlx::query(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
             WHERE database = $1 AND active_pid IS NOT NULL",
        )
        .bind(database)
        .execute(&mut *connection)
        .await?;
        let dropped = sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
             WHERE database = $1 AND NOT active",
        )
        .bind(database)
        .execute(&mut *connection)
        .await;
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_replication_slots WHERE database = $1")
                .bind(database)
                .fetch_one(&mut *connection)
                .await?;
        if dropped.is_ok() && left == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = self.admin.clone();
        // The pool's connections belong to the test's runtime, which is blocked while this runs;
        // closing them from here would deadlock. FORCE ends them on the server side instead.
        run_detached(async move {
            let dropped = async {
                let mut connection = PgConnection::connect_with(&admin).await?;
                drop_replication_slots(&mut connection, &name).await?;
                connection
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await?;
                connection.close().await
            };
            if let Err(error) = dropped.await {
                eprintln!("test-support: could not drop database {name}: {error}");
            }
        });
    }
}
