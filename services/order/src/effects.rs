//! What the order service does when a saga says so, in the transaction that advanced it:
//! commands to participants (correlated by the saga's id, replies to `ftgo.order.replies`),
//! and the order's state changes with their events.

pub use contracts::now_ms;

use contracts::Channel;
use contracts::order::events::{
    OrderApproved, OrderCancellationRejected, OrderCancelled, OrderRejected,
};
use contracts::order::replies::Reply;
use messaging::{HandlerError, Reason, Received};
use outbox::{SagaActions, SagaRef};
use service_kit::Outgoing;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::orders::{self, OrderState};
use crate::sagas::{OrderAction, SagaCommand};

/// Where participants reply.
pub const REPLIES: &str = Reply::TOPIC;

/// Applies [`OrderAction`]s.
#[derive(Debug, Clone)]
pub struct OrderEffects {
    pub outgoing: Outgoing,
}

impl OrderEffects {
    async fn send(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        cause: Option<&Received>,
        command: SagaCommand,
    ) -> Result<(), HandlerError> {
        let correlation = saga.id.to_string();
        let out = &self.outgoing;
        match command {
            SagaCommand::ValidateOrderByConsumer(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
            SagaCommand::CreateTicket(c) => out.command(tx, cause, &correlation, REPLIES, &c).await,
            SagaCommand::AuthorizeCard(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
            SagaCommand::ConfirmCreateTicket(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
            SagaCommand::CancelCreateTicket(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
            SagaCommand::BeginCancelTicket(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
            SagaCommand::UndoBeginCancelTicket(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
            SagaCommand::ReverseAuthorization(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
            SagaCommand::ConfirmCancelTicket(c) => {
                out.command(tx, cause, &correlation, REPLIES, &c).await
            }
        }
    }

    async fn apply_one(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        cause: Option<&Received>,
        action: OrderAction,
    ) -> Result<(), HandlerError> {
        let order_id: Uuid = saga
            .subject
            .parse()
            .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))?;
        match action {
            OrderAction::Send(command) => self.send(tx, saga, cause, command).await,
            OrderAction::Approve => {
                let restaurant_id =
                    orders::set_state(tx, order_id, OrderState::Approved, None).await?;
                let event = OrderApproved {
                    order_id,
                    restaurant_id,
                    approved_at: now_ms(),
                };
                self.outgoing.event(tx, cause, &event).await
            }
            OrderAction::Reject(rejection) => {
                orders::set_state(tx, order_id, OrderState::Rejected, Some(&rejection)).await?;
                let event = OrderRejected {
                    order_id,
                    reason: rejection.reason,
                    detail: rejection.detail,
                    rejected_at: now_ms(),
                };
                self.outgoing.event(tx, cause, &event).await
            }
            OrderAction::Cancel { reason } => {
                orders::set_state(tx, order_id, OrderState::Cancelled, None).await?;
                let event = OrderCancelled {
                    order_id,
                    reason,
                    cancelled_at: now_ms(),
                };
                self.outgoing.event(tx, cause, &event).await
            }
            OrderAction::RefuseCancellation { detail } => {
                orders::set_state(tx, order_id, OrderState::Approved, None).await?;
                let event = OrderCancellationRejected {
                    order_id,
                    detail,
                    rejected_at: now_ms(),
                };
                self.outgoing.event(tx, cause, &event).await
            }
        }
    }
}

impl SagaActions<OrderAction> for OrderEffects {
    async fn apply(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        cause: Option<&Received>,
        actions: Vec<OrderAction>,
    ) -> Result<(), HandlerError> {
        for action in actions {
            self.apply_one(tx, saga, cause, action).await?;
        }
        Ok(())
    }
}
