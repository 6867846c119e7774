//! The messaging runtime on real Kafka, beyond the conformance suite (conformance_kafka.rs): a
//! consumer group shares the work and keeps each key's order through a rebalance; a permanent
//! failure goes to the dead-letter topic with every dead-letter header while other records flow;
//! a command's reply is correlated and traced across two groups; key order within a partition;
//! back-pressure.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher};
use messaging::{
    DeadLetter, DeadLetterSettings, HandlerError, Message, Publisher, Reason, Received, Retry,
    RetryPolicy, handler_fn, header,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers as _, Message as _};
use test_support::{Platform, TestTopic, check_per_key_order, unique_group};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

type Seen = Arc<Mutex<Vec<(String, u32, &'static str)>>>;
/// A running group member: how to stop it, and its task.
type Member = (
    oneshot::Sender<()>,
    JoinHandle<Result<kafka::RunSummary, kafka::KafkaError>>,
);

/// Starts `handler` in a member of `group` on `topic`; the sender stops it (drain, commit, leave).
fn spawn_member<H: messaging::Handler + 'static>(
    settings: &ConsumerSettings,
    handler: H,
) -> Result<Member> {
    let runner = ConsumerRunner::new(settings)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(handler, async {
        stopped.await.ok();
    }));
    Ok((stop, task))
}

fn publisher() -> Result<KafkaPublisher> {
    Ok(KafkaPublisher::new(
        &Platform::from_env().bootstrap_servers,
        "test-publisher",
    )?)
}

/// Starts a group member that records (key, sequence, member) for every record it handles.
fn member(group: &str, topic: &str, name: &'static str, seen: Seen) -> Result<Member> {
    let mut settings =
        ConsumerSettings::new(&Platform::from_env().bootstrap_servers, group, &[topic]);
    settings.client_id = format!("{group}-{name}");
    let handler = handler_fn(move |received: Received| {
        let seen = seen.clone();
        async move {
            let key = received.message.key.clone().unwrap_or_default();
            let sequence: u32 = String::from_utf8_lossy(&received.message.payload)
                .parse()
                .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))?;
            // A little work, so the second member joins while the first is busy.
            tokio::time::sleep(Duration::from_millis(50)).await;
            seen.lock().expect("lock").push((key, sequence, name));
            Ok(())
        }
    });
    spawn_member(&settings, handler)
}

async fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !done() {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Runs `handler` in a member with `settings` until `seen` holds `total` records, stops it, and
/// checks every key's order; returns the member's summary.
async fn run_to_the_end<H: messaging::Handler + 'static>(
    settings: &ConsumerSettings,
    handler: H,
    seen: &Seen,
    keys: usize,
    per_key: u32,
) -> Result<kafka::RunSummary> {
    let (stop, task) = spawn_member(settings, handler)?;
    let total = keys * per_key as usize;
    wait_for("every record", 120, || {
        seen.lock().expect("lock").len() >= total
    })
    .await?;
    stop.send(()).ok();
    let summary = task.await??;
    let seen = seen.lock().expect("lock").clone();
    check_per_key_order(
        seen.iter()
            .map(|(key, sequence, _)| (key.as_str(), *sequence)),
        keys,
        per_key,
    )?;
    Ok(summary)
}

