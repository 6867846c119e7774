//! What tools ask the broker about topics and consumer groups, without joining any group:
//! which topics exist and their partitions, each partition's watermarks, the offsets a group
//! has committed (and setting them). Following a topic from given offsets is
//! [`TopicTail::from_offsets`](crate::TopicTail::from_offsets).
//!
//! Offsets follow Kafka's conventions: a partition's *low* watermark is its first record still
//! kept, its *high* watermark the offset the next record will get; a group's committed offset
//! is the next record it will handle, so the group has taken in every record below it.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::KafkaError;
use crate::reader::{Standalone, client, explained, partitions, standalone};

/// A topic as the broker's metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: Vec<i32>,
}

/// One partition's watermarks: its records are the offsets `low..high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

impl Watermarks {
    /// How many records the partition holds now.
    pub fn records(&self) -> i64 {
        (self.high - self.low).max(0)
    }
}

/// Topics, partitions and watermarks, through one connection: for tools that ask about many
/// topics at once.
pub struct TopicAdmin {
    consumer: Standalone,
    timeout: Duration,
}

impl std::fmt::Debug for TopicAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicAdmin").finish_non_exhaustive()
    }
}

impl TopicAdmin {
    /// Each request to the broker may take up to `timeout`.
    pub fn new(bootstrap_servers: &str, timeout: Duration) -> Result<Self, KafkaError> {
        Ok(Self {
            consumer: standalone(bootstrap_servers, "ftgo-topic-admin")?,
            timeout,
        })
    }

