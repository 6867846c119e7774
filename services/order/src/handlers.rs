//! Everything the order service consumes, in the transaction `Idempotent` opened: client
//! commands (CreateOrder, CancelOrder), participants' replies (advancing sagas), and restaurant
//! events (the replica).

use contracts::order::commands::{CancelOrder, Command, CreateOrder};
use contracts::order::events::{OrderCancellationRejected, OrderCreated, OrderRejected};
use contracts::order::replies::Reply;
use messaging::{HandlerError, Reason, Received, SagaDefinition, header};
use outbox::{ReplyOutcome, SagaManager, TransactionalHandler};
use service_kit::Outgoing;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::effects::{OrderEffects, now_ms};
use crate::orders::{self, OrderState};
use crate::replica;
use crate::sagas::{
    CancelOrderSaga, CancelOrderState, CancelStep, CreateOrderSaga, CreateOrderState, CreateStep,
    Rejection,
};

service_kit::inbound! {
    /// What the order service consumes.
    pub enum OrderInbound {
        Commands(contracts::order::commands::Command),
        Replies(contracts::order::replies::Reply),
        Restaurants(contracts::restaurant::events::Event),
    }
}

/// The order service's handler.
#[derive(Debug, Clone)]
pub struct OrderHandler {
    pub outgoing: Outgoing,
    pub create: SagaManager<CreateOrderSaga>,
    pub cancel: SagaManager<CancelOrderSaga>,
    pub effects: OrderEffects,
}

/// What a CreateOrder did.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// The order, its OrderCreated and its saga are written.
    Created,
    /// An order with this id exists: nothing was written.
    Exists,
    /// Not an order this service takes: nothing was written.
    Rejected(Rejection),
}

/// What a CancelOrder did.
#[derive(Debug, Clone, Copy)]
pub enum CancelOutcome {
    /// The order is CANCEL_PENDING and the Cancel Order saga started.
    Started,
    /// No such order.
    Unknown,
    /// Only an APPROVED order can be cancelled: nothing was written.
    NotApproved(OrderState),
}

