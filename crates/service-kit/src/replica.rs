//! Replicas of another service's data, built from its events, converge whatever order the
//! events are delivered, replayed or repeated in: each replicated row keeps the event time of
//! what it holds, and an event older than that changes nothing. The order and kitchen services'
//! restaurant menus both follow this one rule.

use messaging::HandlerError;
use sqlx::PgConnection;
use uuid::Uuid;

/// Stamps row `id` of `table` with `as_of_ms` (the event's time, in its `stamp` column, a
/// `timestamptz` that starts at `-infinity`) when the row holds nothing newer, and says whether
/// it did: only then may the event's data replace the row's. The update locks the row, so two
/// events of one row handled at once (during a rebalance) apply one after the other.
pub async fn claim_if_newer(
    tx: &mut PgConnection,
    table: &'static str,
    stamp: &'static str,
    id: Uuid,
    as_of_ms: i64,
) -> Result<bool, HandlerError> {
    let claimed = sqlx::query(&format!(
        "UPDATE {table} SET {stamp} = to_timestamp($2::float8 / 1000)
         WHERE id = $1 AND {stamp} <= to_timestamp($2::float8 / 1000)"
    ))
    .bind(id)
    .bind(as_of_ms)
    .execute(&mut *tx)
    .await
    .map_err(outbox::database_failure)?;
    if claimed.rows_affected() == 0 {
        tracing::info!(%id, table, as_of_ms, "an older event than the replica holds: kept the newer");
    }
    Ok(claimed.rows_affected() == 1)
}
