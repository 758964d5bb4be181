//! The Arrow schema of a dataset in the lake, derived from the JSON Schema its topic is bound to.
//!
//! Mapping rules, applied to each property of the root object schema:
//!
//! - `"type": "object"` with `properties` becomes a `Struct`; `"type": "array"` with one `items`
//!   schema becomes a `List` whose item field is named `item`.
//! - `integer` → `Int64`, `number` → `Float64` (`["integer", "number"]` too), `boolean` → `Boolean`,
//!   `string` → `Utf8`; a string with `"format": "date-time"` → `Timestamp(Microsecond, "UTC")`
//!   (RFC 3339 offsets are converted to UTC), `"format": "date"` → `Date32`. Other formats stay `Utf8`.
//! - A property listed in `required` is non-null; every other one is nullable, and so is any schema that
//!   admits `null` (`"type": ["string", "null"]`, an `enum` containing `null`, a `oneOf`/`anyOf` with a
//!   `{"type": "null"}` branch).
//! - An `enum` of strings → `Utf8`. A `oneOf`/`anyOf` of exactly one non-null schema (plus `null`) maps
//!   as that schema. An `allOf` of one schema maps as that schema.
//! - Local `$ref`s (`#/definitions/..`, `#/$defs/..`, any JSON pointer into the document) are resolved.
//! - Anything the mapping cannot express becomes a `Utf8` column holding the value's JSON text
//!   (`serde_json::to_string`), marked with the field metadata [`JSON_TEXT_METADATA_KEY`] =
//!   [`JSON_TEXT_METADATA_VALUE`] so readers know to parse it: open maps (`additionalProperties` or
//!   `patternProperties` given a schema, or an object without `properties`), heterogeneous unions,
//!   `allOf` of several schemas, tuple arrays, untyped schemas, references to other registered schemas,
//!   and the point where a schema recurses into itself.
//! - Properties of an object that the schema does not declare (`additionalProperties` absent or `true`)
//!   are not stored: the lake keeps the declared shape.
//!
//! Column order: the workspace's `serde_json` is built without `preserve_order`, so a schema's
//! properties come out sorted by name, not in document order. Sorting makes the order stable for a given
//! schema whatever its formatting. The lake's system columns ([`SYSTEM_COLUMNS`]) follow the properties.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use serde_json::{Map, Value};

/// The field metadata key that marks a `Utf8` column holding JSON text rather than a plain string.
pub const JSON_TEXT_METADATA_KEY: &str = "plinth.lake.encoding";
/// The value of [`JSON_TEXT_METADATA_KEY`] on JSON text columns.
pub const JSON_TEXT_METADATA_VALUE: &str = "json";

/// The Kafka partition a record was read from (`Int32`, non-null).
pub const KAFKA_PARTITION_COLUMN: &str = "_kafka_partition";
/// The record's offset in its partition (`Int64`, non-null).
pub const KAFKA_OFFSET_COLUMN: &str = "_kafka_offset";
/// The record's Kafka timestamp (`Timestamp(Millisecond, "UTC")`, non-null).
pub const KAFKA_TIMESTAMP_COLUMN: &str = "_kafka_timestamp";
/// The registry id of the schema the record was written with (`Int32`, non-null).
pub const SCHEMA_ID_COLUMN: &str = "_schema_id";

/// The columns the lake appends to every dataset, in order.
pub const SYSTEM_COLUMNS: [&str; 4] = [
    KAFKA_PARTITION_COLUMN,
    KAFKA_OFFSET_COLUMN,
    KAFKA_TIMESTAMP_COLUMN,
    SCHEMA_ID_COLUMN,
];

/// Why a JSON Schema has no lake schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LakeSchemaError {
    /// The root is not an object schema with `properties`.
    #[error(
        "the lake stores objects: the root schema must be `\"type\": \"object\"` with `properties`; \
         wrap the value in an object property to land it in the lake"
    )]
    RootNotObject,
    /// A top-level property has the name of a column the lake adds itself.
    #[error(
        "property `{name}` collides with the lake's system column of the same name; rename the property \
         (names starting with `_kafka_` and `_schema_id` are reserved)"
    )]
    SystemColumnCollision {
        /// The property name.
        name: String,
    },
    /// A local `$ref` points at nothing in the document.
    #[error(
        "`$ref` `{reference}` at `{path}` does not point into the schema document; fix the reference \
         or add the definition it names"
    )]
    UnresolvedReference {
        /// The reference as written.
        reference: String,
        /// Where it occurs, as a JSON pointer into the schema.
        path: String,
    },
}

