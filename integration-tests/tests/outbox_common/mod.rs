//! What the outbox crash and restart tests share: a run (its own database, topic, group and
//! log directory), the relay and consumer processes (`src/bin/outbox-*`), and the final check
//! of every record.

#![allow(dead_code)] // each test file uses its part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Result, ensure};
use messaging::Message;
use sqlx::PgPool;
use test_support::{Platform, TestDatabase, TestTopic, unique_group, unique_suffix};

pub const KEYS: u32 = 50;
pub const PER_KEY: u32 = 40;
pub const TOTAL: usize = (KEYS * PER_KEY) as usize;

pub struct Run {
    pub database: TestDatabase,
    pub topic: TestTopic,
    pub group: String,
    pub dir: PathBuf,
}

impl Run {
    pub async fn new(purpose: &str) -> Result<Self> {
        let database = TestDatabase::create().await?;
        outbox::install(database.pool()).await?;
        sqlx::query(integration_tests::EFFECTS_TABLE)
            .execute(database.pool())
            .await?;
        let dir = std::env::temp_dir().join(format!("ftgo-{purpose}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            database,
            topic: TestTopic::create(purpose, 6).await?,
            group: unique_group(purpose),
            dir,
        })
    }

    pub fn pool(&self) -> &PgPool {
        self.database.pool()
    }

    pub fn deliveries(&self) -> PathBuf {
        self.dir.join("deliveries")
    }

    /// Appends every key's sequence numbers, a round of all keys per transaction.
    pub async fn write_all(&self) -> Result<()> {
        for sequence in 0..PER_KEY {
            let mut tx = self.pool().begin().await?;
            for key in 0..KEYS {
                outbox::append(&mut tx, self.topic.name(), &step(key, sequence)).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    pub fn consumer(&self, crash_after_commits: Option<usize>) -> Result<Child> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_outbox-consumer"));
        command
            .args([self.topic.name(), &self.group, &self.database.url()])
            .arg(self.deliveries())
            .env(
                "FTGO_KAFKA__BOOTSTRAP_SERVERS",
                Platform::from_env().bootstrap_servers,
            )
            .stderr(std::fs::File::create(
                self.dir.join(format!("consumer-{}.log", unique_suffix())),
            )?);
        if let Some(n) = crash_after_commits {
            command.env("FTGO_CRASH_AFTER_COMMITS", n.to_string());
        }
        Ok(command.spawn()?)
    }

    pub fn relay(&self, args: &[&str], crash_after_acks: Option<usize>) -> Result<Child> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_outbox-relay"));
        command
            .args(args)
            .env(
                "FTGO_KAFKA__BOOTSTRAP_SERVERS",
                Platform::from_env().bootstrap_servers,
            )
            .stderr(std::fs::File::create(
                self.dir.join(format!("relay-{}.log", unique_suffix())),
            )?);
        if let Some(n) = crash_after_acks {
            command.env("FTGO_CRASH_AFTER_ACKS", n.to_string());
        }
        Ok(command.spawn()?)
    }

    pub async fn wait_for_effects(&self, count: i64, seconds: u64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            // The database may be restarting: count nothing then.
            let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
                .fetch_one(self.pool())
                .await
                .unwrap_or_default();
            if effects >= count {
                return Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{effects} of {count} effects (logs in {})",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every record on the topic, not only the effects: every message is there, and a key's
    /// later record never shows before the first of an earlier one (a duplicate may follow,
    /// never overtake). Returns (records, duplicates).
    pub fn check_topic(&self) -> Result<(usize, usize)> {
        let records = kafka::read_topic(
            &Platform::from_env().bootstrap_servers,
            self.topic.name(),
            Duration::from_secs(60),
        )?;
        let steps = records
            .iter()
            .map(|r| {
                let key = r.message.key.as_deref().unwrap_or_default();
                let sequence: u32 = std::str::from_utf8(&r.message.payload)?.parse()?;
                Ok((key, sequence))
            })
            .collect::<Result<Vec<_>>>()?;
        let duplicates = test_support::check_per_key_order(steps, KEYS as usize, PER_KEY)?;
        Ok((records.len(), duplicates))
    }

    /// Every message's effect exactly once, every key's effects in order, every outbox row
    /// delivered. Returns (records on the topic, deliveries seen by consumers).
    pub async fn check(&self) -> Result<(usize, usize)> {
        let rows: Vec<(String, String, i32)> =
            sqlx::query_as("SELECT message_id, key, sequence FROM effects ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        ensure!(rows.len() == TOTAL, "{} effects of {TOTAL}", rows.len());
        let mut ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ensure!(
            ids.len() == TOTAL,
            "{} duplicate effects",
            TOTAL - ids.len()
        );
        let mut by_key: HashMap<&str, Vec<i32>> = HashMap::new();
        for (_, key, sequence) in &rows {
            by_key.entry(key).or_default().push(*sequence);
        }
        for (key, sequences) in by_key {
            ensure!(
                sequences == (0..PER_KEY as i32).collect::<Vec<_>>(),
                "{key} out of order: {sequences:?}"
            );
        }
        // Every row is published and deleted: the polling relay deletes a row once it is
        // published; the log-tailing relay deletes rows a crash left once its stream has
        // passed them.
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(self.pool())
            .await?;
        ensure!(left == 0, "{left} rows left in the outbox");
        let on_topic = self.check_topic()?.0;
        let deliveries = std::fs::read_to_string(self.deliveries()).unwrap_or_default();
        Ok((on_topic, deliveries.lines().count()))
    }
}

pub fn step(key: u32, sequence: u32) -> Message {
    Message::new(
        Some(format!("order-{key}")),
        sequence.to_string().into_bytes(),
    )
}

pub fn wait_killed(child: &mut Child, what: &str) -> Result<()> {
    let status = child.wait()?;
    ensure!(
        !status.success() && status.code().is_none(),
        "{what} was expected to be killed, but exited with {status}"
    );
    Ok(())
}

pub fn terminate(child: &mut Child) -> Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    ensure!(child.wait()?.success(), "did not stop cleanly");
    Ok(())
}

pub fn local(script: &str, args: &[&str]) -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/local")
        .join(script);
    let status = Command::new(path).args(args).status()?;
    ensure!(status.success(), "deploy/local/{script} {args:?} failed");
    Ok(())
}

/// Writes every key's sequence numbers one transaction at a time, through database outages: a
/// failed transaction is tried again from the state the database holds.
pub async fn write_through_outages(pool: PgPool, topic: String) -> Result<()> {
    sqlx::query("CREATE TABLE written (key int PRIMARY KEY, next int NOT NULL)")
        .execute(&pool)
        .await?;
    for sequence in 0..PER_KEY {
        for key in 0..KEYS {
            loop {
                let attempt = async {
                    let mut tx = pool.begin().await?;
                    let next: Option<i32> =
                        sqlx::query_scalar("SELECT next FROM written WHERE key = $1 FOR UPDATE")
                            .bind(key as i32)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if next.unwrap_or(0) as u32 > sequence {
                        return anyhow::Ok(()); // committed before the connection dropped
                    }
                    outbox::append(&mut tx, &topic, &step(key, sequence)).await?;
                    sqlx::query(
                        "INSERT INTO written (key, next) VALUES ($1, $2)
                         ON CONFLICT (key) DO UPDATE SET next = $2",
                    )
                    .bind(key as i32)
                    .bind(sequence as i32 + 1)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                };
                if attempt.await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(())
}
