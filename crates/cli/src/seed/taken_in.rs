//! Waiting until the seeded records are written and taken in: their events on the event
//! topics, and the groups that keep replicas committed past them.

use std::collections::HashMap;
use std::time::Duration;

use kafka::{GroupOffsets, TopicTail};
use messaging::header;

use super::demo::Item;
use super::{CONSUMER_EVENTS, Groups, RESTAURANT_EVENTS, short};
use crate::wait::{self, Poll, Waited};

/// Follows the event topics until every item has its event, or fails after `timeout` saying
/// which are missing and what to check.
pub(super) async fn wait_for_events(
    bootstrap: &str,
    items: &mut [Item],
    event_ends: &HashMap<&str, Vec<(i32, i64)>>,
    timeout: Duration,
) -> Result<(), String> {
    let missing = |items: &[Item]| -> Vec<String> {
        items
            .iter()
            .filter(|i| i.event_at.is_none())
            .map(Item::label)
            .collect()
    };
    if missing(items).is_empty() {
        return Ok(());
    }
    eprintln!(
        "waiting for the services to create {} (RestaurantCreated, ConsumerCreated)...",
        missing(items).join(", ")
    );
    let mut followers = Vec::new();
    for (topic, ends) in event_ends {
        let follower = TopicTail::from_offsets(bootstrap, topic, ends)
            .map_err(|e| format!("following {topic}: {e}"))?;
        followers.push(follower);
    }
    let waited = wait::until(timeout, Duration::from_secs(5), async || {
        let mut quiet = true;
        for follower in &followers {
            let record = follower
                .next(Duration::from_millis(100))
                .map_err(|e| format!("reading events: {e}"))?;
            if let Some(record) = record {
                quiet = false;
                record_event(items, &record);
            }
        }
        let still = missing(items);
        if still.is_empty() {
            return Ok::<_, String>(Poll::Ready(()));
        }
        if quiet {
            wait::pause(Duration::from_millis(50)).await;
        }
        Ok(Poll::Pending(still.join(", ")))
    })
    .await?;
    match waited {
        Waited::Ready(()) => Ok(()),
        Waited::TimedOut => Err(not_created(items)),
    }
}

/// Notes `record` as the event of the item it creates, if it is one.
fn record_event(items: &mut [Item], record: &messaging::Received) {
    let record_type = record.message.headers.get(header::TYPE);
    for item in items.iter_mut().filter(|i| i.event_at.is_none()) {
        if record.message.key.as_deref() == Some(item.key().as_str())
            && record_type == Some(item.event_type)
            && record.origin.topic == item.event_topic
        {
            item.event_at = Some((record.origin.partition, record.origin.offset));
            eprintln!(
                "{}: created ({} at {}[{}]@{})",
                item.label(),
                short(item.event_type),
                item.event_topic,
                record.origin.partition,
                record.origin.offset
            );
        }
    }
}

/// What to check for the items whose event never came.
fn not_created(items: &[Item]) -> String {
    let lines: Vec<String> = items
        .iter()
        .filter(|i| i.event_at.is_none())
        .map(|i| {
            let (service, group) = if i.kind == "restaurant" {
                ("restaurant service", "restaurant-service")
            } else {
                ("consumer service", "consumer-service")
            };
            format!(
                "  no {} for {} ({}) on {}: is the {service} running? \
                 (deploy/local/status, its logs; `ftgo dlq list {group}` shows what it refused)",
                short(i.event_type),
                i.label(),
                i.id,
                i.event_topic
            )
        })
        .collect();
    format!(
        "timed out waiting for the demo data to be created:\n{}\n\
         (`ftgo seed --no-wait` publishes without waiting)",
        lines.join("\n")
    )
}

/// A consumer group that must have taken in records of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWait {
    pub group: String,
    pub topic: String,
    /// (what, partition, offset): the group has taken the record in when its committed offset
    /// on that partition is past the offset.
    pub records: Vec<(String, i32, i64)>,
}

pub(super) fn group_waits(items: &[Item], groups: &Groups) -> Vec<GroupWait> {
    let records = |topic: &str| -> Vec<(String, i32, i64)> {
        items
            .iter()
            .filter(|i| i.event_topic == topic)
            .filter_map(|i| i.event_at.map(|(p, o)| (i.label(), p, o)))
            .collect()
    };
    [
        (&groups.order, RESTAURANT_EVENTS),
        (&groups.kitchen, RESTAURANT_EVENTS),
        (&groups.accounting, CONSUMER_EVENTS),
    ]
    .into_iter()
    .map(|(group, topic)| GroupWait {
        group: group.clone(),
        topic: topic.to_owned(),
        records: records(topic),
    })
    .collect()
}

/// The records of `wait` that `committed` (the group's offsets on the topic) has not passed.
fn not_taken_in<'a>(wait: &'a GroupWait, committed: &[(i32, Option<i64>)]) -> Vec<&'a str> {
    wait.records
        .iter()
        .filter(|(_, partition, offset)| {
            let at = committed
                .iter()
                .find(|(p, _)| p == partition)
                .and_then(|(_, c)| *c);
            at.is_none_or(|committed| committed <= *offset)
        })
        .map(|(what, _, _)| what.as_str())
        .collect()
}

