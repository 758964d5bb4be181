use std::collections::HashMap;

use clap::Parser as _;
use plinth_proto::featurestore::v1 as pb;

use super::format::{self, PlanCounts};
use super::parse::{self, EntityValue};
use crate::commands::Cli;

fn int(number: i64) -> pb::Value {
    pb::Value {
        val: Some(pb::value::Val::Int64Val(number)),
    }
}

fn text(text: &str) -> pb::Value {
    pb::Value {
        val: Some(pb::value::Val::StringVal(text.to_owned())),
    }
}

fn parses(line: &str) -> bool {
    Cli::try_parse_from(line.split_whitespace()).is_ok()
}

#[test]
fn feature_commands_parse_as_documented() {
    for line in [
        "plinth features plan features/",
        "plinth features plan a.yaml b.yml --prune -o json",
        "plinth features apply features/ --prune --feature-store https://fs.example:7003",
        "plinth features list",
        "plinth features list --kind feature-view --tag team=risk --tag tier=1 --owner ml@acme.io",
        "plinth features describe feature-view driver_hourly_stats",
        "plinth features describe entity driver -o json",
        "plinth features materialize",
        "plinth features materialize --views a,b --start 2026-01-01T00:00:00Z --end 2026-01-02T00:00:00Z",
        "plinth features materialize --incremental --end 2026-01-02T00:00:00Z --deadline 2h",
        "plinth features get --feature-service driver_ranking --entity driver_id=1001 --entity driver_id=1002",
        "plinth features get --features v:a,v:b --entity driver_id=s:1001 --full-names",
        "plinth features get --features v:a --entity driver_id=1,customer_id=x",
        "plinth features training-set --feature-service s --entities-dataset drivers --output-dataset out",
        "plinth features training-set --features v:a,w:b --entities-url s3://lake/e.parquet --output-dataset out --short-names --filter-by-created-timestamp --timestamp-column ts",
        "plinth features training-set --feature-service s --entities-file e.parquet --output-dataset out -o json",
    ] {
        assert!(
            parses(line),
            "{line}: {:?}",
            Cli::try_parse_from(line.split_whitespace()).err()
        );
    }
    for line in [
        "plinth features plan",
        "plinth features list --kind view",
        "plinth features list --tag team",
        "plinth features describe feature-view",
        "plinth features materialize --incremental --start 2026-01-01T00:00:00Z",
        "plinth features materialize --end yesterday",
        "plinth features materialize --deadline 0s",
        "plinth features get --entity driver_id=1",
        "plinth features get --feature-service s",
        "plinth features get --feature-service s --features v:a --entity driver_id=1",
        "plinth features get --features driver_hourly_stats --entity driver_id=1",
        "plinth features get --feature-service s --entity driver_id",
        "plinth features training-set --feature-service s --output-dataset out",
        "plinth features training-set --feature-service s --entities-dataset d --entities-url s3://x --output-dataset out",
        "plinth features training-set --feature-service s --entities-dataset d",
    ] {
        assert!(!parses(line), "{line} should be refused");
    }
}

#[test]
fn entity_values_are_int64_when_they_parse_and_text_otherwise() {
    let row = parse::parse_entity_row("driver_id=1001,city=paris,code=s:007,big=i:-5").unwrap();
    assert_eq!(
        row,
        vec![
            ("driver_id".to_owned(), EntityValue::Int(1001)),
            ("city".to_owned(), EntityValue::Text("paris".to_owned())),
            ("code".to_owned(), EntityValue::Text("007".to_owned())),
            ("big".to_owned(), EntityValue::Int(-5)),
        ]
    );
    // Too large for an int64: text, as the store could not hold it as a number either.
    assert_eq!(
        parse::parse_entity_row("id=99999999999999999999").unwrap()[0].1,
        EntityValue::Text("99999999999999999999".to_owned())
    );
    assert_eq!(
        parse::parse_entity_row("id=").unwrap()[0].1,
        EntityValue::Text(String::new())
    );
    for bad in ["driver_id", "=5", "a=1,a=2", "id=i:abc"] {
        assert!(parse::parse_entity_row(bad).is_err(), "{bad}");
    }
}

