//! What the tests (`tests/`) and the processes they start (`src/bin/`) share.
//!
//! # Layout
//! - [`Effects`]: the idempotent consumers' effect in the outbox tests: a row per message in
//!   `effects` ([`EFFECTS_TABLE`]), in the handler's transaction.
//! - [`flow`]: [`flow::Recorder`] follows every topic of an order's journey, by key.
//! - [`SERVICES`]: the FTGO back end, every service's definition once; the tests' stack and
//!   the `ftgo-service` binary start services from it by name ([`service`]).
//! - [`init_logging`]: the processes' log output (stderr, `RUST_LOG`, default info).

pub mod flow;

use service_kit::Definition;

/// The FTGO back end: the services the end-to-end tests run together.
pub const SERVICES: [Definition; 6] = [
    restaurant_service::DEFINITION,
    consumer_service::DEFINITION,
    accounting_service::DEFINITION,
    kitchen_service::DEFINITION,
    order_service::DEFINITION,
    delivery_service::DEFINITION,
];

/// The service called `name` (`order`, `kitchen`, ...).
pub fn service(name: &str) -> anyhow::Result<Definition> {
    SERVICES
        .iter()
        .find(|definition| definition.name == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = SERVICES.iter().map(|d| d.name).collect();
            anyhow::anyhow!("no service {name} (services: {})", names.join(", "))
        })
}

use messaging::{HandlerError, Reason, Received};
use outbox::TransactionalHandler;
use sqlx::PgConnection;

/// The table [`Effects`] writes: one row per handled message, in handling order.
pub const EFFECTS_TABLE: &str = "CREATE TABLE effects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL, key text NOT NULL, sequence int NOT NULL)";

/// The effect of a message whose payload is a decimal sequence number: a row in `effects`.
#[derive(Debug, Clone, Copy)]
pub struct Effects;

impl TransactionalHandler<()> for Effects {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        _: (),
    ) -> Result<(), HandlerError> {
        let sequence: i32 = String::from_utf8_lossy(&message.message.payload)
            .parse()
            .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))?;
        sqlx::query("INSERT INTO effects (message_id, key, sequence) VALUES ($1, $2, $3)")
            .bind(message.message.id())
            .bind(message.message.key.as_deref().unwrap_or("-"))
            .bind(sequence)
            .execute(tx)
            .await
            .map_err(HandlerError::transient)?;
        Ok(())
    }
}

/// Logs to stderr, `RUST_LOG` choosing what (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Sends signal `name` (`STOP`, `CONT`, `KILL`, ...) to process `pid`, as `kill -NAME` does.
pub fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{name} {pid}");
    Ok(())
}
