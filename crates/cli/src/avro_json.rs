//! Records written by hand as JSON, read against their Avro schema; and decoded records shown
//! on one line.
//!
//! The JSON is the record in its Avro field names (`orderId`, `lineItems`, as in the `.avsc`),
//! with the conveniences a person typing it expects: a `uuid` or an enum as a string, a
//! union's value bare (`"street2": "Flat 3"` or `null`, not `{"string": "Flat 3"}`, though
//! that form is accepted too), a `timestamp-millis` as milliseconds or as RFC 3339 text (or
//! `now`), a field with a default left out. Every misfit names the field it is in
//! (`lineItems[1].quantity`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::Value as Json;

/// A record's schema with its named types (records, enums) resolvable by name.
#[derive(Debug)]
pub struct RecordSchema {
    schema: Schema,
    names: HashMap<Name, Schema>,
}

/// Why a JSON value does not fit its schema, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    /// Where, as `field.sub[2].leaf`; empty for the record itself.
    pub path: String,
    pub problem: String,
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "field `{}`: {}", self.path, self.problem)
        }
    }
}

impl std::error::Error for Misfit {}

/// Every misfit of a value: a record typed by hand often has several, and all are told at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfits(pub Vec<Misfit>);

impl std::fmt::Display for Misfits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} misfits:", all.len())?;
                for misfit in all {
                    write!(f, "\n  {misfit}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Misfits {}

/// A converted value, or every misfit in it.
type Converted = Result<Value, Vec<Misfit>>;

fn misfit(path: &str, problem: impl Into<String>) -> Misfit {
    Misfit {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn child(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// `"two" (a string)`, shortened when long.
fn shown(json: &Json) -> String {
    let kind = match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    };
    let mut text = json.to_string();
    if text.len() > 40 {
        let cut = (0..=37)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    if matches!(json, Json::Null) {
        kind.to_owned()
    } else {
        format!("{text} ({kind})")
    }
}

impl RecordSchema {
    pub fn parse(text: &str) -> Result<Self, apache_avro::Error> {
        let schema = Schema::parse_str(text)?;
        let names = ResolvedSchema::try_from(&schema)?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        Ok(Self { schema, names })
    }

    /// `schema`, with a reference to a named type replaced by the type.
    fn deref<'a>(&'a self, schema: &'a Schema) -> &'a Schema {
        match schema {
            Schema::Ref { name } => self.names.get(name).unwrap_or(schema),
            other => other,
        }
    }

    /// The record as an Avro value of this schema.
    pub fn to_avro(&self, json: &Json) -> Result<Value, Misfits> {
        self.convert(json, &self.schema, "").map_err(Misfits)
    }

    fn convert(&self, json: &Json, schema: &Schema, path: &str) -> Converted {
        let expected = |what: &str| {
            vec![misfit(
                path,
                format!("expected {what}, got {}", shown(json)),
            )]
        };
        match (self.deref(schema), json) {
            (Schema::Null, Json::Null) => Ok(Value::Null),
            (Schema::Boolean, Json::Bool(b)) => Ok(Value::Boolean(*b)),
            (Schema::Int, Json::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Value::Int)
                .ok_or_else(|| expected("a whole number (int, 32 bits)")),
            (Schema::Long, Json::Number(n)) => n
                .as_i64()
                .map(Value::Long)
                .ok_or_else(|| expected("a whole number (long)")),
            (Schema::Float, Json::Number(n)) => n
                .as_f64()
                .map(|f| Value::Float(f as f32))
                .ok_or_else(|| expected("a number")),
            (Schema::Double, Json::Number(n)) => n
                .as_f64()
                .map(Value::Double)
                .ok_or_else(|| expected("a number")),
            (Schema::String, Json::String(s)) => Ok(Value::String(s.clone())),
            (Schema::Bytes, Json::String(s)) => Ok(Value::Bytes(s.as_bytes().to_vec())),
            (Schema::Uuid(_), Json::String(s)) => s
                .parse()
                .map(Value::Uuid)
                .map_err(|_| expected("a uuid such as 0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e7f")),
            (Schema::Enum(e), Json::String(s)) => match e.symbols.iter().position(|x| x == s) {
                Some(index) => Ok(Value::Enum(index as u32, s.clone())),
                None => Err(expected(&format!("one of {}", e.symbols.join(", ")))),
            },
            (Schema::TimestampMillis, json) => timestamp_millis(json)
                .map(Value::TimestampMillis)
                .ok_or_else(|| {
                    expected("a time: milliseconds since the epoch, RFC 3339 text or \"now\"")
                }),
            (Schema::LocalTimestampMillis, json) => timestamp_millis(json)
                .map(Value::LocalTimestampMillis)
                .ok_or_else(|| expected("a time: milliseconds or RFC 3339 text")),
            (Schema::TimestampMicros, Json::Number(n)) => n
                .as_i64()
                .map(Value::TimestampMicros)
                .ok_or_else(|| expected("microseconds since the epoch")),
            (Schema::Date, Json::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Value::Date)
                .ok_or_else(|| expected("days since the epoch")),
            (Schema::Array(array), Json::Array(items)) => all_of(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.convert(item, &array.items, &format!("{path}[{i}]"))),
            )
            .map(Value::Array),
            (Schema::Map(map), Json::Object(entries)) => {
                let values = all_of(
                    entries
                        .iter()
                        .map(|(k, v)| self.convert(v, &map.types, &child(path, k))),
                )?;
                Ok(Value::Map(entries.keys().cloned().zip(values).collect()))
            }
            (Schema::Union(union), json) => self.convert_union(json, union.variants(), path),
            (Schema::Record(record), Json::Object(given)) => {
                let names: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
                let mut misfits: Vec<Misfit> = given
                    .keys()
                    .filter(|k| !names.contains(&k.as_str()))
                    .map(|unknown| {
                        misfit(
                            &child(path, unknown),
                            format!(
                                "{} has no such field (its fields: {})",
                                record.name.name(),
                                names.join(", ")
                            ),
                        )
                    })
                    .collect();
                let mut fields = Vec::with_capacity(record.fields.len());
                for field in &record.fields {
                    let at = child(path, &field.name);
                    let value = match (given.get(&field.name), &field.default) {
                        (Some(json), _) => self.convert(json, &field.schema, &at),
                        // Avro's rule: a union's default is a value of its first branch.
                        (None, Some(default)) => match self.deref(&field.schema) {
                            Schema::Union(union) => self
                                .convert(default, &union.variants()[0], &at)
                                .map(|v| Value::Union(0, Box::new(v))),
                            _ => self.convert(default, &field.schema, &at),
                        },
                        (None, None) => Err(vec![misfit(
                            &at,
                            format!("missing (a {})", describe(self.deref(&field.schema))),
                        )]),
                    };
                    match value {
                        Ok(value) => fields.push((field.name.clone(), value)),
                        Err(more) => misfits.extend(more),
                    }
                }
                if misfits.is_empty() {
                    Ok(Value::Record(fields))
                } else {
                    Err(misfits)
                }
            }
            (
                Schema::Fixed(_)
                | Schema::Decimal(_)
                | Schema::BigDecimal
                | Schema::Duration(_)
                | Schema::TimeMillis
                | Schema::TimeMicros
                | Schema::TimestampNanos
                | Schema::LocalTimestampMicros
                | Schema::LocalTimestampNanos,
                _,
            ) => Err(vec![misfit(
                path,
                format!(
                    "ftgo cannot write {} from JSON yet",
                    describe(self.deref(schema))
                ),
            )]),
            (other, _) => Err(expected(&expectation(other))),
        }
    }

    fn convert_union(&self, json: &Json, variants: &[Schema], path: &str) -> Converted {
        // Avro's own JSON form of a union value: {"<branch type>": value}.
        if let Json::Object(tagged) = json
            && tagged.len() == 1
            && let Some((tag, inner)) = tagged.iter().next()
            && let Some(index) = variants
                .iter()
                .position(|v| branch_name(self.deref(v)) == *tag)
        {
            let value = self.convert(inner, &variants[index], path)?;
            return Ok(Value::Union(index as u32, Box::new(value)));
        }
        let mut first_misfit = None;
        for (index, variant) in variants.iter().enumerate() {
            match self.convert(json, variant, path) {
                Ok(value) => return Ok(Value::Union(index as u32, Box::new(value))),
                Err(error) => {
                    first_misfit.get_or_insert(error);
                }
            }
        }
        let branches: Vec<&Schema> = variants
            .iter()
            .filter(|v| !matches!(v, Schema::Null))
            .collect();
        match (branches.as_slice(), first_misfit) {
            // An optional field: the error of its one real type says the most.
            ([only], _) if !matches!(json, Json::Null) => self.convert(json, only, path),
            (_, Some(error)) if variants.len() == 1 => Err(error),
            _ => Err(vec![misfit(
                path,
                format!(
                    "expected one of {}, got {}",
                    variants
                        .iter()
                        .map(|v| describe(self.deref(v)))
                        .collect::<Vec<_>>()
                        .join(" | "),
                    shown(json)
                ),
            )]),
        }
    }

    /// The schema at a `--set` path (`deliveryAddress.zip`, `lineItems[0].quantity`,
    /// `lineItems.0.quantity`), with the path split into its steps.
    fn schema_at<'a>(&'a self, path: &[Step]) -> Result<&'a Schema, Misfit> {
        let mut schema = &self.schema;
        let mut walked = String::new();
        for step in path {
            schema = container(self, schema);
            schema = match (schema, step) {
                (Schema::Record(record), Step::Field(name)) => {
                    match record.fields.iter().find(|f| &f.name == name) {
                        Some(field) => &field.schema,
                        None => {
                            let fields: Vec<&str> =
                                record.fields.iter().map(|f| f.name.as_str()).collect();
                            return Err(misfit(
                                &child(&walked, name),
                                format!(
                                    "{} has no such field (its fields: {})",
                                    record.name.name(),
                                    fields.join(", ")
                                ),
                            ));
                        }
                    }
                }
                (Schema::Array(array), Step::Index(_)) => &array.items,
                (Schema::Map(map), _) => &map.types,
                (other, step) => {
                    return Err(misfit(
                        &walked,
                        format!("is a {}, it has no {step}", describe(other)),
                    ));
                }
            };
            walked = step.append_to(&walked);
        }
        Ok(schema)
    }

    /// Sets `path` to `text` in `json` (`--set path=text`), creating the objects and array
    /// entries on the way. Where the schema wants text (a string, uuid, enum or time), `text`
    /// is taken as it is; elsewhere it is read as JSON (`2`, `true`, `{"a": 1}`, `null`), and
    /// as a string when it is not JSON.
    pub fn set(&self, json: &mut Json, path: &str, text: &str) -> Result<(), Misfit> {
        let steps = steps(path)?;
        let leaf = self.schema_at(&steps)?;
        let value = self.leaf_value(leaf, text);
        let mut node = json;
        let mut walked = String::new();
        for step in &steps {
            node = match step {
                Step::Field(name) => {
                    if !node.is_object() {
                        *node = Json::Object(serde_json::Map::new());
                    }
                    node.as_object_mut()
                        .map(|object| object.entry(name.clone()).or_insert(Json::Null))
                        .ok_or_else(|| misfit(&walked, "is not an object"))?
                }
                Step::Index(index) => {
                    if !node.is_array() {
                        *node = Json::Array(Vec::new());
                    }
                    let Some(items) = node.as_array_mut() else {
                        return Err(misfit(&walked, "is not an array"));
                    };
                    if *index == items.len() {
                        items.push(Json::Null);
                    }
                    let len = items.len();
                    items.get_mut(*index).ok_or_else(|| {
                        misfit(
                            &walked,
                            format!(
                                "has {len} item(s); [{index}] is past the end (use [{len}] to add one)"
                            ),
                        )
                    })?
                }
            };
            walked = step.append_to(&walked);
        }
        *node = value;
        Ok(())
    }

    fn leaf_value(&self, schema: &Schema, text: &str) -> Json {
        let wants_text = |schema: &Schema| {
            matches!(
                self.deref(schema),
                Schema::String | Schema::Uuid(_) | Schema::Enum(_) | Schema::Bytes
            )
        };
        let as_json = || serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.into()));
        match self.deref(schema) {
            Schema::Union(union) => {
                if text == "null" && union.variants().iter().any(|v| matches!(v, Schema::Null)) {
                    Json::Null
                } else if union.variants().iter().any(wants_text) && !text.starts_with('"') {
                    Json::String(text.to_owned())
                } else {
                    as_json()
                }
            }
            schema if wants_text(schema) && !text.starts_with('"') => Json::String(text.to_owned()),
            _ => as_json(),
        }
    }
}

