use std::time::Duration;

use plinth_runtime::yaml::{format_duration, parse_duration};

use super::*;
use crate::domain::definitions::{BatchLocation, SourceKind, ViewProjection};

const BASE: &str = "\
entities:
  - name: driver
    join_keys: [{name: driver_id, type: int64}]
    description: a driver
    owner: mobility@example.com
    tags: {team: mobility, tier: 1}
  - name: customer
    join_keys:
      - name: customer_id
        type: string
sources:
  - name: driver_stats
    lake: {dataset: driver_stats}
    timestamp_field: event_timestamp
    created_timestamp_column: created
    field_mapping: {conv_rate_v2: conv_rate}
  - name: driver_events
    stream: {topic: driver_events_topic}
    timestamp_field: event_timestamp
";

const VIEWS: &str = "\
feature_views:
  - name: driver_hourly_stats
    entities: [driver]
    ttl: 1d
    source: driver_stats
    features:
      - {name: conv_rate, type: float32, description: conversion rate}
      - name: acc_rate
        type: float64
    owner: mobility
  - name: driver_customer
    entities: [driver, customer]
    source: driver_events
    ttl: 1h30m
    online: false
    features:
      - {name: trips, type: int64}
---
feature_services:
  - name: driver_ranking_v1
    features:
      - driver_hourly_stats
      - driver_customer: [trips]
";

fn parse_files(files: &[(&str, &str)]) -> Result<ParsedProject, Vec<DefinitionError>> {
    parse(files)
}

