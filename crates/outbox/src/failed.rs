//! Outbox rows that can never be published as they are: a relay moves such a row to
//! `outbox_failed` with its reason (the topic does not exist, the broker refuses the record,
//! it is larger than the producer sends) and goes on with the other keys. Later rows of the
//! same key stay in the outbox, unpublished, until the operator decides:
//!
//! - [`retry`]: after mending the cause (creating the topic, raising a limit), the row goes
//!   back to the outbox at its own position, ahead of its key's waiting rows, and is published
//!   first;
//! - [`discard`]: the row is dropped for good and its key's waiting rows flow on.
//!
//! Rows without a key have no order to keep: nothing waits behind them.
//!
//! The waiting rows stay in the outbox for the polling relay, which skips their key; the
//! log-tailing relay, whose stream moves past them, sets them aside here too, behind the failed
//! row (`waiting_behind`). Retrying or discarding a failed row puts the rows that waited behind
//! it back into the outbox, in their order, in the same transaction. Both take the key's
//! advisory lock, which a relay holds while it sets rows aside, so a row is never left waiting
//! behind a failed row that is gone.

use sqlx::{PgConnection, PgPool, Row};

/// The advisory-lock namespace (first key) of the per-key locks of relays and operators.
pub(crate) const KEY_LOCKS: i32 = 0x0f7_0b0;

use crate::OutboxError;

/// A row moved aside, as [`list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRow {
    /// Its place in the outbox, given back to it by a retry.
    pub position: i64,
    pub message_id: String,
    pub topic: String,
    pub key: Option<String>,
    /// The message's `ce_type`, if it has one.
    pub message_type: Option<String>,
    /// What the relay was told when it tried.
    pub reason: String,
    /// When it was appended and when it was moved aside (RFC 3339, the database's clock).
    pub created_at: String,
    pub failed_at: String,
    /// Rows of the same key waiting behind it (in the outbox, or set aside behind it).
    pub waiting: i64,
}

/// Moves the rows at `positions` from the outbox to `outbox_failed` with their reasons, on the
/// relay's claiming transaction (or any other).
pub(crate) async fn move_aside(
    connection: &mut PgConnection,
    refused: &[(i64, String)],
) -> Result<(), OutboxError> {
    if refused.is_empty() {
        return Ok(());
    }
    let (positions, reasons): (Vec<i64>, Vec<String>) = refused.iter().cloned().unzip();
    sqlx::query(
        "WITH refused AS (
             SELECT * FROM unnest($1::bigint[], $2::text[]) AS r(position, reason)
         ), moved AS (
             DELETE FROM outbox o USING refused r WHERE o.position = r.position
             RETURNING o.position, o.message_id, o.topic, o.key, o.headers, o.payload,
                       o.created_at, r.reason
         )
         INSERT INTO outbox_failed
             (position, message_id, topic, key, headers, payload, created_at, reason)
         SELECT position, message_id, topic, key, headers, payload, created_at, reason FROM moved",
    )
    .bind(&positions)
    .bind(&reasons)
    .execute(connection)
    .await?;
    Ok(())
}

/// Every row moved aside, oldest position first.
pub async fn list(pool: &PgPool) -> Result<Vec<FailedRow>, OutboxError> {
    let rows = sqlx::query(
        r#"SELECT f.position, f.message_id, f.topic, f.key,
                  (SELECT h->>1 FROM jsonb_array_elements(f.headers) h
                   WHERE h->>0 = 'ce_type' LIMIT 1) AS message_type,
                  f.reason,
                  to_char(f.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                      AS created_at,
                  to_char(f.failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                      AS failed_at,
                  (SELECT count(*) FROM outbox o WHERE o.key = f.key)
                  + (SELECT count(*) FROM outbox_failed w
                     WHERE w.key = f.key AND w.waiting_behind IS NOT NULL) AS waiting
           FROM outbox_failed f WHERE f.waiting_behind IS NULL ORDER BY f.position"#,
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(FailedRow {
                position: row.try_get("position")?,
                message_id: row.try_get("message_id")?,
                topic: row.try_get("topic")?,
                key: row.try_get("key")?,
                message_type: row.try_get("message_type")?,
                reason: row.try_get("reason")?,
                created_at: row.try_get("created_at")?,
                failed_at: row.try_get("failed_at")?,
                waiting: row.try_get("waiting")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(OutboxError::from)
}

/// How many rows are moved aside (the `ftgo_outbox_failed` gauge).
pub async fn count(pool: &PgPool) -> Result<i64, OutboxError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM outbox_failed WHERE waiting_behind IS NULL")
            .fetch_one(pool)
            .await?,
    )
}

/// Which rows an operator's command is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Positions(Vec<i64>),
}

impl Selection {
    fn positions(&self) -> Option<&[i64]> {
        match self {
            Selection::All => None,
            Selection::Positions(positions) => Some(positions),
        }
    }
}

/// The selected failed rows' keys, locked (in a stable order) for the rest of `tx`.
async fn lock_keys(tx: &mut PgConnection, which: &Selection) -> Result<(), OutboxError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock($2, hashtext(key)) FROM (
             SELECT DISTINCT key FROM outbox_failed
             WHERE waiting_behind IS NULL AND key IS NOT NULL
               AND ($1::bigint[] IS NULL OR position = ANY($1))
             ORDER BY key
         ) keys",
    )
    .bind(which.positions())
    .bind(KEY_LOCKS)
    .execute(tx)
    .await?;
    Ok(())
}

