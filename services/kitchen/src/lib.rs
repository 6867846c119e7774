//! The kitchen service (being written).

use std::future::Future;

use anyhow::Result;
use service_kit::{Instance, Running, Settings};

/// The service's name: group `kitchen-service`, database role `ftgo_kitchen`.
pub const NAME: &str = "kitchen";

/// Runs the service until `shutdown` completes.
pub async fn run(
    _settings: Settings,
    _instance: Instance,
    shutdown: impl Future<Output = ()> + Send + 'static,
    _started: Option<tokio::sync::oneshot::Sender<Running>>,
) -> Result<()> {
    shutdown.await;
    Ok(())
}
