//! Encode and decode cost per message of the Confluent-framed Avro codec, against serde_json
//! on the same structs, for a typical CreateOrder (a command) and OrderCreated (an event).
//!
//! Needs the registry (the first encode registers the schema; after that the codec works from
//! its caches, which is what is measured). Run: `cargo bench -p contracts --bench codec`.
//! Prints, per message: size, ns per encode and decode for both, and the Avro/JSON ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use contracts::order::commands::CreateOrder;
use contracts::order::commands::create_order::{Address, OrderLineItem};
use contracts::order::events::OrderCreated;
use contracts::order::events::order_created::{self, Money, PricedLineItem};
use contracts::{Codec, Contract};
use uuid::Uuid;

const ROUNDS: usize = 5;
const TARGET_ROUND: Duration = Duration::from_millis(300);

fn create_order() -> CreateOrder {
    CreateOrder {
        order_id: Uuid::new_v4(),
        consumer_id: Uuid::new_v4(),
        restaurant_id: Uuid::new_v4(),
        line_items: (0..3)
            .map(|i| OrderLineItem {
                menu_item_id: format!("menu-item-{i}"),
                quantity: i + 1,
            })
            .collect(),
        delivery_address: Address {
            street1: "1 Main Street".into(),
            street2: Some("Apartment 4".into()),
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94611".into(),
        },
        delivery_time: 1_790_000_000_000,
    }
}

fn order_created() -> OrderCreated {
    let price = |cents| Money {
        amount_minor: cents,
        currency: "USD".into(),
    };
    OrderCreated {
        order_id: Uuid::new_v4(),
        consumer_id: Uuid::new_v4(),
        restaurant_id: Uuid::new_v4(),
        line_items: (0..3)
            .map(|i| PricedLineItem {
                menu_item_id: format!("menu-item-{i}"),
                name: format!("Dish number {i}"),
                quantity: i + 1,
                price: price(1299 + i64::from(i)),
            })
            .collect(),
        order_total: price(7800),
        delivery_address: order_created::Address {
            street1: "1 Main Street".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94611".into(),
        },
        delivery_time: 1_790_000_000_000,
        created_at: 1_789_999_000_000,
    }
}

/// The median of `ROUNDS` rounds of nanoseconds per call of `work`, each round long enough
/// to be measured (TARGET_ROUND).
async fn ns_per_call<F, Fut>(mut work: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Warm up, and find how many calls fill a round.
    let mut calls = 1usize;
    loop {
        let start = Instant::now();
        for _ in 0..calls {
            work().await;
        }
        if start.elapsed() >= TARGET_ROUND / 4 {
            break;
        }
        calls *= 2;
    }
    calls *= 4;
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..calls {
            work().await;
        }
        rounds.push(start.elapsed().as_nanos() as f64 / calls as f64);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

async fn bench<T>(codec: &Codec, message: T) -> Result<(), Box<dyn std::error::Error>>
where
    T: Contract + PartialEq + std::fmt::Debug,
{
    let avro = codec.encode(&message).await?;
    let json = serde_json::to_vec(&message)?;
    assert_eq!(codec.decode::<T>(T::TOPIC, &avro).await?, message);
    assert_eq!(serde_json::from_slice::<T>(&json)?, message);

    let avro_encode = ns_per_call(|| async {
        black_box(codec.encode(black_box(&message)).await.ok());
    })
    .await;
    let avro_decode = ns_per_call(|| async {
        black_box(codec.decode::<T>(T::TOPIC, black_box(&avro)).await.ok());
    })
    .await;
    let json_encode = ns_per_call(|| async {
        black_box(serde_json::to_vec(black_box(&message)).ok());
    })
    .await;
    let json_decode = ns_per_call(|| async {
        black_box(serde_json::from_slice::<T>(black_box(&json)).ok());
    })
    .await;

    let name = T::FULL_NAME.rsplit('.').next().unwrap_or(T::FULL_NAME);
    println!(
        "{name:<14} {:>6} B {:>6} B {:>11.0} {:>11.0} {:>6.2}x {:>11.0} {:>11.0} {:>6.2}x",
        avro.len(),
        json.len(),
        avro_encode,
        json_encode,
        avro_encode / json_encode,
        avro_decode,
        json_decode,
        avro_decode / json_decode,
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = std::env::var("FTGO_SCHEMA_REGISTRY__URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".to_owned());
    let codec = Codec::for_catalog(&contracts::RegistryAccess::from_env(&registry)?)?;
    println!("codec benchmark: Confluent-framed Avro (schemas cached) vs serde_json, same structs");
    println!(
        "median of {ROUNDS} rounds of ~{} ms each; ns per message",
        TARGET_ROUND.as_millis() / 4 * 4
    );
    println!(
        "{:<14} {:>8} {:>8} {:>11} {:>11} {:>7} {:>11} {:>11} {:>7}",
        "message", "avro", "json", "avro enc", "json enc", "ratio", "avro dec", "json dec", "ratio"
    );
    bench(&codec, create_order()).await?;
    bench(&codec, order_created()).await?;
    Ok(())
}
