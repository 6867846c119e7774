//! What the kitchen does with each message it consumes, in the transaction `Idempotent` opened
//! (which also records the message id, so a redelivered message has no second effect):
//!
//! - restaurant events update the menu replica ([`crate::replica`]);
//! - DeliveryPickedUp moves the ticket to PICKED_UP (no event: the delivery's is the news);
//! - saga commands change a ticket and reply on the command's `ce_replyto`, keyed and
//!   correlated like the command; a re-sent command (same order, new message id) finds its
//!   work done and is answered again, with no second ticket or event;
//! - kitchen actions (one-way, from restaurant staff) change a ticket and publish its event;
//!   an action the ticket refuses is a permanent failure, so it is dead-lettered with the
//!   refusal as its reason: the sender made a mistake, which must not be lost silently.
//!
//! Ticket events go to `ftgo.ticket.events`, keyed by order id, naming the restaurant.

use contracts::delivery::events::{DeliveryPickedUp, Event as DeliveryEvent};
use contracts::kitchen::commands::{
    AcceptTicket, BeginCancelTicket, CancelCreateTicket, Command, ConfirmCancelTicket,
    ConfirmCreateTicket, CreateTicket, MarkTicketReadyForPickup, StartTicketPreparation,
    UndoBeginCancelTicket,
};
use contracts::now_ms;
use contracts::order::replies::begin_cancel_ticket_failed::BeginCancelTicketFailure;
use contracts::order::replies::create_ticket_failed::CreateTicketFailure;
use contracts::order::replies::{
    BeginCancelTicketFailed, BeginCancelTicketSucceeded, CancelCreateTicketSucceeded,
    ConfirmCancelTicketSucceeded, ConfirmCreateTicketSucceeded, CreateTicketFailed,
    CreateTicketSucceeded, UndoBeginCancelTicketSucceeded,
};
use contracts::restaurant::events::Event as RestaurantEvent;
use contracts::ticket::events::{
    TicketAccepted, TicketCancelled, TicketCreated, TicketPreparationStarted, TicketReadyForPickup,
    ticket_created,
};
use messaging::{HandlerError, Reason, Received};
use outbox::TransactionalHandler;
use service_kit::Outgoing;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::KitchenInbound;
use service_kit::compensation;

use crate::replica;
use crate::ticket::{Refusal, Step, Ticket, TicketState};

/// A command the kitchen refuses for good: dead-lettered, its reason in the headers.
#[derive(Debug, thiserror::Error)]
#[error("{command} for order {order_id}: {why}")]
pub struct Refused {
    command: &'static str,
    order_id: Uuid,
    why: String,
}

/// Handles everything the kitchen consumes: `ftgo.kitchen.commands` and
/// `ftgo.restaurant.events`.
#[derive(Debug, Clone)]
pub struct Kitchen {
    outgoing: Outgoing,
}

impl TransactionalHandler<KitchenInbound> for Kitchen {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        inbound: KitchenInbound,
    ) -> Result<(), HandlerError> {
        match inbound {
            KitchenInbound::Restaurants(RestaurantEvent::RestaurantCreated(event)) => {
                replica::restaurant_created(tx, &event).await
            }
            KitchenInbound::Restaurants(RestaurantEvent::MenuRevised(event)) => {
                replica::menu_revised(tx, &event).await
            }
            KitchenInbound::Commands(command) => self.command(tx, message, command).await,
            KitchenInbound::Deliveries(DeliveryEvent::DeliveryPickedUp(event)) => {
                picked_up(tx, event).await
            }
            // Scheduled, assigned, delivered, cancelled, and types added later: the ticket
            // does not follow them.
            KitchenInbound::Deliveries(_) => Ok(()),
        }
    }
}

impl Kitchen {
    pub fn new(outgoing: Outgoing) -> Self {
        Self { outgoing }
    }

    async fn command(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: Command,
    ) -> Result<(), HandlerError> {
        match command {
            Command::CreateTicket(c) => self.create_ticket(tx, cause, c).await,
            Command::ConfirmCreateTicket(c) => self.confirm_create(tx, cause, c).await,
            Command::CancelCreateTicket(c) => self.cancel_create(tx, cause, c).await,
            Command::BeginCancelTicket(c) => self.begin_cancel(tx, cause, c).await,
            Command::ConfirmCancelTicket(c) => self.confirm_cancel(tx, cause, c).await,
            Command::UndoBeginCancelTicket(c) => self.undo_begin_cancel(tx, cause, c).await,
            Command::AcceptTicket(c) => self.accept(tx, cause, c).await,
            Command::StartTicketPreparation(c) => self.start_preparation(tx, cause, c).await,
            Command::MarkTicketReadyForPickup(c) => self.mark_ready(tx, cause, c).await,
        }
    }

    // ---- saga commands: each answers on the command's reply-to -------------------------------

