//! Watching orders flow through the system: [`Recorder`] follows every FTGO topic from now on
//! and keeps each record by key, so a test can wait for what an order's saga did (commands go
//! in through `test_support::Client`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use kafka::TopicTail;
use messaging::{Received, header};

/// Every topic whose records are keyed by the order id (the catalog's).
pub fn order_topics() -> Vec<&'static str> {
    contracts::catalog::topics_keyed_by("orderId")
}

/// A record's short type (`OrderApproved`), from its `ce_type` header.
pub fn short_type(record: &Received) -> &str {
    let full = record.message.headers.get(header::TYPE).unwrap_or("?");
    full.rsplit('.').next().unwrap_or(full)
}

/// Follows topics from their current end, keeping every record by key.
pub struct Recorder {
    records: Arc<Mutex<HashMap<String, Vec<Received>>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts following `topics` from their end (what is written from now on).
    pub fn start(bootstrap_servers: &str, topics: &[&str]) -> Result<Self> {
        let records: Arc<Mutex<HashMap<String, Vec<Received>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for topic in topics {
            let tail = TopicTail::new(bootstrap_servers, topic, false, Duration::from_secs(10))?;
            let (records, stop) = (records.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match tail.next(Duration::from_millis(100)) {
                        Ok(Some(record)) => {
                            let key = record.message.key.clone().unwrap_or_default();
                            records
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .entry(key)
                                .or_default()
                                .push(record);
                        }
                        Ok(None) => {}
                        Err(error) => eprintln!("recorder: {error}"),
                    }
                }
            }));
        }
        Ok(Self {
            records,
            stop,
            threads,
        })
    }

    /// The records of `key` so far, oldest first (by broker timestamp, then arrival).
    pub fn of(&self, key: &str) -> Vec<Received> {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default();
        records.sort_by_key(|r| r.origin.timestamp_ms);
        records
    }

    /// The short types of `key`'s records on `topic`, in offset order.
    pub fn types_on(&self, key: &str, topic: &str) -> Vec<String> {
        let mut records: Vec<Received> = self
            .of(key)
            .into_iter()
            .filter(|r| r.origin.topic == topic)
            .collect();
        records.sort_by_key(|r| r.origin.offset);
        records.iter().map(|r| short_type(r).to_owned()).collect()
    }

    /// Waits until `key` has a record of type `short` (on any topic), and returns it.
    pub async fn wait_for(&self, key: &str, short: &str, within: Duration) -> Result<Received> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(record) = self.of(key).into_iter().find(|r| short_type(r) == short) {
                return Ok(record);
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self
                    .of(key)
                    .iter()
                    .map(|r| format!("{}:{}", r.origin.topic, short_type(r)))
                    .collect();
                bail!("no {short} for {key} within {within:?}; seen: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `key` has one of `shorts`, returning which.
    pub async fn wait_for_any(
        &self,
        key: &str,
        shorts: &[&str],
        within: Duration,
    ) -> Result<Received> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(record) = self
                .of(key)
                .into_iter()
                .find(|r| shorts.contains(&short_type(r)))
            {
                return Ok(record);
            }
            if Instant::now() > deadline {
                bail!("none of {shorts:?} for {key} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every key seen so far.
    pub fn keys(&self) -> Vec<String> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
