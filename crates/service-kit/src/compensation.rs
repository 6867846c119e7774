//! Tombstones of compensations. A saga participant asked to undo a step it never took (its
//! command was dead-lettered, or is still on its way) has nothing to undo, and says so; but the
//! step's command may still come later: a dead letter replayed after the saga compensated, or
//! one that was slower than its compensation. Taking it then would leave an effect nobody ever
//! undoes (a ticket for a rejected order, a hold on a card). So the participant remembers the
//! compensation here, in the same transaction, and refuses the late command for good
//! (dead-lettered as [`messaging::Reason::Compensated`] with [`AlreadyCompensated`]).

use messaging::HandlerError;
use sqlx::PgConnection;
use uuid::Uuid;

/// The table, in every service's schema (created at start, like the outbox's).
const COMPENSATIONS: &str = r"
CREATE TABLE IF NOT EXISTS compensations (
    order_id        uuid NOT NULL,
    -- The step that was compensated before it was taken: `CreateTicket`, `AuthorizeCard`.
    step            text NOT NULL,
    compensated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, step)
)";

/// Creates the table if it does not exist. Instances starting at once on a new database take
/// turns (an advisory lock): concurrent `CREATE TABLE IF NOT EXISTS` of one table can fail on
/// PostgreSQL's catalog (the kill test found it).
pub(crate) async fn install(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ftgo.compensations.install', 0))")
        .execute(&mut *tx)
        .await?;
    sqlx::query(COMPENSATIONS).execute(&mut *tx).await?;
    tx.commit().await
}

/// A step's command came after the saga compensated it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{step} for order {order_id} came after its saga compensated it (at {compensated_at}): \
     refused, as its effect would never be undone"
)]
pub struct AlreadyCompensated {
    pub step: String,
    pub order_id: Uuid,
    pub compensated_at: String,
}

/// Remembers, on the compensation's transaction, that `step` of `order_id` was compensated
/// before it was taken.
pub async fn remember(
    tx: &mut PgConnection,
    order_id: Uuid,
    step: &'static str,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO compensations (order_id, step) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(step)
    .execute(tx)
    .await
    .map_err(outbox::database_failure)?;
    Ok(())
}

/// Refuses `step` of `order_id` for good if it was compensated before it was taken.
pub async fn refuse_if_compensated(
    tx: &mut PgConnection,
    order_id: Uuid,
    step: &'static str,
) -> Result<(), HandlerError> {
    let compensated_at: Option<String> = sqlx::query_scalar(
        "SELECT compensated_at::text FROM compensations WHERE order_id = $1 AND step = $2",
    )
    .bind(order_id)
    .bind(step)
    .fetch_optional(tx)
    .await
    .map_err(outbox::database_failure)?;
    match compensated_at {
        None => Ok(()),
        Some(compensated_at) => Err(HandlerError::permanent(
            messaging::Reason::Compensated,
            AlreadyCompensated {
                step: step.to_owned(),
                order_id,
                compensated_at,
            },
        )),
    }
}
