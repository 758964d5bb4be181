use serde_json::{Value, json};

use super::*;

/// Asserts the differences Confluent would report, as `"KIND #/path"`, in order.
fn check(original: Value, update: Value, expected: &[&str]) {
    let actual: Vec<String> = diff(&original, &update, &())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(actual, expected, "original {original}\nupdate {update}");
}

fn compatible(original: &Value, update: &Value, policy: Policy) -> bool {
    is_backward_compatible(original, update, policy, &())
}

#[test]
fn identical_schemas_have_no_difference() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    check(schema.clone(), schema, &[]);
}

#[test]
fn optional_property_added_to_open_model_needs_lenient() {
    let original = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let update = json!({"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "integer"}}});
    check(
        original.clone(),
        update.clone(),
        &["OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    );
    assert!(!compatible(&original, &update, Policy::Strict));
    assert!(compatible(&original, &update, Policy::Lenient));
}

#[test]
fn required_property_added_to_open_model_is_refused_even_lenient() {
    let original = json!({"properties": {"a": {"type": "string"}}});
    let update = json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["b"]});
    check(
        original.clone(),
        update.clone(),
        &["REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    );
    assert!(!compatible(&original, &update, Policy::Lenient));

    let with_default = json!({"properties": {"a": {"type": "string"},
        "b": {"type": "string", "default": "x"}}, "required": ["b"]});
    check(
        original.clone(),
        with_default.clone(),
        &["REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    );
    assert!(!compatible(&original, &with_default, Policy::Strict));
    assert!(compatible(&original, &with_default, Policy::Lenient));
}

#[test]
fn property_removed_from_open_model_is_compatible() {
    let original = json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}}});
    let update = json!({"properties": {"a": {"type": "string"}}});
    check(
        original.clone(),
        update.clone(),
        &["PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL #/properties/b"],
    );
    assert!(compatible(&original, &update, Policy::Strict));
}

#[test]
fn property_removed_from_closed_model_needs_lenient() {
    let original = json!({"properties": {"a": {}, "b": {"type": "string"}},
        "additionalProperties": false});
    let update = json!({"properties": {"a": {}}, "additionalProperties": false});
    check(
        original.clone(),
        update.clone(),
        &["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b"],
    );
    assert!(!compatible(&original, &update, Policy::Strict));
    assert!(compatible(&original, &update, Policy::Lenient));
}

#[test]
fn optional_property_added_to_closed_model_is_compatible() {
    let original = json!({"type": "object", "properties": {"a": {"type": "string"}},
        "additionalProperties": false});
    let update = json!({"type": "object", "properties": {"a": {"type": "string"},
        "b": {"type": "number"}}, "additionalProperties": false});
    check(
        original.clone(),
        update.clone(),
        &["OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"],
    );
    assert!(compatible(&original, &update, Policy::Strict));
}

#[test]
fn required_added_without_default_is_incompatible() {
    let closed = json!({"properties": {"a": {"type": "string"}}, "additionalProperties": false});
    let update = json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["b"], "additionalProperties": false});
    check(
        closed.clone(),
        update.clone(),
        &["REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"],
    );
    assert!(!compatible(&closed, &update, Policy::Lenient));

    // An existing property becoming required.
    let original = json!({"properties": {"a": {"type": "string"}}});
    let required = json!({"properties": {"a": {"type": "string"}}, "required": ["a"]});
    check(
        original.clone(),
        required.clone(),
        &["REQUIRED_ATTRIBUTE_ADDED #/required/a"],
    );
    assert!(!compatible(&original, &required, Policy::Strict));
    let defaulted = json!({"properties": {"a": {"type": "string", "default": ""}},
        "required": ["a"]});
    check(
        original,
        defaulted,
        &[
            "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED #/required/a",
            "DEFAULT_CHANGED #/properties/a",
        ],
    );
}

