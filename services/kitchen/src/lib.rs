//! The kitchen service: tickets (one per order, its id the order's) and a replica of
//! restaurant menus.
//!
//! - **Owns** tickets and their lines, and the menu replica (tables in `migrations/`).
//! - **Consumes**, in one consumer group (`kitchen-service`): `ftgo.kitchen.commands` (the
//!   Create Order and Cancel Order sagas' commands, which it answers on their `ce_replyto`,
//!   and the one-way kitchen actions of restaurant staff), `ftgo.restaurant.events`
//!   (RestaurantCreated, MenuRevised: the replica CreateTicket validates against, so the
//!   kitchen never calls the restaurant service) and `ftgo.delivery.events`
//!   (DeliveryPickedUp: the ticket becomes PICKED_UP; the other delivery events change
//!   nothing).
//! - **Publishes** ticket events on `ftgo.ticket.events` (TicketCreated, TicketAccepted,
//!   TicketPreparationStarted, TicketReadyForPickup, TicketCancelled), keyed by order id, and
//!   replies on the reply-to of each saga command (`ftgo.order.replies`).
//! - **Refuses** a CreateTicket for a restaurant or menu item its replica does not know, a
//!   quantity below 1, or more than [`handlers::MAX_QUANTITY_PER_LINE`] (100) of one item: the
//!   kitchen's capacity, which the order service does not check, so the saga compensates.
//!
//! # Layout
//! - [`ticket`]: the ticket's state machine, pure: which command moves a ticket where, which
//!   finds its work done (a re-sent saga command), which is refused and why.
//! - [`replica`]: the menu replica, kept from restaurant events in any order of arrival.
//! - [`handlers`]: each message's work in one transaction: load the ticket, apply the state
//!   machine, store, and append the reply and events to the outbox.
//! - [`DEFINITION`]: the service declared once (what it consumes, its migrations, its handler);
//!   `service_kit` runs it: migrations, the consumer (decode → idempotent handler → dead
//!   letter), the outbox relay, the HTTP port, until shutdown.

pub mod handlers;
pub mod replica;
pub mod ticket;

use anyhow::Result;
use service_kit::{Definition, Service, ServiceDefinition};
use sqlx::migrate::Migrator;

use crate::handlers::Kitchen;

/// The service's name: group `kitchen-service`, dead letters on `ftgo.kitchen-service.dlt`,
/// database role `ftgo_kitchen`.
pub const NAME: &str = "kitchen";

service_kit::inbound! {
    /// What the kitchen consumes. The topics are consumed independently: a CreateTicket
    /// may be handled before the RestaurantCreated it needs, and is then refused as
    /// UNKNOWN_RESTAURANT (the saga rejects the order; the client may try again). A
    /// DeliveryPickedUp always comes after the ticket's TicketReadyForPickup was handled
    /// (the delivery service accepts a pickup only once it saw that event).
    pub enum KitchenInbound {
        Commands(contracts::kitchen::commands::Command),
        Restaurants(contracts::restaurant::events::Event),
        Deliveries(contracts::delivery::events::Event),
    }
}

/// The kitchen service, declared once: its binary, the tests and the scripts all start it from
/// [`DEFINITION`].
#[derive(Debug, Clone, Copy)]
pub struct KitchenService;

/// The kitchen service as a value (`DEFINITION.main()` is its binary).
pub const DEFINITION: Definition = Definition::of::<KitchenService>();

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

impl ServiceDefinition for KitchenService {
    const NAME: &'static str = NAME;
    const HTTP_PORT: u16 = 8103;
    type Inbound = KitchenInbound;
    type Handler = Kitchen;
    const REPLICA_FEEDS: &'static [&'static str] =
        &[<contracts::restaurant::events::Event as contracts::Channel>::TOPIC];

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn handler(service: &mut Service) -> Result<Self::Handler> {
        Ok(Kitchen::new(service.outgoing()))
    }
}
