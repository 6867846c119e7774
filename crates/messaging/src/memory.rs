//! An in-memory transport for fast unit tests: topics with partitions, keyed partitioning,
//! consumer groups with committed offsets and redelivery of what was not committed. It stands
//! beside the Kafka transport in tests, never instead of it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::handler::{Handler, HandlerError};
use crate::message::{Message, Origin, Received};
use crate::publisher::{Delivery, PublishError, Publisher};

#[derive(Default)]
struct State {
    /// topic -> partitions -> records (offset = index)
    topics: HashMap<String, Vec<Vec<(Message, i64)>>>,
    /// (group, topic, partition) -> next offset to read
    committed: HashMap<(String, String, i32), i64>,
    /// round-robin counter for messages without a key
    unkeyed: usize,
}

/// A broker in memory. Cheap to clone (an `Arc` inside).
#[derive(Clone, Default)]
pub struct MemoryBroker {
    state: Arc<Mutex<State>>,
    /// Wakes subscriptions when a record arrives.
    arrived: Arc<Notify>,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker").finish_non_exhaustive()
    }
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates `topic` with `partitions` partitions (no-op if it exists).
    pub fn create_topic(&self, topic: &str, partitions: usize) {
        self.state()
            .topics
            .entry(topic.to_owned())
            .or_insert_with(|| vec![Vec::new(); partitions.max(1)]);
    }

    /// Every record of `topic`, partition by partition, in offset order.
    pub fn records(&self, topic: &str) -> Vec<Received> {
        let state = self.state();
        let Some(partitions) = state.topics.get(topic) else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for (partition, records) in partitions.iter().enumerate() {
            for (offset, (message, timestamp)) in records.iter().enumerate() {
                all.push(Received {
                    message: message.clone(),
                    origin: origin(topic, partition, offset, *timestamp),
                    trace: None,
                });
            }
        }
        all
    }

    /// Joins `group` on `topic`: the subscription starts at the group's committed offsets, so
    /// what an earlier member did not commit is delivered again.
    pub fn subscribe(&self, group: &str, topic: &str) -> MemorySubscription {
        let state = self.state();
        let partitions = state.topics.get(topic).map_or(0, Vec::len);
        let positions = (0..partitions)
            .map(|p| {
                let key = (group.to_owned(), topic.to_owned(), p as i32);
                state.committed.get(&key).copied().unwrap_or(0)
            })
            .collect();
        MemorySubscription {
            broker: self.clone(),
            group: group.to_owned(),
            topic: topic.to_owned(),
            positions,
            next_partition: 0,
        }
    }
}

impl MemoryBroker {
    /// Runs `handler` as a member of `group` over `topic` until `shutdown` completes, as the
    /// Kafka consumer runner does: in order per partition, each record committed once handled
    /// (or dead-lettered by a layer); a transient failure that reaches it is handled again,
    /// never skipped; a permanent one stops the member with the record uncommitted, so the
    /// group's next member gets it again. Returns how many records were handled.
    pub async fn run<H: Handler>(
        &self,
        group: &str,
        topic: &str,
        handler: H,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<u64, HandlerError> {
        let mut subscription = self.subscribe(group, topic);
        let mut handled = 0;
        tokio::pin!(shutdown);
        loop {
            let received = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(handled),
                received = subscription.next() => received,
            };
            let mut backoff = std::time::Duration::from_millis(10);
            loop {
                match handler.handle(&received).await {
                    Ok(()) => break,
                    Err(HandlerError::Transient(_)) => {
                        tokio::select! {
                            biased;
                            () = &mut shutdown => return Ok(handled),
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                    }
                    Err(error) => return Err(error),
                }
            }
            subscription.commit(&received.origin);
            handled += 1;
        }
    }
}

fn origin(topic: &str, partition: usize, offset: usize, timestamp: i64) -> Origin {
    Origin {
        topic: topic.to_owned(),
        partition: partition as i32,
        offset: offset as i64,
        timestamp_ms: Some(timestamp),
    }
}

/// The partition of `key` among `partitions`: stable for a key, as Kafka's partitioner is.
fn partition_of(key: &str, partitions: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % partitions as u64) as usize
}

impl Publisher for MemoryBroker {
    async fn publish(&self, topic: &str, message: &Message) -> Result<Delivery, PublishError> {
        let delivery = {
            let mut state = self.state();
            let unkeyed = state.unkeyed;
            let Some(partitions) = state.topics.get_mut(topic) else {
                return Err(PublishError::permanent(topic, "unknown topic"));
            };
            let partition = match &message.key {
                Some(key) => partition_of(key, partitions.len()),
                None => unkeyed % partitions.len(),
            };
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            partitions[partition].push((message.clone(), timestamp));
            let offset = partitions[partition].len() as i64 - 1;
            state.unkeyed += 1;
            Delivery {
                topic: topic.to_owned(),
                partition: partition as i32,
                offset,
            }
        };
        self.arrived.notify_waiters();
        Ok(delivery)
    }
}

