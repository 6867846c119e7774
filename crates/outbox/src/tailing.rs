//! The log-tailing relay: reads the outbox's inserts from PostgreSQL's write-ahead log through
//! logical replication (a publication on the outbox, a slot with the `pgoutput` plugin) and
//! publishes them in commit order.
//!
//! - Transactions read from the stream are published a group at a time, each group in one
//!   Kafka transaction (one group in flight while the next gathers): after any failure none of
//!   a group is visible, so a later record of a key never shows before an earlier one that
//!   failed. The idempotent producer keeps each partition's order within a group.
//! - The slot's confirmed position advances to a group's last transaction only after its Kafka
//!   transaction committed; a restart resumes from there, so nothing is lost (what was
//!   published but not confirmed comes again, and consumers absorb it).
//! - When nothing is in flight, keepalives' WAL positions are confirmed too, so an idle outbox
//!   does not make the slot hold back WAL that other tables write.
//! - Published rows are deleted in batches (the publication carries inserts only, so the
//!   deletes do not come back through the stream). Nothing unpublished is ever deleted.
//! - Every session starts by publishing, in position order, the rows still in the table: rows
//!   committed before a new slot existed (a slot dropped or invalidated and made again, a
//!   switch from polling), rows published before a crash and not yet deleted (published again:
//!   duplicates, after the originals), rows of keys released while the relay was down. Then it
//!   reads the stream, which may bring some of them again (duplicates, in order).
//! - A row that can never be published is moved aside to `outbox_failed` ([`crate::failed`]);
//!   later rows of its key are held: left in the table, unpublished, until the operator
//!   retries or discards it; then they are published from the table, in order.
//! - An invalidated slot (`wal_status = 'lost'`: it fell behind `max_slot_wal_keep_size`) is
//!   reported (an error log and [`TailingRelay::slots_lost`]) and made again.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use messaging::{Message, PublishError, TransactionalPublisher};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use sqlx::PgPool;

use crate::OutboxError;
use secrecy::{ExposeSecret, SecretString};

use crate::append::headers_from_json;
use crate::batch::{self, Published, Row};
use crate::pgoutput::{self, Change, Relations, bytea_from_text};

/// Where and how the relay tails.
#[derive(Debug, Clone)]
pub struct TailingSettings {
    /// `postgres://user:password@host:port/database`: a role with the REPLICATION attribute.
    /// A secret: `Debug` (and so every log) shows `[REDACTED]`.
    pub database_url: SecretString,
    /// The replication slot (one per service): it keeps the WAL the relay has not confirmed.
    pub slot: String,
    /// The publication on the outbox table (inserts only).
    pub publication: String,
    /// Messages read from the stream and not yet published, beyond which the relay stops
    /// reading it (TCP pushes back on the server). Also the largest group: below librdkafka's
    /// local queue (100,000), so handing a group over never waits.
    pub max_in_flight: usize,
    /// How often published rows are deleted (and held keys looked at).
    pub cleanup_every: Duration,
    /// How often the confirmed position is reported to the server.
    pub status_interval: Duration,
}

