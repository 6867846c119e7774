//! Prometheus metrics of a service, served on `/metrics`: what it handled, how long it took,
//! what it dead-lettered, and how much waits in its outbox.

use std::sync::Arc;
use std::time::Instant;

use messaging::{Handler, HandlerError, Received};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub topic: String,
    /// `ok`, or the failure's reason (`invalid-content`, `retries-exhausted`, ...): what the
    /// dead-letter layer outside sends to the dead-letter topic.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    pub dependency: String,
}

/// The metrics every service has. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub handled: Family<OutcomeLabels, Counter>,
    pub handler_seconds: Family<TopicLabels, Histogram>,
    pub wait_seconds: Family<TopicLabels, Histogram>,
    pub outbox_backlog: Gauge,
    pub relay_leader: Gauge,
    pub sagas_stalled: Gauge,
    pub outbox_failed: Gauge,
    pub inbox_rows: Gauge,
    pub waiting_on_dependency: Family<DependencyLabels, Gauge>,
    pub consumer_lag: Family<PartitionLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ftgo");
        let handled = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "messages_handled",
            "Messages handled, by topic and outcome (ok, or the reason it was dead-lettered)",
            handled.clone(),
        );
        let handler_seconds = Family::<TopicLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "handler_duration_seconds",
            "Time to handle a message, retries included",
            handler_seconds.clone(),
        );
        let wait_seconds = Family::<TopicLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "message_wait_seconds",
            "Time from a record's timestamp (its producer's send) to the start of its handling: \
             the broker, the fetch, and the wait behind earlier records of its partition",
            wait_seconds.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Rows in the outbox waiting for the relay",
            outbox_backlog.clone(),
        );
        let relay_leader = Gauge::default();
        registry.register(
            "relay_leader",
            "1 while this instance leads its service's outbox relay (one instance does), else 0",
            relay_leader.clone(),
        );
        let sagas_stalled = Gauge::default();
        registry.register(
            "sagas_stalled",
            "Sagas that sent a command again and again without a reply and wait for an operator",
            sagas_stalled.clone(),
        );
        let outbox_failed = Gauge::default();
        registry.register(
            "outbox_failed",
            "Outbox rows that can never be published as they are, moved aside for an operator \
             (ftgo outbox list); later rows of their keys wait",
            outbox_failed.clone(),
        );
        let inbox_rows = Gauge::default();
        registry.register(
            "inbox_rows",
            "Messages remembered as handled (the duplicate check), before they expire",
            inbox_rows.clone(),
        );
        let waiting_on_dependency = Family::<DependencyLabels, Gauge>::default();
        registry.register(
            "waiting_on_dependency",
            "Messages waiting for an unavailable dependency (database, schema-registry): each \
             holds its partition until the dependency is back",
            waiting_on_dependency.clone(),
        );
        let consumer_lag = Family::<PartitionLabels, Gauge>::default();
        registry.register(
            "consumer_lag",
            "Records behind the end of each assigned partition",
            consumer_lag.clone(),
        );
        Self {
            registry: Arc::new(registry),
            handled,
            handler_seconds,
            wait_seconds,
            outbox_backlog,
            relay_leader,
            sagas_stalled,
            outbox_failed,
            inbox_rows,
            waiting_on_dependency,
            consumer_lag,
        }
    }

    /// The text exposition format, as `/metrics` serves it.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// How long ago `timestamp_ms` (ms since the epoch) was; `None` if it is in the future (a
/// producer's clock ahead of this one's).
fn since_ms(timestamp_ms: i64) -> Option<std::time::Duration> {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(timestamp_ms).ok()?);
    std::time::SystemTime::now().duration_since(at).ok()
}

/// Measures the handler inside it: put it between the dead-letter and the retry layers, so it
/// sees each message's final outcome (`DeadLetter(Measured(Retry(...)))`).
#[derive(Debug, Clone)]
pub struct Measured<H> {
    inner: H,
    metrics: Metrics,
}

impl<H> Measured<H> {
    pub fn new(inner: H, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

impl<H: Handler> Handler for Measured<H> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        let started = Instant::now();
        if let Some(waited) = message.origin.timestamp_ms.and_then(since_ms) {
            self.metrics
                .wait_seconds
                .get_or_create(&TopicLabels {
                    topic: message.origin.topic.clone(),
                })
                .observe(waited.as_secs_f64());
        }
        let result = self.inner.handle(message).await;
        let topic = message.origin.topic.clone();
        self.metrics
            .handler_seconds
            .get_or_create(&TopicLabels {
                topic: topic.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(()) => "ok",
            Err(error) => error.reason().as_str(),
        };
        self.metrics
            .handled
            .get_or_create(&OutcomeLabels {
                topic,
                outcome: outcome.to_owned(),
            })
            .inc();
        result
    }
}
