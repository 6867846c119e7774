//! What delivery does with each event it consumes, in the transaction `Idempotent` opened
//! (which also records the message id, so a redelivered event has no second effect).
//!
//! A delivery needs two facts from two topics: the order (OrderCreated: where and when to
//! deliver) and the kitchen's acceptance (TicketAccepted: when the food is ready). The topics
//! are consumed independently, so either may come first: each is recorded, and whichever
//! completes the pair schedules the delivery. A cancellation (OrderCancelled or
//! TicketCancelled) cancels a scheduled delivery and, arriving first, keeps one from being
//! scheduled at all. The `deliveries` table's key makes it one delivery per order, ever.
//!
//! TicketReadyForPickup marks the delivery's food ready. The couriers' actions
//! (PickUpDelivery, DropOffDelivery, one-way) move the delivery along [`crate::lifecycle`] and
//! publish DeliveryPickedUp and DeliveryDelivered; an action the delivery refuses (too early,
//! another courier's, a cancelled order) is a permanent failure, dead-lettered with the refusal
//! as its reason: the courier's app made a mistake, which must not be lost silently. A pickup
//! sent before this service has handled the ticket's TicketReadyForPickup is refused too (the
//! topics are consumed independently): a client waits for the group to take the ready event
//! in (`ftgo delivery pick-up` does), or replays the dead letter.
//!
//! The other event types of the two topics are none of delivery's business: they succeed
//! without effect.

use contracts::delivery::commands::Command;
use contracts::delivery::events::{
    CourierAssigned, DeliveryCancelled, DeliveryDelivered, DeliveryPickedUp, DeliveryScheduled,
    delivery_scheduled,
};
use contracts::now_ms;
use contracts::order::events::{Event as OrderEvent, OrderCreated};
use contracts::ticket::events::{Event as TicketEvent, TicketAccepted, TicketReadyForPickup};
use messaging::{HandlerError, Reason, Received};
use outbox::TransactionalHandler;
use service_kit::Outgoing;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::DeliveryInbound;
use crate::couriers;
use crate::lifecycle::{self, DeliveryState, Refusal, Step};

/// A courier's action the delivery refuses for good: dead-lettered, its reason in the headers.
#[derive(Debug, thiserror::Error)]
#[error("{command} for order {order_id}: {why}")]
pub struct Refused {
    command: &'static str,
    order_id: Uuid,
    why: String,
}

/// Handles everything delivery consumes: `ftgo.order.events` and `ftgo.ticket.events`.
#[derive(Debug, Clone)]
pub struct Delivery {
    outgoing: Outgoing,
}

impl TransactionalHandler<DeliveryInbound> for Delivery {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        inbound: DeliveryInbound,
    ) -> Result<(), HandlerError> {
        match inbound {
            DeliveryInbound::Orders(OrderEvent::OrderCreated(event)) => {
                self.order_created(tx, message, event).await
            }
            DeliveryInbound::Orders(OrderEvent::OrderCancelled(event)) => {
                self.cancelled(tx, message, event.order_id, "OrderCancelled")
                    .await
            }
            DeliveryInbound::Tickets(TicketEvent::TicketAccepted(event)) => {
                self.ticket_accepted(tx, message, event).await
            }
            DeliveryInbound::Tickets(TicketEvent::TicketCancelled(event)) => {
                self.cancelled(tx, message, event.order_id, "TicketCancelled")
                    .await
            }
            DeliveryInbound::Tickets(TicketEvent::TicketReadyForPickup(event)) => {
                ready_for_pickup(tx, event).await
            }
            DeliveryInbound::Commands(Command::PickUpDelivery(c)) => {
                let ids = (c.order_id, c.courier_id);
                self.courier_action(tx, Some(message), ids, Action::PickUp)
                    .await
            }
            DeliveryInbound::Commands(Command::DropOffDelivery(c)) => {
                let ids = (c.order_id, c.courier_id);
                self.courier_action(tx, Some(message), ids, Action::DropOff)
                    .await
            }
            // OrderApproved, OrderRejected (its ticket is cancelled too, which counts),
            // OrderCancellationRejected, TicketCreated, TicketPreparationStarted, and types
            // added later: nothing to do.
            DeliveryInbound::Orders(_) | DeliveryInbound::Tickets(_) => Ok(()),
        }
    }
}

impl Delivery {
    pub fn new(outgoing: Outgoing) -> Self {
        Self { outgoing }
    }

