use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{Platform, run_detached, unique_suffix};

/// A consumer group name no other test uses.
pub fn unique_group(purpose: &str) -> String {
    format!("test-{purpose}-{}", unique_suffix())
}

/// A relay's producer, as the services make theirs: Kafka transactions under a transactional
/// id no other test uses.
pub fn relay_publisher(purpose: &str) -> Result<kafka::KafkaPublisher> {
    Ok(kafka::KafkaPublisher::transactional(
        &Platform::from_env().bootstrap_servers,
        purpose,
        &format!("test-relay-{purpose}-{}", unique_suffix()),
    )?)
}

/// A Kafka topic that exists for one test. Dropping it deletes the topic and every registry
/// subject named after it (`<topic>-<record>`, TopicRecordNameStrategy, and `<topic>-key|value`).
#[derive(Debug)]
pub struct TestTopic {
    name: String,
    platform: Platform,
}

impl TestTopic {
    /// Creates `test.<purpose>.t<random>` with `partitions` partitions and waits until the
    /// broker reports it, so producers and consumers can use it at once.
    pub async fn create(purpose: &str, partitions: i32) -> Result<Self> {
        Self::create_named(Self::unique_name(purpose), partitions, &[]).await
    }

    /// A name `create` could give: `test.<purpose>.t<random>`, for a topic a test creates
    /// later (or never).
    pub fn unique_name(purpose: &str) -> String {
        // Each dot-separated part starts with a letter, so the name is also a valid Avro
        // namespace.
        format!("test.{purpose}.t{}", unique_suffix())
    }

    /// The topic `name`, made by what the test runs (`ftgo topics apply`), deleted on drop like
    /// one the test created.
    pub fn adopt(name: String) -> Self {
        Self {
            name,
            platform: Platform::from_env(),
        }
    }

    /// Creates the topic `name` with topic configs (`max.message.bytes`, ...).
    pub async fn create_named(
        name: String,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<Self> {
        let platform = Platform::from_env();
        let admin = admin_client(&platform)?;
        // The broker's default replication (-1): one copy on one node, three on a replicated
        // cluster, whose min.insync.replicas a single copy could never satisfy.
        let mut topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(-1));
        for (key, value) in configs {
            topic = topic.set(key, value);
        }
        let results = admin
            .create_topics(
                &[topic],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .with_context(|| format!("creating topic {name} on {}", platform.bootstrap_servers))?;
        for result in results {
            if let Err((topic, code)) = result {
                bail!("creating topic {topic} failed: {code}");
            }
        }
        Ok(Self { name, platform })
    }

    /// Sets one of the topic's configs (Kafka's AlterConfigs: the configs not named go back to
    /// their defaults).
    pub async fn set_config(&self, key: &str, value: &str) -> Result<()> {
        use rdkafka::admin::{AlterConfig, ResourceSpecifier};
        let admin = admin_client(&self.platform)?;
        let change = AlterConfig::new(ResourceSpecifier::Topic(&self.name)).set(key, value);
        for result in admin.alter_configs(&[change], &AdminOptions::new()).await? {
            if let Err((_, code)) = result {
                bail!("setting {key} of {}: {code}", self.name);
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestTopic {
    fn drop(&mut self) {
        let name = self.name.clone();
        let platform = self.platform.clone();
        run_detached(async move {
            if let Err(error) = delete_topic(&platform, &name).await {
                eprintln!("test-support: could not delete topic {name}: {error:#}");
            }
            if let Err(error) = delete_subjects(&platform, &name).await {
                eprintln!("test-support: could not delete subjects of {name}: {error:#}");
            }
        });
    }
}

fn admin_client(platform: &Platform) -> Result<AdminClient<DefaultClientContext>> {
    kafka::client_config(&platform.bootstrap_servers)?
        .create()
        .context("creating a Kafka admin client")
}

async fn delete_topic(platform: &Platform, name: &str) -> Result<()> {
    let admin = admin_client(platform)?;
    let results = admin.delete_topics(&[name], &AdminOptions::new()).await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => bail!("deleting topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Deletes the subjects of `topic` from the registry: soft first, then permanently, as
/// Confluent's API requires.
async fn delete_subjects(platform: &Platform, topic: &str) -> Result<()> {
    let registry = platform.registry()?;
    let http = registry.http_client()?;
    let base = registry.url();
    let subjects: Vec<String> = registry
        .authorize(http.get(format!("{base}/subjects")))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let prefix = format!("{topic}-");
    for subject in subjects.iter().filter(|s| s.starts_with(&prefix)) {
        for permanent in [false, true] {
            registry
                .authorize(http.delete(format!("{base}/subjects/{subject}?permanent={permanent}")))
                .send()
                .await?
                .error_for_status()
                .with_context(|| format!("deleting subject {subject}"))?;
        }
    }
    Ok(())
}

/// Reads `topic` from the beginning, in a group of its own, until `count` records have arrived
/// (or fails after `within`); returns them as messages with their origin.
pub async fn read_records(
    topic: &str,
    count: usize,
    within: Duration,
) -> Result<Vec<messaging::Received>> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers as _, Message as _};

    let consumer: StreamConsumer = kafka::client_config(&Platform::from_env().bootstrap_servers)?
        .set("group.id", unique_group("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = tokio::time::Instant::now() + within;
    let mut records = Vec::new();
    while records.len() < count {
        let record = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .with_context(|| format!("only {} of {count} records on {topic}", records.len()))??;
        let mut headers = messaging::Headers::new();
        if let Some(kafka_headers) = record.headers() {
            for header in kafka_headers.iter() {
                let value = header
                    .value
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                headers.set(header.key, value);
            }
        }
        records.push(messaging::Received {
            message: messaging::Message {
                key: record
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                headers,
                payload: record.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            },
            origin: messaging::Origin {
                topic: record.topic().to_owned(),
                partition: record.partition(),
                offset: record.offset(),
                timestamp_ms: record.timestamp().to_millis(),
            },
            trace: None,
        });
    }
    Ok(records)
}

/// Makes the new consumer group `group` start at the current end of `topics`: its offsets are
/// committed there before any member joins, so it handles only what is written from now on,
/// not the records earlier runs left on the shared topics. (A group without offsets would
/// start from the earliest record.) A partition the group has committed already keeps its
/// place: a restarted member picks up where the group stopped.
pub fn start_group_at_end(group: &str, topics: &[&str]) -> Result<()> {
    let platform = Platform::from_env();
    kafka::GroupOffsets::new(&platform.bootstrap_servers, group, Duration::from_secs(10))?
        .move_to_end(topics, true)
        .with_context(|| format!("starting group {group} at the end of {topics:?}"))?;
    Ok(())
}
