//! JSON to an Avro value of a record's schema: the conveniences of [`super`], every misfit
//! named by its field.

use apache_avro::Schema;
use apache_avro::types::Value;
use serde_json::Value as Json;

use std::time::SystemTime;

use super::render::millis;
use super::{Converted, Misfit, Misfits, RecordSchema, child, misfit, shown};

impl RecordSchema {
    /// The record as an Avro value of this schema.
    pub fn to_avro(&self, json: &Json) -> Result<Value, Misfits> {
        self.convert(json, &self.schema, "").map_err(Misfits)
    }

    fn convert(&self, json: &Json, schema: &Schema, path: &str) -> Converted {
        match (self.deref(schema), json) {
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
                self.convert_record(record, given, path)
            }
            (schema, json) => convert_primitive(schema, json, path),
        }
    }

    /// A record: every field given, or its default; a field it does not have is a misfit.
    fn convert_record(
        &self,
        record: &apache_avro::schema::RecordSchema,
        given: &serde_json::Map<String, Json>,
        path: &str,
    ) -> Converted {
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

fn timestamp_millis(json: &Json) -> Option<i64> {
    match json {
        Json::Number(n) => n.as_i64(),
        Json::String(s) if s == "now" => millis(SystemTime::now()),
        Json::String(s) => humantime::parse_rfc3339_weak(s).ok().and_then(millis),
        _ => None,
    }
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
pub(super) fn describe(schema: &Schema) -> String {
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

/// "expected <what>, got <json>" at `path`.
fn expected(path: &str, json: &Json, what: &str) -> Vec<Misfit> {
    vec![misfit(
        path,
        format!("expected {what}, got {}", shown(json)),
    )]
}

/// A value of a primitive or logical type (not a record, array, map or union).
fn convert_primitive(schema: &Schema, json: &Json, path: &str) -> Converted {
    let expected = |what: &str| expected(path, json, what);
    match (schema, json) {
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
        (schema, json) => convert_logical(schema, json, path),
    }
}

/// A value of a logical type (times, dates), or the misfit of a type JSON cannot give.
fn convert_logical(schema: &Schema, json: &Json, path: &str) -> Converted {
    let expected = |what: &str| expected(path, json, what);
    match (schema, json) {
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
            format!("ftgo cannot write {} from JSON yet", describe(schema)),
        )]),
        (other, _) => Err(expected(&expectation(other))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::avro_json::fixtures::{create_order, one, order_json};

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
}
