use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema};
use serde_json::{Value, json};

use super::*;

/// Derives the lake schema of `json_schema` and compares it with `expected` plus the system columns.
fn check(json_schema: Value, expected: Vec<Field>) {
    let mut fields = expected;
    fields.extend(system_fields());
    let expected = Schema::new(fields);
    let actual = derive_lake_schema(&json_schema).unwrap();
    assert_eq!(
        actual, expected,
        "\nactual:   {actual:#?}\nexpected: {expected:#?}"
    );
}

fn check_err(json_schema: Value, expected: LakeSchemaError) {
    assert_eq!(derive_lake_schema(&json_schema).unwrap_err(), expected);
}

fn object(properties: Value) -> Value {
    json!({ "type": "object", "properties": properties })
}

fn json_text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true).with_metadata([(
        JSON_TEXT_METADATA_KEY.to_owned(),
        JSON_TEXT_METADATA_VALUE.to_owned(),
    )])
}

fn list(item: Field) -> DataType {
    DataType::List(Arc::new(item))
}

#[test]
fn scalars_map_to_arrow_primitives() {
    check(
        object(json!({
            "i": { "type": "integer" },
            "n": { "type": "number" },
            "b": { "type": "boolean" },
            "s": { "type": "string" },
            "email": { "type": "string", "format": "email" },
            "at": { "type": "string", "format": "date-time" },
            "on": { "type": "string", "format": "date" },
        })),
        // Sorted by name: serde_json without `preserve_order`.
        vec![
            Field::new("at", date_time_type(), true),
            Field::new("b", DataType::Boolean, true),
            Field::new("email", DataType::Utf8, true),
            Field::new("i", DataType::Int64, true),
            Field::new("n", DataType::Float64, true),
            Field::new("on", DataType::Date32, true),
            Field::new("s", DataType::Utf8, true),
        ],
    );
}

#[test]
fn required_properties_are_non_null() {
    check(
        json!({
            "type": "object",
            "properties": { "id": { "type": "integer" }, "note": { "type": "string" } },
            "required": ["id"],
        }),
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("note", DataType::Utf8, true),
        ],
    );
}

#[test]
fn a_required_property_that_admits_null_is_nullable() {
    check(
        json!({
            "type": "object",
            "properties": {
                "a": { "type": ["string", "null"] },
                "b": { "oneOf": [{ "type": "null" }, { "type": "integer" }] },
                "c": { "enum": ["x", null] },
            },
            "required": ["a", "b", "c"],
        }),
        vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Int64, true),
            Field::new("c", DataType::Utf8, true),
        ],
    );
}

#[test]
fn integer_or_number_is_float64() {
    check(
        object(json!({ "x": { "type": ["integer", "number"] } })),
        vec![Field::new("x", DataType::Float64, true)],
    );
}

#[test]
fn nested_objects_map_to_structs() {
    check(
        json!({
            "type": "object",
            "properties": {
                "address": {
                    "type": "object",
                    "properties": {
                        "city": { "type": "string" },
                        "zip": { "type": "string" },
                        "geo": {
                            "properties": { "lat": { "type": "number" } },
                            "required": ["lat"],
                        },
                    },
                    "required": ["city"],
                },
            },
            "required": ["address"],
        }),
        vec![Field::new(
            "address",
            DataType::Struct(Fields::from(vec![
                Field::new("city", DataType::Utf8, false),
                Field::new(
                    "geo",
                    DataType::Struct(Fields::from(vec![Field::new(
                        "lat",
                        DataType::Float64,
                        false,
                    )])),
                    true,
                ),
                Field::new("zip", DataType::Utf8, true),
            ])),
            false,
        )],
    );
}

