//! The consumer runner: one member of a service's consumer group.
//!
//! A thread of its own polls Kafka and hands each record to the task of its partition (see
//! [`crate::partition`]); the partitions assigned to this member are handled side by side, each
//! in the order the settings ask for (by partition, or by key within the partition). A record's
//! offset is stored only once it and every record before it in its partition are done
//! (succeeded or dead-lettered); librdkafka commits stored offsets every second. Before
//! partitions are revoked in a rebalance, their tasks finish the records they are handling,
//! start no new ones, and what is done is committed; so a partition is never handed over in the
//! middle of a record, and a crash can only cause records to be handled again (at least once),
//! never skipped.
//!
//! Back-pressure: a partition is paused (Kafka stops fetching it) when its task has
//! `max_buffered_per_partition` records waiting, or fewer that would take it longer than
//! `max_waiting_work` at the pace it goes (see [`crate::pace`]); it resumes when half of them
//! are done and half of that work is left. A fast task absorbs a burst without a pause, whose
//! refetch would cost it more than the burst.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering as Atomic};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use messaging::{Handler, Headers, Message, Origin, Received};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::KafkaError;
use crate::pace::{Pace, should_pause, should_resume};
use crate::partition::{Counters, NOTHING_DONE, Ordering, PartitionShared, PartitionTask};

/// How long one poll waits for a record before the consumer thread looks around again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long one poll waits while a partition is paused.
const PAUSED_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// The most records polled before they are handed to their partitions' tasks. A paused
/// partition's task may get this many beyond `max_buffered_per_partition`.
pub const POLL_BATCH: usize = 64;
/// How often finished work is stored and paused partitions are looked at.
const SWEEP_INTERVAL: Duration = Duration::from_millis(20);

/// How long a revocation or a shutdown waits for running handlers by default
/// ([`ConsumerSettings::drain_timeout`]); a pod's termination grace period must be longer.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and as whom to consume, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    pub bootstrap_servers: String,
    /// The consumer group: one per service; its instances share the partitions.
    pub group: String,
    pub topics: Vec<String>,
    /// This instance's name in logs and in the broker's group listing.
    pub client_id: String,
    /// How long the group waits for a silent member before giving its partitions to others.
    pub session_timeout: Duration,
    /// A static member's id (`group.instance.id`): when it comes back under the same id within
    /// the session timeout it gets its partitions back without a rebalance; when it leaves,
    /// its partitions move only after the session timeout. `None`: a dynamic member.
    pub group_instance_id: Option<String>,
    /// Partition order (the default) or key order within each partition.
    pub ordering: Ordering,
    /// Records of one partition fetched and not yet done at which the partition is paused
    /// whatever its task's pace; it resumes when half of them are done (and at most half of
    /// `max_waiting_work` is left). Bounds the memory a partition's task can tie up (plus at
    /// most one poll batch).
    pub max_buffered_per_partition: usize,
    /// How much work may wait for a partition's task, at the pace it goes, before the
    /// partition is paused (from a twentieth of `max_buffered_per_partition` records on). Pausing
    /// drops what librdkafka prefetched for the partition, and after resuming the first records
    /// take 0.05–1 s to come back, so the half left at resuming must outlast that; a fast task
    /// is not paused for a burst it gets through in moments (see docs/runtime.md).
    pub max_waiting_work: Duration,
    /// How long a revocation or a shutdown waits for running handlers to finish before giving
    /// up on them (their records are not committed, so the next owner handles them again).
    pub drain_timeout: Duration,
}

impl ConsumerSettings {
    pub fn new(bootstrap_servers: &str, group: &str, topics: &[&str]) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.to_owned(),
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            client_id: group.to_owned(),
            session_timeout: Duration::from_secs(10),
            group_instance_id: None,
            ordering: Ordering::Partition,
            max_buffered_per_partition: 20_000,
            max_waiting_work: Duration::from_secs(5),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.group.is_empty() {
            return Err("the consumer group must be named".into());
        }
        if self.topics.is_empty() {
            return Err("subscribe to at least one topic".into());
        }
        if self.max_buffered_per_partition == 0 {
            return Err("max_buffered_per_partition must be at least 1".into());
        }
        if self.max_waiting_work.is_zero() {
            return Err("max_waiting_work must be longer than zero".into());
        }
        if let Ordering::Key { max_concurrent: 0 } = self.ordering {
            return Err("key ordering needs max_concurrent of at least 1".into());
        }
        Ok(())
    }
}