/// Every value, or every misfit of them all.
fn all_of(results: impl Iterator<Item = Converted>) -> Result<Vec<Value>, Vec<Misfit>> {
    let mut values = Vec::new();
    let mut misfits = Vec::new();
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(more) => misfits.extend(more),
        }
    }
    if misfits.is_empty() {
        Ok(values)
    } else {
        Err(misfits)
    }
}

/// The record, array or map inside an optional (`["null", X]`) or named type.
fn container<'a>(schema: &'a RecordSchema, at: &'a Schema) -> &'a Schema {
    match schema.deref(at) {
        Schema::Union(union) => union
            .variants()
            .iter()
            .map(|v| schema.deref(v))
            .find(|v| matches!(v, Schema::Record(_) | Schema::Array(_) | Schema::Map(_)))
            .unwrap_or(at),
        other => other,
    }
}

/// One step of a `--set` path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Field(name) => write!(f, "field {name}"),
            Step::Index(index) => write!(f, "item [{index}]"),
        }
    }
}

impl Step {
    fn append_to(&self, path: &str) -> String {
        match self {
            Step::Field(name) => child(path, name),
            Step::Index(index) => format!("{path}[{index}]"),
        }
    }
}

/// `a.b[0].c` and `a.b.0.c` alike.
fn steps(path: &str) -> Result<Vec<Step>, Misfit> {
    let bad = || {
        misfit(
            "",
            format!(
                "{path:?} is not a field path (e.g. deliveryAddress.zip or lineItems[0].quantity)"
            ),
        )
    };
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        match name.parse::<usize>() {
            Ok(index) => steps.push(Step::Index(index)),
            Err(_) if !name.is_empty() => steps.push(Step::Field(name.to_owned())),
            Err(_) if rest.is_empty() || steps.is_empty() => return Err(bad()),
            Err(_) => {}
        }
        while !rest.is_empty() {
            let end = rest.find(']').ok_or_else(bad)?;
            let index = rest[1..end].parse().map_err(|_| bad())?;
            steps.push(Step::Index(index));
            rest = &rest[end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad());
            }
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(steps)
}

