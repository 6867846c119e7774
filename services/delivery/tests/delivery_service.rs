//! The delivery service in-process over the real platform, each test on a database and a
//! consumer group of its own. The tests publish the order and ticket events themselves (no
//! order or kitchen service runs) with fresh order ids, and read back the delivery events of
//! those ids: the group starts at the beginning of the shared topics, so earlier runs' records
//! are there too, and scheduled again in the test's database.
//!
//! The tests take turns: every delivery service consumes every event of the shared topics, so
//! two tests' services running at once would both publish deliveries for each test's orders.
//! The courier rule is tested apart, on a database alone, where the deliveries are known.

use anyhow::{Result, bail, ensure};
use contracts::delivery::commands::{DropOffDelivery, PickUpDelivery};
use contracts::delivery::events::Event as DeliveryEvent;
use contracts::order::events::{OrderApproved, OrderCancelled, OrderCreated, order_created};
use contracts::ticket::events::{
    TicketAccepted, TicketCancelled, TicketCreated, TicketPreparationStarted, TicketReadyForPickup,
    ticket_created,
};
use contracts::{Channel, Contract};
use messaging::{Message, Received, header};
use test_support::{TestDatabase, eventually, now_ms, settle};
use uuid::Uuid;

const DELIVERY_EVENTS: &str = "ftgo.delivery.events";
const DEAD_LETTERS: &str = "ftgo.delivery-service.dlt";

/// The crew the migration seeds.
const COURIERS: [&str; 5] = [
    "c0000000-0000-4000-8000-000000000001",
    "c0000000-0000-4000-8000-000000000002",
    "c0000000-0000-4000-8000-000000000003",
    "c0000000-0000-4000-8000-000000000004",
    "c0000000-0000-4000-8000-000000000005",
];

test_support::service_under_test!(
    /// A delivery service of the test's own, and what the test talks to it with.
    Delivery,
    delivery_service::DEFINITION
);

impl Delivery {
    async fn publish<T: Contract>(&self, record: &T) -> Result<Message> {
        self.client.send(record).await
    }

    /// The order's delivery events, once there are `count`.
    async fn events(&self, order: Uuid, count: usize) -> Result<Vec<DeliveryEvent>> {
        let mut events = Vec::new();
        for record in records_of(DELIVERY_EVENTS, order, count).await? {
            let decoded = self
                .client
                .codec
                .decode_value(DELIVERY_EVENTS, &record.message.payload)
                .await?;
            events.push(DeliveryEvent::from_decoded(decoded)?);
        }
        Ok(events)
    }

    /// The order's delivery: its state and courier.
    async fn delivery(&self, order: Uuid) -> Result<Option<(String, Option<Uuid>)>> {
        Ok(
            sqlx::query_as("SELECT state, courier_id FROM deliveries WHERE order_id = $1")
                .bind(order)
                .fetch_optional(self.service.database.pool())
                .await?,
        )
    }

    /// Waits until `table` has a row of the order (the event that writes it was handled).
    async fn until_recorded(&self, table: &str, order: Uuid) -> Result<()> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE order_id = $1)");
        eventually(&format!("{order} in {table}"), || async {
            let found: bool = sqlx::query_scalar(&sql)
                .bind(order)
                .fetch_one(self.service.database.pool())
                .await?;
            Ok(found.then_some(()))
        })
        .await
    }
}

fn order_created(order: Uuid, restaurant: Uuid) -> OrderCreated {
    let money = |minor| order_created::Money {
        amount_minor: minor,
        currency: "USD".into(),
    };
    OrderCreated {
        order_id: order,
        consumer_id: Uuid::new_v4(),
        restaurant_id: restaurant,
        line_items: vec![order_created::PricedLineItem {
            menu_item_id: "vindaloo".into(),
            name: "Chicken Vindaloo".into(),
            quantity: 2,
            price: money(1299),
        }],
        order_total: money(2598),
        delivery_address: order_created::Address {
            street1: "9 Delivery Way".into(),
            street2: Some("Apt 3".into()),
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94611".into(),
        },
        delivery_time: now_ms() + 3_600_000,
        created_at: now_ms(),
    }
}

fn ticket_accepted(order: Uuid, restaurant: Uuid, ready_by: i64) -> TicketAccepted {
    TicketAccepted {
        order_id: order,
        restaurant_id: restaurant,
        ready_by,
        accepted_at: now_ms(),
    }
}

