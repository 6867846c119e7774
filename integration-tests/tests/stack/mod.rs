#![allow(dead_code)] // each test binary uses part of it
//! The whole FTGO back end in-process for end-to-end tests: every service on a database of its
//! own, in consumer groups of its own that start at the current end of the shared topics (so
//! earlier runs' records are not theirs), a client and a recorder of every order topic.
//!
//! Two stacks must not run at once: both would handle every new record of the shared topics
//! (each is a group of its own) and answer each other's sagas. Each test binary runs one.

pub mod processes;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use contracts::consumer::commands::CreateConsumer;
use contracts::consumer::commands::create_consumer::PersonName;
use contracts::order::commands::CreateOrder;
use contracts::order::commands::create_order::{Address, OrderLineItem};
use contracts::restaurant::commands::CreateRestaurant;
use contracts::restaurant::commands::create_restaurant::{
    Address as RestaurantAddress, MenuItem, Money,
};
use integration_tests::flow::{Recorder, order_topics};
use test_support::{Client, Platform, TestService, unique_group};
use uuid::Uuid;

/// Starts service `name` in a fresh group starting at the topics' end, with `configure`d
/// settings.
pub async fn start_service(
    name: &str,
    configure: impl FnOnce(figment::Figment) -> figment::Figment,
) -> Result<TestService> {
    let definition = integration_tests::service(name)?;
    let group = unique_group(&definition.instance().group);
    TestService::start_configured(&definition, group, configure).await
}

/// The running back end.
pub struct Stack {
    pub services: Vec<TestService>,
    pub client: Client,
    pub recorder: Recorder,
}

impl Stack {
    /// Starts `names` (each with the settings `configure` gives it) and the recorder.
    pub async fn start(
        names: &[&str],
        configure: impl Fn(&str, figment::Figment) -> figment::Figment,
    ) -> Result<Self> {
        let platform = Platform::from_env();
        let mut topics: Vec<&str> = order_topics();
        topics.extend(["ftgo.restaurant.events", "ftgo.consumer.events"]);
        let recorder = Recorder::start(&platform.bootstrap_servers, &topics)?;
        let mut services = Vec::new();
        for name in names {
            services.push(start_service(name, |f| configure(name, f)).await?);
        }
        Ok(Self {
            services,
            client: Client::new("ftgo-e2e")?,
            recorder,
        })
    }
}

/// Demo data of one test run: fresh ids.
#[derive(Debug, Clone)]
pub struct World {
    pub restaurant: Uuid,
    pub alice: Uuid,
    /// A consumer never registered.
    pub stranger: Uuid,
}

/// The restaurant's menu: samosa 4.50, vindaloo 12.95, banquet 650.00, feast 1,300.00 USD.
pub fn menu() -> Vec<MenuItem> {
    let item = |id: &str, name: &str, minor| MenuItem {
        id: id.into(),
        name: name.into(),
        price: Money {
            amount_minor: minor,
            currency: "USD".into(),
        },
    };
    vec![
        item("samosa", "Samosa", 450),
        item("chicken-vindaloo", "Chicken Vindaloo", 1_295),
        item("banquet-for-20", "Banquet for twenty", 65_000),
        item("feast-for-40", "Feast for forty", 130_000),
    ]
}

/// Registers a restaurant and a consumer through commands, and waits until the services that
/// keep replicas have them: the order and kitchen services' menus (their tables, read here
/// directly), accounting's account (its AccountOpened).
pub async fn seed(stack: &Stack) -> Result<World> {
    seed_world(
        stack,
        World {
            restaurant: Uuid::new_v4(),
            alice: Uuid::new_v4(),
            stranger: Uuid::new_v4(),
        },
    )
    .await
}

/// As [`seed`], with the ids of `world`.
pub async fn seed_world(stack: &Stack, world: World) -> Result<World> {
    stack
        .client
        .send(&CreateRestaurant {
            restaurant_id: world.restaurant,
            name: "Ajanta".into(),
            address: RestaurantAddress {
                street1: "1 Curry Lane".into(),
                street2: None,
                city: "Oakland".into(),
                state: "CA".into(),
                zip: "94611".into(),
            },
            menu_items: menu(),
        })
        .await?;
    stack
        .client
        .send(&CreateConsumer {
            consumer_id: world.alice,
            name: PersonName {
                first_name: "Alice".into(),
                last_name: "Ray".into(),
            },
        })
        .await?;
    let within = Duration::from_secs(60);
    stack
        .recorder
        .wait_for(&world.restaurant.to_string(), "RestaurantCreated", within)
        .await?;
    if stack.services.iter().any(|s| s.name == "accounting") {
        stack
            .recorder
            .wait_for(&world.alice.to_string(), "AccountOpened", within)
            .await?;
    }
    for service in stack
        .services
        .iter()
        .filter(|s| ["order", "kitchen"].contains(&s.name.as_str()))
    {
        wait_until(within, || async {
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM restaurants WHERE id = $1)")
                    .bind(world.restaurant)
                    .fetch_one(service.database.pool())
                    .await?;
            Ok(known)
        })
        .await
        .with_context(|| format!("the {} service's replica", service.name))?;
    }
    Ok(world)
}

/// Polls `check` until it says yes.
pub async fn wait_until<F, Fut>(within: Duration, check: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An order of `items` (`(menu item, quantity)`) by `consumer` at the world's restaurant.
pub fn order(world: &World, consumer: Uuid, items: &[(&str, i32)]) -> CreateOrder {
    CreateOrder {
        order_id: Uuid::new_v4(),
        consumer_id: consumer,
        restaurant_id: world.restaurant,
        line_items: items
            .iter()
            .map(|(item, quantity)| OrderLineItem {
                menu_item_id: (*item).into(),
                quantity: *quantity,
            })
            .collect(),
        delivery_address: Address {
            street1: "9 Elm St".into(),
            street2: Some("Apt 3".into()),
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94610".into(),
        },
        delivery_time: 1_900_000_000_000,
    }
}
