//! Running the `ftgo` binary as a user does, against the local platform.

use std::process::Command;

use anyhow::{Context, Result};
use test_support::Platform;

/// How a run of `ftgo` ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ftgo ARGS` with the platform's addresses in its environment.
pub fn ftgo(args: &[&str]) -> Result<Run> {
    let platform = Platform::from_env();
    let output = Command::new(env!("CARGO_BIN_EXE_ftgo"))
        .args(args)
        .env("FTGO_KAFKA__BOOTSTRAP_SERVERS", &platform.bootstrap_servers)
        .env("FTGO_SCHEMA_REGISTRY__URL", &platform.schema_registry_url)
        .output()
        .context("running ftgo")?;
    Ok(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

/// Starts `ftgo ARGS` in the background (output piped), for commands that wait.
#[allow(dead_code)]
pub fn spawn_ftgo(args: &[&str]) -> Result<std::process::Child> {
    use std::process::Stdio;
    let platform = Platform::from_env();
    Command::new(env!("CARGO_BIN_EXE_ftgo"))
        .args(args)
        .env("FTGO_KAFKA__BOOTSTRAP_SERVERS", &platform.bootstrap_servers)
        .env("FTGO_SCHEMA_REGISTRY__URL", &platform.schema_registry_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ftgo")
}

/// Where `ftgo` said it sent a record: the topic, partition and offset of a line
/// `sent TYPE to TOPIC[PARTITION]@OFFSET key=... ce_id=...`, and the ce_id.
#[allow(dead_code)]
pub fn sent_position(output: &str) -> Result<(String, i32, i64, String)> {
    let line = output
        .lines()
        .find(|l| l.contains("sent ") && l.contains(" to "))
        .with_context(|| format!("no `sent ... to ...` line in:\n{output}"))?;
    let target = line
        .split(" to ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .context("no target")?;
    let (topic, rest) = target.split_once('[').context("no [")?;
    let (partition, offset) = rest.split_once("]@").context("no ]@")?;
    let id = line
        .split("ce_id=")
        .nth(1)
        .context("no ce_id")?
        .trim()
        .to_owned();
    Ok((topic.to_owned(), partition.parse()?, offset.parse()?, id))
}

/// The record at `partition`@`offset` of `topic`.
#[allow(dead_code)]
pub fn record_at(topic: &str, partition: i32, offset: i64) -> Result<messaging::Received> {
    use std::time::{Duration, Instant};
    let follower = kafka::TopicTail::from_offsets(
        &Platform::from_env().bootstrap_servers,
        topic,
        &[(partition, offset)],
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(record) = follower.next(Duration::from_millis(200))? {
            return Ok(record);
        }
    }
    anyhow::bail!("no record at {topic}[{partition}]@{offset}")
}
