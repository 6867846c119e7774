//! The order service: orders, and the orchestrator of the Create Order and Cancel Order sagas.
//!
//! It consumes `ftgo.order.commands` (CreateOrder, CancelOrder from clients),
//! `ftgo.order.replies` (its participants' answers) and `ftgo.restaurant.events` (its replica
//! of restaurants and menus), and publishes `ftgo.order.events` and the saga commands on
//! `ftgo.consumer.commands`, `ftgo.kitchen.commands` and `ftgo.accounting.commands`.
//!
//! # Layout
//! - [`api`]: the REST API for other applications (`POST /orders`, ...), on the HTTP port.
//! - [`sagas`]: the two sagas as pure definitions (state + reply → actions), unit-tested.
//! - [`handlers`]: what each consumed message does, in one transaction with its effects.
//! - [`effects`]: the sagas' actions applied: commands to the outbox, order state changes.
//! - [`orders`]: validating and pricing an order, the order table.
//! - [`replica`]: restaurants and menus from the restaurant service's events.
//! - [`DEFINITION`]: the service declared once (what it consumes, its migrations, its handler);
//!   `service_kit` runs it: migrations, the consumer (decode → idempotent handler → dead
//!   letter), the outbox relay, the HTTP port, until shutdown.

pub mod api;
pub mod effects;
pub mod handlers;
pub mod orders;
pub mod replica;
pub mod sagas;

use anyhow::Result;
use outbox::SagaManager;
use service_kit::{Definition, Service, ServiceDefinition};
use sqlx::migrate::Migrator;

use crate::effects::OrderEffects;
use crate::handlers::{OrderHandler, OrderInbound};
use crate::sagas::{CancelOrderSaga, CreateOrderSaga};

/// The service's name: group `order-service`, database role `ftgo_order`.
pub const NAME: &str = "order";

/// The order service, declared once: its binary, the tests and the scripts all start it from
/// [`DEFINITION`]. A participant that does not reply within `settings.saga.reply_timeout` fails
/// its step (see [`sagas`]).
#[derive(Debug, Clone, Copy)]
pub struct OrderService;

/// The order service as a value (`DEFINITION.main()` is its binary).
pub const DEFINITION: Definition = Definition::of::<OrderService>();

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

impl ServiceDefinition for OrderService {
    const NAME: &'static str = NAME;
    const HTTP_PORT: u16 = 8101;
    type Inbound = OrderInbound;
    type Handler = OrderHandler;
    const REPLICA_FEEDS: &'static [&'static str] =
        &[<contracts::restaurant::events::Event as contracts::Channel>::TOPIC];

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn handler(service: &mut Service) -> Result<Self::Handler> {
        let saga = &service.settings().saga;
        let (reply_timeout, max_resends) = (saga.reply_timeout(), saga.max_resends);
        let effects = OrderEffects {
            outgoing: service.outgoing(),
        };
        let create =
            SagaManager::new(CreateOrderSaga { reply_timeout }).with_max_resends(max_resends);
        let cancel =
            SagaManager::new(CancelOrderSaga { reply_timeout }).with_max_resends(max_resends);
        {
            let (pool, effects, create) = (service.pool().clone(), effects.clone(), create.clone());
            service.spawn("create-order deadlines", move |stop| async move {
                create.run_deadlines(pool, effects, stop).await;
            });
        }
        {
            let (pool, effects, cancel) = (service.pool().clone(), effects.clone(), cancel.clone());
            service.spawn("cancel-order deadlines", move |stop| async move {
                cancel.run_deadlines(pool, effects, stop).await;
            });
        }
        let handler = OrderHandler {
            outgoing: service.outgoing(),
            create,
            cancel,
            effects,
        };
        service.serve_api(&api::API, handler.clone());
        Ok(handler)
    }

    fn openapi() -> Option<utoipa::openapi::OpenApi> {
        Some(api::API.document(NAME))
    }
}
