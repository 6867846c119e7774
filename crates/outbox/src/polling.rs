//! The polling relay: claims committed outbox rows in batches, publishes them, and deletes them
//! once Kafka has acknowledged every one.
//!
//! Claiming (`CLAIM`):
//! - only rows whose writing transaction is older than the oldest transaction still running
//!   (`writer < pg_snapshot_xmin(pg_current_snapshot())`), so a transaction that is still open
//!   is never overtaken by a later one;
//! - at most `batch_size` rows, in append order;
//! - `FOR UPDATE SKIP LOCKED`, so two relays never take the same row;
//! - a transaction-scoped advisory lock per key, taken before the rows: a second relay skips
//!   every key the first is publishing, instead of publishing a later message of that key
//!   while an earlier one is in flight. So two relays share the work without reordering a key
//!   and without waiting on each other.
//!
//! The key's lock is tried once per candidate row, at the moment the row is reached, against
//! a snapshot taken before: the first relay may let go of a key (its claim rolled back after
//! a failed publish) between the second relay's tries on two rows of that key, so the second
//! would hold the key's later rows without its earlier ones. So after the claim, with the keys'
//! locks held and a fresh snapshot (`HELD_ELSEWHERE`), a key that still has an earlier row the
//! relay did not claim is withheld from the batch: its rows stay, and go in order later.
//!
//! The claiming transaction stays open while the batch is published in one Kafka transaction;
//! the rows are deleted and the claim committed only after the Kafka transaction committed. A
//! crash in between rolls the claim back and the rows are published again: at least once,
//! absorbed by the consumers' inbox.
//!
//! Failures, per row:
//! - before sending, each record is checked ([`TransactionalPublisher::check`]): a record
//!   that can never be published (its topic does not exist, it is too large) is moved aside to
//!   `outbox_failed` with its reason ([`crate::failed`]), and the later rows of its key in the
//!   batch are left in the outbox, waiting; the other keys are published;
//! - if any send fails, the Kafka transaction is aborted, so none of the batch is visible to
//!   read-committed consumers: a later record of a key never shows before an earlier one that
//!   failed. Rows the broker refused for good are moved aside; the rest is claimed again.
//!
//! Waking up: every transaction that appends to the outbox notifies the schema's channel
//! ([`crate::schema::notify_channel`], by a statement trigger, delivered at commit). An idle
//! relay waits for that notification instead of polling, and looks again after
//! [`RelaySettings::idle_wait`] only in case a notification was lost (a reconnect). So an idle
//! service costs nothing, and a committed append is published at once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use messaging::TransactionalPublisher;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::OutboxError;
use crate::batch::{self, Published, Row};

use crate::failed::KEY_LOCKS;

const CLAIM: &str = r"
WITH writing AS (
    -- Transactions still open that have written to the outbox (they hold a row-exclusive
    -- lock on it): their rows may yet commit, with positions below rows committed since.
    SELECT t.transactionid
    FROM pg_locks r
    JOIN pg_locks t ON t.virtualtransaction = r.virtualtransaction
    WHERE r.locktype = 'relation' AND r.relation = 'outbox'::regclass
      AND r.mode = 'RowExclusiveLock' AND t.locktype = 'transactionid'
)
SELECT o.position, o.topic, o.key, o.headers::text AS headers, o.payload
FROM (
    SELECT position, key FROM outbox
    -- The horizon is a scalar subquery: evaluated only when the outbox has a row to test,
    -- so an empty outbox costs an index probe and never reads the lock table.
    WHERE writer < (
        SELECT coalesce(min(open.xid), pg_snapshot_xmax(pg_current_snapshot()))
        FROM pg_snapshot_xip(pg_current_snapshot()) AS open(xid)
        WHERE open.xid::xid IN (SELECT transactionid FROM writing)
    )
    -- A key with a row moved aside waits until the operator retries or discards it.
    AND NOT EXISTS (SELECT FROM outbox_failed f WHERE f.key = outbox.key)
    ORDER BY position
    LIMIT $1
    OFFSET 0
) candidate
JOIN outbox o ON o.position = candidate.position
WHERE pg_try_advisory_xact_lock($2, hashtext(coalesce(candidate.key, '')))
ORDER BY o.position
FOR UPDATE OF o SKIP LOCKED";

