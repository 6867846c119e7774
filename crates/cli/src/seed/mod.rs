//! `ftgo seed`: demo restaurants and consumers, created the way any client creates them
//! (CreateRestaurant on `ftgo.restaurant.commands`, CreateConsumer on
//! `ftgo.consumer.commands`), then, unless `--no-wait`, waiting until the services that keep
//! replicas of them have taken them in.
//!
//! Ids are UUID v5 of `urn:ftgo:seed:<restaurant|consumer>:<name>` in the URL namespace, so
//! every run (and any script: Python's `uuid.uuid5(uuid.NAMESPACE_URL, ...)`) gets the same
//! ones. A rerun publishes nothing for what exists already (its RestaurantCreated or
//! ConsumerCreated is on the events topic) or was asked for already (its command is on the
//! commands topic, not yet answered: the restaurant service dead-letters a second
//! CreateRestaurant). `--republish` sends the commands again for what has no event yet.
//!
//! "Taken in" means: the events are written, and the consumer groups that build replicas from
//! them have committed offsets past them (`order-service` and `kitchen-service` on
//! `ftgo.restaurant.events`, `accounting-service` on `ftgo.consumer.events`), so an order
//! placed now finds the restaurant and the consumer's account.
//!
//! # Layout
//! - `demo`: the demo restaurants and consumers, their ids and commands.
//! - `taken_in`: waiting for their events and for the groups that keep replicas.

mod demo;
pub(crate) mod taken_in;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use apache_avro::Uuid;
use kafka::{KafkaError, read_topic};
use messaging::{Received, header};

use crate::avro_json::money;
use crate::send::{Sender, kafka_unreachable};
use demo::{CURRENCY, Item, RESTAURANTS, create_consumer, create_restaurant, items, variable};
pub use demo::{demo_id, guest};
use taken_in::{await_taken_in, group_waits, wait_for_events};

const RESTAURANT_COMMANDS: &str =
    <contracts::restaurant::commands::Command as contracts::Channel>::TOPIC;
const RESTAURANT_EVENTS: &str = <contracts::restaurant::events::Event as contracts::Channel>::TOPIC;
const CONSUMER_COMMANDS: &str =
    <contracts::consumer::commands::Command as contracts::Channel>::TOPIC;
const CONSUMER_EVENTS: &str = <contracts::consumer::events::Event as contracts::Channel>::TOPIC;

/// The consumer groups that must take the seeded events in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    /// On `ftgo.restaurant.events`: the order service's menu replica.
    pub order: String,
    /// On `ftgo.restaurant.events`: the kitchen service's menu replica.
    pub kitchen: String,
    /// On `ftgo.consumer.events`: accounting opens an account per consumer.
    pub accounting: String,
}

impl Groups {
    /// The services' own groups, with `overrides` (`order-service=GROUP`, ...) applied.
    pub fn with_overrides(overrides: &[String]) -> Result<Self> {
        let mut groups = Self {
            order: "order-service".into(),
            kitchen: "kitchen-service".into(),
            accounting: "accounting-service".into(),
        };
        for item in overrides {
            let (service, group) = item.split_once('=').with_context(|| {
                format!(
                    "--groups {item:?} is not SERVICE_GROUP=GROUP (e.g. order-service=my-group)"
                )
            })?;
            let slot = match service.trim() {
                "order-service" => &mut groups.order,
                "kitchen-service" => &mut groups.kitchen,
                "accounting-service" => &mut groups.accounting,
                other => bail!(
                    "--groups: {other} is not a group seed waits for (order-service, kitchen-service, accounting-service)"
                ),
            };
            *slot = group.trim().to_owned();
        }
        Ok(groups)
    }
}

/// `ftgo seed`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Only print the demo ids as shell variables (`eval "$(ftgo seed --print-ids)"`); publish
    /// nothing.
    #[arg(long)]
    pub print_ids: bool,
    /// Do not wait for the services to take the data in.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the services.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Wait for other consumer groups than the services' own: SERVICE_GROUP=GROUP, for
    /// order-service, kitchen-service, accounting-service (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "SERVICE_GROUP=GROUP")]
    pub groups: Vec<String>,
    /// Publish the commands again for what has no event yet (after the service that refused
    /// them was fixed).
    #[arg(long)]
    pub republish: bool,
    /// Also this many more consumers, `Guest 1` to `Guest N` (ids as the demo's: UUID v5 of
    /// the name), for load that spreads over many consumers (`ftgo chaos place`).
    #[arg(long, default_value = "0", value_name = "N")]
    pub guests: u32,
}

