//! Running the `ftgo` binary as a user does, against the local platform.

use std::process::Command;

use anyhow::{Context, Result};
use test_support::Platform;

/// How a run of `ftgo` ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ftgo ARGS` with the platform's addresses in its environment.
pub fn ftgo(args: &[&str]) -> Result<Run> {
    let platform = Platform::from_env();
    let output = Command::new(env!("CARGO_BIN_EXE_ftgo"))
        .args(args)
        .env("FTGO_KAFKA__BOOTSTRAP_SERVERS", &platform.bootstrap_servers)
        .env("FTGO_SCHEMA_REGISTRY__URL", &platform.schema_registry_url)
        .output()
        .context("running ftgo")?;
    Ok(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}
