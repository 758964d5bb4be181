use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use bytes::Bytes;
use serde_json::{Value, json};

use super::*;
use crate::domain::lake_file::{decode_parquet, encode_parquet};
use crate::domain::lake_schema::{derive_lake_schema, system_fields};
use crate::domain::records::{KafkaMetadata, LakeRecord, to_record_batch};

fn lake(json_schema: Value) -> Schema {
    derive_lake_schema(&json_schema).unwrap()
}

/// Evolves the lake schema of `old` by that of `new` and compares the user columns with `expected`.
fn check(old: Value, new: Value, expected: Vec<Field>) {
    let evolved = evolve(&lake(old), &lake(new)).unwrap();
    let mut fields = expected;
    fields.extend(system_fields());
    assert_eq!(evolved, Schema::new(fields), "\nactual: {evolved:#?}");
}

fn check_refused(old: Value, new: Value, expected_path: &str) {
    match evolve(&lake(old), &lake(new)) {
        Err(EvolutionError::IncompatibleType { path, .. }) => assert_eq!(path, expected_path),
        other => panic!("expected a refusal at {expected_path}, got {other:?}"),
    }
}

fn object(properties: Value, required: Value) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

fn record(value: Value, offset: i64, schema_id: i32) -> LakeRecord {
    LakeRecord {
        value,
        kafka: KafkaMetadata {
            partition: 0,
            offset,
            timestamp_ms: 0,
            schema_id,
        },
    }
}

#[test]
fn the_same_schema_evolves_to_itself() {
    let schema = object(
        json!({ "id": { "type": "integer" }, "s": { "type": "string" } }),
        json!(["id"]),
    );
    assert_eq!(
        evolve(&lake(schema.clone()), &lake(schema.clone())).unwrap(),
        lake(schema)
    );
}

#[test]
fn a_new_optional_field_is_a_new_nullable_column_at_the_end() {
    check(
        object(json!({ "b": { "type": "integer" } }), json!(["b"])),
        object(
            json!({ "a": { "type": "string" }, "b": { "type": "integer" } }),
            json!(["b"]),
        ),
        vec![
            Field::new("b", DataType::Int64, false),
            Field::new("a", DataType::Utf8, true),
        ],
    );
}

#[test]
fn a_new_required_field_is_nullable_too() {
    // Older files have no value for it.
    check(
        object(json!({ "a": { "type": "integer" } }), json!([])),
        object(
            json!({ "a": { "type": "integer" }, "b": { "type": "boolean" } }),
            json!(["b"]),
        ),
        vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Boolean, true),
        ],
    );
}

#[test]
fn a_removed_field_stays_nullable() {
    check(
        object(
            json!({ "a": { "type": "integer" }, "gone": { "type": "string" } }),
            json!(["a", "gone"]),
        ),
        object(json!({ "a": { "type": "integer" } }), json!(["a"])),
        vec![
            Field::new("a", DataType::Int64, false),
            Field::new("gone", DataType::Utf8, true),
        ],
    );
}

#[test]
fn nullability_is_the_union_of_both_sides() {
    check(
        object(
            json!({ "a": { "type": "integer" }, "b": { "type": "integer" } }),
            json!(["a"]),
        ),
        object(
            json!({ "a": { "type": "integer" }, "b": { "type": "integer" } }),
            json!(["b"]),
        ),
        vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ],
    );
}

#[test]
fn structs_gain_nested_optional_fields() {
    check(
        object(
            json!({ "s": { "type": "object", "properties": { "x": { "type": "number" } }, "required": ["x"] } }),
            json!(["s"]),
        ),
        object(
            json!({ "s": {
                "type": "object",
                "properties": { "x": { "type": "number" }, "y": { "type": "number" } },
                "required": ["x", "y"],
            } }),
            json!(["s"]),
        ),
        vec![Field::new(
            "s",
            DataType::Struct(Fields::from(vec![
                Field::new("x", DataType::Float64, false),
                Field::new("y", DataType::Float64, true),
            ])),
            false,
        )],
    );
}

#[test]
fn structs_inside_lists_evolve() {
    let item = |properties: Value| json!({ "type": "array", "items": { "type": "object", "properties": properties } });
    check(
        object(
            json!({ "l": item(json!({ "a": { "type": "integer" } })) }),
            json!([]),
        ),
        object(
            json!({ "l": item(json!({ "a": { "type": "integer" }, "b": { "type": "string" } })) }),
            json!([]),
        ),
        vec![Field::new(
            "l",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(Fields::from(vec![
                    Field::new("a", DataType::Int64, true),
                    Field::new("b", DataType::Utf8, true),
                ])),
                false,
            ))),
            true,
        )],
    );
}

#[test]
fn integer_widens_to_number() {
    check(
        object(json!({ "n": { "type": "integer" } }), json!([])),
        object(json!({ "n": { "type": "number" } }), json!([])),
        vec![Field::new("n", DataType::Float64, true)],
    );
}

