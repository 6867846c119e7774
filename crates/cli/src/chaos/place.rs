//! `ftgo chaos place`: the workload. Orders are placed evenly over `--over`, each meant for
//! one outcome (a fixed cycle of twenty: eleven approved, four approved then cancelled, two
//! over the card's limit, two over the consumer's, one for an unknown consumer), for the demo
//! restaurants and the demo and guest consumers of `ftgo seed --guests N`. A thread follows
//! `ftgo.order.events`; an order meant to be cancelled gets its CancelOrder once it is
//! approved. A publish that fails is tried again with the same order id (the order service
//! treats a second CreateOrder of an order as the same one).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use contracts::Contract;
use contracts::order::commands::{CancelOrder, CreateOrder, create_order};
use contracts::order::events::{
    OrderApproved, OrderCancellationRejected, OrderCancelled, OrderRejected,
};
use futures::StreamExt as _;
use kafka::TopicTail;
use messaging::header;
use uuid::Uuid;

use super::{Intent, Placed, Run};
use crate::avro_json::millis;
use crate::order::{DEFAULT_ADDRESS, parse_address};
use crate::seed::{demo_id, guest};
use crate::send::{Sender, kafka_unreachable, read_past};

const ORDER_EVENTS: &str = <contracts::order::events::Event as contracts::Channel>::TOPIC;

/// The intents of every twenty orders, in the order they are placed.
const CYCLE: [Intent; 20] = {
    use Intent::{
        Approve as A, Cancel as C, RejectCard as K, RejectLimit as L, UnknownConsumer as U,
    };
    [A, A, C, A, K, A, A, L, A, C, A, A, C, A, U, A, K, A, L, C]
};

/// `ftgo chaos place`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// How many orders.
    #[arg(long, default_value = "300", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub orders: u32,
    /// Placed evenly over this long.
    #[arg(long, default_value = "90s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub over: Duration,
    /// The guest consumers `ftgo seed --guests N` created (orders are spread over them and the
    /// demo's two).
    #[arg(long, default_value = "20", value_name = "N")]
    pub guests: u32,
    /// How long to wait for every order's outcome after the last was placed; the run is
    /// written either way (exit 1 when an order has none).
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Where to write the run, for `ftgo chaos check --run FILE`.
    #[arg(long, value_name = "FILE")]
    pub run: PathBuf,
}

