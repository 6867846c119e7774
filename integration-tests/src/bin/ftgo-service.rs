//! Any FTGO service as a process of the tests' own, for the tests that kill instances
//! (`tests/orders_under_failure.rs`):
//!
//!     ftgo-service NAME GROUP
//!
//! Runs service NAME (`order`, `kitchen`, ...) exactly as its own binary does (settings from
//! `FTGO_*` variables, logs, SIGTERM drains), but in consumer group GROUP, so a test's instances
//! share no work with anyone else's.

use anyhow::{Context, Result, bail};
use service_kit::{Instance, Settings, init_subscriber};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(group)) = (args.next(), args.next()) else {
        bail!(
            "usage: ftgo-service NAME GROUP (NAME: order, consumer, kitchen, accounting, restaurant, delivery)"
        );
    };
    init_subscriber(&format!("{name}-service"));
    let settings = Settings::load(&name).context("settings")?;
    let instance = Instance::of(&name).in_group(group);
    let shutdown = service_kit::shutdown::on_signal()?.cancelled_owned();
    match name.as_str() {
        "order" => order_service::run(settings, instance, shutdown, None).await,
        "consumer" => consumer_service::run(settings, instance, shutdown, None).await,
        "kitchen" => kitchen_service::run(settings, instance, shutdown, None).await,
        "accounting" => accounting_service::run(settings, instance, shutdown, None).await,
        "restaurant" => restaurant_service::run(settings, instance, shutdown, None).await,
        "delivery" => delivery_service::run(settings, instance, shutdown, None).await,
        other => bail!("no service {other}"),
    }
}
