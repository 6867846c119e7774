//! `ftgo schemas ...` run as a user runs it, against the real schema registry, on a schemas
//! directory of its own (a throwaway topic, so its subjects are deleted afterwards).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use common::ftgo;
use test_support::{TestTopic, unique_suffix};

/// A schemas directory with one channel (`topic`) and one record, `Thing`, whose fields are
/// given as JSON.
fn schemas_dir(topic: &str, fields: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ftgo-schemas-{}", unique_suffix()));
    fs::create_dir_all(dir.join(topic))?;
    fs::write(
        dir.join("catalog.toml"),
        format!(
            "[defaults]\ncompatibility = \"FULL_TRANSITIVE\"\n\n[[channel]]\ntopic = \"{topic}\"\nproducers = [\"a test\"]\nconsumers = [\"a test\"]\n\n[[channel.record]]\nname = \"Thing\"\nkey = \"id\"\n"
        ),
    )?;
    write_thing(&dir, topic, fields)?;
    Ok(dir)
}

fn write_thing(dir: &Path, topic: &str, fields: &str) -> Result<()> {
    fs::write(
        dir.join(topic).join("Thing.avsc"),
        format!(
            r#"{{"type": "record", "name": "Thing", "namespace": "{topic}", "doc": "A test record.", "fields": [
                {{"name": "id", "type": {{"type": "string", "logicalType": "uuid"}}, "doc": "The key."}},
                {fields}
            ]}}"#
        ),
    )?;
    Ok(())
}

const TOTAL: &str = r#"{"name": "total", "type": "long", "doc": "A total."}"#;
const REASON_AB: &str = r#"{"name": "reason", "type": {"type": "enum", "name": "Reason", "symbols": ["A", "B"]}, "doc": "Why."}"#;
const REASON_A: &str = r#"{"name": "reason", "type": {"type": "enum", "name": "Reason", "symbols": ["A"]}, "doc": "Why."}"#;
const NOTE: &str =
    r#"{"name": "note", "type": ["null", "string"], "default": null, "doc": "New and optional."}"#;

