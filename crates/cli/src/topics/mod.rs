//! `ftgo topics`: every topic of the project with its partitions, how many records it holds,
//! and how far behind each of the project's consumer groups is on it.
//!
//! Lag is summed over partitions: high watermark minus the group's committed offset, or minus
//! the low watermark where the group has committed nothing on that partition (it would start
//! there). A group is shown on a topic only when it has committed something on it.

pub mod apply;
pub mod strimzi;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use kafka::{GroupOffsets, TopicAdmin, Watermarks};

use crate::output::Output;
use crate::send::{kafka_unreachable, probe_kafka};

const TIMEOUT: Duration = Duration::from_secs(10);

/// `ftgo topics`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The topic manifest; when it is missing, every `ftgo.*` topic on the broker.
    #[arg(long, default_value = "deploy/topics.toml", value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Another consumer group to show the lag of (besides the services' groups, `*-service`,
    /// that the broker knows); repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// `json`: an array of topics, each with its partitions, records and each group's lag
    /// (`missing: true` for a manifest topic the broker lacks).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// The topics to show: the manifest's, or the broker's `ftgo.*` ones.
fn topic_names(file: &Path, admin: &TopicAdmin) -> Result<(Vec<String>, String)> {
    match std::fs::exists(file) {
        Ok(true) => Ok((
            kafka::manifest::read(file)?
                .into_iter()
                .map(|t| t.name)
                .collect(),
            format!("topics of {}", file.display()),
        )),
        Ok(false) => {
            let names = admin
                .topics()?
                .into_iter()
                .map(|t| t.name)
                .filter(|n| n.starts_with("ftgo."))
                .collect();
            Ok((
                names,
                format!("{} not found: the broker's ftgo.* topics", file.display()),
            ))
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", file.display())),
    }
}

/// A group's lag on a topic: `None` when it has committed nothing there.
pub fn lag(watermarks: &[Watermarks], committed: &[(i32, Option<i64>)]) -> Option<i64> {
    if committed.iter().all(|(_, c)| c.is_none()) {
        return None;
    }
    Some(
        watermarks
            .iter()
            .map(|w| {
                let from = committed
                    .iter()
                    .find(|(p, _)| *p == w.partition)
                    .and_then(|(_, c)| *c)
                    .unwrap_or(w.low);
                (w.high - from.max(w.low)).max(0)
            })
            .sum(),
    )
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    topic: String,
    /// (partitions, records), or why there are none.
    size: Result<(usize, i64), String>,
    lags: Vec<(String, i64)>,
}

pub fn topics(bootstrap: &str, options: &Options) -> Result<ExitCode> {
    let admin = probe_kafka(bootstrap)?;
    let (names, source) = topic_names(&options.file, &admin)?;
    // The services' groups (`<name>-service`) the broker knows, and the ones asked for.
    let mut groups: Vec<String> = admin
        .groups()?
        .into_iter()
        .filter(|g| g.ends_with("-service") && !g.starts_with("test-"))
        .collect();
    for group in &options.groups {
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    let group_offsets: Vec<GroupOffsets> = groups
        .iter()
        .map(|g| GroupOffsets::new(bootstrap, g, TIMEOUT))
        .collect::<Result<_, _>>()
        .with_context(|| kafka_unreachable(bootstrap))?;
    let rows: Vec<Row> = names
        .into_iter()
        .map(|topic| row(&admin, &group_offsets, topic))
        .collect::<Result<_>>()?;
    if options.output == Output::Json {
        let topics: Vec<serde_json::Value> = rows.iter().map(Row::json).collect();
        out!("{}", serde_json::Value::Array(topics));
        return Ok(ExitCode::SUCCESS);
    }
    print_table(&rows)?;
    out!("");
    out!("{source}; lag = records a group has not handled yet");
    let idle: Vec<&str> = groups
        .iter()
        .filter(|g| {
            !rows
                .iter()
                .any(|r| r.lags.iter().any(|(seen, _)| seen == *g))
        })
        .map(String::as_str)
        .collect();
    print_idle(&idle)?;
    Ok(ExitCode::SUCCESS)
}

/// One topic's partitions, records, and the lag of each group that committed on it.
fn row(admin: &TopicAdmin, groups: &[GroupOffsets], topic: String) -> Result<Row> {
    let watermarks = match admin.watermarks(&topic) {
        Ok(w) => w,
        Err(kafka::KafkaError::UnknownTopic(_)) => {
            return Ok(Row {
                topic,
                size: Err("missing on the broker (deploy/local/up creates it)".into()),
                lags: Vec::new(),
            });
        }
        Err(error) => return Err(error).with_context(|| format!("reading {topic}'s watermarks")),
    };
    let mut lags = Vec::new();
    for offsets in groups {
        let committed = offsets
            .committed(&topic)
            .with_context(|| format!("reading {}'s offsets on {topic}", offsets.group()))?;
        if let Some(lag) = lag(&watermarks, &committed) {
            lags.push((offsets.group().to_owned(), lag));
        }
    }
    Ok(Row {
        topic,
        size: Ok((
            watermarks.len(),
            watermarks.iter().map(Watermarks::records).sum(),
        )),
        lags,
    })
}

/// The groups with no committed offsets on any topic shown, wrapped.
fn print_idle(idle: &[&str]) -> Result<()> {
    if idle.is_empty() {
        return Ok(());
    }
    out!("groups with no committed offsets on these topics (never ran, or their offsets expired):");
    let mut line = String::new();
    for group in idle {
        if !line.is_empty() && line.len() + group.len() + 2 > 118 {
            out!("  {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(group);
    }
    out!("  {line}");
    Ok(())
}

impl Row {
    fn json(&self) -> serde_json::Value {
        match &self.size {
            Ok((partitions, records)) => {
                let lag: serde_json::Map<String, serde_json::Value> = self
                    .lags
                    .iter()
                    .map(|(group, lag)| (group.clone(), (*lag).into()))
                    .collect();
                serde_json::json!({
                    "topic": self.topic,
                    "partitions": partitions,
                    "records": records,
                    "lag": lag,
                })
            }
            Err(_) => serde_json::json!({ "topic": self.topic, "missing": true }),
        }
    }
}

fn print_table(rows: &[Row]) -> Result<()> {
    let topic_width = rows
        .iter()
        .map(|r| r.topic.len())
        .chain([5])
        .max()
        .unwrap_or(5);
    let group_width = rows
        .iter()
        .flat_map(|r| r.lags.iter().map(|(g, _)| g.len()))
        .chain([5])
        .max()
        .unwrap_or(5);
    let line = |topic: &str, partitions: &str, records: &str, group: &str, lag: &str| {
        let text = format!(
            "{topic:<topic_width$} {partitions:>10} {records:>10}  {group:<group_width$} {lag:>10}"
        );
        text.trim_end().to_owned()
    };
    out!("{}", line("TOPIC", "PARTITIONS", "RECORDS", "GROUP", "LAG"));
    for row in rows {
        let (partitions, records) = match &row.size {
            Ok((partitions, records)) => (partitions.to_string(), records.to_string()),
            Err(why) => {
                out!("{:<topic_width$} {why}", row.topic);
                continue;
            }
        };
        let mut lags = row.lags.iter();
        let (group, lag) = lags
            .next()
            .map(|(g, l)| (g.as_str(), l.to_string()))
            .unwrap_or(("-", String::new()));
        out!("{}", line(&row.topic, &partitions, &records, group, &lag));
        for (group, lag) in lags {
            out!("{}", line("", "", "", group, &lag.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(partition: i32, low: i64, high: i64) -> Watermarks {
        Watermarks {
            partition,
            low,
            high,
        }
    }

    #[test]
    fn lag_counts_uncommitted_partitions_from_their_start() {
        let watermarks = [marks(0, 0, 10), marks(1, 5, 8), marks(2, 0, 0)];
        assert_eq!(lag(&watermarks, &[(0, None), (1, None), (2, None)]), None);
        assert_eq!(
            lag(&watermarks, &[(0, Some(10)), (1, None), (2, None)]),
            Some(3)
        );
        assert_eq!(
            lag(&watermarks, &[(0, Some(4)), (1, Some(8)), (2, None)]),
            Some(6)
        );
        // A commit below the low watermark (records deleted since) counts from the low one.
        assert_eq!(
            lag(&watermarks, &[(0, Some(10)), (1, Some(2)), (2, None)]),
            Some(3)
        );
    }

    #[test]
    fn the_project_manifest_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/topics.toml");
        let specs = kafka::manifest::read(&path).expect("deploy/topics.toml is valid");
        assert!(specs.iter().any(|s| s.name == "ftgo.order.commands"));
        for channel in contracts::catalog::CHANNELS {
            assert!(
                specs.iter().any(|s| s.name == channel.topic),
                "{} is in the catalog, not in deploy/topics.toml",
                channel.topic
            );
        }
    }
}
