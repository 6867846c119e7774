//! Smoke tests of the local platform: each component answers, and behaves the way the rest of
//! the product relies on. They run against the real Kafka, registry and PostgreSQL started by
//! `deploy/local/up` (addresses from `deploy/local/env`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use apache_avro::types::Value;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::get_schema_by_subject;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use sqlx::{Connection, Executor, PgConnection, Row};
use test_support::{Platform, TestDatabase, TestTopic, unique_group};
use uuid::Uuid;

const RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);

fn producer(platform: &Platform) -> Result<FutureProducer> {
    kafka::client_config(&platform.bootstrap_servers)?
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .context("creating a producer")
}

fn consumer(platform: &Platform, group: &str) -> Result<StreamConsumer> {
    kafka::client_config(&platform.bootstrap_servers)?
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a consumer")
}

/// Records keyed by an order id all land on one partition and come back through a consumer
/// group in the order they were produced.
#[tokio::test]
async fn kafka_keeps_the_records_of_one_order_in_order_through_a_consumer_group() -> Result<()> {
    const ORDERS: usize = 5;
    const RECORDS_PER_ORDER: u32 = 40;
    let platform = Platform::from_env();
    let topic = TestTopic::create("smoke-keyed", 12).await?;

    let orders: Vec<String> = (0..ORDERS).map(|_| Uuid::new_v4().to_string()).collect();
    let producer = producer(&platform)?;
    for sequence in 0..RECORDS_PER_ORDER {
        for order in &orders {
            let payload = sequence.to_be_bytes();
            producer
                .send(
                    FutureRecord::to(topic.name())
                        .key(order)
                        .payload(&payload[..]),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(error, _)| error)
                .with_context(|| format!("producing record {sequence} of order {order}"))?;
        }
    }

    let consumer = consumer(&platform, &unique_group("smoke-keyed"))?;
    consumer.subscribe(&[topic.name()])?;
    // order id -> (partitions seen, sequences in arrival order)
    let mut seen: BTreeMap<String, (BTreeSet<i32>, Vec<u32>)> = BTreeMap::new();
    let expected = ORDERS * RECORDS_PER_ORDER as usize;
    let mut received = 0;
    while received < expected {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, consumer.recv())
            .await
            .with_context(|| format!("only {received} of {expected} records arrived"))??;
        let key = String::from_utf8(message.key().context("record without key")?.to_vec())?;
        let payload: [u8; 4] = message
            .payload()
            .context("record without payload")?
            .try_into()?;
        let entry = seen.entry(key).or_default();
        entry.0.insert(message.partition());
        entry.1.push(u32::from_be_bytes(payload));
        received += 1;
    }

    ensure!(
        seen.len() == ORDERS,
        "expected {ORDERS} orders, saw {}",
        seen.len()
    );
    for (order, (partitions, sequences)) in &seen {
        ensure!(
            partitions.len() == 1,
            "order {order} was spread over partitions {partitions:?}"
        );
        let wanted: Vec<u32> = (0..RECORDS_PER_ORDER).collect();
        ensure!(
            sequences == &wanted,
            "order {order} arrived out of order: {sequences:?}"
        );
    }
    Ok(())
}

