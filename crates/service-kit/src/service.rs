//! The scaffolding every service runs on: [`Service::start`] connects and migrates, and
//! [`Service::run`] consumes the service's channels through the full layer stack while the
//! outbox is relayed (by one instance of the service at a time) and the HTTP port answers,
//! until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use contracts::Codec;
use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher, LagReporter};
use messaging::{DeadLetter, DeadLetterSettings, Decode, Retry, RetryPolicy, Traced};
use outbox::{Idempotent, PollingRelay, RelaySettings, TailingRelay, TransactionalHandler};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::decode::ChannelDecoder;
use crate::http::{self, Health};
use crate::inbound::Inbound;
use crate::metrics::{Metrics, PartitionLabels};
use crate::outgoing::Outgoing;
use crate::settings::{RelayKind, Settings};

/// How long a handler waits for a database connection before it counts the database as
/// unavailable.
const DATABASE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the outbox backlog gauge is refreshed.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(2);

/// Messages per shared transaction at most, by default. Batches form only while messages
/// arrive faster than one transaction finishes, so an idle service runs one per transaction;
/// the bound keeps a batch's locks short.
const GROUP_COMMIT: usize = 16;

/// Records of different keys (orders, restaurants, consumers) handled at the same time per
/// partition, by default; a key's records stay one at a time, in order. In partition order a
/// partition's records queued behind each other's handlers and relay batches arrived as
/// bursts: at 134 orders/s the order service's replies waited 108 ms on average for a 12 ms
/// handler. In key order they wait 24 ms, and concurrent records share group commits
/// (`ftgo bench orders`, docs/operations.md#ftgo-bench-orders).
const KEY_LANES: usize = 64;

/// How an instance joins its service's group.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The consumer group, and so the dead-letter topic `ftgo.<group>.dlt`. Tests run a
    /// service in a group of their own so they share no work with a developer's services.
    pub group: String,
    /// The dead-letter topic. `ftgo.<service>-service.dlt` by default, also for test groups
    /// (dead-letter topics are declared in deploy/topics.toml, not made per group).
    pub dead_letter_topic: String,
    /// Connections to the service's database (handlers, relay, leadership, backlog).
    pub max_connections: u32,
    /// Partition order, or key order with this many keys at once per partition (the default:
    /// key order, [`KEY_LANES`] keys at once).
    pub ordering: kafka::Ordering,
    /// Messages handled at the same time share one transaction, up to this many (group
    /// commit: `outbox::Idempotent::grouped`); 1 turns it off.
    pub group_commit: usize,
}

impl Instance {
    /// The defaults of `service` (`order`, `kitchen`, ...): group `<service>-service`.
    pub fn of(service: &str) -> Self {
        Self {
            group: format!("{service}-service"),
            dead_letter_topic: format!("ftgo.{service}-service.dlt"),
            max_connections: 8,
            ordering: kafka::Ordering::Key {
                max_concurrent: KEY_LANES,
            },
            group_commit: GROUP_COMMIT,
        }
    }

    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }
}

/// What a running service tells its caller.
#[derive(Debug, Clone)]
pub struct Running {
    /// The HTTP port's address (useful when the settings asked for port 0).
    pub http: SocketAddr,
}

/// A service connected to its database, registry and Kafka, before it consumes.
pub struct Service {
    /// `order`, `kitchen`, ...: names its relay lock, logs and `ce_source`.
    name: String,
    settings: Settings,
    instance: Instance,
    pool: PgPool,
    codec: Arc<Codec>,
    publisher: KafkaPublisher,
    health: Health,
    metrics: Metrics,
    /// Cancelled at shutdown: every task of the service watches it.
    stop: CancellationToken,
    /// Background work of the service's own (saga deadlines, ...), awaited at shutdown.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    /// Its REST API for other applications, if it has one ([`Service::serve_api`]).
    api: Option<http::Api>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("group", &self.instance.group)
            .finish_non_exhaustive()
    }
}

