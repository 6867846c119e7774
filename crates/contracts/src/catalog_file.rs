//! Reading and validating `schemas/catalog.toml` and the `.avsc` files it lists.
//!
//! Shared, as source, by the build script (which generates the Rust types from it) and by the
//! library (so tools such as `ftgo schemas check` can read a schemas directory at run time).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `schemas/catalog.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub defaults: CatalogDefaults,
    pub channel: Vec<ChannelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDefaults {
    pub compatibility: String,
}

/// One `[[channel]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEntry {
    pub topic: String,
    #[serde(default)]
    pub producers: Vec<String>,
    #[serde(default)]
    pub consumers: Vec<String>,
    pub compatibility: Option<String>,
    pub record: Vec<RecordEntry>,
}

/// One `[[channel.record]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEntry {
    pub name: String,
    pub key: String,
    pub producer: Option<String>,
}

/// A record of the catalog with its schema text, as read from a schemas directory.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    pub topic: String,
    pub name: String,
    pub full_name: String,
    pub key: String,
    pub compatibility: String,
    pub path: PathBuf,
    pub text: String,
}

const COMPATIBILITY_LEVELS: &[&str] = &[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
];

impl CatalogFile {
    /// Reads `<dir>/catalog.toml`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join("catalog.toml");
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads and validates every schema the catalog lists: the file exists, its name and
    /// namespace are the catalog's record and topic, its key field is a uuid, the
    /// compatibility level is one the registry knows; and no `.avsc` in `dir` is left unlisted.
    pub fn schema_files(&self, dir: &Path) -> Result<Vec<SchemaFile>, String> {
        let mut files = Vec::new();
        for channel in &self.channel {
            let compatibility = channel
                .compatibility
                .clone()
                .unwrap_or_else(|| self.defaults.compatibility.clone());
            if !COMPATIBILITY_LEVELS.contains(&compatibility.as_str()) {
                return Err(format!(
                    "channel {}: compatibility {compatibility} is not one of {COMPATIBILITY_LEVELS:?}",
                    channel.topic
                ));
            }
            for record in &channel.record {
                let path = dir
                    .join(&channel.topic)
                    .join(format!("{}.avsc", record.name));
                let text =
                    fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                check_record(&path, &text, &channel.topic, record)?;
                files.push(SchemaFile {
                    topic: channel.topic.clone(),
                    name: record.name.clone(),
                    full_name: format!("{}.{}", channel.topic, record.name),
                    key: record.key.clone(),
                    compatibility: compatibility.clone(),
                    path,
                    text,
                });
            }
        }
        self.check_every_schema_is_listed(dir)?;
        Ok(files)
    }

    fn check_every_schema_is_listed(&self, dir: &Path) -> Result<(), String> {
        let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let sub = entry.map_err(|e| e.to_string())?.path();
            if !sub.is_dir() {
                continue;
            }
            let topic = file_name(&sub);
            let files = fs::read_dir(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
            for file in files {
                let file = file.map_err(|e| e.to_string())?.path();
                let name = file
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let listed = self
                    .channel
                    .iter()
                    .any(|c| c.topic == topic && c.record.iter().any(|r| r.name == name));
                if !listed {
                    return Err(format!(
                        "{} is not listed in {}",
                        file.display(),
                        dir.join("catalog.toml").display()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}

/// The schema's name and namespace are the catalog's record and topic, every field has a doc,
/// and its key field is a uuid.
fn check_record(path: &Path, text: &str, topic: &str, record: &RecordEntry) -> Result<(), String> {
    let fail = |what: String| Err(format!("{}: {what}", path.display()));
    let json: serde_json::Value = match serde_json::from_str(text) {
        Ok(json) => json,
        Err(e) => return fail(format!("not JSON: {e}")),
    };
    if json["name"] != record.name.as_str() {
        return fail(format!(
            "record name {} is not the catalog's {}",
            json["name"], record.name
        ));
    }
    if json["namespace"] != topic {
        return fail(format!(
            "namespace {} is not the topic {topic}",
            json["namespace"]
        ));
    }
    if json["doc"].as_str().is_none_or(str::is_empty) {
        return fail("the record has no doc".to_owned());
    }
    let fields = json["fields"].as_array().cloned().unwrap_or_default();
    if let Some(undocumented) = fields
        .iter()
        .find(|f| f["doc"].as_str().is_none_or(str::is_empty))
    {
        return fail(format!("field {} has no doc", undocumented["name"]));
    }
    match fields.iter().find(|f| f["name"] == record.key.as_str()) {
        Some(field) if field["type"]["logicalType"] == "uuid" => Ok(()),
        Some(_) => fail(format!("key field {} is not a uuid", record.key)),
        None => fail(format!("no key field {}", record.key)),
    }
}