/// The first record of `record_type` keyed `key` in `records`.
fn position_of(records: &[Received], record_type: &str, key: &str) -> Option<(i32, i64)> {
    records
        .iter()
        .filter(|r| {
            r.message.key.as_deref() == Some(key)
                && r.message.headers.get(header::TYPE) == Some(record_type)
        })
        .map(|r| (r.origin.partition, r.origin.offset))
        .min_by_key(|(_, offset)| *offset)
}

fn print_ids() -> Result<()> {
    for item in items(0) {
        out!("{}={}", variable(item.kind, &item.name), item.id);
    }
    Ok(())
}

pub async fn seed(bootstrap: &str, registry: &str, options: &Options) -> Result<ExitCode> {
    if options.print_ids {
        print_ids()?;
        return Ok(ExitCode::SUCCESS);
    }
    let groups = Groups::with_overrides(&options.groups)?;
    let sender = Sender::connect(bootstrap, registry)?;
    // Where the event topics end before reading them: following from there later sees every
    // event written meanwhile (some twice, which is harmless).
    let event_ends = event_ends(bootstrap)?;
    let topics = [
        RESTAURANT_COMMANDS,
        RESTAURANT_EVENTS,
        CONSUMER_COMMANDS,
        CONSUMER_EVENTS,
    ];
    let contents = read_all(bootstrap, &topics)?;
    let mut items = items(options.guests);
    let mut published = 0;
    for item in &mut items {
        if publish_unless_there(&sender, item, &contents, options.republish).await? {
            published += 1;
        }
    }
    out!(
        "published {published} command(s); {} of {} demo record(s) were there already",
        items.len() - published,
        items.len()
    );

    if !options.no_wait {
        let deadline = Instant::now() + options.timeout;
        if let Err(why) = wait_for_events(bootstrap, &mut items, &event_ends, options.timeout).await
        {
            eprintln!("{why}");
            return Ok(ExitCode::from(1));
        }
        let waits = group_waits(&items, &groups);
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(why) = await_taken_in(bootstrap, &waits, left, "the demo data").await {
            eprintln!("{why}\n(`ftgo seed --no-wait` publishes without waiting)");
            return Ok(ExitCode::from(1));
        }
    }
    show_seeded(&items)?;
    Ok(ExitCode::SUCCESS)
}

/// Where each event topic ends now, per partition.
fn event_ends(bootstrap: &str) -> Result<HashMap<&'static str, Vec<(i32, i64)>>> {
    let mut ends = HashMap::new();
    for topic in [RESTAURANT_EVENTS, CONSUMER_EVENTS] {
        let watermarks = kafka::watermarks(bootstrap, topic, Duration::from_secs(10))
            .with_context(|| format!("reading where {topic} ends"))
            .with_context(|| kafka_unreachable(bootstrap))?;
        ends.insert(
            topic,
            watermarks.iter().map(|w| (w.partition, w.high)).collect(),
        );
    }
    Ok(ends)
}

/// Sends `item`'s command unless its event is there, or its command is (and `republish` is
/// off); notes where they are. Whether it sent.
async fn publish_unless_there(
    sender: &Sender,
    item: &mut Item,
    contents: &HashMap<&str, Vec<Received>>,
    republish: bool,
) -> Result<bool> {
    let key = item.key();
    item.event_at = position_of(&contents[item.event_topic], item.event_type, &key);
    item.command_at = position_of(&contents[item.command_topic], item.command_type, &key);
    let label = item.label();
    if let Some((partition, offset)) = item.event_at {
        eprintln!(
            "{label}: exists ({} at {}[{partition}]@{offset})",
            short(item.event_type),
            item.event_topic
        );
        return Ok(false);
    }
    if let (Some((partition, offset)), false) = (item.command_at, republish) {
        eprintln!(
            "{label}: asked for already ({} at {}[{partition}]@{offset}), not created yet",
            short(item.command_type),
            item.command_topic
        );
        return Ok(false);
    }
    let sent = match item.kind {
        "restaurant" => {
            let restaurant = RESTAURANTS
                .iter()
                .find(|r| r.name == item.name)
                .context("a demo restaurant")?;
            sender.send(&create_restaurant(restaurant), None).await?
        }
        _ => {
            let (first, last) = item
                .name
                .split_once(' ')
                .context("a consumer's two names")?;
            sender.send(&create_consumer(first, last), None).await?
        }
    };
    eprintln!("{label}: {sent}");
    Ok(true)
}

