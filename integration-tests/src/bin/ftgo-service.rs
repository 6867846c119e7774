//! Any FTGO service as a process of the tests' own, for the tests that kill instances
//! (`tests/orders_under_failure.rs`):
//!
//!     ftgo-service NAME [run --group GROUP | describe | reset --to-end ...]
//!
//! Runs service NAME (`order`, `kitchen`, ...) exactly as its own binary `NAME-service` does,
//! with the same arguments (`--group` puts it in a group of the test's own).

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let mut arguments = std::env::args_os().skip(1);
    let name = arguments
        .next()
        .context("usage: ftgo-service NAME [ARGUMENTS OF NAME-service]")?;
    let definition = integration_tests::service(&name.to_string_lossy())?;
    definition
        .main_with(std::iter::once(format!("{}-service", definition.name).into()).chain(arguments))
}