/// Makes the service's schema current, as the role that owns it: the service's `migrations`,
/// the outbox's tables (outbox, inbox, saga instances), the compensations table and the
/// Idempotency-Key table ([`crate::api`]). The
/// deployment step before the service runs (`<name>-service migrate`); idempotent, and
/// instances migrating at once take turns.
pub async fn migrate(pool: &PgPool, migrations: &Migrator) -> Result<()> {
    migrations.run(pool).await.context("migrating")?;
    outbox::install(pool)
        .await
        .context("installing the outbox")?;
    crate::compensation::install(pool)
        .await
        .context("creating the compensations table")?;
    crate::api::install(pool)
        .await
        .context("creating the Idempotency-Key table")?;
    Ok(())
}

/// Fails, naming the step to run, unless every migration of `migrations` was applied and the
/// kit's tables are there.
async fn check_migrated(name: &str, pool: &PgPool, migrations: &Migrator) -> Result<()> {
    let run = format!(
        "run `{name}-service migrate` as the schema's owner first (deploy/local/services does)"
    );
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .map_err(|error| anyhow::anyhow!("it has never been migrated ({error}): {run}"))?;
    let missing: Vec<i64> = migrations
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect();
    if !missing.is_empty() {
        anyhow::bail!("migrations {missing:?} are not applied: {run}");
    }
    let tables: bool = sqlx::query_scalar(
        "SELECT to_regclass('outbox') IS NOT NULL AND to_regclass('inbox') IS NOT NULL
            AND to_regclass('saga_instances') IS NOT NULL
            AND to_regclass('compensations') IS NOT NULL
            AND to_regclass('http_idempotency') IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    if !tables {
        anyhow::bail!("the outbox's or the compensations' tables are missing: {run}");
    }
    Ok(())
}

impl Service {
    /// Connects to the database as the runtime role and checks it is migrated
    /// ([`migrate`] made the schema: the runtime role may not), and sets up the codec and the
    /// producer.
    pub async fn start(
        name: &str,
        settings: Settings,
        instance: Instance,
        migrations: &Migrator,
    ) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(instance.max_connections)
            // A handler that cannot get a connection in this long finds the database
            // unavailable (waited out, and readiness says so) instead of hanging for sqlx's
            // default 30 s.
            .acquire_timeout(DATABASE_ACQUIRE_TIMEOUT)
            .connect_with(settings.database.options()?)
            .await
            .context("connecting to the database (is the platform up? deploy/local/status)")?;
        check_migrated(name, &pool, migrations)
            .await
            .with_context(|| format!("the {name} service's schema is not ready"))?;
        let registry = contracts::RegistryAccess::from_env(&settings.schema_registry.url)?;
        let codec = Arc::new(Codec::for_catalog(&registry)?);
        let produced: Vec<(&str, &str)> = contracts::catalog::produced_by(name)
            .map(|(channel, record)| (channel.topic, record.full_name))
            .collect();
        match codec.prepare(produced).await {
            Ok(()) => {}
            // An unreachable registry is waited out, message by message (readiness says so).
            Err(error @ contracts::EncodeError::Registry { .. }) => {
                tracing::warn!(%error, "the registry does not answer; schemas are looked up later");
            }
            // A schema not registered, or a principal refused: nothing will change by waiting.
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!(
                    "looking up the schemas of what the {name} service produces"
                )));
            }
        }
        let publisher = KafkaPublisher::new(
            &settings.kafka.bootstrap_servers,
            &format!("{}-{}", instance.group, std::process::id()),
        )?;
        Ok(Self {
            name: name.to_owned(),
            settings,
            instance,
            pool,
            codec,
            publisher,
            health: Health::new(),
            metrics: Metrics::new(),
            stop: CancellationToken::new(),
            tasks: Vec::new(),
            api: None,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn codec(&self) -> &Arc<Codec> {
        &self.codec
    }

    /// How the service's handlers send: `ce_source` `/ftgo/<name>-service`.
    pub fn outgoing(&self) -> Outgoing {
        Outgoing::new(self.codec.clone(), &format!("{}-service", self.name))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves `api` on the HTTP port beside health and metrics, its routes given this
    /// service's database and `handler`, and its OpenAPI document at `/openapi.json`.
    pub fn serve_api<H: Clone + Send + Sync + 'static>(
        &mut self,
        api: &crate::api::RestApi<H>,
        handler: H,
    ) {
        let state = crate::api::Rest {
            pool: self.pool().clone(),
            handler,
        };
        let (router, document) = api.router(&self.name, state);
        self.api = Some(http::Api { router, document });
    }

    /// Runs `work` in the background until shutdown (it gets the shutdown token).
    pub fn spawn<F, Fut>(&mut self, name: &'static str, work: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let task = tokio::spawn(work(self.stop.clone()));
        self.tasks.push((name, task));
    }

    /// Consumes `I`'s topics with `handler` — `Traced(DeadLetter(Measured(Retry(Decode(
    /// Idempotent(handler))))))`, one transaction per message or per group of messages handled
    /// at once (group commit) — relays the outbox while this
    /// instance leads, serves the HTTP port, until `shutdown` completes; then drains and stops
    /// everything. `started` learns the HTTP address once the service consumes.
    pub async fn run<I, H>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()> + Send + 'static,
        started: Option<tokio::sync::oneshot::Sender<Running>>,
    ) -> Result<()>
    where
        I: Inbound + 'static,
        H: TransactionalHandler<I> + 'static,
    {
        let Self {
            name,
            settings,
            instance,
            pool,
            codec,
            publisher,
            health,
            metrics,
            stop,
            tasks,
            api,
        } = self;
        let listener = http::bind_first_free(&settings.http).await?;
        let address = listener.local_addr()?;
        let serving = http::serve(
            listener,
            health.clone(),
            metrics.clone(),
            api,
            stop.clone().cancelled_owned(),
        );

        let relaying = spawn_relay(&name, &settings, &instance, &pool, &metrics, &stop);
        let handler = stack::<I, H>(
            handler, &instance, &pool, codec, publisher, &health, &metrics,
        );
        let topics = I::topics();
        let mut consumer_settings =
            ConsumerSettings::new(&settings.kafka.bootstrap_servers, &instance.group, &topics);
        consumer_settings.client_id = format!("{}-{}", instance.group, std::process::id());
        consumer_settings.ordering = instance.ordering;
        consumer_settings.group_instance_id = settings.kafka.group_instance_id.clone();
        consumer_settings.session_timeout =
            std::time::Duration::from_millis(settings.kafka.session_timeout_ms);
        let runner =
            ConsumerRunner::new(&consumer_settings)?.with_lag_reporter(lag_reporter(&metrics));
        let consuming = tokio::spawn(runner.run(handler, stop.clone().cancelled_owned()));
        health.ready("consumer");
        if let Some(started) = started {
            let _ = started.send(Running { http: address });
        }
        tracing::info!(service = name, group = instance.group, %address, ?topics, "running");

        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            () = stop.cancelled() => {}
        }
        stop.cancel();
        let summary = consuming.await?;
        let published = relaying.await?;
        for (task, handle) in tasks {
            if let Err(error) = handle.await {
                tracing::error!(task, %error, "a background task failed");
            }
        }
        tokio::time::timeout(Duration::from_secs(10), serving).await???;
        let summary = summary?;
        tracing::info!(handled = summary.handled, published, "stopped");
        Ok(())
    }
}