#[test]
fn enum_extended_is_compatible_and_narrowed_is_not() {
    let small = json!({"enum": ["red", "green"]});
    let large = json!({"enum": ["green", "blue", "red"]});
    check(
        small.clone(),
        large.clone(),
        &["ENUM_ARRAY_EXTENDED #/enum"],
    );
    check(
        large.clone(),
        small.clone(),
        &["ENUM_ARRAY_NARROWED #/enum"],
    );
    check(
        small.clone(),
        json!({"enum": ["red", "blue"]}),
        &["ENUM_ARRAY_CHANGED #/enum"],
    );
    assert!(compatible(&small, &large, Policy::Strict));
    assert!(!compatible(&large, &small, Policy::Strict));
}

#[test]
fn type_and_enum_together_form_a_synthetic_all_of() {
    // Confluent's "Detect removed enum": {type, enum} is allOf[enum, string].
    check(
        json!({"type": "string", "enum": ["red"]}),
        json!({"type": "string"}),
        &["PRODUCT_TYPE_NARROWED #/"],
    );
}

#[test]
fn integer_widens_to_number_but_not_back() {
    check(
        json!({"type": "integer"}),
        json!({"type": "number"}),
        &["TYPE_EXTENDED #/"],
    );
    check(
        json!({"type": "number"}),
        json!({"type": "integer"}),
        &["TYPE_NARROWED #/"],
    );
    assert!(!compatible(
        &json!({"type": "number"}),
        &json!({"type": "integer"}),
        Policy::Lenient
    ));
}

#[test]
fn any_of_member_added_is_compatible() {
    let original = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
    let update = json!({"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]});
    check(original.clone(), update.clone(), &["SUM_TYPE_EXTENDED #/"]);
    assert!(!compatible(&update, &original, Policy::Strict));
}

#[test]
fn all_of_member_removed_is_compatible() {
    let original = json!({"allOf": [
        {"properties": {"a": {"type": "string"}}}, {"required": ["a"]}]});
    let update = json!({"allOf": [{"properties": {"a": {"type": "string"}}}]});
    let differences = diff(&original, &update, &());
    assert!(
        differences
            .iter()
            .any(|d| d.kind == DifferenceKind::ProductTypeNarrowed),
        "{differences:?}"
    );
    assert!(compatible(&original, &update, Policy::Strict));
    assert!(!compatible(&update, &original, Policy::Strict));
}

#[test]
fn one_of_member_retyped_is_incompatible() {
    check(
        json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
        json!({"oneOf": [{"type": "string"}, {"type": "boolean"}]}),
        &["COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"],
    );
}

#[test]
fn reference_and_inline_schema_are_equivalent() {
    let inline = json!({"type": "object", "properties": {
        "address": {"type": "object", "properties": {"street": {"type": "string"}}}}});
    let by_reference = json!({"type": "object",
        "definitions": {"Address": {"type": "object",
            "properties": {"street": {"type": "string"}}}},
        "properties": {"address": {"$ref": "#/definitions/Address"}}});
    check(inline.clone(), by_reference.clone(), &[]);
    check(by_reference, inline, &[]);
}

#[test]
fn definitions_are_never_compared_on_their_own() {
    check(
        json!({"type": "string", "definitions": {"x": {"type": "string"}}}),
        json!({"type": "string", "$defs": {"x": {"type": "integer"}}}),
        &[],
    );
}

#[test]
fn recursive_schema_terminates() {
    let tree = json!({"$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"node": {"type": "object", "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}}}},
        "$ref": "#/definitions/node"});
    check(tree.clone(), tree.clone(), &[]);

    let mut widened = tree.clone();
    widened["definitions"]["node"]["properties"]["value"]["type"] = json!("number");
    check(tree.clone(), widened, &["TYPE_EXTENDED #/properties/value"]);

    // A change seen only through the recursion is still found.
    let mut retyped = tree.clone();
    retyped["definitions"]["node"]["properties"]["value"]["type"] = json!("string");
    assert!(!compatible(&tree, &retyped, Policy::Strict));
}

