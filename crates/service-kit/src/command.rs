//! Every service's binary, made from its [`Definition`]:
//!
//! ```text
//! <name>-service migrate                 makes its schema current, as the role owning it
//! <name>-service [run] [--group GROUP] [--migrate]
//!                                        the service until SIGTERM or Ctrl-C
//! <name>-service describe                what it is, as JSON (for scripts)
//! <name>-service reset --to-end          moves its stopped group past what waits on the
//!                                        topics it consumes (replica feeds left alone)
//! <name>-service health [--live]         asks the running instance whether it is ready
//!                                        (exit 0) or not (exit 1): a container healthcheck
//! <name>-service k8s                     its Kubernetes manifests (deploy/k8s/render)
//! <name>-service openapi                 its REST API's OpenAPI document (docs/api/)
//! ```
//!
//! Settings come from `FTGO_*` variables with defaults for the local platform.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::definition::Definition;

#[derive(Debug, Parser)]
#[command(about = "An FTGO service (settings: FTGO_* environment variables)")]
struct Arguments {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the service until SIGTERM or Ctrl-C (the default).
    Run {
        /// Joins this consumer group instead of `<name>-service` (instances of one deployment
        /// share a group; tests run one of their own).
        #[arg(long)]
        group: Option<String>,
        /// Migrates first, as `migrate` does (the process then holds the migration role's
        /// credentials too: for a single box that holds both, as in development).
        #[arg(long)]
        migrate: bool,
    },
    /// Makes the service's schema current (its migrations, the outbox's and the compensations'
    /// tables) as the role that owns the schema: FTGO_<NAME>_DATABASE__MIGRATION_URL (and
    /// ..._MIGRATION_PASSWORD_FILE). The deployment step before `run`, which refuses a schema
    /// not migrated: the role it runs as may not create tables.
    Migrate,
    /// Prints what the service is: its group, dead-letter topic, consumed topics and replica
    /// feeds, as JSON.
    Describe,
    /// Asks the instance running with these settings (this container's, say) whether it is
    /// ready: exit 0 and "ready", or exit 1 and what it waits for. The port is the one the
    /// instance wrote to FTGO_HTTP__PORT_FILE when that is set, else FTGO_HTTP__PORT.
    Health {
        /// Only whether the process answers (liveness), not whether it is ready.
        #[arg(long)]
        live: bool,
    },
    /// Prints the service's Kubernetes manifests: a StatefulSet, its headless Service, a
    /// PodDisruptionBudget and a KEDA ScaledObject (deploy/k8s/render writes them all).
    K8s {
        /// The topic manifest, for the partitions of the topics it consumes.
        #[arg(long, default_value = "deploy/topics.toml", value_name = "FILE")]
        topics: std::path::PathBuf,
        /// The image's name before `<name>-service` (a registry and a path).
        #[arg(long, default_value = "ftgo/")]
        image_prefix: String,
        /// The image's tag.
        #[arg(long, default_value = "latest")]
        tag: String,
        #[arg(long, default_value = "ftgo")]
        namespace: String,
    },
    /// Prints the OpenAPI 3.1 document of the service's REST API (the one it serves at
    /// /openapi.json), as JSON; fails for a service without one.
    Openapi,
    /// Moves the service's group to the end of the topics it consumes, so it handles only what
    /// is written from now on (the topics it keeps replicas from are left alone). Stop every
    /// instance first: the broker refuses it while the group has members.
    Reset {
        /// Required: the end is the only place it moves to.
        #[arg(long, required = true)]
        to_end: bool,
        /// Another group than `<name>-service`.
        #[arg(long)]
        group: Option<String>,
    },
}

pub(crate) fn main(
    definition: &Definition,
    arguments: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<()> {
    let arguments = Arguments::parse_from(arguments);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let default = Command::Run {
        group: None,
        migrate: false,
    };
    match arguments.command.unwrap_or(default) {
        Command::Run { group, migrate } => runtime.block_on(run(definition, group, migrate)),
        Command::Migrate => runtime.block_on(async {
            let _telemetry = crate::init_subscriber(&format!("{}-service", definition.name));
            definition.migrate(&definition.settings()?).await?;
            println!("{}: schema current", definition.name);
            Ok(())
        }),
        Command::Describe => {
            println!("{}", serde_json::to_string_pretty(&definition.describe())?);
            Ok(())
        }
        Command::Health { live } => {
            let settings = definition.settings()?;
            print!(
                "{}",
                runtime.block_on(crate::http::check(&settings.http, live))?
            );
            Ok(())
        }
        Command::K8s {
            topics,
            image_prefix,
            tag,
            namespace,
        } => {
            let specs = kafka::manifest::read(&topics)?;
            let partitions =
                |topic: &str| specs.iter().find(|s| s.name == topic).map(|s| s.partitions);
            let target = crate::k8s::Target {
                image_prefix,
                tag,
                namespace,
            };
            print!(
                "{}",
                crate::k8s::manifests(definition, partitions, &target)?
            );
            Ok(())
        }
        Command::Openapi => {
            let document = definition.openapi().with_context(|| {
                format!(
                    "the {} service has no REST API (the order service has: order-service openapi)",
                    definition.name
                )
            })?;
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        Command::Reset { to_end: _, group } => {
            let settings = definition.settings()?;
            let group = group.unwrap_or_else(|| definition.instance().group);
            let topics: Vec<&str> = definition
                .consumes()
                .into_iter()
                .filter(|topic| !definition.replica_feeds.contains(topic))
                .collect();
            let moved = reset_to_end(&settings.kafka.bootstrap_servers, &group, &topics)?;
            println!(
                "{group}: {moved} partitions moved to the end of {}",
                topics.join(", ")
            );
            Ok(())
        }
    }
}

async fn run(definition: &Definition, group: Option<String>, migrate: bool) -> Result<()> {
    let _telemetry = crate::init_subscriber(&format!("{}-service", definition.name));
    let settings = definition.settings()?;
    if migrate {
        definition.migrate(&settings).await?;
    }
    let mut instance = definition.instance();
    if let Some(group) = group {
        instance = instance.in_group(group);
    }
    let stop = crate::shutdown::on_signal()?;
    definition.run(settings, instance, stop, None).await
}

/// Moves `group` to the end of `topics`, refusing while it has members.
pub fn reset_to_end(bootstrap_servers: &str, group: &str, topics: &[&str]) -> Result<usize> {
    let offsets = kafka::GroupOffsets::new(bootstrap_servers, group, Duration::from_secs(10))?;
    offsets.reset_to_end(topics).map_err(|error| match error {
        kafka::KafkaError::GroupActive { .. } => {
            anyhow::anyhow!("{error} (deploy/local/services stop)")
        }
        other => other.into(),
    })
}
