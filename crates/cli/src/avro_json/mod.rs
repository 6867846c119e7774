//! Records written by hand as JSON, read against their Avro schema; and decoded records shown
//! on one line.
//!
//! The JSON is the record in its Avro field names (`orderId`, `lineItems`, as in the `.avsc`),
//! with the conveniences a person typing it expects: a `uuid` or an enum as a string, a
//! union's value bare (`"street2": "Flat 3"` or `null`, not `{"string": "Flat 3"}`, though
//! that form is accepted too), a `timestamp-millis` as milliseconds or as RFC 3339 text (or
//! `now`), a field with a default left out. Every misfit names the field it is in
//! (`lineItems[1].quantity`).
//!
//! # Layout
//! - `to_avro`: JSON to an Avro value of a record's schema, every misfit named by its field.
//! - `set`: the `--set path=value` editor over the JSON, typed by the schema at the path.
//! - `render`: decoded records on one line, money and times as people read them.

mod render;
mod set;
mod to_avro;

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::Value as Json;

pub use render::{millis, money, rfc3339_millis, summary};

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
}

#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::json;

    use super::{Json, Misfit, Misfits, RecordSchema};

    pub fn create_order() -> RecordSchema {
        let record =
            contracts::catalog::record("ftgo.order.commands", "ftgo.order.commands.CreateOrder")
                .expect("in the catalog");
        RecordSchema::parse(record.schema).expect("valid")
    }

    pub fn order_json() -> Json {
        json!({
            "orderId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e7f",
            "consumerId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e70",
            "restaurantId": "0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e71",
            "lineItems": [{"menuItemId": "samosa", "quantity": 2}],
            "deliveryAddress": {"street1": "1 Main St", "city": "Oakland", "state": "CA", "zip": "94612"},
            "deliveryTime": "2026-11-26T12:00:00Z"
        })
    }

    pub fn one(misfits: Misfits) -> Misfit {
        assert_eq!(misfits.0.len(), 1, "{misfits}");
        misfits.0[0].clone()
    }
}