impl OrderHandler {
    /// Validates and prices `command` against the replica; if it is acceptable, writes the
    /// order, its OrderCreated and the started Create Order saga on `tx`. The Kafka path and
    /// the REST API (`cause: None`) share it.
    pub async fn create_order(
        &self,
        tx: &mut PgConnection,
        cause: Option<&Received>,
        command: &CreateOrder,
    ) -> Result<CreateOutcome, HandlerError> {
        let priced = match orders::price(tx, command).await? {
            Ok(priced) => priced,
            Err(rejection) => return Ok(CreateOutcome::Rejected(rejection)),
        };
        let lines = serde_json::to_value(&priced.lines)
            .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))?;
        let total = &priced.facts.total;
        if !orders::insert(
            tx,
            command,
            OrderState::ApprovalPending,
            Some(total),
            lines,
            None,
        )
        .await?
        {
            return Ok(CreateOutcome::Exists);
        }
        let event = OrderCreated {
            order_id: command.order_id,
            consumer_id: command.consumer_id,
            restaurant_id: command.restaurant_id,
            line_items: priced.lines,
            order_total: total.clone().into(),
            delivery_address: orders::address(command),
            delivery_time: command.delivery_time,
            created_at: now_ms(),
        };
        self.outgoing.event(tx, cause, &event).await?;
        let state = CreateOrderState {
            order: priced.facts,
            step: CreateStep::ValidatingConsumer,
        };
        self.create
            .start(
                tx,
                &command.order_id.to_string(),
                state,
                cause,
                &self.effects,
            )
            .await?;
        Ok(CreateOutcome::Created)
    }

    /// A CreateOrder from Kafka: a rejected one is recorded as a REJECTED order and announced
    /// (OrderRejected), as its sender waits for an event; one for an existing order is a no-op.
    async fn create_order_sent(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: CreateOrder,
    ) -> Result<(), HandlerError> {
        let rejection = match self.create_order(tx, Some(cause), &command).await? {
            CreateOutcome::Created => return Ok(()),
            CreateOutcome::Exists => return duplicate(&command),
            CreateOutcome::Rejected(rejection) => rejection,
        };
        let lines = serde_json::to_value(&command.line_items)
            .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))?;
        if !orders::insert(
            tx,
            &command,
            OrderState::Rejected,
            None,
            lines,
            Some(&rejection),
        )
        .await?
        {
            return duplicate(&command);
        }
        tracing::info!(order = %command.order_id, ?rejection, "order rejected on arrival");
        let event = OrderRejected {
            order_id: command.order_id,
            reason: rejection.reason,
            detail: rejection.detail,
            rejected_at: now_ms(),
        };
        self.outgoing.event(tx, Some(cause), &event).await
    }

    /// Starts the Cancel Order saga on `tx` if the order is APPROVED. The Kafka path and the
    /// REST API (`cause: None`) share it.
    pub async fn cancel_order(
        &self,
        tx: &mut PgConnection,
        cause: Option<&Received>,
        command: &CancelOrder,
    ) -> Result<CancelOutcome, HandlerError> {
        match orders::find(tx, command.order_id).await? {
            None => Ok(CancelOutcome::Unknown),
            Some((OrderState::Approved, Some(facts))) => {
                orders::set_state(tx, command.order_id, OrderState::CancelPending, None).await?;
                let state = CancelOrderState {
                    order: facts,
                    reason: command.reason.clone(),
                    step: CancelStep::BeginningCancel,
                };
                self.cancel
                    .start(
                        tx,
                        &command.order_id.to_string(),
                        state,
                        cause,
                        &self.effects,
                    )
                    .await?;
                Ok(CancelOutcome::Started)
            }
            Some((state, _)) => Ok(CancelOutcome::NotApproved(state)),
        }
    }

    /// A CancelOrder from Kafka: an unknown order is dead-lettered, one that is not APPROVED
    /// announced (OrderCancellationRejected).
    async fn cancel_order_sent(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: CancelOrder,
    ) -> Result<(), HandlerError> {
        match self.cancel_order(tx, Some(cause), &command).await? {
            CancelOutcome::Started => Ok(()),
            CancelOutcome::Unknown => Err(HandlerError::permanent(
                Reason::UnknownOrder,
                format!("no order {}", command.order_id),
            )),
            CancelOutcome::NotApproved(state) => {
                let event = OrderCancellationRejected {
                    order_id: command.order_id,
                    detail: format!(
                        "the order is {state}: only an APPROVED order can be cancelled"
                    ),
                    rejected_at: now_ms(),
                };
                self.outgoing.event(tx, Some(cause), &event).await
            }
        }
    }

    /// Hands a reply to the saga its correlation id names.
    async fn on_reply(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        reply: Reply,
    ) -> Result<(), HandlerError> {
        let correlation = cause.message.headers.get(header::CORRELATION_ID);
        let Some(saga) = correlation.and_then(|c| c.parse::<Uuid>().ok()) else {
            return Err(HandlerError::permanent(
                Reason::UncorrelatedReply,
                format!(
                    "the reply's {} header {correlation:?} names no saga",
                    header::CORRELATION_ID
                ),
            ));
        };
        let outcome = match outbox::lock_saga(tx, saga).await? {
            Some(locked) if locked.saga_type == CreateOrderSaga::TYPE => {
                self.create
                    .on_locked_reply(tx, locked, &reply, cause, &self.effects)
                    .await?
            }
            Some(locked) if locked.saga_type == CancelOrderSaga::TYPE => {
                self.cancel
                    .on_locked_reply(tx, locked, &reply, cause, &self.effects)
                    .await?
            }
            _ => ReplyOutcome::UnknownSaga,
        };
        if outcome == ReplyOutcome::UnknownSaga {
            return Err(HandlerError::permanent(
                Reason::UnknownSaga,
                format!("no saga {saga} for this reply"),
            ));
        }
        Ok(())
    }
}

/// A CreateOrder for an order that exists: the client sent it again (the order id is theirs
/// to choose so that this is harmless). The first one counts; this one has no effect.
fn duplicate(command: &CreateOrder) -> Result<(), HandlerError> {
    tracing::info!(order = %command.order_id, "CreateOrder for an existing order: no effect");
    Ok(())
}

impl TransactionalHandler<OrderInbound> for OrderHandler {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        inbound: OrderInbound,
    ) -> Result<(), HandlerError> {
        match inbound {
            OrderInbound::Commands(Command::CreateOrder(create)) => {
                self.create_order_sent(tx, message, create).await
            }
            OrderInbound::Commands(Command::CancelOrder(cancel)) => {
                self.cancel_order_sent(tx, message, cancel).await
            }
            OrderInbound::Replies(reply) => self.on_reply(tx, message, reply).await,
            OrderInbound::Restaurants(event) => replica::apply(tx, event).await,
        }
    }
}