/// Parses BASE and VIEWS plus `extra` (as `extra.yaml`) and returns the displayed errors.
fn errors_with(extra: &str) -> Vec<String> {
    match parse_files(&[
        ("base.yaml", BASE),
        ("views.yaml", VIEWS),
        ("extra.yaml", extra),
    ]) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts exactly one error, at `location` (`file:line:column`), containing every part.
fn check(extra: &str, location: &str, parts: &[&str]) {
    let errors = errors_with(extra);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    let error = &errors[0];
    assert!(
        error.starts_with(&format!("{location}: ")),
        "expected the error at {location}, got {error}"
    );
    for part in parts {
        assert!(error.contains(part), "`{part}` is not in {error}");
    }
}

#[test]
fn a_full_project_parses_with_defaults_and_spans() {
    let parsed = parse_files(&[("base.yaml", BASE), ("views.yaml", VIEWS)]).unwrap();
    let project = &parsed.project;
    assert_eq!(project.entities.len(), 2);
    let driver = &project.entities["driver"];
    assert_eq!(driver.join_keys[0].name, "driver_id");
    assert_eq!(driver.join_keys[0].value_type, ValueType::Int64);
    assert_eq!(driver.metadata.owner, "mobility@example.com");
    assert_eq!(driver.metadata.tags["tier"], "1");
    assert_eq!(
        project.entities["customer"].join_keys[0].value_type,
        ValueType::String
    );
    let stats = &project.sources["driver_stats"];
    assert_eq!(
        stats.kind,
        SourceKind::Batch(BatchLocation::LakeDataset("driver_stats".into()))
    );
    assert_eq!(stats.created_timestamp_column.as_deref(), Some("created"));
    assert_eq!(stats.source_column("conv_rate"), "conv_rate_v2");
    assert_eq!(
        project.sources["driver_events"].kind,
        SourceKind::Stream {
            topic: "driver_events_topic".into(),
            batch: BatchLocation::LakeDataset("driver_events_topic".into()),
        }
    );
    let hourly = &project.feature_views["driver_hourly_stats"];
    assert_eq!(hourly.ttl, Duration::from_secs(86_400));
    assert!(hourly.online && hourly.offline);
    assert_eq!(hourly.features[1].value_type, ValueType::Float64);
    assert_eq!(hourly.features[0].description, "conversion rate");
    let both = &project.feature_views["driver_customer"];
    assert_eq!(both.ttl, Duration::from_secs(5400));
    assert!(!both.online && both.offline);
    assert_eq!(
        project.feature_services["driver_ranking_v1"].projections,
        vec![
            ViewProjection {
                feature_view: "driver_hourly_stats".into(),
                features: vec![],
            },
            ViewProjection {
                feature_view: "driver_customer".into(),
                features: vec!["trips".into()],
            },
        ]
    );
    let at = parsed
        .spans
        .object(DefinitionKind::FeatureView, "driver_customer")
        .unwrap();
    assert_eq!(at.to_string(), "views.yaml:11:5");
    let feature = parsed
        .spans
        .feature("driver_hourly_stats", "acc_rate")
        .unwrap();
    assert_eq!(feature.to_string(), "views.yaml:8:9");
    let service = parsed
        .spans
        .object(DefinitionKind::FeatureService, "driver_ranking_v1")
        .unwrap();
    assert_eq!(service.to_string(), "views.yaml:20:5");
}

#[test]
fn sources_of_every_kind_parse() {
    let extra = "\
sources:
  - name: files
    parquet: {url: 'file:///data/files'}
    timestamp_field: ts
  - name: pushed
    push: {dataset: pushed_rows}
    timestamp_field: ts
  - name: pushed_online
    push:
    timestamp_field: ts
  - name: streamed
    stream: {topic: t, dataset: d}
    timestamp_field: ts
";
    let parsed = parse_files(&[("extra.yaml", extra)]).unwrap();
    let sources = &parsed.project.sources;
    assert_eq!(
        sources["files"].kind,
        SourceKind::Batch(BatchLocation::ParquetUrl("file:///data/files".into()))
    );
    assert_eq!(
        sources["pushed"].kind,
        SourceKind::Push {
            batch: Some(BatchLocation::LakeDataset("pushed_rows".into()))
        }
    );
    assert_eq!(
        sources["pushed_online"].kind,
        SourceKind::Push { batch: None }
    );
    assert_eq!(
        sources["streamed"].kind,
        SourceKind::Stream {
            topic: "t".into(),
            batch: BatchLocation::LakeDataset("d".into())
        }
    );
}

#[test]
fn empty_files_and_documents_are_an_empty_project() {
    let parsed = parse_files(&[("a.yaml", ""), ("b.yaml", "---\n---\n# nothing\n")]).unwrap();
    assert_eq!(parsed.project, Project::default());
}

#[test]
fn a_syntax_error_names_the_line() {
    check(
        "entities:\n  - name: [driver\n",
        "extra.yaml:3:1",
        &["invalid YAML", "fix the syntax"],
    );
}

#[test]
fn an_unknown_key_names_the_nearest_valid_one() {
    check(
        "feature_views:\n  - name: v\n    source: driver_stats\n    ttll: 1d\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:4:5",
        &[
            "unknown key `ttll` in feature view `v`",
            "did you mean `ttl`?",
            "valid keys are name, entities",
        ],
    );
    check(
        "entity:\n  - name: x\n",
        "extra.yaml:1:1",
        &[
            "unknown key `entity` in a definition file",
            "did you mean `entities`?",
        ],
    );
}

#[test]
fn a_wrong_type_says_what_was_expected() {
    check(
        "feature_views:\n  - name: v\n    source: driver_stats\n    online: yes\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:4:13",
        &["`online` of feature view `v` must be true or false, not text"],
    );
    check(
        "entities: driver\n",
        "extra.yaml:1:11",
        &["`entities` must be a list"],
    );
    check(
        "entities:\n  - name: e\n    join_keys: [{name: id, type: decimal}]\n",
        "extra.yaml:3:34",
        &["`decimal` is not a value type"],
    );
}

#[test]
fn a_missing_required_field_shows_how_to_add_it() {
    check(
        "feature_views:\n  - name: v\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:2:5",
        &[
            "feature view `v` is missing the required field `source`",
            "add `source: my_source`",
        ],
    );
    check(
        "entities:\n  - join_keys: [{name: id, type: int64}]\n",
        "extra.yaml:2:5",
        &["an entity is missing the required field `name`"],
    );
    check(
        "sources:\n  - name: s\n    timestamp_field: ts\n",
        "extra.yaml:2:5",
        &["source `s` says nowhere its rows come from"],
    );
}

#[test]
fn a_duplicate_name_names_both_places() {
    check(
        "entities:\n  - name: driver\n    join_keys: [{name: driver_id, type: int64}]\n",
        "extra.yaml:2:5",
        &[
            "duplicate entity `driver`",
            "also declared at base.yaml:2:5",
            "rename one",
        ],
    );
}

#[test]
fn unknown_references_list_what_exists() {
    check(
        "feature_views:\n  - name: v\n    entities: [drivr]\n    source: driver_stats\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:3:16",
        &[
            "feature view `v` names unknown entity `drivr`",
            "did you mean `driver`?",
            "declared entities: `customer`, `driver`",
        ],
    );
    check(
        "feature_views:\n  - name: v\n    source: nowhere\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:3:13",
        &[
            "unknown source `nowhere`",
            "declared sources: `driver_events`, `driver_stats`",
        ],
    );
    check(
        "feature_services:\n  - name: s\n    features: [driver_hourly]\n",
        "extra.yaml:3:16",
        &[
            "feature service `s` names unknown feature view `driver_hourly`",
            "did you mean `driver_hourly_stats`?",
        ],
    );
}

#[test]
fn a_service_feature_the_view_lacks_is_refused() {
    check(
        "feature_services:\n  - name: s\n    features:\n      - driver_hourly_stats: [conv_rate, acc_rat]\n",
        "extra.yaml:4:42",
        &[
            "takes feature `acc_rat`, which view `driver_hourly_stats` does not have",
            "did you mean `acc_rate`?",
            "its features: `conv_rate`, `acc_rate`",
        ],
    );
}

#[test]
fn float_and_bool_join_keys_are_refused() {
    check(
        "entities:\n  - name: e\n    join_keys: [{name: id, type: float64}]\n",
        "extra.yaml:3:34",
        &[
            "join key `id` of entity `e` has type float64, which cannot be a join key",
            "use string, bytes, int32 or int64",
        ],
    );
    check(
        "entities:\n  - name: e\n    join_keys:\n      - {name: id, type: bool}\n",
        "extra.yaml:4:26",
        &["type bool, which cannot be a join key"],
    );
}

#[test]
fn colliding_join_keys_of_a_view_are_refused() {
    check(
        "entities:\n  - name: other_driver\n    join_keys: [{name: driver_id, type: int64}]\nfeature_views:\n  - name: v\n    entities: [driver, other_driver]\n    source: driver_stats\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:6:24",
        &[
            "entities `driver` and `other_driver` of feature view `v` both have join key `driver_id`",
        ],
    );
}

#[test]
fn a_feature_named_like_a_key_or_timestamp_is_refused() {
    check(
        "feature_views:\n  - name: v\n    entities: [driver]\n    source: driver_stats\n    features: [{name: driver_id, type: int64}]\n",
        "extra.yaml:5:16",
        &["feature `driver_id` of feature view `v` has the name of a join key of entity `driver`"],
    );
    check(
        "feature_views:\n  - name: v\n    source: driver_stats\n    features:\n      - {name: event_timestamp, type: unix_timestamp}\n",
        "extra.yaml:5:9",
        &["is the timestamp_field of source `driver_stats`"],
    );
    check(
        "feature_views:\n  - name: v\n    source: driver_stats\n    features:\n      - {name: created, type: unix_timestamp}\n",
        "extra.yaml:5:9",
        &["is the created_timestamp_column of source `driver_stats`"],
    );
}

#[test]
fn bad_durations_are_refused() {
    check(
        "feature_views:\n  - name: v\n    source: driver_stats\n    ttl: 1x\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:4:10",
        &[
            "the ttl of feature view `v` is not a duration",
            "`1x` has `x`",
        ],
    );
    check(
        "feature_views:\n  - name: v\n    source: driver_stats\n    ttl: 3600\n    features: [{name: f, type: int64}]\n",
        "extra.yaml:4:10",
        &["`3600` has no unit", "3600s"],
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let errors = errors_with(
        "entities:\n  - name: e\n    join_keys: [{name: id, type: float32}]\n    ownr: me\nfeature_views:\n  - name: v\n    source: nowhere\n    features: [{name: f, type: int64}]\n",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("extra.yaml:3:"));
    assert!(errors[1].starts_with("extra.yaml:4:5: unknown key `ownr`"));
    assert!(errors[2].starts_with("extra.yaml:7:13:"));
}

#[test]
fn durations_parse_and_format_canonically() {
    for (text, seconds) in [
        ("0", 0),
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86_400),
        ("1w", 604_800),
        ("1h30m", 5400),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_secs(seconds)),
            "{text}"
        );
    }
    for bad in ["", "1", "h", "1h30", "1.5h", "99999999999999999999w"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(format_duration(Duration::from_secs(90_061)), "1d1h1m1s");
    assert_eq!(format_duration(Duration::from_secs(604_800)), "1w");
    assert_eq!(format_duration(Duration::ZERO), "0");
}

