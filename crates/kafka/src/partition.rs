//! The work of one assigned partition: a task that hands the partition's records to the handler
//! in the order the settings ask for, and says up to which offset everything is done.
//!
//! Records wait in lanes. In partition order there is one lane, so records are handled one at a
//! time in offset order. In key order each key has its own lane: records of one key are handled
//! one at a time in offset order, records of different keys at the same time. Either way the
//! offset that may be committed is the lowest one not finished yet, so a record is never
//! committed before it is done, even when later records finished first.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering as Atomic};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use messaging::{Handler, HandlerError, Received};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::KafkaError;

/// The longest wait before handling a record again after a transient failure that got past
/// the handler's own layers.
const MAX_REDO_BACKOFF: Duration = Duration::from_secs(30);

/// No offset to commit yet.
pub(crate) const NOTHING_DONE: i64 = -1;

/// In what order a partition's records are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// One record at a time, in offset order: the strictest, and the default.
    Partition,
    /// In offset order per key; records of different keys at the same time, at most
    /// `max_concurrent` per partition. More parallelism than partitions, the same guarantee
    /// for every key (all messages of an order share its key).
    Key { max_concurrent: usize },
}

/// What the consumer thread and the partition's task share.
#[derive(Debug)]
pub(crate) struct PartitionShared {
    /// Records sent to the task and not finished: the back-pressure gauge.
    pub buffered: AtomicUsize,
    /// Records the task finished: with `buffered`, how fast it gets through them.
    pub finished: AtomicU64,
    /// The next offset to commit: every record before it is done ([`NOTHING_DONE`] at first).
    pub committable: AtomicI64,
}

/// Counts kept across all partitions of a runner.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub handled: AtomicU64,
    pub retries: AtomicU64,
    pub pauses: AtomicU64,
    /// The most records one partition had fetched and not yet done.
    pub peak_buffered: AtomicUsize,
}

/// Which records have arrived and which are finished; says up to where all are done.
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    unfinished: BTreeSet<i64>,
    /// One past the highest offset that arrived.
    next: Option<i64>,
}

impl OffsetTracker {
    pub fn arrived(&mut self, offset: i64) {
        self.unfinished.insert(offset);
        self.next = Some(self.next.map_or(offset + 1, |next| next.max(offset + 1)));
    }

    pub fn finished(&mut self, offset: i64) {
        self.unfinished.remove(&offset);
    }

    /// The offset to commit: the lowest unfinished one, or one past the last that arrived.
    pub fn committable(&self) -> i64 {
        self.unfinished
            .first()
            .copied()
            .or(self.next)
            .unwrap_or(NOTHING_DONE)
    }
}

/// Records waiting per lane, and which lanes may start their next record.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    waiting: HashMap<Option<String>, VecDeque<Received>>,
    /// Lanes whose record is being handled: they start nothing else until it is done.
    busy: HashSet<Option<String>>,
    /// Idle lanes with a waiting record, in the order they became so.
    ready: VecDeque<Option<String>>,
}

impl Lanes {
    pub fn push(&mut self, lane: Option<String>, record: Received) {
        let queue = self.waiting.entry(lane.clone()).or_default();
        queue.push_back(record);
        if queue.len() == 1 && !self.busy.contains(&lane) {
            self.ready.push_back(lane);
        }
    }

    /// The next record to start, taken out of its lane, which is busy until [`Lanes::done`].
    pub fn start(&mut self) -> Option<(Option<String>, Received)> {
        let lane = self.ready.pop_front()?;
        let record = self.waiting.get_mut(&lane)?.pop_front()?;
        self.busy.insert(lane.clone());
        Some((lane, record))
    }

    /// The running record of `lane` is done: the lane's next record may start.
    pub fn done(&mut self, lane: Option<String>) {
        self.busy.remove(&lane);
        match self.waiting.get(&lane) {
            Some(queue) if !queue.is_empty() => self.ready.push_back(lane),
            _ => {
                self.waiting.remove(&lane);
            }
        }
    }