/// The claimed keys (`$1`, with each key's last claimed position in `$2`) that have a row in
/// the outbox before that position which this claim did not take (`$3`, the claimed
/// positions; `$4`, the last of them, bounds the scan).
const HELD_ELSEWHERE: &str = r"
SELECT DISTINCT o.key
FROM outbox o
JOIN unnest($1::text[], $2::bigint[]) AS claimed(key, last) ON o.key = claimed.key
WHERE o.position < $4 AND o.position < claimed.last AND o.position <> ALL($3)";

/// The relay's own connection settings (set once per connection, not per claim):
/// - `synchronous_commit = off`: a claim's commit (the delete of published rows) need not wait
///   for the disk. If it is lost in a crash the rows are published again, which consumers
///   absorb, and the relay's next round starts sooner.
/// - `enable_seqscan = off`: the outbox is a queue, its heap full of deleted rows between two
///   vacuums and its statistics always stale; the claim must walk the primary key in position
///   order and stop after a batch. With the planner free to choose, it read the whole heap and
///   sorted it on every claim once the table had bloated (6 ms a claim instead of 0.3 ms, the
///   largest single cost of the order benchmark).
/// - `idle_in_transaction_session_timeout = 10s`: a relay paused or cut off in the middle of a
///   claim loses it (the server ends the session, its row and key locks go), so the next leader
///   can publish those rows; a healthy claim is idle only while Kafka acknowledges its batch,
///   which the producer bounds at 10 s (`message.timeout.ms`).
const RELAY_SESSION: [(&str, &str); 3] = [
    ("synchronous_commit", "off"),
    ("enable_seqscan", "off"),
    ("idle_in_transaction_session_timeout", "10s"),
];

/// How a relay works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// Rows claimed and published at a time.
    pub batch_size: i64,
    /// How long an idle relay waits for an append's notification before it looks anyway.
    pub idle_wait: Duration,
    /// The least time between the starts of two claims after a partial batch: under a steady
    /// stream of appends (a notification after every commit) the relay would otherwise claim
    /// one or two rows at a time, and each claim reads PostgreSQL's lock table. Waiting this
    /// long lets rows gather into batches; it is also the most it adds to a message's latency.
    pub min_interval: Duration,
    /// The longest wait between tries while the database or Kafka fails.
    pub max_failure_backoff: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            idle_wait: Duration::from_millis(500),
            min_interval: Duration::from_millis(5),
            max_failure_backoff: Duration::from_secs(5),
        }
    }
}

impl RelaySettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size < 1 {
            return Err("batch_size must be at least 1".into());
        }
        Ok(())
    }
}

/// What one round of the relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// This many rows were published and deleted.
    Published(usize),
    /// `moved` rows can never be published as they are and were moved to `outbox_failed`;
    /// `published` others were published. Later rows of the moved rows' keys wait.
    MovedAside { moved: usize, published: usize },
    /// Nothing was ready (or every ready key was another relay's).
    Idle,
}

/// Publishes the outbox of one database. Several may run against the same outbox.
#[derive(Debug, Clone)]
pub struct PollingRelay<P> {
    pool: PgPool,
    publisher: P,
    settings: RelaySettings,
}

impl<P: TransactionalPublisher> PollingRelay<P> {
    /// A relay of `pool`'s outbox. It opens connections of its own with the same options (see
    /// [`RELAY_SESSION`]), on first use: one to claim, one to listen for appends.
    pub fn new(pool: PgPool, publisher: P, settings: RelaySettings) -> Self {
        let options = (*pool.connect_options()).clone().options(RELAY_SESSION);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy_with(options);
        Self {
            pool,
            publisher,
            settings,
        }
    }

