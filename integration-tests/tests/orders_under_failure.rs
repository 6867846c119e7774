//! 1,000 orders through three instances of every service, each a process of its own; midway
//! one instance of each service is killed with SIGKILL and started again. Every order must end
//! as its input dictates (approved, rejected for its reason, or cancelled), each order's events
//! must appear once each and in order, and each approved order must have exactly one ticket
//! and one card authorization. Duplicated records on the topics (a killed relay publishes
//! again what it had not yet marked done) are counted and reported; they must have no effect.

mod stack;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use contracts::consumer::commands::CreateConsumer;
use contracts::consumer::commands::create_consumer::PersonName;
use contracts::order::commands::CancelOrder;
use contracts::restaurant::commands::CreateRestaurant;
use contracts::restaurant::commands::create_restaurant::Address;
use integration_tests::flow::{Recorder, order_topics, short_type};
use messaging::Received;
use stack::processes::ServiceProcesses;
use stack::{World, menu, order, wait_until};
use test_support::{Client, Platform};
use uuid::Uuid;

const INSTANCES: usize = 3;
const ORDERS: usize = 1_000;
const CONSUMERS: usize = 10;

/// What an order's input dictates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Expected {
    Approved,
    RejectedConsumer,
    RejectedCard,
    RejectedMenu,
    Cancelled,
}

impl Expected {
    fn of(index: usize) -> Self {
        match index % 20 {
            0 => Expected::RejectedConsumer,
            1 => Expected::RejectedCard,
            2 => Expected::RejectedMenu,
            3 => Expected::Cancelled,
            _ => Expected::Approved,
        }
    }

    fn events(self) -> &'static [&'static str] {
        match self {
            Expected::Approved => &["OrderCreated", "OrderApproved"],
            Expected::RejectedConsumer | Expected::RejectedCard => {
                &["OrderCreated", "OrderRejected"]
            }
            Expected::RejectedMenu => &["OrderRejected"],
            Expected::Cancelled => &["OrderCreated", "OrderApproved", "OrderCancelled"],
        }
    }

    /// The events after which the order will not change again, whatever its outcome.
    fn finished(self, events: &[&str]) -> bool {
        match self {
            Expected::Cancelled => events.iter().any(|e| {
                [
                    "OrderCancelled",
                    "OrderCancellationRejected",
                    "OrderRejected",
                ]
                .contains(e)
            }),
            _ => events
                .iter()
                .any(|e| ["OrderApproved", "OrderRejected"].contains(e)),
        }
    }
}

