//! `kitchen-service`: settings from the environment (`FTGO_*`, defaults for the local platform),
//! logs, then the service until SIGTERM or Ctrl-C.

use anyhow::Result;
use service_kit::{Instance, Settings, init_subscriber};

#[tokio::main]
async fn main() -> Result<()> {
    init_subscriber("kitchen-service");
    let settings = Settings::load(kitchen_service::NAME)?;
    let shutdown = service_kit::shutdown::on_signal()?;
    kitchen_service::run(
        settings,
        Instance::of(kitchen_service::NAME),
        shutdown.cancelled_owned(),
        None,
    )
    .await
}
