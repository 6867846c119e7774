//! A consumer group of real processes: three members share a topic while a producer writes
//! 10,000 records over 1,000 keys; a fourth joins, one leaves gracefully (SIGTERM), one is
//! killed (SIGKILL) mid-stream. Every record must be handled, each key's records in order; the
//! redeliveries the kill causes (at least once) are counted and printed.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kafka::KafkaPublisher;
use messaging::{Message, Publisher};
use test_support::{Platform, TestTopic, check_per_key_order, unique_group, unique_suffix};

const KEYS: usize = 1_000;
const PER_KEY: u32 = 10;
const TOTAL: usize = KEYS * PER_KEY as usize;

struct Member {
    name: &'static str,
    child: Child,
}

fn start(topic: &str, group: &str, name: &'static str, dir: &std::path::Path) -> Result<Member> {
    let child = Command::new(env!("CARGO_BIN_EXE_group-member"))
        .args([topic, group, name])
        .arg(dir.join(format!("{name}.log")))
        .arg("10") // ms of work per record: each partition takes 8 s or more, so joins and leaves happen mid-stream
        .env(
            "FTGO_KAFKA__BOOTSTRAP_SERVERS",
            Platform::from_env().bootstrap_servers,
        )
        // The member's log (rebalances, commits) beside its records, for a failure's story.
        .stderr(std::fs::File::create(dir.join(format!("{name}.stderr")))?)
        .spawn()
        .with_context(|| format!("starting member {name}"))?;
    Ok(Member { name, child })
}

/// Every line every member wrote, in the order they were handled: (key, sequence, member).
fn handled(dir: &std::path::Path) -> Result<Vec<(String, u32, String)>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.path().extension().is_none_or(|e| e != "log") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            // A killed member may leave a torn last line; it has fewer fields.
            if let [nanos, key, sequence, member, _, _] = fields.as_slice() {
                let nanos: u128 = nanos.parse()?;
                all.push((
                    nanos,
                    ((*key).to_owned(), sequence.parse()?, (*member).to_owned()),
                ));
            }
        }
    }
    all.sort_by_key(|(nanos, _)| *nanos);
    Ok(all.into_iter().map(|(_, record)| record).collect())
}

fn distinct(records: &[(String, u32, String)]) -> usize {
    records
        .iter()
        .map(|(k, s, _)| (k, s))
        .collect::<HashSet<_>>()
        .len()
}

async fn wait_until_distinct(dir: &std::path::Path, count: usize, seconds: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let seen = distinct(&handled(dir)?);
        if seen >= count {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "only {seen} of {count} records handled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until each of `names` has handled a record: it is in the group and has partitions.
async fn wait_until_working(dir: &std::path::Path, names: &[&str], seconds: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let records = handled(dir)?;
        let idle: Vec<&&str> = names
            .iter()
            .filter(|name| !records.iter().any(|(_, _, member)| member == *name))
            .collect();
        if idle.is_empty() {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{idle:?} never got work"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(member: &Member, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), member.child.id().to_string()])
        .status()?;
    ensure!(status.success(), "kill -{signal} {} failed", member.name);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_leave_and_die_and_every_record_is_handled_in_key_order() -> Result<()> {
    let topic = TestTopic::create("group_processes", 12).await?;
    let group = unique_group("group-processes");
    let dir: PathBuf = std::env::temp_dir().join(format!("ftgo-group-{}", unique_suffix()));
    std::fs::create_dir_all(&dir)?;

    let mut members = vec![
        start(topic.name(), &group, "m1", &dir)?,
        start(topic.name(), &group, "m2", &dir)?,
        start(topic.name(), &group, "m3", &dir)?,
    ];

    // The producer writes while the group works: key by key order, rounds of all keys.
    let publisher = KafkaPublisher::new(&Platform::from_env().bootstrap_servers, "group-test")?;
    let producer_topic = topic.name().to_owned();
    let producer = tokio::spawn(async move {
        for sequence in 0..PER_KEY {
            let round = (0..KEYS).map(|k| {
                let publisher = publisher.clone();
                let topic = producer_topic.clone();
                let message = Message::new(
                    Some(format!("order-{k}")),
                    sequence.to_string().into_bytes(),
                );
                async move { publisher.publish(&topic, &message).await }
            });
            for result in futures::future::join_all(round).await {
                result?;
            }
        }
        anyhow::Ok(())
    });

    // Members joining at once can take a few seconds to settle into one generation.
    wait_until_working(&dir, &["m1", "m2", "m3"], 60).await?;
    wait_until_distinct(&dir, 2_000, 120).await?;
    members.push(start(topic.name(), &group, "m4", &dir)?);
    wait_until_working(&dir, &["m4"], 60).await?;
    wait_until_distinct(&dir, 4_000, 120).await?;
    signal(&members[0], "TERM")?; // m1 leaves gracefully
    wait_until_distinct(&dir, 6_000, 120).await?;
    signal(&members[1], "KILL")?; // m2 dies without committing its last records
    producer.await??;
    wait_until_distinct(&dir, TOTAL, 180).await?;
    // Let the survivors commit, then stop them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for member in &members[2..] {
        signal(member, "TERM")?;
    }
    for member in &mut members {
        let status = member.child.wait()?;
        if member.name != "m2" {
            ensure!(status.success(), "{} exited with {status}", member.name);
        }
    }

    let records = handled(&dir)?;
    let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, member) in &records {
        *per_member.entry(member).or_default() += 1;
    }
    let redeliveries = check_per_key_order(
        records
            .iter()
            .map(|(key, sequence, _)| (key.as_str(), *sequence)),
        KEYS,
        PER_KEY,
    )?;
    ensure!(
        per_member.len() == 4,
        "members that worked: {per_member:?} (their logs are in {})",
        dir.display()
    );
    println!(
        "{TOTAL} records, {} handlings, {redeliveries} redelivered; per member {per_member:?}",
        records.len()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
