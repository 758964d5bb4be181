use std::time::Duration;

use super::*;
use crate::tensor::TensorData;

const IRIS: &str = "\
platform: onnx
artifact: model.onnx
inputs:
  - {name: input, datatype: FP32, shape: [-1, 4]}
outputs:
  - {name: label, datatype: INT64, shape: [-1]}
  - {name: probabilities, datatype: FP32, shape: [-1, 3]}
reference:
  inputs: {input: [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2]]}
  outputs: {label: [0, 0], probabilities: [[0.98, 0.02, 0.0], [0.97, 0.03, 0.0]]}
  tolerance: 0.01
";

/// Parses `text` and returns the messages, `path:line:column: message`.
fn errors(text: &str) -> Vec<String> {
    match parse("m/v1/model.yaml", text) {
        Ok(spec) => panic!("expected errors, parsed {spec:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts that one error contains every part of `expected`.
#[track_caller]
fn check_error(text: &str, expected: &[&str]) {
    let errors = errors(text);
    assert!(
        errors
            .iter()
            .any(|error| expected.iter().all(|part| error.contains(part))),
        "no error contains {expected:?}: {errors:#?}"
    );
}

#[test]
fn parses_a_full_spec() {
    let text = format!(
        "{IRIS}features:
  service: iris_v1
  entities: [flower_id]
  names: [f:a, f:b, f:c, f:d]
  defaults: {{f:b: 0.5, f:c: true}}
batching:
  max_batch_size: 32
  max_delay: 500us
"
    );
    let spec = parse("iris/v1/model.yaml", &text).expect("valid");
    assert_eq!(spec.platform, "onnx");
    assert_eq!(spec.artifact, "model.onnx");
    assert_eq!(
        spec.inputs,
        vec![TensorSpec {
            name: "input".into(),
            datatype: DataType::Fp32,
            shape: vec![-1, 4]
        }]
    );
    assert_eq!(spec.outputs[1].shape, vec![-1, 3]);
    let features = spec.features.as_ref().expect("features");
    assert_eq!(features.input, "input");
    assert_eq!(features.entities, vec!["flower_id"]);
    assert_eq!(features.defaults.get("f:b"), Some(&0.5));
    assert_eq!(features.defaults.get("f:c"), Some(&1.0));
    let reference = spec.reference.as_ref().expect("reference");
    assert_eq!(reference.tolerance, 0.01);
    assert_eq!(reference.inputs[0].shape, vec![2, 4]);
    assert_eq!(
        reference.inputs[0].data,
        TensorData::Fp32(vec![5.1, 3.5, 1.4, 0.2, 4.9, 3.0, 1.4, 0.2])
    );
    assert_eq!(reference.outputs[0].data, TensorData::Int64(vec![0, 0]));
    assert_eq!(reference.outputs[1].shape, vec![2, 3]);
    assert_eq!(spec.batching.max_batch_size, 32);
    assert_eq!(spec.batching.max_delay, Duration::from_micros(500));
    assert!(spec.batchable());
}

#[test]
fn defaults_apply() {
    let spec = parse(
        "m.yaml",
        "inputs: [{name: x, datatype: BYTES, shape: [2]}]\noutputs: [{name: y, datatype: BOOL, shape: [2]}]\n",
    )
    .expect("valid");
    assert_eq!(spec.platform, "onnx");
    assert_eq!(spec.artifact, "model.onnx");
    assert_eq!(spec.batching, Batching::default());
    assert_eq!(spec.reference, None);
    assert_eq!(spec.features, None);
    // A fixed first dimension is never batched.
    assert!(!spec.batchable());
}

#[test]
fn reference_tensors_of_every_type() {
    let text = "\
inputs:
  - {name: b, datatype: BOOL, shape: [-1, 1]}
  - {name: i32, datatype: INT32, shape: [-1, 2]}
  - {name: s, datatype: BYTES, shape: [-1]}
  - {name: f64, datatype: FP64, shape: [-1, 2]}
outputs:
  - {name: sum, datatype: FP64, shape: [-1]}
reference:
  inputs: {b: [[true], [false]], i32: [[1, -2], [3, 4]], s: [hello, \"w\"], f64: [[0.5, 1], [2, .nan]]}
  outputs: {sum: [1.5, 6]}
";
    let spec = parse("m.yaml", text).expect("valid");
    let reference = spec.reference.expect("reference");
    assert_eq!(
        reference.inputs[0].data,
        TensorData::Bool(vec![true, false])
    );
    assert_eq!(
        reference.inputs[1].data,
        TensorData::Int32(vec![1, -2, 3, 4])
    );
    assert_eq!(
        reference.inputs[2].data,
        TensorData::Bytes(vec![b"hello".to_vec(), b"w".to_vec()])
    );
    assert_eq!(reference.inputs[2].shape, vec![2]);
    let TensorData::Fp64(values) = &reference.inputs[3].data else {
        panic!("FP64 expected");
    };
    assert_eq!(values[..3], [0.5, 1.0, 2.0]);
    assert!(values[3].is_nan());
    assert_eq!(reference.tolerance, DEFAULT_TOLERANCE);
}

#[test]
fn unknown_keys_name_the_nearest() {
    check_error(
        &IRIS.replace("artifact:", "artefact:"),
        &[
            "m/v1/model.yaml:2:1",
            "unknown key `artefact`",
            "did you mean `artifact`",
        ],
    );
    check_error(
        &IRIS.replace("shape: [-1, 4]", "shape: [-1, 4], shap: 1"),
        &["unknown key `shap`", "did you mean `shape`"],
    );
}

#[test]
fn bad_datatypes_and_shapes() {
    check_error(
        &IRIS.replace(
            "datatype: FP32, shape: [-1, 4]",
            "datatype: FLOAT, shape: [-1, 4]",
        ),
        &["m/v1/model.yaml:4:", "`FLOAT`", "did you mean FP32"],
    );
    check_error(
        &IRIS.replace(
            "datatype: FP32, shape: [-1, 4]",
            "datatype: FP23, shape: [-1, 4]",
        ),
        &["did you mean FP32", "BOOL, INT32, INT64, FP32, FP64, BYTES"],
    );
    check_error(
        &IRIS.replace("shape: [-1, 4]", "shape: [-1, 0]"),
        &["dimension 0", "-1 (variable)"],
    );
    check_error(&IRIS.replace("shape: [-1, 4]", "shape: []"), &["is empty"]);
    check_error(
        &IRIS.replace("shape: [-1, 4]", "shape: [a]"),
        &["whole number"],
    );
}

#[test]
fn reports_every_mistake_at_once() {
    let text = IRIS
        .replace(
            "datatype: FP32, shape: [-1, 4]",
            "datatype: FP3, shape: [-1, x]",
        )
        .replace("platform: onnx", "platform: tf")
        .replace("tolerance: 0.01", "tolerance: -1");
    let errors = errors(&text);
    assert!(errors.len() >= 4, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|error| error.contains("m/v1/model.yaml:1:11"))
    );
}

#[test]
fn missing_and_duplicate_tensors() {
    check_error(
        "inputs: [{name: x, datatype: FP32, shape: [-1]}]\n",
        &["missing the required field `outputs`"],
    );
    check_error(
        "inputs: []\noutputs: [{name: y, datatype: FP32, shape: [-1]}]\n",
        &["`inputs` is empty"],
    );
    check_error(
        "inputs:\n  - {name: x, datatype: FP32, shape: [-1]}\n  - {name: x, datatype: FP32, shape: [-1]}\noutputs: [{name: y, datatype: FP32, shape: [-1]}]\n",
        &[":3:5", "declares `x` twice"],
    );
    check_error(
        "inputs: [{datatype: FP32, shape: [-1]}]\noutputs: [{name: y, datatype: FP32, shape: [-1]}]\n",
        &["missing the required field `name`"],
    );
}

#[test]
fn reference_checked_against_declared_shapes() {
    check_error(
        &IRIS.replace(
            "[[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2]]",
            "[[5.1, 3.5, 1.4], [4.9, 3.0, 1.4]]",
        ),
        &["`reference.inputs.input` has 3 items at level 2", "[-1, 4]"],
    );
    check_error(
        &IRIS.replace(
            "[[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2]]",
            "[[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4]]",
        ),
        &["ragged"],
    );
    check_error(
        &IRIS.replace(
            "[[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2]]",
            "[5.1, 3.5, 1.4, 0.2]",
        ),
        &["must nest 2 lists"],
    );
    check_error(
        &IRIS.replace("label: [0, 0]", "label: [0, 0.5]"),
        &["where a whole number goes"],
    );
    check_error(
        &IRIS.replace("label: [0, 0]", "labels: [0, 0]"),
        &["`labels`, which is not declared", "did you mean `label`"],
    );
    check_error(
        &IRIS.replace("inputs: {input:", "inputs: {inputs:"),
        &["has no value for `input`"],
    );
    check_error(
        &IRIS.replace(
            "  outputs: {label: [0, 0], probabilities: [[0.98, 0.02, 0.0], [0.97, 0.03, 0.0]]}\n",
            "",
        ),
        &["missing the required field `outputs`"],
    );
}

#[test]
fn features_checked_against_the_input() {
    let features = |block: &str| format!("{IRIS}features:\n{block}");
    check_error(
        &features("  entities: [id]\n  names: [f:a, f:b, f:c]\n"),
        &["input `input` has the shape [-1, 4], but 3 features fill it"],
    );
    check_error(
        &features("  entities: [id]\n  input: inpt\n  names: [f:a, f:b, f:c, f:d]\n"),
        &["`inpt`, which is not an input", "did you mean `input`"],
    );
    check_error(
        &features("  entities: [id]\n  names: [f:a, f:b, f:c, f:d]\n  defaults: {f:e: 1}\n"),
        &["default for `f:e`, which `features.names` does not list"],
    );
    check_error(
        &features("  entities: [id]\n  names: [f:a, f:b, f:c, d]\n"),
        &["feature `d` has no view"],
    );
    check_error(
        &features("  names: [f:a, f:b, f:c, f:d]\n"),
        &["missing the required field `entities`"],
    );
    check_error(
        "inputs: [{name: s, datatype: BYTES, shape: [-1, 1]}]\noutputs: [{name: y, datatype: FP32, shape: [-1]}]\nfeatures: {entities: [id], names: [f:a]}\n",
        &["input `s` is BYTES; features fill numeric inputs only"],
    );
}

#[test]
fn batching_durations() {
    let batching = |block: &str| format!("{IRIS}batching:\n{block}");
    let spec = parse(
        "m.yaml",
        &batching("  max_batch_size: 0\n  max_delay: 2.5ms\n"),
    )
    .expect("valid");
    assert_eq!(spec.batching.max_delay, Duration::from_micros(2500));
    assert!(!spec.batchable());
    let spec = parse("m.yaml", &batching("  max_delay: 0\n")).expect("valid");
    assert_eq!(spec.batching.max_delay, Duration::ZERO);
    check_error(&batching("  max_delay: 1\n"), &["has no unit", "1ms"]);
    check_error(&batching("  max_delay: 1m\n"), &["`1m`", "us, ms, s"]);
    check_error(&batching("  max_delay: 2s\n"), &["at most 1s"]);
    check_error(&batching("  max_batch_size: -3\n"), &["from 0 to 65536"]);
}

#[test]
fn syntax_errors_and_empty_files() {
    check_error("inputs: [\n", &["invalid YAML"]);
    check_error("", &["model.yaml is empty"]);
    check_error("a: 1\n---\nb: 2\n", &["more than one document"]);
}
