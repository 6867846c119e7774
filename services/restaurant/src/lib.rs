//! The restaurant service: restaurants and their menus. It handles `ftgo.restaurant.commands`
//! (CreateRestaurant, ReviseMenu) and publishes `ftgo.restaurant.events` (RestaurantCreated,
//! MenuRevised), from which the order and kitchen services keep their replicas.
//!
//! # Layout
//! - [`handlers`]: the commands, each a state change and an event in one transaction.
//! - [`run`]: the service: migrations, the consumer (decode → idempotent handler → dead letter),
//!   the outbox relay, the HTTP port, until shutdown.

pub mod handlers;

use std::future::Future;

use anyhow::Result;
use contracts::restaurant::commands::Command;
use service_kit::{Instance, Running, Service, Settings};

use crate::handlers::RestaurantCommands;

/// The service's name: group `restaurant-service`, dead letters on
/// `ftgo.restaurant-service.dlt`, database role `ftgo_restaurant`.
pub const NAME: &str = "restaurant";

/// Runs the service until `shutdown` completes; `started` learns the HTTP address once it
/// listens. Migrations run first.
pub async fn run(
    settings: Settings,
    instance: Instance,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: Option<tokio::sync::oneshot::Sender<Running>>,
) -> Result<()> {
    let service = Service::start(NAME, settings, instance, &sqlx::migrate!("./migrations")).await?;
    let handler = RestaurantCommands::new(service.outgoing());
    service.run::<Command, _>(handler, shutdown, started).await
}
