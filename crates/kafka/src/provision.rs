//! Topics brought in line with a declaration, idempotently: what is missing is created, a topic
//! with fewer partitions is grown, configs that differ are set; nothing is ever shrunk or
//! deleted. `ftgo topics apply` declares them from `deploy/topics.toml`.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::KafkaError;

/// A topic as declared: its name, partitions, replication and every topic config it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// The same topic with `copies` copies of each partition instead of the declared number
    /// (the manifest's suits one broker), and `min.insync.replicas` one less (at least 1): a
    /// write is acknowledged once all but one copy have it, so it survives one broker down.
    pub fn replicated(mut self, copies: i32) -> Self {
        self.replication = copies;
        self.configs.insert(
            "min.insync.replicas".into(),
            (copies - 1).max(1).to_string(),
        );
        self
    }
}

/// What applying one topic did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicChange {
    Created {
        partitions: i32,
    },
    /// More partitions: keys now map to other partitions than before.
    Grown {
        from: i32,
        to: i32,
    },
    /// Configs set to the declared values (`key`, old value, new value).
    Updated(Vec<(String, Option<String>, String)>),
    /// The broker's topic cannot be brought in line (more partitions than declared: Kafka
    /// cannot shrink a topic).
    Refused(String),
}

/// Applies `specs` to the cluster at `bootstrap_servers`: the changes made to each topic, in
/// order (none: it was in line already). A refusal of one topic does not stop the others; an
/// error of the cluster does.
pub async fn apply_topics(
    bootstrap_servers: &str,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<Vec<(String, Vec<TopicChange>)>, KafkaError> {
    let mut config = crate::client_config(bootstrap_servers)?;
    config.set("client.id", "ftgo-topics-apply");
    let admin = AdminClient::<DefaultClientContext>::from_config(&config)
        .map_err(crate::reader::client("creating the admin client"))?;
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(crate::reader::client("fetching the broker's metadata"))?;
    let existing: BTreeMap<String, i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .collect();

    let mut changes = Vec::with_capacity(specs.len());
    for spec in specs {
        let change = match existing.get(&spec.name) {
            None => vec![create(&admin, &options, spec).await?],
            Some(&actual) => bring_in_line(&admin, &options, spec, actual).await?,
        };
        changes.push((spec.name.clone(), change));
    }
    Ok(changes)
}

async fn create(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    spec: &TopicSpec,
) -> Result<TopicChange, KafkaError> {
    let mut topic = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (key, value) in &spec.configs {
        topic = topic.set(key, value);
    }
    let results = admin
        .create_topics([&topic], options)
        .await
        .map_err(crate::reader::client("creating topics"))?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
            Ok(TopicChange::Created {
                partitions: spec.partitions,
            })
        }
        Some(Err((_, code))) => Err(KafkaError::Settings(format!(
            "creating {}: {code}",
            spec.name
        ))),
        None => Err(KafkaError::Settings(format!(
            "creating {}: no answer",
            spec.name
        ))),
    }
}

async fn bring_in_line(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    spec: &TopicSpec,
    actual: i32,
) -> Result<Vec<TopicChange>, KafkaError> {
    let mut changes = Vec::new();
    if actual > spec.partitions {
        changes.push(TopicChange::Refused(format!(
            "has {actual} partitions, the manifest says {}; Kafka cannot shrink a topic: delete it or raise the manifest",
            spec.partitions
        )));
    } else if actual < spec.partitions {
        grow(admin, options, spec).await?;
        changes.push(TopicChange::Grown {
            from: actual,
            to: spec.partitions,
        });
    }
    let differing = differing_configs(admin, options, spec).await?;
    if !differing.is_empty() {
        set_configs(admin, options, spec).await?;
        changes.push(TopicChange::Updated(differing));
    }
    Ok(changes)
}

async fn grow(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    spec: &TopicSpec,
) -> Result<(), KafkaError> {
    let grow = NewPartitions::new(&spec.name, spec.partitions as usize);
    let results = admin
        .create_partitions([&grow], options)
        .await
        .map_err(crate::reader::client("adding partitions"))?;
    match results.into_iter().next() {
        Some(Err((_, code))) => Err(KafkaError::Settings(format!(
            "growing {}: {code}",
            spec.name
        ))),
        _ => Ok(()),
    }
}

/// The declared configs whose value on the broker differs: (key, broker's value, declared).
async fn differing_configs(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    spec: &TopicSpec,
) -> Result<Vec<(String, Option<String>, String)>, KafkaError> {
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(&spec.name)], options)
        .await
        .map_err(crate::reader::client("describing topic configs"))?;
    let current = match described.into_iter().next() {
        Some(Ok(resource)) => resource
            .entries
            .into_iter()
            .filter_map(|entry| Some((entry.name, entry.value?)))
            .collect::<BTreeMap<String, String>>(),
        Some(Err(code)) => {
            return Err(KafkaError::Settings(format!(
                "describing {}: {code}",
                spec.name
            )));
        }
        None => BTreeMap::new(),
    };
    Ok(spec
        .configs
        .iter()
        .filter(|(key, value)| current.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), current.get(key).cloned(), value.clone()))
        .collect())
}

/// Sets the declared configs. AlterConfigs (librdkafka has no incremental variant) sets a
/// topic's whole set of overrides: all declared configs go, so the topic ends up with exactly
/// those.
async fn set_configs(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    spec: &TopicSpec,
) -> Result<(), KafkaError> {
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&spec.name));
    for (key, value) in &spec.configs {
        alter = alter.set(key, value);
    }
    let results = admin
        .alter_configs([&alter], options)
        .await
        .map_err(crate::reader::client("altering topic configs"))?;
    match results.into_iter().next() {
        Some(Err((_, code))) => Err(KafkaError::Settings(format!(
            "updating {}: {code}",
            spec.name
        ))),
        _ => Ok(()),
    }
}
