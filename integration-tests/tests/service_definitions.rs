//! Every service is declared once (`service_kit::ServiceDefinition`), and its binary answers
//! from that declaration: `describe` prints what it consumes, `reset --to-end` moves its stopped
//! group past what waits on those topics and leaves its replica feeds alone, and refuses while
//! the group has members. The message catalog's consumers agree with the definitions.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kafka::{GroupOffsets, TopicAdmin};
use rdkafka::consumer::{BaseConsumer, Consumer};
use test_support::{Platform, unique_group};

fn ftgo_service(arguments: &[&str]) -> Result<std::process::Output> {
    Command::new(env!("CARGO_BIN_EXE_ftgo-service"))
        .args(arguments)
        .output()
        .context("running ftgo-service")
}

#[test]
fn describe_prints_what_each_definition_declares() -> Result<()> {
    let mut ports: Vec<u16> = integration_tests::SERVICES
        .iter()
        .map(|d| d.http_port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ensure!(
        ports.len() == integration_tests::SERVICES.len(),
        "two services share an HTTP port"
    );
    for definition in &integration_tests::SERVICES {
        let output = ftgo_service(&[definition.name, "describe"])?;
        ensure!(output.status.success(), "{output:?}");
        let described: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let expected = serde_json::to_value(definition.describe())?;
        ensure!(described == expected, "{described} != {expected}");
        ensure!(described["group"] == format!("{}-service", definition.name));
        let consumes = described["consumes"].as_array().context("consumes")?;
        ensure!(!consumes.is_empty(), "{} consumes nothing", definition.name);
        for feed in definition.replica_feeds {
            ensure!(
                definition.consumes().contains(feed),
                "{}: replica feed {feed} is not consumed",
                definition.name
            );
        }
    }
    Ok(())
}

/// The catalog names, per topic, the services that consume it ("order service (saga
/// orchestrator)"), for docs/messages.md: exactly the services whose definitions consume that
/// topic.
#[test]
fn the_catalog_names_the_consumers_the_definitions_declare() -> Result<()> {
    for channel in contracts::catalog::CHANNELS {
        let mut declared: Vec<String> = integration_tests::SERVICES
            .iter()
            .filter(|definition| definition.consumes().contains(&channel.topic))
            .map(|definition| format!("{} service", definition.name))
            .collect();
        let mut listed: Vec<String> = channel
            .consumers
            .iter()
            // "order service (saga orchestrator)": the service, then what for.
            .map(|consumer| consumer.split(" (").next().unwrap_or(consumer))
            .filter(|consumer| consumer.ends_with(" service"))
            .map(str::to_owned)
            .collect();
        declared.sort();
        listed.sort();
        ensure!(
            declared == listed,
            "{}: schemas/catalog.toml lists consumers {listed:?}, the services' definitions {declared:?}",
            channel.topic
        );
    }
    Ok(())
}

#[test]
fn reset_moves_a_stopped_group_to_the_end_except_replica_feeds_and_refuses_a_live_one() -> Result<()>
{
    let platform = Platform::from_env();
    let definition = order_service::DEFINITION;
    let group = unique_group("reset-test");
    let timeout = Duration::from_secs(10);
    let offsets = GroupOffsets::new(&platform.bootstrap_servers, &group, timeout)?;
    let admin = TopicAdmin::new(&platform.bootstrap_servers, timeout)?;
    // The group at the start of every topic it consumes.
    for topic in definition.consumes() {
        let starts: Vec<(i32, i64)> = admin
            .watermarks(topic)?
            .iter()
            .map(|w| (w.partition, w.low))
            .collect();
        offsets.commit(topic, &starts)?;
    }

    let output = ftgo_service(&["order", "reset", "--to-end", "--group", &group])?;
    ensure!(output.status.success(), "{output:?}");
    for topic in definition.consumes() {
        let committed = offsets.committed(topic)?;
        let watermarks = admin.watermarks(topic)?;
        for (w, (partition, offset)) in watermarks.iter().zip(&committed) {
            ensure!(w.partition == *partition);
            // The order service keeps a replica of the restaurants: never moved past them.
            let expected = if topic == "ftgo.restaurant.events" {
                w.low
            } else {
                w.high
            };
            // A record may arrive on a shared topic meanwhile: at least where the end was.
            let offset = offset.context("nothing committed")?;
            ensure!(
                offset == expected || (expected == w.high && offset <= w.high && offset > w.low),
                "{topic}[{partition}]: committed {offset}, expected {expected} ({w:?})"
            );
        }
    }

    // A member joins: the broker would refuse the commit, and the binary says why first.
    let member: BaseConsumer = kafka::client_config(&platform.bootstrap_servers)?
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()?;
    member.subscribe(&["ftgo.order.commands"])?;
    let joined = std::time::Instant::now() + Duration::from_secs(60);
    while offsets.members()? != 1 {
        ensure!(
            std::time::Instant::now() < joined,
            "the member did not join"
        );
        let _ = member.poll(Duration::from_millis(200));
    }
    let output = ftgo_service(&["order", "reset", "--to-end", "--group", &group])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(!output.status.success(), "reset a live group: {output:?}");
    ensure!(
        stderr.contains("has 1 members") && stderr.contains("stop its instances first"),
        "{stderr}"
    );
    Ok(())
}

/// The Kafka ACLs (`contracts::access`, from the catalog) give each service what its definition
/// needs and no more: Read on exactly the topics it consumes, Write on its dead-letter topic, its
/// group and its relay's transactional id.
#[test]
fn each_services_acls_are_what_its_definition_needs() -> Result<()> {
    use contracts::access::{AccessPlan, Operation, Pattern, Resource, service_user};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let catalog = contracts::catalog_file::CatalogFile::load(&dir).map_err(anyhow::Error::msg)?;
    let plan = AccessPlan::of(&catalog).map_err(anyhow::Error::msg)?;
    for definition in &integration_tests::SERVICES {
        let described = definition.describe();
        let user = service_user(definition.name);
        ensure!(plan.users.contains(&user), "{user} has no password");
        let allows = |resource, operation, name: &str| {
            plan.of_user(&user).any(|acl| {
                acl.resource == resource
                    && acl.operation == operation
                    && match acl.pattern {
                        Pattern::Literal => acl.name == name,
                        Pattern::Prefixed => name.starts_with(&acl.name),
                    }
            })
        };
        let mut read: Vec<&str> = plan
            .of_user(&user)
            .filter(|acl| acl.resource == Resource::Topic && acl.operation == Operation::Read)
            .map(|acl| acl.name.as_str())
            .collect();
        read.sort_unstable();
        let mut consumes = described.consumes.clone();
        consumes.sort_unstable();
        ensure!(
            read == consumes,
            "{user} reads {read:?}, consumes {consumes:?}"
        );
        ensure!(
            allows(
                Resource::Topic,
                Operation::Write,
                &described.dead_letter_topic
            ),
            "{user} cannot dead-letter to {}",
            described.dead_letter_topic
        );
        ensure!(
            allows(Resource::Group, Operation::Read, &described.group),
            "{user} cannot use its group {}",
            described.group
        );
        let relay = format!("ftgo-relay-{}", described.group);
        ensure!(
            allows(Resource::TransactionalId, Operation::Write, &relay),
            "{user} cannot run its relay's transactions ({relay})"
        );
        for other in integration_tests::SERVICES
            .iter()
            .filter(|other| other.name != definition.name)
        {
            let group = other.describe().group;
            ensure!(
                !allows(Resource::Group, Operation::Read, &group),
                "{user} may use {group}"
            );
        }
    }
    Ok(())
}

/// A service runs as a role that may not create tables, so it runs only on a schema its owner
/// migrated: on a schema never migrated it stops at once, naming `migrate`; `migrate` then
/// makes it current, and a second `migrate` has nothing to do.
#[tokio::test]
async fn a_service_runs_only_on_a_migrated_schema() -> Result<()> {
    let database = test_support::TestDatabase::create().await?;
    let url = database.url();
    // (Bounded: a service that did not refuse would run until stopped.)
    let service = |arguments: &[&str]| {
        Command::new("timeout")
            .args(["60", env!("CARGO_BIN_EXE_ftgo-service")])
            .args(arguments)
            .env(
                service_kit::Settings::own_database_variable("kitchen"),
                &url,
            )
            .env(
                format!(
                    "{}DATABASE__MIGRATION_URL",
                    service_kit::Settings::own_prefix("kitchen")
                ),
                &url,
            )
            .env("FTGO_HTTP__PORT", "0")
            .output()
            .context("running ftgo-service")
    };
    let refused = service(&["kitchen", "run", "--group", &unique_group("unmigrated")])?;
    let said = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && said.contains("kitchen-service migrate"),
        "ran on a schema never migrated: {refused:?}"
    );
    for _ in 0..2 {
        let migrated = service(&["kitchen", "migrate"])?;
        ensure!(migrated.status.success(), "{migrated:?}");
    }
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('outbox', 'inbox', 'compensations')",
    )
    .fetch_one(database.pool())
    .await?;
    ensure!(tables == 3, "{tables} of the kit's tables");
    Ok(())
}

/// docs/api/<name>.openapi.json is the document each service with a REST API serves at
/// /openapi.json (`<name>-service openapi` writes it), and no document is left for a service
/// without one.
#[test]
fn the_committed_openapi_documents_are_the_served_ones() -> Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api");
    for definition in &integration_tests::SERVICES {
        let path = dir.join(format!("{}.openapi.json", definition.name));
        let committed = std::fs::read_to_string(&path).ok();
        match definition.openapi() {
            Some(document) => {
                let served = serde_json::to_string_pretty(&document)? + "\n";
                ensure!(
                    committed.as_deref() == Some(served.as_str()),
                    "{} is not the served document: {name}-service openapi > docs/api/{name}.openapi.json",
                    path.display(),
                    name = definition.name
                );
            }
            None => ensure!(
                committed.is_none(),
                "{} documents a service without a REST API",
                path.display()
            ),
        }
    }
    Ok(())
}
