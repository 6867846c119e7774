//! What every FTGO service shares on top of the messaging runtime.
//!
//! # Layout
//! - [`settings`]: [`Settings`], from local defaults and `FTGO_*` environment variables.
//! - [`telemetry`]: the one tracing subscriber (`init_subscriber`, `init_test_subscriber`).
//! - [`http`]: liveness, readiness ([`Health`]) and `/metrics` on the service's HTTP port.
//! - [`metrics`]: [`Metrics`] (handled messages by outcome, handler latency, outbox backlog,
//!   consumer lag) and the [`Measured`] layer.
//! - [`shutdown`]: a token cancelled by SIGTERM or Ctrl-C.
//! - [`decode`]: [`CatalogDecoder`], the [`messaging::Decoder`] for our messages: Avro in the
//!   Confluent wire format through the registry, each failure mapped to its dead-letter reason;
//!   [`ChannelDecoder`], the same into a channel's typed enum.

pub mod decode;
pub mod http;
pub mod metrics;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

pub use decode::{CatalogDecoder, ChannelDecoder};
pub use http::Health;
pub use metrics::{Measured, Metrics};
pub use settings::{Settings, SettingsError};
pub use telemetry::{init_subscriber, init_test_subscriber};