/// Derives the lake schema of a JSON Schema: its properties as columns, then [`SYSTEM_COLUMNS`].
pub fn derive_lake_schema(json_schema: &Value) -> Result<Schema, LakeSchemaError> {
    let mut mapper = Mapper {
        root: json_schema,
        reference_stack: Vec::new(),
    };
    let root = mapper.resolve_root(json_schema, "")?;
    let Value::Object(keywords) = root else {
        return Err(LakeSchemaError::RootNotObject);
    };
    let Some(Value::Object(properties)) = keywords.get("properties") else {
        return Err(LakeSchemaError::RootNotObject);
    };
    if !admits_object(root) {
        return Err(LakeSchemaError::RootNotObject);
    }
    for name in properties.keys() {
        if SYSTEM_COLUMNS.contains(&name.as_str()) {
            return Err(LakeSchemaError::SystemColumnCollision { name: name.clone() });
        }
    }
    let mut fields = mapper.object_fields(keywords, properties, "")?;
    fields.extend(system_fields());
    Ok(Schema::new(fields))
}

/// The lake's system columns as Arrow fields, in [`SYSTEM_COLUMNS`] order.
pub fn system_fields() -> [Field; 4] {
    [
        Field::new(KAFKA_PARTITION_COLUMN, DataType::Int32, false),
        Field::new(KAFKA_OFFSET_COLUMN, DataType::Int64, false),
        Field::new(
            KAFKA_TIMESTAMP_COLUMN,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(SCHEMA_ID_COLUMN, DataType::Int32, false),
    ]
}

/// Whether `field` is a `Utf8` column holding JSON text (see the module documentation).
pub fn is_json_text(field: &Field) -> bool {
    field
        .metadata()
        .get(JSON_TEXT_METADATA_KEY)
        .map(String::as_str)
        == Some(JSON_TEXT_METADATA_VALUE)
}

/// The timestamp type `date-time` strings map to.
pub fn date_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A mapped schema: its Arrow type, whether the schema itself admits `null`, and whether the column
/// holds JSON text.
struct Mapped {
    data_type: DataType,
    admits_null: bool,
    json_text: bool,
}

impl Mapped {
    fn plain(data_type: DataType) -> Self {
        Self {
            data_type,
            admits_null: false,
            json_text: false,
        }
    }

    fn json_text() -> Self {
        Self {
            data_type: DataType::Utf8,
            admits_null: true,
            json_text: true,
        }
    }

    fn nullable_if(mut self, admits_null: bool) -> Self {
        self.admits_null |= admits_null;
        self
    }

    fn into_field(self, name: &str, required: bool) -> Field {
        let field = Field::new(name, self.data_type, self.admits_null || !required);
        if self.json_text {
            field.with_metadata([(
                JSON_TEXT_METADATA_KEY.to_owned(),
                JSON_TEXT_METADATA_VALUE.to_owned(),
            )])
        } else {
            field
        }
    }
}

struct Mapper<'a> {
    root: &'a Value,
    /// The local references being expanded, outermost first; meeting one again means recursion.
    reference_stack: Vec<&'a str>,
}