#[test]
fn entity_rows_become_columns_in_the_order_of_the_first_row() {
    let rows = [
        "driver_id=1001,customer_id=s:a",
        "customer_id=s:b,driver_id=1002",
    ]
    .iter()
    .map(|row| parse::parse_entity_row(row).unwrap())
    .collect();
    let (keys, columns) = parse::entity_columns(rows).unwrap();
    assert_eq!(keys, ["driver_id", "customer_id"]);
    assert_eq!(columns["driver_id"].val, [int(1001), int(1002)]);
    assert_eq!(columns["customer_id"].val, [text("a"), text("b")]);
}

#[test]
fn entity_rows_must_agree_on_keys_and_types() {
    let rows = |lines: &[&str]| {
        lines
            .iter()
            .map(|row| parse::parse_entity_row(row).unwrap())
            .collect::<Vec<_>>()
    };
    let error = parse::entity_columns(rows(&["driver_id=1", "rider_id=2"]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("entity row 2"), "{error}");
    let error = parse::entity_columns(rows(&["driver_id=1", "driver_id=abc"]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("mixes integers and text") && error.contains("s:"),
        "{error}"
    );
    assert!(parse::entity_columns(rows(&["driver_id=s:1", "driver_id=abc"])).is_ok());
    assert!(parse::entity_columns(Vec::new()).is_err());
}

#[test]
fn feature_references_and_tags_are_checked() {
    assert_eq!(
        parse::parse_feature_ref("driver_hourly_stats:conv_rate").unwrap(),
        "driver_hourly_stats:conv_rate"
    );
    for bad in ["conv_rate", ":conv_rate", "view:", "a:b:c"] {
        assert!(parse::parse_feature_ref(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse::parse_tag("team = risk").unwrap(),
        ("team".to_owned(), "risk".to_owned())
    );
    assert_eq!(
        parse::parse_tag("note=a=b").unwrap(),
        ("note".to_owned(), "a=b".to_owned())
    );
    assert!(parse::parse_tag("team").is_err());
    assert!(parse::parse_tag("=risk").is_err());
}

#[test]
fn selection_is_a_service_or_references() {
    let selection = parse::selection(Some("ranking".to_owned()), Vec::new()).unwrap();
    assert_eq!(
        selection.selection,
        Some(pb::feature_selection::Selection::FeatureService(
            "ranking".to_owned()
        ))
    );
    let selection = parse::selection(None, vec!["v:a".to_owned()]).unwrap();
    assert_eq!(
        selection.selection,
        Some(pb::feature_selection::Selection::Features(
            pb::FeatureList {
                refs: vec!["v:a".to_owned()]
            }
        ))
    );
    assert!(parse::selection(None, Vec::new()).is_err());
}

fn change(
    kind: pb::DefinitionKind,
    name: &str,
    change: pb::ChangeKind,
    details: &[&str],
) -> pb::DefinitionChange {
    pb::DefinitionChange {
        kind: kind.into(),
        name: name.to_owned(),
        change: change.into(),
        details: details.iter().map(|detail| (*detail).to_owned()).collect(),
    }
}

#[test]
fn plans_render_like_terraform() {
    let changes = [
        change(
            pb::DefinitionKind::Entity,
            "driver",
            pb::ChangeKind::Unchanged,
            &[],
        ),
        change(
            pb::DefinitionKind::FeatureView,
            "driver_hourly_stats",
            pb::ChangeKind::Update,
            &["ttl: 1d -> 2d", "online: false -> true"],
        ),
        change(
            pb::DefinitionKind::FeatureView,
            "trips",
            pb::ChangeKind::Create,
            &[],
        ),
        change(
            pb::DefinitionKind::FeatureService,
            "old_model",
            pb::ChangeKind::Delete,
            &[],
        ),
    ];
    assert_eq!(
        format::plan_text(&changes, false, true),
        "~ feature_view driver_hourly_stats (ttl: 1d -> 2d; online: false -> true)\n\
         + feature_view trips\n\
         - feature_service old_model\n\
         \n\
         Plan: 1 to add, 1 to change, 1 to remove, 1 unchanged."
    );
    assert!(
        format::plan_text(&changes, true, true)
            .ends_with("Apply complete: 1 added, 1 changed, 1 removed, 1 unchanged.")
    );
    assert_eq!(
        PlanCounts::of(&changes),
        PlanCounts {
            create: 1,
            update: 1,
            delete: 1,
            unchanged: 1
        }
    );
    let json = format::plan_json(&changes);
    assert_eq!(json["changes"][1]["kind"], "feature_view");
    assert_eq!(json["changes"][1]["change"], "update");
    assert_eq!(json["changes"][1]["details"][0], "ttl: 1d -> 2d");
    assert_eq!(json["summary"]["delete"], 1);
}

#[test]
fn plans_without_changes_or_prune_say_so() {
    let unchanged = [change(
        pb::DefinitionKind::Entity,
        "driver",
        pb::ChangeKind::Unchanged,
        &[],
    )];
    assert_eq!(
        format::plan_text(&unchanged, false, false),
        "No changes: the registry matches the definitions (1 object)."
    );
    let created = [change(
        pb::DefinitionKind::Source,
        "trips_source",
        pb::ChangeKind::Create,
        &[],
    )];
    let text = format::plan_text(&created, false, false);
    assert!(
        text.starts_with("+ source trips_source\n\nPlan: 1 to add"),
        "{text}"
    );
    assert!(text.ends_with("--prune removes them."), "{text}");
}

#[test]
fn online_rows_show_keys_features_and_statuses() {
    let vector = |values: Vec<pb::Value>, statuses: Vec<pb::FieldStatus>| pb::FeatureVector {
        values,
        statuses: statuses.into_iter().map(i32::from).collect(),
        event_timestamps: Vec::new(),
    };
    let response = pb::GetOnlineFeaturesResponse {
        metadata: Some(pb::GetOnlineFeaturesResponseMetadata {
            feature_names: Some(pb::FeatureNames {
                val: vec!["driver_id".to_owned(), "conv_rate".to_owned()],
            }),
        }),
        results: vec![
            vector(
                vec![int(1001), int(1002)],
                vec![pb::FieldStatus::Present, pb::FieldStatus::Present],
            ),
            vector(
                vec![
                    pb::Value {
                        val: Some(pb::value::Val::DoubleVal(0.5)),
                    },
                    pb::Value { val: None },
                ],
                vec![pb::FieldStatus::Present, pb::FieldStatus::NotFound],
            ),
        ],
    };
    let rows = format::online_rows(&response, &["driver_id".to_owned()]);
    assert_eq!(rows.headers, ["driver_id", "conv_rate", "status"]);
    assert_eq!(
        rows.rows,
        [["1001", "0.5", "ok"], ["1002", "-", "conv_rate=not_found"]]
    );
    assert_eq!(
        rows.json[1],
        serde_json::json!({
            "driver_id": 1002,
            "conv_rate": null,
            "statuses": {"conv_rate": "not_found"},
        })
    );
}

#[test]
fn values_print_as_text_and_json() {
    let timestamp = pb::Value {
        val: Some(pb::value::Val::UnixTimestampVal(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        })),
    };
    assert_eq!(
        format::value_text(Some(&timestamp)),
        "2026-01-01T00:00:00.000Z"
    );
    let bytes = pb::Value {
        val: Some(pb::value::Val::BytesVal(vec![0xde, 0xad])),
    };
    assert_eq!(format::value_text(Some(&bytes)), "0xdead");
    assert_eq!(format::value_json(Some(&bytes)), "0xdead");
    assert_eq!(format::value_text(None), "-");
    assert_eq!(format::value_json(Some(&text("x"))), "x");
    assert_eq!(
        format::tags_text(&HashMap::from([
            ("tier".to_owned(), "1".to_owned()),
            ("team".to_owned(), "risk".to_owned()),
        ])),
        "team=risk,tier=1"
    );
}

#[test]
fn entity_files_become_arrow_ipc_streams() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("city", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1001, 1002])),
            Arc::new(StringArray::from(vec![Some("paris"), None])),
        ],
    )
    .unwrap();
    let path = std::env::temp_dir().join(format!("plinth-features-{}.parquet", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let ipc = super::parquet_to_arrow_ipc(&path).unwrap();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None).unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
    assert_eq!(batches[0].schema().field(0).name(), "driver_id");
    std::fs::remove_file(&path).unwrap();

    let error = super::parquet_to_arrow_ipc(&path).unwrap_err().to_string();
    assert!(error.contains("cannot open the entity file"), "{error}");
}
