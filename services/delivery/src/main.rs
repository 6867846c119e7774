//! `delivery-service`: settings from the environment (`FTGO_*`, defaults for the local platform),
//! logs, then the service until SIGTERM or Ctrl-C.

use anyhow::Result;
use service_kit::{Instance, Settings, init_subscriber};

#[tokio::main]
async fn main() -> Result<()> {
    init_subscriber("delivery-service");
    let settings = Settings::load(delivery_service::NAME)?;
    let shutdown = service_kit::shutdown::on_signal()?;
    delivery_service::run(
        settings,
        Instance::of(delivery_service::NAME),
        shutdown.cancelled_owned(),
        None,
    )
    .await
}
