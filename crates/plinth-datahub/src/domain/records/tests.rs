use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Date32Array, Float64Array, Int32Array, Int64Array, ListArray, StringArray,
    StructArray, TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::datatypes::{Date32Type, Float64Type, Int64Type, Schema};
use serde_json::{Value, json};

use super::*;
use crate::domain::lake_schema::derive_lake_schema;

fn order_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" },
            "placed_at": { "type": "string", "format": "date-time" },
            "ship_on": { "type": "string", "format": "date" },
            "note": { "type": ["string", "null"] },
            "total": { "type": "number" },
            "customer": {
                "type": "object",
                "properties": { "name": { "type": "string" }, "vip": { "type": "boolean" } },
                "required": ["name"],
            },
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "sku": { "type": "string" }, "qty": { "type": "integer" } },
                    "required": ["sku", "qty"],
                },
            },
            "attributes": { "type": "object", "additionalProperties": { "type": "string" } },
        },
        "required": ["id", "placed_at"],
    })
}

fn lake_schema(json_schema: &Value) -> SchemaRef {
    Arc::new(derive_lake_schema(json_schema).unwrap())
}

fn record(value: Value, offset: i64) -> LakeRecord {
    LakeRecord {
        value,
        kafka: KafkaMetadata {
            partition: 3,
            offset,
            timestamp_ms: 1_700_000_000_000 + offset,
            schema_id: 7,
        },
    }
}

/// Builds the batch both ways, from parsed values and from the records' text, and checks they agree
/// (the same batch, or errors naming the same record); also without the schema's top-level JSON text
/// columns, so that the text is decoded straight into Arrow and not through parsed values.
fn to_record_batch(
    schema: &SchemaRef,
    records: &[LakeRecord],
) -> Result<RecordBatch, RecordsError> {
    let from_values = super::to_record_batch(schema, records);
    let mut text = TextRecords::new();
    for record in records {
        text.push(&serde_json::to_vec(&record.value).unwrap(), record.kafka);
    }
    assert_eq!(text.len(), records.len());
    assert_eq!(
        text.json_bytes(),
        records
            .iter()
            .map(|record| serde_json::to_vec(&record.value).unwrap().len())
            .sum::<usize>()
    );
    assert_eq!(
        text.metadata(),
        records
            .iter()
            .map(|record| record.kafka)
            .collect::<Vec<_>>()
    );
    let from_text = text_to_record_batch(schema, &text, 0..records.len());
    assert_agree(&from_values, &from_text);

    if let Some(fields) = schema
        .fields()
        .get(..schema.fields().len().saturating_sub(SYSTEM_COLUMNS.len()))
    {
        let kept: Fields = fields
            .iter()
            .filter(|field| !is_json_text(field))
            .chain(&schema.fields()[fields.len()..])
            .cloned()
            .collect();
        let without_json_text = Arc::new(Schema::new(kept));
        if !without_json_text.fields().iter().any(holds_json_text) {
            let from_values = super::to_record_batch(&without_json_text, records);
            let from_text = text_to_record_batch(&without_json_text, &text, 0..records.len());
            assert_agree(&from_values, &from_text);
        }
    }
    from_values
}