/// Starts the task of a newly seen partition.
type Spawner = Box<
    dyn Fn(
            mpsc::UnboundedReceiver<Vec<Received>>,
            Arc<PartitionShared>,
        ) -> (JoinHandle<Result<(), KafkaError>>, CancellationToken)
        + Send
        + Sync,
>;

/// A partition being handled by this member.
struct Slot {
    records: mpsc::UnboundedSender<Vec<Received>>,
    shared: Arc<PartitionShared>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), KafkaError>>,
    /// How many records waited when the partition was paused; `None` while it is fetched.
    paused_at: Option<usize>,
    pace: Pace,
    /// The offset last stored for commit.
    stored: i64,
}

#[derive(Default)]
struct Partitions {
    slots: HashMap<(String, i32), Slot>,
    /// Records polled and not yet handed to their tasks. A rebalance hands them over before
    /// it drains the revoked partitions, so no record of an old assignment arrives late.
    polled: Vec<Received>,
    spawner: Option<Spawner>,
    runtime: Option<tokio::runtime::Handle>,
}

/// The consumer's context: owns the partitions' tasks, so that a rebalance can finish and
/// commit their work before partitions are taken away.
struct GroupContext {
    group: String,
    counters: Arc<Counters>,
    max_buffered: usize,
    max_waiting_work: Duration,
    drain_timeout: Duration,
    /// Touched by the consumer thread only (in its loop and in rebalance callbacks, which run
    /// inside its polls); the lock is never contended.
    partitions: Mutex<Partitions>,
    /// Where the lag from librdkafka's statistics goes, if anywhere.
    lag: Mutex<Option<LagReporter>>,
}

impl ClientContext for GroupContext {
    /// librdkafka's statistics, every [`LAG_INTERVAL`]: the consumer lag of each partition
    /// this member fetches (high watermark minus position).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let reporter = self
            .lag
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let Some(report) = reporter else { return };
        let mut lag: Vec<(String, i32, i64)> = statistics
            .topics
            .iter()
            .flat_map(|(topic, stats)| {
                stats
                    .partitions
                    .iter()
                    .filter(|(partition, p)| **partition >= 0 && p.desired && p.consumer_lag >= 0)
                    .map(move |(partition, p)| (topic.clone(), *partition, p.consumer_lag))
            })
            .collect();
        lag.sort();
        report(&lag);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(revoked) => {
                let revoked: Vec<(String, i32)> = revoked
                    .elements()
                    .iter()
                    .map(|p| (p.topic().to_owned(), p.partition()))
                    .collect();
                tracing::info!(group = %self.group, partitions = ?revoked,
                    "partitions revoked; finishing and committing their work");
                // Records polled before the rebalance go to their tasks first. The tasks of
                // revoked partitions finish what they are handling and start nothing new; then
                // what is done is stored and committed, before the partitions go to their next
                // owner.
                self.dispatch(consumer);
                self.drain(consumer, |key| revoked.contains(key));
                commit(consumer, &self.group);
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(group = %self.group, partitions = ?partitions.elements().iter()
                    .map(|p| (p.topic().to_owned(), p.partition())).collect::<Vec<_>>(),
                    "partitions assigned");
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance error");
            }
        }
    }
}

