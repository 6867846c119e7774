//! The order service's REST API for other applications: `POST /orders`, `GET /orders/{orderId}`
//! and `POST /orders/{orderId}/cancel`, each answered from this service's database alone.
//!
//! A new order is validated and priced against the local replica of the menus, then written with
//! its OrderCreated (outbox) and the started Create Order saga in one transaction: the answer is
//! `202 Accepted` with the order's URL while the saga runs on Kafka. No other service is asked
//! anything synchronously, so the API answers while the consumer, kitchen and accounting
//! services are down; the order completes once they are back.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use service_kit::api::{self, Address, Answer, Body, Id, Money, Problem, Rest, RestApi};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use contracts::order::commands::{CancelOrder, CreateOrder, create_order};
use contracts::order::events::order_created::PricedLineItem;

use crate::handlers::{CancelOutcome, CreateOutcome, OrderHandler};
use crate::orders;

const DESCRIPTION: &str = "Orders for other applications. Answered from the order service's own \
database: a new order is validated and priced against its replica of the menus and accepted \
(202) while the Create Order saga runs on Kafka; read it again to follow it. Errors are RFC 9457 \
problem details. A POST with an Idempotency-Key header (or a client-chosen orderId) is safe to \
retry: the first answer is given again.";

/// The API, declared once: the service serves it, `order-service openapi` prints its document.
pub const API: RestApi<OrderHandler> = RestApi {
    routes,
    description: DESCRIPTION,
};

fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show))
        .routes(routes!(cancel))
}

type Api = Rest<OrderHandler>;

/// What `POST /orders` takes: the CreateOrder command's fields, in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "consumerId": "0192f4f0-0000-7000-8000-00000000a11c",
    "restaurantId": EXAMPLE_RESTAURANT,
    "lineItems": [{ "menuItemId": "samosa", "quantity": 2 }],
    "deliveryAddress": {
        "street1": "9 Elm St", "city": "Oakland", "state": "CA", "zip": "94610"
    },
    "deliveryTime": 1_900_000_000_000_i64
}))]
pub struct NewOrder {
    /// The order's id, if the client chooses it (then a retry with the same id and body gets
    /// the same answer); else the service picks one.
    #[serde(default)]
    pub order_id: Option<Uuid>,
    pub consumer_id: Uuid,
    pub restaurant_id: Uuid,
    /// At least one line.
    #[schema(min_items = 1, max_items = 100)]
    pub line_items: Vec<NewLine>,
    pub delivery_address: Address,
    /// When to deliver, in milliseconds since the epoch.
    #[schema(minimum = 0)]
    pub delivery_time: i64,
}

/// One line as the client asks for it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLine {
    /// The restaurant's id of the menu item.
    #[schema(min_length = 1, max_length = 100)]
    pub menu_item_id: String,
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i32,
}

/// What `POST /orders/{orderId}/cancel` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cancellation {
    /// Why, in words.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// An order as the order service knows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: Uuid,
    /// `APPROVAL_PENDING` while the Create Order saga runs, then `APPROVED` or `REJECTED`;
    /// `CANCEL_PENDING` while the Cancel Order saga runs, then `CANCELLED` (or `APPROVED` again).
    #[schema(value_type = String, example = "APPROVAL_PENDING")]
    pub state: String,
    pub consumer_id: Uuid,
    pub restaurant_id: Uuid,
    pub line_items: Vec<Line>,
    /// Unknown for an order rejected before it could be priced.
    pub total: Option<Money>,
    pub delivery_address: Address,
    pub delivery_time: i64,
    /// Why it was rejected (or its cancellation undone), when it was.
    pub rejection: Option<Rejection>,
    /// Where to read it again.
    pub href: String,
}

/// A priced line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub menu_item_id: String,
    pub name: Option<String>,
    pub quantity: i32,
    pub price: Option<Money>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    /// The reason's code, as OrderRejected says it (`UNKNOWN_MENU_ITEM`, ...).
    pub reason: String,
    pub detail: Option<String>,
}

/// The restaurant of the documented example order (the API test registers it, with a
/// `samosa` on its menu, so the example is accepted).
pub const EXAMPLE_RESTAURANT: &str = "0192f4f0-0000-7000-8000-0000000a7a17";