    async fn create_ticket(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: CreateTicket,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        let succeeded = CreateTicketSucceeded {
            order_id,
            ticket_id: order_id,
        };
        // The ticket's id is the order's: a second CreateTicket for the order is the saga
        // sending again, and gets the same answer.
        if load(tx, order_id).await?.is_some() {
            return self.outgoing.reply(tx, cause, &succeeded).await;
        }
        // A CreateTicket after its saga cancelled the ticket it never made (a replayed dead
        // letter): a ticket now would be an orphan.
        compensation::refuse_if_compensated(tx, order_id, "CreateTicket").await?;
        if let Some((reason, detail)) = invalid(tx, &command).await? {
            let failed = CreateTicketFailed {
                order_id,
                reason,
                detail: Some(detail),
            };
            return self.outgoing.reply(tx, cause, &failed).await;
        }
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO tickets (order_id, restaurant_id, state, created_at, updated_at)
             VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000), to_timestamp($4::float8 / 1000))
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(command.restaurant_id)
        .bind(Ticket::new().state.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        if inserted.rows_affected() == 0 {
            // Another delivery of the same order's CreateTicket got there first (only possible
            // while partitions move between instances).
            return self.outgoing.reply(tx, cause, &succeeded).await;
        }
        for (line_no, line) in command.line_items.iter().enumerate() {
            sqlx::query(
                "INSERT INTO ticket_line_items (order_id, line_no, menu_item_id, name, quantity)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(order_id)
            .bind(line_no as i32)
            .bind(&line.menu_item_id)
            .bind(&line.name)
            .bind(line.quantity)
            .execute(&mut *tx)
            .await
            .map_err(HandlerError::transient)?;
        }
        let created = TicketCreated {
            order_id,
            restaurant_id: command.restaurant_id,
            line_items: command
                .line_items
                .into_iter()
                .map(|line| ticket_created::TicketLineItem {
                    menu_item_id: line.menu_item_id,
                    name: line.name,
                    quantity: line.quantity,
                })
                .collect(),
            created_at: now,
        };
        self.outgoing.event(tx, Some(cause), &created).await?;
        self.outgoing.reply(tx, cause, &succeeded).await
    }

    async fn confirm_create(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: ConfirmCreateTicket,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        let stored = known(load(tx, order_id).await?, "ConfirmCreateTicket", order_id)?;
        let step = refused(
            stored.ticket.confirm_create(),
            &stored,
            "ConfirmCreateTicket",
            order_id,
        )?;
        if let Step::To(ticket) = step {
            store(tx, order_id, ticket, now_ms()).await?;
        }
        let reply = ConfirmCreateTicketSucceeded { order_id };
        self.outgoing.reply(tx, cause, &reply).await
    }

    async fn cancel_create(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: CancelCreateTicket,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        // A compensation: with no ticket (CreateTicket failed, or never came) there is nothing
        // to undo, and it succeeds; a CreateTicket that comes after it is refused.
        let stored = load(tx, order_id).await?;
        if stored.is_none() {
            compensation::remember(tx, order_id, "CreateTicket").await?;
        }
        if let Some(stored) = stored {
            let step = refused(
                stored.ticket.cancel_create(),
                &stored,
                "CancelCreateTicket",
                order_id,
            )?;
            if let Step::To(ticket) = step {
                self.cancel(tx, cause, order_id, stored.restaurant_id, ticket)
                    .await?;
            }
        }
        let reply = CancelCreateTicketSucceeded { order_id };
        self.outgoing.reply(tx, cause, &reply).await
    }

    async fn begin_cancel(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: BeginCancelTicket,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        let failed = |reason, detail: String| BeginCancelTicketFailed {
            order_id,
            reason,
            detail: Some(detail),
        };
        let Some(stored) = load(tx, order_id).await? else {
            let reply = failed(
                BeginCancelTicketFailure::UnknownTicket,
                format!("no ticket for order {order_id}"),
            );
            return self.outgoing.reply(tx, cause, &reply).await;
        };
        // Pickup is not modelled (no message says the courier took the food), so a ticket
        // the kitchen started on is "not cancellable", never "already picked up".
        match stored.ticket.begin_cancel() {
            Ok(step) => {
                if let Step::To(ticket) = step {
                    store(tx, order_id, ticket, now_ms()).await?;
                }
                let reply = BeginCancelTicketSucceeded { order_id };
                self.outgoing.reply(tx, cause, &reply).await
            }
            Err(refusal) => {
                let detail = format!("{refusal} (it is {})", stored.ticket.state);
                let reply = failed(BeginCancelTicketFailure::TicketNotCancellable, detail);
                self.outgoing.reply(tx, cause, &reply).await
            }
        }
    }

    async fn confirm_cancel(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: ConfirmCancelTicket,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        let stored = known(load(tx, order_id).await?, "ConfirmCancelTicket", order_id)?;
        let step = refused(
            stored.ticket.confirm_cancel(),
            &stored,
            "ConfirmCancelTicket",
            order_id,
        )?;
        if let Step::To(ticket) = step {
            self.cancel(tx, cause, order_id, stored.restaurant_id, ticket)
                .await?;
        }
        let reply = ConfirmCancelTicketSucceeded { order_id };
        self.outgoing.reply(tx, cause, &reply).await
    }

    async fn undo_begin_cancel(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: UndoBeginCancelTicket,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        // A compensation: no ticket, nothing to undo.
        if let Some(stored) = load(tx, order_id).await? {
            let step = refused(
                stored.ticket.undo_begin_cancel(),
                &stored,
                "UndoBeginCancelTicket",
                order_id,
            )?;
            if let Step::To(ticket) = step {
                store(tx, order_id, ticket, now_ms()).await?;
            }
        }
        let reply = UndoBeginCancelTicketSucceeded { order_id };
        self.outgoing.reply(tx, cause, &reply).await
    }

    /// Stores a ticket that became CANCELLED and tells everyone.
    async fn cancel(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        order_id: Uuid,
        restaurant_id: Uuid,
        ticket: Ticket,
    ) -> Result<(), HandlerError> {
        let now = now_ms();
        store(tx, order_id, ticket, now).await?;
        let event = TicketCancelled {
            order_id,
            restaurant_id,
            cancelled_at: now,
        };
        self.outgoing.event(tx, Some(cause), &event).await
    }

    // ---- kitchen actions: one-way, no reply; a refusal is dead-lettered ----------------------

    async fn accept(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: AcceptTicket,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        let stored = known(load(tx, order_id).await?, "AcceptTicket", order_id)?;
        let ticket = refused(stored.ticket.accept(), &stored, "AcceptTicket", order_id)?;
        let now = now_ms();
        store(tx, order_id, ticket, now).await?;
        sqlx::query(
            "UPDATE tickets SET ready_by = to_timestamp($2::float8 / 1000) WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(command.ready_by)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        let event = TicketAccepted {
            order_id,
            restaurant_id: stored.restaurant_id,
            ready_by: command.ready_by,
            accepted_at: now,
        };
        self.outgoing.event(tx, Some(cause), &event).await
    }

    async fn start_preparation(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: StartTicketPreparation,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        let stored = known(
            load(tx, order_id).await?,
            "StartTicketPreparation",
            order_id,
        )?;
        let ticket = refused(
            stored.ticket.start_preparation(),
            &stored,
            "StartTicketPreparation",
            order_id,
        )?;
        let now = now_ms();
        store(tx, order_id, ticket, now).await?;
        let event = TicketPreparationStarted {
            order_id,
            restaurant_id: stored.restaurant_id,
            started_at: now,
        };
        self.outgoing.event(tx, Some(cause), &event).await
    }

    async fn mark_ready(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: MarkTicketReadyForPickup,
    ) -> Result<(), HandlerError> {
        let order_id = command.order_id;
        let stored = known(
            load(tx, order_id).await?,
            "MarkTicketReadyForPickup",
            order_id,
        )?;
        let ticket = refused(
            stored.ticket.mark_ready_for_pickup(),
            &stored,
            "MarkTicketReadyForPickup",
            order_id,
        )?;
        let now = now_ms();
        store(tx, order_id, ticket, now).await?;
        let event = TicketReadyForPickup {
            order_id,
            restaurant_id: stored.restaurant_id,
            ready_at: now,
        };
        self.outgoing.event(tx, Some(cause), &event).await
    }
}

