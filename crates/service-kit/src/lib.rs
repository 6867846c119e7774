//! What every FTGO service shares on top of the messaging runtime.
//!
//! # Layout
//! - [`definition`]: [`ServiceDefinition`], a service declared once (name, what it consumes,
//!   migrations, handler), and [`Definition`], the same as a value that runs it; [`command`]:
//!   the binary every service is (`run`, `describe`, `reset --to-end`).
//! - [`service`]: [`Service`], the scaffolding of every service: database and migrations, the
//!   consumer with the full layer stack, the outbox relay (one leader per service), the HTTP
//!   port, graceful shutdown.
//! - [`settings`]: [`Settings`], from local defaults and `FTGO_*` environment variables.
//! - [`telemetry`]: the one tracing subscriber (`init_subscriber`, `init_test_subscriber`).
//! - [`http`]: liveness, readiness ([`Health`]) and `/metrics` on the service's HTTP port.
//! - [`metrics`]: [`Metrics`] (handled messages by outcome, handler latency, outbox backlog,
//!   consumer lag) and the [`Measured`] layer.
//! - [`shutdown`]: a token cancelled by SIGTERM or Ctrl-C.
//! - [`inbound`]: [`Inbound`], the typed messages of the topics a service consumes, and the
//!   [`inbound!`] macro for a service that consumes several channels.
//! - [`compensation`]: tombstones of compensated steps, so a step's command that comes after
//!   its compensation (a replayed dead letter) is refused rather than take effect for good.
//! - [`decode`]: [`CatalogDecoder`], the [`messaging::Decoder`] for our messages: Avro in the
//!   Confluent wire format through the registry, each failure mapped to its dead-letter reason;
//!   [`ChannelDecoder`], the same into an [`Inbound`] type.
//! - [`replica`]: the one rule of replicas built from events: an older event never replaces
//!   newer data.
//! - [`outgoing`]: [`Outgoing`], events, commands and replies encoded and appended to the
//!   outbox in the handler's transaction.

pub mod api;
mod command;
pub mod compensation;
mod decode;
mod definition;
pub mod http;
mod inbound;
pub mod k8s;
mod metrics;
mod outgoing;
pub mod relay;
pub mod replica;
mod service;
mod settings;
pub mod shutdown;
mod telemetry;

pub use decode::{CatalogDecoder, ChannelDecoder};
pub use definition::{Definition, Description, ServiceDefinition};
pub use inbound::Inbound;
pub use metrics::{Measured, Metrics};
pub use outgoing::Outgoing;
pub use service::{Instance, Running, Service};
pub use settings::{HttpSettings, INSTANCE_PORT_STEP, RelayKind, Settings, SettingsError};
pub use telemetry::{Telemetry, init_subscriber, init_test_subscriber};
