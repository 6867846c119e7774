//! Explains why one version of a schema cannot read another, naming the field.
//!
//! The registry decides compatibility; apache-avro's own check (`SchemaCompatibility`) says
//! whether a direction breaks, and this says *why*, in Avro's schema-resolution terms (a reader needs a default for every field the writer lacks, the same or a promotable
//! type for every field both have, every writer enum symbol, a matching union branch for every
//! writer branch). Logical types are compared by their underlying type, as the registry does.

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

/// The ways a level can be broken, with the direction each one checks.
pub enum Direction {
    /// New readers (consumers) must read records written with old schemas.
    Backward,
    /// Old readers must read records written with the new schema.
    Forward,
}

impl Direction {
    /// The directions a compatibility level asks for.
    pub fn of_level(level: &str) -> Vec<Direction> {
        match level.trim_end_matches("_TRANSITIVE") {
            "BACKWARD" => vec![Direction::Backward],
            "FORWARD" => vec![Direction::Forward],
            "FULL" => vec![Direction::Backward, Direction::Forward],
            _ => vec![],
        }
    }
}

/// Every reason why `old` (a registered version) and `new` (the working tree) break the
/// level's directions, as sentences naming the field path.
pub fn explain(old: &Schema, new: &Schema, directions: &[Direction]) -> Vec<String> {
    let (Ok(old_names), Ok(new_names)) =
        (ResolvedSchema::try_from(old), ResolvedSchema::try_from(new))
    else {
        return vec!["a schema does not resolve its named types".to_owned()];
    };
    let mut problems = Vec::new();
    for direction in directions {
        let (reader, writer, missing, who) = match direction {
            Direction::Backward => (
                Side {
                    schema: new,
                    names: &new_names,
                },
                Side {
                    schema: old,
                    names: &old_names,
                },
                "was added without a default",
                "new consumers could not read old records",
            ),
            Direction::Forward => (
                Side {
                    schema: old,
                    names: &old_names,
                },
                Side {
                    schema: new,
                    names: &new_names,
                },
                "was removed, and the old schema gives it no default",
                "old consumers could not read new records",
            ),
        };
        // Partial: some records may not resolve (an enum symbol or a union branch is
        // missing), which the registry's levels do not allow either.
        let verdict = match SchemaCompatibility::can_read(writer.schema, reader.schema) {
            Ok(Compatibility::Full) => continue,
            Ok(Compatibility::Partial) => "some values cannot be read".to_owned(),
            Err(error) => error.to_string(),
        };
        let mut found = Vec::new();
        check(reader, writer, "", missing, &mut found);
        if found.is_empty() {
            // apache-avro found what the field-by-field walk does not name.
            found.push(verdict);
        }
        problems.extend(found.into_iter().map(|p| format!("{p} ({who})")));
    }
    problems
}

#[derive(Clone, Copy)]
struct Side<'a> {
    schema: &'a Schema,
    names: &'a ResolvedSchema<'a>,
}

impl<'a> Side<'a> {
    fn with(self, schema: &'a Schema) -> Side<'a> {
        Side {
            schema,
            names: self.names,
        }
    }

    /// The schema itself, with a reference to a named type replaced by its definition.
    fn resolved(self) -> Side<'a> {
        match self.schema {
            Schema::Ref { name } => match self.names.get_names().get(name) {
                Some(named) => self.with(named),
                None => self,
            },
            _ => self,
        }
    }
}

/// `missing` says what it means that the reader has a field the writer lacks.
fn check(
    reader: Side<'_>,
    writer: Side<'_>,
    path: &str,
    missing: &str,
    problems: &mut Vec<String>,
) {
    let (reader, writer) = (reader.resolved(), writer.resolved());
    let at = if path.is_empty() {
        "the record".to_owned()
    } else {
        format!("field `{path}`")
    };
    match (reader.schema, writer.schema) {
        (Schema::Record(r), Schema::Record(w)) => {
            check_fields(reader, writer, r, w, path, missing, problems);
        }
        (Schema::Enum(r), Schema::Enum(w)) => {
            if let Some(problem) = check_symbols(r, w, &at) {
                problems.push(problem);
            }
        }
        (Schema::Array(r), Schema::Array(w)) => check(
            reader.with(&r.items),
            writer.with(&w.items),
            &format!("{path}[]"),
            missing,
            problems,
        ),
        (Schema::Map(r), Schema::Map(w)) => check(
            reader.with(&r.types),
            writer.with(&w.types),
            &format!("{path}{{}}"),
            missing,
            problems,
        ),
        _ => {
            if let Some(problem) = check_type(reader, writer, &at) {
                problems.push(problem);
            }
        }
    }
}