/// One member of a consumer group that owns every partition of its topic.
#[derive(Debug)]
pub struct MemorySubscription {
    broker: MemoryBroker,
    group: String,
    topic: String,
    /// Next offset to deliver, per partition.
    positions: Vec<i64>,
    /// Where the round-robin over partitions resumes.
    next_partition: usize,
}

impl MemorySubscription {
    /// The next record, in order within each partition, waiting for one if none is there.
    pub async fn next(&mut self) -> Received {
        let arrived = self.broker.arrived.clone();
        loop {
            // Registered before looking, so a record published in between still wakes us.
            let notified = arrived.notified();
            if let Some(received) = self.try_next() {
                return received;
            }
            notified.await;
        }
    }

    fn try_next(&mut self) -> Option<Received> {
        let state = self.broker.state();
        let partitions = state.topics.get(&self.topic)?;
        if self.positions.len() < partitions.len() {
            self.positions.resize(partitions.len(), 0);
        }
        for step in 0..partitions.len() {
            let partition = (self.next_partition + step) % partitions.len();
            let offset = self.positions[partition] as usize;
            if let Some((message, timestamp)) = partitions[partition].get(offset) {
                self.positions[partition] += 1;
                self.next_partition = partition + 1;
                return Some(Received {
                    message: message.clone(),
                    origin: origin(&self.topic, partition, offset, *timestamp),
                    trace: None,
                });
            }
        }
        None
    }

    /// Marks `origin` and everything before it on its partition as done for the group.
    pub fn commit(&self, origin: &Origin) {
        let key = (self.group.clone(), origin.topic.clone(), origin.partition);
        let mut state = self.broker.state();
        let next = state.committed.entry(key).or_insert(0);
        *next = (*next).max(origin.offset + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_messages_of_a_key_share_a_partition_and_keep_their_order() {
        let broker = MemoryBroker::new();
        broker.create_topic("t", 12);
        for n in 0..50 {
            for key in ["order-a", "order-b", "order-c"] {
                let message = Message::new(Some(key.into()), format!("{n}").into_bytes());
                broker.publish("t", &message).await.expect("published");
            }
        }
        let mut subscription = broker.subscribe("g", "t");
        let mut seen: HashMap<String, (i32, Vec<u32>)> = HashMap::new();
        for _ in 0..150 {
            let received = subscription.next().await;
            let key = received.message.key.clone().expect("keyed");
            let n: u32 = String::from_utf8(received.message.payload)
                .expect("utf8")
                .parse()
                .expect("n");
            let entry = seen
                .entry(key)
                .or_insert((received.origin.partition, Vec::new()));
            assert_eq!(
                entry.0, received.origin.partition,
                "a key changed partition"
            );
            entry.1.push(n);
        }
        for (key, (_, sequence)) in seen {
            assert_eq!(sequence, (0..50).collect::<Vec<_>>(), "{key} out of order");
        }
    }

    #[tokio::test]
    async fn what_a_group_did_not_commit_is_delivered_again() {
        let broker = MemoryBroker::new();
        broker.create_topic("t", 1);
        for n in 0..3u8 {
            broker
                .publish("t", &Message::new(Some("k".into()), vec![n]))
                .await
                .expect("published");
        }
        let mut first = broker.subscribe("g", "t");
        let a = first.next().await;
        first.commit(&a.origin);
        let _b = first.next().await; // handled, but the member dies before committing
        drop(first);

        let mut second = broker.subscribe("g", "t");
        assert_eq!(second.next().await.message.payload, vec![1]);
        assert_eq!(second.next().await.message.payload, vec![2]);
        // Another group reads from the start.
        assert_eq!(
            broker.subscribe("other", "t").next().await.message.payload,
            vec![0]
        );
    }

    #[tokio::test]
    async fn a_subscription_waits_for_the_next_record() {
        let broker = MemoryBroker::new();
        broker.create_topic("t", 2);
        let mut subscription = broker.subscribe("g", "t");
        let publisher = broker.clone();
        let waiter = tokio::spawn(async move { subscription.next().await });
        tokio::task::yield_now().await;
        publisher
            .publish("t", &Message::new(None, b"late".to_vec()))
            .await
            .expect("published");
        assert_eq!(waiter.await.expect("task").message.payload, b"late");
    }

    #[tokio::test]
    async fn publishing_to_an_unknown_topic_fails() {
        let error = MemoryBroker::new()
            .publish("nope", &Message::new(None, vec![]))
            .await
            .expect_err("no such topic");
        assert_eq!(error.topic, "nope");
    }
}
