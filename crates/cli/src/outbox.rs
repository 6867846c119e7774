//! `ftgo outbox`: the rows of a service's outbox that can never be published as they are
//! (moved aside to `outbox_failed` by its relay), and the operator's two ways out: retry a row
//! after mending its cause, or discard it. Reads the service's own database.

use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use outbox::failed::{self, Selection};
use sqlx::PgPool;

/// Which service's outbox, and where its database is.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The service: order, consumer, kitchen, accounting, restaurant or delivery.
    service: String,
    /// The service's database [default: $FTGO_<SERVICE>_DATABASE__URL, as deploy/local/env
    /// sets it].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// Which failed rows a command acts on.
#[derive(Debug, clap::Args)]
pub struct Rows {
    /// The rows' positions, as `ftgo outbox list` prints them.
    #[arg(value_name = "POSITION", required_unless_present = "all")]
    positions: Vec<i64>,
    /// Every failed row.
    #[arg(long, conflicts_with = "positions")]
    all: bool,
}

impl Target {
    /// The service's database where `FTGO_<SERVICE>_DATABASE__URL` says.
    pub fn of(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            database_url: None,
        }
    }

    fn variable(&self) -> String {
        format!("FTGO_{}_DATABASE__URL", self.service.to_uppercase())
    }

    /// A pool on the service's database, which must hold the outbox's tables.
    pub async fn pool(&self) -> Result<PgPool> {
        ensure!(
            !self.service.is_empty() && self.service.bytes().all(|b| b.is_ascii_lowercase()),
            "{:?} is not a service name: use order, consumer, kitchen, accounting, restaurant or \
             delivery",
            self.service
        );
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => std::env::var(self.variable()).with_context(|| {
                format!(
                    "where is the {} service's database? Set {} (`. deploy/local/env` does) or \
                     pass --database-url",
                    self.service,
                    self.variable()
                )
            })?,
        };
        let pool = PgPool::connect(&url)
            .await
            .with_context(|| format!("connecting to the {} service's database", self.service))?;
        let installed: bool = sqlx::query_scalar("SELECT to_regclass('outbox_failed') IS NOT NULL")
            .fetch_one(&pool)
            .await?;
        if !installed {
            bail!(
                "the {} service's database has no outbox_failed table: has the service (of this \
                 version) started once?",
                self.service
            );
        }
        Ok(pool)
    }
}

/// `ftgo outbox ddl`: the tables every service makes, as SQL (`deploy/local/bench-floor`
/// measures with them).
pub fn ddl() -> Result<ExitCode> {
    out!("{}", outbox::ddl());
    Ok(ExitCode::SUCCESS)
}

impl Rows {
    fn selection(&self) -> Selection {
        if self.all {
            Selection::All
        } else {
            Selection::Positions(self.positions.clone())
        }
    }
}

/// One line per failed row, oldest first.
pub async fn list(target: &Target) -> Result<ExitCode> {
    let pool = target.pool().await?;
    let rows = failed::list(&pool).await?;
    if rows.is_empty() {
        out!("no failed rows in the {} service's outbox", target.service);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:>10}  {:<24}  {:<28}  {:<36}  {:<28}  {:>7}  reason",
        "position",
        "failed at",
        "topic",
        "key",
        "type",
        "waiting"
    );
    for row in &rows {
        out!(
            "{:>10}  {:<24}  {:<28}  {:<36}  {:<28}  {:>7}  {}",
            row.position,
            row.failed_at,
            row.topic,
            row.key.as_deref().unwrap_or("-"),
            row.message_type.as_deref().unwrap_or("-"),
            row.waiting,
            row.reason
        );
    }
    out!(
        "{} failed; the waiting rows of their keys are published once each is retried \
         (ftgo outbox retry {} POSITION) or discarded (ftgo outbox discard {} POSITION)",
        rows.len(),
        target.service,
        target.service
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks that every named position is a failed row, so a typo changes nothing.
async fn known(pool: &PgPool, target: &Target, rows: &Rows) -> Result<()> {
    if rows.all {
        return Ok(());
    }
    let failed: Vec<i64> = failed::list(pool)
        .await?
        .iter()
        .map(|row| row.position)
        .collect();
    let unknown: Vec<String> = rows
        .positions
        .iter()
        .filter(|p| !failed.contains(p))
        .map(i64::to_string)
        .collect();
    ensure!(
        unknown.is_empty(),
        "no failed row at position {} (ftgo outbox list {} shows them); nothing changed",
        unknown.join(", "),
        target.service
    );
    Ok(())
}

pub async fn retry(target: &Target, rows: &Rows) -> Result<ExitCode> {
    let pool = target.pool().await?;
    known(&pool, target, rows).await?;
    let retried = failed::retry(&pool, &rows.selection()).await?;
    out!(
        "{retried} rows back in the outbox at their positions: each is published before the \
         rows of its key that waited (one that fails again is moved aside again)"
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn discard(target: &Target, rows: &Rows) -> Result<ExitCode> {
    let pool = target.pool().await?;
    known(&pool, target, rows).await?;
    let discarded = failed::discard(&pool, &rows.selection()).await?;
    out!(
        "{discarded} rows discarded: their messages are never published, and the rows of their \
         keys that waited are published now"
    );
    Ok(ExitCode::SUCCESS)
}
