//! Generates one Rust type per record of `schemas/` (with rsgen-avro), the `Contract` impl of
//! each, and the compiled-in catalog. The `.avsc` files are the source of truth; nothing
//! generated is checked in, so a type cannot drift from its schema.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

use rsgen_avro::{Generator, Source};

#[allow(dead_code)]
#[path = "src/catalog_file.rs"]
mod catalog_file;

use catalog_file::CatalogFile;

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let schemas = manifest_dir.join("../../schemas").canonicalize()?;
    println!("cargo::rerun-if-changed={}", schemas.display());
    println!("cargo::rerun-if-changed=src/catalog_file.rs");
    let catalog = CatalogFile::load(&schemas)?;
    let files = catalog.schema_files(&schemas)?;

    let generator = Generator::builder().build()?;
    // (service, kind) -> generated code of its records
    let mut modules: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut impls = String::new();
    let mut for_each = String::new();
    // (service, kind) -> (topic, record names)
    let mut channels: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    for file in &files {
        let (service, kind) = module_path(&file.topic)?;
        let mut generated = Vec::new();
        generator
            .generate(&Source::SchemaStr(&file.text), &mut generated)
            .map_err(|e| format!("{}: {e}", file.path.display()))?;
        let module = snake_case(&file.name);
        channels
            .entry((service.clone(), kind.clone()))
            .or_insert_with(|| (file.topic.clone(), Vec::new()))
            .1
            .push(file.name.clone());
        let code = modules.entry((service.clone(), kind.clone())).or_default();
        writeln!(
            code,
            "/// Types of `schemas/{}/{}.avsc`.",
            file.topic, file.name
        )?;
        writeln!(code, "pub mod {module} {{")?;
        let text = String::from_utf8(generated)?;
        let has_money = text.contains("pub struct Money {");
        writeln!(code, "{text}")?;
        writeln!(code, "}}")?;
        writeln!(code, "pub use {module}::{};\n", file.name)?;

        let rust_path = format!("crate::{service}::{kind}::{}", file.name);
        writeln!(
            impls,
            "impl Contract for {rust_path} {{\n    const TOPIC: &'static str = {:?};\n    const FULL_NAME: &'static str = {:?};\n    const SCHEMA: &'static str = include_str!({:?});\n    fn key(&self) -> String {{ self.{}.to_string() }}\n}}\n",
            file.topic,
            file.full_name,
            file.path.display().to_string(),
            snake_case(&file.key)
        )?;
        writeln!(
            for_each,
            "        $callback!($crate::{service}::{kind}::{});",
            file.name
        )?;
        // A record's own Money type and the crate's one convert into each other.
        if has_money {
            let money = format!("crate::{service}::{kind}::{module}::Money");
            writeln!(
                impls,
                "impl From<{money}> for crate::Money {{\n    fn from(m: {money}) -> Self {{ Self {{ amount_minor: m.amount_minor, currency: m.currency }} }}\n}}\nimpl From<crate::Money> for {money} {{\n    fn from(m: crate::Money) -> Self {{ Self {{ amount_minor: m.amount_minor, currency: m.currency }} }}\n}}\n"
            )?;
        }
    }

    // One enum per channel, a variant per record: what a consumer of the channel matches on.
    for ((service, kind), (topic, records)) in &channels {
        let name = channel_enum(kind);
        let code = modules
            .get_mut(&(service.clone(), kind.clone()))
            .ok_or("a channel without records")?;
        writeln!(code, "/// Any record of `{topic}`.")?;
        writeln!(code, "#[derive(Debug, PartialEq, Eq, Clone)]")?;
        writeln!(code, "pub enum {name} {{")?;
        for record in records {
            writeln!(code, "    {record}({record}),")?;
        }
        writeln!(code, "}}")?;
        let path = format!("crate::{service}::{kind}::{name}");
        let mut arms = String::new();
        let mut keys = String::new();
        for record in records {
            writeln!(
                arms,
                "            {:?} => Ok(Self::{record}(decoded.into_record()?)),",
                format!("{topic}.{record}")
            )?;
            writeln!(keys, "            Self::{record}(m) => m.key(),")?;
        }
        writeln!(
            impls,
            "impl Channel for {path} {{\n    const TOPIC: &'static str = {topic:?};\n    fn from_decoded(decoded: Decoded) -> Result<Self, DecodeError> {{\n        match decoded.full_name.as_str() {{\n{arms}            other => Err(DecodeError::RecordNotAllowed {{ topic: {topic:?}.to_owned(), record: other.to_owned() }}),\n        }}\n    }}\n    fn key(&self) -> String {{\n        match self {{\n{keys}        }}\n    }}\n}}\n"
        )?;
    }

    let mut messages = String::new();
    let mut by_service: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for ((service, kind), code) in modules {
        by_service.entry(service).or_default().push((kind, code));
    }
    for (service, kinds) in by_service {
        writeln!(messages, "/// Messages of the `ftgo.{service}.*` channels.")?;
        writeln!(messages, "pub mod {service} {{")?;
        for (kind, code) in kinds {
            writeln!(messages, "/// The records of `ftgo.{service}.{kind}`.")?;
            writeln!(messages, "pub mod {kind} {{\n{code}}}")?;
        }
        writeln!(messages, "}}")?;
    }
    writeln!(
        impls,
        "/// Calls `$callback!(Type)` for every record type of the catalog.\n#[macro_export]\nmacro_rules! for_each_contract {{\n    ($callback:ident) => {{\n{for_each}    }};\n}}"
    )?;

    let mut catalog_code = String::new();
    writeln!(
        catalog_code,
        "/// Every channel of the catalog, in `schemas/catalog.toml` order."
    )?;
    writeln!(catalog_code, "pub static CHANNELS: &[ChannelInfo] = &[")?;
    for channel in &catalog.channel {
        let compatibility = channel
            .compatibility
            .as_deref()
            .unwrap_or(&catalog.defaults.compatibility);
        writeln!(
            catalog_code,
            "    ChannelInfo {{ topic: {:?}, compatibility: {compatibility:?}, producers: &{:?}, consumers: &{:?}, records: &[",
            channel.topic, channel.producers, channel.consumers
        )?;
        for file in files.iter().filter(|f| f.topic == channel.topic) {
            let producer = channel
                .record
                .iter()
                .find(|r| r.name == file.name)
                .and_then(|r| r.producer.clone())
                .unwrap_or_default();
            writeln!(
                catalog_code,
                "        RecordInfo {{ name: {:?}, full_name: {:?}, key_field: {:?}, producer: {producer:?}, schema: include_str!({:?}) }},",
                file.name,
                file.full_name,
                file.key,
                file.path.display().to_string()
            )?;
        }
        writeln!(catalog_code, "    ] }},")?;
    }
    writeln!(catalog_code, "];")?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("messages.rs"), messages)?;
    fs::write(out_dir.join("catalog.rs"), catalog_code)?;
    fs::write(out_dir.join("contract_impls.rs"), impls)?;
    Ok(())
}

/// The channel enum's name: `Command`, `Event` or `Reply` (no record has these names).
fn channel_enum(kind: &str) -> &'static str {
    match kind {
        "commands" => "Command",
        "events" => "Event",
        "replies" => "Reply",
        _ => "Record",
    }
}

/// `ftgo.order.commands` -> ("order", "commands").
fn module_path(topic: &str) -> BuildResult<(String, String)> {
    match topic.split('.').collect::<Vec<_>>().as_slice() {
        ["ftgo", service, kind] => Ok((service.replace('-', "_"), (*kind).to_owned())),
        _ => Err(format!("topic {topic} is not ftgo.<service>.<kind>").into()),
    }
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
