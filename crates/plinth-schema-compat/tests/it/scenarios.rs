//! Evolutions a registry sees, checked through the public API only. The first few are the
//! hand-written cases of Confluent's `SchemaDiffTest` and `CircularRefSchemaDiffTest`.

use std::collections::HashMap;

use plinth_schema_compat::{
    DifferenceKind, Policy, diff, diff_with_policy, incompatibilities, is_backward_compatible,
};
use serde_json::{Value, json};

fn kinds(original: &Value, update: &Value) -> Vec<String> {
    diff(original, update, &())
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Confluent's `recursive-schema.json` (`testRecursiveCheck`).
fn recursive_categories() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"categories": {"description": "Test recursive schema.", "type": "array",
            "items": {"$ref": "#/definitions/Category"}}},
        "required": ["categories"],
        "definitions": {"Category": {"description": "Test category", "type": "object",
            "properties": {
                "category_id": {"description": "Some description", "type": "integer"},
                "categories": {"description": "All subcategories within this category.",
                    "type": "array", "items": {"$ref": "#/definitions/Category"}}},
            "required": ["category_id", "categories"]}}
    })
}

#[test]
fn recursive_schema_compared_with_itself_has_no_difference() {
    let schema = recursive_categories();
    assert_eq!(kinds(&schema, &schema), Vec::<String>::new());
}

/// `SchemaDiffTest.recursiveOneOfTradeSchema`: twelve product types, each with two properties
/// that are a `oneOf` over all twelve.
fn recursive_trade(asset_id_type: &str) -> Value {
    let types = [
        "Asset",
        "Basket",
        "Swap",
        "Bond",
        "Option",
        "Future",
        "Forward",
        "Loan",
        "Repo",
        "Equity",
        "Index",
        "CommodityLeg",
    ];
    let union = json!({"oneOf": types.iter()
        .map(|name| json!({"$ref": format!("#/definitions/{name}")}))
        .collect::<Vec<_>>()});
    let mut definitions = serde_json::Map::new();
    for name in types {
        let id_type = if name == "Asset" {
            asset_id_type
        } else {
            "string"
        };
        definitions.insert(
            name.to_string(),
            json!({"type": "object", "properties": {"id": {"type": id_type},
                "underlying": union, "referenceProduct": union}}),
        );
    }
    json!({"$schema": "http://json-schema.org/draft-07/schema#", "title": "Trade",
        "type": "object", "additionalProperties": true, "definitions": definitions,
        "properties": {"tradeId": {"type": "string"}, "product": union}})
}

#[test]
fn recursive_one_of_union_terminates() {
    let original = recursive_trade("string");
    assert_eq!(kinds(&original, &original), Vec::<String>::new());
}

#[test]
fn recursive_one_of_union_detects_a_deep_change() {
    let original = recursive_trade("string");
    let update = recursive_trade("number");
    assert!(!kinds(&original, &update).is_empty());
    assert!(!is_backward_compatible(
        &original,
        &update,
        Policy::Strict,
        &()
    ));
}

/// `CircularRefSchemaDiffTest.circularSchema`: a 2020-12 schema whose types use `$ref` beside
/// other keywords and point back to the union through a `oneOf`.
fn circular(branches: usize, circular_properties: usize) -> Value {
    let mut definitions = serde_json::Map::new();
    definitions.insert(
        "SimpleId".into(),
        json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}),
    );
    definitions.insert(
        "Base".into(),
        json!({"type": "object", "properties": {"name": {"type": "string"}}}),
    );
    definitions.insert(
        "ProductOrId".into(),
        json!({"oneOf": [{"$ref": "#/$defs/SimpleId"}, {"$ref": "#/$defs/Product"}]}),
    );
    for branch in 0..branches {
        let mut properties = serde_json::Map::new();
        for property in 0..circular_properties {
            properties.insert(
                format!("ref{property}"),
                json!({"$ref": "#/$defs/ProductOrId"}),
            );
        }
        properties.insert(
            "tag".into(),
            json!({"type": "string", "const": format!("type{branch}")}),
        );
        definitions.insert(
            format!("Type{branch}"),
            json!({"$ref": "#/$defs/Base", "type": "object", "properties": properties,
                "required": ["ref0", "tag"]}),
        );
    }
    definitions.insert(
        "Product".into(),
        json!({"oneOf": (0..branches)
            .map(|branch| json!({"$ref": format!("#/$defs/Type{branch}")}))
            .collect::<Vec<_>>()}),
    );
    json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": definitions,
        "$ref": "#/$defs/Product"})
}

