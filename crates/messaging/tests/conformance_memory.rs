//! The in-memory transport passes the conformance suite.

use messaging::conformance::{Member, Transport};
use messaging::{Handler, MemoryBroker, Received};

struct Memory(MemoryBroker);

impl Transport for Memory {
    type Publisher = MemoryBroker;

    fn publisher(&self) -> MemoryBroker {
        self.0.clone()
    }

    async fn topic(&self, purpose: &str, partitions: usize) -> String {
        let name = format!("memory.{purpose}");
        self.0.create_topic(&name, partitions);
        name
    }

    fn member<H: Handler + 'static>(&self, group: &str, topic: &str, handler: H) -> Member {
        let (broker, group, topic) = (self.0.clone(), group.to_owned(), topic.to_owned());
        Member::start(move |stop| async move {
            broker
                .run(&group, &topic, handler, async {
                    stop.await.ok();
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    async fn read(&self, topic: &str, count: usize) -> Vec<Received> {
        loop {
            let records = self.0.records(topic);
            if records.len() >= count {
                return records;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

messaging::conformance_tests!(Memory(MemoryBroker::new()));
