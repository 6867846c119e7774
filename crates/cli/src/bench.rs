//! `ftgo bench orders`: drives CreateOrder commands for the demo data of `ftgo seed` (consumer
//! Alice Ray, restaurant Ajanta, samosa and garlic naan: orders that are APPROVED) and measures
//! how long each order takes from the broker's acknowledgement of its CreateOrder to its
//! outcome (OrderApproved or OrderRejected on `ftgo.order.events`).
//!
//! Publishing runs as fast as it can (`--max`, up to `--concurrency` publishes in flight) or
//! at a fixed rate (`--rate N` orders/s, paced by a tokio interval). The outcomes are followed
//! from the events topic's ends taken before the first publish, by a thread of its own, so a
//! busy publisher does not delay them. `--half` measures the saturation throughput, then runs
//! again at half that rate and compares both with the targets.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use apache_avro::Uuid;
use contracts::order::commands::{CreateOrder, create_order};
use contracts::{Codec, Contract};
use futures::StreamExt as _;
use kafka::{GroupOffsets, KafkaPublisher, TopicTail, read_topic};
use messaging::AVRO_CONTENT_TYPE;
use messaging::{Message, Publisher, header};

use crate::avro_json::millis;
use crate::order::{DEFAULT_ADDRESS, parse_address};
use crate::seed::demo_id;
use crate::send::{SOURCE, kafka_unreachable, probe_kafka};

const ORDER_EVENTS: &str = <contracts::order::events::Event as contracts::Channel>::TOPIC;
const RESTAURANT_EVENTS: &str = <contracts::restaurant::events::Event as contracts::Channel>::TOPIC;
const CONSUMER_EVENTS: &str = <contracts::consumer::events::Event as contracts::Channel>::TOPIC;
const APPROVED: &str = <contracts::order::events::OrderApproved as contracts::Contract>::FULL_NAME;
const REJECTED: &str = <contracts::order::events::OrderRejected as contracts::Contract>::FULL_NAME;

/// The targets printed next to the `--half` summary.
const TARGET_SATURATION: f64 = 300.0;
const TARGET_HALF_P99_MS: f64 = 250.0;

/// What to benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// CreateOrder for seed's demo data (Alice Ray at Ajanta: APPROVED orders), as fast as
    /// possible or at a fixed rate; reports throughput and publish-to-outcome latency.
    Orders(Options),
}

/// `ftgo bench orders`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Publish at this many orders per second (paced), instead of as fast as possible.
    #[arg(long, value_name = "N", value_parser = parse_rate, conflicts_with_all = ["max", "half"])]
    pub rate: Option<u32>,
    /// Publish as fast as possible, up to --concurrency publishes in flight (the default).
    #[arg(long)]
    pub max: bool,
    /// How many orders (per phase). Default 2000, or unlimited when --seconds is given.
    #[arg(long, value_name = "N", value_parser = parse_orders)]
    pub orders: Option<u64>,
    /// Stop publishing after this long (per phase), even if fewer than --orders were sent.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    pub seconds: Option<Duration>,
    /// First at --max to measure the saturation throughput, then at half that rate; reports
    /// both against the targets (>= 300 orders/s at saturation, p99 < 250 ms at half load).
    #[arg(long, conflicts_with = "max")]
    pub half: bool,
    /// Publishes in flight at most (awaiting the broker's acknowledgement).
    #[arg(long, default_value = "256", value_name = "N", value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Also write every order to this CSV file: phase, order id, when it was acknowledged (ms
    /// after the phase's first), its latency in ms (empty if unfinished) and its outcome. To
    /// see when the slow orders happened, not only how many there were.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<std::path::PathBuf>,
    /// How long to wait for the outcomes after the last publish; orders without one by then
    /// are reported unfinished (exit 1).
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn parse_rate(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("--rate must be at least 1 order/s (or use --max)".into()),
        Ok(rate) => Ok(rate),
        Err(_) => Err(format!(
            "{text:?} is not a rate in orders/s (e.g. --rate 200)"
        )),
    }
}

fn parse_orders(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("--orders must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of orders")),
    }
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("--concurrency must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of publishes in flight")),
    }
}

/// `30`, `30s`, `2m`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{text:?} is not a duration (30, 30s, 2m): {e}"))?,
    };
    if duration.is_zero() {
        return Err("--seconds must be more than 0".into());
    }
    Ok(duration)
}