#[test]
fn rendered_yaml_parses_back_to_the_same_project() {
    let parsed = parse_files(&[("base.yaml", BASE), ("views.yaml", VIEWS)]).unwrap();
    let text = project_to_yaml(&parsed.project);
    let again = parse_files(&[("rendered.yaml", text.as_str())]).unwrap();
    assert_eq!(again.project, parsed.project, "{text}");
    let view = Definition::FeatureView(parsed.project.feature_views["driver_customer"].clone());
    assert_eq!(
        to_yaml(&view),
        "\
feature_views:
  - name: driver_customer
    entities: [driver, customer]
    source: driver_events
    ttl: 1h30m
    online: false
    offline: true
    features:
      - name: trips
        type: int64
"
    );
}

#[test]
fn source_columns_must_exist_with_a_fitting_type() {
    let parsed = parse_files(&[("base.yaml", BASE), ("views.yaml", VIEWS)]).unwrap();
    let columns = |pairs: &[(&str, ValueType)]| -> BTreeMap<String, ValueType> {
        pairs
            .iter()
            .map(|(name, value_type)| ((*name).to_owned(), *value_type))
            .collect()
    };
    let good = BTreeMap::from([(
        "driver_stats".to_owned(),
        columns(&[
            ("driver_id", ValueType::Int32),
            ("event_timestamp", ValueType::UnixTimestamp),
            ("created", ValueType::UnixTimestamp),
            ("conv_rate_v2", ValueType::Float32),
            ("acc_rate", ValueType::Float32),
        ]),
    )]);
    assert_eq!(check_source_columns(&parsed, &good), Vec::new());

    let bad = BTreeMap::from([(
        "driver_stats".to_owned(),
        columns(&[
            ("driver_id", ValueType::Int64),
            ("event_timestamp", ValueType::UnixTimestamp),
            ("created", ValueType::UnixTimestamp),
            ("conv_rate_v2", ValueType::Float64),
        ]),
    )]);
    let errors: Vec<String> = check_source_columns(&parsed, &bad)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("views.yaml:7:9: feature `conv_rate` of view `driver_hourly_stats` is declared float32 but column `conv_rate_v2` (mapped to `conv_rate`)"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("is float64; declare it float64"));
    assert!(
        errors[1].starts_with("views.yaml:8:9: feature `acc_rate` of view `driver_hourly_stats` has no column `acc_rate` in source `driver_stats`"),
        "{}",
        errors[1]
    );
}

