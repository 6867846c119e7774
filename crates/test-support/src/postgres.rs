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

    /// A pool on this database, as the admin role (its owner).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
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
