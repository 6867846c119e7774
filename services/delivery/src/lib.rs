//! The delivery service: deliveries of accepted orders, and the couriers who make them.
//!
//! - **Owns** couriers (a fixed crew, seeded by the migration), deliveries (one per order,
//!   ever), and what it needs to know of orders and tickets (tables in `migrations/`).
//! - **Consumes**, in one consumer group (`delivery-service`): `ftgo.order.events`
//!   (OrderCreated: where and when to deliver; OrderCancelled), `ftgo.ticket.events`
//!   (TicketAccepted: the food will be ready, so the delivery is scheduled;
//!   TicketReadyForPickup: the courier may pick it up; TicketCancelled) and
//!   `ftgo.delivery.commands` (the couriers' actions: PickUpDelivery, DropOffDelivery; a
//!   refused action is dead-lettered with its reason). Every other event type of those
//!   topics is acknowledged without effect.
//! - **Publishes** on `ftgo.delivery.events`, keyed by order id: DeliveryScheduled (with the
//!   address and the kitchen's ready-by time), CourierAssigned, DeliveryPickedUp,
//!   DeliveryDelivered, DeliveryCancelled.
//!
//! # Layout
//! - [`handlers`]: each event's work in one transaction: record what it says, schedule the
//!   delivery once the order and the acceptance are both known (in either order of arrival),
//!   assign a courier, cancel; events appended to the outbox.
//! - [`lifecycle`]: a delivery's states and the couriers' actions, pure: which action moves a
//!   delivery where, which finds its work done (sent again), which is refused and why.
//! - [`couriers`]: which courier gets a new delivery (the available one with the fewest active
//!   deliveries).
//! - [`DEFINITION`]: the service declared once (what it consumes, its migrations, its handler);
//!   `service_kit` runs it: migrations, the consumer (decode → idempotent handler → dead
//!   letter), the outbox relay, the HTTP port, until shutdown.

pub mod api;
pub mod couriers;
pub mod handlers;
pub mod lifecycle;

use anyhow::Result;
use service_kit::{Definition, Service, ServiceDefinition};
use sqlx::migrate::Migrator;

use crate::handlers::Delivery;

/// The service's name: group `delivery-service`, dead letters on `ftgo.delivery-service.dlt`,
/// database role `ftgo_delivery`.
pub const NAME: &str = "delivery";

service_kit::inbound! {
    /// What delivery consumes. The topics are consumed independently: an order's events of
    /// one may arrive before or after its events of the other, and a courier's action before
    /// the ticket event it needs (it is then refused: `handlers`).
    pub enum DeliveryInbound {
        Orders(contracts::order::events::Event),
        Tickets(contracts::ticket::events::Event),
        Commands(contracts::delivery::commands::Command),
    }
}

/// The delivery service, declared once: its binary, the tests and the scripts all start it from
/// [`DEFINITION`].
#[derive(Debug, Clone, Copy)]
pub struct DeliveryService;

/// The delivery service as a value (`DEFINITION.main()` is its binary).
pub const DEFINITION: Definition = Definition::of::<DeliveryService>();

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

impl ServiceDefinition for DeliveryService {
    const NAME: &'static str = NAME;
    const HTTP_PORT: u16 = 8106;
    type Inbound = DeliveryInbound;
    type Handler = Delivery;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn handler(service: &mut Service) -> Result<Self::Handler> {
        let handler = Delivery::new(service.outgoing());
        service.serve_api(&api::API, handler.clone());
        Ok(handler)
    }

    fn openapi() -> Option<utoipa::openapi::OpenApi> {
        Some(api::API.document(NAME))
    }
}