/// What the follower and the publishers share.
#[derive(Debug, Default)]
struct Shared {
    /// Order id -> its intent, inserted before its CreateOrder is published.
    intents: Mutex<HashMap<String, Intent>>,
    /// Order id -> when it reached its outcome (ms since the epoch) and which.
    finished: Mutex<HashMap<String, (i64, &'static str)>>,
    placed: AtomicU64,
    cancels: AtomicU64,
    stop: AtomicBool,
}

fn now_ms() -> i64 {
    millis(SystemTime::now()).unwrap_or(0)
}

pub async fn place(bootstrap: &str, registry: &str, options: &Options) -> Result<ExitCode> {
    let sender = Sender::connect(bootstrap, registry)?;
    let since_ms = now_ms() - 5_000;
    let ends = kafka::watermarks(bootstrap, ORDER_EVENTS, Duration::from_secs(10))
        .with_context(|| format!("reading where {ORDER_EVENTS} ends"))
        .with_context(|| kafka_unreachable(bootstrap))?;
    let starts: Vec<(i32, i64)> = ends.iter().map(|w| (w.partition, w.high)).collect();
    let follower = TopicTail::from_offsets(bootstrap, ORDER_EVENTS, &starts)
        .with_context(|| format!("following {ORDER_EVENTS}"))?;
    let shared = Arc::new(Shared::default());
    let (approved, mut to_cancel) = tokio::sync::mpsc::unbounded_channel::<String>();
    let following = {
        let shared = shared.clone();
        std::thread::spawn(move || follow(&follower, &shared, &approved))
    };
    let started = Instant::now();
    eprintln!(
        "placing {} orders over {} ({:.1}/s)",
        options.orders,
        humantime::format_duration(options.over),
        f64::from(options.orders) / options.over.as_secs_f64().max(0.001)
    );
    let (placed, ()) = tokio::join!(
        async {
            let placed = publish_all(&sender, &shared, options, started).await;
            if placed.is_ok() {
                await_outcomes(&shared, options.orders as usize, options.timeout, started).await;
            }
            shared.stop.store(true, Ordering::Relaxed);
            placed
        },
        async {
            while let Some(order_id) = to_cancel.recv().await {
                if let Err(error) = cancel(&sender, &order_id).await {
                    eprintln!("warning: CancelOrder for {order_id} was not sent: {error:#}");
                } else {
                    shared.cancels.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    );
    following
        .join()
        .map_err(|_| anyhow::anyhow!("the follower panicked"))?
        .map_err(anyhow::Error::msg)?;
    let placed = placed?;
    let finished = lock(&shared.finished).clone();
    let run = Run {
        since_ms,
        orders: placed,
    };
    std::fs::write(&options.run, serde_json::to_string_pretty(&run)?)
        .with_context(|| format!("writing the run to {}", options.run.display()))?;
    report(&run, &finished, &options.run)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Follows the order events: outcomes of our orders, and approvals of the orders to cancel.
fn follow(
    follower: &TopicTail,
    shared: &Shared,
    approved: &tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<(), String> {
    let mut warned = None;
    while !shared.stop.load(Ordering::Relaxed) {
        // A broker lost (a fault of the run) is an error here until the client has found the
        // partitions' new leaders: said and read past. A refusal ends the run.
        let record = match follower.next(Duration::from_millis(100)) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(error) => {
                if let Err(refused) = read_past(ORDER_EVENTS, &error, &mut warned) {
                    shared.stop.store(true, Ordering::Relaxed);
                    return Err(refused);
                }
                continue;
            }
        };
        let (Some(key), Some(kind)) = (
            record.message.key.as_deref(),
            record.message.headers.get(header::TYPE),
        ) else {
            continue;
        };
        let Some(intent) = lock(&shared.intents).get(key).copied() else {
            continue;
        };
        let outcome = match kind {
            OrderApproved::FULL_NAME if intent == Intent::Cancel => {
                let _ = approved.send(key.to_owned());
                continue;
            }
            OrderApproved::FULL_NAME => "APPROVED",
            OrderRejected::FULL_NAME => "REJECTED",
            OrderCancelled::FULL_NAME => "CANCELLED",
            OrderCancellationRejected::FULL_NAME => "APPROVED (cancellation refused)",
            _ => continue,
        };
        lock(&shared.finished)
            .entry(key.to_owned())
            .or_insert((now_ms(), outcome));
    }
    Ok(())
}

/// The order for `intent`, the `n`th of the run.
fn command(n: u32, intent: Intent, guests: u32, address: &create_order::Address) -> CreateOrder {
    let consumer = match (intent, n % (guests + 2)) {
        (Intent::UnknownConsumer, _) => Uuid::new_v4(),
        (_, 0) => demo_id("consumer", "Alice Ray"),
        (_, 1) => demo_id("consumer", "Bob Sato"),
        (_, k) => {
            let (first, last) = guest(k - 1);
            demo_id("consumer", &format!("{first} {last}"))
        }
    };
    let (restaurant, items): (&str, &[(&str, i32)]) = match intent {
        Intent::Approve if n % 2 == 1 => {
            ("Mumbai Grill", &[("lamb-biryani", 1), ("mango-lassi", 2)])
        }
        Intent::Approve | Intent::Cancel | Intent::UnknownConsumer => {
            ("Ajanta", &[("samosa", 2), ("garlic-naan", 1)])
        }
        Intent::RejectCard => ("Banquet Hall", &[("banquet-for-20", 1)]),
        Intent::RejectLimit => ("Banquet Hall", &[("feast-for-40", 1)]),
    };
    CreateOrder {
        order_id: Uuid::new_v4(),
        consumer_id: consumer,
        restaurant_id: demo_id("restaurant", restaurant),
        line_items: items
            .iter()
            .map(|(id, quantity)| create_order::OrderLineItem {
                menu_item_id: (*id).into(),
                quantity: *quantity,
            })
            .collect(),
        delivery_address: address.clone(),
        delivery_time: now_ms() + 45 * 60 * 1000,
    }
}

/// Sends `record` until the broker takes it (two minutes at most): the same record, so the
/// same order, each time.
async fn send_until_taken<T: Contract>(sender: &Sender, record: &T) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match sender.send(record, None).await {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() < deadline => {
                eprintln!("warning: {error:#}; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn cancel(sender: &Sender, order_id: &str) -> Result<()> {
    let command = CancelOrder {
        order_id: order_id.parse().context("an order id")?,
        reason: Some("ftgo chaos place: an order meant to be cancelled".into()),
    };
    send_until_taken(sender, &command).await
}

/// Places every order, paced evenly over `--over`.
async fn publish_all(
    sender: &Sender,
    shared: &Shared,
    options: &Options,
    started: Instant,
) -> Result<Vec<Placed>> {
    let address = parse_address(DEFAULT_ADDRESS).map_err(anyhow::Error::msg)?;
    let period = options.over / options.orders;
    let address = &address;
    let results: Vec<Result<Placed>> = futures::stream::iter(0..options.orders)
        .then(|n| async move {
            tokio::time::sleep_until((started + period * n).into()).await;
            n
        })
        .map(|n| async move {
            let intent = CYCLE[n as usize % CYCLE.len()];
            let order = command(n, intent, options.guests, address);
            let order_id = order.order_id.to_string();
            lock(&shared.intents).insert(order_id.clone(), intent);
            send_until_taken(sender, &order).await?;
            let placed = shared.placed.fetch_add(1, Ordering::Relaxed) + 1;
            if placed.is_multiple_of(100) {
                progress(shared, started);
            }
            Ok(Placed {
                order_id,
                intent,
                placed_ms: now_ms(),
            })
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}

fn progress(shared: &Shared, started: Instant) {
    eprintln!(
        "[{:>5.0}s] placed {}, finished {}, cancellations sent {}",
        started.elapsed().as_secs_f64(),
        shared.placed.load(Ordering::Relaxed),
        lock(&shared.finished).len(),
        shared.cancels.load(Ordering::Relaxed)
    );
}

/// Waits until every order has its outcome, or `timeout` after the last was placed.
async fn await_outcomes(shared: &Shared, orders: usize, timeout: Duration, started: Instant) {
    let deadline = Instant::now() + timeout;
    let mut next = Instant::now();
    while Instant::now() < deadline && lock(&shared.finished).len() < orders {
        if Instant::now() >= next {
            progress(shared, started);
            next += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress(shared, started);
}

/// Prints the outcomes per intent and the longest time any order took; exit 1 when an order
/// has no outcome.
fn report(
    run: &Run,
    finished: &HashMap<String, (i64, &'static str)>,
    path: &std::path::Path,
) -> Result<ExitCode> {
    let mut counts: std::collections::BTreeMap<(Intent, &str), usize> = Default::default();
    let mut longest: Option<(i64, &str)> = None;
    let mut unfinished = Vec::new();
    for order in &run.orders {
        match finished.get(&order.order_id) {
            Some((at, outcome)) => {
                *counts.entry((order.intent, *outcome)).or_default() += 1;
                let took = at - order.placed_ms;
                if longest.is_none_or(|(most, _)| took > most) {
                    longest = Some((took, &order.order_id));
                }
            }
            None => unfinished.push(order.order_id.as_str()),
        }
    }
    out!("placed {} orders; outcomes by intent:", run.orders.len());
    for ((intent, outcome), count) in &counts {
        out!("  {:<16} {outcome:<32} {count}", format!("{intent:?}"));
    }
    if let Some((took, order)) = longest {
        out!(
            "longest from placed to outcome: {:.1} s (order {order})",
            took as f64 / 1000.0
        );
    }
    out!("run written to {}", path.display());
    if unfinished.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{} orders without an outcome, e.g. {}",
        unfinished.len(),
        unfinished
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    );
    if unfinished.len() == run.orders.len() {
        bail!(
            "no order reached an outcome: are the services running? (deploy/local/services status)"
        );
    }
    Ok(ExitCode::from(1))
}