impl TailingSettings {
    pub fn new(database_url: &str, slot: &str, publication: &str) -> Self {
        Self {
            database_url: SecretString::from(database_url),
            slot: slot.to_owned(),
            publication: publication.to_owned(),
            max_in_flight: 20_000,
            cleanup_every: Duration::from_millis(200),
            status_interval: Duration::from_millis(200),
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
        let url = url::Url::parse(self.database_url.expose_secret())
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
/// existed are not in its stream (the relay publishes them from the table first).
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
/// slot keeps WAL forever). The relay must be stopped. Rows still in the outbox then wait for
/// the next relay (a new slot publishes them first).
pub async fn drop_slot(pool: &PgPool, settings: &TailingSettings) -> Result<(), OutboxError> {
    settings.validate().map_err(OutboxError::Settings)?;
    sqlx::query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
         WHERE slot_name = $1",
    )
    .bind(&settings.slot)
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM outbox_slots WHERE slot = $1")
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

/// Publishes the outbox from the write-ahead log. One per service at a time (a slot streams
/// to one connection).
#[derive(Debug, Clone)]
pub struct TailingRelay<P> {
    pool: PgPool,
    publisher: P,
    settings: TailingSettings,
    /// Invalidated slots seen and made again, for the caller's metrics.
    slots_lost: Arc<AtomicU64>,
}

/// Why a session ended without a shutdown.
enum SessionEnd {
    Shutdown(u64),
    Failed(u64, OutboxError),
}

/// The rows in the table when a session began on an existing slot, not yet seen in the stream.
struct Leftovers {
    positions: HashSet<i64>,
    /// The end of the WAL when the session began: once confirmed, the stream has brought
    /// everything committed before.
    until: Lsn,
}

/// A transaction read from the stream: where it ends, and its rows.
struct Transaction {
    end: Lsn,
    rows: Vec<Row>,
}

/// What a group's publication did, when it is done.
struct GroupDone {
    end: Lsn,
    /// The group's rows (those of held keys excepted).
    rows: Vec<Row>,
    outcome: Result<Published, OutboxError>,
    /// Held keys whose failed row is gone: their rows are to be published from the table.
    released: Vec<String>,
    /// Positions the stream brought in this group (for the start-up's leftover check).
    streamed: Vec<i64>,
}

type InFlight = Pin<Box<dyn Future<Output = GroupDone> + Send>>;

impl<P: TransactionalPublisher + Clone + 'static> TailingRelay<P> {
    pub fn new(pool: PgPool, publisher: P, settings: TailingSettings) -> Self {
        Self {
            pool,
            publisher,
            settings,
            slots_lost: Arc::default(),
        }
    }

    /// How many times the slot was found invalidated (and made again) since this relay began.
    pub fn slots_lost(&self) -> u64 {
        self.slots_lost.load(Ordering::Relaxed)
    }

    /// Relays until `shutdown` completes, reconnecting (from the last confirmed position)
    /// after a failure of the database, the stream or Kafka. Returns how many messages it
    /// published. Stops early if a newer relay fenced its producer.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<u64, OutboxError> {
        self.settings.validate().map_err(OutboxError::Settings)?;
        tokio::pin!(shutdown);
        let mut published = 0;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.session(&mut shutdown).await {
                SessionEnd::Shutdown(n) => return Ok(published + n),
                SessionEnd::Failed(n, error) if error.is_fenced() => {
                    tracing::warn!(%error, "the relay's producer cannot go on (fenced by a newer relay, or failed for good); stopping");
                    return Ok(published + n);
                }
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

    /// Makes the publication and the slot when missing, and the slot again when it was
    /// invalidated (reported loudly: its unconfirmed changes are gone from the WAL, and only
    /// the table still has them). `true`: the slot's stream may lack rows committed before it
    /// began (it is new, made again, or not yet made whole by a relay: `outbox_slots`).
    async fn prepare_slot(&self) -> Result<bool, OutboxError> {
        let status: Option<Option<String>> =
            sqlx::query_scalar("SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1")
                .bind(&self.settings.slot)
                .fetch_optional(&self.pool)
                .await?;
        let forget = match status {
            None => true,
            Some(status) if status.as_deref() == Some("lost") => {
                self.slots_lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(slot = %self.settings.slot,
                    "the replication slot was invalidated (it fell behind \
                     max_slot_wal_keep_size): making it again and publishing every row still \
                     in the outbox");
                sqlx::query("SELECT pg_drop_replication_slot($1)")
                    .bind(&self.settings.slot)
                    .execute(&self.pool)
                    .await?;
                true
            }
            Some(_) => false,
        };
        if forget {
            sqlx::query("DELETE FROM outbox_slots WHERE slot = $1")
                .bind(&self.settings.slot)
                .execute(&self.pool)
                .await?;
        }
        create_slot(&self.pool, &self.settings).await?;
        let whole: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM outbox_slots WHERE slot = $1)")
                .bind(&self.settings.slot)
                .fetch_one(&self.pool)
                .await?;
        Ok(!whole)
    }

    /// Makes the slot ready and whole: from now on every row appended is in its stream, and
    /// every row still in the outbox that its stream lacks is published (the relay does this
    /// at the start of every session; call it to have the slot before rows are written).
    /// Returns how many rows it published.
    pub async fn prepare(&self) -> Result<u64, OutboxError> {
        self.settings.validate().map_err(OutboxError::Settings)?;
        let mut held = self.failed_keys().await?;
        if !self.prepare_slot().await? {
            return Ok(0);
        }
        let published = self.drain(&mut held, None).await?;
        sqlx::query("INSERT INTO outbox_slots (slot) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&self.settings.slot)
            .execute(&self.pool)
            .await?;
        Ok(published)
    }

    /// The keys with a row in `outbox_failed`: their rows wait.
    async fn failed_keys(&self) -> Result<HashSet<String>, OutboxError> {
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT key FROM outbox_failed WHERE key IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        Ok(keys.into_iter().collect())
    }

    /// Publishes the rows in the table (of `only` that key, or of every key not held), in
    /// position order, and deletes them; moves refused ones aside and holds their keys.
    /// Returns how many it published.
    async fn drain(
        &self,
        held: &mut HashSet<String>,
        only: Option<&str>,
    ) -> Result<u64, OutboxError> {
        let mut published = 0u64;
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(
                "SELECT position, topic, key, headers::text AS headers, payload FROM outbox
                 WHERE position > $1 AND ($2::text IS NULL OR key = $2)
                 ORDER BY position LIMIT 1000",
            )
            .bind(after)
            .bind(only)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(published);
            };
            after = sqlx::Row::try_get(last, "position")?;
            let rows: Vec<Row> = rows
                .iter()
                .map(Row::from_table)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|row| only.is_some() || !row.key().is_some_and(|k| held.contains(k)))
                .collect();
            let outcome = batch::publish(&self.publisher, &rows).await?;
            let mut done = outcome.published.clone();
            self.delete(&mut done).await?;
            published += outcome.published.len() as u64;
            self.set_aside(&rows, &outcome, held).await?;
            if !outcome.complete {
                return Err(OutboxError::Publish(PublishError::transient(
                    "",
                    "publishing the outbox's rows stopped part way",
                )));
            }
        }
    }