#[test]
fn check_accepts_compatible_changes_and_names_the_field_of_incompatible_ones() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let topic = runtime.block_on(TestTopic::create("cli_schemas", 1))?;
    let subject = format!("{0}-{0}.Thing", topic.name());
    let dir = schemas_dir(topic.name(), &format!("{TOTAL}, {REASON_AB}"))?;
    let dir_arg = dir.to_str().context("temp dir")?;

    let first = ftgo(&["schemas", "check", "--dir", dir_arg])?;
    ensure!(
        first.code == 0 && first.stdout.contains("new "),
        "{}{}",
        first.stdout,
        first.stderr
    );

    let registered = ftgo(&["schemas", "register", "--dir", dir_arg])?;
    ensure!(
        registered.code == 0 && registered.stdout.contains("FULL_TRANSITIVE  registered"),
        "{}{}",
        registered.stdout,
        registered.stderr
    );
    let unchanged = ftgo(&["schemas", "check", "--dir", dir_arg])?;
    ensure!(
        unchanged.code == 0
            && unchanged
                .stdout
                .contains(&format!("unchanged     {subject}")),
        "{}",
        unchanged.stdout
    );

    write_thing(&dir, topic.name(), &format!("{TOTAL}, {REASON_AB}, {NOTE}"))?;
    let compatible = ftgo(&["schemas", "check", "--dir", dir_arg])?;
    ensure!(
        compatible.code == 0
            && compatible.stdout.contains("compatible    ")
            && compatible.stdout.contains("would be version 2"),
        "{}{}",
        compatible.stdout,
        compatible.stderr
    );

    let incompatible_changes = [
        (
            "a field removed without a default",
            REASON_AB.to_owned(),
            "field `total` was removed, and the old schema gives it no default",
        ),
        (
            "a changed type",
            format!(r#"{{"name": "total", "type": "string", "doc": "Now text."}}, {REASON_AB}"#),
            "field `total` changed type from long to string",
        ),
        (
            "an enum symbol removed",
            format!("{TOTAL}, {REASON_A}"),
            "field `reason` (enum Reason) lacks symbol(s) B",
        ),
    ];
    for (change, fields, explanation) in incompatible_changes {
        write_thing(&dir, topic.name(), &fields)?;
        let run = ftgo(&["schemas", "check", "--dir", dir_arg])?;
        ensure!(
            run.code == 1,
            "{change}: exit {}\n{}{}",
            run.code,
            run.stdout,
            run.stderr
        );
        ensure!(
            run.stdout
                .contains(&format!("INCOMPATIBLE  {subject} (FULL_TRANSITIVE)")),
            "{change}: {}",
            run.stdout
        );
        ensure!(
            run.stdout.contains(explanation),
            "{change}: no `{explanation}` in\n{}",
            run.stdout
        );

        let refused = ftgo(&["schemas", "register", "--dir", dir_arg])?;
        ensure!(
            refused.code == 1 && refused.stdout.contains("REFUSED"),
            "{change}: registered anyway\n{}",
            refused.stdout
        );
    }
    fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The generated docs committed (the message catalog, the ACL table) are what the catalog
/// gives today: `ftgo schemas docs --check` and `ftgo acls docs --check`.
#[test]
fn the_committed_generated_docs_are_what_the_catalog_says() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (command, out) in [
        ("schemas", "docs/messages.md"),
        ("acls", "docs/security.md"),
    ] {
        let run = ftgo(&[
            command,
            "docs",
            "--check",
            "--dir",
            root.join("schemas").to_str().context("path")?,
            "--out",
            root.join(out).to_str().context("path")?,
        ])?;
        ensure!(
            run.code == 0,
            "{command} docs: {}{}",
            run.stdout,
            run.stderr
        );
    }
    Ok(())
}

#[test]
fn docs_check_fails_on_a_stale_catalog() -> Result<()> {
    let topic = format!("test.cli_docs.t{}", unique_suffix());
    let dir = schemas_dir(&topic, TOTAL)?;
    let out = dir.join("messages.md");
    let (dir_arg, out_arg) = (dir.to_str().context("path")?, out.to_str().context("path")?);
    ensure!(ftgo(&["schemas", "docs", "--dir", dir_arg, "--out", out_arg])?.code == 0);
    let written = fs::read_to_string(&out)?;
    ensure!(
        written.contains("| `total` | `long` | A total. |"),
        "{written}"
    );
    ensure!(
        ftgo(&[
            "schemas", "docs", "--check", "--dir", dir_arg, "--out", out_arg
        ])?
        .code
            == 0
    );
    write_thing(&dir, &topic, NOTE)?;
    let stale = ftgo(&[
        "schemas", "docs", "--check", "--dir", dir_arg, "--out", out_arg,
    ])?;
    ensure!(
        stale.code == 1 && stale.stderr.contains("out of date"),
        "{}{}",
        stale.stdout,
        stale.stderr
    );
    fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn a_missing_schemas_dir_says_what_to_do() -> Result<()> {
    let run = ftgo(&["schemas", "check", "--dir", "/nonexistent"])?;
    ensure!(run.code == 2, "exit {}", run.code);
    ensure!(
        run.stderr
            .contains("run from the repository root, or pass --dir"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn every_channel_of_the_catalog_is_a_topic_of_the_manifest() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest: toml::Table = fs::read_to_string(root.join("deploy/topics.toml"))?.parse()?;
    let declared: Vec<&str> = manifest["topic"]
        .as_array()
        .context("no [[topic]]")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for channel in contracts::catalog::CHANNELS {
        ensure!(
            declared.contains(&channel.topic),
            "{} is not in deploy/topics.toml",
            channel.topic
        );
    }
    Ok(())
}