/// How fast to publish.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    Max,
    Rate(u32),
}

/// What one phase measured.
#[derive(Debug, Default)]
struct PhaseReport {
    sent: u64,
    publish_errors: u64,
    first_error: Option<String>,
    approved: u64,
    rejected: u64,
    /// Orders acknowledged by the broker without an outcome in time.
    unfinished: Vec<String>,
    elapsed: Duration,
    publishing: Duration,
    /// Finished orders / (first acknowledgement .. last outcome).
    throughput: f64,
    /// Publish (acknowledgement) to outcome, in ms, sorted.
    latencies_ms: Vec<f64>,
    /// The order that took longest, and how long (ms): where to look for the tail.
    slowest: Option<(String, f64)>,
    /// Every order: (id, acknowledged ms after the phase's first, latency ms, outcome).
    timeline: Vec<(String, f64, Option<f64>, &'static str)>,
}

/// Writes the phases' orders to `path` as CSV, in the order they were acknowledged.
fn write_csv(path: &std::path::Path, phases: &[(&str, &PhaseReport)]) -> Result<()> {
    use std::fmt::Write as _;
    let mut text = String::from("phase,order_id,acked_ms,latency_ms,outcome\n");
    for (label, report) in phases {
        let mut rows: Vec<_> = report.timeline.iter().collect();
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        for (order, acked, latency, outcome) in rows {
            let latency = latency.map(|ms| format!("{ms:.1}")).unwrap_or_default();
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{label},{order},{acked:.1},{latency},{outcome}");
        }
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("every order: {}", path.display());
    Ok(())
}

impl PhaseReport {
    fn finished(&self) -> u64 {
        self.approved + self.rejected
    }

    fn percentile(&self, p: f64) -> f64 {
        percentile(&self.latencies_ms, p)
    }

    fn latency_line(&self) -> String {
        if self.latencies_ms.is_empty() {
            return "p50 - ms, p95 - ms, p99 - ms, max - ms (no order finished)".into();
        }
        format!(
            "p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.percentile(50.0),
            self.percentile(95.0),
            self.percentile(99.0),
            self.percentile(100.0)
        )
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What the follower and the publisher share.
#[derive(Debug, Default)]
struct Tracked {
    /// Every order id about to be published (inserted before publishing, so an outcome that
    /// arrives before the acknowledgement is kept).
    ours: HashSet<String>,
    /// Order id -> when the broker acknowledged its CreateOrder.
    acked: HashMap<String, Instant>,
    /// Order id -> when its outcome arrived, and whether it was approved.
    outcome: HashMap<String, (Instant, bool)>,
}

#[derive(Debug, Default)]
struct Shared {
    tracked: Mutex<Tracked>,
    acked: AtomicU64,
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

pub async fn bench(bootstrap: &str, registry: &str, command: &BenchCommand) -> Result<ExitCode> {
    let BenchCommand::Orders(options) = command;
    orders(bootstrap, registry, options).await
}

async fn orders(bootstrap: &str, registry: &str, options: &Options) -> Result<ExitCode> {
    probe_kafka(bootstrap)?;
    check_seeded(bootstrap)?;
    let codec = Codec::for_catalog(registry)?;
    let publisher = KafkaPublisher::new(bootstrap, "ftgo-bench")?;
    let limit = match (options.orders, options.seconds) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(2000),
    };
    let mut unfinished = false;
    if options.half {
        let saturation = phase(
            bootstrap,
            &codec,
            &publisher,
            options,
            limit,
            Pace::Max,
            "saturation",
        )
        .await?;
        unfinished |= !saturation.unfinished.is_empty();
        let half_rate = ((saturation.throughput / 2.0).round() as u32).max(1);
        let label = format!("half load ({half_rate}/s)");
        let half = phase(
            bootstrap,
            &codec,
            &publisher,
            options,
            limit,
            Pace::Rate(half_rate),
            &label,
        )
        .await?;
        unfinished |= !half.unfinished.is_empty();
        out!("");
        let met = |ok: bool| if ok { "target met" } else { "target not met" };
        out!(
            "saturation: {:.0} orders/s, {}  (target >= {TARGET_SATURATION:.0} orders/s: {})",
            saturation.throughput,
            saturation.latency_line(),
            met(saturation.throughput >= TARGET_SATURATION)
        );
        out!(
            "{label}: {:.0} orders/s, {}  (target p99 < {TARGET_HALF_P99_MS:.0} ms: {})",
            half.throughput,
            half.latency_line(),
            met(!half.latencies_ms.is_empty() && half.percentile(99.0) < TARGET_HALF_P99_MS)
        );
        if let Some(path) = &options.csv {
            write_csv(path, &[("saturation", &saturation), ("half", &half)])?;
        }
    } else {
        let pace = match options.rate {
            Some(rate) => Pace::Rate(rate),
            None => Pace::Max,
        };
        let label = match pace {
            Pace::Max => "max".to_owned(),
            Pace::Rate(rate) => format!("rate {rate}/s"),
        };
        let report = phase(bootstrap, &codec, &publisher, options, limit, pace, &label).await?;
        unfinished |= !report.unfinished.is_empty();
        out!("");
        out!(
            "{label}: {:.0} orders/s, {}",
            report.throughput,
            report.latency_line()
        );
        if let Some(path) = &options.csv {
            write_csv(path, &[(label.as_str(), &report)])?;
        }
    }
    Ok(if unfinished {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The demo data must exist: RestaurantCreated for Ajanta and ConsumerCreated for Alice Ray.
/// Warns when the order service's group has not taken the restaurant in (yet).
fn check_seeded(bootstrap: &str) -> Result<()> {
    let restaurant = demo_id("restaurant", "Ajanta").to_string();
    let consumer = demo_id("consumer", "Alice Ray").to_string();
    let find = |topic: &str, key: &str, record_type: &str| -> Result<Option<(i32, i64)>> {
        let records = read_topic(bootstrap, topic, Duration::from_secs(30))
            .with_context(|| format!("reading {topic}"))
            .with_context(|| kafka_unreachable(bootstrap))?;
        Ok(records
            .iter()
            .find(|r| {
                r.message.key.as_deref() == Some(key)
                    && r.message.headers.get(header::TYPE) == Some(record_type)
            })
            .map(|r| (r.origin.partition, r.origin.offset)))
    };
    let Some((partition, offset)) = find(
        RESTAURANT_EVENTS,
        &restaurant,
        "ftgo.restaurant.events.RestaurantCreated",
    )?
    else {
        bail!(
            "restaurant Ajanta ({restaurant}) was not created (no RestaurantCreated on {RESTAURANT_EVENTS}): run `ftgo seed` first"
        );
    };
    if find(
        CONSUMER_EVENTS,
        &consumer,
        "ftgo.consumer.events.ConsumerCreated",
    )?
    .is_none()
    {
        bail!(
            "consumer Alice Ray ({consumer}) was not created (no ConsumerCreated on {CONSUMER_EVENTS}): run `ftgo seed` first"
        );
    }
    let taken_in = GroupOffsets::new(bootstrap, "order-service", Duration::from_secs(5))
        .and_then(|g| g.committed(RESTAURANT_EVENTS))
        .map(|committed| {
            committed
                .iter()
                .any(|(p, c)| *p == partition && c.is_some_and(|c| c > offset))
        });
    match taken_in {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "warning: the order service (group order-service) has not taken in restaurant Ajanta \
             yet: is it running? (deploy/local/services status; ftgo topics --group order-service)"
        ),
        Err(error) => eprintln!("warning: could not ask for order-service's offsets: {error}"),
    }
    Ok(())
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
    while !shared.stop.load(Ordering::Relaxed) {
        let record = follower
            .next(Duration::from_millis(100))
            .map_err(|e| format!("reading {ORDER_EVENTS}: {e}"))?;
        let Some(record) = record else { continue };
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

#[allow(clippy::too_many_arguments)]
async fn phase(
    bootstrap: &str,
    codec: &Codec,
    publisher: &KafkaPublisher,
    options: &Options,
    limit: Option<u64>,
    pace: Pace,
    label: &str,
) -> Result<PhaseReport> {
    let how = match pace {
        Pace::Max => format!(
            "as fast as possible, {} in flight at most",
            options.concurrency
        ),
        Pace::Rate(rate) => format!("{rate} orders/s"),
    };
    let how_many = match (limit, options.seconds) {
        (Some(n), Some(s)) => format!("{n} orders or {}s", s.as_secs_f64()),
        (Some(n), None) => format!("{n} orders"),
        (None, Some(s)) => format!("{}s", s.as_secs_f64()),
        (None, None) => "orders".into(),
    };
    eprintln!("{label}: publishing {how_many} to ftgo.order.commands, {how}");
    let ends = kafka::watermarks(bootstrap, ORDER_EVENTS, Duration::from_secs(10))
        .with_context(|| format!("reading where {ORDER_EVENTS} ends"))
        .with_context(|| kafka_unreachable(bootstrap))?;
    let starts: Vec<(i32, i64)> = ends.iter().map(|w| (w.partition, w.high)).collect();
    let follower = TopicTail::from_offsets(bootstrap, ORDER_EVENTS, &starts)
        .with_context(|| format!("following {ORDER_EVENTS}"))?;
    let shared = Arc::new(Shared::default());
    let following = {
        let shared = shared.clone();
        std::thread::spawn(move || follow(follower, shared))
    };
    let progressing = {
        let (shared, label) = (shared.clone(), label.to_owned());
        std::thread::spawn(move || progress(shared, label, limit))
    };
    let result = run_phase(codec, publisher, options, limit, pace, &shared).await;
    shared.stop.store(true, Ordering::Relaxed);
    let followed = following
        .join()
        .map_err(|_| anyhow::anyhow!("the follower panicked"))?;
    let _ = progressing.join();
    let mut report = result?;
    if let Err(error) = followed {
        bail!("{error}");
    }

    // Join acknowledgements and outcomes.
    let tracked = shared.lock();
    let first_ack = tracked.acked.values().min().copied();
    let mut last_outcome: Option<Instant> = None;
    let mut latencies = Vec::new();
    let since_first = |at: &Instant| {
        first_ack.map_or(0.0, |first| {
            at.saturating_duration_since(first).as_secs_f64() * 1000.0
        })
    };
    for (key, acked) in &tracked.acked {
        let outcome = tracked.outcome.get(key);
        report.timeline.push((
            key.clone(),
            since_first(acked),
            outcome.map(|(at, _)| at.saturating_duration_since(*acked).as_secs_f64() * 1000.0),
            match outcome {
                Some((_, true)) => "approved",
                Some((_, false)) => "rejected",
                None => "unfinished",
            },
        ));
        match outcome {
            Some((at, approved)) => {
                let latency = at.saturating_duration_since(*acked).as_secs_f64() * 1000.0;
                latencies.push(latency);
                if report
                    .slowest
                    .as_ref()
                    .is_none_or(|(_, most)| latency > *most)
                {
                    report.slowest = Some((key.clone(), latency));
                }
                last_outcome = Some(last_outcome.map_or(*at, |l| l.max(*at)));
                if *approved {
                    report.approved += 1;
                } else {
                    report.rejected += 1;
                }
            }
            None => report.unfinished.push(key.clone()),
        }
    }
    drop(tracked);
    latencies.sort_by(f64::total_cmp);
    report.latencies_ms = latencies;
    report.throughput = match (first_ack, last_outcome) {
        (Some(first), Some(last)) if last > first => {
            report.finished() as f64 / last.duration_since(first).as_secs_f64()
        }
        _ => 0.0,
    };
    print_report(label, pace, options, &report)?;
    Ok(report)
}

/// Publishes, then waits for the outcomes (at most --timeout after the last publish).
async fn run_phase(
    codec: &Codec,
    publisher: &KafkaPublisher,
    options: &Options,
    limit: Option<u64>,
    pace: Pace,
    shared: &Shared,
) -> Result<PhaseReport> {
    let address = parse_address(DEFAULT_ADDRESS).map_err(anyhow::Error::msg)?;
    let delivery_time = millis(SystemTime::now() + Duration::from_secs(45 * 60))
        .context("the clock is before 1970")?;
    let started = Instant::now();
    let deadline = options.seconds.map(|s| started + s);
    let interval = match pace {
        Pace::Rate(rate) => {
            let period = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut interval = tokio::time::interval_at(started.into(), period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            Some(interval)
        }
        Pace::Max => None,
    };
    // One tick per order: the interval paces them; --max takes them as fast as the in-flight
    // limit lets it.
    let ticks = futures::stream::unfold((0u64, interval), move |(n, mut interval)| async move {
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
    });
    let address = &address;
    let mut first_error = None;
    let mut results = std::pin::pin!(
        ticks
            .map(|_| publish_one(codec, publisher, shared, address, delivery_time))
            .buffer_unordered(options.concurrency)
    );
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            first_error.get_or_insert_with(|| format!("{error:#}"));
        }
    }
    let publishing = started.elapsed();
    let sent = shared.acked.load(Ordering::Relaxed);
    let publish_errors = shared.failed.load(Ordering::Relaxed);
    if sent == 0 {
        bail!(
            "no CreateOrder was published: {}",
            first_error.unwrap_or_else(|| "nothing to publish".into())
        );
    }
    let last_publish = Instant::now();
    while last_publish.elapsed() < options.timeout {
        let finished =
            shared.approved.load(Ordering::Relaxed) + shared.rejected.load(Ordering::Relaxed);
        if finished >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(PhaseReport {
        sent,
        publish_errors,
        first_error,
        elapsed: started.elapsed(),
        publishing,
        ..PhaseReport::default()
    })
}

fn print_report(label: &str, pace: Pace, options: &Options, report: &PhaseReport) -> Result<()> {
    out!("");
    match pace {
        // A paced phase's label says its rate.
        Pace::Max => out!("== {label} (max, {} in flight)", options.concurrency),
        Pace::Rate(_) => out!("== {label}"),
    }
    out!(
        "orders sent:   {} (acknowledged by the broker; publish errors: {})",
        report.sent,
        report.publish_errors
    );
    if let Some(error) = &report.first_error {
        out!("first publish error: {error}");
    }
    out!(
        "finished:      {} (approved {}, rejected {}), unfinished {}",
        report.finished(),
        report.approved,
        report.rejected,
        report.unfinished.len()
    );
    out!(
        "elapsed:       {:.1} s (publishing {:.1} s)",
        report.elapsed.as_secs_f64(),
        report.publishing.as_secs_f64()
    );
    out!(
        "throughput:    {:.1} orders/s (finished orders / first publish to last outcome)",
        report.throughput
    );
    out!(
        "latency:       {} (publish to outcome)",
        report.latency_line()
    );
    if let Some((order, latency)) = &report.slowest {
        out!("slowest:       {order}, {latency:.0} ms: its hops with ftgo order show {order}");
    }
    if !report.unfinished.is_empty() {
        let mut examples: Vec<&str> = report.unfinished.iter().map(String::as_str).collect();
        examples.sort_unstable();
        examples.truncate(5);
        out!(
            "unfinished:    {} order(s) without OrderApproved or OrderRejected within {} after the last publish, e.g. {}",
            report.unfinished.len(),
            humantime::format_duration(options.timeout),
            examples.join(", ")
        );
        out!(
            "  see how far one got: ftgo order show {}; are the services running? deploy/local/services status; \
             their groups' lag: ftgo topics",
            examples.first().copied().unwrap_or("ORDER_ID")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn arguments_are_checked() {
        assert!(parse_rate("0").is_err_and(|e| e.contains("at least 1")));
        assert_eq!(parse_rate("200"), Ok(200));
        assert!(parse_orders("0").is_err());
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_seconds("0").is_err());
    }

    #[test]
    fn the_csv_lists_every_order_in_the_order_it_was_acknowledged() {
        let report = PhaseReport {
            timeline: vec![
                ("b".into(), 20.0, None, "unfinished"),
                ("a".into(), 10.0, Some(105.25), "approved"),
            ],
            ..PhaseReport::default()
        };
        let path = std::env::temp_dir().join(format!("ftgo-bench-{}.csv", std::process::id()));
        write_csv(&path, &[("half", &report)]).expect("written");
        let text = std::fs::read_to_string(&path).expect("readable");
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            text,
            "phase,order_id,acked_ms,latency_ms,outcome\n\
             half,a,10.0,105.2,approved\n\
             half,b,20.0,,unfinished\n"
        );
    }

    #[test]
    fn the_orders_are_seeds_demo_order() {
        let address = parse_address(DEFAULT_ADDRESS).expect("address");
        let order = command(Uuid::new_v4(), &address, 0);
        assert_eq!(order.consumer_id, demo_id("consumer", "Alice Ray"));
        assert_eq!(order.restaurant_id, demo_id("restaurant", "Ajanta"));
        assert_eq!(order.line_items.len(), 2);
    }
}
