//! Switching a running service's outbox relay (`FTGO_RELAY`) from polling to log tailing and
//! back, the way docs/operations.md ("Switching a service's relay") tells an operator to:
//! the instance is redeployed with the other setting while commands keep coming. Every event is
//! published, each restaurant's in the order its commands were handled (once duplicates, which
//! a switch may bring and consumers drop by `ce_id`, are set aside); the tailing relay did
//! publish (its slot streamed), and the slot is gone once the service polls again.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use contracts::Channel as _;
use contracts::restaurant::commands::create_restaurant::{Address, MenuItem, Money};
use contracts::restaurant::commands::{CreateRestaurant, ReviseMenu, revise_menu};
use contracts::restaurant::events::Event;
use messaging::header;
use service_kit::relay;
use test_support::{Client, TestService, records_of};
use uuid::Uuid;

const RESTAURANTS: usize = 8;
/// Commands per restaurant: CreateRestaurant, then ReviseMenu with the round as its price.
const ROUNDS: usize = 40;
const EVENTS: &str = "ftgo.restaurant.events";

fn create(id: Uuid) -> CreateRestaurant {
    CreateRestaurant {
        restaurant_id: id,
        name: "Switchyard".into(),
        address: Address {
            street1: "1 Relay Rd".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94607".into(),
        },
        menu_items: vec![MenuItem {
            id: "dish".into(),
            name: "dish".into(),
            price: Money {
                amount_minor: 0,
                currency: "USD".into(),
            },
        }],
    }
}

fn revise(id: Uuid, round: usize) -> ReviseMenu {
    ReviseMenu {
        restaurant_id: id,
        menu_items: vec![revise_menu::MenuItem {
            id: "dish".into(),
            name: "dish".into(),
            price: revise_menu::Money {
                amount_minor: round as i64,
                currency: "USD".into(),
            },
        }],
    }
}

/// The round an event is of: 0 for RestaurantCreated, a MenuRevised's price otherwise.
fn round_of(event: &Event) -> Result<usize> {
    Ok(match event {
        Event::RestaurantCreated(_) => 0,
        Event::MenuRevised(revised) => {
            let price = revised
                .menu_items
                .first()
                .context("no item")?
                .price
                .amount_minor;
            usize::try_from(price)?
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_switches_relays_while_commands_keep_coming_and_loses_or_reorders_nothing()
-> Result<()> {
    service_kit::init_test_subscriber();
    let _turn = test_support::one_service_at_a_time().await;
    let mut service = TestService::start(&restaurant_service::DEFINITION).await?;
    let slot = relay::slot(&service.group);
    let client = Client::new("relay-switch-test")?;
    let restaurants: Vec<Uuid> = (0..RESTAURANTS).map(|_| Uuid::new_v4()).collect();

    // The commands, a round at a time, while the instance is redeployed twice.
    let sending = tokio::spawn({
        let restaurants = restaurants.clone();
        async move {
            let client = Client::new("relay-switch-sender")?;
            for round in 0..ROUNDS {
                for &id in &restaurants {
                    if round == 0 {
                        client.send(&create(id)).await?;
                    } else {
                        client.send(&revise(id, round)).await?;
                    }
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            anyhow::Ok(())
        }
    });

    tokio::time::sleep(Duration::from_millis(700)).await;
    service.pause().await?;
    service
        .resume_with(|f| f.merge(("relay", "tailing")))
        .await?;
    service.database.wait_until_streaming(&slot).await?;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    service.pause().await?;
    service
        .resume_with(|f| f.merge(("relay", "polling")))
        .await?;
    sending.await??;

    for &id in &restaurants {
        let key = id.to_string();
        let records = records_of(EVENTS, &key, ROUNDS).await?;
        let mut seen = HashSet::new();
        let mut rounds = Vec::new();
        for record in &records {
            let ce_id = record.message.id().context("an event without ce_id")?;
            if !seen.insert(ce_id.to_owned()) {
                continue; // a duplicate: published again by the relay that took over
            }
            let decoded = client
                .codec
                .decode_value(EVENTS, &record.message.payload)
                .await?;
            rounds.push(round_of(&Event::from_decoded(decoded)?)?);
        }
        let expected: Vec<usize> = (0..ROUNDS).collect();
        ensure!(
            rounds == expected,
            "restaurant {key}: events of rounds {rounds:?} ({} records)",
            records.len()
        );
        ensure!(
            records
                .iter()
                .all(|r| r.message.headers.get(header::SOURCE) == Some("/ftgo/restaurant-service"))
        );
    }
    let relayed = || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(service.database.pool())
            .await?;
        anyhow::Ok(left)
    };
    test_support::eventually("an empty outbox", || async {
        Ok((relayed().await? == 0).then_some(()))
    })
    .await?;
    // Polling again: the leader dropped the slot, which would otherwise keep WAL for ever.
    let slot_left: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)")
            .bind(&slot)
            .fetch_one(service.database.pool())
            .await?;
    ensure!(!slot_left, "the slot {slot} is still there");
    service.stop().await
}
