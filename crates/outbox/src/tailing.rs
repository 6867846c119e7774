//! The log-tailing relay: reads the outbox's inserts from PostgreSQL's write-ahead log through
//! logical replication (a publication on the outbox, a slot with the `pgoutput` plugin) and
//! publishes them in commit order.
//!
//! - Messages are handed to the producer transaction by transaction, in the order the
//!   transactions committed; the idempotent producer keeps that order per partition.
//! - The slot's confirmed position advances to a transaction's end only after Kafka has
//!   acknowledged every message of it and of every transaction before it; a restart resumes
//!   from there, so nothing is lost (what was published but not confirmed comes again, and
//!   consumers absorb it).
//! - When nothing is in flight, keepalives' WAL positions are confirmed too, so an idle outbox
//!   does not make the slot hold back WAL that other tables write.
//! - Published rows are deleted in batches (the publication carries inserts only, so the
//!   deletes do not come back through the stream); rows left by a crash between publication and
//!   deletion are swept on start once they are older than `sweep_after`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use messaging::{Message, Publisher};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use sqlx::PgPool;

use crate::OutboxError;
use crate::append::headers_from_json;
use crate::pgoutput::{self, Change, Relations, bytea_from_text};

/// Where and how the relay tails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailingSettings {
    /// `postgres://user:password@host:port/database`: a role with the REPLICATION attribute.
    pub database_url: String,
    /// The replication slot (one per service): it keeps the WAL the relay has not confirmed.
    pub slot: String,
    /// The publication on the outbox table (inserts only).
    pub publication: String,
    /// Messages handed to the producer and not yet acknowledged, beyond which the relay stops
    /// reading the stream. Below librdkafka's local queue (100,000), so handing over never
    /// waits and transactions stay in order.
    pub max_in_flight: usize,
    /// How often published rows are deleted.
    pub cleanup_every: Duration,
    /// How often the confirmed position is reported to the server.
    pub status_interval: Duration,
    /// Rows older than this are swept from the outbox on start (left by a crash after their
    /// publication); the stream, not the table, is what the relay reads.
    pub sweep_after: Duration,
}

