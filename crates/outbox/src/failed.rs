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

use sqlx::{PgConnection, PgPool, Row};

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
    /// Rows of the same key waiting behind it in the outbox.
    pub waiting: i64,
}

/// Moves the rows at `positions` from the outbox to `outbox_failed` with their reasons, on the
/// relay's claiming transaction.
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
                  (SELECT count(*) FROM outbox o WHERE o.key = f.key) AS waiting
           FROM outbox_failed f ORDER BY f.position"#,
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
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox_failed")
        .fetch_one(pool)
        .await?)
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

/// Puts the selected rows back into the outbox at their own positions, so each is published
/// before the rows of its key that waited behind it. Returns how many went back. Mend the
/// cause first: a row that fails again is moved aside again.
pub async fn retry(pool: &PgPool, which: &Selection) -> Result<u64, OutboxError> {
    let moved = sqlx::query(
        "WITH moved AS (
             DELETE FROM outbox_failed WHERE $1::bigint[] IS NULL OR position = ANY($1)
             RETURNING position, message_id, topic, key, headers, payload, created_at
         )
         INSERT INTO outbox (position, message_id, topic, key, headers, payload, created_at)
         OVERRIDING SYSTEM VALUE
         SELECT position, message_id, topic, key, headers, payload, created_at FROM moved",
    )
    .bind(which.positions())
    .execute(pool)
    .await?;
    Ok(moved.rows_affected())
}

/// Drops the selected rows for good: their messages are never published, and the rows of
/// their keys that waited flow on. Returns how many were dropped.
pub async fn discard(pool: &PgPool, which: &Selection) -> Result<u64, OutboxError> {
    let dropped =
        sqlx::query("DELETE FROM outbox_failed WHERE $1::bigint[] IS NULL OR position = ANY($1)")
            .bind(which.positions())
            .execute(pool)
            .await?;
    Ok(dropped.rows_affected())
}