/// Checks the pair of events that schedule a delivery, and returns the courier.
fn scheduled_and_assigned(
    events: &[DeliveryEvent],
    order: Uuid,
    restaurant: Uuid,
    ready_by: i64,
) -> Result<Uuid> {
    let [
        DeliveryEvent::DeliveryScheduled(scheduled),
        DeliveryEvent::CourierAssigned(assigned),
    ] = events
    else {
        bail!("not scheduled then assigned: {events:?}");
    };
    ensure!(scheduled.order_id == order && scheduled.restaurant_id == restaurant);
    ensure!(scheduled.ready_by == Some(ready_by), "{scheduled:?}");
    ensure!(scheduled.delivery_address.street1 == "9 Delivery Way");
    ensure!(scheduled.delivery_address.street2.as_deref() == Some("Apt 3"));
    ensure!(assigned.order_id == order);
    ensure!(
        COURIERS.contains(&assigned.courier_id.to_string().as_str()),
        "{assigned:?}"
    );
    Ok(assigned.courier_id)
}

/// The records of `topic` keyed by `order`, waiting until there are at least `count`.
async fn records_of(topic: &str, order: Uuid, count: usize) -> Result<Vec<Received>> {
    test_support::records_of(topic, &order.to_string(), count).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_accepted_after_its_order_schedules_a_delivery_with_a_courier() -> Result<()> {
    let delivery = Delivery::start().await?;
    let (order, restaurant) = (Uuid::new_v4(), Uuid::new_v4());
    let ready_by = now_ms() + 1_200_000;
    delivery.publish(&order_created(order, restaurant)).await?;
    // Events delivery has no use for: acknowledged, no effect, no dead letter.
    delivery
        .publish(&OrderApproved {
            order_id: order,
            restaurant_id: restaurant,
            approved_at: now_ms(),
        })
        .await?;
    delivery
        .publish(&TicketCreated {
            order_id: order,
            restaurant_id: restaurant,
            line_items: vec![ticket_created::TicketLineItem {
                menu_item_id: "vindaloo".into(),
                name: "Chicken Vindaloo".into(),
                quantity: 2,
            }],
            created_at: now_ms(),
        })
        .await?;
    delivery.until_recorded("orders", order).await?;
    delivery
        .publish(&ticket_accepted(order, restaurant, ready_by))
        .await?;
    delivery
        .publish(&TicketPreparationStarted {
            order_id: order,
            restaurant_id: restaurant,
            started_at: now_ms(),
        })
        .await?;

    let events = delivery.events(order, 2).await?;
    let courier = scheduled_and_assigned(&events, order, restaurant, ready_by)?;
    ensure!(delivery.delivery(order).await? == Some(("SCHEDULED".into(), Some(courier))));
    settle().await;
    ensure!(delivery.events(order, 2).await?.len() == 2);
    ensure!(records_of(DEAD_LETTERS, order, 0).await?.is_empty());
    delivery.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_accepted_before_its_order_schedules_once_the_order_arrives() -> Result<()> {
    let delivery = Delivery::start().await?;
    let (order, restaurant) = (Uuid::new_v4(), Uuid::new_v4());
    let ready_by = now_ms() + 900_000;
    delivery
        .publish(&ticket_accepted(order, restaurant, ready_by))
        .await?;
    delivery.until_recorded("accepted_tickets", order).await?;
    ensure!(
        delivery.delivery(order).await?.is_none(),
        "scheduled with no address"
    );

    delivery.publish(&order_created(order, restaurant)).await?;
    let events = delivery.events(order, 2).await?;
    let courier = scheduled_and_assigned(&events, order, restaurant, ready_by)?;
    ensure!(delivery.delivery(order).await? == Some(("SCHEDULED".into(), Some(courier))));
    delivery.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ticket_accepted_schedules_no_second_delivery() -> Result<()> {
    let delivery = Delivery::start().await?;
    let (order, restaurant) = (Uuid::new_v4(), Uuid::new_v4());
    let ready_by = now_ms() + 600_000;
    delivery.publish(&order_created(order, restaurant)).await?;
    let accepted = delivery
        .publish(&ticket_accepted(order, restaurant, ready_by))
        .await?;
    delivery
        .client
        .publish(TicketAccepted::TOPIC, &accepted)
        .await?; // delivered twice
    delivery
        .publish(&ticket_accepted(order, restaurant, ready_by + 60_000))
        .await?; // sent again, as a new event

    let events = delivery.events(order, 2).await?;
    scheduled_and_assigned(&events, order, restaurant, ready_by)?;
    settle().await;
    let events = delivery.events(order, 2).await?;
    ensure!(events.len() == 2, "{events:?}");
    delivery.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_or_ticket_cancels_its_delivery_or_keeps_it_from_being_scheduled()
-> Result<()> {
    let delivery = Delivery::start().await?;
    let restaurant = Uuid::new_v4();
    let ready_by = now_ms() + 600_000;
    let order_cancelled = |order_id| OrderCancelled {
        order_id,
        reason: Some("changed my mind".into()),
        cancelled_at: now_ms(),
    };
    let ticket_cancelled = |order_id| TicketCancelled {
        order_id,
        restaurant_id: restaurant,
        cancelled_at: now_ms(),
    };

    // Scheduled, then the order is cancelled: so is the delivery; the ticket's cancellation
    // that follows changes nothing more.
    let by_order = Uuid::new_v4();
    delivery
        .publish(&order_created(by_order, restaurant))
        .await?;
    delivery
        .publish(&ticket_accepted(by_order, restaurant, ready_by))
        .await?;
    // Scheduled, then the ticket is cancelled.
    let by_ticket = Uuid::new_v4();
    delivery
        .publish(&order_created(by_ticket, restaurant))
        .await?;
    delivery
        .publish(&ticket_accepted(by_ticket, restaurant, ready_by))
        .await?;
    delivery.events(by_order, 2).await?;
    delivery.events(by_ticket, 2).await?;
    delivery.publish(&order_cancelled(by_order)).await?;
    delivery.publish(&ticket_cancelled(by_order)).await?;
    delivery.publish(&ticket_cancelled(by_ticket)).await?;

    // Cancelled before the kitchen's acceptance arrives (on the other topic): never scheduled.
    let early = Uuid::new_v4();
    delivery.publish(&order_created(early, restaurant)).await?;
    delivery.publish(&order_cancelled(early)).await?;
    delivery.until_recorded("cancelled_orders", early).await?;
    delivery
        .publish(&ticket_accepted(early, restaurant, ready_by))
        .await?;

    for order in [by_order, by_ticket] {
        let events = delivery.events(order, 3).await?;
        let [
            _,
            DeliveryEvent::CourierAssigned(assigned),
            DeliveryEvent::DeliveryCancelled(c),
        ] = &events[..]
        else {
            bail!("{order}: {events:?}");
        };
        ensure!(c.order_id == order);
        // The courier is free again: a cancelled delivery no longer counts as theirs.
        ensure!(
            delivery.delivery(order).await?
                == Some(("CANCELLED".into(), Some(assigned.courier_id)))
        );
    }
    delivery.until_recorded("accepted_tickets", early).await?;
    settle().await;
    ensure!(
        delivery.events(by_order, 3).await?.len() == 3,
        "cancelled twice"
    );
    ensure!(delivery.events(early, 0).await?.is_empty());
    ensure!(delivery.delivery(early).await?.is_none());
    delivery.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_courier_picks_up_once_the_food_is_ready_and_drops_off_what_they_picked_up() -> Result<()>
{
    let delivery = Delivery::start().await?;
    let (order, restaurant) = (Uuid::new_v4(), Uuid::new_v4());
    let ready_by = now_ms() + 600_000;
    delivery.publish(&order_created(order, restaurant)).await?;
    delivery
        .publish(&ticket_accepted(order, restaurant, ready_by))
        .await?;
    let courier = scheduled_and_assigned(
        &delivery.events(order, 2).await?,
        order,
        restaurant,
        ready_by,
    )?;
    let other = COURIERS
        .iter()
        .map(|c| c.parse::<Uuid>())
        .find(|c| c.as_ref().ok() != Some(&courier))
        .expect("five couriers")?;
    let pick_up = |courier_id| PickUpDelivery {
        order_id: order,
        courier_id,
    };
    let drop_off = |courier_id| DropOffDelivery {
        order_id: order,
        courier_id,
    };

    // Out of turn: the kitchen has not said the food is ready; nothing picked up to drop off.
    let too_early = delivery.publish(&pick_up(courier)).await?;
    let not_picked_up = delivery.publish(&drop_off(courier)).await?;
    delivery.dead_letters(order, 2).await?;
    delivery
        .publish(&TicketReadyForPickup {
            order_id: order,
            restaurant_id: restaurant,
            ready_at: now_ms(),
        })
        .await?;
    eventually("the food ready in accepted_tickets", || async {
        let ready: bool = sqlx::query_scalar(
            "SELECT ready_at IS NOT NULL FROM accepted_tickets WHERE order_id = $1",
        )
        .bind(order)
        .fetch_one(delivery.service.database.pool())
        .await?;
        Ok(ready.then_some(()))
    })
    .await?;
    // Another courier's hands.
    let stranger = delivery.publish(&pick_up(other)).await?;
    delivery.dead_letters(order, 3).await?;
    // The assigned courier, twice (the app sent again, as a new message): one pickup.
    delivery.publish(&pick_up(courier)).await?;
    delivery.publish(&pick_up(courier)).await?;
    delivery.publish(&drop_off(courier)).await?;
    delivery.publish(&drop_off(courier)).await?;

    let events = delivery.events(order, 4).await?;
    let [
        _,
        _,
        DeliveryEvent::DeliveryPickedUp(picked_up),
        DeliveryEvent::DeliveryDelivered(delivered),
    ] = &events[..]
    else {
        bail!("not picked up then delivered: {events:?}");
    };
    ensure!(picked_up.courier_id == courier && delivered.courier_id == courier);
    ensure!(delivered.delivered_at >= picked_up.picked_up_at);
    ensure!(delivery.delivery(order).await? == Some(("DELIVERED".into(), Some(courier))));
    settle().await;
    ensure!(
        delivery.events(order, 4).await?.len() == 4,
        "a second pickup or drop-off"
    );
    let letters = delivery.dead_letters(order, 3).await?;
    let reasons = test_support::ids_and_reasons(&letters);
    ensure!(
        reasons
            == [
                (too_early.id(), Some("delivery-not-ready-for-pickup")),
                (not_picked_up.id(), Some("delivery-not-picked-up")),
                (stranger.id(), Some("wrong-courier")),
            ],
        "{reasons:?}"
    );

    // No delivery at all for an order nobody scheduled.
    let unknown = Uuid::new_v4();
    let nowhere = delivery
        .publish(&PickUpDelivery {
            order_id: unknown,
            courier_id: courier,
        })
        .await?;
    let letters = delivery.dead_letters(unknown, 1).await?;
    ensure!(letters[0].message.id() == nowhere.id());
    ensure!(
        letters[0].message.headers.get(header::dead_letter::REASON) == Some("unknown-delivery")
    );
    delivery.0.stop().await
}

/// The courier rule, on the service's tables alone: the available courier with the fewest
/// scheduled deliveries, the lowest id among equals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_busy_available_courier_gets_the_next_delivery() -> Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool();
    sqlx::migrate!("./migrations").run(pool).await?;
    let least_busy = || async {
        let mut tx = pool.begin().await?;
        let courier = delivery_service::couriers::least_busy(&mut tx).await?;
        tx.commit().await?;
        anyhow::Ok(courier.map(|c| c.to_string()))
    };
    let give = |courier: &'static str, state: &'static str| async move {
        sqlx::query(
            "INSERT INTO deliveries (order_id, restaurant_id, delivery_address, delivery_time,
                                     ready_by, state, courier_id, scheduled_at)
             VALUES ($1, $2, '{}', now(), now(), $3, $4::uuid, now())",
        )
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .bind(state)
        .bind(courier)
        .execute(pool)
        .await?;
        anyhow::Ok(())
    };

    ensure!(least_busy().await?.as_deref() == Some(COURIERS[0]));
    give(COURIERS[0], "SCHEDULED").await?;
    give(COURIERS[0], "SCHEDULED").await?;
    give(COURIERS[1], "SCHEDULED").await?;
    give(COURIERS[2], "CANCELLED").await?; // freed: does not count
    give(COURIERS[3], "SCHEDULED").await?;
    give(COURIERS[4], "SCHEDULED").await?;
    ensure!(least_busy().await?.as_deref() == Some(COURIERS[2]));

    sqlx::query("UPDATE couriers SET available = false WHERE id = $1::uuid")
        .bind(COURIERS[2])
        .execute(pool)
        .await?;
    ensure!(least_busy().await?.as_deref() == Some(COURIERS[1]));

    sqlx::query("UPDATE couriers SET available = false")
        .execute(pool)
        .await?;
    ensure!(least_busy().await?.is_none());
    Ok(())
}
