//! `ftgo topics apply`: brings the broker's topics in line with `deploy/topics.toml`,
//! idempotently (creates what is missing, grows partitions, sets configs; never shrinks or
//! deletes). `--check` only reads the manifest and prints what it declares.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use kafka::TopicChange;

use crate::send::kafka_unreachable;

/// `ftgo topics apply`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The topic manifest.
    #[arg(long, default_value = "deploy/topics.toml", value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Checks the manifest and prints each topic it declares (name, partitions, replication,
    /// configs, tab-separated), without the broker.
    #[arg(long)]
    pub check: bool,
    /// Copies of each partition of a topic created, instead of the manifest's (which suits
    /// one broker); `min.insync.replicas` becomes one less (a write survives one broker down).
    /// `deploy/local/up` gives the local cluster's (FTGO_KAFKA_BROKERS).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub replication: Option<i32>,
}

pub async fn apply(bootstrap: &str, options: &Options) -> Result<ExitCode> {
    let mut specs = kafka::manifest::read(&options.file)?;
    if let Some(copies) = options.replication {
        specs = specs
            .into_iter()
            .map(|spec| spec.replicated(copies))
            .collect();
    }
    if options.check {
        for spec in &specs {
            let configs: Vec<String> = spec
                .configs
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            out!(
                "{}\t{}\t{}\t{}",
                spec.name,
                spec.partitions,
                spec.replication,
                configs.join(";")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let changes = kafka::apply_topics(bootstrap, &specs, Duration::from_secs(30))
        .await
        .with_context(|| kafka_unreachable(bootstrap))?;
    let (mut unchanged, mut refused) = (0, 0);
    for (topic, changes) in &changes {
        if changes.is_empty() {
            unchanged += 1;
        }
        for change in changes {
            match change {
                TopicChange::Created { partitions } => {
                    out!("created   {topic} ({partitions} partitions)");
                }
                TopicChange::Grown { from, to } => out!(
                    "grown     {topic} {from} -> {to} partitions (keys now map to other partitions)"
                ),
                TopicChange::Updated(configs) => {
                    let set: Vec<String> = configs
                        .iter()
                        .map(|(key, _, value)| format!("{key}={value}"))
                        .collect();
                    out!("updated   {topic} {}", set.join(", "));
                }
                TopicChange::Refused(why) => {
                    refused += 1;
                    eprintln!("error     {topic} {why}");
                }
            }
        }
    }
    if unchanged > 0 {
        out!("unchanged {unchanged} topic(s)");
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
