//! `ftgo schemas register | check | docs`.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use apache_avro::Schema;
use contracts::catalog_file::{CatalogFile, SchemaFile};

use crate::compatibility::{Direction, explain};
use crate::registry::Registry;

fn load(dir: &Path) -> Result<(CatalogFile, Vec<SchemaFile>)> {
    if !dir.join("catalog.toml").is_file() {
        bail!(
            "no catalog.toml in {}: run from the repository root, or pass --dir <schemas dir>",
            dir.display()
        );
    }
    let catalog = CatalogFile::load(dir).map_err(anyhow::Error::msg)?;
    let files = catalog.schema_files(dir).map_err(anyhow::Error::msg)?;
    for file in &files {
        Schema::parse_str(&file.text)
            .with_context(|| format!("{} is not a valid Avro schema", file.path.display()))?;
    }
    Ok((catalog, files))
}

fn subject(file: &SchemaFile) -> String {
    contracts::subject(&file.topic, &file.full_name)
}

/// Sets each subject's level, then registers its schema (the level applies from the first
/// registration on, so the registry checks every later change).
pub async fn register(dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let (_, files) = load(dir)?;
    out!(
        "{:<80} {:>6} {:>8}  {:<16} result",
        "subject",
        "id",
        "version",
        "compatibility"
    );
    let mut refused = 0;
    for file in &files {
        let subject = subject(file);
        registry
            .set_compatibility(&subject, &file.compatibility)
            .await?;
        // (id, version, outcome); a new version's number comes from a lookup after registering.
        let (id, version, outcome) = match registry.lookup(&subject, &file.text).await? {
            Some(found) => (
                found.id.to_string(),
                found.version.to_string(),
                "unchanged".to_owned(),
            ),
            None => match registry.register(&subject, &file.text).await {
                Ok(id) => {
                    let version = registry
                        .lookup(&subject, &file.text)
                        .await?
                        .map_or_else(|| "-".to_owned(), |found| found.version.to_string());
                    (id.to_string(), version, "registered".to_owned())
                }
                Err(error) => {
                    refused += 1;
                    (
                        "-".to_owned(),
                        "-".to_owned(),
                        format!("REFUSED: {error:#}"),
                    )
                }
            },
        };
        out!(
            "{subject:<80} {id:>6} {version:>8}  {:<16} {outcome}",
            file.compatibility
        );
    }
    out!(
        "\n{} subjects, {} refused (run `ftgo schemas check` to see why)",
        files.len(),
        refused
    );
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// For each schema: unchanged, new, a compatible change, or incompatible (with the reasons).
pub async fn check(dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let (_, files) = load(dir)?;
    let (mut unchanged, mut new, mut compatible, mut incompatible) = (0, 0, 0, 0);
    for file in &files {
        let subject = subject(file);
        let Some(versions) = registry.versions(&subject).await? else {
            new += 1;
            out!("new           {subject}: not registered yet");
            continue;
        };
        if let Some(found) = registry.lookup(&subject, &file.text).await? {
            unchanged += 1;
            out!(
                "unchanged     {subject}: version {} (id {})",
                found.version,
                found.id
            );
            continue;
        }
        let level = registry
            .compatibility(&subject)
            .await?
            .unwrap_or_else(|| file.compatibility.clone());
        if level != file.compatibility {
            out!(
                "note          {subject}: the registry's level is {level}, catalog.toml says {} (register sets it)",
                file.compatibility
            );
        }
        if registry.is_compatible(&subject, &file.text).await? {
            compatible += 1;
            out!(
                "compatible    {subject}: a {level} change, would be version {}",
                versions.len() + 1
            );
            continue;
        }
        incompatible += 1;
        out!(
            "INCOMPATIBLE  {subject} ({level}), {}:",
            file.path.display()
        );
        explain_refusal(&subject, &level, &file.text, &versions)?;
    }
    out!(
        "\n{} subjects: {unchanged} unchanged, {new} new, {compatible} compatible changes, {incompatible} incompatible",
        files.len()
    );
    Ok(if incompatible == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Says, field by field, why the registry refuses `text` under `subject` at `level`: against
/// the latest version, or every version for a transitive level.
fn explain_refusal(
    subject: &str,
    level: &str,
    text: &str,
    versions: &[crate::registry::Registered],
) -> Result<()> {
    let new_schema = Schema::parse_str(text)?;
    let directions = Direction::of_level(level);
    let against: Vec<_> = if level.ends_with("_TRANSITIVE") {
        versions.iter().collect()
    } else {
        versions.iter().rev().take(1).collect()
    };
    let mut explained = false;
    for old in against {
        let old_schema = Schema::parse_str(&old.schema)
            .with_context(|| format!("version {} of {subject} does not parse", old.version))?;
        for problem in explain(&old_schema, &new_schema, &directions) {
            explained = true;
            out!("    against version {}: {problem}", old.version);
        }
    }
    if !explained {
        out!("    the registry refuses it; no field-level explanation was found");
    }
    Ok(())
}

pub fn docs(dir: &Path, out: &Path, check: bool) -> Result<ExitCode> {
    let (catalog, files) = load(dir)?;
    let rendered = crate::catalog_docs::render(&catalog, &files)?;
    let current = fs::read_to_string(out).unwrap_or_default();
    crate::generated::write_or_check(out, &current, &rendered, check, (dir, "ftgo schemas docs"))
}