    /// Claims one batch, publishes it in one Kafka transaction, and deletes it once that
    /// committed. Rows that can never be published are moved aside (see the module's doc).
    pub async fn relay_once(&self) -> Result<RelayOutcome, OutboxError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(CLAIM)
            .bind(self.settings.batch_size)
            .bind(KEY_LOCKS)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(RelayOutcome::Idle);
        }
        let mut claimed = rows
            .iter()
            .map(Row::from_table)
            .collect::<Result<Vec<_>, _>>()?;
        withhold_keys_held_elsewhere(&mut tx, &mut claimed).await?;
        if claimed.is_empty() {
            tx.rollback().await?;
            return Ok(RelayOutcome::Idle);
        }
        let Published {
            published, refused, ..
        } = match batch::publish(&self.publisher, &claimed).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // Nothing refused for good: the claim rolls back as a whole and the batch is
                // tried again (its aborted records are invisible).
                tx.rollback().await?;
                return Err(error.into());
            }
        };
        if !published.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await?;
        }
        crate::failed::move_aside(&mut tx, &refused).await?;
        tx.commit().await?;
        for (position, reason) in &refused {
            let row = claimed.iter().find(|row| row.position == *position);
            tracing::error!(
                position,
                topic = row.map(|r| r.topic.as_str()),
                key = row.and_then(|r| r.message.key.as_deref()),
                reason,
                "an outbox row can never be published as it is: moved to outbox_failed; later \
                 rows of its key wait until it is retried or discarded (ftgo outbox list)"
            );
        }
        Ok(if refused.is_empty() {
            RelayOutcome::Published(published.len())
        } else {
            RelayOutcome::MovedAside {
                moved: refused.len(),
                published: published.len(),
            }
        })
    }

    /// Relays until `shutdown` completes: a full batch is followed by the next at once, less
    /// than that by a wait for the next append's notification (at most `idle_wait`); failures
    /// (database or Kafka unreachable) by a growing wait. Returns how many messages it
    /// published.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> u64 {
        tokio::pin!(shutdown);
        let mut listener = self.listen().await;
        let mut published = 0u64;
        let mut backoff = Duration::ZERO;
        loop {
            let claimed_at = tokio::time::Instant::now();
            let outcome = tokio::select! {
                biased;
                () = &mut shutdown => return published,
                outcome = self.relay_once() => outcome,
            };
            let wait = match outcome {
                Ok(RelayOutcome::Published(n)) => {
                    published += n as u64;
                    backoff = Duration::ZERO;
                    if n as i64 >= self.settings.batch_size {
                        continue;
                    }
                    self.settings.idle_wait
                }
                Ok(RelayOutcome::MovedAside { published: n, .. }) => {
                    published += n as u64;
                    backoff = Duration::ZERO;
                    continue;
                }
                Ok(RelayOutcome::Idle) => self.settings.idle_wait,
                Err(error) if error.is_fenced() => {
                    tracing::warn!(%error, "the relay's producer cannot go on (fenced by a newer relay, or failed for good); stopping");
                    return published;
                }
                Err(error) => {
                    backoff = (backoff * 2)
                        .clamp(Duration::from_millis(50), self.settings.max_failure_backoff);
                    tracing::warn!(%error, wait_ms = backoff.as_millis() as u64,
                        "relaying failed; the batch stays in the outbox");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return published,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    continue;
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return published,
                () = tokio::time::sleep(wait) => {}
                () = notified(&mut listener) => {}
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return published,
                () = tokio::time::sleep_until(claimed_at + self.settings.min_interval) => {}
            }
        }
    }

    /// Listens on the outbox's channel; `None` (polling every `idle_wait`) if it cannot.
    async fn listen(&self) -> Option<PgListener> {
        let listening = async {
            let channel = crate::schema::notify_channel(&self.pool).await?;
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listening.await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for appends; polling instead");
                None
            }
        }
    }
}

/// Drops from `claimed` every key with a row in the outbox that the claim did not take before
/// one it took (see the module's doc); the dropped rows stay locked, unpublished, until `tx`
/// ends.
async fn withhold_keys_held_elsewhere(
    tx: &mut sqlx::PgConnection,
    claimed: &mut Vec<Row>,
) -> Result<(), OutboxError> {
    let mut last: HashMap<&str, i64> = HashMap::new();
    for row in claimed.iter() {
        if let Some(key) = row.key() {
            last.insert(key, row.position);
        }
    }
    let (keys, lasts): (Vec<&str>, Vec<i64>) = last.into_iter().unzip();
    let positions: Vec<i64> = claimed.iter().map(|row| row.position).collect();
    let held: HashSet<String> = sqlx::query_scalar(HELD_ELSEWHERE)
        .bind(&keys)
        .bind(&lasts)
        .bind(&positions)
        .bind(positions.iter().max())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    if !held.is_empty() {
        tracing::debug!(?held, "keys with an earlier row held by another claim wait");
        claimed.retain(|row| row.key().is_none_or(|key| !held.contains(key)));
    }
    Ok(())
}

/// Completes when an append was notified (at once if one came while the relay worked), never
/// without a listener. A broken connection is re-established by the listener on the next
/// call; until then the relay polls.
async fn notified(listener: &mut Option<PgListener>) {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    if let Err(error) = listener.recv().await {
        tracing::debug!(%error, "the outbox listener reconnects");
        std::future::pending::<()>().await;
    }
}