impl GroupContext {
    fn partitions(&self) -> MutexGuard<'_, Partitions> {
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands the records polled since the last call to their partitions' tasks (a task starts
    /// with its partition's first record), and pauses partitions with too much waiting.
    fn dispatch(&self, consumer: &BaseConsumer<Self>) {
        let mut partitions = self.partitions();
        let Partitions {
            slots,
            spawner,
            polled,
            ..
        } = &mut *partitions;
        let Some(spawner) = spawner else { return };
        // Records of one partition go to its task together: one wake-up per batch.
        let mut batches: Vec<Vec<Received>> = Vec::new();
        for record in polled.drain(..) {
            let origin = &record.origin;
            match batches.iter_mut().find(|batch| {
                batch[0].origin.partition == origin.partition
                    && batch[0].origin.topic == origin.topic
            }) {
                Some(batch) => batch.push(record),
                None => batches.push(vec![record]),
            }
        }
        for batch in batches {
            let (topic, partition) = (batch[0].origin.topic.clone(), batch[0].origin.partition);
            let slot = slots.entry((topic.clone(), partition)).or_insert_with(|| {
                let (records, receiver) = mpsc::unbounded_channel();
                let shared = Arc::new(PartitionShared {
                    buffered: AtomicUsize::new(0),
                    finished: AtomicU64::new(0),
                    committable: AtomicI64::new(NOTHING_DONE),
                });
                let (task, stop) = spawner(receiver, shared.clone());
                Slot {
                    records,
                    shared,
                    stop,
                    task,
                    paused_at: None,
                    pace: Pace::default(),
                    stored: NOTHING_DONE,
                }
            });
            let buffered =
                slot.shared.buffered.fetch_add(batch.len(), Atomic::Relaxed) + batch.len();
            self.counters
                .peak_buffered
                .fetch_max(buffered, Atomic::Relaxed);
            // A task that ended failed; the next sweep reports it.
            let _ = slot.records.send(batch);
            if slot.paused_at.is_none()
                && should_pause(
                    buffered,
                    self.max_buffered,
                    self.max_waiting_work,
                    &slot.pace,
                )
            {
                let mut list = TopicPartitionList::new();
                list.add_partition(&topic, partition);
                match consumer.pause(&list) {
                    Ok(()) => {
                        slot.paused_at = Some(buffered);
                        self.counters.pauses.fetch_add(1, Atomic::Relaxed);
                        tracing::debug!(group = %self.group, topic, partition, buffered,
                            "partition paused: its handler is behind");
                    }
                    Err(error) => tracing::warn!(group = %self.group, %error, "pause failed"),
                }
            }
        }
    }

    /// Stores what is done, resumes partitions that caught up, and reports a task that failed.
    /// Says whether a partition is still paused.
    fn sweep(&self, consumer: &BaseConsumer<Self>) -> Result<bool, KafkaError> {
        let mut partitions = self.partitions();
        let mut done = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        let mut ended = Vec::new();
        let mut still_paused = false;
        let now = Instant::now();
        for ((topic, partition), slot) in &mut partitions.slots {
            add_progress(&mut done, topic, *partition, slot);
            let waiting = slot.shared.buffered.load(Atomic::Relaxed);
            let finished = slot.shared.finished.load(Atomic::Relaxed);
            slot.pace.observe(now, finished, waiting);
            if slot
                .paused_at
                .is_some_and(|at| should_resume(waiting, at, self.max_waiting_work, &slot.pace))
            {
                resume.add_partition(topic, *partition);
                slot.paused_at = None;
            }
            still_paused |= slot.paused_at.is_some();
            if slot.task.is_finished() {
                ended.push((topic.clone(), *partition));
            }
        }
        store(consumer, &done, &self.group);
        if resume.count() > 0
            && let Err(error) = consumer.resume(&resume)
        {
            tracing::warn!(group = %self.group, %error, "resume failed");
        }
        let runtime = partitions.runtime.clone();
        for key in ended {
            let Some(slot) = partitions.slots.remove(&key) else {
                continue;
            };
            if let Some(runtime) = &runtime {
                match runtime.block_on(slot.task) {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(error),
                    Err(join) => return Err(KafkaError::HandlerPanicked(join.to_string())),
                }
            }
        }
        Ok(still_paused)
    }

    /// Stops the tasks of the partitions `which` selects: they finish the records they are
    /// handling (for at most the drain timeout) and start no others; then stores what is done.
    fn drain(&self, consumer: &BaseConsumer<Self>, which: impl Fn(&(String, i32)) -> bool) {
        let mut partitions = self.partitions();
        let keys: Vec<_> = partitions
            .slots
            .keys()
            .filter(|k| which(k))
            .cloned()
            .collect();
        let stopping: Vec<_> = keys
            .into_iter()
            .filter_map(|key| partitions.slots.remove(&key).map(|slot| (key, slot)))
            .collect();
        for (_, slot) in &stopping {
            slot.stop.cancel();
        }
        let runtime = partitions.runtime.clone();
        drop(partitions);
        let mut done = TopicPartitionList::new();
        for ((topic, partition), mut slot) in stopping {
            if let Some(runtime) = &runtime {
                let finished = runtime.block_on(async {
                    tokio::time::timeout(self.drain_timeout, &mut slot.task).await
                });
                if finished.is_err() {
                    slot.task.abort();
                    tracing::warn!(group = %self.group, topic, partition,
                        timeout_ms = self.drain_timeout.as_millis() as u64,
                        "handlers still running after the drain timeout; their records will be handled again");
                }
            }
            add_progress(&mut done, &topic, partition, &mut slot);
        }
        store(consumer, &done, &self.group);
    }
}

