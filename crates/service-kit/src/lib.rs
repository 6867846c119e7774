//! What every FTGO service shares on top of the messaging runtime.
//!
//! # Layout
//! - [`decode`]: [`CatalogDecoder`], the [`messaging::Decoder`] for our messages: Avro in the
//!   Confluent wire format through the registry, each failure mapped to its dead-letter reason.

pub mod decode;

pub use decode::CatalogDecoder;
