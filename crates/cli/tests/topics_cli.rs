//! `ftgo topics` run as an operator runs it, against real Kafka: a manifest of its own naming
//! a topic of its own (records in two partitions, a group that has handled some of them) and a
//! topic that does not exist; and the project's manifest.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::ftgo;
use kafka::{GroupOffsets, KafkaPublisher};
use messaging::{Message, Publisher};
use test_support::{Platform, TestTopic, unique_group, unique_suffix};

#[tokio::test]
async fn topics_shows_partitions_records_and_each_group_s_lag() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("topics", 2).await?;
    let publisher = KafkaPublisher::new(&platform.bootstrap_servers, "topics-test")?;
    let mut deliveries = Vec::new();
    for key in ["a", "b", "c", "d", "e"] {
        deliveries.push(
            publisher
                .publish(topic.name(), &Message::new(Some(key.into()), b"x".to_vec()))
                .await?,
        );
    }
    // The group has handled the first record it saw on one partition, nothing on the other.
    let group = unique_group("topics");
    let first = &deliveries[0];
    GroupOffsets::new(&platform.bootstrap_servers, &group, Duration::from_secs(10))?
        .commit(topic.name(), &[(first.partition, first.offset + 1)])?;

    let missing = format!("test.topics.missing{}", unique_suffix());
    let manifest = std::env::temp_dir().join(format!("topics-{}.toml", unique_suffix()));
    std::fs::write(
        &manifest,
        format!(
            "[defaults]\npartitions = 2\nreplication = 1\nretention = \"1d\"\ncleanup = \"delete\"\n\n[[topic]]\nname = \"{}\"\nkey = \"k\"\n\n[[topic]]\nname = \"{missing}\"\nkey = \"k\"\n",
            topic.name()
        ),
    )?;
    let file = manifest.to_string_lossy().into_owned();
    let json = ftgo(&[
        "topics", "--file", &file, "--group", &group, "--output", "json",
    ])?;
    ensure!(json.code == 0, "{}", json.stderr);
    let rows: serde_json::Value = serde_json::from_str(&json.stdout)?;
    let rows = rows.as_array().context("an array of topics")?;
    ensure!(
        rows.iter().any(|r| r["topic"] == topic.name()
            && r["partitions"] == 2
            && r["records"] == 5
            && r["lag"][&group] == 4),
        "{}",
        json.stdout
    );
    ensure!(
        rows.iter()
            .any(|r| r["topic"] == missing.as_str() && r["missing"] == true),
        "{}",
        json.stdout
    );
    let run = ftgo(&["topics", "--file", &file, "--group", &group])?;
    std::fs::remove_file(&manifest)?;
    ensure!(run.code == 0, "{}", run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with(topic.name()))
        .with_context(|| format!("no row of {} in:\n{}", topic.name(), run.stdout))?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    ensure!(
        cells[1..] == ["2", "5", group.as_str(), "4"],
        "{row}\n{}",
        run.stdout
    );
    ensure!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&missing) && l.contains("missing on the broker")),
        "{}",
        run.stdout
    );
    ensure!(
        run.stdout.lines().all(|l| l.len() <= 120),
        "wider than 120 columns:\n{}",
        run.stdout
    );

    // The project's manifest: every topic, whether or not a service ever ran.
    let workspace_manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/topics.toml");
    let project = ftgo(&["topics", "--file", workspace_manifest])?;
    ensure!(project.code == 0, "{}", project.stderr);
    for topic in [
        "ftgo.order.commands",
        "ftgo.restaurant.events",
        "ftgo.order-service.dlt",
    ] {
        ensure!(
            project.stdout.lines().any(|l| l.starts_with(topic)),
            "no {topic} in:\n{}",
            project.stdout
        );
    }
    ensure!(project.stdout.lines().all(|l| l.len() <= 120));

    // Without a manifest: the broker's ftgo.* topics.
    let no_file = ftgo(&["topics", "--file", "/nonexistent/topics.toml"])?;
    ensure!(no_file.code == 0, "{}", no_file.stderr);
    ensure!(
        no_file.stdout.contains("ftgo.order.events")
            && !no_file.stdout.contains(topic.name())
            && no_file.stdout.contains("the broker's ftgo.* topics"),
        "{}",
        no_file.stdout
    );
    Ok(())
}

