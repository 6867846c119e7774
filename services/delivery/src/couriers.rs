//! Couriers: a fixed crew, seeded by the migration. A courier may carry several deliveries at
//! once; the one to give a new delivery is the available courier with the fewest active
//! (scheduled or picked up) deliveries, the lowest id among equals, so the choice is deterministic.

use sqlx::PgConnection;
use uuid::Uuid;

/// The courier to give a new delivery, or `None` when nobody is available. Locks the
/// available couriers until the transaction ends: assignments of orders on other partitions
/// run at the same time, and so take turns, each counting the deliveries the one before it
/// committed. (The locks are taken in id order, so two assignments never deadlock.)
pub async fn least_busy(tx: &mut PgConnection) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query("SELECT id FROM couriers WHERE available ORDER BY id FOR UPDATE")
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar(
        "SELECT c.id FROM couriers c
         WHERE c.available
         ORDER BY (SELECT count(*) FROM deliveries d
                   WHERE d.courier_id = c.id AND d.state IN ('SCHEDULED', 'PICKED_UP')),
                  c.id
         LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await
}
