//! `deploy/topics.toml`, read and checked: every topic of FTGO with its partitions,
//! replication, key, retention, cleanup policy and other configs. Each error names the topic
//! and the field.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::TopicSpec;

/// The fields a topic (or the defaults) may have; anything else is an error.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    name: Option<String>,
    partitions: Option<i64>,
    replication: Option<i64>,
    key: Option<String>,
    retention: Option<String>,
    cleanup: Option<String>,
    #[serde(default)]
    configs: BTreeMap<String, String>,
    #[allow(dead_code)] // documentation only
    doc: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Fields,
    #[serde(default)]
    topic: Vec<toml::Table>,
}

/// Reads and checks the manifest at `path`.
pub fn read(path: &Path) -> Result<Vec<TopicSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| path.display().to_string())
}

/// Checks a manifest's text: the topics it declares, with their configs complete
/// (`cleanup.policy` and `retention.ms` from `cleanup` and `retention`).
pub fn parse(text: &str) -> Result<Vec<TopicSpec>> {
    let file: File = toml::from_str(text).context("not a valid manifest")?;
    let mut specs: Vec<TopicSpec> = Vec::with_capacity(file.topic.len());
    for (index, table) in file.topic.into_iter().enumerate() {
        let name = table
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("no name")
            .to_owned();
        let place = format!("topic #{} ({name})", index + 1);
        let topic: Fields = table
            .try_into()
            .map_err(|error: toml::de::Error| anyhow::anyhow!("{place}: {}", error.message()))?;
        let spec = spec(&place, &topic, &file.defaults)?;
        if specs.iter().any(|s| s.name == spec.name) {
            bail!("{place}: declared twice");
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn spec(place: &str, topic: &Fields, defaults: &Fields) -> Result<TopicSpec> {
    let name = topic.name.clone().unwrap_or_default();
    let valid_name = (1..=249).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid_name {
        bail!("{place}: name must be 1-249 of [a-zA-Z0-9._-]");
    }
    if topic.key.as_deref().is_none_or(str::is_empty) {
        bail!("{place}: say which id keys its records (key = ...)");
    }
    let count = |label: &str, value: Option<i64>| -> Result<i32> {
        match value {
            Some(n) if n >= 1 && n <= i64::from(i32::MAX) => Ok(n as i32),
            _ => bail!("{place}: {label} must be a positive integer"),
        }
    };
    let partitions = count("partitions", topic.partitions.or(defaults.partitions))?;
    let replication = count("replication", topic.replication.or(defaults.replication))?;
    let cleanup = topic.cleanup.as_ref().or(defaults.cleanup.as_ref());
    let cleanup = match cleanup.map(String::as_str) {
        Some(policy @ ("delete" | "compact" | "compact,delete")) => policy,
        _ => bail!(r#"{place}: cleanup must be "delete", "compact" or "compact,delete""#),
    };
    let retention = topic
        .retention
        .as_ref()
        .or(defaults.retention.as_ref())
        .map(String::as_str)
        .unwrap_or("");
    let mut configs = defaults.configs.clone();
    configs.extend(topic.configs.clone());
    configs.insert("cleanup.policy".into(), cleanup.into());
    configs.insert(
        "retention.ms".into(),
        retention_ms(retention)
            .with_context(|| {
                format!(r#"{place}: retention "{retention}" is not "<n>ms|s|m|h|d" or "forever""#)
            })?
            .to_string(),
    );
    Ok(TopicSpec {
        name,
        partitions,
        replication,
        configs,
    })
}

/// `7d` → 604800000, `forever` → -1 (Kafka's "keep forever").
fn retention_ms(text: &str) -> Option<i64> {
    if text == "forever" {
        return Some(-1);
    }
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits);
    let number: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: &str = "[defaults]\npartitions = 3\nreplication = 1\nretention = \"7d\"\ncleanup = \"delete\"\nconfigs = { \"min.insync.replicas\" = \"1\" }\n";

    #[test]
    fn a_topic_takes_the_defaults_and_its_own_fields() {
        let specs = parse(&format!(
            "{DEFAULTS}[[topic]]\nname = \"ftgo.a.events\"\nkey = \"a id\"\n\n[[topic]]\nname = \"ftgo.b.events\"\nkey = \"b id\"\npartitions = 12\nretention = \"forever\"\ncleanup = \"compact\"\nconfigs = {{ \"segment.ms\" = \"3600000\" }}\n"
        ))
        .expect("a valid manifest");
        assert_eq!(specs.len(), 2);
        assert_eq!((specs[0].partitions, specs[0].replication), (3, 1));
        assert_eq!(specs[0].configs["retention.ms"], "604800000");
        assert_eq!(specs[0].configs["cleanup.policy"], "delete");
        assert_eq!(specs[0].configs["min.insync.replicas"], "1");
        assert_eq!(specs[1].partitions, 12);
        assert_eq!(specs[1].configs["retention.ms"], "-1");
        assert_eq!(specs[1].configs["cleanup.policy"], "compact");
        assert_eq!(specs[1].configs["segment.ms"], "3600000");
    }

    #[test]
    fn each_error_names_the_topic_and_the_field() {
        let error = |topic: &str| {
            format!(
                "{:#}",
                parse(&format!("{DEFAULTS}[[topic]]\n{topic}")).expect_err("refused")
            )
        };
        let cases = [
            (
                "name = \"ftgo.x.events\"\nkey = \"x\"\nretention = \"a week\"\n",
                r#"topic #1 (ftgo.x.events): retention "a week" is not"#,
            ),
            (
                "name = \"ftgo.y.events\"\n",
                "topic #1 (ftgo.y.events): say which id keys its records",
            ),
            (
                "name = \"ftgo.z.events\"\nkey = \"z\"\npartitions = 0\n",
                "topic #1 (ftgo.z.events): partitions must be a positive integer",
            ),
            (
                "name = \"ftgo.z.events\"\nkey = \"z\"\ncleanup = \"never\"\n",
                "(ftgo.z.events): cleanup must be",
            ),
            (
                "name = \"bad name!\"\nkey = \"z\"\n",
                "(bad name!): name must be 1-249",
            ),
            (
                "name = \"ftgo.z.events\"\nkey = \"z\"\npartitons = 3\n",
                "(ftgo.z.events): unknown field `partitons`",
            ),
            (
                "name = \"ftgo.z.events\"\nkey = \"z\"\n[[topic]]\nname = \"ftgo.z.events\"\nkey = \"z\"\n",
                "topic #2 (ftgo.z.events): declared twice",
            ),
        ];
        for (topic, expected) in cases {
            let message = error(topic);
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }
}
