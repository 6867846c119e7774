//! The contracts codec against the real schema registry: every record of the catalog
//! round-trips; records of an older and a newer compatible version decode both ways; each
//! typed decode failure comes from a crafted input.

use anyhow::{Context, Result, bail, ensure};
use apache_avro::Schema;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use contracts::order::commands::CreateOrder;
use contracts::{Codec, Contract, DecodeError, RegistryAccess, for_each_contract};
use test_support::{Platform, TestTopic};
use uuid::Uuid;

fn codec() -> Result<Codec> {
    Ok(Codec::for_catalog(&Platform::from_env().registry()?)?)
}

/// A valid value of `schema` with every field filled (the non-null branch of each union, two
/// items per array), different for each `seed`.
fn sample_value(schema: &Schema, seed: u64) -> Result<Value> {
    let resolved = ResolvedSchema::try_from(schema)?;
    sample(schema, &resolved, seed)
}

fn sample(schema: &Schema, names: &ResolvedSchema, seed: u64) -> Result<Value> {
    Ok(match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(seed.is_multiple_of(2)),
        Schema::Int => Value::Int(i32::try_from(seed % 1000)? + 1),
        Schema::Long => Value::Long(i64::try_from(seed)? * 7 + 1999),
        Schema::String => Value::String(format!("text-{seed}")),
        Schema::Uuid(_) => Value::Uuid(Uuid::from_u64_pair(seed, seed.wrapping_mul(31))),
        Schema::TimestampMillis => Value::TimestampMillis(1_790_000_000_000 + i64::try_from(seed)?),
        Schema::Array(array) => Value::Array(vec![
            sample(&array.items, names, seed + 1)?,
            sample(&array.items, names, seed + 2)?,
        ]),
        Schema::Union(union) => {
            let (index, branch) = union
                .variants()
                .iter()
                .enumerate()
                .find(|(_, v)| **v != Schema::Null)
                .context("union of null only")?;
            Value::Union(
                u32::try_from(index)?,
                Box::new(sample(branch, names, seed)?),
            )
        }
        Schema::Enum(e) => {
            let index = usize::try_from(seed)? % e.symbols.len();
            Value::Enum(u32::try_from(index)?, e.symbols[index].clone())
        }
        Schema::Record(record) => Value::Record(
            record
                .fields
                .iter()
                .enumerate()
                .map(|(i, field)| {
                    Ok((
                        field.name.clone(),
                        sample(&field.schema, names, seed + i as u64)?,
                    ))
                })
                .collect::<Result<_>>()?,
        ),
        Schema::Ref { name } => {
            let named = names
                .get_names()
                .get(name)
                .with_context(|| format!("unresolved reference {name:?}"))?;
            sample(named, names, seed)?
        }
        other => bail!("no sample for schema {other:?}"),
    })
}

async fn round_trip<T: Contract + PartialEq + std::fmt::Debug>(codec: &Codec) -> Result<()> {
    let schema = Schema::parse_str(T::SCHEMA)?;
    let message: T = apache_avro::from_value(&sample_value(&schema, 11)?)
        .with_context(|| format!("{}: sample does not fit the Rust type", T::FULL_NAME))?;
    let bytes = codec
        .encode(&message)
        .await
        .with_context(|| format!("encoding {}", T::FULL_NAME))?;
    ensure!(bytes[0] == 0, "{}: magic byte {}", T::FULL_NAME, bytes[0]);
    let decoded: T = codec
        .decode(T::TOPIC, &bytes)
        .await
        .with_context(|| format!("decoding {}", T::FULL_NAME))?;
    ensure!(
        decoded == message,
        "{}: {decoded:?} != {message:?}",
        T::FULL_NAME
    );
    ensure!(!message.key().is_empty(), "{}: empty key", T::FULL_NAME);
    Ok(())
}

