//! Files the CLI writes from the repository's sources (`docs/messages.md`, the ACL table of
//! `docs/security.md`), and the `--check` that fails when the committed one is stale.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// Writes `rendered` to `out`; with `check`, writes nothing and fails (naming `source` and the
/// `command` that regenerates it) when `current`, the file as it is, differs.
pub fn write_or_check(
    out: &Path,
    current: &str,
    rendered: &str,
    check: bool,
    (source, command): (&Path, &str),
) -> Result<ExitCode> {
    if check {
        if current != rendered {
            eprintln!(
                "{} is out of date with {}: run `{command}` and commit the result",
                out.display(),
                source.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        out!("{} is up to date", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    fs::write(out, rendered).with_context(|| format!("writing {}", out.display()))?;
    out!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
