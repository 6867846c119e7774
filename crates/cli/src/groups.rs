//! `ftgo groups reset --to-end`: moves a stopped consumer group past what waits on its topics,
//! as `kafka-consumer-groups --reset-offsets --to-latest --execute` does (a service's own
//! binary does it for its group with `<name>-service reset --to-end`, knowing which topics it
//! keeps replicas from).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kafka::{GroupOffsets, TopicAdmin};

use crate::send::kafka_unreachable;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `ftgo groups reset`.
#[derive(Debug, clap::Args)]
pub struct ResetOptions {
    /// The consumer group (stopped: the broker refuses while it has members).
    pub group: String,
    /// Required: the end is the only place it moves to.
    #[arg(long, required = true)]
    pub to_end: bool,
    /// A topic to move it on; repeatable.
    #[arg(
        long = "topic",
        value_name = "TOPIC",
        required_unless_present = "all_topics"
    )]
    pub topics: Vec<String>,
    /// Every topic the group has committed offsets on.
    #[arg(long, conflicts_with = "topics")]
    pub all_topics: bool,
}

pub fn reset(bootstrap: &str, options: &ResetOptions) -> Result<ExitCode> {
    let offsets = GroupOffsets::new(bootstrap, &options.group, TIMEOUT)
        .with_context(|| kafka_unreachable(bootstrap))?;
    let topics = if options.all_topics {
        committed_topics(bootstrap, &offsets)?
    } else {
        options.topics.clone()
    };
    if topics.is_empty() {
        bail!(
            "group {} has committed nothing on any topic: name them with --topic",
            options.group
        );
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let moved = offsets
        .reset_to_end(&names)
        .with_context(|| format!("moving group {}", options.group))?;
    out!(
        "{}: {moved} partitions moved to the end of {}",
        options.group,
        names.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// The topics `offsets`' group has committed something on.
fn committed_topics(bootstrap: &str, offsets: &GroupOffsets) -> Result<Vec<String>> {
    let admin =
        TopicAdmin::new(bootstrap, TIMEOUT).with_context(|| kafka_unreachable(bootstrap))?;
    let mut topics = Vec::new();
    for topic in admin.topics()? {
        if offsets
            .committed(&topic.name)?
            .iter()
            .any(|(_, offset)| offset.is_some())
        {
            topics.push(topic.name);
        }
    }
    Ok(topics)
}