#[test]
fn root_self_reference_terminates() {
    let schema = json!({"type": "object", "properties": {"next": {"$ref": "#"}}});
    check(schema.clone(), schema.clone(), &[]);
    let changed = json!({"type": "object", "properties": {"next": {"$ref": "#"},
        "x": {"type": "string"}}});
    // The cycle is first cut optimistically; the fixpoint pass then feeds the root pair's
    // real differences back in where `next` re-enters it.
    check(
        schema,
        changed,
        &[
            "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/next/properties/x",
            "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/x",
        ],
    );
}

#[test]
fn recursive_one_of_incompatibility_is_not_masked_by_memoization() {
    // Confluent's testRecursiveOneOfMemoizationDoesNotMaskIncompatibility: T0 -> T2 -> T0 is a
    // cycle through singleton oneOfs and the root is oneOf[T0, T1].
    fn schema(t0_id: &str, t1_id: &str) -> Value {
        let object = |id: &str, target: &str| {
            json!({"type": "object", "additionalProperties": true, "properties": {
                "id": {"type": id},
                "ref": {"oneOf": [{"$ref": format!("#/definitions/{target}")}]}}})
        };
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": true,
            "definitions": {"T0": object(t0_id, "T2"), "T1": object(t1_id, "T2"),
                "T2": object("integer", "T0")},
            "properties": {"root": {"oneOf": [
                {"$ref": "#/definitions/T0"}, {"$ref": "#/definitions/T1"}]}}})
    }
    let original = schema("integer", "boolean");
    let update = schema("boolean", "number");
    assert!(!compatible(&original, &update, Policy::Strict));
    check(original.clone(), original, &[]);
}

#[test]
fn external_reference_is_resolved_through_the_resolver() {
    let mut references = std::collections::HashMap::new();
    references.insert(
        "customer.json".to_string(),
        json!({"type": "object", "properties": {"name": {"type": "string"}}}),
    );
    let original = json!({"type": "object", "properties": {
        "customer": {"$ref": "customer.json"}}});
    let update = json!({"type": "object", "properties": {
        "customer": {"type": "object", "properties": {"name": {"type": "integer"}}}}});
    let differences: Vec<String> = diff(&original, &update, &references)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        differences,
        ["TYPE_CHANGED #/properties/customer/properties/name"]
    );
    assert!(is_backward_compatible(
        &original,
        &original,
        Policy::Strict,
        &references
    ));

    // A reference resolved relative to the schema's `$id`, then by name, with a fragment.
    let with_id = json!({"$id": "http://example.com/schemas/order.json", "type": "object",
        "properties": {"customer": {"$ref": "customer.json#/properties/name"}}});
    let inline = json!({"$id": "http://example.com/schemas/order.json", "type": "object",
        "properties": {"customer": {"type": "string"}}});
    let differences = diff(&with_id, &inline, &references);
    assert!(differences.is_empty(), "{differences:?}");
}

#[test]
fn unresolved_reference_is_compared_by_its_text() {
    let original = json!({"properties": {"a": {"$ref": "missing.json"}}});
    check(original.clone(), original.clone(), &[]);
    check(
        original,
        json!({"properties": {"a": {"$ref": "other.json"}}}),
        &["TYPE_CHANGED #/properties/a"],
    );
}