/// DeliveryPickedUp: the courier has the food, the ticket is done with. Refused (dead-lettered)
/// unless the ticket is ready for pickup: the delivery service never sends one earlier.
async fn picked_up(tx: &mut PgConnection, event: DeliveryPickedUp) -> Result<(), HandlerError> {
    let order_id = event.order_id;
    let stored = known(load(tx, order_id).await?, "DeliveryPickedUp", order_id)?;
    let step = refused(
        stored.ticket.picked_up(),
        &stored,
        "DeliveryPickedUp",
        order_id,
    )?;
    if let Step::To(ticket) = step {
        store(tx, order_id, ticket, event.picked_up_at).await?;
    }
    Ok(())
}

/// Why CreateTicket cannot be granted, checked against the replica; `None` when it can.
async fn invalid(
    tx: &mut PgConnection,
    command: &CreateTicket,
) -> Result<Option<(CreateTicketFailure, String)>, HandlerError> {
    let restaurant = command.restaurant_id;
    let Some(menu) = replica::menu_of(tx, restaurant).await? else {
        return Ok(Some((
            CreateTicketFailure::UnknownRestaurant,
            format!("no restaurant {restaurant} in the kitchen's replica"),
        )));
    };
    // No reason of the schema fits an empty ticket better: nothing at all to prepare.
    if command.line_items.is_empty() {
        return Ok(Some((
            CreateTicketFailure::InvalidQuantity,
            "a ticket needs at least one line".to_owned(),
        )));
    }
    for line in &command.line_items {
        if !menu.contains(&line.menu_item_id) {
            return Ok(Some((
                CreateTicketFailure::UnknownMenuItem,
                format!(
                    "{:?} is not on the menu of restaurant {restaurant}",
                    line.menu_item_id
                ),
            )));
        }
        if line.quantity < 1 {
            return Ok(Some((
                CreateTicketFailure::InvalidQuantity,
                format!("{} × {:?}: at least 1", line.quantity, line.menu_item_id),
            )));
        }
        if line.quantity > MAX_QUANTITY_PER_LINE {
            return Ok(Some((
                CreateTicketFailure::InvalidQuantity,
                format!(
                    "{} × {:?}: a kitchen prepares at most {MAX_QUANTITY_PER_LINE} of one item per ticket",
                    line.quantity, line.menu_item_id
                ),
            )));
        }
    }
    Ok(None)
}

