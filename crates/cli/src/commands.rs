//! The command line: what `ftgo` accepts (clap's derive), and which module runs each command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::{
    acls, act, bench, demo, dlq, groups, order, outbox, output, registry, schemas, seed, send,
    tail, topics,
};

#[derive(Debug, Parser)]
#[command(
    name = "ftgo",
    version,
    about = "FTGO over Kafka: the tool for its users and operators"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Avro message catalog: register it, check changes against the registry, document it.
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
        /// The schemas directory (with catalog.toml).
        #[arg(long, global = true, default_value = "schemas", value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Who may do what on Kafka: the principals and ACLs derived from the catalog's producers
    /// and consumers (docs/security.md).
    Acls {
        #[command(subcommand)]
        command: AclsCommand,
        /// The schemas directory (with catalog.toml).
        #[arg(long, global = true, default_value = "schemas", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Shows a topic's records as they arrive: key, partition, offset, type and the value
    /// decoded as JSON (with --headers, every header too).
    Tail {
        #[command(flatten)]
        options: tail::Options,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Dead letters: what a consumer group could not handle, why, and sending it again.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Publishes any record of the catalog, written as JSON and/or --set path=value, keyed by
    /// its key field, with the project's headers (ce_id, ce_type, ce_source, ...).
    Send {
        #[command(flatten)]
        options: send::Options,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Orders: create or cancel one (and wait for the outcome), show one's history.
    Order {
        #[command(subcommand)]
        command: OrderCommand,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Restaurant staff's actions on an order's ticket (accept, start, ready), each waited for
    /// by its ticket event or its refusal (exit 2).
    Kitchen {
        #[command(subcommand)]
        command: act::KitchenCommand,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// A courier's actions on an order's delivery (pick up, drop off), each waited for by its
    /// delivery event or its refusal (exit 2).
    Delivery {
        #[command(subcommand)]
        command: act::DeliveryCommand,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Creates demo restaurants and consumers through commands (idempotent: fixed ids), then
    /// waits until the services have taken them in, and prints their ids and example orders.
    Seed {
        #[command(flatten)]
        options: seed::Options,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// The demo: seeds the demo data, then places four orders and checks each outcome (one
    /// approved, two rejected for their reasons, one approved and cancelled), then takes the
    /// approved one through the kitchen and the courier to DELIVERED; exits 1 on any other
    /// outcome.
    Demo {
        #[command(flatten)]
        options: demo::Options,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// The fault-injection suite's workload and checker (deploy/local/chaos plays the faults):
    /// places orders of every outcome, then verifies each order and the whole system.
    Chaos {
        #[command(subcommand)]
        command: crate::chaos::ChaosCommand,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Load tests: publishes orders for the demo data and measures throughput and latency.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Outbox rows a service's relay can never publish as they are (moved aside with the
    /// reason; later rows of their keys wait): list them, retry them after mending the cause,
    /// or discard them.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Every topic with its partitions, records, and the lag of each consumer group on it;
    /// `ftgo topics apply` creates and updates them from deploy/topics.toml.
    #[command(args_conflicts_with_subcommands = true)]
    Topics {
        #[command(subcommand)]
        command: Option<TopicsCommand>,
        #[command(flatten)]
        options: topics::Options,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Prints the completion script of a shell (`ftgo completions bash > /etc/bash_completion.d/ftgo`,
    /// `source <(ftgo completions zsh)`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Consumer groups: move a stopped group past what waits on its topics.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Brings the broker's topics in line with the manifest, idempotently: creates what is
    /// missing, grows partitions, sets configs; never shrinks or deletes.
    Apply(topics::apply::Options),
    /// Prints the manifest as Strimzi KafkaTopic resources (Kubernetes; deploy/k8s/topics.yaml).
    Strimzi(topics::strimzi::Options),
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Moves a stopped group to the end of topics, so it handles only what is written from now
    /// on (`kafka-consumer-groups --reset-offsets --to-latest`).
    Reset(groups::ResetOptions),
}

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Publishes CreateOrder on ftgo.order.commands and prints the order id; with --wait,
    /// waits for OrderApproved (exit 0) or OrderRejected (exit 2).
    Create(order::CreateOptions),
    /// Publishes CancelOrder; with --wait, waits for OrderCancelled (exit 0) or
    /// OrderCancellationRejected (exit 2).
    Cancel {
        #[arg(value_parser = order::parse_order_id, value_name = "ORDER_ID")]
        order_id: apache_avro::Uuid,
        /// Why, in the client's words.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        wait: order::WaitOptions,
    },
    /// The order's history from every topic keyed by order id, in time order, and its state.
    Show {
        #[arg(value_parser = order::parse_order_id, value_name = "ORDER_ID")]
        order_id: apache_avro::Uuid,
        /// `json`: one document, `{"orderId", "state", "history": [records with their full
        /// decoded values]}`.
        #[arg(long, value_enum, default_value_t)]
        output: output::Output,
    },
}

/// Where the schema registry is (every command that reads Avro).
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// The schema registry's Confluent-compatible API.
    #[arg(
        long = "registry",
        global = true,
        env = "FTGO_SCHEMA_REGISTRY__URL",
        default_value = "http://127.0.0.1:8081/apis/ccompat/v7",
        value_name = "URL"
    )]
    url: String,
}

/// Where Kafka is (every command that reads or writes topics).
#[derive(Debug, clap::Args)]
pub struct KafkaArgs {
    /// Kafka's bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "FTGO_KAFKA__BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    bootstrap_servers: String,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Prints the SQL that makes the outbox, inbox and saga tables (what every service runs at
    /// start), for the schema first on the search path.
    Ddl,
    /// One line per failed row: its position, when and why it failed, its topic, key and type,
    /// and how many rows of its key wait behind it.
    List {
        #[command(flatten)]
        target: outbox::Target,
    },
    /// Puts rows back into the outbox at their positions: each is published before the rows
    /// of its key that waited. Mend the cause first (create the topic, raise the limit).
    Retry {
        #[command(flatten)]
        target: outbox::Target,
        #[command(flatten)]
        rows: outbox::Rows,
    },
    /// Drops rows for good: their messages are never published; their keys go on without them.
    Discard {
        #[command(flatten)]
        target: outbox::Target,
        #[command(flatten)]
        rows: outbox::Rows,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// One line per dead letter: where it is, when and why it failed, where it came from.
    List {
        /// A consumer group (its dead-letter topic is ftgo.<group>.dlt) or a topic name.
        group_or_topic: String,
        /// Only letters with this reason (invalid-content, unknown-schema-id, ...).
        #[arg(long)]
        reason: Option<String>,
        /// `json`: an array of letters (position, failedAt, reason, group, origin, key, type,
        /// error).
        #[arg(long, value_enum, default_value_t)]
        output: output::Output,
    },
    /// One dead letter in full: its headers and its payload (decoded when it can be).
    Show {
        group_or_topic: String,
        /// Where the letter is, as `ftgo dlq list` prints it.
        #[arg(value_parser = dlq::parse_position, value_name = "PARTITION:OFFSET")]
        position: (i32, i64),
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Sends dead letters back to the topic they came from: same key, headers, bytes and id.
    Replay {
        group_or_topic: String,
        /// The letters to replay.
        #[arg(value_parser = dlq::parse_position, value_name = "PARTITION:OFFSET")]
        positions: Vec<(i32, i64)>,
        /// Every letter with this reason.
        #[arg(long, conflicts_with = "positions")]
        reason: Option<String>,
        /// Every letter.
        #[arg(long, conflicts_with_all = ["positions", "reason"])]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AclsCommand {
    /// Prints the plan that deploy/local/up applies: a `user NAME` line per principal with a
    /// password, then an `acl User:NAME RESOURCE PATTERN NAME OPERATION` line per ACL.
    Plan,
    /// Writes the table of principals and ACLs into FILE, between its
    /// `<!-- acls:begin -->` and `<!-- acls:end -->` lines.
    Docs {
        #[arg(long, default_value = "docs/security.md", value_name = "FILE")]
        out: PathBuf,
        /// Do not write; exit 1 when FILE's table differs from the catalog's.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchemasCommand {
    /// Registers every schema under its subject (<topic>-<record full name>) and sets each
    /// subject's compatibility level from catalog.toml. The registry refuses incompatible changes.
    Register,
    /// Compares the schemas in DIR with what the registry holds; exits 1, naming the subject and
    /// the field, when a change is incompatible with the subject's level.
    Check,
    /// Writes the message catalog (markdown) from the schemas.
    Docs {
        /// Where to write it.
        #[arg(long, default_value = "docs/messages.md", value_name = "FILE")]
        out: PathBuf,
        /// Do not write; exit 1 when FILE differs from what the schemas say.
        #[arg(long)]
        check: bool,
    },
}

/// Runs the command `ftgo` was given.
pub async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Acls { command, dir } => match command {
            AclsCommand::Plan => acls::plan(&dir),
            AclsCommand::Docs { out, check } => acls::docs(&dir, &out, check),
        },
        Command::Schemas {
            command,
            dir,
            registry,
        } => run_schemas(command, &dir, &registry.url).await,
        Command::Tail {
            options,
            kafka,
            registry,
        } => tail::tail(&kafka.bootstrap_servers, &registry.url, &options).await,
        Command::Dlq { command, kafka } => run_dlq(command, &kafka.bootstrap_servers).await,
        Command::Send {
            options,
            kafka,
            registry,
        } => send::send(&kafka.bootstrap_servers, &registry.url, &options).await,
        Command::Order {
            command,
            kafka,
            registry,
        } => run_order(command, &kafka.bootstrap_servers, &registry.url).await,
        Command::Kitchen {
            command,
            kafka,
            registry,
        } => act::kitchen(&kafka.bootstrap_servers, &registry.url, &command).await,
        Command::Delivery {
            command,
            kafka,
            registry,
        } => act::delivery(&kafka.bootstrap_servers, &registry.url, &command).await,
        Command::Seed {
            options,
            kafka,
            registry,
        } => seed::seed(&kafka.bootstrap_servers, &registry.url, &options).await,
        Command::Demo {
            options,
            kafka,
            registry,
        } => demo::demo(&kafka.bootstrap_servers, &registry.url, &options).await,
        Command::Bench {
            command,
            kafka,
            registry,
        } => bench::bench(&kafka.bootstrap_servers, &registry.url, &command).await,
        Command::Chaos {
            command,
            kafka,
            registry,
        } => crate::chaos::chaos(&kafka.bootstrap_servers, &registry.url, &command).await,
        Command::Outbox { command } => run_outbox(command).await,
        Command::Topics {
            command,
            options,
            kafka,
        } => match command {
            None => topics::topics(&kafka.bootstrap_servers, &options),
            Some(TopicsCommand::Apply(options)) => {
                topics::apply::apply(&kafka.bootstrap_servers, &options).await
            }
            Some(TopicsCommand::Strimzi(options)) => topics::strimzi::strimzi(&options),
        },
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "ftgo", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Groups {
            command: GroupsCommand::Reset(options),
            kafka,
        } => groups::reset(&kafka.bootstrap_servers, &options),
    }
}

async fn run_schemas(
    command: SchemasCommand,
    dir: &std::path::Path,
    url: &str,
) -> Result<ExitCode> {
    let registry = registry::Registry::new(url)?;
    match command {
        SchemasCommand::Register => schemas::register(dir, &registry).await,
        SchemasCommand::Check => schemas::check(dir, &registry).await,
        SchemasCommand::Docs { out, check } => schemas::docs(dir, &out, check),
    }
}

async fn run_dlq(command: DlqCommand, bootstrap: &str) -> Result<ExitCode> {
    match command {
        DlqCommand::List {
            group_or_topic,
            reason,
            output,
        } => dlq::list(bootstrap, &group_or_topic, reason.as_deref(), output),
        DlqCommand::Show {
            group_or_topic,
            position,
            registry,
        } => dlq::show(bootstrap, &registry.url, &group_or_topic, position).await,
        DlqCommand::Replay {
            group_or_topic,
            positions,
            reason,
            all,
        } => {
            let selection = dlq::Selection {
                positions,
                reason,
                all,
            };
            dlq::replay(bootstrap, &group_or_topic, &selection).await
        }
    }
}

async fn run_order(command: OrderCommand, bootstrap: &str, registry: &str) -> Result<ExitCode> {
    match command {
        OrderCommand::Create(options) => order::create(bootstrap, registry, &options).await,
        OrderCommand::Cancel {
            order_id,
            reason,
            wait,
        } => order::cancel(bootstrap, registry, order_id, reason, &wait).await,
        OrderCommand::Show { order_id, output } => {
            order::show(bootstrap, registry, order_id, output).await
        }
    }
}

async fn run_outbox(command: OutboxCommand) -> Result<ExitCode> {
    match command {
        OutboxCommand::List { target } => outbox::list(&target).await,
        OutboxCommand::Retry { target, rows } => outbox::retry(&target, &rows).await,
        OutboxCommand::Discard { target, rows } => outbox::discard(&target, &rows).await,
        OutboxCommand::Ddl => outbox::ddl(),
    }
}
