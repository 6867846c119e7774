//! `ftgo`: the command-line tool of FTGO's users and operators.
//!
//! # Layout
//! - `schemas`: the subcommands over the message catalog (`register`, `check`, `docs`).
//! - `registry`: the Confluent REST API calls they need.
//! - `compatibility`: explains, field by field, why two schema versions are incompatible.
//! - `catalog_docs`: renders `docs/messages.md`.

/// `println!` that returns an error instead of panicking when stdout is closed (`ftgo ... | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?;
    }};
}

mod catalog_docs;
mod compatibility;
mod registry;
mod schemas;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ftgo",
    version,
    about = "FTGO over Kafka: the tool for its users and operators"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The Avro message catalog: register it, check changes against the registry, document it.
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
        /// The schemas directory (with catalog.toml).
        #[arg(long, global = true, default_value = "schemas", value_name = "DIR")]
        dir: PathBuf,
        /// The schema registry's Confluent-compatible API.
        #[arg(
            long,
            global = true,
            env = "FTGO_SCHEMA_REGISTRY__URL",
            default_value = "http://127.0.0.1:8081/apis/ccompat/v7",
            value_name = "URL"
        )]
        registry: String,
    },
}

#[derive(Debug, Subcommand)]
enum SchemasCommand {
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schemas {
            command,
            dir,
            registry,
        } => {
            let registry = registry::Registry::new(&registry);
            match command {
                SchemasCommand::Register => schemas::register(&dir, &registry).await,
                SchemasCommand::Check => schemas::check(&dir, &registry).await,
                SchemasCommand::Docs { out, check } => schemas::docs(&dir, &out, check),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The reader of our output went away (`| head`): not an error of ours.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
