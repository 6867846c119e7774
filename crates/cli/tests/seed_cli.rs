//! `ftgo seed` run as a user runs it, against the real platform's topics. The demo ids are
//! fixed, so whatever earlier runs (or the services) did, after a run every demo restaurant and
//! consumer has been asked for (its command is on the commands topic) or exists (its event is
//! on the events topic), and a second run publishes nothing.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::ftgo;
use contracts::Codec;
use contracts::restaurant::commands::CreateRestaurant;
use kafka::read_topic;
use messaging::{Received, header};
use test_support::{Platform, unique_group};

/// `NAME=uuid` lines of `ftgo seed --print-ids`.
fn ids() -> Result<HashMap<String, String>> {
    let run = ftgo(&["seed", "--print-ids"])?;
    ensure!(run.code == 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|line| {
            let (name, id) = line.split_once('=').context("NAME=id")?;
            Ok((name.to_owned(), id.to_owned()))
        })
        .collect()
}

fn records_of(topic: &str, record_type: &str, key: &str) -> Result<Vec<Received>> {
    let platform = Platform::from_env();
    Ok(
        read_topic(&platform.bootstrap_servers, topic, Duration::from_secs(30))?
            .into_iter()
            .filter(|r| {
                r.message.key.as_deref() == Some(key)
                    && r.message.headers.get(header::TYPE) == Some(record_type)
            })
            .collect(),
    )
}

#[test]
fn print_ids_gives_the_same_uuid_v5_ids_every_time() -> Result<()> {
    let first = ids()?;
    ensure!(first == ids()?);
    let names: Vec<&str> = {
        let mut names: Vec<&str> = first.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    };
    ensure!(
        names
            == [
                "CONSUMER_ALICE_RAY",
                "CONSUMER_BOB_SATO",
                "RESTAURANT_AJANTA",
                "RESTAURANT_BANQUET_HALL",
                "RESTAURANT_MUMBAI_GRILL"
            ],
        "{names:?}"
    );
    for id in first.values() {
        let id: apache_avro::Uuid = id.parse()?;
        ensure!(id.get_version_num() == 5, "{id}");
    }
    Ok(())
}

#[tokio::test]
async fn seed_asks_for_the_demo_data_once() -> Result<()> {
    let first = ftgo(&["seed", "--no-wait"])?;
    ensure!(first.code == 0, "{}", first.stderr);
    let second = ftgo(&["seed", "--no-wait"])?;
    ensure!(second.code == 0, "{}", second.stderr);
    ensure!(
        second
            .stdout
            .contains("published 0 command(s); 5 of 5 demo record(s) were there already"),
        "{}\n{}",
        second.stdout,
        second.stderr
    );
    for expected in [
        "ftgo order create --consumer",
        "--item samosa:2 --wait",
        "banquet-for-20",
        "feast-for-40",
    ] {
        ensure!(second.stdout.contains(expected), "{}", second.stdout);
    }

    let ids = ids()?;
    let codec = Codec::for_catalog(&Platform::from_env().registry()?)?;
    for (name, id) in &ids {
        let (commands, command, events, event) = if name.starts_with("RESTAURANT_") {
            (
                "ftgo.restaurant.commands",
                "ftgo.restaurant.commands.CreateRestaurant",
                "ftgo.restaurant.events",
                "ftgo.restaurant.events.RestaurantCreated",
            )
        } else {
            (
                "ftgo.consumer.commands",
                "ftgo.consumer.commands.CreateConsumer",
                "ftgo.consumer.events",
                "ftgo.consumer.events.ConsumerCreated",
            )
        };
        let asked = records_of(commands, command, id)?;
        let exists = !records_of(events, event, id)?.is_empty();
        ensure!(
            !asked.is_empty() || exists,
            "{name} ({id}): neither asked for nor created"
        );
        if name == "RESTAURANT_AJANTA"
            && let Some(create) = asked.first()
        {
            let create: CreateRestaurant = codec.decode(commands, &create.message.payload).await?;
            ensure!(create.name == "Ajanta");
            let menu: Vec<(&str, &str, i64, &str)> = create
                .menu_items
                .iter()
                .map(|m| {
                    (
                        m.id.as_str(),
                        m.name.as_str(),
                        m.price.amount_minor,
                        m.price.currency.as_str(),
                    )
                })
                .collect();
            ensure!(
                menu == [
                    ("samosa", "Samosa", 450, "USD"),
                    ("chicken-vindaloo", "Chicken Vindaloo", 1295, "USD"),
                    ("garlic-naan", "Garlic Naan", 325, "USD"),
                ],
                "{menu:?}"
            );
            let headers = &asked[0].message.headers;
            ensure!(
                headers.get(header::SOURCE) == Some("/ftgo/cli"),
                "{headers:?}"
            );
            ensure!(create.restaurant_id.to_string() == *id);
        }
    }
    Ok(())
}

#[test]
fn seed_waits_for_the_groups_and_says_what_is_missing() -> Result<()> {
    // Groups that never commit: the wait must end at the timeout, saying what to check.
    let groups = format!(
        "order-service={},kitchen-service={},accounting-service={}",
        unique_group("seed-order"),
        unique_group("seed-kitchen"),
        unique_group("seed-accounting")
    );
    let run = ftgo(&["seed", "--timeout", "3s", "--groups", &groups])?;
    ensure!(run.code == 1, "exit {}: {}", run.code, run.stderr);
    ensure!(run.stderr.contains("timed out waiting"), "{}", run.stderr);
    // Which service it names depends on which demo data earlier runs left on the topics.
    ensure!(
        run.stderr.contains("service running?") || run.stderr.contains("test-seed-order-"),
        "{}",
        run.stderr
    );
    let bad = ftgo(&["seed", "--groups", "billing=x"])?;
    ensure!(
        bad.code == 2 && bad.stderr.contains("order-service, kitchen-service"),
        "{}",
        bad.stderr
    );
    Ok(())
}