fn assert_agree(
    from_values: &Result<RecordBatch, RecordsError>,
    from_text: &Result<RecordBatch, RecordsError>,
) {
    let which = |error: &RecordsError| match error {
        RecordsError::RecordDoesNotFit {
            partition, offset, ..
        } => Some((*partition, *offset)),
        _ => None,
    };
    match (from_values, from_text) {
        (Ok(values), Ok(text)) => assert_eq!(values, text),
        (Err(values), Err(text)) => assert_eq!(which(values), which(text), "{values} / {text}"),
        _ => panic!("the two ways disagree: from values {from_values:?}, from text {from_text:?}"),
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

#[test]
fn a_full_record_lands_in_every_column() {
    let schema = lake_schema(&order_schema());
    let batch = to_record_batch(
        &schema,
        &[record(
            json!({
                "id": 42,
                "placed_at": "2024-03-01T12:30:45.123456Z",
                "ship_on": "2024-03-04",
                "note": "leave at the door",
                "total": 19.5,
                "customer": { "name": "Ada", "vip": true },
                "lines": [{ "sku": "A-1", "qty": 2 }, { "sku": "B-2", "qty": 1 }],
                "attributes": { "gift": "yes", "wrap": "blue" },
            }),
            10,
        )],
    )
    .unwrap();

    assert_eq!(batch.schema(), schema);
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(column::<Int64Array>(&batch, "id").value(0), 42);
    // 2024-03-01T12:30:45.123456Z in microseconds.
    assert_eq!(
        column::<TimestampMicrosecondArray>(&batch, "placed_at").value(0),
        1_709_296_245_123_456
    );
    assert_eq!(
        column::<Date32Array>(&batch, "ship_on").value_as_date(0),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 4)
    );
    assert_eq!(
        column::<StringArray>(&batch, "note").value(0),
        "leave at the door"
    );
    assert_eq!(column::<Float64Array>(&batch, "total").value(0), 19.5);

    let customer = column::<StructArray>(&batch, "customer");
    assert_eq!(
        customer
            .column_by_name("name")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "Ada"
    );
    assert!(
        customer
            .column_by_name("vip")
            .unwrap()
            .as_boolean()
            .value(0)
    );

    let lines = column::<ListArray>(&batch, "lines");
    let line_values = lines.value(0);
    let line_structs = line_values.as_struct();
    let skus = line_structs
        .column_by_name("sku")
        .unwrap()
        .as_string::<i32>();
    let quantities = line_structs
        .column_by_name("qty")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!((skus.value(0), quantities.value(0)), ("A-1", 2));
    assert_eq!((skus.value(1), quantities.value(1)), ("B-2", 1));

    let attributes = column::<StringArray>(&batch, "attributes").value(0);
    assert_eq!(
        serde_json::from_str::<Value>(attributes).unwrap(),
        json!({ "gift": "yes", "wrap": "blue" })
    );
    assert_eq!(
        attributes,
        serde_json::to_string(&json!({ "gift": "yes", "wrap": "blue" })).unwrap()
    );
}

#[test]
fn system_columns_carry_the_kafka_metadata() {
    let schema = lake_schema(&order_schema());
    let records: Vec<LakeRecord> = (5..8)
        .map(|offset| {
            record(
                json!({ "id": offset, "placed_at": "2024-01-01T00:00:00Z" }),
                offset,
            )
        })
        .collect();
    let batch = to_record_batch(&schema, &records).unwrap();

    assert_eq!(
        column::<Int32Array>(&batch, "_kafka_partition")
            .values()
            .to_vec(),
        [3, 3, 3]
    );
    assert_eq!(
        column::<Int64Array>(&batch, "_kafka_offset")
            .values()
            .to_vec(),
        [5, 6, 7]
    );
    assert_eq!(
        column::<TimestampMillisecondArray>(&batch, "_kafka_timestamp")
            .values()
            .to_vec(),
        [1_700_000_000_005, 1_700_000_000_006, 1_700_000_000_007]
    );
    assert_eq!(
        column::<Int32Array>(&batch, "_schema_id").values().to_vec(),
        [7, 7, 7]
    );
    assert_eq!(
        column::<Int64Array>(&batch, "id").values().to_vec(),
        [5, 6, 7]
    );
}

#[test]
fn missing_and_null_optional_fields_are_nulls() {
    let schema = lake_schema(&order_schema());
    let batch = to_record_batch(
        &schema,
        &[
            record(json!({ "id": 1, "placed_at": "2024-01-01T00:00:00Z" }), 0),
            record(
                json!({
                    "id": 2,
                    "placed_at": "2024-01-01T00:00:00Z",
                    "note": null,
                    "customer": { "name": "Bo" },
                    "lines": [],
                }),
                1,
            ),
        ],
    )
    .unwrap();

    for name in [
        "ship_on",
        "note",
        "total",
        "customer",
        "lines",
        "attributes",
    ] {
        assert!(
            batch.column_by_name(name).unwrap().is_null(0),
            "{name} of the first record"
        );
    }
    assert!(batch.column_by_name("note").unwrap().is_null(1));
    let customer = column::<StructArray>(&batch, "customer");
    assert!(customer.is_valid(1));
    assert!(customer.column_by_name("vip").unwrap().is_null(1));
    let lines = column::<ListArray>(&batch, "lines");
    assert!(lines.is_valid(1));
    assert_eq!(lines.value_length(1), 0);
}

#[test]
fn date_times_with_offsets_are_stored_in_utc() {
    let schema = lake_schema(&order_schema());
    let batch = to_record_batch(
        &schema,
        &[
            record(
                json!({ "id": 1, "placed_at": "2024-03-01T14:30:45+02:00" }),
                0,
            ),
            record(json!({ "id": 2, "placed_at": "2024-03-01T12:30:45Z" }), 1),
        ],
    )
    .unwrap();
    let placed_at = column::<TimestampMicrosecondArray>(&batch, "placed_at");
    assert_eq!(placed_at.value(0), placed_at.value(1));
    assert_eq!(
        placed_at.value_as_datetime(0).unwrap().to_string(),
        "2024-03-01 12:30:45"
    );
}

#[test]
fn json_text_columns_hold_serde_json_text_at_any_depth() {
    let json_schema = json!({
        "type": "object",
        "properties": {
            "anything": {},
            "tree": { "$ref": "#/$defs/node" },
        },
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": { "type": "string" },
                    "children": { "type": "array", "items": { "$ref": "#/$defs/node" } },
                },
            },
        },
    });
    let schema = lake_schema(&json_schema);
    let child = json!({ "label": "leaf", "children": [] });
    let batch = to_record_batch(&schema, &[
        record(json!({ "anything": [1, "two", { "three": 3.5 }], "tree": { "label": "root", "children": [child] } }), 0),
        record(json!({ "anything": "plain" }), 1),
        record(json!({ "anything": null }), 2),
    ])
    .unwrap();

    let anything = column::<StringArray>(&batch, "anything");
    assert_eq!(anything.value(0), r#"[1,"two",{"three":3.5}]"#);
    // A string value is stored as JSON text too: quoted, so readers can parse every cell the same way.
    assert_eq!(anything.value(1), r#""plain""#);
    assert!(anything.is_null(2));

    let tree = column::<StructArray>(&batch, "tree");
    let children = tree
        .column_by_name("children")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    assert_eq!(
        children.as_string::<i32>().value(0),
        serde_json::to_string(&child).unwrap()
    );
}

#[test]
fn undeclared_properties_are_dropped() {
    let schema = lake_schema(&order_schema());
    let batch = to_record_batch(
        &schema,
        &[record(
            json!({ "id": 1, "placed_at": "2024-01-01T00:00:00Z", "extra": 1 }),
            0,
        )],
    )
    .unwrap();
    assert!(batch.column_by_name("extra").is_none());
    assert_eq!(batch.num_columns(), schema.fields().len());
}

#[test]
fn no_records_make_an_empty_batch() {
    let schema = lake_schema(&order_schema());
    let batch = to_record_batch(&schema, &[]).unwrap();
    assert_eq!(batch.num_rows(), 0);
    assert_eq!(batch.schema(), schema);
}

#[test]
fn numbers_and_nested_lists_decode() {
    let json_schema = json!({
        "type": "object",
        "properties": {
            "matrix": { "type": "array", "items": { "type": "array", "items": { "type": "number" } } },
            "count": { "type": "integer" },
        },
    });
    let schema = lake_schema(&json_schema);
    let batch = to_record_batch(
        &schema,
        &[record(
            json!({ "matrix": [[1, 2.5], [], [-3]], "count": 9_007_199_254_740_993_i64 }),
            0,
        )],
    )
    .unwrap();
    let matrix = column::<ListArray>(&batch, "matrix").value(0);
    let rows = matrix.as_list::<i32>();
    assert_eq!(
        rows.value(0)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec(),
        [1.0, 2.5]
    );
    assert_eq!(rows.value(1).len(), 0);
    assert_eq!(
        rows.value(2)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec(),
        [-3.0]
    );
    // Integers beyond 2^53 keep every digit.
    assert_eq!(
        column::<Int64Array>(&batch, "count").value(0),
        9_007_199_254_740_993
    );
}

#[test]
fn a_record_missing_a_required_field_is_refused() {
    let schema = lake_schema(&order_schema());
    let valid = json!({ "id": 1, "placed_at": "2024-01-01T00:00:00Z" });
    let error = to_record_batch(
        &schema,
        &[
            record(valid.clone(), 0),
            record(json!({ "placed_at": "2024-01-01T00:00:00Z" }), 1),
            record(valid, 2),
        ],
    )
    .unwrap_err();
    // arrow-json does not say which record failed; the error names it by partition and offset.
    assert!(
        matches!(
            error,
            RecordsError::RecordDoesNotFit {
                partition: 3,
                offset: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_record_of_the_wrong_shape_is_refused() {
    let schema = lake_schema(&order_schema());
    let error = to_record_batch(
        &schema,
        &[record(json!({ "id": "x", "placed_at": "yesterday" }), 0)],
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("must be valid against the schema"),
        "{error}"
    );
}

#[test]
fn a_schema_without_system_columns_is_refused() {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let error = to_record_batch(&schema, &[]).unwrap_err();
    assert!(matches!(error, RecordsError::NotALakeSchema), "{error}");
}

#[test]
fn dates_decode_as_days_since_the_epoch() {
    let schema = lake_schema(&order_schema());
    let batch = to_record_batch(
        &schema,
        &[record(
            json!({ "id": 1, "placed_at": "1970-01-01T00:00:00Z", "ship_on": "1970-01-11" }),
            0,
        )],
    )
    .unwrap();
    assert_eq!(
        batch
            .column_by_name("ship_on")
            .unwrap()
            .as_primitive::<Date32Type>()
            .value(0),
        10
    );
}

#[test]
fn date_times_inside_lists_and_structs_are_utc_timestamps() {
    let json_schema = json!({
        "type": "object",
        "properties": {
            "seen": { "type": "array", "items": { "type": "string", "format": "date-time" } },
            "span": {
                "type": "object",
                "properties": { "from": { "type": "string", "format": "date-time" } },
            },
        },
    });
    let schema = lake_schema(&json_schema);
    let batch = to_record_batch(&schema, &[record(
        json!({ "seen": ["1970-01-01T00:00:01Z", "1970-01-01T01:00:00+01:00"], "span": { "from": "1970-01-01T00:00:00.5Z" } }),
        0,
    )])
    .unwrap();
    assert_eq!(batch.schema(), schema);
    let seen = column::<ListArray>(&batch, "seen").value(0);
    let seen = seen.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(seen.values().to_vec(), [1_000_000, 0]);
    assert_eq!(seen.timezone(), Some("UTC"));
    let from = column::<StructArray>(&batch, "span")
        .column_by_name("from")
        .unwrap()
        .clone();
    assert_eq!(
        from.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .value(0),
        500_000
    );
}

fn flat_order_schema() -> Value {
    let mut schema = order_schema();
    schema["properties"]
        .as_object_mut()
        .unwrap()
        .remove("attributes");
    schema
}

fn flat_order(offset: i64) -> LakeRecord {
    record(
        json!({
            "id": offset,
            "placed_at": format!("2024-01-0{}T10:00:00+02:00", offset % 9 + 1),
            "note": if offset % 2 == 0 { Value::Null } else { json!(format!("note \"{offset}\" ü")) },
            "total": offset as f64 * 1.5,
            "customer": { "name": "Ada", "vip": offset % 3 == 0, "extra": [1, 2] },
            "lines": [{ "sku": "a", "qty": offset }, { "sku": "b", "qty": 1.0 }],
            "undeclared": { "deep": true },
        }),
        offset,
    )
}

#[test]
fn a_range_of_text_records_is_the_batch_of_those_records() {
    let schema = lake_schema(&flat_order_schema());
    assert!(!schema.fields().iter().any(holds_json_text));
    let records: Vec<LakeRecord> = (0..6).map(flat_order).collect();
    let mut text = TextRecords::new();
    for record in &records {
        // Whitespace inside and around a record's text is part of valid JSON.
        let pretty = serde_json::to_vec_pretty(&record.value).unwrap();
        text.push(&pretty, record.kafka);
    }
    let expected = super::to_record_batch(&schema, &records[2..5]).unwrap();
    let batch = text_to_record_batch(&schema, &text, 2..5).unwrap();
    assert_eq!(batch, expected);
    assert_eq!(
        column::<Int64Array>(&batch, "_kafka_offset")
            .values()
            .to_vec(),
        [2, 3, 4]
    );
    assert_eq!(
        text_to_record_batch(&schema, &text, 0..0)
            .unwrap()
            .num_rows(),
        0
    );
    assert!(text_to_record_batch(&schema, &text, 4..7).is_err());
}

#[test]
fn text_records_that_are_not_objects_are_refused_by_offset() {
    let schema = lake_schema(&flat_order_schema());
    let mut text = TextRecords::new();
    for (offset, json) in [
        (0, flat_order(0).value.to_string()),
        (1, "[1, 2]".to_owned()),
        (2, "7".to_owned()),
    ] {
        text.push(json.as_bytes(), flat_order(offset).kafka);
    }
    let error = text_to_record_batch(&schema, &text, 0..3).unwrap_err();
    assert!(
        matches!(error, RecordsError::RecordDoesNotFit { offset: 1, .. }),
        "{error}"
    );
    let error = text_to_record_batch(&schema, &text, 2..3).unwrap_err();
    assert!(
        matches!(error, RecordsError::RecordDoesNotFit { offset: 2, .. }),
        "{error}"
    );
}

#[test]
fn flat_records_decode_the_same_from_text_and_from_values() {
    let schema = lake_schema(&flat_order_schema());
    let records: Vec<LakeRecord> = (0..40).map(flat_order).collect();
    let batch = to_record_batch(&schema, &records).unwrap();
    assert_eq!(batch.num_rows(), 40);
}

#[test]
fn text_over_several_pieces_decodes_like_the_parsed_records() {
    let schema = lake_schema(&flat_order_schema());
    // Notes of 300 KiB fill a 4 MiB piece in about fourteen records; one note of 5 MiB is bigger than
    // a piece and gets one of its own.
    let records: Vec<LakeRecord> = (0..40)
        .map(|offset| {
            let mut record = flat_order(offset);
            let size = if offset == 20 { 5 << 20 } else { 300 << 10 };
            record.value["note"] = json!("n".repeat(size));
            record
        })
        .collect();
    let mut text = TextRecords::new();
    for record in &records {
        text.push(record.value.to_string().as_bytes(), record.kafka);
    }
    assert!(text.pieces.len() >= 4, "{} pieces", text.pieces.len());
    assert_eq!(
        text.json_bytes(),
        records
            .iter()
            .map(|record| record.value.to_string().len())
            .sum::<usize>()
    );
    for range in [0..40, 10..30, 19..22, 20..21, 13..15, 39..40] {
        let expected = super::to_record_batch(&schema, &records[range.clone()]).unwrap();
        assert_eq!(
            text_to_record_batch(&schema, &text, range.clone()).unwrap(),
            expected,
            "records {range:?}"
        );
    }
}
