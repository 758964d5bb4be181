//! Runs the cases of Confluent's `SchemaDiffTest` (transcribed in
//! `tests/data/confluent-diff-examples.json`, whose `_comment` names the source files) and
//! checks each one exactly as that test does: the ordered list of `KIND path` differences, the
//! STRICT verdict and the LENIENT verdict.

use plinth_schema_compat::{Policy, diff, is_backward_compatible};
use serde_json::Value;

const CASES: &str = include_str!("../data/confluent-diff-examples.json");

fn failure(case: &Value) -> Option<String> {
    let original = &case["original_schema"];
    let update = &case["update_schema"];
    let expected: Vec<&str> = case["changes"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let strict = case["compatible"].as_bool()?;
    let lenient = case
        .get("compatible_lenient")
        .and_then(Value::as_bool)
        .unwrap_or(strict);

    let actual: Vec<String> = diff(original, update, &())
        .iter()
        .map(ToString::to_string)
        .collect();
    let actual_strict = is_backward_compatible(original, update, Policy::Strict, &());
    let actual_lenient = is_backward_compatible(original, update, Policy::Lenient, &());
    if actual == expected && actual_strict == strict && actual_lenient == lenient {
        return None;
    }
    Some(format!(
        "{} / {:?}\n  expected {expected:?} strict={strict} lenient={lenient}\n  actual   \
         {actual:?} strict={actual_strict} lenient={actual_lenient}",
        case["source"].as_str().unwrap_or_default(),
        case["description"].as_str().unwrap_or_default(),
    ))
}

#[test]
fn confluent_diff_examples() {
    let fixture: Value = serde_json::from_str(CASES).expect("the fixture is valid JSON");
    let cases = fixture["cases"].as_array().expect("the fixture has cases");
    assert!(cases.len() > 150, "the fixture lost cases: {}", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(failure).collect();
    println!(
        "{} of {} Confluent diff cases pass",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