impl<'a> Mapper<'a> {
    /// Follows `$ref`s at the root so that a root that is only a reference still maps.
    fn resolve_root(
        &mut self,
        mut schema: &'a Value,
        path: &str,
    ) -> Result<&'a Value, LakeSchemaError> {
        let mut seen = Vec::new();
        while let Some(Value::String(reference)) = schema.get("$ref") {
            if seen.contains(reference) {
                return Err(LakeSchemaError::RootNotObject);
            }
            seen.push(reference.clone());
            schema = self
                .lookup(reference, path)?
                .ok_or(LakeSchemaError::RootNotObject)?;
        }
        Ok(schema)
    }

    /// `Ok(None)` for a reference outside the document (another registered schema).
    fn lookup(&self, reference: &str, path: &str) -> Result<Option<&'a Value>, LakeSchemaError> {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Ok(None);
        };
        let unresolved = || LakeSchemaError::UnresolvedReference {
            reference: reference.to_owned(),
            path: path.to_owned(),
        };
        let pointer = percent_decode(pointer).ok_or_else(unresolved)?;
        self.root.pointer(&pointer).map(Some).ok_or_else(unresolved)
    }

    fn object_fields(
        &mut self,
        keywords: &'a Map<String, Value>,
        properties: &'a Map<String, Value>,
        path: &str,
    ) -> Result<Vec<Field>, LakeSchemaError> {
        let required: Vec<&str> = match keywords.get("required") {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut fields = Vec::with_capacity(properties.len());
        for (name, property) in properties {
            let property_path = format!("{path}/properties/{}", escape_pointer(name));
            let mapped = self.map(property, &property_path)?;
            fields.push(mapped.into_field(name, required.contains(&name.as_str())));
        }
        Ok(fields)
    }

    fn map(&mut self, schema: &'a Value, path: &str) -> Result<Mapped, LakeSchemaError> {
        let Value::Object(keywords) = schema else {
            // `true`, `false` or garbage: no shape to map.
            return Ok(Mapped::json_text());
        };
        if let Some(Value::String(reference)) = keywords.get("$ref") {
            return self.map_reference(reference, path);
        }
        if let Some(types) = keywords.get("type") {
            return self.map_type(keywords, types, path);
        }
        if let Some(Value::Array(values)) = keywords.get("enum") {
            return Ok(map_enum(values));
        }
        for union in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = keywords.get(union) {
                return self.map_union(branches, &format!("{path}/{union}"));
            }
        }
        if let Some(Value::Array(branches)) = keywords.get("allOf") {
            if let [only] = branches.as_slice() {
                return self.map(only, &format!("{path}/allOf/0"));
            }
            return Ok(Mapped::json_text());
        }
        if keywords.contains_key("properties") {
            return self.map_object(keywords, path);
        }
        Ok(Mapped::json_text())
    }

    fn map_reference(&mut self, reference: &'a str, path: &str) -> Result<Mapped, LakeSchemaError> {
        if self.reference_stack.contains(&reference) {
            // The schema recurses: Arrow types are finite, so the nested value is kept as JSON text.
            return Ok(Mapped::json_text());
        }
        let Some(target) = self.lookup(reference, path)? else {
            return Ok(Mapped::json_text());
        };
        self.reference_stack.push(reference);
        let mapped = self.map(target, reference.trim_start_matches('#'));
        self.reference_stack.pop();
        mapped
    }

    fn map_type(
        &mut self,
        keywords: &'a Map<String, Value>,
        types: &'a Value,
        path: &str,
    ) -> Result<Mapped, LakeSchemaError> {
        let names: Vec<&str> = match types {
            Value::String(name) => vec![name.as_str()],
            Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(Mapped::json_text()),
        };
        let admits_null = names.contains(&"null");
        let mut non_null: Vec<&str> = names.into_iter().filter(|name| *name != "null").collect();
        non_null.sort_unstable();
        non_null.dedup();
        let mapped = match non_null.as_slice() {
            ["integer"] => Mapped::plain(DataType::Int64),
            ["number"] | ["integer", "number"] => Mapped::plain(DataType::Float64),
            ["boolean"] => Mapped::plain(DataType::Boolean),
            ["string"] => Mapped::plain(match keywords.get("format").and_then(Value::as_str) {
                Some("date-time") => date_time_type(),
                Some("date") => DataType::Date32,
                _ => DataType::Utf8,
            }),
            ["object"] => self.map_object(keywords, path)?,
            ["array"] => self.map_array(keywords, path)?,
            _ => Mapped::json_text(),
        };
        Ok(mapped.nullable_if(admits_null))
    }

    fn map_object(
        &mut self,
        keywords: &'a Map<String, Value>,
        path: &str,
    ) -> Result<Mapped, LakeSchemaError> {
        let open_map = matches!(keywords.get("additionalProperties"), Some(Value::Object(_)))
            || keywords.contains_key("patternProperties");
        match keywords.get("properties") {
            Some(Value::Object(properties)) if !open_map && !properties.is_empty() => {
                let fields = self.object_fields(keywords, properties, path)?;
                Ok(Mapped::plain(DataType::Struct(Fields::from(fields))))
            }
            // A map with free keys, or an object with nothing declared (Parquet has no empty group).
            _ => Ok(Mapped::json_text()),
        }
    }

    fn map_array(
        &mut self,
        keywords: &'a Map<String, Value>,
        path: &str,
    ) -> Result<Mapped, LakeSchemaError> {
        match keywords.get("items") {
            Some(items @ Value::Object(_)) if !keywords.contains_key("prefixItems") => {
                let item = self.map(items, &format!("{path}/items"))?;
                let item_field = Arc::new(item.into_field("item", true));
                Ok(Mapped::plain(DataType::List(item_field)))
            }
            // Tuples, or no item schema at all.
            _ => Ok(Mapped::json_text()),
        }
    }

    fn map_union(&mut self, branches: &'a [Value], path: &str) -> Result<Mapped, LakeSchemaError> {
        let is_null = |branch: &Value| branch.get("type").and_then(Value::as_str) == Some("null");
        let admits_null = branches.iter().any(is_null);
        let non_null: Vec<(usize, &'a Value)> = branches
            .iter()
            .enumerate()
            .filter(|(_, branch)| !is_null(branch))
            .collect();
        match non_null.as_slice() {
            [(index, only)] => Ok(self
                .map(only, &format!("{path}/{index}"))?
                .nullable_if(admits_null)),
            _ => Ok(Mapped::json_text()),
        }
    }
}

/// An `enum` of strings (and possibly `null`) is a string column; anything else is JSON text.
fn map_enum(values: &[Value]) -> Mapped {
    let admits_null = values.iter().any(Value::is_null);
    let all_strings = values
        .iter()
        .filter(|value| !value.is_null())
        .all(Value::is_string);
    if all_strings && values.iter().any(Value::is_string) {
        Mapped::plain(DataType::Utf8).nullable_if(admits_null)
    } else {
        Mapped::json_text()
    }
}

/// Whether a schema's `type` allows an object (or says nothing, as a schema with only `properties`).
fn admits_object(schema: &Value) -> bool {
    match schema.get("type") {
        None => true,
        Some(Value::String(name)) => name == "object",
        Some(Value::Array(names)) => names.iter().any(|name| name == "object"),
        Some(_) => false,
    }
}

fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Decodes `%XX` escapes in a URI fragment (a JSON pointer in a `$ref` may be percent-encoded).
fn percent_decode(fragment: &str) -> Option<String> {
    let bytes = fragment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = fragment.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests;
