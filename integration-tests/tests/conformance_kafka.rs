//! The Kafka transport (`KafkaPublisher` and `ConsumerRunner`) passes the conformance suite,
//! against the real broker; each case has topics and groups of its own.

use std::sync::Mutex;
use std::time::Duration;

use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher};
use messaging::conformance::{Member, Transport};
use messaging::{Handler, Received};
use test_support::{Platform, TestTopic, read_records};

struct Kafka {
    platform: Platform,
    publisher: KafkaPublisher,
    /// Deleted when the case ends.
    topics: Mutex<Vec<TestTopic>>,
}

impl Kafka {
    fn new() -> Self {
        let platform = Platform::from_env();
        let publisher =
            KafkaPublisher::new(&platform.bootstrap_servers, "conformance").expect("a producer");
        Self {
            platform,
            publisher,
            topics: Mutex::default(),
        }
    }
}

impl Transport for Kafka {
    type Publisher = KafkaPublisher;

    fn publisher(&self) -> KafkaPublisher {
        self.publisher.clone()
    }

    async fn topic(&self, purpose: &str, partitions: usize) -> String {
        let purpose = format!("conformance_{}", purpose.replace('-', "_"));
        let topic = TestTopic::create(&purpose, partitions as i32)
            .await
            .expect("a topic");
        let name = topic.name().to_owned();
        self.topics.lock().expect("lock").push(topic);
        name
    }

    fn member<H: Handler + 'static>(&self, group: &str, topic: &str, handler: H) -> Member {
        let settings = ConsumerSettings::new(&self.platform.bootstrap_servers, group, &[topic]);
        Member::start(move |stop| async move {
            let runner = ConsumerRunner::new(&settings).map_err(|e| e.to_string())?;
            runner
                .run(handler, async {
                    stop.await.ok();
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    async fn read(&self, topic: &str, count: usize) -> Vec<Received> {
        read_records(topic, count, Duration::from_secs(60))
            .await
            .expect("records")
    }
}

messaging::conformance_tests!(Kafka::new());