    /// After a batch: moves its refused rows aside, holds their keys, and sets the later rows
    /// of those keys aside to wait behind them (the stream moves on; the table must not keep
    /// them, or a restart would take them for published rows left by a crash).
    async fn set_aside(
        &self,
        rows: &[Row],
        outcome: &Published,
        held: &mut HashSet<String>,
    ) -> Result<(), OutboxError> {
        if outcome.refused.is_empty() {
            return Ok(());
        }
        let mut connection = self.pool.acquire().await?;
        crate::failed::move_aside(&mut connection, &outcome.refused).await?;
        drop(connection);
        let mut stopped: Vec<&str> = Vec::new();
        for (position, reason) in &outcome.refused {
            let key = rows
                .iter()
                .find(|row| row.position == *position)
                .and_then(Row::key);
            tracing::error!(
                position,
                key,
                reason,
                "an outbox row can never be published as it is: moved to outbox_failed; later \
                 rows of its key wait until it is retried or discarded (ftgo outbox list)"
            );
            if let Some(key) = key {
                held.insert(key.to_owned());
                stopped.push(key);
            }
        }
        for key in stopped {
            let waiting: Vec<i64> = rows
                .iter()
                .filter(|row| row.key() == Some(key))
                .map(|row| row.position)
                .filter(|p| {
                    !outcome.published.contains(p) && !outcome.refused.iter().any(|(r, _)| r == p)
                })
                .collect();
            if !waiting.is_empty() {
                crate::failed::set_waiting(&self.pool, key, &waiting).await?;
            }
        }
        Ok(())
    }