fn href(order: Uuid) -> String {
    format!("/orders/{order}")
}

impl NewOrder {
    fn check(&self) -> Result<(), Problem> {
        for (i, line) in self.line_items.iter().enumerate() {
            api::required_text(
                &format!("lineItems[{i}].menuItemId"),
                &line.menu_item_id,
                100,
            )?;
        }
        self.delivery_address.check("deliveryAddress")?;
        if self.line_items.len() > 100 {
            return Err(api::invalid("an order has at most 100 lines"));
        }
        Ok(())
    }

    fn command(&self, order_id: Uuid) -> CreateOrder {
        let a = &self.delivery_address;
        CreateOrder {
            order_id,
            consumer_id: self.consumer_id,
            restaurant_id: self.restaurant_id,
            line_items: self
                .line_items
                .iter()
                .map(|line| create_order::OrderLineItem {
                    menu_item_id: line.menu_item_id.clone(),
                    quantity: line.quantity,
                })
                .collect(),
            delivery_address: create_order::Address {
                street1: a.street1.clone(),
                street2: a.street2.clone(),
                city: a.city.clone(),
                state: a.state.clone(),
                zip: a.zip.clone(),
            },
            delivery_time: self.delivery_time,
        }
    }
}

/// Places an order: validated and priced against the menus this service replicates, written
/// with its OrderCreated and the started saga in one transaction. Answers without waiting for
/// the consumer, kitchen or accounting services.
#[utoipa::path(
    post,
    path = "/orders",
    operation_id = "createOrder",
    tag = "orders",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body get the first answer again; the same key with another body is refused (422). 1 to 255 visible ASCII characters."),
    ),
    request_body = NewOrder,
    responses(
        (status = 202, description = "Accepted: the Create Order saga runs; read the order at Location to follow it", body = Order,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 400, description = "Not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An order with this orderId exists (placed another way)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an order this service takes: unknown restaurant or menu item, no lines, a bad quantity; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    Body(order): Body<NewOrder>,
) -> Result<Answer<serde_json::Value>, Problem> {
    order.check()?;
    let key = api::creation_key(&headers, "order", order.order_id)?;
    let request = serde_json::to_value(&order).map_err(Problem::unavailable)?;
    api::once(
        &api.pool,
        key.as_deref(),
        "POST /orders",
        &request,
        async |tx| {
            let order_id = order.order_id.unwrap_or_else(Uuid::now_v7);
            let command = order.command(order_id);
            let outcome = api
                .handler
                .create_order(tx, None, &command)
                .await
                .map_err(api::refusal)?;
            match outcome {
                CreateOutcome::Created => accepted(tx, order_id).await,
                CreateOutcome::Exists => Err(Problem::new(
                    StatusCode::CONFLICT,
                    "order-exists",
                    "An order with this id exists",
                    format!(
                        "order {order_id} exists already: read it at {}",
                        href(order_id)
                    ),
                )
                .at(href(order_id))),
                CreateOutcome::Rejected(rejection) => Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &orders::reason_name(rejection.reason)
                        .to_lowercase()
                        .replace('_', "-"),
                    "The order cannot be placed",
                    rejection.detail.unwrap_or_default(),
                )),
            }
        },
    )
    .await
}