#[tokio::test]
async fn every_record_of_the_catalog_round_trips_through_the_registry() -> Result<()> {
    let codec = codec()?;
    let mut count = 0;
    macro_rules! check {
        ($record:ty) => {
            round_trip::<$record>(&codec).await?;
            count += 1;
        };
    }
    for_each_contract!(check);
    ensure!(
        count == contracts::catalog::records().count(),
        "checked {count} of {} records",
        contracts::catalog::records().count()
    );
    Ok(())
}

#[tokio::test]
async fn the_key_is_the_catalogs_key_field() -> Result<()> {
    let schema = Schema::parse_str(CreateOrder::SCHEMA)?;
    let order: CreateOrder = apache_avro::from_value(&sample_value(&schema, 3)?)?;
    ensure!(order.key() == order.order_id.to_string());
    let info = contracts::catalog::record(CreateOrder::TOPIC, CreateOrder::FULL_NAME)
        .context("CreateOrder not in the catalog")?;
    ensure!(info.key_field == "orderId");
    Ok(())
}

const V1: &str = r#"{"type": "record", "name": "Evolving", "namespace": "ftgo.test", "doc": "v1",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}, "doc": "id"},
        {"name": "name", "type": "string", "doc": "name"}
    ]}"#;
const V2: &str = r#"{"type": "record", "name": "Evolving", "namespace": "ftgo.test", "doc": "v2",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}, "doc": "id"},
        {"name": "name", "type": "string", "doc": "name"},
        {"name": "note", "type": ["null", "string"], "default": null, "doc": "new in v2"}
    ]}"#;

/// A new optional field with a default: v2 readers read v1 records (the field takes its
/// default), v1 readers read v2 records (the field is dropped).
#[tokio::test]
async fn a_compatible_evolution_decodes_both_ways() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("evolve", 1).await?;
    let v1 = Codec::new(&platform.registry()?.registering(), [(topic.name(), V1)])?;
    let v2 = Codec::new(&platform.registry()?.registering(), [(topic.name(), V2)])?;
    let id = Uuid::new_v4();

    let from_v1 = v1
        .encode_value(
            topic.name(),
            "ftgo.test.Evolving",
            Value::Record(vec![
                ("id".into(), Value::Uuid(id)),
                ("name".into(), Value::String("old".into())),
            ]),
        )
        .await?;
    let from_v2 = v2
        .encode_value(
            topic.name(),
            "ftgo.test.Evolving",
            Value::Record(vec![
                ("id".into(), Value::Uuid(id)),
                ("name".into(), Value::String("new".into())),
                (
                    "note".into(),
                    Value::Union(1, Box::new(Value::String("hello".into()))),
                ),
            ]),
        )
        .await?;
    ensure!(
        from_v1[1..5] != from_v2[1..5],
        "v1 and v2 got the same schema id"
    );

    let old_read_by_new = v2.decode_value(topic.name(), &from_v1).await?;
    ensure!(
        old_read_by_new.value
            == Value::Record(vec![
                ("id".into(), Value::Uuid(id)),
                ("name".into(), Value::String("old".into())),
                ("note".into(), Value::Union(0, Box::new(Value::Null))),
            ]),
        "v2 read v1 as {:?}",
        old_read_by_new.value
    );
    let new_read_by_old = v1.decode_value(topic.name(), &from_v2).await?;
    ensure!(
        new_read_by_old.value
            == Value::Record(vec![
                ("id".into(), Value::Uuid(id)),
                ("name".into(), Value::String("new".into())),
            ]),
        "v1 read v2 as {:?}",
        new_read_by_old.value
    );
    Ok(())
}

/// Version 1 and 2 of `ftgo.test.Evolving` as Rust types, as two deployments would have them.
// The serde name must be the Avro record's: schema-aware deserialization checks it.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename = "Evolving")]
struct EvolvingV1 {
    id: Uuid,
    name: String,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename = "Evolving")]
struct EvolvingV2 {
    id: Uuid,
    name: String,
    note: Option<String>,
}