fn timestamp_millis(json: &Json) -> Option<i64> {
    match json {
        Json::Number(n) => n.as_i64(),
        Json::String(s) if s == "now" => millis(SystemTime::now()),
        Json::String(s) => humantime::parse_rfc3339_weak(s).ok().and_then(millis),
        _ => None,
    }
}

/// Milliseconds since the Unix epoch.
pub fn millis(time: SystemTime) -> Option<i64> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

/// `2026-11-26T08:00:00.123Z` for milliseconds since the epoch.
pub fn rfc3339_millis(ms: i64) -> String {
    let time = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    humantime::format_rfc3339_millis(time).to_string()
}

/// What a value of `schema` must look like in JSON, for errors.
fn expectation(schema: &Schema) -> String {
    match schema {
        Schema::Null => "null".into(),
        Schema::Boolean => "true or false".into(),
        Schema::Int => "a whole number (int, 32 bits)".into(),
        Schema::Long => "a whole number (long)".into(),
        Schema::Float | Schema::Double => "a number".into(),
        Schema::String => "a string".into(),
        Schema::Bytes => "a string (bytes)".into(),
        Schema::Uuid(_) => "a uuid string".into(),
        Schema::Enum(e) => format!("one of {}", e.symbols.join(", ")),
        Schema::Array(a) => format!("an array of {}", describe(&a.items)),
        Schema::Map(_) => "an object (a map)".into(),
        Schema::Record(r) => format!("an object (a {} record)", r.name.name()),
        other => format!("a {}", describe(other)),
    }
}

