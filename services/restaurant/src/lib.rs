//! The restaurant service: restaurants and their menus. It handles `ftgo.restaurant.commands`
//! (CreateRestaurant, ReviseMenu) and publishes `ftgo.restaurant.events` (RestaurantCreated,
//! MenuRevised), from which the order and kitchen services keep their replicas.
//!
//! # Layout
//! - [`api`]: the REST API for other applications, on the HTTP port.
//! - [`handlers`]: the commands, each a state change and an event in one transaction.
//! - [`DEFINITION`]: the service declared once (what it consumes, its migrations, its handler);
//!   `service_kit` runs it: migrations, the consumer (decode → idempotent handler → dead
//!   letter), the outbox relay, the HTTP port, until shutdown.

pub mod api;
pub mod handlers;

use anyhow::Result;
use contracts::restaurant::commands::Command;
use service_kit::{Definition, Service, ServiceDefinition};
use sqlx::migrate::Migrator;

use crate::handlers::RestaurantCommands;

/// The service's name: group `restaurant-service`, dead letters on
/// `ftgo.restaurant-service.dlt`, database role `ftgo_restaurant`.
pub const NAME: &str = "restaurant";

/// The restaurant service, declared once: its binary, the tests and the scripts all start it from
/// [`DEFINITION`].
#[derive(Debug, Clone, Copy)]
pub struct RestaurantService;

/// The restaurant service as a value (`DEFINITION.main()` is its binary).
pub const DEFINITION: Definition = Definition::of::<RestaurantService>();

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

impl ServiceDefinition for RestaurantService {
    const NAME: &'static str = NAME;
    const HTTP_PORT: u16 = 8105;
    type Inbound = Command;
    type Handler = RestaurantCommands;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn handler(service: &mut Service) -> Result<Self::Handler> {
        let handler = RestaurantCommands::new(service.outgoing());
        service.serve_api(&api::API, handler.clone());
        Ok(handler)
    }

    fn openapi() -> Option<utoipa::openapi::OpenApi> {
        Some(api::API.document(NAME))
    }
}
