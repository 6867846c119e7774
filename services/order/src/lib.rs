//! The order service: orders, and the orchestrator of the Create Order and Cancel Order sagas.
//!
//! It consumes `ftgo.order.commands` (CreateOrder, CancelOrder from clients),
//! `ftgo.order.replies` (its participants' answers) and `ftgo.restaurant.events` (its replica
//! of restaurants and menus), and publishes `ftgo.order.events` and the saga commands on
//! `ftgo.consumer.commands`, `ftgo.kitchen.commands` and `ftgo.accounting.commands`.
//!
//! # Layout
//! - [`sagas`]: the two sagas as pure definitions (state + reply → actions), unit-tested.
//! - [`handlers`]: what each consumed message does, in one transaction with its effects.
//! - [`effects`]: the sagas' actions applied: commands to the outbox, order state changes.
//! - [`orders`]: validating and pricing an order, the order table.
//! - [`replica`]: restaurants and menus from the restaurant service's events.
//! - [`run`]: the service: migrations, consumer, relay, saga deadlines, HTTP.

pub mod effects;
pub mod handlers;
pub mod orders;
pub mod replica;
pub mod sagas;

use std::future::Future;

use anyhow::Result;
use outbox::SagaManager;
use service_kit::{Instance, Running, Service, Settings};

use crate::effects::OrderEffects;
use crate::handlers::{OrderHandler, OrderInbound};
use crate::sagas::{CancelOrderSaga, CreateOrderSaga};

/// The service's name: group `order-service`, database role `ftgo_order`.
pub const NAME: &str = "order";

/// Runs the service until `shutdown` completes; `started` learns the HTTP address once it
/// consumes. A participant that does not reply within `settings.saga.reply_timeout` fails its
/// step (see [`sagas`]).
pub async fn run(
    settings: Settings,
    instance: Instance,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: Option<tokio::sync::oneshot::Sender<Running>>,
) -> Result<()> {
    let reply_timeout = settings.saga.reply_timeout();
    let max_resends = settings.saga.max_resends;
    let mut service =
        Service::start(NAME, settings, instance, &sqlx::migrate!("./migrations")).await?;
    let effects = OrderEffects {
        outgoing: service.outgoing(),
    };
    let create = SagaManager::new(CreateOrderSaga { reply_timeout }).with_max_resends(max_resends);
    let cancel = SagaManager::new(CancelOrderSaga { reply_timeout }).with_max_resends(max_resends);
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
    service
        .run::<OrderInbound, _>(handler, shutdown, started)
        .await
}
