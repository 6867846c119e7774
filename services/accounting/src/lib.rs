//! The accounting service: an account per consumer, and card authorizations for orders.
//!
//! - **Owns** `accounts` (one per consumer, with its limit per authorization and its card's
//!   currency) and `authorizations` (at most one per order, held or reversed).
//! - **Consumes**, in one consumer group: `ftgo.accounting.commands` (AuthorizeCard from the
//!   Create Order saga, ReverseAuthorization from the Cancel Order saga) and
//!   `ftgo.consumer.events` (ConsumerCreated).
//! - **Publishes** `ftgo.accounting.events`: AccountOpened (keyed by consumer id),
//!   CardAuthorized, CardAuthorizationFailed and AuthorizationReversed (keyed by order id); and
//!   the replies AuthorizeCardSucceeded / AuthorizeCardFailed / ReverseAuthorizationSucceeded to
//!   the command's `ce_replyto` (the order service's `ftgo.order.replies`), keyed by order id
//!   and carrying the command's correlation id.
//!
//! Rules:
//! - ConsumerCreated opens the consumer's account and emits AccountOpened, once per consumer:
//!   a second ConsumerCreated for the same consumer (even as a new message) opens nothing and
//!   emits nothing.
//! - AuthorizeCard: no account → `NO_ACCOUNT`; an amount in another currency than the card's
//!   (nothing is converted) → `CARD_DECLINED`; an amount above the account's limit per
//!   authorization → `AMOUNT_OVER_LIMIT`. Each failure is a reply AuthorizeCardFailed (with a
//!   detail) and an event CardAuthorizationFailed with the same reason. Otherwise an
//!   authorization is created (a new id), replied AuthorizeCardSucceeded{authorizationId} and
//!   announced as CardAuthorized. The limit is a column of `accounts`, 50000 minor units of
//!   USD (500.00 USD) by default, so it can be changed per account without a release.
//! - One authorization per order (`order_id` is unique): a re-sent AuthorizeCard for an
//!   authorized order (a new message id) is answered with the existing authorization's
//!   success, with no second authorization and no second event, also after a reversal. The
//!   same order with another consumer or amount is dead-lettered (`authorization-conflict`),
//!   a negative amount too (`invalid-content`). Refusals hold nothing and are not recorded:
//!   the same order asked again is decided again.
//! - ReverseAuthorization marks the order's authorization reversed and emits
//!   AuthorizationReversed, only when a held authorization changed state; it always replies
//!   ReverseAuthorizationSucceeded (reversing twice, or an order never authorized, leaves
//!   nothing held, which is what was asked).
//!
//! Dead letters go to `ftgo.accounting-service.dlt` with the reason in `ftgo_dlt_reason`: the
//! reasons above, `no-reply-to` (a command nobody waits for), and the service kit's decoding
//! reasons.
//!
//! # Layout
//! - [`domain`]: the authorization rule alone (account, amount → decision), tested without the
//!   platform.
//! - [`handlers`]: [`AccountingInbound`] (both channels) and their handling, each message a
//!   state change plus the events and reply it sends, in one transaction.
//! - [`DEFINITION`]: the service declared once (what it consumes, its migrations, its handler);
//!   `service_kit` runs it: migrations, the consumer (decode → idempotent handler → dead
//!   letter), the outbox relay, the HTTP port, until shutdown.

pub mod domain;
pub mod handlers;

use anyhow::Result;
use service_kit::{Definition, Service, ServiceDefinition};
use sqlx::migrate::Migrator;

use crate::handlers::Accounting;
pub use crate::handlers::AccountingInbound;

/// The service's name: group `accounting-service`, dead letters on
/// `ftgo.accounting-service.dlt`, database role `ftgo_accounting`.
pub const NAME: &str = "accounting";

/// The accounting service, declared once: its binary, the tests and the scripts all start it from
/// [`DEFINITION`].
#[derive(Debug, Clone, Copy)]
pub struct AccountingService;

/// The accounting service as a value (`DEFINITION.main()` is its binary).
pub const DEFINITION: Definition = Definition::of::<AccountingService>();

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

impl ServiceDefinition for AccountingService {
    const NAME: &'static str = NAME;
    const HTTP_PORT: u16 = 8104;
    type Inbound = AccountingInbound;
    type Handler = Accounting;
    const REPLICA_FEEDS: &'static [&'static str] =
        &[<contracts::consumer::events::Event as contracts::Channel>::TOPIC];

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn handler(service: &mut Service) -> Result<Self::Handler> {
        Ok(Accounting::new(service.outgoing()))
    }
}
