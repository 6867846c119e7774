//! `--set path=value`: edits the JSON of a record at a path (`lineItems[0].quantity`), the
//! value typed by the schema at that path.

use apache_avro::Schema;
use serde_json::Value as Json;

use super::to_avro::describe;
use super::{Misfit, RecordSchema, child, misfit};

impl RecordSchema {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::avro_json::fixtures::create_order;

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
}
