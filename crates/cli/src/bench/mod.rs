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
//!
//! # Layout
//! - `drive`: one phase: publish, follow the outcomes, join them (`phase`).
//! - `hops`: where the time went, hop by hop, from the records of every order-keyed topic.
//! - `report`: what a phase measured, printed and written as CSV.

mod drive;
mod hops;
mod report;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use contracts::Codec;
use kafka::{GroupOffsets, KafkaPublisher, read_topic};
use messaging::header;

use crate::seed::demo_id;
use crate::send::{kafka_unreachable, probe_kafka};
use drive::phase;
use report::write_csv;

const ORDER_EVENTS: &str = <contracts::order::events::Event as contracts::Channel>::TOPIC;
const RESTAURANT_EVENTS: &str = <contracts::restaurant::events::Event as contracts::Channel>::TOPIC;
const CONSUMER_EVENTS: &str = <contracts::consumer::events::Event as contracts::Channel>::TOPIC;
const APPROVED: &str = <contracts::order::events::OrderApproved as contracts::Contract>::FULL_NAME;
const REJECTED: &str = <contracts::order::events::OrderRejected as contracts::Contract>::FULL_NAME;

/// The target printed next to the `--half` summary. The saturation's target is a share of
/// the machine's floor, which `deploy/local/bench-floor --against` compares it with.
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
    /// both against the targets (saturation >= 0.5 of deploy/local/bench-floor's ceiling, p99
    /// < 250 ms at half load).
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

pub async fn bench(bootstrap: &str, registry: &str, command: &BenchCommand) -> Result<ExitCode> {
    let BenchCommand::Orders(options) = command;
    orders(bootstrap, registry, options).await
}

async fn orders(bootstrap: &str, registry: &str, options: &Options) -> Result<ExitCode> {
    probe_kafka(bootstrap)?;
    check_seeded(bootstrap)?;
    let codec = Codec::for_catalog(&contracts::RegistryAccess::from_env(registry)?)?;
    let publisher = KafkaPublisher::new(bootstrap, "ftgo-bench")?;
    let limit = match (options.orders, options.seconds) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(2000),
    };
    let run = Run {
        bootstrap,
        codec: &codec,
        publisher: &publisher,
        options,
        limit,
    };
    let unfinished = if options.half {
        run.half_load().await?
    } else {
        run.one_phase().await?
    };
    Ok(if unfinished {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What every phase of one `ftgo bench orders` shares.
struct Run<'a> {
    bootstrap: &'a str,
    codec: &'a Codec,
    publisher: &'a KafkaPublisher,
    options: &'a Options,
    limit: Option<u64>,
}

impl Run<'_> {
    /// `--half`: saturation, then half its throughput; both against the targets. Whether an
    /// order was left unfinished.
    async fn half_load(&self) -> Result<bool> {
        let saturation = phase(self, Pace::Max, "saturation").await?;
        let half_rate = ((saturation.throughput / 2.0).round() as u32).max(1);
        let label = format!("half load ({half_rate}/s)");
        let half = phase(self, Pace::Rate(half_rate), &label).await?;
        out!("");
        let met = |ok: bool| if ok { "target met" } else { "target not met" };
        out!(
            "saturation: {:.0} orders/s, {}  (target >= 0.5 of the ceiling: deploy/local/bench-floor --against {:.0})",
            saturation.throughput,
            saturation.latency_line(),
            saturation.throughput
        );
        out!(
            "{label}: {:.0} orders/s, {}  (target p99 < {TARGET_HALF_P99_MS:.0} ms: {})",
            half.throughput,
            half.latency_line(),
            met(!half.latencies_ms.is_empty() && half.percentile(99.0) < TARGET_HALF_P99_MS)
        );
        if let Some(path) = &self.options.csv {
            write_csv(path, &[("saturation", &saturation), ("half", &half)])?;
        }
        Ok(!saturation.unfinished.is_empty() || !half.unfinished.is_empty())
    }

    /// One phase, at `--rate` or as fast as it goes. Whether an order was left unfinished.
    async fn one_phase(&self) -> Result<bool> {
        let pace = match self.options.rate {
            Some(rate) => Pace::Rate(rate),
            None => Pace::Max,
        };
        let label = match pace {
            Pace::Max => "max".to_owned(),
            Pace::Rate(rate) => format!("rate {rate}/s"),
        };
        let report = phase(self, pace, &label).await?;
        out!("");
        out!(
            "{label}: {:.0} orders/s, {}",
            report.throughput,
            report.latency_line()
        );
        if let Some(path) = &self.options.csv {
            write_csv(path, &[(label.as_str(), &report)])?;
        }
        Ok(!report.unfinished.is_empty())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked() {
        assert!(parse_rate("0").is_err_and(|e| e.contains("at least 1")));
        assert_eq!(parse_rate("200"), Ok(200));
        assert!(parse_orders("0").is_err());
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_seconds("0").is_err());
    }
}
