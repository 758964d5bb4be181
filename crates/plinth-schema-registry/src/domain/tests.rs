use serde_json::json;

use super::config::{CompatibilityLevel, Mode};
use super::schema::{SchemaDraft, canonical_json, parse_schema};
use super::validation::CompiledValidator;

fn check_invalid(text: &str, expected_pointer: &str, expected_reason_part: &str) {
    let err = parse_schema(text, SchemaDraft::Draft7).expect_err("schema must be refused");
    assert_eq!(err.pointer, expected_pointer, "pointer for {text}: {err}");
    assert!(
        err.reason.contains(expected_reason_part),
        "reason `{}` lacks `{expected_reason_part}`",
        err.reason
    );
}

#[test]
fn canonical_form_ignores_key_order_and_whitespace() {
    let a = parse_schema(
        r#"{"type": "object", "properties": {"b": {"type":"string"}, "a": {}}}"#,
        SchemaDraft::Draft7,
    )
    .unwrap();
    let b = parse_schema(
        r#"{"properties":{"a":{},"b":{"type":"string"}},"type":"object"}"#,
        SchemaDraft::Draft7,
    )
    .unwrap();
    assert_eq!(a.canonical, b.canonical);
    assert_eq!(
        a.canonical,
        r#"{"properties":{"a":{},"b":{"type":"string"}},"type":"object"}"#
    );
    assert_eq!(
        canonical_json(&json!({"z": [3, {"y": 1, "x": 2}]})),
        r#"{"z":[3,{"x":2,"y":1}]}"#
    );
}

#[test]
fn bad_schemas_are_refused_with_pointer_and_reason() {
    check_invalid("{not json", "", "invalid JSON at line 1");
    check_invalid("[1, 2]", "", "must be a JSON object, got an array");
    check_invalid("\"string\"", "", "must be a JSON object, got a string");
    check_invalid(r#"{"type": "strin"}"#, "/type", "meta-schema");
    check_invalid(
        r#"{"properties": {"a": {"minLength": -1}}}"#,
        "/properties/a/minLength",
        "meta-schema",
    );
    check_invalid(
        r#"{"$schema": "http://example.com/mine"}"#,
        "/$schema",
        "unknown meta-schema",
    );
    check_invalid(
        r##"{"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}}, "$ref": "#/definitions/a"}"##,
        "",
        "`$ref` cycle",
    );
}

#[test]
fn drafts_are_detected_from_dollar_schema() {
    let cases = [
        (
            "http://json-schema.org/draft-04/schema#",
            SchemaDraft::Draft4,
        ),
        (
            "http://json-schema.org/draft-06/schema#",
            SchemaDraft::Draft6,
        ),
        (
            "http://json-schema.org/draft-07/schema#",
            SchemaDraft::Draft7,
        ),
        (
            "https://json-schema.org/draft/2019-09/schema",
            SchemaDraft::Draft201909,
        ),
        (
            "https://json-schema.org/draft/2020-12/schema",
            SchemaDraft::Draft202012,
        ),
    ];
    for (uri, draft) in cases {
        let parsed = parse_schema(
            &json!({"$schema": uri, "type": "object"}).to_string(),
            SchemaDraft::Draft7,
        )
        .unwrap();
        assert_eq!(parsed.draft, draft, "{uri}");
    }
    let parsed = parse_schema(r#"{"type": "object"}"#, SchemaDraft::Draft201909).unwrap();
    assert_eq!(parsed.draft, SchemaDraft::Draft201909);
    // Draft 4's boolean exclusiveMinimum is valid there and invalid in 2020-12.
    let draft4 = json!({"$schema": "http://json-schema.org/draft-04/schema#", "minimum": 1, "exclusiveMinimum": true});
    assert!(parse_schema(&draft4.to_string(), SchemaDraft::Draft7).is_ok());
    let modern = json!({"minimum": 1, "exclusiveMinimum": true});
    assert!(parse_schema(&modern.to_string(), SchemaDraft::Draft202012).is_err());
}

#[test]
fn validator_reports_every_error_with_pointers() {
    let schema = json!({
        "type": "object",
        "properties": {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}},
        "required": ["id"]
    });
    let validator =
        CompiledValidator::compile(&schema, SchemaDraft::Draft7, Default::default()).unwrap();
    assert!(
        validator
            .validate(&json!({"id": 1, "at": "2026-01-01T00:00:00Z"}))
            .is_empty()
    );
    let errors = validator.validate(&json!({"id": "x", "at": "yesterday"}));
    let mut pointers: Vec<_> = errors
        .iter()
        .map(|err| err.instance_path.as_str())
        .collect();
    pointers.sort();
    assert_eq!(pointers, ["/at", "/id"]);
    let missing = validator.validate(&json!({}));
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0].message.contains("\"id\" is a required property"),
        "{}",
        missing[0].message
    );
}

#[test]
fn references_resolve_in_memory_only() {
    let address =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let schema = json!({"type": "object", "properties": {"home": {"$ref": "address.json"}}});
    let mut references = super::validation::ResolvedReferences::new();
    references.insert("address.json".into(), std::sync::Arc::new(address));
    let validator = CompiledValidator::compile(&schema, SchemaDraft::Draft7, references).unwrap();
    assert!(validator.is_valid(&json!({"home": {"city": "Oslo"}})));
    assert!(!validator.is_valid(&json!({"home": {}})));

    let unknown = json!({"properties": {"home": {"$ref": "other.json"}}});
    let err =
        CompiledValidator::compile(&unknown, SchemaDraft::Draft7, Default::default()).unwrap_err();
    assert!(err.reason.contains("other.json"), "{err}");
}

#[test]
fn levels_and_modes_parse_case_insensitively() {
    assert_eq!(
        "backward_transitive".parse::<CompatibilityLevel>().unwrap(),
        CompatibilityLevel::BackwardTransitive
    );
    assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
    assert_eq!("ReadOnly".parse::<Mode>().unwrap(), Mode::ReadOnly);
    assert!("FORWARD".parse::<Mode>().is_err());
}