impl TailingSettings {
    pub fn new(database_url: &str, slot: &str, publication: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            slot: slot.to_owned(),
            publication: publication.to_owned(),
            max_in_flight: 20_000,
            cleanup_every: Duration::from_millis(200),
            status_interval: Duration::from_millis(200),
            sweep_after: Duration::from_secs(3_600),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for (what, name) in [("slot", &self.slot), ("publication", &self.publication)] {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "the {what} name {name:?} must be lower-case letters, digits and _"
                ));
            }
        }
        if self.max_in_flight == 0 || self.max_in_flight >= 100_000 {
            return Err("max_in_flight must be between 1 and 99,999".into());
        }
        Ok(())
    }

    fn replication_config(&self) -> Result<ReplicationConfig, OutboxError> {
        let url = url::Url::parse(&self.database_url)
            .map_err(|e| OutboxError::Settings(format!("database_url: {e}")))?;
        let decode = |text: &str| {
            url::form_urlencoded::parse(format!("x={text}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let config = ReplicationConfig::new(
            url.host_str().unwrap_or("127.0.0.1"),
            decode(url.username()),
            decode(url.password().unwrap_or("")),
            url.path().trim_start_matches('/'),
            self.slot.clone(),
            self.publication.as_str(),
        )
        .with_port(url.port().unwrap_or(5432))
        .with_tls(TlsConfig::disabled())
        .with_status_interval(self.status_interval)
        .with_application_name(format!("ftgo-outbox-{}", self.slot));
        Ok(config)
    }
}

/// Creates the publication and the slot if they do not exist (idempotent; every relay runs it
/// at start). The slot starts at the current end of the WAL: outbox rows committed before it
/// existed are not in its stream.
pub async fn create_slot(pool: &PgPool, settings: &TailingSettings) -> Result<(), OutboxError> {
    settings.validate().map_err(OutboxError::Settings)?;
    let has_publication: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1)")
            .bind(&settings.publication)
            .fetch_one(pool)
            .await?;
    if !has_publication {
        let create = format!(
            "CREATE PUBLICATION {} FOR TABLE outbox WITH (publish = 'insert')",
            settings.publication
        );
        sqlx::query(&create).execute(pool).await?;
    }
    let has_slot: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)")
            .bind(&settings.slot)
            .fetch_one(pool)
            .await?;
    if !has_slot {
        sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
            .bind(&settings.slot)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Drops the slot and the publication (a service that stops using this relay must, or the
/// slot keeps WAL forever). The relay must be stopped.
pub async fn drop_slot(pool: &PgPool, settings: &TailingSettings) -> Result<(), OutboxError> {
    settings.validate().map_err(OutboxError::Settings)?;
    sqlx::query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
         WHERE slot_name = $1",
    )
    .bind(&settings.slot)
    .execute(pool)
    .await?;
    sqlx::query(&format!(
        "DROP PUBLICATION IF EXISTS {}",
        settings.publication
    ))
    .execute(pool)
    .await?;
    Ok(())
}

type Acknowledged = Pin<Box<dyn Future<Output = Result<(Lsn, Vec<i64>), OutboxError>> + Send>>;

/// Publishes the outbox from the write-ahead log. One per service at a time (a slot streams
/// to one connection).
#[derive(Debug, Clone)]
pub struct TailingRelay<P> {
    pool: PgPool,
    publisher: P,
    settings: TailingSettings,
}

/// Why a session ended without a shutdown.
enum SessionEnd {
    Shutdown(u64),
    Failed(u64, OutboxError),
}

impl<P: Publisher + Clone + 'static> TailingRelay<P> {
    pub fn new(pool: PgPool, publisher: P, settings: TailingSettings) -> Self {
        Self {
            pool,
            publisher,
            settings,
        }
    }

    /// Relays until `shutdown` completes, reconnecting (from the last confirmed position)
    /// after a failure of the database, the stream or Kafka. Returns how many messages it
    /// published.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<u64, OutboxError> {
        self.settings.validate().map_err(OutboxError::Settings)?;
        create_slot(&self.pool, &self.settings).await?;
        self.sweep().await?;
        tokio::pin!(shutdown);
        let mut published = 0;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.session(&mut shutdown).await {
                SessionEnd::Shutdown(n) => return Ok(published + n),
                SessionEnd::Failed(n, error) => {
                    published += n;
                    tracing::warn!(%error, wait_ms = backoff.as_millis() as u64,
                        "log-tailing relay failed; resuming from the confirmed position");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return Ok(published),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn sweep(&self) -> Result<(), OutboxError> {
        let swept =
            sqlx::query("DELETE FROM outbox WHERE created_at < now() - make_interval(secs => $1)")
                .bind(self.settings.sweep_after.as_secs_f64())
                .execute(&self.pool)
                .await?;
        if swept.rows_affected() > 0 {
            tracing::info!(
                rows = swept.rows_affected(),
                "swept published rows left by a crash"
            );
        }
        Ok(())
    }

    async fn delete(&self, positions: &mut Vec<i64>) -> Result<(), OutboxError> {
        if positions.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
            .bind(&*positions)
            .execute(&self.pool)
            .await?;
        positions.clear();
        Ok(())
    }

    /// One replication connection, until shutdown or a failure.
    async fn session<S: Future<Output = ()> + Unpin>(&self, shutdown: &mut S) -> SessionEnd {
        let mut published = 0u64;
        let config = match self.settings.replication_config() {
            Ok(config) => config,
            Err(error) => return SessionEnd::Failed(0, error),
        };
        let mut client = match ReplicationClient::connect(config).await {
            Ok(client) => client,
            Err(error) => {
                return SessionEnd::Failed(0, OutboxError::Replication(error.to_string()));
            }
        };
        let mut relations = Relations::default();
        // The transaction being read: (position, topic, message).
        let mut transaction: Vec<(i64, String, Message)> = Vec::new();
        let mut in_transaction = false;
        // Transactions handed to the producer, in commit order, each done when Kafka has
        // acknowledged all of its messages.
        let mut acknowledged: FuturesOrdered<Acknowledged> = FuturesOrdered::new();
        let mut in_flight = 0usize;
        let mut sizes = std::collections::VecDeque::new();
        let mut published_rows: Vec<i64> = Vec::new();
        let mut cleanup = tokio::time::interval(self.settings.cleanup_every);
        let failure = loop {
            tokio::select! {
                biased;
                () = &mut *shutdown => break None,
                Some(done) = acknowledged.next(), if !acknowledged.is_empty() => match done {
                    Ok((lsn, positions)) => {
                        let size: usize = sizes.pop_front().unwrap_or(0);
                        in_flight -= size;
                        published += size as u64;
                        client.update_applied_lsn(lsn);
                        published_rows.extend(positions);
                    }
                    Err(error) => break Some(error),
                },
                _ = cleanup.tick() => {
                    if let Err(error) = self.delete(&mut published_rows).await {
                        break Some(error);
                    }
                }
                event = client.recv(), if in_flight < self.settings.max_in_flight => {
                    let event = match event {
                        Ok(Some(event)) => event,
                        Ok(None) => break Some(OutboxError::Replication("the stream ended".into())),
                        Err(error) => break Some(OutboxError::Replication(error.to_string())),
                    };
                    match event {
                        ReplicationEvent::Begin { .. } => {
                            transaction.clear();
                            in_transaction = true;
                        }
                        ReplicationEvent::XLogData { data, .. } => {
                            if let Err(error) = self.read_change(&data, &mut relations, &mut transaction) {
                                break Some(error);
                            }
                        }
                        ReplicationEvent::Commit { end_lsn, .. } => {
                            in_transaction = false;
                            let size = transaction.len();
                            let (positions, sends): (Vec<i64>, Vec<_>) = transaction
                                .drain(..)
                                .map(|(position, topic, message)| {
                                    let publisher = self.publisher.clone();
                                    (position, async move { publisher.publish(&topic, &message).await })
                                })
                                .unzip();
                            in_flight += size;
                            sizes.push_back(size);
                            // join_all polls the sends in order, so they reach the producer's
                            // queue in commit order (the queue never fills: max_in_flight).
                            acknowledged.push_back(Box::pin(async move {
                                for delivered in futures::future::join_all(sends).await {
                                    delivered?;
                                }
                                Ok((end_lsn, positions))
                            }));
                        }
                        ReplicationEvent::KeepAlive { wal_end, .. } => {
                            // Nothing read and unacknowledged: everything before this position
                            // is published, or is a transaction that will commit after it.
                            if acknowledged.is_empty() && !in_transaction {
                                client.update_applied_lsn(wal_end);
                            }
                        }
                        ReplicationEvent::Message { .. } => {}
                        ReplicationEvent::StoppedAt { .. } => {
                            break Some(OutboxError::Replication("the stream stopped".into()));
                        }
                    }
                }
            }
        };
        if let Some(error) = failure {
            return SessionEnd::Failed(published, error);
        }
        // Shutdown: what was handed to the producer is acknowledged and confirmed first.
        while let Some(done) = acknowledged.next().await {
            match done {
                Ok((lsn, positions)) => {
                    published += sizes.pop_front().unwrap_or(0) as u64;
                    client.update_applied_lsn(lsn);
                    published_rows.extend(positions);
                }
                Err(error) => return SessionEnd::Failed(published, error),
            }
        }
        if let Err(error) = self.delete(&mut published_rows).await {
            return SessionEnd::Failed(published, error);
        }
        // Let the worker report the confirmed position before the stream closes.
        tokio::time::sleep(self.settings.status_interval + Duration::from_millis(50)).await;
        let _ = client.shutdown().await;
        SessionEnd::Shutdown(published)
    }

    fn read_change(
        &self,
        data: &[u8],
        relations: &mut Relations,
        transaction: &mut Vec<(i64, String, Message)>,
    ) -> Result<(), OutboxError> {
        let malformed = |e: pgoutput::Malformed| OutboxError::Replication(e.to_string());
        match pgoutput::decode(data).map_err(malformed)? {
            Change::Relation {
                oid, name, columns, ..
            } => relations.learn(oid, name, columns),
            Change::Insert { oid, values } => {
                let Some(row) = relations.row(oid, "outbox", &values).map_err(malformed)? else {
                    return Ok(());
                };
                let field = |name: &str| {
                    row.get(name).copied().flatten().ok_or_else(|| {
                        OutboxError::Replication(format!("outbox row without {name}"))
                    })
                };
                let position: i64 = field("position")?
                    .parse()
                    .map_err(|e| OutboxError::Replication(format!("position: {e}")))?;
                let message = Message {
                    key: row.get("key").copied().flatten().map(str::to_owned),
                    headers: headers_from_json(field("headers")?)?,
                    payload: bytea_from_text(field("payload")?).map_err(malformed)?,
                };
                transaction.push((position, field("topic")?.to_owned(), message));
            }
            Change::Other(_) => {}
        }
        Ok(())
    }
}