/// Polls each group's committed offsets until it has taken in its records (`what`: "the demo
/// data"), or fails after `timeout` naming the groups that have not.
pub async fn await_taken_in(
    bootstrap: &str,
    waits: &[GroupWait],
    timeout: Duration,
    what: &str,
) -> Result<(), String> {
    let mut pending: Vec<(&GroupWait, GroupOffsets)> = Vec::new();
    for wait in waits {
        let offsets = GroupOffsets::new(bootstrap, &wait.group, Duration::from_secs(5))
            .map_err(|e| format!("asking for {}'s offsets: {e}", wait.group))?;
        pending.push((wait, offsets));
    }
    if !pending.is_empty() {
        let groups: Vec<&str> = waits.iter().map(|w| w.group.as_str()).collect();
        eprintln!(
            "waiting for {} to take {what} in (committed offsets past the events)...",
            groups.join(", ")
        );
    }
    let mut left: HashMap<String, Vec<String>> = HashMap::new();
    let waited = wait::until(timeout, Duration::from_secs(10), async || {
        let mut still = Vec::new();
        for (wait, offsets) in std::mem::take(&mut pending) {
            let committed = offsets.committed(&wait.topic).map_err(|e| {
                format!("asking for {}'s offsets on {}: {e}", wait.group, wait.topic)
            })?;
            let missing: Vec<String> = not_taken_in(wait, &committed)
                .into_iter()
                .map(str::to_owned)
                .collect();
            if missing.is_empty() {
                eprintln!("{} has taken in {what} of {}", wait.group, wait.topic);
                left.remove(&wait.group);
            } else {
                left.insert(wait.group.clone(), missing);
                still.push((wait, offsets));
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok::<_, String>(Poll::Ready(()));
        }
        wait::pause(Duration::from_millis(500)).await;
        let awaited: Vec<String> = left
            .iter()
            .map(|(group, what)| format!("{group} to take in {}", what.join(", ")))
            .collect();
        Ok(Poll::Pending(awaited.join("; ")))
    })
    .await?;
    match waited {
        Waited::Ready(()) => Ok(()),
        Waited::TimedOut => Err(not_taken_in_yet(&pending, &left, what)),
    }
}

/// What to check for the groups that have not taken the data in.
fn not_taken_in_yet(
    pending: &[(&GroupWait, GroupOffsets)],
    left: &HashMap<String, Vec<String>>,
    what: &str,
) -> String {
    let lines: Vec<String> = pending
        .iter()
        .map(|(wait, _)| {
            format!(
                "  {} has not taken in {} on {}: is that service running? (deploy/local/status, \
                 its logs; `ftgo topics --group {}` shows the group's lag)",
                wait.group,
                left.get(&wait.group)
                    .map(|m| m.join(", "))
                    .unwrap_or_default(),
                wait.topic,
                wait.group
            )
        })
        .collect();
    format!(
        "timed out waiting for the services to take {what} in:\n{}",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_taken_in_once_the_committed_offset_is_past_it() {
        let wait = GroupWait {
            group: "g".into(),
            topic: "t".into(),
            records: vec![("a".into(), 0, 5), ("b".into(), 1, 0)],
        };
        assert_eq!(not_taken_in(&wait, &[(0, None), (1, None)]), ["a", "b"]);
        assert_eq!(not_taken_in(&wait, &[(0, Some(5)), (1, Some(1))]), ["a"]);
        assert!(not_taken_in(&wait, &[(0, Some(6)), (1, Some(1))]).is_empty());
        assert_eq!(not_taken_in(&wait, &[(0, Some(6))]), ["b"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn waiting_ends_when_the_groups_commit_past_the_records() -> anyhow::Result<()> {
        use kafka::KafkaPublisher;
        use messaging::{Message, Publisher};
        let platform = test_support::Platform::from_env();
        let topic = test_support::TestTopic::create("seedwait", 2).await?;
        let publisher = KafkaPublisher::new(&platform.bootstrap_servers, "seed-wait-test")?;
        let mut records = Vec::new();
        for key in ["r1", "r2", "r3"] {
            let delivery = publisher
                .publish(topic.name(), &Message::new(Some(key.into()), b"x".to_vec()))
                .await?;
            records.push((key.to_owned(), delivery.partition, delivery.offset));
        }
        let group = test_support::unique_group("seedwait");
        let wait = GroupWait {
            group: group.clone(),
            topic: topic.name().to_owned(),
            records,
        };
        let bootstrap = platform.bootstrap_servers.clone();
        let error = await_taken_in(
            &bootstrap,
            std::slice::from_ref(&wait),
            Duration::from_secs(2),
            "the records",
        )
        .await
        .expect_err("nothing committed");
        assert!(error.contains(&group) && error.contains("r1"), "{error}");

        let committer = {
            let (bootstrap, topic, group) = (bootstrap.clone(), wait.topic.clone(), group.clone());
            let ends: Vec<(i32, i64)> =
                kafka::watermarks(&bootstrap, &topic, Duration::from_secs(5))?
                    .iter()
                    .map(|w| (w.partition, w.high))
                    .collect();
            std::thread::spawn(move || -> anyhow::Result<()> {
                std::thread::sleep(Duration::from_secs(1));
                GroupOffsets::new(&bootstrap, &group, Duration::from_secs(5))?
                    .commit(&topic, &ends)?;
                Ok(())
            })
        };
        await_taken_in(&bootstrap, &[wait], Duration::from_secs(30), "the records")
            .await
            .map_err(anyhow::Error::msg)?;
        committer
            .join()
            .map_err(|_| anyhow::anyhow!("the committer panicked"))??;
        Ok(())
    }
}
