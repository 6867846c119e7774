//! Orders: validating and pricing a CreateOrder against the replica, and the order table.

use contracts::order::commands::CreateOrder;
use contracts::order::events::order_created::{Address, Money as EventMoney, PricedLineItem};
use contracts::order::events::order_rejected::OrderRejectionReason;
use messaging::{HandlerError, Reason};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::replica;
use crate::sagas::{Money, OrderFacts, Rejection, TicketLine};

/// An order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    ApprovalPending,
    Approved,
    Rejected,
    CancelPending,
    Cancelled,
}

impl OrderState {
    pub const ALL: [OrderState; 5] = [
        OrderState::ApprovalPending,
        OrderState::Approved,
        OrderState::Rejected,
        OrderState::CancelPending,
        OrderState::Cancelled,
    ];

    /// The text of the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::ApprovalPending => "APPROVAL_PENDING",
            OrderState::Approved => "APPROVED",
            OrderState::Rejected => "REJECTED",
            OrderState::CancelPending => "CANCEL_PENDING",
            OrderState::Cancelled => "CANCELLED",
        }
    }

    /// The state of a `state` column's text.
    pub fn parse(text: &str) -> Option<OrderState> {
        OrderState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CreateOrder priced from the replica's menu.
#[derive(Debug, Clone)]
pub struct Priced {
    pub facts: OrderFacts,
    pub lines: Vec<PricedLineItem>,
}

fn rejected(reason: OrderRejectionReason, detail: String) -> Rejection {
    Rejection {
        reason,
        detail: Some(detail),
    }
}

/// Validates `command` against the replica and prices it; a [`Rejection`] says why not.
pub async fn price(
    tx: &mut PgConnection,
    command: &CreateOrder,
) -> Result<Result<Priced, Rejection>, HandlerError> {
    use OrderRejectionReason as R;
    if command.line_items.is_empty() {
        return Ok(Err(rejected(
            R::InvalidOrder,
            "the order has no lines".into(),
        )));
    }
    if let Some(line) = command.line_items.iter().find(|line| line.quantity < 1) {
        return Ok(Err(rejected(
            R::InvalidOrder,
            format!(
                "quantity {} of {} is less than 1",
                line.quantity, line.menu_item_id
            ),
        )));
    }
    if !replica::restaurant_exists(tx, command.restaurant_id).await? {
        return Ok(Err(rejected(
            R::UnknownRestaurant,
            format!("no restaurant {}", command.restaurant_id),
        )));
    }
    let mut lines = Vec::with_capacity(command.line_items.len());
    let mut total: Option<Money> = None;
    for line in &command.line_items {
        let Some(item) = replica::menu_item(tx, command.restaurant_id, &line.menu_item_id).await?
        else {
            return Ok(Err(rejected(
                R::UnknownMenuItem,
                format!(
                    "restaurant {} has no menu item {:?}",
                    command.restaurant_id, line.menu_item_id
                ),
            )));
        };
        let amount = item
            .price_minor
            .checked_mul(i64::from(line.quantity))
            .ok_or_else(|| HandlerError::permanent(Reason::InvalidContent, Overflow))?;
        total = Some(match total {
            None => Money {
                amount_minor: amount,
                currency: item.currency.clone(),
            },
            Some(sum) if sum.currency == item.currency => Money {
                amount_minor: sum
                    .amount_minor
                    .checked_add(amount)
                    .ok_or_else(|| HandlerError::permanent(Reason::InvalidContent, Overflow))?,
                currency: sum.currency,
            },
            Some(sum) => {
                return Ok(Err(rejected(
                    R::InvalidOrder,
                    format!(
                        "the menu prices lines in {} and {}: one order, one currency",
                        sum.currency, item.currency
                    ),
                )));
            }
        });
        lines.push(PricedLineItem {
            menu_item_id: line.menu_item_id.clone(),
            name: item.name,
            quantity: line.quantity,
            price: EventMoney {
                amount_minor: item.price_minor,
                currency: item.currency,
            },
        });
    }
    let total = total.expect("at least one line");
    let facts = OrderFacts {
        order_id: command.order_id,
        consumer_id: command.consumer_id,
        restaurant_id: command.restaurant_id,
        total,
        lines: lines
            .iter()
            .map(|line| TicketLine {
                menu_item_id: line.menu_item_id.clone(),
                name: line.name.clone(),
                quantity: line.quantity,
            })
            .collect(),
    };
    Ok(Ok(Priced { facts, lines }))
}

/// A price times a quantity beyond what a 64-bit amount holds.
#[derive(Debug, thiserror::Error)]
#[error("the order's amount overflows")]
pub struct Overflow;

/// Stores a new order; `false` if an order with that id exists already (a CreateOrder sent
/// twice: the first one counts).
pub async fn insert(
    tx: &mut PgConnection,
    command: &CreateOrder,
    state: OrderState,
    total: Option<&Money>,
    lines: serde_json::Value,
    rejection: Option<&Rejection>,
) -> Result<bool, HandlerError> {
    let address = serde_json::to_value(&command.delivery_address)
        .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))?;
    let inserted = sqlx::query(
        "INSERT INTO orders (id, consumer_id, restaurant_id, state, total_minor, currency,
             line_items, delivery_address, delivery_time, rejection_reason, rejection_detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(command.order_id)
    .bind(command.consumer_id)
    .bind(command.restaurant_id)
    .bind(state.as_str())
    .bind(total.map(|t| t.amount_minor))
    .bind(total.map(|t| t.currency.clone()))
    .bind(lines)
    .bind(address)
    .bind(command.delivery_time)
    .bind(rejection.map(|r| reason_name(r.reason)))
    .bind(rejection.and_then(|r| r.detail.clone()))
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(inserted.rows_affected() == 1)
}