impl Contract for EvolvingV1 {
    const TOPIC: &'static str = "test.evolving";
    const FULL_NAME: &'static str = "ftgo.test.Evolving";
    const SCHEMA: &'static str = V1;
    fn key(&self) -> String {
        self.id.to_string()
    }
}

impl Contract for EvolvingV2 {
    const TOPIC: &'static str = "test.evolving";
    const FULL_NAME: &'static str = "ftgo.test.Evolving";
    const SCHEMA: &'static str = V2;
    fn key(&self) -> String {
        self.id.to_string()
    }
}

/// The typed decode path resolves a different writer's schema too (the same writer's schema
/// takes a shortcut): v1 bytes into the v2 type and v2 bytes into the v1 type.
#[tokio::test]
async fn typed_decoding_resolves_an_older_and_a_newer_writer() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("evolve_typed", 1).await?;
    let v1 = Codec::new(&platform.registry()?.registering(), [(topic.name(), V1)])?;
    let v2 = Codec::new(&platform.registry()?.registering(), [(topic.name(), V2)])?;
    let id = Uuid::new_v4();
    let old = EvolvingV1 {
        id,
        name: "old".into(),
    };
    let new = EvolvingV2 {
        id,
        name: "new".into(),
        note: Some("hello".into()),
    };
    // (Contract::TOPIC is a constant and this topic is random: encode by value.)
    let old_bytes = v1
        .encode_value(
            topic.name(),
            EvolvingV1::FULL_NAME,
            Value::Record(vec![
                ("id".into(), Value::Uuid(id)),
                ("name".into(), Value::String("old".into())),
            ]),
        )
        .await?;
    let new_bytes = v2
        .encode_value(
            topic.name(),
            EvolvingV2::FULL_NAME,
            Value::Record(vec![
                ("id".into(), Value::Uuid(id)),
                ("name".into(), Value::String("new".into())),
                (
                    "note".into(),
                    Value::Union(1, Box::new(Value::String("hello".into()))),
                ),
            ]),
        )
        .await?;

    let read_by_new: EvolvingV2 = v2.decode(topic.name(), &old_bytes).await?;
    ensure!(
        read_by_new
            == EvolvingV2 {
                id,
                name: "old".into(),
                note: None
            },
        "{read_by_new:?}"
    );
    let read_by_old: EvolvingV1 = v1.decode(topic.name(), &new_bytes).await?;
    ensure!(
        read_by_old
            == EvolvingV1 {
                id,
                name: "new".into()
            },
        "{read_by_old:?}"
    );
    // And each reads its own version through the shortcut.
    ensure!(v2.decode::<EvolvingV2>(topic.name(), &new_bytes).await? == new);
    ensure!(v1.decode::<EvolvingV1>(topic.name(), &old_bytes).await? == old);
    Ok(())
}

async fn create_order_bytes(codec: &Codec) -> Result<(CreateOrder, Vec<u8>)> {
    let schema = Schema::parse_str(CreateOrder::SCHEMA)?;
    let order: CreateOrder = apache_avro::from_value(&sample_value(&schema, 5)?)?;
    let bytes = codec.encode(&order).await?;
    Ok((order, bytes))
}

#[tokio::test]
async fn bytes_without_the_confluent_frame_are_not_framed() -> Result<()> {
    let codec = codec()?;
    for garbage in [&b"{\"orderId\": 1}"[..], &[0, 1], &[]] {
        let error = codec
            .decode_value(CreateOrder::TOPIC, garbage)
            .await
            .expect_err("garbage decoded");
        ensure!(
            matches!(error, DecodeError::NotFramed { .. }),
            "{garbage:?}: {error}"
        );
        ensure!(error.reason() == "not-confluent-framed" && !error.is_transient());
    }
    Ok(())
}

