//! The delivery service's REST API for other applications (a courier's app):
//! `GET /deliveries/{orderId}`, `POST /deliveries/{orderId}/pickup` and
//! `POST /deliveries/{orderId}/dropoff`, answered from this service's database alone.
//!
//! A courier's action is the PickUpDelivery or DropOffDelivery command's work, done in the
//! request's transaction with the event it publishes (DeliveryPickedUp, DeliveryDelivered):
//! the kitchen's ticket follows from the event. An action done already is answered with the
//! delivery as it is, so a retry is safe without a key.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service_kit::api::{self, Address, Answer, Body, Id, Problem, Rest, RestApi};
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::handlers::{Action, Delivery as DeliveryHandler};

const DESCRIPTION: &str = "Deliveries for other applications (a courier's app). Answered from \
the delivery service's own database: a pick-up or drop-off is recorded with its event \
(DeliveryPickedUp, DeliveryDelivered) in one transaction, and the kitchen's ticket follows from \
the event. Only the assigned courier may act, in turn: picked up once the kitchen marked the \
food ready, then dropped off. An action done already answers with the delivery as it is, so a \
retry is safe. Errors are RFC 9457 problem details.";

/// The API, declared once: the service serves it, `delivery-service openapi` prints its document.
pub const API: RestApi<DeliveryHandler> = RestApi {
    routes,
    description: DESCRIPTION,
};

fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(pick_up))
        .routes(routes!(drop_off))
}

type Api = Rest<DeliveryHandler>;

/// Who acts: the courier the delivery was assigned to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CourierAction {
    pub courier_id: Uuid,
}

/// A delivery as the delivery service knows it. Times are milliseconds since the epoch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub order_id: Uuid,
    /// `SCHEDULED`, then `PICKED_UP`, then `DELIVERED`; or `CANCELLED`.
    #[schema(example = "SCHEDULED")]
    pub state: String,
    /// The assigned courier; none while no courier is available.
    pub courier_id: Option<Uuid>,
    pub restaurant_id: Uuid,
    pub delivery_address: Address,
    /// When the consumer wants the food.
    pub delivery_time: i64,
    /// When the kitchen said the food would be ready.
    pub ready_by: i64,
    /// Whether the kitchen has marked the food ready (it may be picked up).
    pub ready_for_pickup: bool,
    pub scheduled_at: i64,
    pub picked_up_at: Option<i64>,
    pub delivered_at: Option<i64>,
    /// Where to read it again.
    pub href: String,
}

fn href(order: Uuid) -> String {
    format!("/deliveries/{order}")
}

/// Reads the delivery of an order.
#[utoipa::path(
    get,
    path = "/deliveries/{orderId}",
    operation_id = "getDelivery",
    tag = "deliveries",
    params(("orderId" = Uuid, Path, description = "The order's id (a delivery is the order's)")),
    responses(
        (status = 200, description = "The delivery", body = Delivery),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No delivery is scheduled for this order (yet: the kitchen accepts its ticket first)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn show(State(api): State<Api>, Id(order_id): Id) -> Result<axum::Json<Delivery>, Problem> {
    let mut connection = api.pool.acquire().await?;
    read(&mut connection, order_id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| Problem::not_found("delivery", href(order_id)))
}

/// The courier has the food (PickUpDelivery): DeliveryPickedUp is published and the ticket
/// follows to PICKED_UP.
#[utoipa::path(
    post,
    path = "/deliveries/{orderId}/pickup",
    operation_id = "pickUpDelivery",
    tag = "deliveries",
    params(("orderId" = Uuid, Path, description = "The order's id")),
    request_body = CourierAction,
    responses(
        (status = 200, description = "Picked up (now, or before: a retry)", body = Delivery),
        (status = 400, description = "The id is not a UUID, or the body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No delivery is scheduled for this order (unknown-delivery)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not this courier's delivery (wrong-courier), the food is not ready (delivery-not-ready-for-pickup), or the delivery is cancelled or delivered", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a courier's action", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn pick_up(
    State(api): State<Api>,
    Id(order_id): Id,
    Body(action): Body<CourierAction>,
) -> Result<Answer<Delivery>, Problem> {
    act(&api, order_id, action.courier_id, Action::PickUp).await
}

/// The courier handed the food over (DropOffDelivery): DeliveryDelivered is published.
#[utoipa::path(
    post,
    path = "/deliveries/{orderId}/dropoff",
    operation_id = "dropOffDelivery",
    tag = "deliveries",
    params(("orderId" = Uuid, Path, description = "The order's id")),
    request_body = CourierAction,
    responses(
        (status = 200, description = "Delivered (now, or before: a retry)", body = Delivery),
        (status = 400, description = "The id is not a UUID, or the body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No delivery is scheduled for this order (unknown-delivery)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not this courier's delivery (wrong-courier), not picked up yet (delivery-not-picked-up), or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a courier's action", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn drop_off(
    State(api): State<Api>,
    Id(order_id): Id,
    Body(action): Body<CourierAction>,
) -> Result<Answer<Delivery>, Problem> {
    act(&api, order_id, action.courier_id, Action::DropOff).await
}

/// `action` by `courier_id`, committed with its event; the delivery as it then is.
async fn act(
    api: &Api,
    order_id: Uuid,
    courier_id: Uuid,
    action: Action,
) -> Result<Answer<Delivery>, Problem> {
    let mut tx = api.pool.begin().await?;
    api.handler
        .courier_action(&mut tx, None, (order_id, courier_id), action)
        .await
        .map_err(|error| api::refusal(error).at(href(order_id)))?;
    let delivery = read(&mut tx, order_id)
        .await?
        .ok_or_else(|| Problem::unavailable(format!("the delivery of {order_id} is not there")))?;
    tx.commit().await?;
    Ok(Answer {
        status: StatusCode::OK,
        location: None,
        body: delivery,
    })
}

/// The delivery of order `id` as the API shows it.
async fn read(tx: &mut PgConnection, id: Uuid) -> Result<Option<Delivery>, Problem> {
    let ms = |column: &str| format!("(extract(epoch FROM d.{column}) * 1000)::bigint AS {column}");
    let row = sqlx::query(&format!(
        "SELECT d.state, d.courier_id, d.restaurant_id, d.delivery_address,
                {}, {}, {}, {}, {}, a.ready_at IS NOT NULL AS ready
         FROM deliveries d LEFT JOIN accepted_tickets a USING (order_id)
         WHERE d.order_id = $1",
        ms("delivery_time"),
        ms("ready_by"),
        ms("scheduled_at"),
        ms("picked_up_at"),
        ms("delivered_at"),
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let address: serde_json::Value = row.try_get("delivery_address")?;
    Ok(Some(Delivery {
        order_id: id,
        state: row.try_get("state")?,
        courier_id: row.try_get("courier_id")?,
        restaurant_id: row.try_get("restaurant_id")?,
        delivery_address: serde_json::from_value(address).map_err(Problem::unavailable)?,
        delivery_time: row.try_get("delivery_time")?,
        ready_by: row.try_get("ready_by")?,
        ready_for_pickup: row.try_get("ready")?,
        scheduled_at: row.try_get("scheduled_at")?,
        picked_up_at: row.try_get("picked_up_at")?,
        delivered_at: row.try_get("delivered_at")?,
        href: href(id),
    }))
}
