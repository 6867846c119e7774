//! One phase of the benchmark: publish CreateOrders (paced or as fast as the in-flight limit
//! lets), follow their outcomes on a thread of its own, and join the two into a report.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use apache_avro::Uuid;
use contracts::order::commands::{CreateOrder, create_order};
use contracts::{Codec, Contract};
use futures::StreamExt as _;
use kafka::{KafkaPublisher, TopicTail};
use messaging::{AVRO_CONTENT_TYPE, Message, Publisher, header};

use super::report::{PhaseReport, print_report};
use super::{APPROVED, ORDER_EVENTS, Pace, REJECTED, Run, hops};
use crate::avro_json::millis;
use crate::order::{DEFAULT_ADDRESS, parse_address};
use crate::seed::demo_id;
use crate::send::{SOURCE, kafka_unreachable, read_past};

/// What the follower and the publisher share.
#[derive(Debug, Default)]
pub(super) struct Tracked {
    /// Every order id about to be published (inserted before publishing, so an outcome that
    /// arrives before the acknowledgement is kept).
    pub(super) ours: HashSet<String>,
    /// Order id -> when the broker acknowledged its CreateOrder.
    pub(super) acked: HashMap<String, Instant>,
    /// Order id -> when its outcome arrived, and whether it was approved.
    pub(super) outcome: HashMap<String, (Instant, bool)>,
}