#[test]
fn arrays_map_to_lists() {
    check(
        object(json!({
            "tags": { "type": "array", "items": { "type": "string" } },
            "maybe": { "type": "array", "items": { "type": ["integer", "null"] } },
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "sku": { "type": "string" }, "qty": { "type": "integer" } },
                    "required": ["sku", "qty"],
                },
            },
        })),
        vec![
            Field::new(
                "lines",
                list(Field::new(
                    "item",
                    DataType::Struct(Fields::from(vec![
                        Field::new("qty", DataType::Int64, false),
                        Field::new("sku", DataType::Utf8, false),
                    ])),
                    false,
                )),
                true,
            ),
            Field::new(
                "maybe",
                list(Field::new("item", DataType::Int64, true)),
                true,
            ),
            Field::new(
                "tags",
                list(Field::new("item", DataType::Utf8, false)),
                true,
            ),
        ],
    );
}

#[test]
fn string_enums_are_utf8_and_other_enums_json_text() {
    check(
        object(json!({
            "colour": { "enum": ["red", "green"] },
            "mixed": { "enum": ["one", 2] },
            "typed": { "type": "string", "enum": ["a", "b"] },
        })),
        vec![
            Field::new("colour", DataType::Utf8, true),
            json_text("mixed"),
            Field::new("typed", DataType::Utf8, true),
        ],
    );
}

#[test]
fn unions_of_one_type_and_null_are_that_type() {
    check(
        json!({
            "type": "object",
            "properties": {
                "any_of": { "anyOf": [{ "type": "string", "format": "date-time" }, { "type": "null" }] },
                "one_of": { "oneOf": [{ "type": "null" }, { "$ref": "#/$defs/point" }] },
                "single": { "oneOf": [{ "type": "boolean" }] },
                "all_of": { "allOf": [{ "type": "integer" }] },
            },
            "required": ["any_of", "one_of", "single", "all_of"],
            "$defs": {
                "point": {
                    "type": "object",
                    "properties": { "x": { "type": "number" } },
                    "required": ["x"],
                },
            },
        }),
        vec![
            Field::new("all_of", DataType::Int64, false),
            Field::new("any_of", date_time_type(), true),
            Field::new(
                "one_of",
                DataType::Struct(Fields::from(vec![Field::new(
                    "x",
                    DataType::Float64,
                    false,
                )])),
                true,
            ),
            Field::new("single", DataType::Boolean, false),
        ],
    );
}

#[test]
fn local_references_resolve() {
    check(
        json!({
            "type": "object",
            "properties": {
                "old_style": { "$ref": "#/definitions/money" },
                "new_style": { "$ref": "#/$defs/when" },
                "chained": { "$ref": "#/$defs/alias" },
                "escaped": { "$ref": "#/$defs/a~1b%20c" },
            },
            "required": ["old_style"],
            "definitions": {
                "money": {
                    "type": "object",
                    "properties": { "amount": { "type": "number" }, "currency": { "type": "string" } },
                    "required": ["amount", "currency"],
                },
            },
            "$defs": {
                "when": { "type": "string", "format": "date" },
                "alias": { "$ref": "#/$defs/when" },
                "a/b c": { "type": "boolean" },
            },
        }),
        vec![
            Field::new("chained", DataType::Date32, true),
            Field::new("escaped", DataType::Boolean, true),
            Field::new("new_style", DataType::Date32, true),
            Field::new(
                "old_style",
                DataType::Struct(Fields::from(vec![
                    Field::new("amount", DataType::Float64, false),
                    Field::new("currency", DataType::Utf8, false),
                ])),
                false,
            ),
        ],
    );
}

#[test]
fn a_root_reference_resolves() {
    check(
        json!({
            "$ref": "#/$defs/order",
            "$defs": { "order": { "type": "object", "properties": { "id": { "type": "integer" } } } },
        }),
        vec![Field::new("id", DataType::Int64, true)],
    );
}

#[test]
fn what_arrow_cannot_express_is_json_text() {
    check(
        object(json!({
            "map": { "type": "object", "additionalProperties": { "type": "integer" } },
            "pattern": { "type": "object", "patternProperties": { "^x": { "type": "string" } } },
            "open": { "type": "object" },
            "empty": { "type": "object", "properties": {} },
            "union": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
            "type_union": { "type": ["string", "integer"] },
            "all_of": { "allOf": [{ "type": "object" }, { "required": ["a"] }] },
            "tuple": { "type": "array", "items": [{ "type": "string" }, { "type": "integer" }] },
            "untyped_array": { "type": "array" },
            "anything": {},
            "only_null": { "type": "null" },
            "elsewhere": { "$ref": "other.json#/$defs/thing" },
        })),
        [
            "all_of",
            "anything",
            "elsewhere",
            "empty",
            "map",
            "only_null",
            "open",
            "pattern",
            "tuple",
            "type_union",
            "union",
            "untyped_array",
        ]
        .into_iter()
        .map(json_text)
        .collect(),
    );
}

