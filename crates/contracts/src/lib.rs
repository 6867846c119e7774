//! FTGO's messages, as the Avro schemas under `schemas/` define them.
//!
//! # Layout
//! - one module per service and channel kind, generated at build time from the `.avsc` files:
//!   [`order::commands::CreateOrder`], [`order::events::OrderCreated`],
//!   [`order::replies::AuthorizeCardFailed`], ... Each record's own nested types (money,
//!   addresses, line items) live in a module named after the record.
//! - [`Contract`]: what every top-level record knows about itself: its topic, full name, key
//!   and schema.
//! - [`Channel`]: one enum per channel (`Command`, `Event` or `Reply` in the channel's module),
//!   a variant per record type: what a consumer of the channel matches on.
//! - [`catalog`]: the table of channels, records, key fields and compatibility levels, from
//!   `schemas/catalog.toml`.
//! - [`catalog_file`]: reading and validating a schemas directory at run time (tools).
//! - [`Codec`]: encoding and decoding in the Confluent wire format through the registry, with
//!   typed decode failures ([`DecodeError`]) that say which dead-letter reason applies.
//!
//! Money is integer minor units (`amountMinor` + ISO 4217 `currency`): it cannot round.
//! Times are `timestamp-millis` (milliseconds since the Unix epoch, UTC) and map to `i64`.
//! Ids are `uuid` logical types and map to [`uuid::Uuid`](apache_avro::Uuid).

pub mod access;
pub mod catalog;
pub mod catalog_file;
mod codec;
mod registry;

pub use codec::{Codec, DecodeError, Decoded, EncodeError, SetupError};
pub use registry::{REGISTRY_PREFIX, RegistryAccess};

/// An amount in a currency's minor unit (cents for USD), as every message carries it: the
/// services' one money type. Each record's own `Money` converts into it and back (`From`).
/// Serialized (saga state) as `{"amountMinor": .., "currency": ..}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    pub amount_minor: i64,
    /// ISO 4217, compared exactly: `USD` and `usd` differ.
    pub currency: String,
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Minor units as they are: the number of decimals depends on the currency.
        write!(f, "{} minor units of {}", self.amount_minor, self.currency)
    }
}

/// Now, in milliseconds since the Unix epoch: what the catalog's `timestamp-millis` fields
/// (`createdAt`, `approvedAt`, ...) hold.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A top-level message type: one record of the catalog, on one topic. The generated types
/// implement it; a hand-written one must serialize under the record's own name (its serde
/// name is the Avro record name), as decoding checks it.
pub trait Contract: serde::Serialize + serde::de::DeserializeOwned {
    /// The topic (channel) the record travels on.
    const TOPIC: &'static str;
    /// The Avro full name, `<topic>.<Record>`; the registry subject is `<topic>-<full name>`.
    const FULL_NAME: &'static str;
    /// The `.avsc` text, as in `schemas/`.
    const SCHEMA: &'static str;
    /// The Kafka record key: the value of the record's key field (an order, consumer or
    /// restaurant id), so all messages about one entity share a partition.
    fn key(&self) -> String;
}

/// Any record of one channel: an enum with a variant per record type of the topic
/// (`order::commands::Command::CreateOrder(..)`), generated for every channel. A consumer
/// decodes into it and matches.
pub trait Channel: Sized {
    /// The topic.
    const TOPIC: &'static str;
    /// The typed record of a decoded value; a record the channel does not carry is refused.
    fn from_decoded(decoded: Decoded) -> Result<Self, DecodeError>;
    /// The record's Kafka key.
    fn key(&self) -> String;
}

/// The registry subject of a record under TopicRecordNameStrategy: `<topic>-<full name>`.
pub fn subject(topic: &str, full_name: &str) -> String {
    format!("{topic}-{full_name}")
}

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}
pub use generated::*;

include!(concat!(env!("OUT_DIR"), "/contract_impls.rs"));