/// Reads an order from the order service's database.
#[utoipa::path(
    get,
    path = "/orders/{orderId}",
    operation_id = "getOrder",
    tag = "orders",
    params(("orderId" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order as the order service knows it", body = Order),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn show(State(api): State<Api>, Id(order_id): Id) -> Result<axum::Json<Order>, Problem> {
    let mut connection = api.pool.acquire().await?;
    read(&mut connection, order_id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| Problem::not_found("order", href(order_id)))
}

/// Asks to cancel an approved order: the Cancel Order saga starts (202, CANCEL_PENDING); read
/// the order to learn whether it ends CANCELLED or APPROVED again (too late for the kitchen).
#[utoipa::path(
    post,
    path = "/orders/{orderId}/cancel",
    operation_id = "cancelOrder",
    tag = "orders",
    params(
        ("orderId" = Uuid, Path, description = "The order's id"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe, as for POST /orders."),
    ),
    request_body(content = Option<Cancellation>, description = "Why (optional)"),
    responses(
        (status = 202, description = "The Cancel Order saga runs", body = Order,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 400, description = "The id is not a UUID, the body is not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not APPROVED (pending, rejected, being cancelled or cancelled)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A body that is not a cancellation, or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel(
    State(api): State<Api>,
    Id(order_id): Id,
    headers: HeaderMap,
    body: Option<Body<Cancellation>>,
) -> Result<Answer<serde_json::Value>, Problem> {
    let cancellation = body.map(|Body(c)| c).unwrap_or_default();
    if let Some(reason) = &cancellation.reason {
        api::text("reason", reason, 500)?;
    }
    let key = api::idempotency_key(&headers)?;
    let request = serde_json::json!({ "orderId": order_id, "reason": cancellation.reason });
    let operation = "POST /orders/{orderId}/cancel";
    api::once(&api.pool, key.as_deref(), operation, &request, async |tx| {
        let command = CancelOrder {
            order_id,
            reason: cancellation.reason,
        };
        let outcome = api
            .handler
            .cancel_order(tx, None, &command)
            .await
            .map_err(api::refusal)?;
        match outcome {
            CancelOutcome::Started => accepted(tx, order_id).await,
            CancelOutcome::Unknown => Err(Problem::not_found("order", href(order_id))),
            CancelOutcome::NotApproved(state) => Err(Problem::new(
                StatusCode::CONFLICT,
                "order-not-approved",
                "Only an APPROVED order can be cancelled",
                format!("the order is {state}: only an APPROVED order can be cancelled"),
            )
            .at(href(order_id))),
        }
    })
    .await
}

/// The 202 answer with order `order_id` as `tx` leaves it.
async fn accepted(
    tx: &mut sqlx::PgConnection,
    order_id: Uuid,
) -> Result<Answer<serde_json::Value>, Problem> {
    let view = read(tx, order_id)
        .await?
        .ok_or_else(|| Problem::unavailable(format!("order {order_id} is not there")))?;
    Answer::json(StatusCode::ACCEPTED, href(order_id), &view)
}

/// The order `id` as the API shows it.
async fn read(tx: &mut sqlx::PgConnection, id: Uuid) -> Result<Option<Order>, Problem> {
    type Row = (
        String,
        Uuid,
        Uuid,
        Option<i64>,
        Option<String>,
        serde_json::Value,
        serde_json::Value,
        i64,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT state, consumer_id, restaurant_id, total_minor, currency, line_items,
                delivery_address, delivery_time, rejection_reason, rejection_detail
             FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((
        state,
        consumer_id,
        restaurant_id,
        total,
        currency,
        lines,
        address,
        time,
        reason,
        detail,
    )) = row
    else {
        return Ok(None);
    };
    // Priced lines once the order was priced; the lines as asked for when it was rejected on
    // arrival.
    let line_items = if total.is_some() {
        serde_json::from_value::<Vec<PricedLineItem>>(lines)
            .map_err(Problem::unavailable)?
            .into_iter()
            .map(|line| Line {
                menu_item_id: line.menu_item_id,
                name: Some(line.name),
                quantity: line.quantity,
                price: Some(Money {
                    amount_minor: line.price.amount_minor,
                    currency: line.price.currency,
                }),
            })
            .collect()
    } else {
        serde_json::from_value::<Vec<create_order::OrderLineItem>>(lines)
            .map_err(Problem::unavailable)?
            .into_iter()
            .map(|line| Line {
                menu_item_id: line.menu_item_id,
                name: None,
                quantity: line.quantity,
                price: None,
            })
            .collect()
    };
    let delivery_address: create_order::Address =
        serde_json::from_value(address).map_err(Problem::unavailable)?;
    Ok(Some(Order {
        order_id: id,
        state,
        consumer_id,
        restaurant_id,
        line_items,
        total: total.zip(currency).map(|(amount_minor, currency)| Money {
            amount_minor,
            currency,
        }),
        delivery_address: Address {
            street1: delivery_address.street1,
            street2: delivery_address.street2,
            city: delivery_address.city,
            state: delivery_address.state,
            zip: delivery_address.zip,
        },
        delivery_time: time,
        rejection: reason.map(|reason| Rejection { reason, detail }),
        href: href(id),
    }))
}