fn short(full_name: &str) -> &str {
    full_name.rsplit('.').next().unwrap_or(full_name)
}

/// Every record of each topic, read in parallel.
fn read_all<'a>(bootstrap: &str, topics: &[&'a str]) -> Result<HashMap<&'a str, Vec<Received>>> {
    let read: Vec<(&str, Result<Vec<Received>, KafkaError>)> = std::thread::scope(|s| {
        let readers: Vec<_> = topics
            .iter()
            .map(|&topic| {
                s.spawn(move || (topic, read_topic(bootstrap, topic, Duration::from_secs(60))))
            })
            .collect();
        readers.into_iter().filter_map(|r| r.join().ok()).collect()
    });
    let mut contents = HashMap::new();
    for (topic, records) in read {
        let records = records.with_context(|| {
            format!("reading {topic} (deploy/local/up creates the topics of deploy/topics.toml)")
        })?;
        contents.insert(topic, records);
    }
    for topic in topics {
        if !contents.contains_key(topic) {
            bail!("reading {topic} failed");
        }
    }
    Ok(contents)
}

fn show_seeded(items: &[Item]) -> Result<()> {
    out!("");
    let guests = items.len() - RESTAURANTS.len() - demo::CONSUMERS.len();
    for item in items.iter().take(items.len() - guests) {
        let detail = RESTAURANTS
            .iter()
            .find(|r| item.kind == "restaurant" && r.name == item.name)
            .map(|r| {
                r.menu
                    .iter()
                    .map(|(id, _, cents)| format!("{id} {}", money(*cents, CURRENCY)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let line = format!("{:<10} {:<13} {}  {detail}", item.kind, item.name, item.id);
        out!("{}", line.trim_end());
    }
    if guests > 0 {
        out!(
            "consumer   Guest 1 to Guest {guests} (ids: UUID v5 of urn:ftgo:seed:consumer:<name>)"
        );
    }
    let alice = demo_id("consumer", "Alice Ray");
    let bob = demo_id("consumer", "Bob Sato");
    let ajanta = demo_id("restaurant", "Ajanta");
    let banquet = demo_id("restaurant", "Banquet Hall");
    let stranger = Uuid::new_v4();
    out!("");
    out!("try (ORDER_ID is what `order create` prints):");
    out!("  ftgo order create --consumer {alice} --restaurant {ajanta} --item samosa:2 --wait");
    out!("      -> APPROVED");
    out!(
        "  ftgo order create --consumer {alice} --restaurant {banquet} --item banquet-for-20 --wait"
    );
    out!("      -> REJECTED: the card authorization is over 500.00 USD (AMOUNT_OVER_LIMIT)");
    out!("  ftgo order create --consumer {bob} --restaurant {banquet} --item feast-for-40 --wait");
    out!(
        "      -> REJECTED: the order is over the consumer's 1000.00 USD limit (ORDER_LIMIT_EXCEEDED)"
    );
    out!("  ftgo order create --consumer {stranger} --restaurant {ajanta} --item samosa --wait");
    out!("      -> REJECTED: unknown consumer");
    out!("  ftgo order show ORDER_ID");
    out!("  ftgo order cancel ORDER_ID --wait");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_the_services_unless_overridden() {
        let groups = Groups::with_overrides(&[]).expect("defaults");
        assert_eq!(groups.kitchen, "kitchen-service");
        let groups =
            Groups::with_overrides(&["kitchen-service=k".into(), "accounting-service=a".into()])
                .expect("overrides");
        assert_eq!(
            (
                groups.order.as_str(),
                groups.kitchen.as_str(),
                groups.accounting.as_str()
            ),
            ("order-service", "k", "a")
        );
        assert!(Groups::with_overrides(&["delivery-service=d".into()]).is_err());
        assert!(Groups::with_overrides(&["order-service".into()]).is_err());
    }
}
