//! `ftgo acls`: the Kafka principals and ACLs the catalog implies ([`contracts::access`]), as
//! the plan deploy/local/up applies and as the table docs/security.md shows.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use contracts::access::AccessPlan;
use contracts::catalog_file::CatalogFile;

const BEGIN: &str =
    "<!-- acls:begin (ftgo acls docs writes this table; edit schemas/catalog.toml) -->";
const END: &str = "<!-- acls:end -->";

fn load(dir: &Path) -> Result<AccessPlan> {
    let catalog = CatalogFile::load(dir).map_err(|e| anyhow!(e))?;
    AccessPlan::of(&catalog).map_err(|e| anyhow!(e))
}

/// Prints a `user` line per principal with a password, a `registry <user> <role>` line per
/// principal (its schema registry role), then an `acl` line per ACL.
pub fn plan(dir: &Path) -> Result<ExitCode> {
    let plan = load(dir)?;
    for user in &plan.users {
        out!("user {user}");
    }
    for user in &plan.users {
        out!(
            "registry {user} {}",
            contracts::access::RegistryRole::of(user).apicurio_role()
        );
    }
    for acl in &plan.acls {
        out!("acl {acl}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` with the table between its markers replaced by `table`.
fn with_table(text: &str, table: &str) -> Result<String> {
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        bail!("no `{BEGIN}` ... `{END}` lines to write the table between");
    };
    if end < begin {
        bail!("`{END}` comes before `{BEGIN}`");
    }
    Ok(format!(
        "{}{BEGIN}\n\n{table}\n{}",
        &text[..begin],
        &text[end..]
    ))
}

/// Writes the table into `out` (or, with `check`, says whether it is current).
pub fn docs(dir: &Path, out: &Path, check: bool) -> Result<ExitCode> {
    let plan = load(dir)?;
    let current = fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    let rendered =
        with_table(&current, &plan.markdown()).with_context(|| format!("{}", out.display()))?;
    let source = dir.join("catalog.toml");
    crate::generated::write_or_check(out, &current, &rendered, check, (&source, "ftgo acls docs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_goes_between_the_markers_and_nowhere_else() {
        let text = format!("# Security\n\nbefore\n{BEGIN}\n\nold table\n{END}\nafter\n");
        let written = with_table(&text, "| new |\n").expect("markers");
        assert_eq!(
            written,
            format!("# Security\n\nbefore\n{BEGIN}\n\n| new |\n\n{END}\nafter\n")
        );
        assert_eq!(with_table(&written, "| new |\n").expect("again"), written);
        assert!(with_table("no markers", "x").is_err());
    }
}
