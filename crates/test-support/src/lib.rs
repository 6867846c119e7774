//! Test helpers over the real local platform (Apache Kafka, the schema registry, PostgreSQL).
//!
//! # Layout
//! - [`platform`]: the addresses tests talk to, read from the same variables as the services
//!   (`deploy/local/env`), with the local platform's defaults.
//! - [`kafka`]: [`TestTopic`], a topic of its own per test, deleted with its registry subjects
//!   when dropped; [`unique_group`] for a consumer group no other test shares.
//! - [`postgres`]: [`TestDatabase`], a database of its own per test, dropped when dropped.
//! - [`service`]: [`TestService`], a service in-process on a database and group of its own.
//! - [`client`]: [`Client`] publishes records as the project's producers do; [`records_of`],
//!   [`eventually`], [`wait_until`], [`settle`] wait for what services send.
//! - [`check_per_key_order`]: what at-least-once delivery with per-key order promises.
//!
//! Every resource has a random name, so tests run in parallel and in any order, and each is
//! removed when its guard drops, also when the test panics.

pub mod client;
mod kafka;
mod ordering;
mod platform;
mod postgres;
mod service;

pub use client::{Client, eventually, now_ms, records_of, settle, wait_until};
pub use kafka::{TestTopic, read_records, relay_publisher, start_group_at_end, unique_group};
pub use ordering::check_per_key_order;
pub use platform::Platform;
pub use postgres::TestDatabase;
pub use service::{
    ServiceUnderTest, TestService, ids_and_reasons, one_service_at_a_time, service_settings,
};

/// A short random suffix for resource names: 12 hex digits of a v4 UUID.
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Runs `work` to completion on a fresh runtime in a thread of its own. Guards use it in `Drop`,
/// which may run inside a test's runtime (where blocking on it would panic) or during unwinding.
fn run_detached<F>(work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(work),
            Err(error) => eprintln!("test-support: no runtime for cleanup: {error}"),
        }
    });
    if handle.join().is_err() {
        eprintln!("test-support: cleanup panicked");
    }
}
