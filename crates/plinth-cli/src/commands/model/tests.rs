#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser as _;
use plinth_proto::featurestore::v1 as fs;
use plinth_proto::inference::InferTensorContents;
use plinth_proto::serving::v1 as pb;
use serde_json::json;

use super::{ModelCommand, format, parse};
use crate::commands::{Cli, Command};

fn parse_line(line: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(line.split_whitespace())
}

fn model_args(line: &str) -> super::ModelArgs {
    match parse_line(line).unwrap().command {
        Command::Model(args) => *args,
        other => panic!("{line} parsed as {other:?}"),
    }
}

#[test]
fn model_commands_parse_as_documented() {
    for line in [
        "plinth model list",
        "plinth model list --prefix dri -o json",
        "plinth model load driver",
        "plinth model load driver --version v2 --serving https://serving.example:8001",
        "plinth model unload driver",
        "plinth model unload driver --version v1 --serving-url http://s:8001",
        "plinth model predict driver --key driver_id=1001 --key driver_id=1002",
        "plinth model predict driver --key driver_id=1001,region=s:eu --version v1 --features",
        "plinth model predict driver --entities {\"driver_id\":[1001,1002]} -o json",
        "plinth model predict driver --entities @rows.json --request-id ci-1 --timeout 2s",
    ] {
        assert!(
            parse_line(line).is_ok(),
            "{line}: {:?}",
            parse_line(line).err()
        );
    }
    for line in [
        "plinth model",
        "plinth model load",
        "plinth model unload",
        "plinth model predict driver",
        "plinth model predict --key driver_id=1",
        "plinth model predict driver --key driver_id",
        "plinth model predict driver --key =1",
        "plinth model predict driver --key a=1,a=2",
        "plinth model predict driver --key driver_id=i:x",
        "plinth model predict driver --key driver_id=1 --entities {\"driver_id\":[1]}",
        "plinth model list --serving not-a-url",
    ] {
        assert!(parse_line(line).is_err(), "{line} should be refused");
    }
}

#[test]
fn the_serving_url_defaults_to_the_local_port_and_takes_flag_and_alias() {
    // The environment may set PLINTH_SERVING_URL; the flag always wins.
    let args = model_args("plinth model list --serving http://serving.svc:9001");
    assert_eq!(args.serving.as_str(), "http://serving.svc:9001/");
    let args = model_args("plinth model --serving-url http://other:8001 list");
    assert_eq!(args.serving.as_str(), "http://other:8001/");
    if std::env::var_os("PLINTH_SERVING_URL").is_none() {
        let args = model_args("plinth model list");
        assert_eq!(args.serving.as_str(), "http://127.0.0.1:8001/");
    }
    match model_args("plinth model predict m --key id=1 --key id=2 --version v3 --features").command
    {
        ModelCommand::Predict {
            model,
            version,
            keys,
            entities,
            features,
            request_id,
        } => {
            assert_eq!(model, "m");
            assert_eq!(version.as_deref(), Some("v3"));
            assert_eq!(keys, ["id=1", "id=2"]);
            assert!(entities.is_none() && features && request_id.is_none());
        }
        other => panic!("parsed as {other:?}"),
    }
}

fn int(number: i64) -> fs::Value {
    fs::Value {
        val: Some(fs::value::Val::Int64Val(number)),
    }
}

fn text(text: &str) -> fs::Value {
    fs::Value {
        val: Some(fs::value::Val::StringVal(text.to_owned())),
    }
}

#[test]
fn key_rows_become_typed_columns_in_the_order_given() {
    let rows = parse::key_rows(&[
        "driver_id=1001,region=eu".to_owned(),
        "region=s:us,driver_id=i:1002".to_owned(),
        "driver_id=s:1003,region=42".to_owned(),
    ])
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["driver_id", "region"]);
    let columns = rows.columns();
    assert_eq!(
        columns["driver_id"].val,
        [int(1001), int(1002), text("1003")]
    );
    assert_eq!(columns["region"].val, [text("eu"), text("us"), int(42)]);
}