#[test]
fn circular_references_through_one_of_terminate() {
    for (branches, properties) in [(2, 1), (12, 5)] {
        let schema = circular(branches, properties);
        assert!(
            is_backward_compatible(&schema, &schema, Policy::Strict, &()),
            "{branches} x {properties}"
        );
    }
}

#[test]
fn ref_beside_keywords_applies_both_in_2020_12() {
    let original = circular(2, 1);
    let mut update = original.clone();
    update["$defs"]["Base"]["properties"]["name"]["type"] = json!("integer");
    // The `name` of every branch changed through `Base`, so no branch of the `oneOf`
    // matches any more.
    assert_eq!(
        kinds(&original, &update),
        ["COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"]
    );
    assert!(is_backward_compatible(
        &original,
        &original,
        Policy::Strict,
        &()
    ));
}

#[test]
fn full_compatibility_checks_both_directions() {
    let closed = json!({"type": "object", "properties": {"a": {"type": "string"}},
        "additionalProperties": false});
    let added = json!({"type": "object", "properties": {"a": {"type": "string"},
        "b": {"type": "string"}}, "additionalProperties": false});
    // BACKWARD: the new schema reads old data.
    assert!(is_backward_compatible(&closed, &added, Policy::Strict, &()));
    // FORWARD runs the diff the other way: removing `b` from a closed model.
    assert!(!is_backward_compatible(
        &added,
        &closed,
        Policy::Strict,
        &()
    ));
    assert!(is_backward_compatible(
        &added,
        &closed,
        Policy::Lenient,
        &()
    ));
}

#[test]
fn incompatibilities_carry_confluent_messages() {
    let original = json!({"type": "object", "properties": {"age": {"type": "integer"}}});
    let update = json!({"type": "object", "properties": {"age": {"type": "string"},
        "name": {"type": "string"}}});
    let rejected = incompatibilities(&original, &update, Policy::Strict, &());
    let messages: Vec<String> = rejected.iter().map(|d| d.message()).collect();
    // In Confluent's order: property names as a Java HashSet iterates them.
    assert_eq!(
        messages,
        [
            "{errorType:\"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL\", description:\"The new \
             schema has an open content model and has a property or item at path \
             '#/properties/name' which is missing in the old schema'}",
            "{errorType:\"TYPE_CHANGED\", description:\"A type at path '#/properties/age' is \
             different between the new schema and the old schema'}",
        ]
    );
    let lenient = incompatibilities(&original, &update, Policy::Lenient, &());
    assert_eq!(lenient.len(), 1);
    assert_eq!(lenient[0].kind, DifferenceKind::TypeChanged);
    assert_eq!(lenient[0].kind.name(), "TYPE_CHANGED");
}

#[test]
fn references_inside_an_external_document_resolve_against_it() {
    let mut registered = HashMap::new();
    registered.insert(
        "address.json".to_string(),
        json!({"definitions": {"Street": {"type": "string", "maxLength": 40}},
            "type": "object", "properties": {"street": {"$ref": "#/definitions/Street"}}}),
    );
    // The update inlines the referenced document with a looser bound.
    let original = json!({"type": "object", "properties": {"home": {"$ref": "address.json"}}});
    let update = json!({"type": "object", "properties": {"home": {"type": "object",
        "properties": {"street": {"type": "string", "maxLength": 80}}}}});
    let differences: Vec<String> = diff(&original, &update, &registered)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        differences,
        ["MAX_LENGTH_INCREASED #/properties/home/properties/street/maxLength"]
    );
    // Without the reference the `$ref` stays unresolved and differs from any inline schema.
    assert!(!is_backward_compatible(
        &original,
        &update,
        Policy::Strict,
        &()
    ));
}