    pub fn running(&self) -> usize {
        self.busy.len()
    }
}

/// How one record's handling ended.
enum Outcome {
    Done,
    /// Stopped while waiting to try again: left unfinished, so it is not committed and the
    /// partition's next owner handles it.
    Abandoned,
    /// Failed permanently with nothing around the handler to dead-letter it.
    Failed(KafkaError),
}

/// The task that handles one assigned partition's records until it is revoked or the runner
/// stops.
#[derive(Debug)]
pub(crate) struct PartitionTask<H> {
    pub handler: Arc<H>,
    pub records: mpsc::UnboundedReceiver<Vec<Received>>,
    pub shared: Arc<PartitionShared>,
    pub counters: Arc<Counters>,
    pub ordering: Ordering,
    /// Cancelled when the partition is revoked or the runner stops: start nothing new, finish
    /// what runs.
    pub stop: CancellationToken,
}

impl<H: Handler + 'static> PartitionTask<H> {
    pub async fn run(self) -> Result<(), KafkaError> {
        match self.ordering {
            Ordering::Partition => self.in_partition_order().await,
            Ordering::Key { max_concurrent } => self.in_key_order(max_concurrent.max(1)).await,
        }
    }

    /// One record at a time: no lanes to keep, every record done is the committable one.
    async fn in_partition_order(mut self) -> Result<(), KafkaError> {
        loop {
            let batch = tokio::select! {
                biased;
                () = self.stop.cancelled() => return Ok(()),
                batch = self.records.recv() => match batch {
                    Some(batch) => batch,
                    None => return Ok(()),
                },
            };
            for record in batch {
                if self.stop.is_cancelled() {
                    return Ok(());
                }
                let handling =
                    handle_until_done(&*self.handler, &record, &self.stop, &self.counters);
                match handling.await {
                    Outcome::Done => self.done(record.origin.offset + 1),
                    Outcome::Abandoned => return Ok(()),
                    Outcome::Failed(error) => return Err(error),
                }
            }
        }
    }

    fn done(&self, committable: i64) {
        self.shared.buffered.fetch_sub(1, Atomic::Relaxed);
        self.shared.finished.fetch_add(1, Atomic::Relaxed);
        self.shared.committable.store(committable, Atomic::Release);
        self.counters.handled.fetch_add(1, Atomic::Relaxed);
    }

    /// Lanes per key, up to `max_concurrent` records at once.
    async fn in_key_order(mut self, max_concurrent: usize) -> Result<(), KafkaError> {
        let mut tracker = OffsetTracker::default();
        let mut lanes = Lanes::default();
        let mut running = FuturesUnordered::new();
        let mut open = true;
        loop {
            while !self.stop.is_cancelled() && lanes.running() < max_concurrent {
                let Some((lane, record)) = lanes.start() else {
                    break;
                };
                let (handler, stop, counters) = (
                    self.handler.clone(),
                    self.stop.clone(),
                    self.counters.clone(),
                );
                running.push(async move {
                    let outcome = handle_until_done(&*handler, &record, &stop, &counters).await;
                    (lane, (record.origin.offset, outcome))
                });
            }
            if (self.stop.is_cancelled() || !open) && running.is_empty() {
                return Ok(());
            }
            tokio::select! {
                Some((lane, (offset, outcome))) = running.next(), if !running.is_empty() => {
                    lanes.done(lane);
                    match outcome {
                        Outcome::Done => {
                            tracker.finished(offset);
                            self.done(tracker.committable());
                        }
                        Outcome::Abandoned => {}
                        Outcome::Failed(error) => return Err(error),
                    }
                }
                batch = self.records.recv(), if open && !self.stop.is_cancelled() => match batch {
                    Some(batch) => {
                        for record in batch {
                            tracker.arrived(record.origin.offset);
                            let lane = match self.ordering {
                                Ordering::Partition => None,
                                Ordering::Key { .. } => record.message.key.clone(),
                            };
                            lanes.push(lane, record);
                        }
                    }
                    None => open = false,
                },
                () = self.stop.cancelled(), if !self.stop.is_cancelled() => {}
            }
        }
    }
}