    async fn order_created(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        event: OrderCreated,
    ) -> Result<(), HandlerError> {
        let address = serde_json::to_string(&event.delivery_address)
            .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))?;
        sqlx::query(
            "INSERT INTO orders (order_id, restaurant_id, delivery_address, delivery_time)
             VALUES ($1, $2, $3::jsonb, to_timestamp($4::float8 / 1000))
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(event.order_id)
        .bind(event.restaurant_id)
        .bind(address)
        .bind(event.delivery_time)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        self.schedule_if_ready(tx, cause, event.order_id).await
    }

    async fn ticket_accepted(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        event: TicketAccepted,
    ) -> Result<(), HandlerError> {
        // The first acceptance is the one the delivery is scheduled from; a second one (a
        // re-sent event with a new id) changes nothing.
        sqlx::query(
            "INSERT INTO accepted_tickets (order_id, restaurant_id, ready_by, accepted_at)
             VALUES ($1, $2, to_timestamp($3::float8 / 1000), to_timestamp($4::float8 / 1000))
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(event.order_id)
        .bind(event.restaurant_id)
        .bind(event.ready_by)
        .bind(event.accepted_at)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        self.schedule_if_ready(tx, cause, event.order_id).await
    }

    /// Schedules the order's delivery once both the order and the acceptance are known, unless
    /// it was cancelled or is scheduled already; then assigns a courier.
    async fn schedule_if_ready(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        order_id: Uuid,
    ) -> Result<(), HandlerError> {
        let now = now_ms();
        let Some(row) = sqlx::query(
            "INSERT INTO deliveries (order_id, restaurant_id, delivery_address, delivery_time,
                                     ready_by, state, scheduled_at)
             SELECT o.order_id, o.restaurant_id, o.delivery_address, o.delivery_time,
                    a.ready_by, 'SCHEDULED', to_timestamp($2::float8 / 1000)
             FROM orders o JOIN accepted_tickets a USING (order_id)
             WHERE o.order_id = $1
               AND NOT EXISTS (SELECT 1 FROM cancelled_orders c WHERE c.order_id = $1)
             ON CONFLICT (order_id) DO NOTHING
             RETURNING restaurant_id, delivery_address::text AS address,
                       round(extract(epoch FROM ready_by) * 1000)::bigint AS ready_by_ms",
        )
        .bind(order_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(HandlerError::transient)?
        else {
            return Ok(());
        };
        let address: String = row.try_get("address").map_err(row_error)?;
        let scheduled = DeliveryScheduled {
            order_id,
            restaurant_id: row.try_get("restaurant_id").map_err(row_error)?,
            delivery_address: serde_json::from_str::<delivery_scheduled::Address>(&address)
                .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))?,
            ready_by: Some(row.try_get("ready_by_ms").map_err(row_error)?),
            scheduled_at: now,
        };
        self.outgoing.event(tx, Some(cause), &scheduled).await?;
        self.assign_courier(tx, cause, order_id, now).await
    }

    /// Gives the delivery to the least busy available courier ([`couriers::least_busy`]).
    async fn assign_courier(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        order_id: Uuid,
        now: i64,
    ) -> Result<(), HandlerError> {
        let courier = couriers::least_busy(tx)
            .await
            .map_err(HandlerError::transient)?;
        let Some(courier_id) = courier else {
            // Nobody on duty. Nothing in the catalog brings a courier on duty, so the delivery
            // waits unassigned for an operator; it is scheduled all the same.
            tracing::warn!(%order_id, "no courier available: the delivery stays unassigned");
            return Ok(());
        };
        sqlx::query(
            "UPDATE deliveries SET courier_id = $2, assigned_at = to_timestamp($3::float8 / 1000)
             WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(courier_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        let assigned = CourierAssigned {
            order_id,
            courier_id,
            assigned_at: now,
        };
        self.outgoing.event(tx, Some(cause), &assigned).await
    }

    /// The order or its ticket was cancelled: so is its delivery, which frees its courier (a
    /// cancelled delivery no longer counts as theirs). Remembered, so that a TicketAccepted or
    /// OrderCreated arriving later schedules nothing.
    async fn cancelled(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        order_id: Uuid,
        by: &'static str,
    ) -> Result<(), HandlerError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO cancelled_orders (order_id, cancelled_by, cancelled_at)
             VALUES ($1, $2, to_timestamp($3::float8 / 1000))
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(by)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        // Both the order and the ticket say so in a cancelled order: the second finds the
        // delivery cancelled already and sends nothing.
        let cancelled = sqlx::query(
            "UPDATE deliveries SET state = 'CANCELLED', cancelled_at = to_timestamp($2::float8 / 1000)
             WHERE order_id = $1 AND state = 'SCHEDULED'",
        )
        .bind(order_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        if cancelled.rows_affected() == 0 {
            return Ok(());
        }
        let event = DeliveryCancelled {
            order_id,
            cancelled_at: now,
        };
        self.outgoing.event(tx, Some(cause), &event).await
    }
}

/// A courier's action.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// PickUpDelivery: the courier has the food.
    PickUp,
    /// DropOffDelivery: the courier handed the food over.
    DropOff,
}

