//! The order service's sagas, as pure definitions: [`CreateOrderSaga`] and
//! [`CancelOrderSaga`]. Each says, for a state and a reply (or a missed deadline), what the
//! order service does next: the [`OrderAction`]s it applies in the reply's transaction.

mod cancel_order;
mod create_order;

use std::time::Duration;

use contracts::accounting::commands::{AuthorizeCard, ReverseAuthorization};
use contracts::consumer::commands::ValidateOrderByConsumer;
use contracts::kitchen::commands::{
    BeginCancelTicket, CancelCreateTicket, ConfirmCancelTicket, ConfirmCreateTicket, CreateTicket,
    UndoBeginCancelTicket,
};
use contracts::order::events::order_rejected::OrderRejectionReason;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use cancel_order::{CancelOrderSaga, CancelOrderState, CancelStep};
pub use create_order::{CreateOrderSaga, CreateOrderState, CreateStep};

/// How long a saga waits for a participant's reply by default.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub use contracts::Money;

/// One line of the order as the kitchen needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketLine {
    pub menu_item_id: String,
    pub name: String,
    pub quantity: i32,
}

/// What an order needs to be carried through a saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFacts {
    pub order_id: Uuid,
    pub consumer_id: Uuid,
    pub restaurant_id: Uuid,
    pub total: Money,
    pub lines: Vec<TicketLine>,
}

/// Why an order was rejected, as `OrderRejected` says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: OrderRejectionReason,
    pub detail: Option<String>,
}

/// A command a saga sends to a participant.
#[derive(Debug, Clone, PartialEq)]
pub enum SagaCommand {
    ValidateOrderByConsumer(ValidateOrderByConsumer),
    CreateTicket(CreateTicket),
    AuthorizeCard(AuthorizeCard),
    ConfirmCreateTicket(ConfirmCreateTicket),
    CancelCreateTicket(CancelCreateTicket),
    BeginCancelTicket(BeginCancelTicket),
    UndoBeginCancelTicket(UndoBeginCancelTicket),
    ReverseAuthorization(ReverseAuthorization),
    ConfirmCancelTicket(ConfirmCancelTicket),
}

/// What the order service does when a saga says so.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderAction {
    /// Append the command to the outbox, correlated with the saga, replies to
    /// `ftgo.order.replies`.
    Send(SagaCommand),
    /// The Create Order saga succeeded: APPROVED, `OrderApproved`.
    Approve,
    /// The Create Order saga failed and compensated: REJECTED, `OrderRejected`.
    Reject(Rejection),
    /// The Cancel Order saga succeeded: CANCELLED, `OrderCancelled`.
    Cancel { reason: Option<String> },
    /// The Cancel Order saga failed: back to APPROVED, `OrderCancellationRejected`.
    RefuseCancellation { detail: String },
}

impl OrderFacts {
    /// The total as the record's own Money type.
    fn money<M: From<Money>>(&self) -> M {
        self.total.clone().into()
    }

    fn validate_consumer(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::ValidateOrderByConsumer(
            ValidateOrderByConsumer {
                order_id: self.order_id,
                consumer_id: self.consumer_id,
                order_total: self.money(),
            },
        ))
    }

    fn create_ticket(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::CreateTicket(CreateTicket {
            order_id: self.order_id,
            restaurant_id: self.restaurant_id,
            line_items: self
                .lines
                .iter()
                .map(
                    |line| contracts::kitchen::commands::create_ticket::TicketLineItem {
                        menu_item_id: line.menu_item_id.clone(),
                        name: line.name.clone(),
                        quantity: line.quantity,
                    },
                )
                .collect(),
        }))
    }

    fn authorize_card(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::AuthorizeCard(AuthorizeCard {
            order_id: self.order_id,
            consumer_id: self.consumer_id,
            order_total: self.money(),
        }))
    }

    fn reverse_authorization(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::ReverseAuthorization(ReverseAuthorization {
            order_id: self.order_id,
            consumer_id: self.consumer_id,
            order_total: self.money(),
        }))
    }

    fn confirm_ticket(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::ConfirmCreateTicket(ConfirmCreateTicket {
            order_id: self.order_id,
        }))
    }

    fn cancel_ticket(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::CancelCreateTicket(CancelCreateTicket {
            order_id: self.order_id,
        }))
    }

    fn begin_cancel_ticket(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::BeginCancelTicket(BeginCancelTicket {
            order_id: self.order_id,
            restaurant_id: self.restaurant_id,
        }))
    }

    fn undo_begin_cancel_ticket(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::UndoBeginCancelTicket(UndoBeginCancelTicket {
            order_id: self.order_id,
            restaurant_id: self.restaurant_id,
        }))
    }

    fn confirm_cancel_ticket(&self) -> OrderAction {
        OrderAction::Send(SagaCommand::ConfirmCancelTicket(ConfirmCancelTicket {
            order_id: self.order_id,
            restaurant_id: self.restaurant_id,
        }))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn facts() -> OrderFacts {
        OrderFacts {
            order_id: Uuid::from_u128(1),
            consumer_id: Uuid::from_u128(2),
            restaurant_id: Uuid::from_u128(3),
            total: Money {
                amount_minor: 1_295,
                currency: "USD".into(),
            },
            lines: vec![TicketLine {
                menu_item_id: "samosa".into(),
                name: "Samosa".into(),
                quantity: 2,
            }],
        }
    }

    /// The kind of command in a send action, for short assertions.
    pub fn sent(actions: &[OrderAction]) -> Vec<&'static str> {
        actions
            .iter()
            .filter_map(|action| match action {
                OrderAction::Send(command) => Some(match command {
                    SagaCommand::ValidateOrderByConsumer(_) => "ValidateOrderByConsumer",
                    SagaCommand::CreateTicket(_) => "CreateTicket",
                    SagaCommand::AuthorizeCard(_) => "AuthorizeCard",
                    SagaCommand::ConfirmCreateTicket(_) => "ConfirmCreateTicket",
                    SagaCommand::CancelCreateTicket(_) => "CancelCreateTicket",
                    SagaCommand::BeginCancelTicket(_) => "BeginCancelTicket",
                    SagaCommand::UndoBeginCancelTicket(_) => "UndoBeginCancelTicket",
                    SagaCommand::ReverseAuthorization(_) => "ReverseAuthorization",
                    SagaCommand::ConfirmCancelTicket(_) => "ConfirmCancelTicket",
                }),
                _ => None,
            })
            .collect()
    }
}