#[test]
fn a_required_json_text_column_is_still_nullable() {
    // JSON text columns admit anything, including `null`.
    check(
        json!({ "type": "object", "properties": { "m": { "type": "object" } }, "required": ["m"] }),
        vec![json_text("m")],
    );
}

#[test]
fn recursion_becomes_json_text_where_it_recurses() {
    check(
        json!({
            "type": "object",
            "properties": { "tree": { "$ref": "#/$defs/node" } },
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {
                        "label": { "type": "string" },
                        "children": { "type": "array", "items": { "$ref": "#/$defs/node" } },
                    },
                    "required": ["label"],
                },
            },
        }),
        vec![Field::new(
            "tree",
            DataType::Struct(Fields::from(vec![
                Field::new("children", list(json_text("item")), true),
                Field::new("label", DataType::Utf8, false),
            ])),
            true,
        )],
    );
}

#[test]
fn a_whole_document_reference_is_recursion() {
    check(
        object(json!({ "parent": { "$ref": "#" }, "name": { "type": "string" } })),
        vec![
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "parent",
                DataType::Struct(Fields::from(vec![
                    Field::new("name", DataType::Utf8, true),
                    json_text("parent"),
                ])),
                true,
            ),
        ],
    );
}

#[test]
fn system_columns_close_every_schema() {
    let schema = derive_lake_schema(&object(json!({}))).unwrap();
    let names: Vec<&str> = schema
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    assert_eq!(names, SYSTEM_COLUMNS);
    assert!(schema.fields().iter().all(|field| !field.is_nullable()));
}

#[test]
fn roots_that_are_not_object_schemas_are_refused() {
    for root in [
        json!({ "type": "string" }),
        json!({ "type": "object" }),
        json!({ "type": "array", "items": { "type": "object", "properties": {} } }),
        json!({ "oneOf": [{ "type": "object", "properties": {} }, { "type": "null" }] }),
        json!({ "type": "integer", "properties": { "a": {} } }),
        json!(true),
        json!({ "$ref": "#" }),
        json!({ "$ref": "other.json" }),
    ] {
        check_err(root, LakeSchemaError::RootNotObject);
    }
}

#[test]
fn properties_named_like_system_columns_are_refused() {
    for name in SYSTEM_COLUMNS {
        check_err(
            object(json!({ name: { "type": "integer" } })),
            LakeSchemaError::SystemColumnCollision {
                name: name.to_owned(),
            },
        );
    }
    // Nested properties do not collide: system columns are top-level only.
    assert!(
        derive_lake_schema(&object(json!({
            "inner": { "type": "object", "properties": { "_kafka_offset": { "type": "integer" } } },
        })))
        .is_ok()
    );
}

#[test]
fn dangling_local_references_are_refused() {
    check_err(
        object(json!({ "a": { "$ref": "#/$defs/missing" } })),
        LakeSchemaError::UnresolvedReference {
            reference: "#/$defs/missing".to_owned(),
            path: "/properties/a".to_owned(),
        },
    );
}

#[test]
fn errors_say_what_to_do() {
    let message = LakeSchemaError::SystemColumnCollision {
        name: "_kafka_offset".to_owned(),
    }
    .to_string();
    assert!(message.contains("rename the property"), "{message}");
    assert!(
        LakeSchemaError::RootNotObject
            .to_string()
            .contains("wrap the value")
    );
}

#[test]
fn json_text_columns_are_marked() {
    let schema =
        derive_lake_schema(&object(json!({ "m": {}, "s": { "type": "string" } }))).unwrap();
    assert!(is_json_text(schema.field_with_name("m").unwrap()));
    assert!(!is_json_text(schema.field_with_name("s").unwrap()));
}