    /// Publishes the rows of `key`, released, from the table in order, and lets it go (unless
    /// a row of it failed again).
    async fn release(&self, key: &str, held: &mut HashSet<String>) -> Result<u64, OutboxError> {
        let published = self.drain(held, Some(key)).await?;
        if !self.failed_keys().await?.contains(key) {
            held.remove(key);
        }
        Ok(published)
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

    /// The next group: every transaction read so far. Rows of held keys are set aside to wait
    /// behind their failed row, or, if it is gone, reported as released (they are published
    /// from the table after the group).
    fn start_group(&self, pending: &mut Vec<Transaction>, held: &HashSet<String>) -> InFlight {
        let transactions = std::mem::take(pending);
        let end = transactions.last().map_or(Lsn::from(0), |t| t.end);
        let all: Vec<Row> = transactions.into_iter().flat_map(|t| t.rows).collect();
        let streamed = all.iter().map(|row| row.position).collect();
        let (waiting, rows): (Vec<Row>, Vec<Row>) = all
            .into_iter()
            .partition(|row| row.key().is_some_and(|key| held.contains(key)));
        let (publisher, pool) = (self.publisher.clone(), self.pool.clone());
        Box::pin(async move {
            let keys: std::collections::BTreeSet<&str> =
                waiting.iter().filter_map(Row::key).collect();
            let mut released = Vec::new();
            for key in keys {
                let positions: Vec<i64> = waiting
                    .iter()
                    .filter(|row| row.key() == Some(key))
                    .map(|row| row.position)
                    .collect();
                match crate::failed::set_waiting(&pool, key, &positions).await {
                    Ok(true) => {}
                    Ok(false) => released.push(key.to_owned()),
                    Err(error) => {
                        return GroupDone {
                            end,
                            rows,
                            outcome: Err(error),
                            released,
                            streamed,
                        };
                    }
                }
            }
            let outcome = batch::publish(&publisher, &rows)
                .await
                .map_err(OutboxError::from);
            GroupDone {
                end,
                rows,
                outcome,
                released,
                streamed,
            }
        })
    }

    /// Before the stream: the held keys (their rows still in the table set aside to wait, as
    /// after a switch from the polling relay), the slot made whole ([`TailingRelay::prepare`]),
    /// and the table's rows remembered, to tell later which of them the stream did not bring:
    /// those were published before (a crash left them), as the slot is whole.
    async fn begin_session(
        &self,
        published: &mut u64,
    ) -> Result<(HashSet<String>, Option<Leftovers>), OutboxError> {
        let held = self.failed_keys().await?;
        for key in &held {
            let positions: Vec<i64> =
                sqlx::query_scalar("SELECT position FROM outbox WHERE key = $1")
                    .bind(key)
                    .fetch_all(&self.pool)
                    .await?;
            if !positions.is_empty() {
                crate::failed::set_waiting(&self.pool, key, &positions).await?;
            }
        }
        let drained = self.prepare().await?;
        *published += drained;
        let held = self.failed_keys().await?;
        let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM outbox")
            .fetch_all(&self.pool)
            .await?;
        // After the rows are read: each of them committed before this position, so the stream
        // brings it before the relay confirms past this position, unless it committed before
        // the slot's confirmed position (and so was published).
        let until: i64 =
            sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
                .fetch_one(&self.pool)
                .await?;
        Ok((
            held,
            Some(Leftovers {
                positions: positions.into_iter().collect(),
                until: Lsn::from(u64::try_from(until).unwrap_or_default()),
            }),
        ))
    }

    /// Once the confirmed position passed the end of the WAL as it was when the session began,
    /// the rows that were in the table then and that the stream did not bring were committed
    /// before the slot's confirmed position: published before a crash and not deleted. They
    /// are deleted now.
    async fn forget_leftovers(
        &self,
        leftovers: &mut Option<Leftovers>,
        confirmed: Lsn,
    ) -> Result<(), OutboxError> {
        let Some(left) = leftovers else {
            return Ok(());
        };
        if confirmed < left.until {
            return Ok(());
        }
        let mut positions: Vec<i64> = left.positions.iter().copied().collect();
        if !positions.is_empty() {
            tracing::info!(
                rows = positions.len(),
                "deleting rows published before a crash and not yet deleted"
            );
        }
        self.delete(&mut positions).await?;
        *leftovers = None;
        Ok(())
    }

    /// One replication connection, until shutdown or a failure.
    async fn session<S: Future<Output = ()> + Unpin>(&self, shutdown: &mut S) -> SessionEnd {
        let mut published = 0u64;
        let (mut held, mut leftovers) = match self.begin_session(&mut published).await {
            Ok(start) => start,
            Err(error) => return SessionEnd::Failed(published, error),
        };
        let config = match self.settings.replication_config() {
            Ok(config) => config,
            Err(error) => return SessionEnd::Failed(published, error),
        };
        let mut client = match ReplicationClient::connect(config).await {
            Ok(client) => client,
            Err(error) => {
                return SessionEnd::Failed(published, OutboxError::Replication(error.to_string()));
            }
        };
        let mut relations = Relations::default();
        // The transaction being read.
        let mut transaction: Vec<Row> = Vec::new();
        let mut in_transaction = false;
        // Transactions read and not yet handed over, and the group being published.
        let mut pending: Vec<Transaction> = Vec::new();
        let mut pending_rows = 0usize;
        let mut in_flight: Option<InFlight> = None;
        let mut in_flight_rows = 0usize;
        let mut published_rows: Vec<i64> = Vec::new();
        // The position confirmed to the server (all before it is published or set aside).
        let mut confirmed = Lsn::from(0);
        let mut cleanup = tokio::time::interval(self.settings.cleanup_every);
        let failure = loop {
            if in_flight.is_none() && !pending.is_empty() {
                in_flight_rows = pending_rows;
                pending_rows = 0;
                in_flight = Some(self.start_group(&mut pending, &held));
            }
            tokio::select! {
                biased;
                () = &mut *shutdown => break None,
                done = async { in_flight.as_mut().expect("in flight").await }, if in_flight.is_some() => {
                    in_flight = None;
                    in_flight_rows = 0;
                    if let Some(leftovers) = &mut leftovers {
                        for position in &done.streamed {
                            leftovers.positions.remove(position);
                        }
                    }
                    let end = done.end;
                    match self.finish_group(done, &mut client, &mut published_rows, &mut held).await {
                        Ok(n) => {
                            published += n;
                            confirmed = confirmed.max(end);
                        }
                        Err(error) => break Some(error),
                    }
                }
                _ = cleanup.tick() => {
                    if let Err(error) = self.delete(&mut published_rows).await {
                        break Some(error);
                    }
                    if let Err(error) = self.forget_leftovers(&mut leftovers, confirmed).await {
                        break Some(error);
                    }
                }
                event = client.recv(), if pending_rows + in_flight_rows < self.settings.max_in_flight => {
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
                            pending_rows += transaction.len();
                            pending.push(Transaction {
                                end: end_lsn,
                                rows: std::mem::take(&mut transaction),
                            });
                        }
                        ReplicationEvent::KeepAlive { wal_end, .. } => {
                            // Nothing read and unpublished: everything before this position is
                            // published, or is a transaction that will commit after it.
                            if in_flight.is_none() && pending.is_empty() && !in_transaction {
                                client.update_applied_lsn(wal_end);
                                confirmed = confirmed.max(wal_end);
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
        // Shutdown: the group in flight is finished and confirmed first.
        if let Some(group) = in_flight.take() {
            let done = group.await;
            let end = done.end;
            match self
                .finish_group(done, &mut client, &mut published_rows, &mut held)
                .await
            {
                Ok(n) => {
                    published += n;
                    confirmed = confirmed.max(end);
                }
                Err(error) => return SessionEnd::Failed(published, error),
            }
        }
        if let Err(error) = self.delete(&mut published_rows).await {
            return SessionEnd::Failed(published, error);
        }
        // Let the worker report the confirmed position before the stream closes (it reports
        // every status interval; a busy machine can make it late), or the next session
        // publishes again what this one did.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        tokio::time::sleep(self.settings.status_interval).await;
        while tokio::time::Instant::now() < deadline {
            let reported: Option<i64> = sqlx::query_scalar(
                "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint
                 FROM pg_replication_slots WHERE slot_name = $1",
            )
            .bind(&self.settings.slot)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten();
            if reported.is_some_and(|at| u64::try_from(at).unwrap_or_default() >= confirmed.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = client.shutdown().await;
        SessionEnd::Shutdown(published)
    }

    /// After a group's publication: sets its refused rows aside, notes its rows for deletion,
    /// confirms its position, and publishes the released keys' rows from the table. Returns
    /// how many it published.
    async fn finish_group(
        &self,
        done: GroupDone,
        client: &mut ReplicationClient,
        published_rows: &mut Vec<i64>,
        held: &mut HashSet<String>,
    ) -> Result<u64, OutboxError> {
        let outcome = done.outcome?;
        self.set_aside(&done.rows, &outcome, held).await?;
        let mut count = outcome.published.len() as u64;
        published_rows.extend(&outcome.published);
        if !outcome.complete {
            // What was published row by row stays published; the rest comes again.
            return Err(OutboxError::Publish(PublishError::transient(
                "",
                format!(
                    "publishing a group of {} rows stopped part way",
                    done.rows.len()
                ),
            )));
        }
        client.update_applied_lsn(done.end);
        for key in &done.released {
            count += self.release(key, held).await?;
        }
        Ok(count)
    }

    fn read_change(
        &self,
        data: &[u8],
        relations: &mut Relations,
        transaction: &mut Vec<Row>,
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
                transaction.push(Row {
                    position,
                    topic: field("topic")?.to_owned(),
                    message: Message {
                        key: row.get("key").copied().flatten().map(str::to_owned),
                        headers: headers_from_json(field("headers")?)?,
                        payload: bytea_from_text(field("payload")?).map_err(malformed)?,
                    },
                });
            }
            Change::Other(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_is_a_secret() {
        let settings = TailingSettings::new(
            "postgres://ftgo_admin:s3cret@127.0.0.1:5432/ftgo",
            "order_slot",
            "order_publication",
        );
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("order_slot"), "{shown}");
        assert_eq!(
            settings.replication_config().map(|_| ()).ok(),
            Some(()),
            "the URL still parses"
        );
    }
}
