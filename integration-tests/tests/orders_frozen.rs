//! A frozen instance is masked by its peer: every service runs as processes of its own, the
//! kitchen with two instances, and the one that leads the kitchen's outbox relay (the first
//! started) is frozen with SIGSTOP, as a long GC pause or a stalled VM would freeze it, for 45 s
//! while orders are placed. With the sagas' default 30 s reply timeout, every order must be
//! approved, not rejected: the other instance takes over the frozen one's partitions after the
//! group's session timeout (10 s) and its relay after the leadership timeout (5 s). The frozen
//! instance is then woken; nothing it does afterwards may give an order a second ticket.

mod stack;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use contracts::consumer::commands::CreateConsumer;
use contracts::consumer::commands::create_consumer::PersonName;
use contracts::restaurant::commands::CreateRestaurant;
use contracts::restaurant::commands::create_restaurant::Address;
use integration_tests::flow::{Recorder, order_topics, short_type};
use stack::processes::ServiceProcesses;
use stack::{World, menu, order, wait_until};
use test_support::{Client, Platform};
use uuid::Uuid;

const ORDERS: usize = 40;
const FROZEN: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_while_the_leading_kitchen_instance_is_frozen_are_approved() -> Result<()> {
    service_kit::init_test_subscriber();
    let platform = Platform::from_env();
    let logs = std::env::temp_dir().join(format!("ftgo-frozen-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let mut topics: Vec<&str> = order_topics();
    topics.extend(["ftgo.restaurant.events", "ftgo.consumer.events"]);
    let recorder = Recorder::start(&platform.bootstrap_servers, &topics)?;
    let client = Client::new("ftgo-frozen")?;

    let mut services = Vec::new();
    for definition in &integration_tests::SERVICES {
        let mut service = ServiceProcesses::prepare(definition, &logs, Vec::new()).await?;
        // Two kitchens share its partitions; one at a time: the first instance of a service
        // takes its relay's leadership.
        let instances = if definition.name == "kitchen" { 2 } else { 1 };
        for index in 0..instances {
            let (port, child) = service.spawn(index)?;
            ServiceProcesses::wait_ready(port).await?;
            service.instances.push((port, child));
        }
        services.push(service);
    }

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
    client
        .send(&CreateConsumer {
            consumer_id: world.alice,
            name: PersonName {
                first_name: "Alice".into(),
                last_name: "Frozen".into(),
            },
        })
        .await?;
    let within = Duration::from_secs(90);
    recorder
        .wait_for(&world.alice.to_string(), "AccountOpened", within)
        .await?;
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
        .await?;
    }

    let kitchen = services
        .iter()
        .find(|s| s.name == "kitchen")
        .expect("a kitchen");
    let frozen = kitchen.instances[0].1.id();
    integration_tests::signal(frozen, "STOP")?;
    let froze = Instant::now();
    let mut orders = HashMap::new();
    for _ in 0..ORDERS {
        let create = order(&world, world.alice, &[("samosa", 1)]);
        orders.insert(create.order_id.to_string(), ());
        client.send(&create).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(FROZEN.saturating_sub(froze.elapsed())).await;
    integration_tests::signal(frozen, "CONT")?;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pending = orders
            .keys()
            .filter(|id| {
                !recorder
                    .of(id)
                    .iter()
                    .any(|r| ["OrderApproved", "OrderRejected"].contains(&short_type(r)))
            })
            .count();
        if pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{pending} orders unfinished 120 s after the kitchen woke (logs in {})",
                logs.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Whatever the woken instance still does must not add a ticket.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut rejected = Vec::new();
    for id in orders.keys() {
        let records = recorder.of(id);
        if records.iter().any(|r| short_type(r) == "OrderRejected") {
            rejected.push(id.clone());
        }
        let tickets: std::collections::HashSet<&str> = records
            .iter()
            .filter(|r| short_type(r) == "TicketCreated")
            .filter_map(|r| r.message.id())
            .collect();
        ensure!(tickets.len() == 1, "{id}: {} tickets", tickets.len());
    }
    ensure!(
        rejected.is_empty(),
        "{} of {ORDERS} orders placed while a kitchen instance was frozen were rejected, e.g. {} \
         (logs in {})",
        rejected.len(),
        rejected[0],
        logs.display()
    );
    eprintln!(
        "{ORDERS} orders placed while the leading kitchen instance was frozen for {FROZEN:?}: all \
         approved, one ticket each"
    );
    Ok(())
}