/// A schema registered under TopicRecordNameStrategy encodes to the Confluent wire format
/// (magic byte 0, 4-byte big-endian schema id, Avro body), travels through Kafka, and decodes
/// back to the same value.
#[tokio::test]
async fn registry_round_trips_a_confluent_framed_avro_value_through_kafka() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("smoke-avro", 3).await?;
    let schema = r#"{
        "type": "record", "name": "SmokeTested", "namespace": "ftgo.smoke",
        "doc": "A record that exists only in the platform smoke test.",
        "fields": [
            {"name": "orderId", "type": {"type": "string", "logicalType": "uuid"}, "doc": "The order."},
            {"name": "totalCents", "type": "long", "doc": "Money in minor units."}
        ]
    }"#;
    let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        topic.name().to_owned(),
        SuppliedSchema::new(
            Some("ftgo.smoke.SmokeTested".to_owned()),
            SchemaType::Avro,
            schema.to_owned(),
        ),
    );
    let subject = format!("{}-ftgo.smoke.SmokeTested", topic.name());
    ensure!(
        strategy.get_subject()? == subject,
        "unexpected subject name"
    );

    let settings = platform.registry()?.converter_settings()?;
    let encoder = AvroEncoder::new(settings.clone());
    let order_id = Uuid::new_v4();
    let value = Value::Record(vec![
        ("orderId".to_owned(), Value::Uuid(order_id)),
        ("totalCents".to_owned(), Value::Long(12_345)),
    ]);
    let bytes = encoder.encode_value(value.clone(), &strategy).await?;

    // The registry now holds the subject; its id is the one in the frame.
    let registered = get_schema_by_subject(
        &settings,
        &SubjectNameStrategy::TopicRecordNameStrategy(
            topic.name().to_owned(),
            "ftgo.smoke.SmokeTested".to_owned(),
        ),
    )
    .await?;
    ensure!(bytes[0] == 0, "magic byte is {}", bytes[0]);
    let framed_id = u32::from_be_bytes(bytes[1..5].try_into()?);
    ensure!(
        framed_id == registered.id,
        "frame carries schema id {framed_id}, the registry says {}",
        registered.id
    );

    let producer = producer(&platform)?;
    let key = order_id.to_string();
    producer
        .send(
            FutureRecord::to(topic.name()).key(&key).payload(&bytes),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)?;
    let consumer = consumer(&platform, &unique_group("smoke-avro"))?;
    consumer.subscribe(&[topic.name()])?;
    let message = tokio::time::timeout(RECEIVE_TIMEOUT, consumer.recv())
        .await
        .context("the framed record did not come back")??;

    // A fresh decoder: it must fetch the writer's schema by the id in the frame.
    let decoder = AvroDecoder::new(settings);
    let decoded = decoder.decode(message.payload()).await?;
    ensure!(
        decoded.name.as_ref().map(|n| n.fullname(None))
            == Some("ftgo.smoke.SmokeTested".to_owned()),
        "decoded as {:?}",
        decoded.name
    );
    let fields = match decoded.value {
        Value::Record(fields) => fields,
        other => bail!("decoded to {other:?}, not a record"),
    };
    ensure!(
        fields
            == vec![
                ("orderId".to_owned(), Value::Uuid(order_id)),
                ("totalCents".to_owned(), Value::Long(12_345)),
            ],
        "decoded to {fields:?}"
    );
    Ok(())
}

/// PostgreSQL runs with logical WAL (the log-tailing relay needs it), and a test gets a
/// database of its own.
#[tokio::test]
async fn postgres_runs_with_logical_wal_and_gives_each_test_its_own_database() -> Result<()> {
    let database = TestDatabase::create().await?;
    let row =
        sqlx::query("SELECT current_setting('wal_level') AS wal_level, current_database() AS db")
            .fetch_one(database.pool())
            .await?;
    let wal_level: String = row.try_get("wal_level")?;
    let current: String = row.try_get("db")?;
    ensure!(wal_level == "logical", "wal_level is {wal_level}");
    ensure!(current == database.name(), "connected to {current}");
    Ok(())
}

/// The URL of one of service `service`'s roles, as deploy/local/env exports it (`DATABASE__URL`,
/// the runtime role; `DATABASE__MIGRATION_URL`, the schema's owner); the password comes from
/// the password file (PGPASSFILE).
fn role_url(service: &str, setting: &str) -> Result<String> {
    let variable = format!("{}{setting}", service_kit::Settings::own_prefix(service));
    std::env::var(&variable).with_context(|| format!("{variable} (. deploy/local/env)"))
}

const SERVICES: [&str; 6] = [
    "order",
    "consumer",
    "kitchen",
    "accounting",
    "restaurant",
    "delivery",
];