#[test]
fn id_relative_and_anchor_references_resolve() {
    let original = json!({"$id": "https://example.com/root.json",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"name": {"$id": "#name", "type": "string"},
            "nested": {"$id": "https://example.com/nested/thing.json",
                "definitions": {"n": {"type": "integer"}},
                "type": "object", "properties": {"n": {"$ref": "#/definitions/n"}}}},
        "type": "object",
        "properties": {"label": {"$ref": "#name"},
            "thing": {"$ref": "nested/thing.json"}}});
    let update = json!({"$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://example.com/root.json", "type": "object",
        "properties": {"label": {"type": "string"},
            "thing": {"$id": "https://example.com/nested/thing.json",
                "type": "object", "properties": {"n": {"type": "number"}}}}});
    // `"$id": "#name"` is the anchor's identifier, and everit reports it as the schema's id.
    assert_eq!(
        kinds(&original, &update),
        [
            "ID_CHANGED #/properties/label",
            "TYPE_EXTENDED #/properties/thing/properties/n"
        ]
    );
}

#[test]
fn lenient_policy_changes_which_sub_schemas_match() {
    // A oneOf member that only matches once an optional property may be added.
    let original = json!({"properties": {"a": {"type": "string"}}});
    let update = json!({"oneOf": [{"type": "integer"},
        {"properties": {"a": {"type": "string"}, "b": {"type": "string"}}}]});
    assert!(!is_backward_compatible(
        &original,
        &update,
        Policy::Strict,
        &()
    ));
    assert!(is_backward_compatible(
        &original,
        &update,
        Policy::Lenient,
        &()
    ));
    let lenient: Vec<String> = diff_with_policy(&original, &update, Policy::Lenient, &())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lenient,
        [
            "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b",
            "SUM_TYPE_EXTENDED #/"
        ]
    );
}

#[test]
fn unevaluated_properties_follow_additional_properties_rules() {
    let schema = "https://json-schema.org/draft/2020-12/schema";
    let open = json!({"$schema": schema, "properties": {"a": {"type": "string"}}});
    let closed = json!({"$schema": schema, "properties": {"a": {"type": "string"}},
        "unevaluatedProperties": false});
    assert_eq!(
        kinds(&open, &closed),
        ["UNEVALUATED_PROPERTIES_REMOVED #/unevaluatedProperties"]
    );
    assert!(is_backward_compatible(&open, &closed, Policy::Lenient, &()));
    assert_eq!(
        kinds(&closed, &open),
        ["UNEVALUATED_PROPERTIES_ADDED #/unevaluatedProperties"]
    );
    // A schema-valued unevaluatedProperties makes the model partially open.
    let partial = json!({"$schema": schema, "properties": {"a": {"type": "string"}},
        "unevaluatedProperties": {"type": "string"}});
    let with_b = json!({"$schema": schema, "properties": {"a": {"type": "string"},
        "b": {"type": "string"}}, "unevaluatedProperties": {"type": "string"}});
    assert_eq!(
        kinds(&partial, &with_b),
        [
            "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/b",
            "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"
        ]
    );
}

#[test]
fn contains_bounds_are_compared() {
    let original = json!({"type": "array", "contains": {"type": "string"}, "maxContains": 2});
    let update = json!({"type": "array", "contains": {"type": "string"}, "maxContains": 1,
        "minContains": 1});
    assert_eq!(
        kinds(&original, &update),
        [
            "MAX_CONTAINS_DECREASED #/maxContains",
            "MIN_CONTAINS_ADDED #/minContains"
        ]
    );
}