async fn publish_sequences(topic: &str, keys: &[String], per_key: u32) -> Result<()> {
    let publisher = publisher()?;
    for sequence in 0..per_key {
        // One round at a time: within a key, each record is acknowledged before the next.
        let round = keys.iter().map(|key| {
            let publisher = publisher.clone();
            let message = Message::new(Some(key.clone()), sequence.to_string().into_bytes());
            async move { publisher.publish(topic, &message).await }
        });
        for result in futures::future::join_all(round).await {
            result?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_shares_the_work_and_keeps_each_keys_order_through_a_rebalance() -> Result<()> {
    const KEYS: usize = 30;
    // 1,200 records at 50 ms each over 6 partitions handled side by side: about 10 s of work
    // for one member, so the second joins well before the first could finish alone.
    const PER_KEY: u32 = 40;
    let topic = TestTopic::create("runtime_group", 6).await?;
    let group = unique_group("runtime-group");
    let keys: Vec<String> = (0..KEYS).map(|k| format!("order-{k}")).collect();
    publish_sequences(topic.name(), &keys, PER_KEY).await?;

    let seen: Seen = Arc::default();
    let (stop_a, a) = member(&group, topic.name(), "a", seen.clone())?;
    wait_for("the first member to start", 60, || {
        seen.lock().expect("lock").len() >= 50
    })
    .await?;
    let (stop_b, b) = member(&group, topic.name(), "b", seen.clone())?;

    let total = KEYS * PER_KEY as usize;
    wait_for("every record", 180, || {
        let seen = seen.lock().expect("lock");
        seen.iter()
            .map(|(k, s, _)| (k.clone(), *s))
            .collect::<HashSet<_>>()
            .len()
            == total
    })
    .await?;
    stop_a.send(()).ok();
    stop_b.send(()).ok();
    let (a, b) = (a.await??, b.await??);

    let seen = seen.lock().expect("lock").clone();
    let members: HashSet<&str> = seen.iter().map(|(_, _, m)| *m).collect();
    ensure!(members.len() == 2, "only {members:?} did work");
    let redeliveries = check_per_key_order(
        seen.iter()
            .map(|(key, sequence, _)| (key.as_str(), *sequence)),
        KEYS,
        PER_KEY,
    )?;
    println!(
        "handled {} records ({} by a, {} by b), {redeliveries} redelivered",
        seen.len(),
        a.handled,
        b.handled
    );
    Ok(())
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_while_other_records_flow() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("runtime_dlt", 3).await?;
    let dead_letters = TestTopic::create("runtime_dlt_dlt", 1).await?;
    let group = unique_group("runtime-dlt");
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let flaky_failures = Arc::new(Mutex::new(0));

    let inner = {
        let handled = handled.clone();
        let flaky_failures = flaky_failures.clone();
        handler_fn(move |received: Received| {
            let handled = handled.clone();
            let flaky_failures = flaky_failures.clone();
            async move {
                let payload = String::from_utf8_lossy(&received.message.payload).into_owned();
                if payload == "poison" {
                    return Err(HandlerError::permanent(
                        Reason::HandlerFailed,
                        "this record can never succeed",
                    ));
                }
                if payload == "flaky" {
                    let mut failures = flaky_failures.lock().expect("lock");
                    if *failures < 2 {
                        *failures += 1;
                        return Err(HandlerError::transient("not yet"));
                    }
                }
                handled.lock().expect("lock").push(payload);
                Ok(())
            }
        })
    };
    let handler = DeadLetter::new(
        Retry::new(inner, RetryPolicy::default()),
        publisher()?,
        DeadLetterSettings::new(&group, dead_letters.name()),
    );
    let (stop, task) = spawn_member(
        &ConsumerSettings::new(&platform.bootstrap_servers, &group, &[topic.name()]),
        handler,
    )?;

    let publisher = publisher()?;
    let mut poison_at = None;
    for (key, payload) in [
        ("o-1", "good-1"),
        ("o-2", "poison"),
        ("o-3", "flaky"),
        ("o-2", "good-2"),
    ] {
        let message = Message::new(Some(key.into()), payload.as_bytes().to_vec())
            .with_header(header::TYPE, "ftgo.test.Probe");
        let delivery = publisher.publish(topic.name(), &message).await?;
        if payload == "poison" {
            poison_at = Some(delivery);
        }
    }
    wait_for("the good records", 60, || {
        handled.lock().expect("lock").len() == 3
    })
    .await?;
    stop.send(()).ok();
    task.await??;
    let mut good = handled.lock().expect("lock").clone();
    good.sort();
    ensure!(good == ["flaky", "good-1", "good-2"], "{good:?}");

    // The dead letter: original key and payload, the reason and where it came from.
    let consumer: StreamConsumer = kafka::client_config(&platform.bootstrap_servers)?
        .set("group.id", unique_group("runtime-dlt-reader"))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[dead_letters.name()])?;
    let letter = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .context("no dead letter")??;
    ensure!(
        letter.key() == Some(b"o-2".as_slice()) && letter.payload() == Some(b"poison".as_slice())
    );
    let headers = letter.headers().context("no headers")?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let poison_at = poison_at.context("poison not published")?;
    ensure!(header(header::dead_letter::REASON).as_deref() == Some("handler-failed"));
    ensure!(header(header::dead_letter::TOPIC).as_deref() == Some(topic.name()));
    ensure!(header(header::dead_letter::OFFSET) == Some(poison_at.offset.to_string()));
    ensure!(header(header::dead_letter::PARTITION) == Some(poison_at.partition.to_string()));
    ensure!(header(header::dead_letter::GROUP).as_deref() == Some(group.as_str()));
    ensure!(
        header(header::TYPE).as_deref() == Some("ftgo.test.Probe"),
        "original headers kept"
    );
    Ok(())
}

/// Request and asynchronous reply over two groups: the "order" side sends a command with a
/// reply-to and a correlation id; the "kitchen" group handles it and replies; the reply comes
/// back on the reply topic with the command's key and conversation, caused by the command.
#[tokio::test]
async fn a_command_gets_its_reply_with_the_same_key_and_correlation_id() -> Result<()> {
    let platform = Platform::from_env();
    let commands = TestTopic::create("runtime_commands", 3).await?;
    let replies = TestTopic::create("runtime_replies", 3).await?;
    let publisher = publisher()?;

    // The kitchen: replies to every command it handles.
    let (stop_kitchen, kitchen) = spawn_member(
        &ConsumerSettings::new(
            &platform.bootstrap_servers,
            &unique_group("runtime-kitchen"),
            &[commands.name()],
        ),
        {
            let publisher = publisher.clone();
            // Traced: the kitchen handles the command in a span of the sender's trace, and the
            // reply carries that span as its parent.
            messaging::Traced::new(handler_fn(move |received: Received| {
                let publisher = publisher.clone();
                async move {
                    let (to, reply) =
                        messaging::reply(&received, b"CreateTicketSucceeded".to_vec())
                            .map_err(|e| HandlerError::permanent(Reason::NoReplyTo, e))?;
                    publisher
                        .publish(&to, &reply)
                        .await
                        .map_err(HandlerError::transient)?;
                    Ok(())
                }
            }))
        },
    )?;

    // The order side: collects replies.
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let (stop_order, order) = spawn_member(
        &ConsumerSettings::new(
            &platform.bootstrap_servers,
            &unique_group("runtime-order"),
            &[replies.name()],
        ),
        {
            let got = got.clone();
            handler_fn(move |received: Received| {
                got.lock().expect("lock").push(received);
                async { Ok(()) }
            })
        },
    )?;

    let sender_span = messaging::TraceContext::new_root();
    let command = messaging::command(
        Message::new(Some("order-42".into()), b"CreateTicket".to_vec())
            .with_header(header::CORRELATION_ID, "saga-42")
            .with_header(header::TRACEPARENT, sender_span.to_string()),
        replies.name(),
    );
    publisher.publish(commands.name(), &command).await?;
    wait_for("the reply", 60, || !got.lock().expect("lock").is_empty()).await?;
    stop_kitchen.send(()).ok();
    stop_order.send(()).ok();
    kitchen.await??;
    order.await??;

    let reply = got.lock().expect("lock")[0].clone();
    ensure!(reply.message.key.as_deref() == Some("order-42"));
    ensure!(reply.message.payload == b"CreateTicketSucceeded");
    ensure!(reply.message.headers.get(header::CORRELATION_ID) == Some("saga-42"));
    ensure!(reply.message.headers.get(header::CAUSATION_ID) == command.id());
    // One trace across both services: the reply's parent is the kitchen's handling span.
    let kitchen_span = reply
        .message
        .headers
        .get(header::TRACEPARENT)
        .and_then(messaging::TraceContext::parse)
        .context("the reply has no traceparent")?;
    ensure!(
        kitchen_span.trace_id == sender_span.trace_id,
        "not the same trace"
    );
    ensure!(
        kitchen_span.span_id != sender_span.span_id,
        "no span of its own"
    );
    Ok(())
}

/// Key order on one partition: records of different keys are handled at the same time, the
/// records of each key one after the other in offset order, and the committed offset never
/// passes a record that is not done (a second member of the group gets nothing twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_order_handles_keys_of_one_partition_side_by_side_and_each_key_in_order() -> Result<()>
{
    const KEYS: usize = 20;
    const PER_KEY: u32 = 15;
    let topic = TestTopic::create("runtime_key_order", 1).await?;
    let group = unique_group("runtime-key-order");
    let keys: Vec<String> = (0..KEYS).map(|k| format!("order-{k}")).collect();
    publish_sequences(topic.name(), &keys, PER_KEY).await?;

    let seen: Seen = Arc::default();
    let in_handler = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most_at_once = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = {
        let (seen, in_handler, most_at_once) =
            (seen.clone(), in_handler.clone(), most_at_once.clone());
        handler_fn(move |received: Received| {
            let (seen, in_handler, most_at_once) =
                (seen.clone(), in_handler.clone(), most_at_once.clone());
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = in_handler.fetch_add(1, SeqCst) + 1;
                most_at_once.fetch_max(now, SeqCst);
                // Uneven work, so later records of other keys overtake earlier ones.
                let pause = 2 + (received.origin.offset % 7) as u64 * 3;
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let key = received.message.key.clone().unwrap_or_default();
                let sequence: u32 = String::from_utf8_lossy(&received.message.payload)
                    .parse()
                    .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))?;
                seen.lock()
                    .expect("lock")
                    .push((key, sequence, "key-order"));
                in_handler.fetch_sub(1, SeqCst);
                Ok(())
            }
        })
    };
    let mut settings = ConsumerSettings::new(
        &Platform::from_env().bootstrap_servers,
        &group,
        &[topic.name()],
    );
    settings.ordering = kafka::Ordering::Key { max_concurrent: 8 };
    let summary = run_to_the_end(&settings, handler, &seen, KEYS, PER_KEY).await?;
    let total = KEYS * PER_KEY as usize;
    let most = most_at_once.load(std::sync::atomic::Ordering::SeqCst);
    ensure!(
        (2..=8).contains(&most),
        "{most} records at once on one partition"
    );
    ensure!(summary.handled == total as u64);

    // Everything was committed: a new member of the group has nothing to do.
    let again: Seen = Arc::default();
    let (stop, second) = member(&group, topic.name(), "second", again.clone())?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.send(()).ok();
    second.await??;
    ensure!(
        again.lock().expect("lock").is_empty(),
        "committed work handled again"
    );
    println!("key order: {total} records on one partition, up to {most} at once");
    Ok(())
}