/// `ftgo topics apply` creates a missing topic, grows one with fewer partitions and sets its
/// configs, changes nothing the second time, and refuses to shrink.
#[tokio::test]
async fn apply_creates_grows_and_updates_idempotently_and_never_shrinks() -> Result<()> {
    let platform = Platform::from_env();
    let existing = TestTopic::create("apply", 2).await?;
    let created = TestTopic::adopt(TestTopic::unique_name("apply"));
    let manifest = std::env::temp_dir().join(format!("apply-{}.toml", unique_suffix()));
    let write = |existing_partitions: i32| {
        std::fs::write(
            &manifest,
            format!(
                "[defaults]\npartitions = 3\nreplication = 1\nretention = \"7d\"\ncleanup = \"delete\"\n\n\
                 [[topic]]\nname = \"{}\"\nkey = \"k\"\npartitions = {existing_partitions}\nretention = \"2d\"\n\n\
                 [[topic]]\nname = \"{}\"\nkey = \"k\"\ncleanup = \"compact\"\n",
                existing.name(),
                created.name()
            ),
        )
    };
    write(4)?;
    let file = manifest.to_string_lossy().into_owned();

    let first = ftgo(&["topics", "apply", "--file", &file])?;
    ensure!(first.code == 0, "{}{}", first.stdout, first.stderr);
    for expected in [
        format!("grown     {} 2 -> 4 partitions", existing.name()),
        format!("updated   {} ", existing.name()),
        "retention.ms=172800000".to_owned(),
        format!("created   {} (3 partitions)", created.name()),
    ] {
        ensure!(
            first.stdout.contains(&expected),
            "no {expected:?} in:\n{}",
            first.stdout
        );
    }
    let admin = kafka::TopicAdmin::new(&platform.bootstrap_servers, Duration::from_secs(10))?;
    ensure!(admin.partitions(existing.name())?.len() == 4);
    ensure!(admin.partitions(created.name())?.len() == 3);

    let second = ftgo(&["topics", "apply", "--file", &file])?;
    ensure!(second.code == 0, "{}", second.stderr);
    ensure!(
        second.stdout.trim() == "unchanged 2 topic(s)",
        "{}",
        second.stdout
    );

    write(1)?;
    let shrink = ftgo(&["topics", "apply", "--file", &file])?;
    std::fs::remove_file(&manifest)?;
    ensure!(shrink.code == 1, "shrinking accepted: {}", shrink.stdout);
    ensure!(
        shrink.stderr.contains("cannot shrink a topic"),
        "{}",
        shrink.stderr
    );
    ensure!(admin.partitions(existing.name())?.len() == 4);
    Ok(())
}

#[test]
fn completions_are_scripts_of_every_command() -> Result<()> {
    let bash = ftgo(&["completions", "bash"])?;
    ensure!(bash.code == 0, "{}", bash.stderr);
    for command in ["topics", "groups", "completions", "order", "dlq"] {
        ensure!(
            bash.stdout.contains(command),
            "no {command} in the bash script"
        );
    }
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &bash.stdout])
        .status()?;
    ensure!(checked.success(), "bash does not parse the script");
    let refused = ftgo(&["completions", "tcsh"])?;
    ensure!(
        refused.code == 2 && refused.stderr.contains("possible values"),
        "{}",
        refused.stderr
    );
    Ok(())
}

#[test]
fn apply_check_prints_the_manifest_and_names_the_topic_and_field_of_an_error() -> Result<()> {
    let project = ftgo(&[
        "topics",
        "apply",
        "--check",
        "--file",
        "../../deploy/topics.toml",
    ])?;
    ensure!(project.code == 0, "{}", project.stderr);
    let line = project
        .stdout
        .lines()
        .find(|l| l.starts_with("ftgo.order.commands\t"))
        .context("no line of ftgo.order.commands")?;
    ensure!(line.starts_with("ftgo.order.commands\t12\t1\t"), "{line}");
    ensure!(line.contains("cleanup.policy=delete"), "{line}");

    let bad = std::env::temp_dir().join(format!("bad-{}.toml", unique_suffix()));
    std::fs::write(
        &bad,
        "[defaults]\npartitions = 3\nreplication = 1\ncleanup = \"delete\"\n\n[[topic]]\nname = \"ftgo.x.events\"\nretention = \"a week\"\nkey = \"x id\"\n",
    )?;
    let refused = ftgo(&[
        "topics",
        "apply",
        "--check",
        "--file",
        &bad.to_string_lossy(),
    ])?;
    std::fs::remove_file(&bad)?;
    ensure!(refused.code == 2, "accepted: {}", refused.stdout);
    ensure!(
        refused
            .stderr
            .contains(r#"topic #1 (ftgo.x.events): retention "a week" is not"#),
        "{}",
        refused.stderr
    );
    Ok(())
}

/// A login the broker refuses is said as such, with the settings that name the principal and
/// its password, not as a broker that does not answer.
#[test]
fn a_refused_login_names_the_principal_s_settings_not_a_broker_down() -> Result<()> {
    let platform = Platform::from_env();
    let wrong = std::env::temp_dir().join(format!("ftgo-wrong-password-{}", unique_suffix()));
    std::fs::write(&wrong, "not-the-password")?;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ftgo"))
        .arg("topics")
        .env("FTGO_KAFKA__BOOTSTRAP_SERVERS", &platform.bootstrap_servers)
        .env("FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE", &wrong)
        .output()?;
    std::fs::remove_file(&wrong)?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(
        !output.status.success(),
        "ftgo topics ran with a wrong password"
    );
    let user = std::env::var("FTGO_KAFKA__CONFIG__SASL_USERNAME")?;
    ensure!(
        stderr.contains(&format!("did not let {user} in"))
            && stderr.contains("Authentication failed")
            && stderr.contains("FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE")
            && !stderr.contains("does not answer"),
        "{stderr}"
    );
    Ok(())
}