#[derive(Debug, Default)]
struct Shared {
    tracked: Mutex<Tracked>,
    pub(super) acked: AtomicU64,
    approved: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Tracked> {
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn command(order_id: Uuid, address: &create_order::Address, delivery_time: i64) -> CreateOrder {
    CreateOrder {
        order_id,
        consumer_id: demo_id("consumer", "Alice Ray"),
        restaurant_id: demo_id("restaurant", "Ajanta"),
        line_items: [("samosa", 2), ("garlic-naan", 1)]
            .into_iter()
            .map(|(id, quantity)| create_order::OrderLineItem {
                menu_item_id: id.into(),
                quantity,
            })
            .collect(),
        delivery_address: address.clone(),
        delivery_time,
    }
}

/// Publishes one CreateOrder; returns the order id once the broker acknowledged it.
async fn publish_one(
    codec: &Codec,
    publisher: &KafkaPublisher,
    shared: &Shared,
    address: &create_order::Address,
    delivery_time: i64,
) -> Result<()> {
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    let record = command(order_id, address, delivery_time);
    let payload = codec.encode(&record).await.with_context(|| {
        "encoding CreateOrder (is the schema registry up? deploy/local/status)".to_owned()
    })?;
    let message = Message::new(Some(key.clone()), payload)
        .with_header(header::TYPE, CreateOrder::FULL_NAME)
        .with_header(header::SOURCE, SOURCE)
        .with_header(header::CONTENT_TYPE, AVRO_CONTENT_TYPE);
    shared.lock().ours.insert(key.clone());
    publisher.publish(CreateOrder::TOPIC, &message).await?;
    let now = Instant::now();
    shared.lock().acked.insert(key, now);
    shared.acked.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Follows the order events from `starts`, keeping the outcomes of our orders.
fn follow(follower: TopicTail, shared: Arc<Shared>) -> Result<(), String> {
    let mut warned = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let record = match follower.next(Duration::from_millis(100)) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(error) => {
                read_past(ORDER_EVENTS, &error, &mut warned)?;
                continue;
            }
        };
        let now = Instant::now();
        let approved = match record.message.headers.get(header::TYPE) {
            Some(APPROVED) => true,
            Some(REJECTED) => false,
            _ => continue,
        };
        let Some(key) = record.message.key else {
            continue;
        };
        let mut tracked = shared.lock();
        if tracked.ours.contains(&key) && !tracked.outcome.contains_key(&key) {
            tracked.outcome.insert(key, (now, approved));
            drop(tracked);
            let counter = if approved {
                &shared.approved
            } else {
                &shared.rejected
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Prints orders sent / finished to stderr every second until stopped, and once more then.
fn progress(shared: Arc<Shared>, label: String, limit: Option<u64>) {
    let started = Instant::now();
    let of = limit.map(|n| format!("/{n}")).unwrap_or_default();
    let line = || {
        let sent = shared.acked.load(Ordering::Relaxed);
        let approved = shared.approved.load(Ordering::Relaxed);
        let rejected = shared.rejected.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        let errors = if failed > 0 {
            format!(", {failed} publish errors")
        } else {
            String::new()
        };
        eprintln!(
            "[{label} {:>5.1}s] sent {sent}{of}, finished {} (approved {approved}, rejected {rejected}){errors}",
            started.elapsed().as_secs_f64(),
            approved + rejected
        );
    };
    let mut next = Duration::from_secs(1);
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() >= next {
            next += Duration::from_secs(1);
            line();
        }
    }
    line();
}

/// One phase: publishes at `pace`, follows the outcomes, joins them, prints the report.
pub(super) async fn phase(run: &Run<'_>, pace: Pace, label: &str) -> Result<PhaseReport> {
    eprintln!(
        "{label}: publishing {} to ftgo.order.commands, {}",
        how_many(run.limit, run.options.seconds),
        how(pace, run.options.concurrency)
    );
    let ends = kafka::watermarks(run.bootstrap, ORDER_EVENTS, Duration::from_secs(10))
        .with_context(|| format!("reading where {ORDER_EVENTS} ends"))
        .with_context(|| kafka_unreachable(run.bootstrap))?;
    let starts: Vec<(i32, i64)> = ends.iter().map(|w| (w.partition, w.high)).collect();
    // The hops are read from here on (a second before: producers' clocks are this one's).
    let since = SystemTime::now() - Duration::from_secs(1);
    let follower = TopicTail::from_offsets(run.bootstrap, ORDER_EVENTS, &starts)
        .with_context(|| format!("following {ORDER_EVENTS}"))?;
    let shared = Arc::new(Shared::default());
    let following = {
        let shared = shared.clone();
        std::thread::spawn(move || follow(follower, shared))
    };
    let progressing = {
        let (shared, label, limit) = (shared.clone(), label.to_owned(), run.limit);
        std::thread::spawn(move || progress(shared, label, limit))
    };
    let result = publish_all(run, pace, &shared).await;
    shared.stop.store(true, Ordering::Relaxed);
    let followed = following
        .join()
        .map_err(|_| anyhow::anyhow!("the follower panicked"))?;
    let _ = progressing.join();
    let mut report = result?;
    if let Err(error) = followed {
        bail!("{error}");
    }
    let orders: HashSet<String> = {
        let tracked = shared.lock();
        report.tally(&tracked);
        tracked.acked.keys().cloned().collect()
    };
    print_report(label, pace, run.options, &report)?;
    match hops::read(run.bootstrap, since, &orders) {
        Ok(records) => hops::print(&hops::hops(&records), orders.len())?,
        Err(error) => out!("hops:          not read: {error:#}"),
    }
    Ok(report)
}

fn how(pace: Pace, concurrency: usize) -> String {
    match pace {
        Pace::Max => format!("as fast as possible, {concurrency} in flight at most"),
        Pace::Rate(rate) => format!("{rate} orders/s"),
    }
}

fn how_many(limit: Option<u64>, seconds: Option<Duration>) -> String {
    match (limit, seconds) {
        (Some(n), Some(s)) => format!("{n} orders or {}s", s.as_secs_f64()),
        (Some(n), None) => format!("{n} orders"),
        (None, Some(s)) => format!("{}s", s.as_secs_f64()),
        (None, None) => "orders".into(),
    }
}

/// Publishes, then waits for the outcomes (at most --timeout after the last publish).
async fn publish_all(run: &Run<'_>, pace: Pace, shared: &Shared) -> Result<PhaseReport> {
    let address = parse_address(DEFAULT_ADDRESS).map_err(anyhow::Error::msg)?;
    let delivery_time = millis(SystemTime::now() + Duration::from_secs(45 * 60))
        .context("the clock is before 1970")?;
    let started = Instant::now();
    let address = &address;
    let mut first_error = None;
    let mut results = std::pin::pin!(
        ticks(started, pace, run.limit, run.options.seconds)
            .map(|_| publish_one(run.codec, run.publisher, shared, address, delivery_time))
            .buffer_unordered(run.options.concurrency)
    );
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            first_error.get_or_insert_with(|| format!("{error:#}"));
        }
    }
    let publishing = started.elapsed();
    let sent = shared.acked.load(Ordering::Relaxed);
    if sent == 0 {
        bail!(
            "no CreateOrder was published: {}",
            first_error.unwrap_or_else(|| "nothing to publish".into())
        );
    }
    await_outcomes(shared, sent, run.options.timeout).await;
    Ok(PhaseReport {
        sent,
        publish_errors: shared.failed.load(Ordering::Relaxed),
        first_error,
        elapsed: started.elapsed(),
        publishing,
        ..PhaseReport::default()
    })
}

/// One tick per order: a paced interval, or as many as `--max` takes; until `limit` orders or
/// `seconds` have passed.
fn ticks(
    started: Instant,
    pace: Pace,
    limit: Option<u64>,
    seconds: Option<Duration>,
) -> impl futures::Stream<Item = u64> {
    let deadline = seconds.map(|s| started + s);
    let interval = match pace {
        Pace::Rate(rate) => {
            let period = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut interval = tokio::time::interval_at(started.into(), period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            Some(interval)
        }
        Pace::Max => None,
    };
    futures::stream::unfold((0u64, interval), move |(n, mut interval)| async move {
        let more = limit.is_none_or(|limit| n < limit)
            && deadline.is_none_or(|deadline| Instant::now() < deadline);
        if !more {
            return None;
        }
        if let Some(interval) = interval.as_mut() {
            // When the tick was due: the orders of --seconds S are exactly rate x S.
            let due = interval.tick().await.into_std();
            if deadline.is_some_and(|deadline| due >= deadline) {
                return None;
            }
        }
        Some((n, (n + 1, interval)))
    })
}

/// Waits until every sent order has its outcome, or `timeout` has passed.
async fn await_outcomes(shared: &Shared, sent: u64, timeout: Duration) {
    let last_publish = Instant::now();
    while last_publish.elapsed() < timeout {
        let finished =
            shared.approved.load(Ordering::Relaxed) + shared.rejected.load(Ordering::Relaxed);
        if finished >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orders_are_seeds_demo_order() {
        let address = parse_address(DEFAULT_ADDRESS).expect("address");
        let order = command(Uuid::new_v4(), &address, 0);
        assert_eq!(order.consumer_id, demo_id("consumer", "Alice Ray"));
        assert_eq!(order.restaurant_id, demo_id("restaurant", "Ajanta"));
        assert_eq!(order.line_items.len(), 2);
    }
}
