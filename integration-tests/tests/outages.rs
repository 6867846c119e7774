//! Outages are waited out, not dead-lettered: a service instance that starts while the schema
//! registry is down, and one whose database goes down, keep a good command waiting in its
//! partition for as long as the outage lasts (readiness 503 naming the dependency, the
//! `ftgo_waiting_on_dependency` gauge), then handle it once, with no dead letter. A test binary
//! of its own: it stops the local platform's registry and PostgreSQL.

mod outbox_common;

use std::time::Duration;

use anyhow::{Result, ensure};
use contracts::Contract;
use contracts::restaurant::commands::CreateRestaurant;
use contracts::restaurant::commands::create_restaurant::{Address, MenuItem, Money};
use outbox_common::local;
use test_support::{Client, TestService, records_of, wait_until};

fn restaurant(id: uuid::Uuid) -> CreateRestaurant {
    CreateRestaurant {
        restaurant_id: id,
        name: format!("outage {id}"),
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
    }
}

async fn readiness(service: &TestService) -> Result<(u16, String)> {
    let response = reqwest::get(format!("http://{}/health/ready", service.http)).await?;
    Ok((response.status().as_u16(), response.text().await?))
}

async fn created(service: &TestService, id: uuid::Uuid) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM restaurants WHERE id = $1)")
            .bind(id)
            .fetch_one(service.database.pool())
            .await?,
    )
}

/// While `dependency` is down: the service says so, and keeps the command waiting.
async fn waits_for(service: &TestService, dependency: &str, id: uuid::Uuid) -> Result<()> {
    wait_until(&format!("readiness names {dependency}"), || async {
        let (status, body) = readiness(service).await?;
        Ok(status == 503 && body.contains(dependency))
    })
    .await?;
    let gauge = format!(r#"ftgo_waiting_on_dependency{{dependency="{dependency}"}} 1"#);
    ensure!(
        service.metrics().await?.lines().any(|l| l == gauge),
        "no {gauge} in the metrics"
    );
    // Longer than the retry policy's bounded tries (about 3 s) took before.
    tokio::time::sleep(Duration::from_secs(8)).await;
    ensure!(
        !created(service, id).await.unwrap_or(false),
        "handled while {dependency} was down"
    );
    Ok(())
}

/// After the outage: handled once, ready again, no dead letter.
async fn handled_after(service: &TestService, id: uuid::Uuid) -> Result<()> {
    wait_until("the command is handled", || async {
        Ok(created(service, id).await.unwrap_or(false))
    })
    .await?;
    wait_until("ready again", || async {
        Ok(readiness(service).await?.0 == 200)
    })
    .await?;
    let events = records_of("ftgo.restaurant.events", &id.to_string(), 1).await?;
    ensure!(events.len() == 1, "{} events", events.len());
    test_support::settle().await;
    let letters = records_of("ftgo.restaurant-service.dlt", &id.to_string(), 0).await?;
    ensure!(
        letters.is_empty(),
        "dead-lettered during the outage: {:?}",
        letters[0].message.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_and_a_database_outage_are_waited_out_not_dead_lettered() -> Result<()> {
    service_kit::init_test_subscriber();
    let mut service = TestService::start(&restaurant_service::DEFINITION).await?;
    let client = Client::new("outage-test")?;

    // The registry: a new instance (no schema cached) starts while it is down.
    let during_registry = uuid::Uuid::new_v4();
    let command = client.message(&restaurant(during_registry)).await?;
    service.pause().await?;
    local("down", &["registry"])?;
    let outage = async {
        service.resume().await?;
        client.publish(CreateRestaurant::TOPIC, &command).await?;
        waits_for(&service, "schema-registry", during_registry).await
    }
    .await;
    local("up", &["--quiet"])?;
    outage?;
    handled_after(&service, during_registry).await?;

    // The database goes down under a running instance.
    let during_database = uuid::Uuid::new_v4();
    let command = client.message(&restaurant(during_database)).await?;
    local("down", &["postgres"])?;
    let outage = async {
        client.publish(CreateRestaurant::TOPIC, &command).await?;
        waits_for(&service, "database", during_database).await
    }
    .await;
    local("up", &["--quiet"])?;
    outage?;
    handled_after(&service, during_database).await?;
    service.stop().await
}