/// The order's state and what a saga needs of it; `None` for an unknown order.
pub async fn find(
    tx: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(OrderState, Option<OrderFacts>)>, HandlerError> {
    type Row = (
        String,
        Uuid,
        Uuid,
        Option<i64>,
        Option<String>,
        serde_json::Value,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT state, consumer_id, restaurant_id, total_minor, currency, line_items
             FROM orders WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    let Some((state, consumer_id, restaurant_id, total, currency, lines)) = row else {
        return Ok(None);
    };
    let state = OrderState::parse(&state).ok_or_else(|| {
        HandlerError::permanent(
            Reason::HandlerFailed,
            format!("order {id} is in state {state:?}, which no release of this service writes"),
        )
    })?;
    let facts = match (total, currency) {
        (Some(amount_minor), Some(currency)) => {
            let lines: Vec<PricedLineItem> = serde_json::from_value(lines).unwrap_or_default();
            Some(OrderFacts {
                order_id: id,
                consumer_id,
                restaurant_id,
                total: Money {
                    amount_minor,
                    currency,
                },
                lines: lines
                    .into_iter()
                    .map(|line| TicketLine {
                        menu_item_id: line.menu_item_id,
                        name: line.name,
                        quantity: line.quantity,
                    })
                    .collect(),
            })
        }
        _ => None,
    };
    Ok(Some((state, facts)))
}

/// Moves order `id` to `state` (with the rejection, if it is one); returns its restaurant.
pub async fn set_state(
    tx: &mut PgConnection,
    id: Uuid,
    state: OrderState,
    rejection: Option<&Rejection>,
) -> Result<Uuid, HandlerError> {
    sqlx::query_scalar(
        "UPDATE orders SET state = $2, updated_at = now(),
             rejection_reason = COALESCE($3, rejection_reason),
             rejection_detail = COALESCE($4, rejection_detail)
         WHERE id = $1 RETURNING restaurant_id",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(rejection.map(|r| reason_name(r.reason)))
    .bind(rejection.and_then(|r| r.detail.clone()))
    .fetch_one(&mut *tx)
    .await
    .map_err(HandlerError::transient)
}

/// The reason's Avro symbol (`CARD_AUTHORIZATION_FAILED`).
pub fn reason_name(reason: OrderRejectionReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{reason:?}"))
}

/// The delivery address of the command as the event's type.
pub fn address(command: &CreateOrder) -> Address {
    let a = &command.delivery_address;
    Address {
        street1: a.street1.clone(),
        street2: a.street2.clone(),
        city: a.city.clone(),
        state: a.state.clone(),
        zip: a.zip.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::OrderState;

    #[test]
    fn every_state_reads_back_from_its_column_text() {
        for state in OrderState::ALL {
            assert_eq!(OrderState::parse(state.as_str()), Some(state));
        }
        assert_eq!(OrderState::parse("approved"), None);
    }
}
