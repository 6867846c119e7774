//! `restaurant-service`: settings from the environment (`FTGO_*`, defaults for the local
//! platform), logs, then the service until SIGTERM or Ctrl-C.

use anyhow::Result;
use service_kit::{Settings, init_subscriber};

#[tokio::main]
async fn main() -> Result<()> {
    init_subscriber("restaurant-service");
    let settings = Settings::load("restaurant")?;
    let shutdown = service_kit::shutdown::on_signal()?;
    restaurant_service::run(
        settings,
        service_kit::Instance::of(restaurant_service::NAME),
        shutdown.cancelled_owned(),
        None,
    )
    .await
}
