//! A service declared once: [`ServiceDefinition`] says what a service is (its name, what it
//! consumes, its migrations, how its handler is made), and everything that starts or describes
//! a service derives from it: the binary ([`Definition::main`]), the tests' in-process services,
//! the tests' service processes, and the scripts (through `<name>-service describe`).

use std::future::Future;
use std::pin::Pin;

use anyhow::{Context, Result};
use outbox::TransactionalHandler;
use serde::Serialize;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::inbound::Inbound;
use crate::service::{Instance, Running, Service};
use crate::settings::Settings;

/// What a service is. A service crate implements it on a unit type and exports
/// `pub const DEFINITION: Definition = Definition::of::<TheService>();`.
pub trait ServiceDefinition: 'static {
    /// `order`, `kitchen`, ...: the group `<name>-service`, the dead-letter topic
    /// `ftgo.<name>-service.dlt`, the database role `ftgo_<name>`, the binary `<name>-service`.
    const NAME: &'static str;
    /// The topics it consumes, typed (a channel, or an [`inbound!`](crate::inbound) enum).
    type Inbound: Inbound + 'static;
    /// Its handler: one transaction per message (or per group of messages).
    type Handler: TransactionalHandler<Self::Inbound> + 'static;
    /// Its default HTTP port (liveness, readiness, metrics): distinct per service, so all of
    /// them run on one machine as they are; a second instance sets `FTGO_HTTP__PORT`
    /// (`deploy/local/services` gives instance i the port + 10 i).
    const HTTP_PORT: u16;
    /// The consumed topics the service keeps a replica from: the whole history matters, so a
    /// group is never moved past them (`<name>-service reset --to-end` leaves them alone).
    const REPLICA_FEEDS: &'static [&'static str] = &[];

    /// Its own tables (`static MIGRATOR: Migrator = sqlx::migrate!("./migrations")`); the
    /// outbox's come with the kit.
    fn migrator() -> &'static Migrator;

    /// Makes the handler, once the service is connected and migrated; background work of the
    /// service's own (saga deadlines) is started here with [`Service::spawn`].
    fn handler(service: &mut Service) -> Result<Self::Handler>;

    /// The OpenAPI document of its REST API, if it has one (`handler` serves the API with
    /// [`Service::serve_api`]); `<name>-service openapi` prints it.
    fn openapi() -> Option<utoipa::openapi::OpenApi> {
        None
    }
}

type RunFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A [`ServiceDefinition`] as a value, so services can be listed, looked up by name and run
/// alike.
#[derive(Clone, Copy)]
pub struct Definition {
    /// As [`ServiceDefinition::NAME`].
    pub name: &'static str,
    /// As [`ServiceDefinition::REPLICA_FEEDS`].
    pub replica_feeds: &'static [&'static str],
    /// As [`ServiceDefinition::HTTP_PORT`].
    pub http_port: u16,
    consumes: fn() -> Vec<&'static str>,
    openapi: fn() -> Option<utoipa::openapi::OpenApi>,
    migrator: fn() -> &'static Migrator,
    run: fn(
        Settings,
        Instance,
        CancellationToken,
        Option<tokio::sync::oneshot::Sender<Running>>,
    ) -> RunFuture,
}

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definition")
            .field("name", &self.name)
            .field("consumes", &self.consumes())
            .finish_non_exhaustive()
    }
}

/// What `<name>-service describe` prints (JSON), for scripts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Description {
    pub name: &'static str,
    pub binary: String,
    pub group: String,
    pub dead_letter_topic: String,
    pub consumes: Vec<&'static str>,
    pub replica_feeds: &'static [&'static str],
    pub http_port: u16,
}

impl Definition {
    pub const fn of<D: ServiceDefinition>() -> Self {
        Self {
            name: D::NAME,
            replica_feeds: D::REPLICA_FEEDS,
            http_port: D::HTTP_PORT,
            consumes: <D::Inbound as Inbound>::topics,
            openapi: D::openapi,
            migrator: D::migrator,
            run: run_boxed::<D>,
        }
    }

    /// The topics it consumes, in one consumer group.
    pub fn consumes(&self) -> Vec<&'static str> {
        (self.consumes)()
    }

    /// The OpenAPI document of its REST API, if it has one.
    pub fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        (self.openapi)()
    }

    /// How an instance joins the service's own group.
    pub fn instance(&self) -> Instance {
        Instance::of(self.name)
    }

    /// Its settings: defaults (its own HTTP port) and `FTGO_*` variables.
    pub fn settings(&self) -> Result<Settings> {
        Ok(Settings::from_figment(Settings::figment_on(
            self.name,
            self.http_port,
        ))?)
    }

    pub fn describe(&self) -> Description {
        let instance = self.instance();
        Description {
            name: self.name,
            binary: format!("{}-service", self.name),
            group: instance.group,
            dead_letter_topic: instance.dead_letter_topic,
            consumes: self.consumes(),
            replica_feeds: self.replica_feeds,
            http_port: self.http_port,
        }
    }

    /// Makes the service's schema current as its owner, the migration role of `settings`
    /// ([`crate::service::migrate`]).
    pub async fn migrate(&self, settings: &Settings) -> Result<()> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(settings.database.migration_options()?)
            .await
            .context("connecting to the database as the migration role")?;
        crate::service::migrate(&pool, (self.migrator)()).await?;
        if settings.relay == crate::RelayKind::Tailing {
            crate::relay::create_publication(&pool, self.name)
                .await
                .with_context(|| {
                    format!(
                        "making the publication {} for the log-tailing relay (FTGO_RELAY=tailing): \
                         the migration role needs CREATE on the database (docs/operations.md, \
                         \"Switching a service's relay\")",
                        crate::relay::publication(self.name)
                    )
                })?;
        }
        pool.close().await;
        Ok(())
    }

    /// Runs the service until `stop` is cancelled: the consumer, the relay, the HTTP port, on
    /// a migrated schema; `started` learns the HTTP address once it consumes.
    pub async fn run(
        &self,
        settings: Settings,
        instance: Instance,
        stop: CancellationToken,
        started: Option<tokio::sync::oneshot::Sender<Running>>,
    ) -> Result<()> {
        (self.run)(settings, instance, stop, started).await
    }

    /// The service's binary: settings from `FTGO_*` variables, logs, then the service until
    /// SIGTERM or Ctrl-C (see [`crate::command`] for its arguments).
    pub fn main(&self) -> Result<()> {
        crate::command::main(self, std::env::args_os())
    }

    /// As [`Definition::main`], with these arguments (the first is the program's name).
    pub fn main_with(&self, arguments: impl IntoIterator<Item = std::ffi::OsString>) -> Result<()> {
        crate::command::main(self, arguments)
    }
}

fn run_boxed<D: ServiceDefinition>(
    settings: Settings,
    instance: Instance,
    stop: CancellationToken,
    started: Option<tokio::sync::oneshot::Sender<Running>>,
) -> RunFuture {
    Box::pin(async move {
        let mut service = Service::start(D::NAME, settings, instance, D::migrator()).await?;
        let handler = D::handler(&mut service)
            .with_context(|| format!("making the {} service's handler", D::NAME))?;
        service
            .run::<D::Inbound, _>(handler, stop.cancelled_owned(), started)
            .await
    })
}