#[test]
fn malformed_schemas_do_not_panic() {
    let shapes = [
        json!(null),
        json!(42),
        json!("string"),
        json!([1, 2]),
        json!({"type": 7}),
        json!({"type": "unknown"}),
        json!({"properties": []}),
        json!({"properties": {"a": 5}}),
        json!({"required": "a", "properties": {"a": {}}}),
        json!({"enum": "x"}),
        json!({"allOf": {}}),
        json!({"items": 3, "additionalItems": "no"}),
        json!({"multipleOf": 0.25}),
        json!({"multipleOf": 0}),
        json!({"patternProperties": {"(unclosed": {"type": "string"}}}),
        json!({"$ref": "#/no/such/place"}),
        json!({"$ref": "#/definitions/a", "definitions": {"a": {"$ref": "#/definitions/a"}}}),
        json!({"$ref": 5}),
        json!({"minLength": "three", "maximum": "ten"}),
        json!({"dependencies": {"a": 1, "b": ["c", 2]}}),
    ];
    for original in &shapes {
        for update in &shapes {
            let _ = diff(original, update, &());
            let _ = incompatibilities(original, update, Policy::Lenient, &());
        }
    }
    check(
        json!({"multipleOf": 0.5}),
        json!({"multipleOf": 0.25}),
        &["MULTIPLE_OF_CHANGED #/multipleOf"],
    );
    check(json!(42), json!("x"), &["TYPE_CHANGED #/"]);
}

#[test]
fn deeply_nested_schemas_do_not_overflow() {
    let mut schema = json!({"type": "string"});
    for _ in 0..2000 {
        // Built by hand: `json!` would re-serialize the whole tree at every level.
        let mut wrapper = serde_json::Map::new();
        wrapper.insert("not".to_string(), schema);
        schema = Value::Object(wrapper);
    }
    let differences = diff(&schema, &schema, &());
    assert!(
        differences
            .iter()
            .all(|d| d.kind == DifferenceKind::NotTypeNarrowed)
    );
    // serde_json drops values recursively; unwind the tree by hand so the test thread's
    // stack is not what is being tested.
    while let Value::Object(mut wrapper) = schema {
        match wrapper.remove("not") {
            Some(inner) => schema = inner,
            None => break,
        }
    }
}

#[test]
fn messages_follow_confluent_format() {
    let difference = Difference {
        kind: DifferenceKind::OptionalPropertyAddedToOpenContentModel,
        path: "#/properties/dname".to_string(),
    };
    assert_eq!(
        difference.message(),
        "{errorType:\"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL\", description:\"The new \
         schema has an open content model and has a property or item at path \
         '#/properties/dname' which is missing in the old schema'}"
    );
    let type_changed = Difference {
        kind: DifferenceKind::TypeChanged,
        path: "#/properties/age".to_string(),
    };
    assert_eq!(
        type_changed.message(),
        "{errorType:\"TYPE_CHANGED\", description:\"A type at path '#/properties/age' is \
         different between the new schema and the old schema'}"
    );
}

#[test]
fn kind_names_round_trip() {
    for &kind in DifferenceKind::ALL {
        assert_eq!(DifferenceKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(DifferenceKind::ALL.len(), 132);
    assert_eq!(Policy::default(), Policy::Strict);
}

#[test]
fn lenient_is_a_superset_of_strict() {
    for &kind in DifferenceKind::ALL {
        if kind.is_compatible(Policy::Strict) {
            assert!(kind.is_compatible(Policy::Lenient), "{kind}");
        }
    }
}

#[test]
fn connect_bytes_schemas_may_change_type() {
    let string = json!({"type": "string", "title": "org.apache.kafka.connect.data.Decimal",
        "connect.version": 1, "connect.type": "bytes", "connect.parameters": {"scale": "2"}});
    let number = json!({"type": "number", "title": "org.apache.kafka.connect.data.Decimal",
        "connect.version": 1, "connect.type": "bytes", "connect.parameters": {"scale": "2"}});
    check(string, number, &[]);
}

#[test]
fn empty_schema_to_empty_object_schema_is_a_change() {
    // Confluent's testSchemaAddsProperties.
    check(json!({}), json!({"properties": {}}), &["TYPE_CHANGED #/"]);
    check(json!({"properties": {}}), json!({}), &[]);
    check(json!(false), json!({"type": "string"}), &[]);
}