/// What a person calls the type: `string`, `uuid`, `Address record`, ...
fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes => "bytes".into(),
        Schema::String => "string".into(),
        Schema::Uuid(_) => "uuid".into(),
        Schema::Array(a) => format!("array of {}", describe(&a.items)),
        Schema::Map(m) => format!("map of {}", describe(&m.types)),
        Schema::Union(u) => u
            .variants()
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(" | "),
        Schema::Record(r) => format!("{} record", r.name.name()),
        Schema::Enum(e) => format!("{} enum ({})", e.name.name(), e.symbols.join(", ")),
        Schema::Ref { name } => name.name().to_owned(),
        Schema::TimestampMillis => "timestamp-millis".into(),
        other => format!("{other:?}")
            .split(['(', ' ', '{'])
            .next()
            .unwrap_or("type")
            .to_lowercase(),
    }
}

/// The name Avro's JSON encoding tags a union branch with.
fn branch_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Uuid(_) | Schema::String => "string".into(),
        Schema::TimestampMillis | Schema::TimestampMicros | Schema::Long => "long".into(),
        Schema::Date | Schema::Int => "int".into(),
        other => describe(other),
    }
}

/// A decoded record on one line: `reason=CARD_AUTHORIZATION_FAILED detail="..."`. Leaves out
/// `skip` (the key field, which the line already says), absent optional fields and the
/// record's own `...At` time (the record's timestamp says it). Money reads `12.95 USD`, a line
/// item `samosa:2`, an address `street, city, state zip`.
pub fn summary(value: &Value, skip: &[&str]) -> String {
    let Value::Record(fields) = value else {
        return inline(value);
    };
    fields
        .iter()
        .filter(|(name, value)| {
            let absent = matches!(value, Value::Null)
                || matches!(value, Value::Union(_, inner) if **inner == Value::Null);
            let own_time = name.ends_with("At") && matches!(value, Value::TimestampMillis(_));
            !skip.contains(&name.as_str()) && !absent && !own_time
        })
        .map(|(name, value)| format!("{name}={}", inline(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Int(n) | Value::Date(n) => n.to_string(),
        Value::Long(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Double(x) => x.to_string(),
        Value::String(s) => quoted(s),
        Value::Uuid(u) => u.to_string(),
        Value::Enum(_, symbol) => symbol.clone(),
        Value::Union(_, inner) => inline(inner),
        Value::TimestampMillis(ms) | Value::LocalTimestampMillis(ms) => rfc3339_millis(*ms),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => {
            let mut entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}={}", inline(v)))
                .collect();
            entries.sort();
            format!("{{{}}}", entries.join(" "))
        }
        Value::Record(fields) => record_inline(fields),
        other => format!("{other:?}"),
    }
}

fn record_inline(fields: &[(String, Value)]) -> String {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| match v {
                Value::Union(_, inner) => inner.as_ref(),
                other => other,
            })
    };
    let text = |name: &str| match get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if let (Some(Value::Long(minor)), Some(currency)) = (get("amountMinor"), text("currency")) {
        return money(*minor, currency);
    }
    if let (Some(item), Some(Value::Int(quantity))) = (text("menuItemId"), get("quantity")) {
        return format!("{item}:{quantity}");
    }
    if let (Some(street), Some(city)) = (text("street1"), text("city")) {
        let mut parts = vec![street];
        parts.extend(text("street2"));
        parts.push(city);
        let tail = [text("state"), text("zip")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mut line = parts.join(", ");
        if !tail.is_empty() {
            line = format!("{line}, {tail}");
        }
        return quoted(&line);
    }
    if let (Some(first), Some(last)) = (text("firstName"), text("lastName")) {
        return quoted(&format!("{first} {last}"));
    }
    if let (Some(id), Some(_), Some(Value::Record(price))) =
        (text("id"), text("name"), get("price"))
    {
        return format!("{id} {}", record_inline(price));
    }
    format!(
        "{{{}}}",
        fields
            .iter()
            .map(|(name, value)| format!("{name}={}", inline(value)))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn quoted(text: &str) -> String {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
        format!("{text:?}")
    } else {
        text.to_owned()
    }
}

/// `12.95 USD` for 1295 minor units: the currency's ISO 4217 minor-unit digits (2 for most).
pub fn money(minor: i64, currency: &str) -> String {
    let digits = match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    };
    if digits == 0 {
        return format!("{minor} {currency}");
    }
    let unit = 10_i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let (major, rest) = (
        minor.unsigned_abs() / unit as u64,
        minor.unsigned_abs() % unit as u64,
    );
    format!(
        "{sign}{major}.{rest:0width$} {currency}",
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create_order() -> RecordSchema {
        let record =
            contracts::catalog::record("ftgo.order.commands", "ftgo.order.commands.CreateOrder")
                .expect("in the catalog");
        RecordSchema::parse(record.schema).expect("valid")
    }

    fn order_json() -> Json {
        json!({
            "orderId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e7f",
            "consumerId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e70",
            "restaurantId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e71",
            "lineItems": [{"menuItemId": "samosa", "quantity": 2}],
            "deliveryAddress": {"street1": "1 Main St", "city": "Oakland", "state": "CA", "zip": "94612"},
            "deliveryTime": "2026-11-26T12:00:00Z"
        })
    }

    fn one(misfits: Misfits) -> Misfit {
        assert_eq!(misfits.0.len(), 1, "{misfits}");
        misfits.0[0].clone()
    }

    #[test]
    fn a_record_converts_with_uuids_times_and_defaults() {
        let value = create_order().to_avro(&order_json()).expect("fits");
        let Value::Record(fields) = &value else {
            panic!("a record: {value:?}")
        };
        assert!(matches!(fields[0], (ref n, Value::Uuid(_)) if n == "orderId"));
        assert_eq!(
            fields[5],
            (
                "deliveryTime".into(),
                Value::TimestampMillis(1_795_694_400_000)
            )
        );
        let Value::Record(address) = &fields[4].1 else {
            panic!("an address")
        };
        assert_eq!(
            address[1],
            ("street2".into(), Value::Union(0, Box::new(Value::Null)))
        );
    }

    #[test]
    fn a_misfit_names_its_field() {
        let schema = create_order();
        let mut json = order_json();
        json["lineItems"][0]["quantity"] = json!("two");
        let error = one(schema.to_avro(&json).expect_err("a string quantity"));
        assert_eq!(error.path, "lineItems[0].quantity");
        assert!(
            error.to_string().contains("expected a whole number"),
            "{error}"
        );

        let mut json = order_json();
        json["orderId"] = json!("order-1");
        let error = one(schema.to_avro(&json).expect_err("not a uuid"));
        assert_eq!(error.path, "orderId");
        assert!(error.problem.contains("a uuid"), "{error}");

        let mut json = order_json();
        json["deliveryAddress"]["postcode"] = json!("94612");
        let error = one(schema.to_avro(&json).expect_err("unknown field"));
        assert_eq!(error.path, "deliveryAddress.postcode");
        assert!(error.problem.contains("zip"), "{error}");

        let mut json = order_json();
        json.as_object_mut().expect("object").remove("restaurantId");
        json["lineItems"][0]["quantity"] = json!(0.5);
        let error = schema.to_avro(&json).expect_err("missing and misfit");
        assert_eq!(
            error.to_string(),
            "2 misfits:\n  field `restaurantId`: missing (a uuid)\n  \
             field `lineItems[0].quantity`: expected a whole number (int, 32 bits), got 0.5 (a number)"
        );
    }

    #[test]
    fn unions_take_a_bare_value_or_avro_s_tagged_form_and_enums_their_symbols() {
        let record =
            contracts::catalog::record("ftgo.order.events", "ftgo.order.events.OrderRejected")
                .expect("in the catalog");
        let schema = RecordSchema::parse(record.schema).expect("valid");
        let mut json = json!({
            "orderId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e7f",
            "reason": "CARD_AUTHORIZATION_FAILED",
            "detail": "over the limit",
            "rejectedAt": 0
        });
        let value = schema.to_avro(&json).expect("fits");
        let Value::Record(fields) = &value else {
            panic!("a record")
        };
        assert_eq!(
            fields[1].1,
            Value::Enum(5, "CARD_AUTHORIZATION_FAILED".into())
        );
        assert_eq!(
            fields[2].1,
            Value::Union(1, Box::new(Value::String("over the limit".into())))
        );
        json["detail"] = json!({"string": "tagged"});
        assert!(schema.to_avro(&json).is_ok());
        json["reason"] = json!("TOO_EXPENSIVE");
        let error = schema.to_avro(&json).expect_err("not a symbol");
        assert!(
            error.to_string().contains("one of UNKNOWN_RESTAURANT"),
            "{error}"
        );
        json["reason"] = json!("INVALID_ORDER");
        json["detail"] = json!(42);
        let error = one(schema.to_avro(&json).expect_err("a number for a string"));
        assert_eq!(error.path, "detail");
        assert!(error.problem.contains("expected a string"), "{error}");
    }

    #[test]
    fn set_builds_paths_and_takes_text_where_the_schema_wants_text() {
        let schema = create_order();
        let mut json = json!({});
        for (path, text) in [
            ("orderId", "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e7f"),
            ("deliveryAddress.zip", "94612"),
            ("deliveryAddress.street2", "null"),
            ("lineItems[0].menuItemId", "samosa"),
            ("lineItems.0.quantity", "3"),
            ("lineItems[1]", r#"{"menuItemId": "naan", "quantity": 1}"#),
            ("deliveryTime", "1790000000000"),
        ] {
            schema.set(&mut json, path, text).expect(path);
        }
        assert_eq!(
            json,
            json!({
                "orderId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e7f",
                "deliveryAddress": {"zip": "94612", "street2": null},
                "lineItems": [{"menuItemId": "samosa", "quantity": 3}, {"menuItemId": "naan", "quantity": 1}],
                "deliveryTime": 1_790_000_000_000_i64
            })
        );
        let error = schema
            .set(&mut json, "deliveryAddress.postcode", "1")
            .expect_err("no such field");
        assert_eq!(error.path, "deliveryAddress.postcode");
        let error = schema
            .set(&mut json, "lineItems[5].quantity", "1")
            .expect_err("past the end");
        assert!(error.problem.contains("use [2]"), "{error}");
        assert!(schema.set(&mut json, "lineItems[x]", "1").is_err());
        assert!(schema.set(&mut json, "", "1").is_err());
    }

    #[test]
    fn summaries_show_what_matters() {
        let schema = create_order();
        let value = schema.to_avro(&order_json()).expect("fits");
        assert_eq!(
            summary(&value, &["orderId"]),
            "consumerId=0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e70 \
             restaurantId=0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e71 lineItems=[samosa:2] \
             deliveryAddress=\"1 Main St, Oakland, CA 94612\" deliveryTime=2026-11-26T12:00:00.000Z"
        );
        assert_eq!(money(1295, "USD"), "12.95 USD");
        assert_eq!(money(130_000, "USD"), "1300.00 USD");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(money(500, "JPY"), "500 JPY");
    }
}