/// `records` records on one partition, one key, each taking a 2 ms handler, consumed with
/// `settings_for` applied; every record handled once, in order.
async fn slow_partition(
    name: &str,
    records: u32,
    settings_for: impl FnOnce(&mut ConsumerSettings),
) -> Result<kafka::RunSummary> {
    let topic = TestTopic::create(name, 1).await?;
    let group = unique_group(name);
    publish_sequences(topic.name(), &["order-1".to_owned()], records).await?;

    let seen: Seen = Arc::default();
    let handler = {
        let seen = seen.clone();
        handler_fn(move |received: Received| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let sequence: u32 = String::from_utf8_lossy(&received.message.payload)
                    .parse()
                    .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))?;
                seen.lock()
                    .expect("lock")
                    .push(("order-1".to_owned(), sequence, "slow"));
                Ok(())
            }
        })
    };
    let mut settings = ConsumerSettings::new(
        &Platform::from_env().bootstrap_servers,
        &group,
        &[topic.name()],
    );
    settings_for(&mut settings);
    run_to_the_end(&settings, handler, &seen, 1, records).await
}

/// A handler that falls behind gets its partition paused instead of an ever-growing buffer,
/// and resumed when it catches up; nothing is lost or reordered on the way.
#[tokio::test]
async fn a_partition_whose_handler_falls_behind_is_paused_and_resumed() -> Result<()> {
    const MAX_BUFFERED: usize = 25;
    let summary = slow_partition("runtime_backpressure", 400, |settings| {
        settings.max_buffered_per_partition = MAX_BUFFERED;
    })
    .await?;
    println!(
        "back-pressure: {} pauses, at most {} records waiting (limit {MAX_BUFFERED})",
        summary.pauses, summary.peak_buffered
    );
    ensure!(summary.pauses >= 2, "{summary:?}");
    // librdkafka drops what it had prefetched for a paused partition and fetches it again on
    // resume, so the buffer stays near the limit (plus at most one poll batch) instead of
    // holding the whole backlog.
    ensure!(
        summary.peak_buffered < MAX_BUFFERED + kafka::POLL_BATCH,
        "the buffer grew to {}",
        summary.peak_buffered
    );
    Ok(())
}

/// Below the bound, a partition is paused by its task's pace: once the records waiting would
/// take the task longer than `max_waiting_work`. A bound of 2,000 records over 4,000 records
/// would pause it twice or so; a work bound of 250 ms (about 100 records of a 2 ms handler)
/// pauses it every hundred or two records after the first fill.
#[tokio::test]
async fn a_slow_partition_is_paused_by_its_pace_before_the_bound() -> Result<()> {
    let summary = slow_partition("runtime_pace", 4_000, |settings| {
        settings.max_buffered_per_partition = 2_000;
        settings.max_waiting_work = Duration::from_millis(250);
    })
    .await?;
    println!(
        "pace: {} pauses, at most {} records waiting (limit 2000, 250 ms of work)",
        summary.pauses, summary.peak_buffered
    );
    ensure!(summary.pauses >= 6, "{summary:?}");
    ensure!(
        summary.peak_buffered < 2_000 + kafka::POLL_BATCH,
        "the buffer grew to {}",
        summary.peak_buffered
    );
    Ok(())
}