impl Action {
    fn command(self) -> &'static str {
        match self {
            Action::PickUp => "PickUpDelivery",
            Action::DropOff => "DropOffDelivery",
        }
    }
}

impl Delivery {
    /// `action` by `courier_id` on the order's delivery: its new state and event, or nothing
    /// (done already), or its refusal. The Kafka path and the REST API (`cause: None`) share
    /// it.
    pub async fn courier_action(
        &self,
        tx: &mut PgConnection,
        cause: Option<&Received>,
        (order_id, courier_id): (Uuid, Uuid),
        action: Action,
    ) -> Result<(), HandlerError> {
        let delivery = load(tx, order_id, action.command()).await?;
        let decided = match action {
            Action::PickUp => delivery.pick_up(courier_id),
            Action::DropOff => delivery.drop_off(courier_id),
        };
        let Step::To(state) = refused(decided, delivery, action.command(), order_id)? else {
            return Ok(());
        };
        let now = now_ms();
        store(tx, order_id, state, now).await?;
        match action {
            Action::PickUp => {
                let event = DeliveryPickedUp {
                    order_id,
                    courier_id,
                    picked_up_at: now,
                };
                self.outgoing.event(tx, cause, &event).await
            }
            Action::DropOff => {
                let event = DeliveryDelivered {
                    order_id,
                    courier_id,
                    delivered_at: now,
                };
                self.outgoing.event(tx, cause, &event).await
            }
        }
    }
}

/// TicketReadyForPickup: the courier may take the food (the first time counts).
async fn ready_for_pickup(
    tx: &mut PgConnection,
    event: TicketReadyForPickup,
) -> Result<(), HandlerError> {
    // The acceptance came first on the same partition (the kitchen sends them in order), so
    // its row is there.
    sqlx::query(
        "UPDATE accepted_tickets SET ready_at = coalesce(ready_at, to_timestamp($2::float8 / 1000))
         WHERE order_id = $1",
    )
    .bind(event.order_id)
    .bind(event.ready_at)
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(())
}

/// The order's delivery, locked for the rest of the transaction; none is a mistake of the
/// courier's: `unknown-delivery`.
async fn load(
    tx: &mut PgConnection,
    order_id: Uuid,
    command: &'static str,
) -> Result<lifecycle::Delivery, HandlerError> {
    let row = sqlx::query(
        "SELECT d.state, d.courier_id, a.ready_at IS NOT NULL AS ready
         FROM deliveries d LEFT JOIN accepted_tickets a USING (order_id)
         WHERE d.order_id = $1
         FOR UPDATE OF d",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    let Some(row) = row else {
        return Err(HandlerError::permanent(
            Reason::UnknownDelivery,
            Refused {
                command,
                order_id,
                why: "no delivery is scheduled for this order (yet: the kitchen has to accept \
                      its ticket first)"
                    .to_owned(),
            },
        ));
    };
    let state: String = row.try_get("state").map_err(row_error)?;
    Ok(lifecycle::Delivery {
        state: state
            .parse()
            .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))?,
        courier: row.try_get("courier_id").map_err(row_error)?,
        ready: row.try_get("ready").map_err(row_error)?,
    })
}

/// Stores the delivery's new state and when it got there.
async fn store(
    tx: &mut PgConnection,
    order_id: Uuid,
    state: DeliveryState,
    now_ms: i64,
) -> Result<(), HandlerError> {
    let reached = match state {
        DeliveryState::PickedUp => "picked_up_at",
        DeliveryState::Delivered => "delivered_at",
        DeliveryState::Cancelled => "cancelled_at",
        DeliveryState::Scheduled => "scheduled_at",
    };
    sqlx::query(&format!(
        "UPDATE deliveries SET state = $2, {reached} = to_timestamp($3::float8 / 1000)
         WHERE order_id = $1"
    ))
    .bind(order_id)
    .bind(state.as_str())
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(())
}

/// A refusal of the delivery's, as the permanent failure that dead-letters the action.
fn refused(
    decided: Result<Step, Refusal>,
    delivery: lifecycle::Delivery,
    command: &'static str,
    order_id: Uuid,
) -> Result<Step, HandlerError> {
    decided.map_err(|refusal| {
        HandlerError::permanent(
            refusal.reason(),
            Refused {
                command,
                order_id,
                why: format!("{refusal} (it is {})", delivery.state),
            },
        )
    })
}

/// A row that does not have the shape this code selected is a bug, not worth retrying.
fn row_error(error: sqlx::Error) -> HandlerError {
    HandlerError::permanent(Reason::HandlerFailed, error)
}