/// Every field of the reader's record: read from the writer's (by name or alias), or given
/// a default.
fn check_fields(
    reader: Side<'_>,
    writer: Side<'_>,
    r: &apache_avro::schema::RecordSchema,
    w: &apache_avro::schema::RecordSchema,
    path: &str,
    missing: &str,
    problems: &mut Vec<String>,
) {
    for field in &r.fields {
        let sub = join(path, &field.name);
        let names = std::iter::once(&field.name).chain(field.aliases.iter());
        match names.filter_map(|n| w.lookup.get(n)).next() {
            Some(&i) => check(
                reader.with(&field.schema),
                writer.with(&w.fields[i].schema),
                &sub,
                missing,
                problems,
            ),
            None if field.default.is_none() => problems.push(format!("field `{sub}` {missing}")),
            None => {}
        }
    }
}

/// The writer's enum symbols the reader lacks (with no default to read them as).
fn check_symbols(
    r: &apache_avro::schema::EnumSchema,
    w: &apache_avro::schema::EnumSchema,
    at: &str,
) -> Option<String> {
    let missing: Vec<&str> = w
        .symbols
        .iter()
        .filter(|s| !r.symbols.contains(s))
        .map(String::as_str)
        .collect();
    (!missing.is_empty() && r.default.is_none()).then(|| {
        format!(
            "{at} (enum {}) lacks symbol(s) {} that the writer uses",
            r.name.name(),
            missing.join(", ")
        )
    })
}

/// A type (or union) the reader cannot read the writer's as.
fn check_type(reader: Side<'_>, writer: Side<'_>, at: &str) -> Option<String> {
    match (reader.schema, writer.schema) {
        (Schema::Union(r), Schema::Union(w)) => w
            .variants()
            .iter()
            .find(|branch| {
                !r.variants()
                    .iter()
                    .any(|rb| readable(reader.with(rb), writer.with(branch)))
            })
            .map(|branch| {
                format!(
                    "{at} can no longer hold {} (a union branch was removed or changed)",
                    kind(writer.with(branch))
                )
            }),
        (Schema::Union(r), _) => (!r
            .variants()
            .iter()
            .any(|rb| readable(reader.with(rb), writer)))
        .then(|| {
            format!(
                "{at} changed type from {} to {}",
                kind(writer),
                describe(reader)
            )
        }),
        (_, Schema::Union(w)) => w
            .variants()
            .iter()
            .any(|branch| !readable(reader, writer.with(branch)))
            .then(|| {
                format!(
                    "{at} changed type from {} to {}",
                    describe(writer),
                    kind(reader)
                )
            }),
        _ => (!readable(reader, writer)).then(|| {
            format!(
                "{at} changed type from {} to {}",
                kind(writer),
                kind(reader)
            )
        }),
    }
}

/// Whether `reader` can read what `writer` wrote, without looking into records (which
/// `check` does field by field).
fn readable(reader: Side<'_>, writer: Side<'_>) -> bool {
    let (reader, writer) = (reader.resolved(), writer.resolved());
    match (reader.schema, writer.schema) {
        (Schema::Record(r), Schema::Record(w)) => same_name(&r.name, &w.name),
        (Schema::Enum(r), Schema::Enum(w)) => same_name(&r.name, &w.name),
        (Schema::Fixed(r), Schema::Fixed(w)) => same_name(&r.name, &w.name) && r.size == w.size,
        (Schema::Array(r), Schema::Array(w)) => {
            readable(reader.with(&r.items), writer.with(&w.items))
        }
        (Schema::Map(r), Schema::Map(w)) => readable(reader.with(&r.types), writer.with(&w.types)),
        _ => {
            let (r, w) = (kind(reader), kind(writer));
            r == w || promotable(&w, &r)
        }
    }
}

fn same_name(a: &Name, b: &Name) -> bool {
    a.name() == b.name()
}