#[test]
fn kinds_read_from_their_names() {
    for kind in DefinitionKind::ALL {
        assert_eq!(kind.as_str().parse::<DefinitionKind>(), Ok(kind));
        assert_eq!(kind.list_key().parse::<DefinitionKind>(), Ok(kind));
    }
    assert_eq!(
        "feature view".parse::<DefinitionKind>(),
        Ok(DefinitionKind::FeatureView)
    );
    assert!("view".parse::<DefinitionKind>().is_err());
}

#[test]
fn column_widening_is_one_way() {
    assert!(column_fits(ValueType::Int32, ValueType::Int64));
    assert!(column_fits(ValueType::Float32, ValueType::Float64));
    assert!(!column_fits(ValueType::Int64, ValueType::Int32));
    assert!(!column_fits(ValueType::Int64, ValueType::Float64));
}

#[test]
fn a_repeated_key_is_refused() {
    check(
        "feature_views:\n  - name: v\n    source: driver_stats\n    ttl: 1d\n    features: [{name: f, type: int64}]\n    ttl: 2d # again\n",
        "extra.yaml:4:5",
        &["key `ttl` appears more than once in feature view `v`"],
    );
    check(
        "entities:\n  - name: e\n    join_keys: [{name: id, type: int64, name: id2}]\n",
        "extra.yaml:3:18",
        &["key `name` appears more than once in a join key of entity `e`"],
    );
    check(
        "entities:\n  - name: e\n    join_keys: [{name: id, type: int64}]\n    tags:\n      a: x\n      a: y\n",
        "extra.yaml:5:7",
        &["key `a` appears more than once in the tags of entity `e`"],
    );
    // Colons in comments, quoted text, nulls and nested values are not repeats.
    let fine = "\
sources:
  - name: s   # name: not a key
    parquet:
      url: 'file:///x:y'
    timestamp_field: ts
    created_timestamp_column:
    description: \"a: b\"
";
    assert_eq!(errors_with(fine), Vec::<String>::new());
}