/// Relays the outbox while this instance leads its service (a Postgres advisory lock), with a
/// transactional producer per leadership term, by polling the table or tailing the WAL
/// (`settings.relay`, [`crate::relay`]); the leader also counts the backlog and expires the
/// inbox. Ends at `stop` with how many messages it published.
fn spawn_relay(
    name: &str,
    settings: &Settings,
    instance: &Instance,
    pool: &PgPool,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> JoinHandle<u64> {
    let (pool, stop) = (pool.clone(), stop.clone());
    let metrics = metrics.clone();
    let lock = format!("relay:{name}");
    let bootstrap = settings.kafka.bootstrap_servers.clone();
    let client_id = format!("{}-relay-{}", instance.group, std::process::id());
    // One transactional id per service (per group: tests run a service in a group of their
    // own): a new leader's producer fences the one before it.
    let transactional_id = format!("ftgo-relay-{}", instance.group);
    let inbox = settings.inbox.clone();
    let kind = settings.relay;
    let tailing =
        crate::relay::tailing_settings(settings, name, &instance.group).map_err(|e| e.to_string());
    let group = instance.group.clone();
    tokio::spawn(async move {
        outbox::while_leader(pool.clone(), &lock, stop, |leading| {
            let producer = KafkaPublisher::transactional(&bootstrap, &client_id, &transactional_id);
            // The leader alone counts the backlog and keeps house; the other instances report
            // 0, so the service's backlog is the sum over its instances.
            let watching = watch_backlog(pool.clone(), metrics.clone(), leading.clone());
            let expiring = expire_inbox(
                pool.clone(),
                inbox.clone(),
                metrics.clone(),
                leading.clone(),
            );
            let pool = pool.clone();
            let leader = metrics.relay_leader.clone();
            let (tailing, group) = (tailing.clone(), group.clone());
            async move {
                let _term = LeadershipTerm::begin(leader);
                let producer = match producer {
                    Ok(producer) => producer,
                    Err(error) => {
                        tracing::error!(%error, "cannot create the relay's producer");
                        return 0;
                    }
                };
                let term = leading.clone();
                let relaying = async move {
                    let published = match kind {
                        RelayKind::Polling => {
                            forget_tailing(&pool, &group).await;
                            let relay = PollingRelay::new(pool, producer, RelaySettings::default());
                            relay.run(leading.cancelled_owned()).await
                        }
                        RelayKind::Tailing => match tailing {
                            Ok(settings) => {
                                let relay = TailingRelay::new(pool, producer, settings);
                                relay
                                    .run(leading.cancelled_owned())
                                    .await
                                    .unwrap_or_else(|error| {
                                        tracing::error!(%error, "the log-tailing relay cannot run");
                                        0
                                    })
                            }
                            Err(error) => {
                                tracing::error!(%error, "the log-tailing relay's settings");
                                0
                            }
                        },
                    };
                    // A relay that stops by itself (its producer fenced, or failed for good
                    // when a broker died mid-transaction) ends the term: the backlog watch
                    // and the inbox expiry stop too, the lock is released, and the next term
                    // starts with a new producer. (Found by deploy/local/chaos leader-kill:
                    // the term used to wait for them, holding the lock with no relay.)
                    term.cancel();
                    published
                };
                let (published, (), ()) = tokio::join!(relaying, watching, expiring);
                published
            }
        })
        .await
    })
}

/// A polling leader drops the slot a log-tailing relay of its group left (it would keep WAL
/// forever); without the right to, it says what an administrator must run.
async fn forget_tailing(pool: &PgPool, group: &str) {
    match crate::relay::drop_left_slot(pool, group).await {
        Ok(true) => tracing::info!(
            slot = %crate::relay::slot(group),
            "dropped the log-tailing relay's slot: this service relays by polling now"
        ),
        Ok(false) => {}
        Err(error) => tracing::warn!(
            %error,
            slot = %crate::relay::slot(group),
            "the log-tailing relay's slot is left and keeps WAL, and this role may not drop \
             it: an administrator must (SELECT pg_drop_replication_slot('<slot>'), \
             docs/operations.md, \"Switching a service's relay\")"
        ),
    }
}

/// A leadership term of the relay, shown by the `relay_leader` gauge: 1 from its beginning,
/// back to 0 when it ends, however it ends.
struct LeadershipTerm(prometheus_client::metrics::gauge::Gauge);

impl LeadershipTerm {
    fn begin(gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.set(1);
        Self(gauge)
    }
}

impl Drop for LeadershipTerm {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

/// `handler` in the full layer stack: `Traced(DeadLetter(Measured(Retry(Decode(Idempotent(
/// handler))))))`.
fn stack<I, H>(
    handler: H,
    instance: &Instance,
    pool: &PgPool,
    codec: Arc<Codec>,
    publisher: KafkaPublisher,
    health: &Health,
    metrics: &Metrics,
) -> impl messaging::Handler + 'static
where
    I: Inbound + 'static,
    H: TransactionalHandler<I> + 'static,
{
    Traced::new(DeadLetter::new(
        crate::Measured::new(
            Retry::new(
                Decode::new(
                    ChannelDecoder::<I>::new(codec),
                    Idempotent::new(pool.clone(), &instance.group, handler)
                        .grouped(instance.group_commit),
                ),
                RetryPolicy::default(),
            )
            .with_outages(outage_reporter(health, metrics)),
            metrics.clone(),
        ),
        publisher,
        DeadLetterSettings::new(&instance.group, &instance.dead_letter_topic),
    ))
    .in_group(&instance.group)
}

/// Deletes inbox entries older than the retention, every `expire_every` until `stop`, and keeps
/// the inbox gauge current (exact below 100,000 rows, PostgreSQL's estimate above).
async fn expire_inbox(
    pool: PgPool,
    inbox: crate::settings::InboxSettings,
    metrics: Metrics,
    stop: CancellationToken,
) {
    loop {
        match outbox::Inbox::expire(&pool, inbox.retention()).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(
                expired,
                retention_secs = inbox.retention_secs,
                "forgot handled messages past the inbox's retention"
            ),
            Err(error) => tracing::warn!(%error, "cannot expire the inbox"),
        }
        match crate::api::expire_keys(&pool).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "forgot Idempotency-Keys past their retention"),
            Err(error) => tracing::warn!(%error, "cannot expire the Idempotency-Keys"),
        }
        match sqlx::query_scalar::<_, i64>(
            "SELECT CASE WHEN c.reltuples < 100000 THEN (SELECT count(*) FROM inbox)
                         ELSE c.reltuples::bigint END
             FROM pg_class c WHERE c.oid = 'inbox'::regclass",
        )
        .fetch_one(&pool)
        .await
        {
            Ok(rows) => {
                metrics.inbox_rows.set(rows);
            }
            Err(error) => tracing::debug!(%error, "cannot count the inbox"),
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(inbox.expire_every()) => {}
        }
    }
    metrics.inbox_rows.set(0);
}