    /// Every topic on the broker (internal ones, `__*`, left out), by name. Also the cheapest
    /// way to learn whether the broker answers at all.
    pub fn topics(&self) -> Result<Vec<TopicInfo>, KafkaError> {
        let metadata = self
            .consumer
            .fetch_metadata(None, self.timeout)
            .map_err(|e| explained(&self.consumer, "fetching the broker's metadata", e))?;
        let mut topics: Vec<TopicInfo> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
            .map(|t| TopicInfo {
                name: t.name().to_owned(),
                partitions: t.partitions().iter().map(|p| p.id()).collect(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Every consumer group the broker knows (with members, or with committed offsets), by
    /// name.
    pub fn groups(&self) -> Result<Vec<String>, KafkaError> {
        let list = self
            .consumer
            .fetch_group_list(None, self.timeout)
            .map_err(client("listing the consumer groups"))?;
        let mut names: Vec<String> = list.groups().iter().map(|g| g.name().to_owned()).collect();
        names.sort();
        Ok(names)
    }

    /// The partitions of `topic`, in order, or [`KafkaError::UnknownTopic`].
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>, KafkaError> {
        partitions(&self.consumer, topic, self.timeout)
    }

    /// Every partition's watermarks now, in partition order.
    pub fn watermarks(&self, topic: &str) -> Result<Vec<Watermarks>, KafkaError> {
        watermarks_of(&self.consumer, topic, self.timeout)
    }
}

fn watermarks_of(
    consumer: &Standalone,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Watermarks>, KafkaError> {
    partitions(consumer, topic, timeout)?
        .into_iter()
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, timeout)
                .map_err(client("fetching a partition's watermarks"))?;
            Ok(Watermarks {
                partition,
                low,
                high,
            })
        })
        .collect()
}

/// Every partition's watermarks of `topic` now, in partition order.
pub fn watermarks(
    bootstrap_servers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Watermarks>, KafkaError> {
    TopicAdmin::new(bootstrap_servers, timeout)?.watermarks(topic)
}

/// The offsets one consumer group has committed, read and written without joining the group,
/// so no member of it is disturbed (no rebalance).
pub struct GroupOffsets {
    consumer: Standalone,
    group: String,
    timeout: Duration,
}

impl std::fmt::Debug for GroupOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupOffsets")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl GroupOffsets {
    pub fn new(
        bootstrap_servers: &str,
        group: &str,
        timeout: Duration,
    ) -> Result<Self, KafkaError> {
        Ok(Self {
            consumer: standalone(bootstrap_servers, group)?,
            group: group.to_owned(),
            timeout,
        })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group's committed offset of every partition of `topic`, in partition order: `None`
    /// where it has committed nothing (it never handled that partition, or its offsets
    /// expired).
    pub fn committed(&self, topic: &str) -> Result<Vec<(i32, Option<i64>)>, KafkaError> {
        let partitions = partitions(&self.consumer, topic, self.timeout)?;
        let mut wanted = TopicPartitionList::new();
        for &partition in &partitions {
            wanted.add_partition(topic, partition);
        }
        let committed = self
            .consumer
            .committed_offsets(wanted, self.timeout)
            .map_err(client("fetching the group's committed offsets"))?;
        let mut offsets = Vec::with_capacity(partitions.len());
        for element in committed.elements_for_topic(topic) {
            if let Err(source) = element.error() {
                return Err(KafkaError::Client {
                    what: "fetching a partition's committed offset",
                    source,
                });
            }
            let offset = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            offsets.push((element.partition(), offset));
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    /// Commits `offsets` (partition, next offset to handle) of `topic` for the group, as
    /// `kafka-consumer-groups --reset-offsets` does. The broker refuses it while the group has
    /// active members: this is for tools and tests, not for a running service's group.
    pub fn commit(&self, topic: &str, offsets: &[(i32, i64)]) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        for &(partition, offset) in offsets {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(client("listing the offsets to commit"))?;
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(client("committing offsets"))
    }
}

impl GroupOffsets {
    /// How many members the group has now (0: nobody consumes; its offsets may be moved).
    pub fn members(&self) -> Result<usize, KafkaError> {
        let groups = self
            .consumer
            .fetch_group_list(Some(&self.group), self.timeout)
            .map_err(client("describing the group"))?;
        Ok(groups
            .groups()
            .iter()
            .filter(|g| g.name() == self.group)
            .map(|g| g.members().len())
            .sum())
    }

    /// Moves the stopped group to the current end of `topics` (as `kafka-consumer-groups
    /// --reset-offsets --to-latest`): it handles only what is written from now on. Refused with
    /// [`KafkaError::GroupActive`] while the group has members. Returns the partitions moved.
    pub fn reset_to_end(&self, topics: &[&str]) -> Result<usize, KafkaError> {
        let members = self.members()?;
        if members > 0 {
            return Err(KafkaError::GroupActive {
                group: self.group.clone(),
                members,
            });
        }
        self.move_to_end(topics, false)
    }

    /// Moves the group to the current end of `topics`, so it handles only what is written from
    /// now on; with `keep_committed`, a partition it has committed already keeps its place (a
    /// new group starts at the end, a restarted one picks up where it stopped). Returns the
    /// partitions moved. The broker refuses it while the group has members.
    pub fn move_to_end(&self, topics: &[&str], keep_committed: bool) -> Result<usize, KafkaError> {
        let mut moved = 0;
        for topic in topics {
            // The committed offsets are asked for only when they decide anything.
            let committed = if keep_committed {
                self.committed(topic)?
            } else {
                Vec::new()
            };
            let ends = watermarks_of(&self.consumer, topic, self.timeout)?;
            let offsets: Vec<(i32, i64)> = ends
                .iter()
                .filter(|end| {
                    !keep_committed
                        || committed
                            .iter()
                            .any(|&(p, offset)| p == end.partition && offset.is_none())
                })
                .map(|end| (end.partition, end.high))
                .collect();
            if !offsets.is_empty() {
                self.commit(topic, &offsets)?;
                moved += offsets.len();
            }
        }
        Ok(moved)
    }
}

/// The offsets `group` has committed on every partition of `topic`, in partition order (`None`
/// where it has committed nothing). Joins no group.
pub fn committed_offsets(
    bootstrap_servers: &str,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, Option<i64>)>, KafkaError> {
    GroupOffsets::new(bootstrap_servers, group, timeout)?.committed(topic)
}