/// Avro's type promotions: what a writer's type may be read as.
fn promotable(writer: &str, reader: &str) -> bool {
    matches!(
        (writer, reader),
        ("int", "long" | "float" | "double")
            | ("long", "float" | "double")
            | ("float", "double")
            | ("string", "bytes")
            | ("bytes", "string")
    )
}

/// The underlying Avro type's name; logical types count as their underlying type.
fn kind(side: Side<'_>) -> String {
    let side = side.resolved();
    match side.schema {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes | Schema::BigDecimal => "bytes".into(),
        Schema::String | Schema::Uuid(_) => "string".into(),
        Schema::Decimal(_) => "bytes".into(),
        Schema::Record(r) => format!("record {}", r.name.name()),
        Schema::Enum(e) => format!("enum {}", e.name.name()),
        Schema::Fixed(f) => format!("fixed {}", f.name.name()),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
        other => format!("{other:?}"),
    }
}

fn describe(side: Side<'_>) -> String {
    match side.resolved().schema {
        Schema::Union(u) => u
            .variants()
            .iter()
            .map(|v| kind(side.with(v)))
            .collect::<Vec<_>>()
            .join(" | "),
        _ => kind(side),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type": "record", "name": "R", "namespace": "t", "fields": [{fields}]}}"#
        ))
        .expect("test schema")
    }

    fn full(old: &str, new: &str) -> Vec<String> {
        explain(
            &schema(old),
            &schema(new),
            &Direction::of_level("FULL_TRANSITIVE"),
        )
    }

    const ID: &str = r#"{"name": "id", "type": "string"}"#;

    #[test]
    fn an_optional_field_with_a_default_is_fine_both_ways() {
        let added =
            format!(r#"{ID}, {{"name": "note", "type": ["null", "string"], "default": null}}"#);
        assert!(full(ID, &added).is_empty(), "{:?}", full(ID, &added));
        assert!(full(&added, ID).is_empty(), "{:?}", full(&added, ID));
    }

    #[test]
    fn a_field_added_without_a_default_is_named() {
        let with_total = format!(r#"{ID}, {{"name": "total", "type": "long"}}"#);
        assert_eq!(
            full(ID, &with_total),
            vec![
                "field `total` was added without a default (new consumers could not read old records)"
            ]
        );
    }

    #[test]
    fn a_field_removed_without_a_default_is_named() {
        let with_total = format!(r#"{ID}, {{"name": "total", "type": "long"}}"#);
        let problems = full(&with_total, ID);
        assert_eq!(
            problems,
            vec![
                "field `total` was removed, and the old schema gives it no default (old consumers could not read new records)"
            ]
        );
    }

    #[test]
    fn a_changed_type_is_named_and_promotions_are_allowed() {
        let as_int = format!(r#"{ID}, {{"name": "n", "type": "int"}}"#);
        let as_string = format!(r#"{ID}, {{"name": "n", "type": "string"}}"#);
        let as_long = format!(r#"{ID}, {{"name": "n", "type": "long"}}"#);
        assert!(
            full(&as_int, &as_string)
                .iter()
                .any(|p| p.contains("field `n` changed type from int to string"))
        );
        // int -> long is a promotion backward, but old readers cannot read longs as ints.
        assert_eq!(
            full(&as_int, &as_long),
            vec![
                "field `n` changed type from long to int (old consumers could not read new records)"
            ]
        );
    }

    #[test]
    fn a_removed_enum_symbol_is_named() {
        let e = |symbols: &str| {
            format!(
                r#"{{"name": "reason", "type": {{"type": "enum", "name": "Reason", "symbols": [{symbols}]}}}}"#
            )
        };
        let problems = full(&e(r#""A", "B""#), &e(r#""A""#));
        assert_eq!(
            problems,
            vec![
                "field `reason` (enum Reason) lacks symbol(s) B that the writer uses (new consumers could not read old records)"
            ]
        );
    }

    #[test]
    fn nested_fields_are_named_by_path() {
        let money = |amount: &str| {
            format!(
                r#"{{"name": "total", "type": {{"type": "record", "name": "Money", "fields": [{{"name": "amount", "type": "{amount}"}}]}}}}"#
            )
        };
        let problems = full(&money("long"), &money("string"));
        assert!(
            problems.iter().all(|p| p.contains("field `total.amount`")),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 2);
    }
}