#[test]
fn key_rows_with_different_join_keys_are_refused_with_both_lists() {
    let err = parse::key_rows(&["driver_id=1".to_owned(), "rider_id=2".to_owned()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rider_id") && err.contains("driver_id"),
        "{err}"
    );
    let err = parse::key_rows(&[]).unwrap_err().to_string();
    assert!(err.contains("no entity rows"), "{err}");
}

#[test]
fn entities_json_maps_each_json_type_to_its_value_kind() {
    let rows = parse::entities_json(
        r#"{"id": [1001, -2], "score": [0.5, 2.0], "name": ["a", "b"], "vip": [true, false]}"#,
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    let columns = rows.columns();
    assert_eq!(columns["id"].val, [int(1001), int(-2)]);
    let double = |number: f64| fs::Value {
        val: Some(fs::value::Val::DoubleVal(number)),
    };
    assert_eq!(columns["score"].val, [double(0.5), double(2.0)]);
    assert_eq!(columns["name"].val, [text("a"), text("b")]);
    let boolean = |flag: bool| fs::Value {
        val: Some(fs::value::Val::BoolVal(flag)),
    };
    assert_eq!(columns["vip"].val, [boolean(true), boolean(false)]);
}

#[test]
fn bad_entities_json_says_what_and_where() {
    for (input, expected) in [
        ("not json", "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (r#"{"id": 1}"#, "join key id must map to an array"),
        (r#"{"id": [1, 2], "region": ["eu"]}"#, "one value per row"),
        (r#"{"id": [1, null]}"#, "id[1]"),
        (r#"{"id": [[1]]}"#, "not an entity key value"),
        (r#"{"id": [18446744073709551615]}"#, "64-bit signed integer"),
        (r#"{"id": []}"#, "no entity rows"),
        ("{}", "no entity rows"),
    ] {
        let err = format!("{:#}", parse::entities_json(input).unwrap_err());
        assert!(err.contains(expected), "{input}: {err}");
    }
}

#[test]
fn entities_are_read_from_a_file_after_at() {
    let path =
        std::env::temp_dir().join(format!("plinth-model-entities-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"driver_id": [7]}"#).unwrap();
    let text = parse::read_entities_arg(&format!("@{}", path.display())).unwrap();
    assert_eq!(parse::entities_json(&text).unwrap().len(), 1);
    std::fs::remove_file(&path).unwrap();
    let err = format!(
        "{:#}",
        parse::read_entities_arg(&format!("@{}", path.display())).unwrap_err()
    );
    assert!(err.contains("cannot read the --entities file"), "{err}");
    assert_eq!(parse::read_entities_arg("{}").unwrap(), "{}");
}

fn tensor(name: &str, datatype: &str, shape: &[i64]) -> pb::TensorSpec {
    pb::TensorSpec {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape: shape.to_vec(),
    }
}

fn version(name: &str, state: pb::VersionState, serving: bool, reason: &str) -> pb::ModelVersion {
    pb::ModelVersion {
        version: name.to_owned(),
        state: state.into(),
        reason: reason.to_owned(),
        serving,
    }
}

fn driver_model() -> pb::Model {
    pb::Model {
        name: "driver".to_owned(),
        versions: vec![
            version("v1", pb::VersionState::Ready, false, ""),
            version("v2", pb::VersionState::Ready, true, ""),
            version(
                "v3",
                pb::VersionState::Failed,
                false,
                "reference output differs",
            ),
        ],
        inputs: vec![tensor("input", "FP32", &[-1, 3])],
        outputs: vec![
            tensor("label", "INT64", &[-1]),
            tensor("probabilities", "FP32", &[-1, 2]),
        ],
        feature_service: "driver_model_v1".to_owned(),
        entity_keys: vec!["driver_id".to_owned()],
        features: vec!["driver_hourly:conv_rate".to_owned()],
    }
}

#[test]
fn list_marks_the_serving_version_and_explains_failures() {
    let iris = pb::Model {
        name: "iris".to_owned(),
        versions: vec![version("v1", pb::VersionState::Available, false, "")],
        ..pb::Model::default()
    };
    let text = format::models_text(&[driver_model(), iris], None);
    assert_eq!(
        text,
        "MODEL   VERSIONS                        INPUTS            OUTPUTS                                    FEATURE SERVICE\n\
         driver  v1 ready, v2 ready*, v3 failed  input FP32[-1,3]  label INT64[-1], probabilities FP32[-1,2]  driver_model_v1 (driver_id)\n\
         iris    v1 available                    -                 -                                          -\n\
         * serving: requests that name no version go to it\n\
         driver v3 failed: reference output differs"
    );
    assert!(format::models_text(&[], Some("x")).contains("no model name starts with x"));
    assert!(format::models_text(&[], None).contains("no models in the repository"));
}

#[test]
fn model_json_carries_states_and_signatures() {
    let body = format::models_json(&[driver_model()]);
    assert_eq!(
        body[0]["versions"][1],
        json!({"version": "v2", "state": "ready", "serving": true, "reason": ""})
    );
    assert_eq!(body[0]["versions"][2]["state"], "failed");
    assert_eq!(
        body[0]["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 3]}])
    );
    assert_eq!(body[0]["entity_keys"], json!(["driver_id"]));
}

#[test]
fn load_and_unload_say_what_changed() {
    let text = format::loaded_text(&driver_model(), "v2");
    assert!(
        text.starts_with("loaded driver version v2: it serves requests that name no version"),
        "{text}"
    );
    assert!(text.contains("inputs:  input FP32[-1,3]"), "{text}");
    assert!(
        text.contains("feature service: driver_model_v1 (driver_id)"),
        "{text}"
    );
    assert!(format::loaded_text(&driver_model(), "v1").contains("another version serves"));
    assert_eq!(
        format::unloaded_text("driver", &[]),
        "model driver had no loaded version: nothing unloaded"
    );
    assert_eq!(
        format::unloaded_text("driver", &["v1".to_owned()]),
        "unloaded driver version v1"
    );
    assert_eq!(
        format::unloaded_text("driver", &["v1".to_owned(), "v2".to_owned()]),
        "unloaded driver versions v1, v2"
    );
}

#[test]
fn output_rows_nest_by_shape_and_keep_float32_digits() {
    let contents = InferTensorContents {
        fp32_contents: vec![0.1, 0.2, 0.3, 0.4],
        ..InferTensorContents::default()
    };
    let values = format::contents_json("FP32", &contents);
    assert_eq!(
        format::nest(values.clone(), &[2, 2]),
        json!([[0.1, 0.2], [0.3, 0.4]])
    );
    assert_eq!(
        format::nest(values.clone(), &[4]),
        json!([0.1, 0.2, 0.3, 0.4])
    );
    // A shape that does not match the element count falls back to a flat list.
    assert_eq!(format::nest(values, &[3]), json!([0.1, 0.2, 0.3, 0.4]));
    assert_eq!(format::nest(vec![json!(7)], &[]), json!(7));
    let bytes = InferTensorContents {
        bytes_contents: vec![b"yes".to_vec(), vec![0xff, 0x00]],
        ..InferTensorContents::default()
    };
    assert_eq!(
        format::contents_json("BYTES", &bytes),
        [json!("yes"), json!("0xff00")]
    );
    let unknown = InferTensorContents {
        int64_contents: vec![5],
        ..InferTensorContents::default()
    };
    assert_eq!(format::contents_json("FP16", &unknown), [json!(5)]);
}

fn prediction(
    status: pb::PredictionStatus,
    label: Option<i64>,
    missing: &[&str],
) -> pb::KeyPrediction {
    let outputs = label
        .map(|label| {
            vec![
                pb::PredictionOutput {
                    name: "label".to_owned(),
                    datatype: "INT64".to_owned(),
                    shape: vec![],
                    contents: Some(InferTensorContents {
                        int64_contents: vec![label],
                        ..InferTensorContents::default()
                    }),
                },
                pb::PredictionOutput {
                    name: "probabilities".to_owned(),
                    datatype: "FP32".to_owned(),
                    shape: vec![2],
                    contents: Some(InferTensorContents {
                        fp32_contents: vec![0.25, 0.75],
                        ..InferTensorContents::default()
                    }),
                },
            ]
        })
        .unwrap_or_default();
    pb::KeyPrediction {
        status: status.into(),
        outputs,
        features: [(
            "driver_hourly:conv_rate".to_owned(),
            fs::Value {
                val: Some(fs::value::Val::DoubleVal(0.5)),
            },
        )]
        .into_iter()
        .collect(),
        defaulted_features: Vec::new(),
        missing_features: missing.iter().map(|name| (*name).to_owned()).collect(),
    }
}

#[test]
fn predictions_print_one_row_per_key_with_status_outputs_and_features() {
    let rows = parse::key_rows(&[
        "driver_id=1001".to_owned(),
        "driver_id=1002".to_owned(),
        "driver_id=1003".to_owned(),
    ])
    .unwrap();
    let mut defaulted = prediction(pb::PredictionStatus::Ok, Some(0), &[]);
    defaulted.defaulted_features = vec!["driver_hourly:acc_rate".to_owned()];
    let answer = pb::PredictByKeyResponse {
        model: "driver".to_owned(),
        version: "v1".to_owned(),
        predictions: vec![
            prediction(pb::PredictionStatus::Ok, Some(1), &[]),
            defaulted,
            prediction(
                pb::PredictionStatus::MissingFeatures,
                None,
                &["driver_hourly:conv_rate"],
            ),
        ],
        request_id: "r-1".to_owned(),
    };
    let report = format::predictions(&answer, &rows, true);
    assert!(!report.all_ok);
    assert_eq!(
        report.text,
        "model driver version v1 (request r-1): 2 of 3 keys predicted\n\
         driver_id  STATUS                                     label  probabilities  driver_hourly:conv_rate\n\
         1001       ok                                         1      [0.25,0.75]    0.5\n\
         1002       ok (defaulted: driver_hourly:acc_rate)     0      [0.25,0.75]    0.5\n\
         1003       missing_features: driver_hourly:conv_rate  -      -              0.5"
    );
    assert_eq!(
        report.json["predictions"][0],
        json!({
            "key": {"driver_id": 1001},
            "status": "ok",
            "outputs": {
                "label": {"datatype": "INT64", "shape": [], "value": 1},
                "probabilities": {"datatype": "FP32", "shape": [2], "value": [0.25, 0.75]},
            },
            "defaulted_features": [],
            "missing_features": [],
            "features": {"driver_hourly:conv_rate": 0.5},
        })
    );
    assert_eq!(report.json["predictions"][2]["status"], "missing_features");
    assert_eq!(report.json["request_id"], "r-1");

    let without = format::predictions(&answer, &rows, false);
    let header = without.text.lines().nth(1).unwrap();
    assert_eq!(
        header,
        "driver_id  STATUS                                     label  probabilities"
    );
    assert!(without.json["predictions"][0].get("features").is_none());
}

#[test]
fn every_key_ok_is_a_positive_answer() {
    let rows = parse::key_rows(&["driver_id=s:a".to_owned()]).unwrap();
    let answer = pb::PredictByKeyResponse {
        model: "driver".to_owned(),
        version: "v1".to_owned(),
        predictions: vec![prediction(pb::PredictionStatus::Ok, Some(1), &[])],
        request_id: String::new(),
    };
    let report = format::predictions(&answer, &rows, false);
    assert!(report.all_ok);
    assert!(
        report
            .text
            .starts_with("model driver version v1 (request -): 1 of 1 keys predicted")
    );
    assert_eq!(
        report.json["predictions"][0]["key"],
        json!({"driver_id": "a"})
    );
    let not_found = pb::PredictByKeyResponse {
        predictions: vec![prediction(pb::PredictionStatus::EntityNotFound, None, &[])],
        ..answer
    };
    let report = format::predictions(&not_found, &rows, false);
    assert!(!report.all_ok);
    assert!(report.text.contains("entity_not_found"), "{}", report.text);
}