/// The most of one item a kitchen takes on one ticket: its capacity, which the order service
/// does not know (an order within the consumer's and the card's limits can still be refused
/// here, and the saga compensates).
pub const MAX_QUANTITY_PER_LINE: i32 = 100;

/// A ticket as stored, with what its events name.
struct Stored {
    ticket: Ticket,
    restaurant_id: Uuid,
}

/// The order's ticket, locked for the rest of the transaction.
async fn load(tx: &mut PgConnection, order_id: Uuid) -> Result<Option<Stored>, HandlerError> {
    let Some(row) = sqlx::query(
        "SELECT restaurant_id, state, before_cancel FROM tickets WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?
    else {
        return Ok(None);
    };
    let state = |name: &str| -> Result<TicketState, HandlerError> {
        name.parse()
            .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))
    };
    let before_cancel: Option<String> = row.try_get("before_cancel").map_err(row_error)?;
    Ok(Some(Stored {
        ticket: Ticket {
            state: state(row.try_get("state").map_err(row_error)?)?,
            before_cancel: before_cancel.as_deref().map(state).transpose()?,
        },
        restaurant_id: row.try_get("restaurant_id").map_err(row_error)?,
    }))
}

/// Stores the ticket's new state; the first time it reaches a state is kept in that state's
/// column (an undone cancellation returns to ACCEPTED without moving `accepted_at`).
async fn store(
    tx: &mut PgConnection,
    order_id: Uuid,
    ticket: Ticket,
    now_ms: i64,
) -> Result<(), HandlerError> {
    let reached = match ticket.state {
        TicketState::Accepted => ", accepted_at = coalesce(accepted_at, at.t)",
        TicketState::Preparing => ", preparing_at = coalesce(preparing_at, at.t)",
        TicketState::ReadyForPickup => ", ready_at = coalesce(ready_at, at.t)",
        TicketState::PickedUp => ", picked_up_at = coalesce(picked_up_at, at.t)",
        TicketState::Cancelled => ", cancelled_at = coalesce(cancelled_at, at.t)",
        _ => "",
    };
    sqlx::query(&format!(
        "UPDATE tickets SET state = $2, before_cancel = $3, updated_at = at.t{reached}
         FROM (SELECT to_timestamp($4::float8 / 1000) AS t) AS at
         WHERE order_id = $1"
    ))
    .bind(order_id)
    .bind(ticket.state.as_str())
    .bind(ticket.before_cancel.map(TicketState::as_str))
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(())
}

/// The ticket a command needs; none is a mistake of the sender's: `unknown-ticket`.
fn known(
    stored: Option<Stored>,
    command: &'static str,
    order_id: Uuid,
) -> Result<Stored, HandlerError> {
    stored.ok_or_else(|| {
        HandlerError::permanent(
            Reason::UnknownTicket,
            Refused {
                command,
                order_id,
                why: "no ticket for this order".to_owned(),
            },
        )
    })
}

/// A refusal of the ticket's, as the permanent failure that dead-letters the command.
fn refused<T>(
    decided: Result<T, Refusal>,
    stored: &Stored,
    command: &'static str,
    order_id: Uuid,
) -> Result<T, HandlerError> {
    decided.map_err(|refusal| {
        HandlerError::permanent(
            refusal.reason(),
            Refused {
                command,
                order_id,
                why: format!("{refusal} (it is {})", stored.ticket.state),
            },
        )
    })
}

/// A row that does not have the shape this code selected is a bug, not worth retrying.
fn row_error(error: sqlx::Error) -> HandlerError {
    HandlerError::permanent(Reason::HandlerFailed, error)
}