/// Handles `record`, again and again after transient failures that got past the handler's own
/// layers (never skipping it), until it succeeds, fails for good, or the partition stops.
async fn handle_until_done<H: Handler>(
    handler: &H,
    record: &Received,
    stop: &CancellationToken,
    counters: &Counters,
) -> Outcome {
    let origin = &record.origin;
    let mut backoff = Duration::from_millis(100);
    loop {
        match handler.handle(record).await {
            Ok(()) => return Outcome::Done,
            Err(error @ HandlerError::Transient(_)) => {
                counters.retries.fetch_add(1, Atomic::Relaxed);
                tracing::warn!(topic = %origin.topic, partition = origin.partition,
                    offset = origin.offset, %error, wait_ms = backoff.as_millis() as u64,
                    "transient failure past the handler's layers; handling again");
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return Outcome::Abandoned,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_REDO_BACKOFF);
            }
            Err(error) => {
                let failed = KafkaError::Unhandled {
                    topic: origin.topic.clone(),
                    partition: origin.partition,
                    offset: origin.offset,
                    error: error.to_string(),
                };
                return Outcome::Failed(failed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging::{Message, Origin, handler_fn};
    use std::sync::Mutex;

    fn record(key: &str, offset: i64) -> Received {
        Received {
            message: Message::new(Some(key.to_owned()), offset.to_le_bytes().to_vec()),
            origin: Origin {
                topic: "t".to_owned(),
                partition: 0,
                offset,
                timestamp_ms: None,
            },
            trace: None,
        }
    }

    #[test]
    fn the_committable_offset_is_the_lowest_unfinished_one() {
        let mut tracker = OffsetTracker::default();
        assert_eq!(tracker.committable(), NOTHING_DONE);
        for offset in 10..15 {
            tracker.arrived(offset);
        }
        assert_eq!(tracker.committable(), 10);
        tracker.finished(11);
        tracker.finished(13);
        assert_eq!(tracker.committable(), 10, "10 is not done yet");
        tracker.finished(10);
        assert_eq!(tracker.committable(), 12);
        tracker.finished(12);
        tracker.finished(14);
        assert_eq!(tracker.committable(), 15, "all done: one past the last");
    }

    #[test]
    fn a_lane_starts_its_next_record_only_when_the_running_one_is_done() {
        let mut lanes = Lanes::default();
        lanes.push(Some("a".into()), record("a", 0));
        lanes.push(Some("a".into()), record("a", 1));
        lanes.push(Some("b".into()), record("b", 2));
        let (lane, first) = lanes.start().expect("a starts");
        assert_eq!((lane.as_deref(), first.origin.offset), (Some("a"), 0));
        let (lane, second) = lanes.start().expect("b starts beside a");
        assert_eq!((lane.as_deref(), second.origin.offset), (Some("b"), 2));
        assert!(
            lanes.start().is_none(),
            "a's second record waits for its first"
        );
        assert_eq!(lanes.running(), 2);
        lanes.done(Some("a".into()));
        let (_, third) = lanes.start().expect("a's next");
        assert_eq!(third.origin.offset, 1);
        lanes.done(Some("a".into()));
        lanes.done(Some("b".into()));
        assert!(lanes.start().is_none());
        assert_eq!(lanes.running(), 0);
    }

    /// A partition task over `records` (already sent), with its shared state and counters.
    fn task<H: Handler + 'static>(
        handler: H,
        records: Vec<Received>,
        ordering: Ordering,
        stop: CancellationToken,
    ) -> (PartitionTask<H>, Arc<PartitionShared>, Arc<Counters>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(PartitionShared {
            buffered: AtomicUsize::new(records.len()),
            finished: AtomicU64::new(0),
            committable: AtomicI64::new(NOTHING_DONE),
        });
        sender.send(records).expect("task listens");
        let counters = Arc::new(Counters::default());
        let task = PartitionTask {
            handler: Arc::new(handler),
            records: receiver,
            shared: shared.clone(),
            counters: counters.clone(),
            ordering,
            stop,
        };
        (task, shared, counters)
    }

    /// Runs a partition task over `records` with a handler that takes longer for early
    /// offsets, and returns the order in which records finished.
    async fn finish_order(ordering: Ordering, records: Vec<Received>) -> (Vec<i64>, i64) {
        let finished = Arc::new(Mutex::new(Vec::new()));
        let handler = handler_fn({
            let finished = finished.clone();
            move |received: Received| {
                let finished = finished.clone();
                async move {
                    let offset = received.origin.offset;
                    tokio::time::sleep(Duration::from_millis(100 - offset as u64 * 10)).await;
                    finished.lock().expect("lock").push(offset);
                    Ok(())
                }
            }
        });
        let (task, shared, _) = task(handler, records, ordering, CancellationToken::new());
        task.run().await.expect("ran");
        assert_eq!(shared.buffered.load(Atomic::Relaxed), 0);
        let order = finished.lock().expect("lock").clone();
        (order, shared.committable.load(Atomic::Acquire))
    }

    #[tokio::test(start_paused = true)]
    async fn partition_order_handles_one_record_at_a_time() {
        let records = vec![record("a", 0), record("b", 1), record("a", 2)];
        let (order, committable) = finish_order(Ordering::Partition, records).await;
        assert_eq!(order, vec![0, 1, 2]);
        assert_eq!(committable, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn key_order_overtakes_other_keys_but_never_its_own() {
        let records = vec![
            record("a", 0),
            record("b", 1),
            record("a", 2),
            record("c", 3),
        ];
        let ordering = Ordering::Key { max_concurrent: 8 };
        let (order, committable) = finish_order(ordering, records).await;
        // c (70 ms) and b (90 ms) finish before a's first (100 ms); a's second waits for it.
        assert_eq!(order, vec![3, 1, 0, 2]);
        assert_eq!(committable, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_partition_finishes_what_runs_and_starts_nothing_else() {
        let started = Arc::new(AtomicU64::new(0));
        let handler = handler_fn({
            let started = started.clone();
            move |_: Received| {
                let started = started.clone();
                async move {
                    started.fetch_add(1, Atomic::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(())
                }
            }
        });
        let stop = CancellationToken::new();
        let records = (0..5).map(|offset| record("k", offset)).collect();
        let (task, shared, _) = task(handler, records, Ordering::Partition, stop.clone());
        let task = tokio::spawn(task.run());
        tokio::time::sleep(Duration::from_millis(75)).await;
        stop.cancel();
        task.await.expect("task").expect("ran");
        assert_eq!(started.load(Atomic::Relaxed), 2, "the second was running");
        assert_eq!(shared.committable.load(Atomic::Acquire), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_handled_again_and_a_permanent_one_stops_the_partition() {
        let calls = Arc::new(AtomicU64::new(0));
        let handler = handler_fn({
            let calls = calls.clone();
            move |received: Received| {
                let calls = calls.clone();
                async move {
                    let n = calls.fetch_add(1, Atomic::Relaxed);
                    match (received.origin.offset, n) {
                        (0, 0 | 1) => Err(HandlerError::transient("not yet")),
                        (0, _) => Ok(()),
                        _ => Err(HandlerError::permanent(
                            messaging::Reason::HandlerFailed,
                            "bug",
                        )),
                    }
                }
            }
        });
        let records = vec![record("k", 0), record("k", 1)];
        let (task, shared, counters) = task(
            handler,
            records,
            Ordering::Partition,
            CancellationToken::new(),
        );
        let error = task.run().await.expect_err("offset 1 cannot be handled");
        assert!(matches!(error, KafkaError::Unhandled { offset: 1, .. }));
        assert_eq!(counters.retries.load(Atomic::Relaxed), 2);
        assert_eq!(shared.committable.load(Atomic::Acquire), 1, "1 is not done");
    }
}