#[tokio::test]
async fn an_unknown_schema_id_is_named() -> Result<()> {
    let codec = codec()?;
    let (_, mut bytes) = create_order_bytes(&codec).await?;
    bytes[1..5].copy_from_slice(&0x7fff_fff0_u32.to_be_bytes());
    let error = codec
        .decode_value(CreateOrder::TOPIC, &bytes)
        .await
        .expect_err("unknown id decoded");
    ensure!(
        matches!(
            error,
            DecodeError::UnknownSchemaId {
                id: 0x7fff_fff0,
                ..
            }
        ),
        "{error}"
    );
    ensure!(error.reason() == "unknown-schema-id" && !error.is_transient());
    Ok(())
}

#[tokio::test]
async fn a_record_on_the_wrong_topic_is_not_allowed() -> Result<()> {
    let codec = codec()?;
    let (_, bytes) = create_order_bytes(&codec).await?;
    let error = codec
        .decode_value("ftgo.kitchen.commands", &bytes)
        .await
        .expect_err("CreateOrder decoded on the kitchen's channel");
    ensure!(
        matches!(&error, DecodeError::RecordNotAllowed { topic, record }
            if topic == "ftgo.kitchen.commands" && record == "ftgo.order.commands.CreateOrder"),
        "{error}"
    );
    ensure!(error.reason() == "record-not-allowed-on-topic");
    Ok(())
}

#[tokio::test]
async fn a_body_that_does_not_fit_the_writers_schema_is_invalid_content() -> Result<()> {
    let codec = codec()?;
    let (_, bytes) = create_order_bytes(&codec).await?;
    // A truncated body, and a body with bytes to spare.
    let truncated = &bytes[..bytes.len() - 6];
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[1, 2, 3]);
    for (what, input) in [("truncated", truncated), ("padded", &padded[..])] {
        let error = codec
            .decode_value(CreateOrder::TOPIC, input)
            .await
            .expect_err("bad body decoded");
        ensure!(
            matches!(error, DecodeError::InvalidContent { .. }),
            "{what}: {error}"
        );
        ensure!(error.reason() == "invalid-content" && !error.is_transient());
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_registry_is_transient() -> Result<()> {
    let (_, bytes) = create_order_bytes(&codec()?).await?;
    // Nothing listens on port 9 (discard) on this machine's loopback.
    let offline = Codec::for_catalog(&RegistryAccess::anonymous(
        "http://127.0.0.1:9/apis/ccompat/v7",
    ))?;
    let error = offline
        .decode_value(CreateOrder::TOPIC, &bytes)
        .await
        .expect_err("decoded without a registry");
    ensure!(
        matches!(error, DecodeError::RegistryUnavailable { .. }),
        "{error}"
    );
    ensure!(error.is_transient());
    Ok(())
}

/// A consumer decodes a channel into its enum and matches; a record of another channel is
/// refused with the reason a dead letter would carry.
#[tokio::test]
async fn a_channel_decodes_into_its_enum_and_refuses_other_records() -> Result<()> {
    use contracts::Channel;
    use contracts::order::{commands::Command, events::Event, events::OrderCreated};
    let codec = codec()?;
    let (order, bytes) = create_order_bytes(&codec).await?;
    let decoded = codec.decode_value(CreateOrder::TOPIC, &bytes).await?;
    let command = Command::from_decoded(decoded)?;
    ensure!(command.key() == order.key());
    let Command::CreateOrder(decoded_order) = command else {
        bail!("not a CreateOrder: {command:?}");
    };
    ensure!(decoded_order == order);

    let schema = Schema::parse_str(OrderCreated::SCHEMA)?;
    let created: OrderCreated = apache_avro::from_value(&sample_value(&schema, 6)?)?;
    let event_bytes = codec.encode(&created).await?;
    let event = codec
        .decode_value(OrderCreated::TOPIC, &event_bytes)
        .await?;
    ensure!(matches!(Event::from_decoded(event.clone())?, Event::OrderCreated(e) if e == created));
    let refused = Command::from_decoded(event).expect_err("an event is not a command");
    ensure!(
        refused.reason() == "record-not-allowed-on-topic",
        "{refused}"
    );
    Ok(())
}
