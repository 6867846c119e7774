//! Interoperability with Confluent's own client (Python `confluent-kafka`, its
//! `AvroSerializer` and `AvroDeserializer`), through the real registry: bytes Rust writes
//! decode in Python, bytes Python writes decode in Rust.
//!
//! The Python environment is made by `deploy/local/test-all` from
//! `integration-tests/python/requirements.txt`; it exports its interpreter as `FTGO_PYTHON`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use contracts::order::commands::CreateOrder;
use contracts::order::commands::create_order::{Address, OrderLineItem};
use contracts::order::events::OrderCreated;
use contracts::{Codec, Contract};
use serde_json::{Value, json};
use test_support::Platform;
use uuid::Uuid;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `interop.py ARGS` with Confluent's client, feeding `stdin`; returns its stdout.
fn python(args: &[&str], stdin: &str) -> Result<String> {
    let interpreter = std::env::var("FTGO_PYTHON").context(
        "FTGO_PYTHON is not set: run deploy/local/test-all, which creates the Python environment \
         with Confluent's client, or point FTGO_PYTHON at a Python with \
         integration-tests/python/requirements.txt installed",
    )?;
    let mut child = Command::new(&interpreter)
        .arg(repo().join("integration-tests/python/interop.py"))
        .args(args)
        .env(
            "FTGO_SCHEMA_REGISTRY__URL",
            Platform::from_env().schema_registry_url,
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {interpreter}"))?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "interop.py {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("not hex"))
        .collect()
}

#[tokio::test]
async fn bytes_written_in_rust_decode_with_confluents_python_deserializer() -> Result<()> {
    let codec = Codec::for_catalog(&Platform::from_env().registry()?)?;
    let order = CreateOrder {
        order_id: Uuid::new_v4(),
        consumer_id: Uuid::new_v4(),
        restaurant_id: Uuid::new_v4(),
        line_items: vec![
            OrderLineItem {
                menu_item_id: "chicken-vindaloo".into(),
                quantity: 2,
            },
            OrderLineItem {
                menu_item_id: "naan".into(),
                quantity: 3,
            },
        ],
        delivery_address: Address {
            street1: "1 Main St".into(),
            street2: None,
            city: "Oakland".into(),
            state: "CA".into(),
            zip: "94611".into(),
        },
        delivery_time: 1_790_000_123_456,
    };
    let bytes = codec.encode(&order).await?;
    let decoded: Value =
        serde_json::from_str(&python(&["decode", CreateOrder::TOPIC, &hex(&bytes)], "")?)?;
    let expected = json!({
        "orderId": order.order_id.to_string(),
        "consumerId": order.consumer_id.to_string(),
        "restaurantId": order.restaurant_id.to_string(),
        "lineItems": [
            {"menuItemId": "chicken-vindaloo", "quantity": 2},
            {"menuItemId": "naan", "quantity": 3}
        ],
        "deliveryAddress": {"street1": "1 Main St", "street2": null, "city": "Oakland", "state": "CA", "zip": "94611"},
        "deliveryTime": 1_790_000_123_456_i64
    });
    ensure!(
        decoded == expected,
        "Python decoded\n{decoded:#}\nexpected\n{expected:#}"
    );
    Ok(())
}

/// An OrderCreated as JSON for Confluent's serializer.
fn order_created(order_id: Uuid) -> Value {
    json!({
        "orderId": order_id.to_string(),
        "consumerId": Uuid::new_v4().to_string(),
        "restaurantId": Uuid::new_v4().to_string(),
        "lineItems": [{"menuItemId": "naan", "name": "Garlic naan", "quantity": 4,
                       "price": {"amountMinor": 399, "currency": "USD"}}],
        "orderTotal": {"amountMinor": 1596, "currency": "USD"},
        "deliveryAddress": {"street1": "9 Elm St", "street2": "Apt 2", "city": "Oakland", "state": "CA", "zip": "94610"},
        "deliveryTime": 1_790_000_000_000_i64,
        "createdAt": 1_789_999_000_000_i64
    })
}

/// Confluent's Python serializer writes `value` (an OrderCreated) in `mode` (interop.py's
/// `register`, `lookup` or `latest`).
fn python_writes_order_created(value: &Value, mode: &str) -> Result<Vec<u8>> {
    let schema = repo().join("schemas/ftgo.order.events/OrderCreated.avsc");
    let bytes = unhex(&python(
        &[
            "encode",
            OrderCreated::TOPIC,
            schema.to_str().context("path")?,
            mode,
        ],
        &value.to_string(),
    )?)?;
    ensure!(bytes[0] == 0, "Python wrote magic byte {}", bytes[0]);
    Ok(bytes)
}

#[tokio::test]
async fn bytes_written_by_confluents_python_serializer_decode_in_rust() -> Result<()> {
    let codec = Codec::for_catalog(&Platform::from_env().registry()?)?;
    let order_id = Uuid::new_v4();
    let bytes = python_writes_order_created(&order_created(order_id), "register")?;

    let event: OrderCreated = codec.decode(OrderCreated::TOPIC, &bytes).await?;
    ensure!(event.order_id == order_id);
    ensure!(event.key() == order_id.to_string());
    ensure!(event.line_items.len() == 1 && event.line_items[0].quantity == 4);
    ensure!(event.line_items[0].price.amount_minor == 399);
    ensure!(event.order_total.amount_minor == 1596 && event.order_total.currency == "USD");
    ensure!(event.delivery_address.street2.as_deref() == Some("Apt 2"));
    ensure!(event.delivery_time == 1_790_000_000_000 && event.created_at == 1_789_999_000_000);
    Ok(())
}

/// Production producers do not register (`auto.register.schemas=false`): the serializer looks
/// its schema up by its text, which is rarely the registered text byte for byte (Java sends
/// `Schema.toString()`, compact JSON; our subjects hold the committed `.avsc` files). The
/// registry matches schemas by their canonical form (`apicurio.ccompat.use-canonical-hash`),
/// as Confluent's does, so the lookup finds the version our services registered, with its id.
#[tokio::test]
async fn confluents_production_settings_find_our_schemas_without_registering() -> Result<()> {
    let codec = Codec::for_catalog(&Platform::from_env().registry()?)?;
    // Our side registers (or finds) the committed schema, as a service does on its first send.
    let first = python_writes_order_created(&order_created(Uuid::new_v4()), "register")?;
    let event: OrderCreated = codec.decode(OrderCreated::TOPIC, &first).await?;
    let ours = codec.encode(&event).await?;

    for mode in ["lookup", "latest"] {
        let order_id = Uuid::new_v4();
        let bytes = python_writes_order_created(&order_created(order_id), mode)
            .with_context(|| format!("Confluent's serializer, {mode}"))?;
        ensure!(
            bytes[1..5] == ours[1..5],
            "{mode}: Confluent's serializer wrote schema id {:?}, ours is {:?}",
            &bytes[1..5],
            &ours[1..5]
        );
        let decoded: OrderCreated = codec.decode(OrderCreated::TOPIC, &bytes).await?;
        ensure!(
            decoded.order_id == order_id,
            "{mode}: decoded another order"
        );
    }
    Ok(())
}