/// Puts the rows set aside to wait behind failed rows that are gone back into the outbox, at
/// their positions and in their order.
async fn release_waiting(tx: &mut PgConnection) -> Result<(), OutboxError> {
    sqlx::query(
        "WITH released AS (
             DELETE FROM outbox_failed w
             WHERE w.waiting_behind IS NOT NULL AND NOT EXISTS (
                 SELECT FROM outbox_failed f WHERE f.key = w.key AND f.waiting_behind IS NULL)
             RETURNING position, message_id, topic, key, headers, payload, created_at
         )
         INSERT INTO outbox (position, message_id, topic, key, headers, payload, created_at)
         OVERRIDING SYSTEM VALUE
         SELECT position, message_id, topic, key, headers, payload, created_at FROM released
         ORDER BY position",
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Puts the selected failed rows back into the outbox at their own positions, so each is
/// published before the rows of its key that waited behind it (which go back too). Returns
/// how many failed rows went back. Mend the cause first: a row that fails again is moved
/// aside again.
pub async fn retry(pool: &PgPool, which: &Selection) -> Result<u64, OutboxError> {
    let mut tx = pool.begin().await?;
    lock_keys(&mut tx, which).await?;
    let moved = sqlx::query(
        "WITH moved AS (
             DELETE FROM outbox_failed
             WHERE waiting_behind IS NULL AND ($1::bigint[] IS NULL OR position = ANY($1))
             RETURNING position, message_id, topic, key, headers, payload, created_at
         )
         INSERT INTO outbox (position, message_id, topic, key, headers, payload, created_at)
         OVERRIDING SYSTEM VALUE
         SELECT position, message_id, topic, key, headers, payload, created_at FROM moved
         ORDER BY position",
    )
    .bind(which.positions())
    .execute(&mut *tx)
    .await?;
    release_waiting(&mut tx).await?;
    tx.commit().await?;
    Ok(moved.rows_affected())
}

/// Drops the selected failed rows for good: their messages are never published, and the rows
/// of their keys that waited flow on. Returns how many were dropped.
pub async fn discard(pool: &PgPool, which: &Selection) -> Result<u64, OutboxError> {
    let mut tx = pool.begin().await?;
    lock_keys(&mut tx, which).await?;
    let dropped = sqlx::query(
        "DELETE FROM outbox_failed
         WHERE waiting_behind IS NULL AND ($1::bigint[] IS NULL OR position = ANY($1))",
    )
    .bind(which.positions())
    .execute(&mut *tx)
    .await?;
    release_waiting(&mut tx).await?;
    tx.commit().await?;
    Ok(dropped.rows_affected())
}

/// Sets the outbox rows at `positions` (all of key `key`) aside to wait behind the key's failed
/// row, if it still has one (the key's lock held meanwhile). `false`: the key has no failed row
/// any more (it was retried or discarded), and the rows stay in the outbox.
pub(crate) async fn set_waiting(
    pool: &PgPool,
    key: &str,
    positions: &[i64],
) -> Result<bool, OutboxError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(KEY_LOCKS)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    let head: Option<i64> = sqlx::query_scalar(
        "SELECT min(position) FROM outbox_failed WHERE key = $1 AND waiting_behind IS NULL",
    )
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    let Some(head) = head else {
        tx.rollback().await?;
        return Ok(false);
    };
    sqlx::query(
        "WITH moved AS (
             DELETE FROM outbox WHERE position = ANY($1) AND key = $2
             RETURNING position, message_id, topic, key, headers, payload, created_at
         )
         INSERT INTO outbox_failed
             (position, message_id, topic, key, headers, payload, created_at, reason,
              waiting_behind)
         SELECT position, message_id, topic, key, headers, payload, created_at,
                'waits behind position ' || $3, $3
         FROM moved",
    )
    .bind(positions)
    .bind(key)
    .bind(head)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
