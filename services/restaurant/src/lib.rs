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
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use contracts::Codec;
use contracts::restaurant::commands::Command;
use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher};
use messaging::{DeadLetter, DeadLetterSettings, Decode, Retry, RetryPolicy, Traced};
use outbox::{Idempotent, PollingRelay, RelaySettings};
use secrecy::ExposeSecret;
use service_kit::{ChannelDecoder, Health, Measured, Metrics, Settings};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

use crate::handlers::RestaurantCommands;

/// The consumer group, and the name of its dead-letter topic (`ftgo.restaurant-service.dlt`).
pub const GROUP: &str = "restaurant-service";

/// How this instance joins its group (tests run the service in a group of their own, so a
/// developer's running service and the tests do not share work).
#[derive(Debug, Clone)]
pub struct Options {
    pub group: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            group: GROUP.to_owned(),
        }
    }
}

/// What a running service tells its caller.
#[derive(Debug, Clone)]
pub struct Running {
    /// The HTTP port's address (useful when the settings asked for port 0).
    pub http: std::net::SocketAddr,
}

/// Runs the service until `shutdown` completes; `started` learns the HTTP address once it
/// listens. Migrations run first.
pub async fn run(
    settings: Settings,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: Option<tokio::sync::oneshot::Sender<Running>>,
) -> Result<()> {
    let stop = CancellationToken::new();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(settings.database.url.expose_secret())
        .await
        .context("connecting to the database")?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("migrating")?;
    outbox::install(&pool).await?;
    let codec = Arc::new(Codec::for_catalog(&settings.schema_registry.url)?);
    let publisher = KafkaPublisher::new(&settings.kafka.bootstrap_servers, GROUP)?;
    let health = Health::new();
    let metrics = Metrics::new();

    let listener = service_kit::http::bind(settings.http.port).await?;
    let address = listener.local_addr()?;
    let http = service_kit::http::serve(
        listener,
        health.clone(),
        metrics.clone(),
        stop.clone().cancelled_owned(),
    );
    let relay = PollingRelay::new(pool.clone(), publisher.clone(), RelaySettings::default());
    let relaying = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop.cancelled_owned()).await }
    });
    let handler = Traced::new(DeadLetter::new(
        Measured::new(
            Retry::new(
                Decode::new(
                    ChannelDecoder::<Command>::new(codec.clone()),
                    Idempotent::new(pool.clone(), &options.group, RestaurantCommands::new(codec)),
                ),
                RetryPolicy::default(),
            ),
            metrics.clone(),
        ),
        publisher,
        DeadLetterSettings::new(&options.group, format!("ftgo.{GROUP}.dlt")),
    ));
    let mut consumer_settings = ConsumerSettings::new(
        &settings.kafka.bootstrap_servers,
        &options.group,
        &["ftgo.restaurant.commands"],
    );
    consumer_settings.client_id = format!("{}-{}", options.group, std::process::id());
    let runner = ConsumerRunner::new(&consumer_settings)?;
    let consuming = tokio::spawn(runner.run(handler, stop.clone().cancelled_owned()));
    health.ready("service");
    if let Some(started) = started {
        let _ = started.send(Running { http: address });
    }
    tracing::info!(%address, "restaurant service running");

    shutdown.await;
    tracing::info!("shutting down");
    stop.cancel();
    let summary = consuming.await??;
    let published = relaying.await?;
    tokio::time::timeout(Duration::from_secs(10), http).await???;
    tracing::info!(handled = summary.handled, published, "stopped");
    Ok(())
}