/// Adds the partition's newly done offset to `list`.
fn add_progress(list: &mut TopicPartitionList, topic: &str, partition: i32, slot: &mut Slot) {
    let committable = slot.shared.committable.load(Atomic::Acquire);
    if committable != NOTHING_DONE && committable > slot.stored {
        // Stored as is: the offset of the next record to read.
        if list
            .add_partition_offset(topic, partition, Offset::Offset(committable))
            .is_ok()
        {
            slot.stored = committable;
        }
    }
}

fn store(consumer: &BaseConsumer<GroupContext>, list: &TopicPartitionList, group: &str) {
    if list.count() == 0 {
        return;
    }
    if let Err(error) = consumer.store_offsets(list) {
        // A partition taken away meanwhile (its new owner handles from the last commit).
        tracing::warn!(group, %error, "storing offsets failed");
    }
}

fn commit(consumer: &BaseConsumer<GroupContext>, group: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        // Nothing stored since the last commit.
        Err(RdKafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(group, %error, "commit failed"),
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records whose handler succeeded (or dead-lettered them).
    pub handled: u64,
    /// Handler calls that failed transiently past the handler's layers and were tried again.
    pub retries: u64,
    /// Times a partition was paused because its handler fell behind.
    pub pauses: u64,
    /// The most records one partition had fetched and not yet done (bounded by
    /// `max_buffered_per_partition` plus what was already on its way when it was paused).
    pub peak_buffered: usize,
}

/// Receives, every [`LAG_INTERVAL`], the lag of each partition this member owns: `(topic,
/// partition, records behind the end)`. The whole list each time, so a revoked partition drops
/// out.
pub type LagReporter = Arc<dyn Fn(&[(String, i32, i64)]) + Send + Sync>;

/// How often a member measures its lag.
pub const LAG_INTERVAL: Duration = Duration::from_secs(2);

/// One member of a consumer group, running a handler over its share of the partitions.
pub struct ConsumerRunner {
    consumer: BaseConsumer<GroupContext>,
    settings: ConsumerSettings,
}

impl std::fmt::Debug for ConsumerRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRunner")
            .field("group", &self.settings.group)
            .finish_non_exhaustive()
    }
}

