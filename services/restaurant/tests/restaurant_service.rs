//! The restaurant service in-process over the real platform, on a database and a consumer group
//! of its own: a command becomes state and an event; the same message twice has one effect; a
//! second restaurant with the same id is dead-lettered with its reason; the HTTP port reports
//! readiness and metrics.

use anyhow::{Context, Result, ensure};
use contracts::restaurant::commands::create_restaurant::{Address, MenuItem, Money};
use contracts::restaurant::commands::{CreateRestaurant, ReviseMenu, revise_menu};
use contracts::restaurant::events::Event;
use contracts::{Channel, Contract};
use messaging::header;
use service_kit::Running;
use test_support::{Client, TestDatabase, records_of, unique_group};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_become_state_and_events_once_and_refusals_become_dead_letters() -> Result<()> {
    service_kit::init_test_subscriber();
    // Its group reads the topic from the beginning: no other test's service may run meanwhile.
    let _turn = test_support::one_service_at_a_time().await;
    let database = TestDatabase::create().await?;
    let settings = test_support::service_settings("restaurant", &database)?;
    let group = unique_group("restaurant-service");
    let stop = CancellationToken::new();
    let (started, running) = tokio::sync::oneshot::channel();
    let definition = restaurant_service::DEFINITION;
    definition.migrate(&settings).await?;
    let service = tokio::spawn({
        let (instance, stop) = (definition.instance().in_group(group.clone()), stop.clone());
        async move {
            definition
                .run(settings, instance, stop, Some(started))
                .await
        }
    });
    let Running { http } = running.await.context("the service did not start")?;
    let ready = reqwest::get(format!("http://{http}/health/ready")).await?;
    ensure!(ready.status() == 200, "not ready: {}", ready.text().await?);

    let client = Client::new("restaurant-test")?;
    let codec = &client.codec;
    let id = uuid::Uuid::new_v4();
    let item = |id: &str, minor| MenuItem {
        id: id.into(),
        name: format!("dish {id}"),
        price: Money {
            amount_minor: minor,
            currency: "USD".into(),
        },
    };
    let create = CreateRestaurant {
        restaurant_id: id,
        name: "Ajanta".into(),
        address: Address {
            street1: "1 Main St".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94611".into(),
        },
        menu_items: vec![item("chicken-vindaloo", 1299), item("naan", 399)],
    };
    let create_message = client.message(&create).await?;
    let topic = CreateRestaurant::TOPIC;
    client.publish(topic, &create_message).await?;
    client.publish(topic, &create_message).await?; // delivered twice: one effect
    let again = client.message(&create).await?; // a new message for the same restaurant
    client.publish(topic, &again).await?;
    let revise = ReviseMenu {
        restaurant_id: id,
        menu_items: vec![revise_menu::MenuItem {
            id: "naan".into(),
            name: "garlic naan".into(),
            price: revise_menu::Money {
                amount_minor: 449,
                currency: "USD".into(),
            },
        }],
    };
    client
        .publish(topic, &client.message(&revise).await?)
        .await?;

    let events = records_of("ftgo.restaurant.events", &id.to_string(), 2).await?;
    ensure!(events.len() == 2, "{} events", events.len());
    let created = &events[0].message;
    ensure!(created.headers.get(header::TYPE) == Some("ftgo.restaurant.events.RestaurantCreated"));
    ensure!(created.headers.get(header::CAUSATION_ID) == create_message.id());
    ensure!(created.headers.get(header::SOURCE) == Some("/ftgo/restaurant-service"));
    let decoded = codec
        .decode_value("ftgo.restaurant.events", &created.payload)
        .await?;
    let Event::RestaurantCreated(event) = Event::from_decoded(decoded)? else {
        anyhow::bail!("not RestaurantCreated");
    };
    ensure!(event.name == "Ajanta" && event.menu_items.len() == 2);
    let decoded = codec
        .decode_value("ftgo.restaurant.events", &events[1].message.payload)
        .await?;
    ensure!(
        matches!(Event::from_decoded(decoded)?, Event::MenuRevised(m) if m.menu_items.len() == 1)
    );

    let letters = records_of("ftgo.restaurant-service.dlt", &id.to_string(), 1).await?;
    ensure!(letters.len() == 1, "{} dead letters", letters.len());
    let letter = &letters[0].message;
    ensure!(letter.id() == again.id());
    ensure!(letter.headers.get(header::dead_letter::REASON) == Some("restaurant-exists"));
    ensure!(letter.headers.get(header::dead_letter::GROUP) == Some(group.as_str()));

    let (version, items): (i32, i64) = sqlx::query_as(
        "SELECT menu_version, (SELECT count(*) FROM menu_items WHERE restaurant_id = $1)
         FROM restaurants WHERE id = $1",
    )
    .bind(id)
    .fetch_one(database.pool())
    .await?;
    ensure!(
        version == 2 && items == 1,
        "version {version}, {items} items"
    );
    // The group starts at the topic's beginning, so earlier runs' commands may count too.
    let metrics = reqwest::get(format!("http://{http}/metrics"))
        .await?
        .text()
        .await?;
    let refusals: u64 = metrics
        .lines()
        .find(|l| l.contains(r#"outcome="restaurant-exists"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no refusal counted:\n{metrics}"))?;
    ensure!(refusals >= 1);
    stop.cancel();
    service.await??;
    Ok(())
}

/// The relay's leader forgets handled messages past the inbox's retention, on its schedule,
/// and exports how many it remembers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_expires_the_inbox_past_its_retention() -> Result<()> {
    service_kit::init_test_subscriber();
    let _turn = test_support::one_service_at_a_time().await;
    let service = test_support::TestService::start_configured(
        &restaurant_service::DEFINITION,
        unique_group("restaurant-service"),
        |figment| {
            figment
                .merge(("inbox.retention_secs", 60))
                .merge(("inbox.expire_every_secs", 1))
        },
    )
    .await?;
    let pool = service.database.pool();
    sqlx::query(
        "INSERT INTO inbox (consumer_group, message_id, handled_at) VALUES
             ('g', 'old-1', now() - interval '2 minutes'),
             ('g', 'old-2', now() - interval '1 day'),
             ('g', 'recent', now() - interval '10 seconds')",
    )
    .execute(pool)
    .await?;
    test_support::wait_until("the old entries expire", || async {
        let left: Vec<String> = sqlx::query_scalar("SELECT message_id FROM inbox ORDER BY 1")
            .fetch_all(pool)
            .await?;
        Ok(left == ["recent"])
    })
    .await?;
    test_support::wait_until("ftgo_inbox_rows reads 1", || async {
        Ok(service
            .metrics()
            .await?
            .lines()
            .any(|l| l == "ftgo_inbox_rows 1"))
    })
    .await?;
    service.stop().await
}

/// Nothing is dropped without a trace: a different message that reuses a handled message's id
/// is dead-lettered as `id-conflict` (a true redelivery still has no effect and no letter), a
/// command keyed otherwise than by its restaurant id as `key-mismatch`, and a menu with an item
/// twice as `invalid-content`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_a_wrong_key_and_an_item_twice_are_dead_lettered() -> Result<()> {
    service_kit::init_test_subscriber();
    let _turn = test_support::one_service_at_a_time().await;
    let service = test_support::TestService::start(&restaurant_service::DEFINITION).await?;
    let client = Client::new("restaurant-test")?;
    let restaurant = |id: uuid::Uuid, name: &str| CreateRestaurant {
        restaurant_id: id,
        name: name.into(),
        address: Address {
            street1: "1 Main St".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94611".into(),
        },
        menu_items: vec![MenuItem {
            id: "naan".into(),
            name: "naan".into(),
            price: Money {
                amount_minor: 399,
                currency: "USD".into(),
            },
        }],
    };
    let (first, reused, wrong) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let topic = CreateRestaurant::TOPIC;
    let original = client.message(&restaurant(first, "First")).await?;
    client.publish(topic, &original).await?;
    service.handled(&original).await?;
    let id = original.id().context("an id")?.to_owned();
    let impostor = client
        .message(&restaurant(reused, "Impostor"))
        .await?
        .with_header(header::ID, id.clone());
    client.publish(topic, &impostor).await?;
    client.publish(topic, &original).await?; // a true redelivery: no letter
    let mut miskeyed = client.message(&restaurant(wrong, "Miskeyed")).await?;
    let wrong_key = format!("not-{wrong}");
    miskeyed.key = Some(wrong_key.clone());
    client.publish(topic, &miskeyed).await?;
    // A menu with an item twice can never be stored: refused for good at once, not retried
    // against the primary key until the retries run out.
    let twice = uuid::Uuid::new_v4();
    let mut doubled = restaurant(twice, "Doubled");
    doubled.menu_items.push(doubled.menu_items[0].clone());
    client
        .publish(topic, &client.message(&doubled).await?)
        .await?;

    let letters = records_of("ftgo.restaurant-service.dlt", &reused.to_string(), 1).await?;
    let letter = &letters[0].message;
    ensure!(
        letter.id() == Some(id.as_str())
            && letter.headers.get(header::dead_letter::REASON) == Some("id-conflict"),
        "{:?}",
        letter.headers
    );
    let letters = records_of("ftgo.restaurant-service.dlt", &wrong_key, 1).await?;
    let letter = &letters[0].message;
    ensure!(
        letter.headers.get(header::dead_letter::REASON) == Some("key-mismatch"),
        "{:?}",
        letter.headers
    );
    let letters = records_of("ftgo.restaurant-service.dlt", &twice.to_string(), 1).await?;
    let letter = &letters[0].message;
    ensure!(
        letter.headers.get(header::dead_letter::REASON) == Some("invalid-content"),
        "{:?}",
        letter.headers
    );
    test_support::settle().await;
    let original_letters = records_of("ftgo.restaurant-service.dlt", &first.to_string(), 0).await?;
    ensure!(
        original_letters.is_empty(),
        "the redelivery was dead-lettered"
    );
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM restaurants ORDER BY name")
        .fetch_all(service.database.pool())
        .await?;
    ensure!(names == ["First"], "{names:?}");
    service.stop().await
}
