//! Services as processes of their own (the `ftgo-service` binary), several instances each,
//! for the tests that kill or freeze instances.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use service_kit::Definition;
use test_support::{TestDatabase, start_group_at_end, unique_group};

use super::wait_until;

/// One service's instances (processes) and what they share: group and database.
pub struct ServiceProcesses {
    pub name: &'static str,
    pub group: String,
    pub database: TestDatabase,
    pub instances: Vec<(u16, Child)>,
    pub logs: PathBuf,
    /// Settings of the test's own, as environment variables (`FTGO_SAGA__REPLY_TIMEOUT_MS`).
    pub env: Vec<(&'static str, String)>,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ServiceProcesses {
    /// The service `definition` declares, with no instance yet: a group of the test's own that
    /// starts at the end of the topics it consumes, a new database, logs under `logs`.
    pub async fn prepare(
        definition: &Definition,
        logs: &Path,
        env: Vec<(&'static str, String)>,
    ) -> Result<Self> {
        let group = unique_group(&definition.instance().group);
        start_group_at_end(&group, &definition.consumes())?;
        Ok(Self {
            name: definition.name,
            group,
            database: TestDatabase::create().await?,
            instances: Vec::new(),
            logs: logs.to_owned(),
            env,
        })
    }

    pub fn spawn(&self, index: usize) -> Result<(u16, Child)> {
        let port = free_port()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{}-{index}.log", self.name)))?;
        let child = Command::new(env!("CARGO_BIN_EXE_ftgo-service"))
            .args([self.name, "run", "--migrate", "--group", &self.group])
            .env("FTGO_DATABASE__URL", self.database.url())
            // The service's own variables win over the shared ones (deploy/local/env sets
            // them): the test's database, as its owner, for running and migrating alike.
            .env(
                service_kit::Settings::own_database_variable(self.name),
                self.database.url(),
            )
            .env(
                format!(
                    "{}DATABASE__MIGRATION_URL",
                    service_kit::Settings::own_prefix(self.name)
                ),
                self.database.url(),
            )
            .env("FTGO_HTTP__PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} #{index}", self.name))?;
        Ok((port, child))
    }

    pub async fn wait_ready(port: u16) -> Result<()> {
        wait_until(Duration::from_secs(60), || async move {
            Ok(reqwest_ready(port).await)
        })
        .await
    }
}

async fn reqwest_ready(port: u16) -> bool {
    // A bare HTTP/1.0 request: no client library needed for one status line.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream
        .write_all(b"GET /health/ready HTTP/1.0\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
}

impl Drop for ServiceProcesses {
    fn drop(&mut self) {
        for (_, child) in &mut self.instances {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