/// Each service's schema in the `ftgo` database belongs to its migration role, which can create
/// nothing elsewhere; its runtime role can create nothing at all, not even in its own schema.
#[tokio::test]
async fn only_a_services_owner_creates_and_only_in_its_own_schema() -> Result<()> {
    for service in SERVICES {
        let mut owner = PgConnection::connect(&role_url(service, "DATABASE__MIGRATION_URL")?)
            .await
            .with_context(|| format!("connecting as ftgo_{service}_owner"))?;
        // Its schema is its search path: unqualified tables land there.
        let mut tx = owner.begin().await?;
        tx.execute("CREATE TABLE smoke_probe (id int)").await?;
        let schema: String = sqlx::query_scalar(
            "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'smoke_probe'",
        )
        .fetch_one(&mut *tx)
        .await?;
        ensure!(
            schema == format!("ftgo_{service}"),
            "table landed in {schema}"
        );
        tx.rollback().await?;
        for other in SERVICES.iter().filter(|other| **other != service) {
            let mut tx = owner.begin().await?;
            let denied = tx
                .execute(format!("CREATE TABLE ftgo_{other}.smoke_probe (id int)").as_str())
                .await;
            ensure!(
                denied.is_err(),
                "ftgo_{service}_owner could create a table in schema ftgo_{other}"
            );
            tx.rollback().await?;
        }
        let mut tx = owner.begin().await?;
        let denied = tx.execute("CREATE TABLE public.smoke_probe (id int)").await;
        ensure!(
            denied.is_err(),
            "ftgo_{service}_owner could create a table in public"
        );
        tx.rollback().await?;
        let denied = owner.execute("CREATE DATABASE smoke_probe").await;
        ensure!(
            denied.is_err(),
            "ftgo_{service}_owner could create a database"
        );
        owner.close().await?;

        let mut runtime = PgConnection::connect(&role_url(service, "DATABASE__URL")?)
            .await
            .with_context(|| format!("connecting as ftgo_{service}"))?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&mut runtime)
            .await?;
        ensure!(
            schema == format!("ftgo_{service}"),
            "search path at {schema}"
        );
        let denied = runtime
            .execute(format!("CREATE TABLE ftgo_{service}.smoke_probe (id int)").as_str())
            .await
            .err()
            .with_context(|| format!("ftgo_{service} created a table in its own schema"))?;
        ensure!(denied.to_string().contains("permission denied"), "{denied}");
        runtime.close().await?;
    }
    Ok(())
}

/// Least privilege in PostgreSQL: a service's role cannot read another service's tables, nor
/// replicate (no service runs the log-tailing relay; only ftgo_admin may, for its tests), by
/// SQL or by the replication protocol.
#[tokio::test]
async fn a_service_role_reads_no_other_schema_and_cannot_replicate() -> Result<()> {
    let url = |service: &str| role_url(service, "DATABASE__URL");
    let table = format!("probe_{}", Uuid::new_v4().simple());
    let mut order = PgConnection::connect(&role_url("order", "DATABASE__MIGRATION_URL")?).await?;
    order
        .execute(format!("CREATE TABLE ftgo_order.{table} (secret text)").as_str())
        .await?;
    let mut kitchen = PgConnection::connect(&url("kitchen")?).await?;
    let read = kitchen
        .execute(format!("SELECT * FROM ftgo_order.{table}").as_str())
        .await;
    order
        .execute(format!("DROP TABLE ftgo_order.{table}").as_str())
        .await?;
    let denied = read.err().context("ftgo_kitchen read ftgo_order's table")?;
    ensure!(denied.to_string().contains("permission denied"), "{denied}");

    let slot = kitchen
        .execute("SELECT pg_create_logical_replication_slot('kitchen_probe', 'pgoutput')")
        .await
        .err()
        .context("ftgo_kitchen created a replication slot")?;
    // PostgreSQL 15 says "must be superuser or replication role", 16 "permission denied".
    ensure!(
        ["replication role", "permission denied"]
            .iter()
            .any(|said| slot.to_string().contains(said)),
        "refused, but not for want of the right: {slot}"
    );

    let parsed = url::Url::parse(&url("kitchen")?)?;
    let password = Platform::from_env().database_password("ftgo_kitchen")?;
    let config = pgwire_replication::ReplicationConfig::new(
        parsed.host_str().context("a host")?,
        parsed.username(),
        password.as_str(),
        parsed.path().trim_start_matches('/'),
        "kitchen_probe",
        "kitchen_probe",
    )
    .with_port(parsed.port().unwrap_or(5432))
    .with_tls(pgwire_replication::TlsConfig::disabled());
    let refused = match pgwire_replication::ReplicationClient::connect_gated(config).await {
        Ok(mut client) => client.identify_system().await.err(),
        Err(error) => Some(error),
    }
    .context("ftgo_kitchen opened a replication connection")?;
    ensure!(
        refused.to_string().contains("replication"),
        "refused, but not for replication: {refused}"
    );
    Ok(())
}