#[test]
fn incompatible_type_changes_are_refused_with_the_field_path() {
    check_refused(
        object(json!({ "n": { "type": "number" } }), json!([])),
        object(json!({ "n": { "type": "integer" } }), json!([])),
        "n",
    );
    check_refused(
        object(json!({ "s": { "type": "string" } }), json!([])),
        object(
            json!({ "s": { "type": "string", "format": "date-time" } }),
            json!([]),
        ),
        "s",
    );
    check_refused(
        object(
            json!({ "s": { "type": "object", "properties": { "t": { "type": "boolean" } } } }),
            json!([]),
        ),
        object(
            json!({ "s": { "type": "object", "properties": { "t": { "type": "string" } } } }),
            json!([]),
        ),
        "s.t",
    );
    check_refused(
        object(
            json!({ "l": { "type": "array", "items": { "type": "integer" } } }),
            json!([]),
        ),
        object(
            json!({ "l": { "type": "array", "items": { "type": "boolean" } } }),
            json!([]),
        ),
        "l[]",
    );
    check_refused(
        object(json!({ "v": { "type": "string" } }), json!([])),
        object(json!({ "v": { "type": ["string", "integer"] } }), json!([])),
        "v",
    );
    check_refused(
        object(
            json!({ "v": { "type": "object", "properties": { "a": {} } } }),
            json!([]),
        ),
        object(json!({ "v": { "type": "integer" } }), json!([])),
        "v",
    );
}

#[test]
fn refusals_say_what_to_do() {
    let error = evolve(
        &lake(object(json!({ "s": { "type": "string" } }), json!([]))),
        &lake(object(json!({ "s": {} }), json!([]))),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("from Utf8 to JSON text"), "{message}");
    assert!(message.contains("add a field with a new name"), "{message}");
}

#[test]
fn an_older_file_reads_into_the_evolved_schema() {
    let old_json_schema = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" },
            "score": { "type": "integer" },
            "dropped": { "type": "string" },
            "who": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] },
            "lines": { "type": "array", "items": { "type": "object", "properties": { "sku": { "type": "string" } } } },
        },
        "required": ["id"],
    });
    let new_json_schema = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" },
            "score": { "type": "number" },
            "added": { "type": "string", "format": "date-time" },
            "who": {
                "type": "object",
                "properties": { "name": { "type": "string" }, "email": { "type": "string" } },
                "required": ["name"],
            },
            "lines": {
                "type": "array",
                "items": { "type": "object", "properties": { "sku": { "type": "string" }, "qty": { "type": "integer" } } },
            },
        },
        "required": ["id"],
    });
    let old_schema = Arc::new(lake(old_json_schema));
    let old_batch = to_record_batch(&old_schema, &[
        record(json!({ "id": 1, "score": 7, "dropped": "x", "who": { "name": "Ada" }, "lines": [{ "sku": "A" }] }), 0, 1),
        record(json!({ "id": 2 }), 1, 1),
    ])
    .unwrap();
    let old_file = encode_parquet(&old_schema, &[old_batch]).unwrap();

    let evolved = Arc::new(evolve(&old_schema, &lake(new_json_schema)).unwrap());
    let (file_schema, batches) = decode_parquet(Bytes::from(old_file)).unwrap();
    assert_eq!(file_schema, old_schema);
    let read = project(&batches[0], &evolved).unwrap();

    assert_eq!(read.schema(), evolved);
    assert_eq!(
        read.column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec(),
        [1, 2]
    );
    let score = read
        .column_by_name("score")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!((score.value(0), score.is_null(1)), (7.0, true));
    assert_eq!(
        read.column_by_name("dropped")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "x"
    );
    assert_eq!(read.column_by_name("added").unwrap().null_count(), 2);

    let who = read.column_by_name("who").unwrap().as_struct();
    assert_eq!(
        who.column_by_name("name")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "Ada"
    );
    assert!(who.column_by_name("email").unwrap().is_null(0));
    assert!(who.is_null(1));

    let lines = read.column_by_name("lines").unwrap().as_list::<i32>();
    let first_lines = lines.value(0);
    let line = first_lines.as_struct();
    assert_eq!(
        line.column_by_name("sku")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "A"
    );
    assert!(line.column_by_name("qty").unwrap().is_null(0));
    assert!(lines.is_null(1));

    // Newer records land in the evolved schema too, and both read side by side.
    let new_batch = to_record_batch(&evolved, &[record(
        json!({ "id": 3, "score": 1.5, "added": "2024-01-01T00:00:00Z", "who": { "name": "Bo", "email": "b@x" } }),
        2,
        2,
    )])
    .unwrap();
    let both = arrow::compute::concat_batches(&evolved, &[read, new_batch]).unwrap();
    assert_eq!(both.num_rows(), 3);
    assert!(both.column_by_name("dropped").unwrap().is_null(2));
}

#[test]
fn projecting_a_batch_that_lacks_a_non_null_column_is_refused() {
    let old = Arc::new(lake(object(
        json!({ "a": { "type": "integer" } }),
        json!([]),
    )));
    let batch = to_record_batch(&old, &[record(json!({ "a": 1 }), 0, 1)]).unwrap();
    // Not an evolution of `old`: `b` is required and older files have no value for it.
    let target = Arc::new(lake(object(
        json!({ "a": { "type": "integer" }, "b": { "type": "integer" } }),
        json!(["b"]),
    )));
    match project(&batch, &target) {
        Err(EvolutionError::Projection { path, .. }) => assert_eq!(path, "b"),
        other => panic!("expected a projection error, got {other:?}"),
    }
}
