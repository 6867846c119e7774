//! Generates one Rust type per record of `schemas/` (with rsgen-avro), plus the catalog that
//! ties each record to its topic, key field and schema text. The `.avsc` files are the source
//! of truth; nothing generated is checked in, so a type cannot drift from its schema.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

use rsgen_avro::{Generator, Source};
use serde::Deserialize;

#[derive(Deserialize)]
struct Catalog {
    defaults: Defaults,
    channel: Vec<Channel>,
}

#[derive(Deserialize)]
struct Defaults {
    compatibility: String,
}

#[derive(Deserialize)]
struct Channel {
    topic: String,
    #[serde(default)]
    producers: Vec<String>,
    #[serde(default)]
    consumers: Vec<String>,
    compatibility: Option<String>,
    record: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    name: String,
    key: String,
    producer: Option<String>,
}

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let schemas = manifest_dir.join("../../schemas").canonicalize()?;
    println!("cargo::rerun-if-changed={}", schemas.display());
    let catalog_path = schemas.join("catalog.toml");
    let catalog: Catalog = toml::from_str(&fs::read_to_string(&catalog_path)?)
        .map_err(|e| format!("{}: {e}", catalog_path.display()))?;
    check_every_schema_is_listed(&schemas, &catalog)?;

    let generator = Generator::builder().build()?;
    // module path ("order", "commands") -> generated code of its records
    let mut modules: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut catalog_code = String::new();
    let mut impls = String::new();

    writeln!(
        catalog_code,
        "/// Every channel of the catalog, in `schemas/catalog.toml` order."
    )?;
    writeln!(catalog_code, "pub static CHANNELS: &[ChannelInfo] = &[")?;
    for channel in &catalog.channel {
        let (service, kind) = module_path(&channel.topic)?;
        let compatibility = channel
            .compatibility
            .as_deref()
            .unwrap_or(&catalog.defaults.compatibility);
        writeln!(
            catalog_code,
            "    ChannelInfo {{ topic: {:?}, compatibility: {:?}, producers: &{:?}, consumers: &{:?}, records: &[",
            channel.topic, compatibility, channel.producers, channel.consumers
        )?;
        for record in &channel.record {
            let path = schemas
                .join(&channel.topic)
                .join(format!("{}.avsc", record.name));
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)?;
            check_record(&path, &json, &channel.topic, record)?;

            let mut generated = Vec::new();
            generator
                .generate(&Source::SchemaStr(&text), &mut generated)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let module = snake_case(&record.name);
            let code = modules.entry((service.clone(), kind.clone())).or_default();
            writeln!(
                code,
                "/// Types of `{}`.",
                path.strip_prefix(&schemas)?.display()
            )?;
            writeln!(code, "pub mod {module} {{")?;
            writeln!(code, "{}", String::from_utf8(generated)?)?;
            writeln!(code, "}}")?;
            writeln!(code, "pub use {module}::{};\n", record.name)?;

            let full_name = format!("{}.{}", channel.topic, record.name);
            let rust_path = format!("crate::{service}::{kind}::{}", record.name);
            let producer = record.producer.as_deref().unwrap_or("");
            let schema_path = path.display().to_string();
            writeln!(
                catalog_code,
                "        RecordInfo {{ name: {:?}, full_name: {full_name:?}, key_field: {:?}, producer: {producer:?}, schema: include_str!({schema_path:?}) }},",
                record.name, record.key
            )?;
            let key_ident = snake_case(&record.key);
            writeln!(
                impls,
                "impl Contract for {rust_path} {{\n    const TOPIC: &'static str = {:?};\n    const FULL_NAME: &'static str = {full_name:?};\n    const SCHEMA: &'static str = include_str!({schema_path:?});\n    fn key(&self) -> String {{ self.{key_ident}.to_string() }}\n}}\n",
                channel.topic
            )?;
        }
        writeln!(catalog_code, "    ] }},")?;
    }
    writeln!(catalog_code, "];")?;

    let mut out = String::new();
    let mut by_service: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for ((service, kind), code) in modules {
        by_service.entry(service).or_default().push((kind, code));
    }
    for (service, kinds) in by_service {
        writeln!(out, "/// Messages of the `ftgo.{service}.*` channels.")?;
        writeln!(out, "pub mod {service} {{")?;
        for (kind, code) in kinds {
            writeln!(out, "/// The records of `ftgo.{service}.{kind}`.")?;
            writeln!(out, "pub mod {kind} {{\n{code}}}")?;
        }
        writeln!(out, "}}")?;
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("messages.rs"), out)?;
    fs::write(out_dir.join("catalog.rs"), catalog_code)?;
    fs::write(out_dir.join("contract_impls.rs"), impls)?;
    Ok(())
}

/// `ftgo.order.commands` -> ("order", "commands").
fn module_path(topic: &str) -> BuildResult<(String, String)> {
    match topic.split('.').collect::<Vec<_>>().as_slice() {
        ["ftgo", service, kind] => Ok((service.replace('-', "_"), kind.to_string())),
        _ => Err(format!("topic {topic} is not ftgo.<service>.<kind>").into()),
    }
}

/// The schema's namespace is its topic, its name the catalog's, and its key field a uuid.
fn check_record(
    path: &Path,
    json: &serde_json::Value,
    topic: &str,
    record: &Record,
) -> BuildResult<()> {
    let fail =
        |what: String| -> BuildResult<()> { Err(format!("{}: {what}", path.display()).into()) };
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
    let key = json["fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|f| f["name"] == record.key.as_str()));
    match key {
        Some(field) if field["type"]["logicalType"] == "uuid" => Ok(()),
        Some(_) => fail(format!("key field {} is not a uuid", record.key)),
        None => fail(format!("no key field {}", record.key)),
    }
}

fn check_every_schema_is_listed(schemas: &Path, catalog: &Catalog) -> BuildResult<()> {
    for dir in fs::read_dir(schemas)? {
        let dir = dir?.path();
        if !dir.is_dir() {
            continue;
        }
        let topic = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        for file in fs::read_dir(&dir)? {
            let file = file?.path();
            let name = file
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let listed = catalog
                .channel
                .iter()
                .any(|c| c.topic == topic && c.record.iter().any(|r| r.name == name));
            if !listed {
                return Err(
                    format!("{} is not listed in schemas/catalog.toml", file.display()).into(),
                );
            }
        }
    }
    Ok(())
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
