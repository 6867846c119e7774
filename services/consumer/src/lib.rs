//! The consumer service: FTGO's consumers (customers), and whether one may place an order.
//!
//! - **Owns** `consumers` (id, name, per-order limit) and `order_validations` (each order it
//!   was asked about, with the answer: the consumer's order history).
//! - **Consumes** `ftgo.consumer.commands`: CreateConsumer (from clients) and
//!   ValidateOrderByConsumer (a step of the Create Order saga, from the order service).
//! - **Publishes** `ftgo.consumer.events`: ConsumerCreated, keyed by consumer id (accounting
//!   opens an account from it); and the replies ValidateOrderByConsumerSucceeded /
//!   ValidateOrderByConsumerFailed, to the command's `ce_replyto` (the order service's
//!   `ftgo.order.replies`), keyed by order id and carrying the command's correlation id.
//!
//! Rules:
//! - CreateConsumer registers the consumer and emits ConsumerCreated. Its redelivery has no
//!   second effect (the inbox); another CreateConsumer for an existing id is dead-lettered
//!   with reason `consumer-exists`.
//! - ValidateOrderByConsumer: an unknown consumer fails with `UNKNOWN_CONSUMER`; a total above
//!   the consumer's per-order limit, or in another currency than the limit's (nothing is
//!   converted), fails with `ORDER_LIMIT_EXCEEDED` and a detail that says which; otherwise it
//!   succeeds. The limit is a column of `consumers`, 100000 minor units of USD (1,000.00 USD)
//!   by default, so it can be changed per consumer without a release.
//! - Each order is answered once: the answer is recorded in `order_validations`, and a re-sent
//!   command for the same order (a new message id) gets the recorded answer again, whatever
//!   changed since. The same order asked about with another consumer or total is
//!   dead-lettered (`validation-conflict`); a negative total too (`invalid-content`).
//!
//! Dead letters go to `ftgo.consumer-service.dlt` with the reason in `ftgo_dlt_reason`:
//! the reasons above, `no-reply-to` (a ValidateOrderByConsumer nobody waits for), and the
//! service kit's decoding reasons.
//!
//! # Layout
//! - [`api`]: the REST API for other applications, on the HTTP port.
//! - [`domain`]: the validation rule alone (consumer, total → verdict), tested without the
//!   platform.
//! - [`handlers`]: the commands, each a state change plus the event or reply it sends, in one
//!   transaction.
//! - [`DEFINITION`]: the service declared once (what it consumes, its migrations, its handler);
//!   `service_kit` runs it: migrations, the consumer (decode → idempotent handler → dead
//!   letter), the outbox relay, the HTTP port, until shutdown.

pub mod api;
pub mod domain;
pub mod handlers;

use anyhow::Result;
use contracts::consumer::commands::Command;
use service_kit::{Definition, Service, ServiceDefinition};
use sqlx::migrate::Migrator;

use crate::handlers::ConsumerCommands;

/// The service's name: group `consumer-service`, dead letters on `ftgo.consumer-service.dlt`,
/// database role `ftgo_consumer`.
pub const NAME: &str = "consumer";

/// The consumer service, declared once: its binary, the tests and the scripts all start it from
/// [`DEFINITION`].
#[derive(Debug, Clone, Copy)]
pub struct ConsumerService;

/// The consumer service as a value (`DEFINITION.main()` is its binary).
pub const DEFINITION: Definition = Definition::of::<ConsumerService>();

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

impl ServiceDefinition for ConsumerService {
    const NAME: &'static str = NAME;
    const HTTP_PORT: u16 = 8102;
    type Inbound = Command;
    type Handler = ConsumerCommands;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn handler(service: &mut Service) -> Result<Self::Handler> {
        let handler = ConsumerCommands::new(service.outgoing());
        service.serve_api(&api::API, handler.clone());
        Ok(handler)
    }

    fn openapi() -> Option<utoipa::openapi::OpenApi> {
        Some(api::API.document(NAME))
    }
}
