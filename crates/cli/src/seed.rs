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

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use apache_avro::Uuid;
use contracts::consumer::commands::{CreateConsumer, create_consumer};
use contracts::restaurant::commands::{CreateRestaurant, create_restaurant};
use kafka::{GroupOffsets, KafkaError, TopicTail, read_topic};
use messaging::{Received, header};
use sha1::{Digest, Sha1};

use crate::avro_json::money;
use crate::send::{Sender, kafka_unreachable};

const RESTAURANT_COMMANDS: &str =
    <contracts::restaurant::commands::Command as contracts::Channel>::TOPIC;
const RESTAURANT_EVENTS: &str = <contracts::restaurant::events::Event as contracts::Channel>::TOPIC;
const CONSUMER_COMMANDS: &str =
    <contracts::consumer::commands::Command as contracts::Channel>::TOPIC;
const CONSUMER_EVENTS: &str = <contracts::consumer::events::Event as contracts::Channel>::TOPIC;

/// A demo restaurant.
#[derive(Debug)]
struct DemoRestaurant {
    name: &'static str,
    /// street, city, state, zip
    address: [&'static str; 4],
    /// (id, name, price in cents of USD)
    menu: &'static [(&'static str, &'static str, i64)],
}

const RESTAURANTS: [DemoRestaurant; 3] = [
    DemoRestaurant {
        name: "Ajanta",
        address: ["100 Spice Street", "Berkeley", "CA", "94707"],
        menu: &[
            ("samosa", "Samosa", 450),
            ("chicken-vindaloo", "Chicken Vindaloo", 1295),
            ("garlic-naan", "Garlic Naan", 325),
        ],
    },
    DemoRestaurant {
        name: "Mumbai Grill",
        address: ["22 Harbor Road", "Oakland", "CA", "94607"],
        menu: &[
            ("tandoori-chicken", "Tandoori Chicken", 1450),
            ("lamb-biryani", "Lamb Biryani", 1675),
            ("mango-lassi", "Mango Lassi", 395),
        ],
    },
    DemoRestaurant {
        name: "Banquet Hall",
        address: ["500 Festival Way", "San Francisco", "CA", "94103"],
        menu: &[
            ("banquet-for-20", "Banquet for twenty", 65_000),
            ("feast-for-40", "Feast for forty", 130_000),
        ],
    },
];

/// Demo consumers: (first name, last name).
const CONSUMERS: [(&str, &str); 2] = [("Alice", "Ray"), ("Bob", "Sato")];

const CURRENCY: &str = "USD";

/// RFC 4122 UUID version 5: SHA-1 of the namespace and the name.
fn uuid_v5(namespace: &Uuid, name: &str) -> Uuid {
    let mut hash = Sha1::new();
    hash.update(namespace.as_bytes());
    hash.update(name.as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The id of the demo `kind` (`restaurant`, `consumer`) called `name`.
pub fn demo_id(kind: &str, name: &str) -> Uuid {
    uuid_v5(
        &Uuid::NAMESPACE_URL,
        &format!("urn:ftgo:seed:{kind}:{name}"),
    )
}

/// `RESTAURANT_MUMBAI_GRILL`.
fn variable(kind: &str, name: &str) -> String {
    format!("{kind}_{name}")
        .to_uppercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
}

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
}

/// One demo entity and where its records are.
#[derive(Debug)]
struct Item {
    kind: &'static str,
    name: String,
    id: Uuid,
    command_topic: &'static str,
    command_type: &'static str,
    event_topic: &'static str,
    event_type: &'static str,
    /// The first command for the id on the commands topic.
    command_at: Option<(i32, i64)>,
    /// The first event for the id on the events topic.
    event_at: Option<(i32, i64)>,
}

impl Item {
    fn key(&self) -> String {
        self.id.to_string()
    }

    fn label(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

fn items() -> Vec<Item> {
    let restaurants = RESTAURANTS.iter().map(|r| Item {
        kind: "restaurant",
        name: r.name.to_owned(),
        id: demo_id("restaurant", r.name),
        command_topic: RESTAURANT_COMMANDS,
        command_type: "ftgo.restaurant.commands.CreateRestaurant",
        event_topic: RESTAURANT_EVENTS,
        event_type: "ftgo.restaurant.events.RestaurantCreated",
        command_at: None,
        event_at: None,
    });
    let consumers = CONSUMERS.iter().map(|(first, last)| {
        let name = format!("{first} {last}");
        Item {
            kind: "consumer",
            id: demo_id("consumer", &name),
            name,
            command_topic: CONSUMER_COMMANDS,
            command_type: "ftgo.consumer.commands.CreateConsumer",
            event_topic: CONSUMER_EVENTS,
            event_type: "ftgo.consumer.events.ConsumerCreated",
            command_at: None,
            event_at: None,
        }
    });
    restaurants.chain(consumers).collect()
}

fn create_restaurant(restaurant: &DemoRestaurant) -> CreateRestaurant {
    let [street1, city, state, zip] = restaurant.address;
    CreateRestaurant {
        restaurant_id: demo_id("restaurant", restaurant.name),
        name: restaurant.name.to_owned(),
        address: create_restaurant::Address {
            street1: street1.into(),
            street2: None,
            city: city.into(),
            state: state.into(),
            zip: zip.into(),
        },
        menu_items: restaurant
            .menu
            .iter()
            .map(|(id, name, cents)| create_restaurant::MenuItem {
                id: (*id).into(),
                name: (*name).into(),
                price: create_restaurant::Money {
                    amount_minor: *cents,
                    currency: CURRENCY.into(),
                },
            })
            .collect(),
    }
}

fn create_consumer(first: &str, last: &str) -> CreateConsumer {
    CreateConsumer {
        consumer_id: demo_id("consumer", &format!("{first} {last}")),
        name: create_consumer::PersonName {
            first_name: first.into(),
            last_name: last.into(),
        },
    }
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
    for item in items() {
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
    let mut event_ends = HashMap::new();
    for topic in [RESTAURANT_EVENTS, CONSUMER_EVENTS] {
        let ends = kafka::watermarks(bootstrap, topic, Duration::from_secs(10))
            .with_context(|| format!("reading where {topic} ends"))
            .with_context(|| kafka_unreachable(bootstrap))?;
        event_ends.insert(
            topic,
            ends.iter()
                .map(|w| (w.partition, w.high))
                .collect::<Vec<_>>(),
        );
    }
    let topics = [
        RESTAURANT_COMMANDS,
        RESTAURANT_EVENTS,
        CONSUMER_COMMANDS,
        CONSUMER_EVENTS,
    ];
    let contents = read_all(bootstrap, &topics)?;

    let mut items = items();
    let mut published = 0;
    for item in &mut items {
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
            continue;
        }
        if let (Some((partition, offset)), false) = (item.command_at, options.republish) {
            eprintln!(
                "{label}: asked for already ({} at {}[{partition}]@{offset}), not created yet",
                short(item.command_type),
                item.command_topic
            );
            continue;
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
                let (first, last) = CONSUMERS
                    .iter()
                    .find(|(first, last)| format!("{first} {last}") == item.name)
                    .context("a demo consumer")?;
                sender.send(&create_consumer(first, last), None).await?
            }
        };
        eprintln!("{label}: {sent}");
        published += 1;
    }
    out!(
        "published {published} command(s); {} of {} demo record(s) were there already",
        items.len() - published,
        items.len()
    );

    if !options.no_wait {
        let deadline = Instant::now() + options.timeout;
        if let Err(why) = wait_for_events(bootstrap, &mut items, &event_ends, deadline) {
            eprintln!("{why}");
            return Ok(ExitCode::from(1));
        }
        let waits = group_waits(&items, &groups);
        if let Err(why) = await_taken_in(bootstrap, &waits, deadline) {
            eprintln!("{why}");
            return Ok(ExitCode::from(1));
        }
    }
    show_seeded(&items)?;
    Ok(ExitCode::SUCCESS)
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

/// Follows the event topics until every item has its event, or fails at `deadline` saying
/// which are missing and what to check.
fn wait_for_events(
    bootstrap: &str,
    items: &mut [Item],
    event_ends: &HashMap<&str, Vec<(i32, i64)>>,
    deadline: Instant,
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
    let mut next_progress = Instant::now() + Duration::from_secs(5);
    while !missing(items).is_empty() {
        if Instant::now() >= deadline {
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
            return Err(format!(
                "timed out waiting for the demo data to be created:\n{}\n\
                 (`ftgo seed --no-wait` publishes without waiting)",
                lines.join("\n")
            ));
        }
        if Instant::now() >= next_progress {
            eprintln!("still waiting for {}", missing(items).join(", "));
            next_progress += Duration::from_secs(5);
        }
        let mut quiet = true;
        for follower in &followers {
            let record = follower
                .next(Duration::from_millis(100))
                .map_err(|e| format!("reading events: {e}"))?;
            let Some(record) = record else { continue };
            quiet = false;
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
        if quiet {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
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

fn group_waits(items: &[Item], groups: &Groups) -> Vec<GroupWait> {
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

/// Polls each group's committed offsets until it has taken in its records, or fails at
/// `deadline` naming the groups that have not.
pub fn await_taken_in(
    bootstrap: &str,
    waits: &[GroupWait],
    deadline: Instant,
) -> Result<(), String> {
    let mut pending: Vec<(&GroupWait, GroupOffsets)> = Vec::new();
    for wait in waits {
        let offsets = GroupOffsets::new(bootstrap, &wait.group, Duration::from_secs(5))
            .map_err(|e| format!("asking for {}'s offsets: {e}", wait.group))?;
        pending.push((wait, offsets));
    }
    if !pending.is_empty() {
        eprintln!(
            "waiting for {} to take the demo data in (committed offsets past the events)...",
            waits
                .iter()
                .map(|w| w.group.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut next_progress = Instant::now() + Duration::from_secs(10);
    let mut last_state: HashMap<String, Vec<String>> = HashMap::new();
    loop {
        let mut still = Vec::new();
        for (wait, offsets) in pending {
            let committed = offsets.committed(&wait.topic).map_err(|e| {
                format!("asking for {}'s offsets on {}: {e}", wait.group, wait.topic)
            })?;
            let missing: Vec<String> = not_taken_in(wait, &committed)
                .into_iter()
                .map(str::to_owned)
                .collect();
            if missing.is_empty() {
                eprintln!(
                    "{} has taken in the demo data of {}",
                    wait.group, wait.topic
                );
            } else {
                last_state.insert(wait.group.clone(), missing);
                still.push((wait, offsets));
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let lines: Vec<String> = pending
                .iter()
                .map(|(wait, _)| {
                    format!(
                        "  {} has not taken in {} on {}: is that service running? (deploy/local/status, \
                         its logs; `ftgo topics --group {}` shows the group's lag)",
                        wait.group,
                        last_state
                            .get(&wait.group)
                            .map(|m| m.join(", "))
                            .unwrap_or_default(),
                        wait.topic,
                        wait.group
                    )
                })
                .collect();
            return Err(format!(
                "timed out waiting for the services to take the demo data in:\n{}\n\
                 (`ftgo seed --no-wait` publishes without waiting)",
                lines.join("\n")
            ));
        }
        if Instant::now() >= next_progress {
            for (wait, _) in &pending {
                eprintln!(
                    "still waiting for {} to take in {}",
                    wait.group,
                    last_state
                        .get(&wait.group)
                        .map(|m| m.join(", "))
                        .unwrap_or_default()
                );
            }
            next_progress += Duration::from_secs(10);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn show_seeded(items: &[Item]) -> Result<()> {
    out!("");
    for item in items {
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
    fn ids_are_uuid_v5_of_the_names() {
        // The example of Python's uuid module: uuid5(NAMESPACE_DNS, 'python.org').
        assert_eq!(
            uuid_v5(&Uuid::NAMESPACE_DNS, "python.org").to_string(),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
        let ajanta = demo_id("restaurant", "Ajanta");
        assert_eq!(ajanta, demo_id("restaurant", "Ajanta"));
        assert_eq!(ajanta.get_version_num(), 5);
        assert_ne!(ajanta, demo_id("consumer", "Ajanta"));
        assert_eq!(
            variable("restaurant", "Mumbai Grill"),
            "RESTAURANT_MUMBAI_GRILL"
        );
    }

    #[test]
    fn the_demo_data_shows_the_business_rules() {
        let banquet = RESTAURANTS
            .iter()
            .find(|r| r.name == "Banquet Hall")
            .expect("a banquet hall");
        let price = |id: &str| {
            banquet
                .menu
                .iter()
                .find(|(item, _, _)| *item == id)
                .map(|(_, _, cents)| *cents)
        };
        // Over accounting's 500.00 card limit, under the consumer's 1,000.00 order limit.
        assert!(price("banquet-for-20").is_some_and(|p| p > 50_000 && p <= 100_000));
        // Over the consumer's order limit.
        assert!(price("feast-for-40").is_some_and(|p| p > 100_000));
        let command = create_restaurant(&RESTAURANTS[0]);
        assert_eq!(command.menu_items.len(), 3);
        assert_eq!(command.menu_items[1].price.amount_minor, 1295);
    }

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

    /// Against the platform: a group's commits, made meanwhile, end the wait.
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
        let soon = Instant::now() + Duration::from_secs(2);
        let error = await_taken_in(&bootstrap, std::slice::from_ref(&wait), soon)
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
        await_taken_in(
            &bootstrap,
            &[wait],
            Instant::now() + Duration::from_secs(30),
        )
        .map_err(anyhow::Error::msg)?;
        committer
            .join()
            .map_err(|_| anyhow::anyhow!("the committer panicked"))??;
        Ok(())
    }
}