impl ConsumerRunner {
    /// Joins the group and subscribes; partitions are assigned once [`ConsumerRunner::run`]
    /// polls.
    pub fn new(settings: &ConsumerSettings) -> Result<Self, KafkaError> {
        settings.validate().map_err(KafkaError::Settings)?;
        let mut config = crate::client_config(&settings.bootstrap_servers)?;
        if let Some(id) = &settings.group_instance_id {
            config.set("group.instance.id", id);
        }
        let consumer: BaseConsumer<GroupContext> = config
            .set("group.id", &settings.group)
            .set("client.id", &settings.client_id)
            // Offsets are stored by the runner once a record and all before it are done;
            // librdkafka commits what is stored every second.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", "earliest")
            // Incremental rebalancing: a joining or leaving member moves only the partitions
            // that must move; the others keep being handled.
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "statistics.interval.ms",
                LAG_INTERVAL.as_millis().to_string(),
            )
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().to_string(),
            )
            .create_with_context(GroupContext {
                group: settings.group.clone(),
                counters: Arc::default(),
                max_buffered: settings.max_buffered_per_partition,
                max_waiting_work: settings.max_waiting_work,
                drain_timeout: settings.drain_timeout,
                partitions: Mutex::default(),
                lag: Mutex::default(),
            })
            .map_err(|source| KafkaError::Client {
                what: "creating the consumer",
                source,
            })?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaError::Client {
                what: "subscribing",
                source,
            })?;
        Ok(Self {
            consumer,
            settings: settings.clone(),
        })
    }

    /// Reports the member's lag per partition to `reporter` while it runs (librdkafka's own
    /// statistics: no extra request to the broker).
    pub fn with_lag_reporter(self, reporter: LagReporter) -> Self {
        *self
            .consumer
            .context()
            .lag
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reporter);
        self
    }

    /// Handles records until `shutdown` completes, then drains: running handlers finish (for
    /// at most the drain timeout), finished work is committed, and the member leaves the group
    /// (its partitions move to the other members at once, not after the session timeout).
    ///
    /// Returns an error if a handler fails permanently with nothing around it to dead-letter
    /// the record: the runner stops rather than skip it.
    pub async fn run<H: Handler + 'static>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RunSummary, KafkaError> {
        let stop = CancellationToken::new();
        // Dropping this future (instead of completing `shutdown`) stops the consumer thread too.
        let _stop_on_drop = stop.clone().drop_guard();
        let counters = self.consumer.context().counters.clone();
        {
            let handler = Arc::new(handler);
            let (counters, ordering, root) =
                (counters.clone(), self.settings.ordering, stop.clone());
            // Partition tasks are started from the consumer thread, on this runtime.
            let runtime = tokio::runtime::Handle::current();
            let spawner: Spawner = Box::new(move |records, shared| {
                let stop = root.child_token();
                let task = PartitionTask {
                    handler: handler.clone(),
                    records,
                    shared,
                    counters: counters.clone(),
                    ordering,
                    stop: stop.clone(),
                };
                (runtime.spawn(task.run()), stop)
            });
            let mut partitions = self.consumer.context().partitions();
            partitions.spawner = Some(spawner);
            partitions.runtime = Some(tokio::runtime::Handle::current());
        }
        let (finished, result) = oneshot::channel();
        let consumer = self.consumer;
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("consume-{}", self.settings.client_id))
            .spawn(move || {
                let _ = finished.send(consume(consumer, &thread_stop));
            })
            .map_err(|error| KafkaError::Thread(error.to_string()))?;
        tokio::pin!(shutdown);
        tokio::pin!(result);
        let outcome = tokio::select! {
            () = &mut shutdown => {
                stop.cancel();
                (&mut result).await
            }
            outcome = &mut result => outcome,
        };
        outcome.map_err(|_| KafkaError::Thread("the consumer thread panicked".into()))??;
        Ok(RunSummary {
            handled: counters.handled.load(Atomic::Relaxed),
            retries: counters.retries.load(Atomic::Relaxed),
            pauses: counters.pauses.load(Atomic::Relaxed),
            peak_buffered: counters.peak_buffered.load(Atomic::Relaxed),
        })
    }
}

/// The consumer thread: polls, dispatches, sweeps; on stop drains every partition, commits,
/// and leaves the group.
fn consume(
    consumer: BaseConsumer<GroupContext>,
    stop: &CancellationToken,
) -> Result<(), KafkaError> {
    let context = consumer.context();
    let group = context.group.clone();
    let mut last_sweep = Instant::now();
    let mut paused = false;
    let outcome = loop {
        if stop.is_cancelled() {
            break Ok(());
        }
        // Wait for a record, then take what else is already there, up to a batch.
        // While a partition is paused, look often whether it may resume: it should get records
        // again before its task runs out of them.
        let mut wait = if paused {
            PAUSED_POLL_INTERVAL
        } else {
            POLL_INTERVAL
        };
        for _ in 0..POLL_BATCH {
            match consumer.poll(wait) {
                Some(Ok(record)) => context.partitions().polled.push(received(&record)),
                Some(Err(error)) => tracing::warn!(group, %error, "consumer error"),
                None => break,
            }
            wait = Duration::ZERO;
        }
        context.dispatch(&consumer);
        if paused || last_sweep.elapsed() >= SWEEP_INTERVAL {
            last_sweep = Instant::now();
            match context.sweep(&consumer) {
                Ok(still_paused) => paused = still_paused,
                Err(error) => break Err(error),
            }
        }
    };
    stop.cancel();
    context.drain(&consumer, |_| true);
    commit(&consumer, &group);
    tracing::info!(group, "leaving the group");
    // Dropping the consumer closes it: it leaves the group.
    drop(consumer);
    outcome
}

/// A record as a [`Received`] message. Kafka headers that are not UTF-8 text are kept as
/// lossy text (our headers are text; a binary one is someone else's and only informative).
pub(crate) fn received(record: &BorrowedMessage<'_>) -> Received {
    let mut headers = Headers::new();
    if let Some(kafka_headers) = record.headers() {
        for header in kafka_headers.iter() {
            let value = header
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            headers.set(header.key, value);
        }
    }
    Received {
        message: Message {
            key: record
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            payload: record.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        },
        origin: Origin {
            topic: record.topic().to_owned(),
            partition: record.partition(),
            offset: record.offset(),
            timestamp_ms: record.timestamp().to_millis(),
        },
        trace: None,
    }
}