/// While messages wait for an unavailable dependency, readiness is 503 naming it and the
/// `ftgo_waiting_on_dependency` gauge counts them; both clear when the last one is through.
fn outage_reporter(health: &Health, metrics: &Metrics) -> messaging::OutageReporter {
    let (health, gauge) = (health.clone(), metrics.waiting_on_dependency.clone());
    // The count and the readiness change together, or a concurrent start and end could leave
    // readiness saying the opposite of the count.
    let turn = std::sync::Mutex::new(());
    Arc::new(move |dependency: &'static str, waiting: bool| {
        let _turn = turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let labels = crate::metrics::DependencyLabels {
            dependency: dependency.to_owned(),
        };
        let gauge = gauge.get_or_create(&labels);
        let now = if waiting {
            gauge.inc() + 1
        } else {
            gauge.dec() - 1
        };
        if now > 0 {
            health.not_ready(
                dependency,
                format!("unavailable: {now} messages wait for it (their partitions wait)"),
            );
        } else {
            health.ready(dependency);
        }
    })
}

/// Sets the consumer-lag gauges from the runner's reports (the whole set each time).
fn lag_reporter(metrics: &Metrics) -> LagReporter {
    let lag = metrics.consumer_lag.clone();
    Arc::new(move |partitions: &[(String, i32, i64)]| {
        lag.clear();
        for (topic, partition, behind) in partitions {
            lag.get_or_create(&PartitionLabels {
                topic: topic.clone(),
                partition: partition.to_string(),
            })
            .set(*behind);
        }
    })
}

/// Keeps the outbox-backlog gauge (rows appended and not yet relayed), the failed-rows gauge
/// and the stalled-sagas gauge current until `stop`, then sets them to 0: the leader reports for the service.
async fn watch_backlog(pool: PgPool, metrics: Metrics, stop: CancellationToken) {
    loop {
        match sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT (SELECT count(*) FROM outbox),
                    (SELECT count(*) FROM saga_instances WHERE status = 'stalled'),
                    (SELECT count(*) FROM outbox_failed)",
        )
        .fetch_one(&pool)
        .await
        {
            Ok((backlog, stalled, failed)) => {
                metrics.outbox_backlog.set(backlog);
                metrics.sagas_stalled.set(stalled);
                metrics.outbox_failed.set(failed);
            }
            Err(error) => tracing::debug!(%error, "cannot count the outbox and stalled sagas"),
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(BACKLOG_INTERVAL) => {}
        }
    }
    metrics.outbox_backlog.set(0);
    metrics.sagas_stalled.set(0);
    metrics.outbox_failed.set(0);
}