/// The records of one key with duplicates (same `ce_id`) removed, in offset order per topic.
fn distinct(records: &[Received]) -> Vec<&Received> {
    let mut seen = HashSet::new();
    let mut sorted: Vec<&Received> = records.iter().collect();
    sorted.sort_by_key(|r| (r.origin.topic.clone(), r.origin.offset));
    sorted
        .into_iter()
        .filter(|r| seen.insert(r.message.id().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_orders_survive_killed_instances_of_every_service() -> Result<()> {
    service_kit::init_test_subscriber();
    let platform = Platform::from_env();
    let logs = std::env::temp_dir().join(format!("ftgo-under-failure-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let mut topics: Vec<&str> = order_topics();
    topics.extend(["ftgo.restaurant.events", "ftgo.consumer.events"]);
    let recorder = Recorder::start(&platform.bootstrap_servers, &topics)?;
    let client = Client::new("ftgo-under-failure")?;

    let mut services = Vec::new();
    for definition in &integration_tests::SERVICES {
        // This test is about losing nothing and doing nothing twice when instances die, not
        // about deadlines: on a loaded machine a reply can take longer than the default 30 s,
        // and the saga would (rightly) give up on it and reject the order.
        let env = vec![("FTGO_SAGA__REPLY_TIMEOUT_MS", "600000".into())];
        let mut service = ServiceProcesses::prepare(definition, &logs, env).await?;
        for index in 0..INSTANCES {
            let instance = service.spawn(index)?;
            service.instances.push(instance);
        }
        services.push(service);
    }
    for service in &services {
        for (port, _) in &service.instances {
            ServiceProcesses::wait_ready(*port).await.with_context(|| {
                format!(
                    "{} on port {port} (logs in {})",
                    service.name,
                    logs.display()
                )
            })?;
        }
    }
    eprintln!(
        "{} instances ready (logs in {})",
        services.len() * INSTANCES,
        logs.display()
    );

    // The world: a restaurant, consumers with accounts.
    let world = World {
        restaurant: Uuid::new_v4(),
        alice: Uuid::new_v4(),
        stranger: Uuid::new_v4(),
    };
    client
        .send(&CreateRestaurant {
            restaurant_id: world.restaurant,
            name: "Ajanta".into(),
            address: Address {
                street1: "1 Curry Lane".into(),
                street2: None,
                city: "Oakland".into(),
                state: "CA".into(),
                zip: "94611".into(),
            },
            menu_items: menu(),
        })
        .await?;
    let consumers: Vec<Uuid> = (0..CONSUMERS).map(|_| Uuid::new_v4()).collect();
    for (n, consumer) in consumers.iter().enumerate() {
        client
            .send(&CreateConsumer {
                consumer_id: *consumer,
                name: PersonName {
                    first_name: format!("Consumer{n}"),
                    last_name: "Load".into(),
                },
            })
            .await?;
    }
    let within = Duration::from_secs(90);
    for consumer in &consumers {
        recorder
            .wait_for(&consumer.to_string(), "AccountOpened", within)
            .await?;
    }
    for service in services
        .iter()
        .filter(|s| ["order", "kitchen"].contains(&s.name))
    {
        wait_until(within, || async {
            Ok(
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM restaurants WHERE id = $1)")
                    .bind(world.restaurant)
                    .fetch_one(service.database.pool())
                    .await?,
            )
        })
        .await
        .with_context(|| format!("the {} replica", service.name))?;
    }

    // The orders, with a kill of one instance of every service halfway.
    let mut expected: HashMap<String, Expected> = HashMap::new();
    let mut cancels: HashSet<String> = HashSet::new();
    let started = Instant::now();
    for index in 0..ORDERS {
        let kind = Expected::of(index);
        let consumer = match kind {
            Expected::RejectedConsumer => Uuid::new_v4(),
            _ => consumers[index % CONSUMERS],
        };
        let items: &[(&str, i32)] = match kind {
            Expected::RejectedCard => &[("banquet-for-20", 1)],
            Expected::RejectedMenu => &[("samosa", 1), ("no-such-dish", 1)],
            _ => &[("samosa", 2), ("chicken-vindaloo", 1)],
        };
        let create = order(&world, consumer, items);
        let id = create.order_id.to_string();
        client.send(&create).await?;
        expected.insert(id.clone(), kind);
        if kind == Expected::Cancelled {
            cancels.insert(id);
        }
        if index == ORDERS / 2 {
            for service in &mut services {
                let (_, mut victim) = service.instances.remove(0);
                victim.kill()?;
                victim.wait()?;
                eprintln!("killed {} #0 (SIGKILL) after {index} orders", service.name);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            for service in &mut services {
                let instance = service.spawn(INSTANCES)?;
                eprintln!("restarted {} on port {}", service.name, instance.0);
                service.instances.push(instance);
            }
        }
        if index % 100 == 99 {
            // About 200 orders a second: the kill lands while work is in flight everywhere.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        send_due_cancels(&client, &recorder, &mut cancels).await?;
    }
    eprintln!("{ORDERS} orders published in {:?}", started.elapsed());

    // Every order reaches its end.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        send_due_cancels(&client, &recorder, &mut cancels).await?;
        let pending: Vec<&String> = expected
            .iter()
            .filter(|(id, kind)| {
                let records = recorder.of(id);
                let events: Vec<&str> = records.iter().map(short_type).collect();
                // An approved order to be cancelled is not finished until it is.
                !kind.finished(&events)
                    || (cancels.contains(*id) && !events.contains(&"OrderRejected"))
            })
            .map(|(id, _)| id)
            .collect();
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let sample: Vec<String> = pending
                .iter()
                .take(5)
                .map(|id| {
                    let seen: Vec<String> = recorder
                        .of(id)
                        .iter()
                        .map(|r| format!("{}:{}", r.origin.topic, short_type(r)))
                        .collect();
                    format!("{id} ({:?}): {seen:?}", expected[*id])
                })
                .collect();
            bail!(
                "{} orders unfinished after 300 s; e.g. {sample:#?} (logs in {})",
                pending.len(),
                logs.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "every order finished {:?} after the first was published",
        started.elapsed()
    );
    // Late duplicates (a relay publishing again) would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut problems = Vec::new();
    let mut outcomes: HashMap<Expected, usize> = HashMap::new();
    let (mut records, mut unique) = (0usize, 0usize);
    for (id, kind) in &expected {
        let all = recorder.of(id);
        let once = distinct(&all);
        records += all.len();
        unique += once.len();
        let events: Vec<&str> = once
            .iter()
            .filter(|r| r.origin.topic == "ftgo.order.events")
            .map(|r| short_type(r))
            .collect();
        if events != kind.events() {
            problems.push(format!("{id} ({kind:?}): order events {events:?}"));
        }
        let count = |short: &str| once.iter().filter(|r| short_type(r) == short).count();
        if matches!(kind, Expected::Approved | Expected::Cancelled)
            && (count("TicketCreated") != 1 || count("CardAuthorized") != 1)
        {
            problems.push(format!(
                "{id} ({kind:?}): {} tickets, {} authorizations",
                count("TicketCreated"),
                count("CardAuthorized")
            ));
        }
        *outcomes.entry(*kind).or_default() += 1;
    }
    eprintln!(
        "outcomes: {outcomes:?}; records about the orders: {records}, of which duplicates \
         (same ce_id again): {}",
        records - unique
    );
    ensure!(
        problems.is_empty(),
        "{} orders went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}

/// Sends CancelOrder for every order to be cancelled that has been approved.
async fn send_due_cancels(
    client: &Client,
    recorder: &Recorder,
    cancels: &mut HashSet<String>,
) -> Result<()> {
    let due: Vec<String> = cancels
        .iter()
        .filter(|id| {
            recorder
                .of(id)
                .iter()
                .any(|r| short_type(r) == "OrderApproved")
        })
        .cloned()
        .collect();
    for id in due {
        client
            .send(&CancelOrder {
                order_id: id.parse()?,
                reason: Some("load test".into()),
            })
            .await?;
        cancels.remove(&id);
    }
    Ok(())
}
