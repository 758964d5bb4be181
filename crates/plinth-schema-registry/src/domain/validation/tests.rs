//! Differential tests: the text fast path must accept exactly the documents `validate(&Value)` accepts.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{CompiledValidator, ResolvedReferences};
use crate::domain::schema::SchemaDraft;

/// SplitMix64: deterministic, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Keys as written in JSON text: some escaped, some equal to others once unescaped.
const KEYS: &[&str] = &[
    r#""a""#,
    r#""b""#,
    r#""c""#,
    r#""foo""#,
    r#""bar""#,
    r#""id""#,
    r#""name""#,
    r#""email""#,
    r#""when""#,
    r#""uuid""#,
    r#""tags""#,
    r#""n""#,
    r#""kind""#,
    r#""x-1""#,
    r#""é""#,
    r#""\u0061""#,
    r#""f\u006fo""#,
    r#""q\"uote""#,
    r#""""#,
    r#""🦀""#,
    r#""\ud83e\udd80""#,
];

const STRINGS: &[&str] = &[
    r#""""#,
    r#""a""#,
    r#""abc""#,
    r#""foo""#,
    r#""bar""#,
    r#""héllo""#,
    r#""h\u00e9llo""#,
    r#""\ud83e\udd80\ud83e\udd80""#,
    r#""🦀🦀🦀""#,
    r#""line\nbreak""#,
    r#""tab\there""#,
    r#""back\\slash""#,
    r#""2026-03-01T12:30:00Z""#,
    r#""2026-03-01T12:30:00+01:00""#,
    r#""2026-13-01T12:30:00Z""#,
    r#""2026-03-01 12:30:00""#,
    r#""user@example.com""#,
    r#""user\u0040example.com""#,
    r#""not an email""#,
    r#""0f8fad5b-d9cb-469f-a165-70867728950e""#,
    r#""0f8fad5b-d9cb-469f-a165-70867728950""#,
    r#""ABC-1234""#,
    r#""abc-1234""#,
    r#""EUR""#,
    r#""USD""#,
    r#""x""#,
    r#""FR""#,
    r#""FRA""#,
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "1.0",
    "1e0",
    "1E2",
    "2",
    "3",
    "-1",
    "0.5",
    "1.5",
    "2.5000",
    "10",
    "99.99",
    "100",
    "100.0",
    "1e2",
    "-7.25",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1e308",
    "5e-324",
    "0.1",
    "0.30000000000000004",
];

fn random_value(random: &mut Random, depth: usize) -> String {
    let choice = if depth >= 4 {
        random.below(5)
    } else {
        random.below(8)
    };
    match choice {
        0 => random.pick(&["null", "true", "false"]).to_owned(),
        1 | 2 => random.pick(NUMBERS).to_owned(),
        3 | 4 => random.pick(STRINGS).to_owned(),
        5 => {
            let len = random.below(5);
            let items: Vec<String> = (0..len).map(|_| random_value(random, depth + 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let len = random.below(6);
            let members: Vec<String> = (0..len)
                .map(|_| {
                    let key = random.pick(KEYS);
                    format!("{key}: {}", random_value(random, depth + 1))
                })
                .collect();
            format!("{{{}}}", members.join(", "))
        }
    }
}

/// Replaces one random sub-value of `value` with a random value.
fn mutate(value: &mut Value, random: &mut Random) {
    let replace = random.below(3) == 0;
    match value {
        Value::Array(items) if !items.is_empty() && !replace => {
            let at = random.below(items.len());
            match random.below(4) {
                0 => {
                    items.remove(at);
                }
                1 => {
                    let copy = items[at].clone();
                    items.push(copy);
                }
                _ => mutate(&mut items[at], random),
            }
        }
        Value::Object(members) if !members.is_empty() && !replace => {
            let keys: Vec<String> = members.keys().cloned().collect();
            let key = &keys[random.below(keys.len())];
            match random.below(5) {
                0 => {
                    members.remove(key);
                }
                1 => {
                    let extra = random.pick(KEYS);
                    let extra: String = serde_json::from_str(extra).unwrap();
                    members.insert(extra, json!(1));
                }
                _ => mutate(members.get_mut(key).unwrap(), random),
            }
        }
        _ => *value = serde_json::from_str(&random_value(random, 3)).unwrap(),
    }
}

fn schemas() -> Vec<(SchemaDraft, Value)> {
    use SchemaDraft::{Draft4, Draft6, Draft7, Draft201909, Draft202012};
    vec![
        (Draft7, json!({})),
        (Draft7, json!(true)),
        (Draft7, json!(false)),
        (Draft7, json!({"type": "object"})),
        (Draft7, json!({"type": "array"})),
        (Draft7, json!({"type": "string"})),
        (Draft7, json!({"type": "number"})),
        (Draft7, json!({"type": "integer"})),
        (Draft4, json!({"type": "integer"})),
        (Draft7, json!({"type": "boolean"})),
        (Draft7, json!({"type": "null"})),
        (Draft7, json!({"type": ["string", "null"]})),
        (
            Draft7,
            json!({"enum": ["foo", 1, 1.5, null, true, [1, "a"], {"a": 1}]}),
        ),
        (
            Draft7,
            json!({"enum": ["EUR", "USD", "h\u{e9}llo", "🦀🦀🦀"]}),
        ),
        (Draft7, json!({"const": 1})),
        (Draft7, json!({"const": {"a": [1, 2.0], "b": null}})),
        (Draft7, json!({"const": "foo"})),
        (Draft7, json!({"required": ["a", "foo"]})),
        (
            Draft7,
            json!({"required": ["a"], "properties": {"a": {"type": "integer"}, "foo": {"type": "string"}}}),
        ),
        (
            Draft7,
            json!({"properties": {"a": {"type": "number"}, "b": {"type": "string"}}, "additionalProperties": false}),
        ),
        (Draft7, json!({"additionalProperties": {"type": "string"}})),
        (
            Draft7,
            json!({"patternProperties": {"^[a-c]$": {"type": "integer"}, "^x-": {"type": "string"}}, "additionalProperties": false}),
        ),
        (Draft7, json!({"propertyNames": {"maxLength": 3}})),
        (Draft7, json!({"propertyNames": {"pattern": "^[a-z]+$"}})),
        (
            Draft7,
            json!({"propertyNames": {"enum": ["a", "b", "foo"]}}),
        ),
        (Draft7, json!({"minProperties": 2, "maxProperties": 3})),
        (Draft7, json!({"items": {"type": "integer"}})),
        (
            Draft7,
            json!({"items": [{"type": "integer"}, {"type": "string"}], "additionalItems": false}),
        ),
        (
            Draft202012,
            json!({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false}),
        ),
        (
            Draft202012,
            json!({"prefixItems": [{"type": "number"}], "items": {"type": "string"}}),
        ),
        (Draft7, json!({"contains": {"type": "string"}})),
        (
            Draft202012,
            json!({"contains": {"type": "integer"}, "minContains": 2, "maxContains": 3}),
        ),
        (Draft7, json!({"minItems": 1, "maxItems": 3})),
        (Draft7, json!({"uniqueItems": true})),
        (
            Draft7,
            json!({"type": "array", "items": {"type": "object"}, "uniqueItems": true}),
        ),
        (Draft7, json!({"minimum": 1, "maximum": 100})),
        (
            Draft7,
            json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1e19}),
        ),
        (
            Draft4,
            json!({"minimum": 1, "exclusiveMinimum": true, "maximum": 100}),
        ),
        (Draft7, json!({"multipleOf": 0.5})),
        (Draft7, json!({"multipleOf": 3})),
        (Draft7, json!({"maximum": 18446744073709551615u64})),
        (
            Draft7,
            json!({"minimum": -9223372036854775808i64, "maximum": 9007199254740992u64}),
        ),
        (Draft7, json!({"minLength": 2, "maxLength": 3})),
        (Draft7, json!({"maxLength": 0})),
        (Draft7, json!({"pattern": "^[A-Z]{3}-[0-9]{4}$"})),
        (Draft7, json!({"pattern": "é|🦀"})),
        (Draft7, json!({"format": "date-time"})),
        (Draft7, json!({"format": "email"})),
        (Draft7, json!({"format": "uuid"})),
        (Draft202012, json!({"format": "uuid"})),
        (
            Draft7,
            json!({"properties": {"when": {"format": "date-time"}, "email": {"format": "email"}, "uuid": {"format": "uuid"}}}),
        ),
        (
            Draft7,
            json!({"allOf": [{"type": "object"}, {"required": ["a"]}]}),
        ),
        (
            Draft7,
            json!({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 2}]}),
        ),
        (
            Draft7,
            json!({"oneOf": [{"type": "number"}, {"type": "integer"}]}),
        ),
        (
            Draft7,
            json!({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}),
        ),
        (Draft7, json!({"not": {"type": "object"}})),
        (Draft7, json!({"not": {"required": ["foo"]}})),
        (
            Draft7,
            json!({"if": {"properties": {"kind": {"const": "foo"}}, "required": ["kind"]}, "then": {"required": ["a"]}, "else": {"required": ["b"]}}),
        ),
        (
            Draft7,
            json!({"if": {"type": "string"}, "then": {"minLength": 3}, "else": {"type": "array"}}),
        ),
        (
            Draft7,
            json!({"definitions": {"pos": {"type": "integer", "minimum": 0}}, "properties": {"a": {"$ref": "#/definitions/pos"}, "tags": {"items": {"$ref": "#/definitions/pos"}}}}),
        ),
        (
            Draft7,
            json!({"definitions": {"node": {"type": "object", "properties": {"a": {"$ref": "#/definitions/node"}, "n": {"type": "number"}}}}, "$ref": "#/definitions/node"}),
        ),
        (
            Draft202012,
            json!({"$defs": {"tree": {"type": ["object", "array", "number"], "items": {"$ref": "#/$defs/tree"}, "additionalProperties": {"$ref": "#/$defs/tree"}}}, "$ref": "#/$defs/tree"}),
        ),
        (
            Draft7,
            json!({"properties": {"a": {"$ref": "common.json#/definitions/pos"}, "foo": {"$ref": "common.json#/definitions/word"}}}),
        ),
        (Draft202012, json!({"$ref": "common.json"})),
        (
            Draft7,
            json!({"dependencies": {"a": ["b"], "foo": {"required": ["bar"]}}}),
        ),
        (Draft201909, json!({"dependentRequired": {"a": ["b", "c"]}})),
        (Draft202012, json!({"dependentRequired": {"foo": ["bar"]}})),
        (
            Draft202012,
            json!({"dependentSchemas": {"a": {"properties": {"b": {"type": "string"}}}}}),
        ),
        (
            Draft202012,
            json!({"properties": {"a": {"type": "integer"}}, "allOf": [{"properties": {"b": true}}], "unevaluatedProperties": false}),
        ),
        (
            Draft202012,
            json!({"anyOf": [{"properties": {"a": true}}, {"properties": {"foo": true}}], "unevaluatedProperties": {"type": "string"}}),
        ),
        (
            Draft202012,
            json!({"prefixItems": [true], "unevaluatedItems": false}),
        ),
        (
            Draft201909,
            json!({"properties": {"a": true}, "unevaluatedProperties": false}),
        ),
        (
            Draft6,
            json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"const": 1.0}}}),
        ),
        (
            Draft4,
            json!({"type": "object", "properties": {"a": {"enum": [1, "a"]}}, "required": ["a"]}),
        ),
        (
            Draft202012,
            json!({"type": "object", "properties": {"é": {"type": "string"}, "🦀": {"type": "integer"}, "q\"uote": {"type": "null"}, "": {"type": "boolean"}}, "additionalProperties": false}),
        ),
        (
            Draft7,
            json!({"properties": {"a": {"type": "string"}, "foo": {"type": "integer"}}, "required": ["a", "foo"]}),
        ),
        (Draft7, order_schema()),
    ]
}

fn references() -> ResolvedReferences {
    let common = json!({
        "definitions": {
            "pos": {"type": "integer", "minimum": 0},
            "word": {"type": "string", "pattern": "^[a-z]+$"}
        },
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/pos"}},
        "required": ["a"]
    });
    ResolvedReferences::from([("common.json".to_owned(), Arc::new(common))])
}

fn order_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
            "customer_id": {"type": "integer", "minimum": 1},
            "created_at": {"type": "string", "format": "date-time"},
            "amount": {"type": "number", "minimum": 0},
            "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "JPY"]},
            "status": {"type": "string", "enum": ["pending", "paid", "shipped", "cancelled"]},
            "email": {"type": "string", "format": "email"},
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                        "quantity": {"type": "integer", "minimum": 1},
                        "unit_price": {"type": "number", "minimum": 0}
                    },
                    "required": ["sku", "quantity", "unit_price"],
                    "additionalProperties": false
                }
            },
            "shipping_address": {
                "type": "object",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string"},
                    "postal_code": {"type": "string"},
                    "country": {"type": "string", "minLength": 2, "maxLength": 2}
                },
                "required": ["street", "city", "postal_code", "country"],
                "additionalProperties": false
            },
            "note": {"type": "string", "maxLength": 2000}
        },
        "required": ["order_id", "customer_id", "created_at", "amount", "currency", "status", "email", "items", "shipping_address"],
        "additionalProperties": false
    })
}

const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];
const STATUSES: [&str; 4] = ["pending", "paid", "shipped", "cancelled"];

/// Roughly 1 KB order documents, as in the data hub benchmark; all valid.
fn order_documents(count: usize) -> Vec<String> {
    let mut random = Random(0x5eed_1e55_c0ff_ee00);
    let filler = "please leave the parcel at the door and ring twice; fragile, keep upright. ";
    (0..count)
        .map(|index| {
            let bits = random.next();
            let items: Vec<Value> = (0..4)
                .map(|item| {
                    json!({
                        "sku": format!("ABC-{:04}", (bits >> (item * 8)) % 10_000),
                        "quantity": 1 + (bits >> (16 + item)) % 5,
                        "unit_price": ((bits >> (24 + item)) % 10_000) as f64 / 100.0,
                    })
                })
                .collect();
            let mut document = json!({
                "order_id": format!("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", bits as u32, (bits >> 32) as u16, (bits >> 48) as u16, index as u16, bits & 0xffff_ffff_ffff),
                "customer_id": 1 + bits % 100_000,
                "created_at": format!("2026-{:02}-{:02}T{:02}:{:02}:{:02}Z", 1 + bits % 12, 1 + (bits >> 8) % 28, (bits >> 16) % 24, (bits >> 24) % 60, (bits >> 32) % 60),
                "amount": ((bits >> 40) % 100_000) as f64 / 100.0,
                "currency": CURRENCIES[(bits >> 4) as usize % 4],
                "status": STATUSES[(bits >> 6) as usize % 4],
                "email": format!("customer{}@example.com", bits % 100_000),
                "items": items,
                "shipping_address": {"street": format!("{} Main Street", 1 + bits % 200), "city": "Lyon", "postal_code": "69001", "country": "FR"},
                "note": "",
            });
            let pad = 1024usize.saturating_sub(document.to_string().len());
            document["note"] = Value::String(filler.chars().cycle().skip(index % filler.len()).take(pad).collect());
            document.to_string()
        })
        .collect()
}

fn hand_documents() -> Vec<String> {
    [
        "null",
        "true",
        "false",
        "0",
        "1",
        "1.0",
        "-1",
        "1e2",
        "100.0",
        "0.5",
        "2.5",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "123456789012345678901234567890",
        r#""""#,
        r#""foo""#,
        r#""h\u00e9llo""#,
        r#""🦀🦀🦀""#,
        r#""\ud83e\udd80\ud83e\udd80\ud83e\udd80""#,
        r#""2026-03-01T12:30:00Z""#,
        r#""2026-02-30T12:30:00Z""#,
        r#""user@example.com""#,
        r#""0f8fad5b-d9cb-469f-a165-70867728950e""#,
        r#""ABC-1234""#,
        "[]",
        "[1]",
        "[1, 1.0]",
        "[1, \"a\"]",
        "[1, \"a\", 2]",
        "[{\"a\": 1}, {\"a\": 1.0}]",
        "[{\"a\": 1, \"b\": 2}, {\"b\": 2, \"a\": 1}]",
        "[[1, 2], [1, 2.0]]",
        "[\"a\", \"\\u0061\"]",
        "[1, 2, 3, 4]",
        "{}",
        r#"{"a": 1}"#,
        r#"{"a": 1.0}"#,
        r#"{"a": -1}"#,
        r#"{"a": "x"}"#,
        r#"{"\u0061": 1}"#,
        r#"{"a": "x", "a": 1}"#,
        r#"{"a": 1, "a": "x"}"#,
        r#"{"a": 1, "\u0061": "x"}"#,
        r#"{"a": 1, "b": 2}"#,
        r#"{"a": 1, "b": "x", "c": 3}"#,
        r#"{"a": 1, "b": 2, "c": 3, "foo": 4}"#,
        r#"{"a": 1, "foo": "bar"}"#,
        r#"{"a": "abc", "foo": 1}"#,
        r#"{"foo": "bar", "bar": 1}"#,
        r#"{"foo": 1}"#,
        r#"{"kind": "foo", "a": 1}"#,
        r#"{"kind": "foo", "b": 1}"#,
        r#"{"kind": "bar", "b": 1}"#,
        r#"{"kind": "f\u006fo"}"#,
        r#"{"x-1": "s", "a": 2}"#,
        r#"{"x-1": 1}"#,
        r#"{"é": "s", "🦀": 1, "q\"uote": null, "": true}"#,
        r#"{"\u00e9": 1}"#,
        r#"{"\ud83e\udd80": 1.0}"#,
        r#"{"\ud83e\udd80": 1.5}"#,
        r#"{"a": {"a": {"a": {"n": 1}}, "n": "x"}}"#,
        r#"{"a": {"a": {"a": {"n": 1}}, "n": 2}}"#,
        r#"{"when": "2026-03-01T12:30:00Z", "email": "a@b.io", "uuid": "0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
        r#"{"when": "yesterday", "email": "a@b.io", "uuid": "0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
        r#"{"when": "2026-03-01T12:30:00Z", "email": "a.b.io", "uuid": "0f8fad5b"}"#,
        r#"{"tags": [1, 2, 3], "a": 0}"#,
        r#"{"tags": [1, -2], "a": 0}"#,
        r#"{"a": 1, "b": [1, {"a": 1}]}"#,
        r#"{"b": null, "a": [1.0, 2]}"#,
        r#"{"a": [1, 2], "b": "x", "b": null}"#,
        r#"{"\u0061": [1, 2e0], "b": null}"#,
        r#"{"a": [1, 2, 3], "b": null}"#,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

fn compile(draft: SchemaDraft, schema: &Value) -> CompiledValidator {
    let validator = CompiledValidator::compile(schema, draft, references())
        .unwrap_or_else(|err| panic!("schema {schema} must compile: {err:?}"));
    assert!(
        validator.text_validator.is_some(),
        "schema {schema} must compile for the text fast path"
    );
    validator
}

/// Asserts both paths agree on `text`; returns whether it is valid JSON and valid.
fn assert_agree(validator: &CompiledValidator, schema: &Value, text: &str) -> Option<bool> {
    let fast = validator.is_valid_text(text);
    match serde_json::from_str::<Value>(text) {
        Ok(document) => {
            let expected = validator.validate(&document).is_empty();
            let fast = fast
                .unwrap_or_else(|err| panic!("`{text}` parses as a Value but not as text: {err}"));
            assert_eq!(fast, expected, "schema {schema}\ndocument {text}");
            Some(expected)
        }
        Err(_) => {
            assert!(
                fast.is_err(),
                "`{text}` is not JSON but the fast path accepted it"
            );
            None
        }
    }
}

fn corpus() -> Vec<String> {
    let mut documents = hand_documents();
    documents.extend(order_documents(8));
    let mut random = Random(42);
    for _ in 0..600 {
        documents.push(random_value(&mut random, 0));
    }
    let seeds: Vec<Value> = documents
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .collect();
    for round in 0..600 {
        let mut value = seeds[round % seeds.len()].clone();
        mutate(&mut value, &mut random);
        if random.below(2) == 0 {
            mutate(&mut value, &mut random);
        }
        documents.push(value.to_string());
    }
    documents
}

#[test]
fn text_path_agrees_with_value_path_on_every_schema_and_document() {
    let documents = corpus();
    let mut checked = 0usize;
    let mut one_sided = Vec::new();
    for (draft, schema) in schemas() {
        let validator = compile(draft, &schema);
        let (mut valid, mut invalid) = (0usize, 0usize);
        for text in &documents {
            match assert_agree(&validator, &schema, text) {
                Some(true) => valid += 1,
                Some(false) => invalid += 1,
                None => {}
            }
            checked += 1;
        }
        if valid == 0 || invalid == 0 {
            one_sided.push(format!(
                "{draft:?} {schema} (valid {valid}, invalid {invalid})"
            ));
        }
    }
    // Each schema must tell documents apart, or the comparison proves little; these cannot.
    assert_eq!(
        one_sided,
        [
            "Draft7 {} (valid 1281, invalid 0)",
            "Draft7 true (valid 1281, invalid 0)",
            "Draft7 false (valid 0, invalid 1281)",
            // `uuid` is not a draft 7 format, so it annotates only.
            "Draft7 {\"format\":\"uuid\"} (valid 1281, invalid 0)",
        ]
    );
    assert!(checked > 50_000, "checked only {checked}");
}

#[test]
fn order_documents_pass_and_mutants_agree() {
    let schema = order_schema();
    let validator = compile(SchemaDraft::Draft7, &schema);
    let documents = order_documents(64);
    let mut random = Random(7);
    let mut invalid = 0;
    for text in &documents {
        assert_eq!(assert_agree(&validator, &schema, text), Some(true));
        for _ in 0..20 {
            let mut value: Value = serde_json::from_str(text).unwrap();
            mutate(&mut value, &mut random);
            if assert_agree(&validator, &schema, &value.to_string()) == Some(false) {
                invalid += 1;
            }
        }
    }
    assert!(invalid > 100, "only {invalid} mutants were invalid");
}

#[test]
fn duplicate_keys_keep_the_last_value_like_serde_json() {
    let schema = json!({"properties": {"a": {"type": "integer"}}});
    let validator = compile(SchemaDraft::Draft7, &schema);
    assert!(validator.is_valid_text(r#"{"a": "x", "a": 1}"#).unwrap());
    assert!(!validator.is_valid_text(r#"{"a": 1, "a": "x"}"#).unwrap());
    assert!(
        !validator
            .is_valid_text(r#"{"a": 1, "\u0061": "x"}"#)
            .unwrap()
    );
    let counted = compile(SchemaDraft::Draft7, &json!({"maxProperties": 1}));
    assert!(counted.is_valid_text(r#"{"a": 1, "a": 2}"#).unwrap());
}

#[test]
fn non_json_text_is_an_error() {
    let validator = compile(SchemaDraft::Draft7, &json!({}));
    for text in [
        "",
        " ",
        "{",
        "[1,]",
        "{\"a\" 1}",
        "{\"a\": 1,}",
        "{'a': 1}",
        "nul",
        "01",
        "1.",
        "NaN",
        "1e400",
        "\"unterminated",
        "\"bad \\x escape\"",
        "\"\\ud800\"",
        "{} {}",
        "[1] x",
        "{1: 2}",
        &"[".repeat(200),
        &format!("{}{}", "[".repeat(200), "]".repeat(200)),
    ] {
        assert!(
            validator.is_valid_text(text).is_err(),
            "`{text}` must be an error"
        );
        assert!(
            serde_json::from_str::<Value>(text).is_err(),
            "`{text}` is JSON after all"
        );
    }
    // Surrounding whitespace is JSON.
    assert!(validator.is_valid_text(" \n{}\t ").unwrap());
}

#[test]
fn fallback_without_text_validator_parses_into_a_value() {
    let mut validator = compile(SchemaDraft::Draft7, &json!({"type": "integer"}));
    validator.text_validator = None;
    assert!(validator.is_valid_text("1").unwrap());
    assert!(!validator.is_valid_text("\"a\"").unwrap());
    assert!(validator.is_valid_text("{").is_err());
}

/// How many of `documents` the one-pass check proves valid, asserting it never proves an invalid one.
fn stream_proven(validator: &CompiledValidator, schema: &Value, documents: &[String]) -> usize {
    let stream = validator
        .stream_validator
        .as_ref()
        .unwrap_or_else(|| panic!("schema {schema} must compile for the one-pass check"));
    let mut proven = 0;
    for text in documents {
        if stream.is_valid(text) {
            let document: Value = serde_json::from_str(text)
                .unwrap_or_else(|err| panic!("one-pass check accepted non-JSON `{text}`: {err}"));
            assert!(
                validator.validate(&document).is_empty(),
                "one-pass check accepted an invalid document\nschema {schema}\ndocument {text}"
            );
            proven += 1;
        }
    }
    proven
}

#[test]
fn one_pass_check_proves_only_valid_documents_and_most_of_them() {
    let documents = corpus();
    let mut compiled = 0;
    let (mut all_proven, mut all_valid) = (0, 0);
    for (draft, schema) in schemas() {
        let validator = compile(draft, &schema);
        if validator.stream_validator.is_none() {
            continue;
        }
        compiled += 1;
        let proven = stream_proven(&validator, &schema, &documents);
        let valid = documents
            .iter()
            .filter(|text| {
                serde_json::from_str::<Value>(text)
                    .is_ok_and(|document| validator.validate(&document).is_empty())
            })
            .count();
        // What it leaves to the full path is the rare case (floats for integers, numbers at a bound,
        // duplicate keys, odd escapes), not the common one.
        assert!(
            valid == 0 || proven > 0,
            "schema {schema}: proved none of {valid} valid documents"
        );
        all_proven += proven;
        all_valid += valid;
    }
    assert!(
        compiled >= 25,
        "only {compiled} schemas compiled for the one-pass check"
    );
    // What it leaves to the full path is the corpus's deliberate oddities (floats for integers,
    // numbers at a bound, lone escapes), not the common case.
    assert!(
        all_proven * 10 >= all_valid * 8,
        "proved {all_proven} of {all_valid} valid documents"
    );
}

#[test]
fn one_pass_check_proves_every_order_and_no_mutant_that_is_invalid() {
    let schema = order_schema();
    let validator = compile(SchemaDraft::Draft7, &schema);
    let documents = order_documents(256);
    assert_eq!(
        stream_proven(&validator, &schema, &documents),
        documents.len()
    );
    let mut random = Random(11);
    let mut mutants = Vec::new();
    for text in &documents {
        for _ in 0..20 {
            let mut value: Value = serde_json::from_str(text).unwrap();
            mutate(&mut value, &mut random);
            mutants.push(value.to_string());
        }
    }
    stream_proven(&validator, &schema, &mutants);
}

#[test]
fn one_pass_check_leaves_other_keywords_to_the_full_path() {
    use SchemaDraft::{Draft4, Draft7, Draft202012};
    for (draft, schema) in [
        (
            Draft7,
            json!({"$ref": "#/definitions/a", "definitions": {"a": {}}}),
        ),
        (Draft7, json!({"allOf": [{"type": "object"}]})),
        (
            Draft7,
            json!({"patternProperties": {"^a": {"type": "integer"}}}),
        ),
        (Draft7, json!({"enum": [1, 2]})),
        (Draft7, json!({"const": {"a": 1}})),
        (Draft7, json!({"multipleOf": 2})),
        (Draft7, json!({"maximum": 18446744073709551615u64})),
        (Draft7, json!({"items": [{"type": "integer"}]})),
        (Draft4, json!({"minimum": 1, "exclusiveMinimum": true})),
        (Draft202012, json!({"unevaluatedProperties": false})),
        (
            Draft7,
            json!({"properties": {"a": {"contentEncoding": "base64"}}}),
        ),
    ] {
        let validator = compile(draft, &schema);
        assert!(
            validator.stream_validator.is_none(),
            "{draft:?} {schema} must be left to the full path"
        );
    }
    let annotated = compile(
        Draft7,
        &json!({"title": "t", "description": "d", "x-owner": "team", "definitions": {"a": {"$ref": "#"}}, "type": "object"}),
    );
    assert!(annotated.stream_validator.is_some());
}

#[test]
fn one_pass_check_reads_escapes_bounds_and_nesting_like_the_full_path() {
    let schema = json!({
        "type": "object",
        "properties": {
            "é": {"type": "string", "enum": ["h\u{e9}llo", "🦀"]},
            "n": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
            "i": {"type": "integer", "minimum": -3},
            "s": {"type": "string", "minLength": 2, "maxLength": 3},
            "deep": {}
        },
        "required": ["é"],
        "additionalProperties": false
    });
    let validator = compile(SchemaDraft::Draft7, &schema);
    let stream = validator.stream_validator.as_ref().unwrap();
    for (text, proven) in [
        (r#"{"\u00e9": "h\u00e9llo"}"#, true),
        (r#"{"é": "\ud83e\udd80"}"#, true),
        (r#"{"é": "🦀", "s": "\ud83e\udd80\ud83e\udd80"}"#, true),
        (r#"{"é": "🦀", "s": "\ud83e"}"#, false),
        (r#"{"é": "🦀", "s": "\udd80ab"}"#, false),
        (r#"{"é": "hello"}"#, false),
        (r#"{"é": "🦀", "n": 10}"#, true),
        (r#"{"é": "🦀", "n": 10.5}"#, false),
        (r#"{"é": "🦀", "n": 0}"#, false),
        (r#"{"é": "🦀", "n": 1e-300}"#, false),
        (r#"{"é": "🦀", "n": 2.5e0}"#, true),
        (r#"{"é": "🦀", "i": -3}"#, true),
        (r#"{"é": "🦀", "i": -4}"#, false),
        (r#"{"é": "🦀", "i": 1.0}"#, false),
        (r#"{"é": "🦀", "i": -0}"#, false),
        (r#"{"é": "🦀", "deep": [[[{"a": [1, "\t\"x\""]}]]]}"#, true),
        (r#"{"é": "🦀", "deep": [1, 2,]}"#, false),
        (r#"{"é": "🦀", "deep": "tab	inside"}"#, false),
        (
            "{\"é\": \"🦀\", \"deep\": \"a long run of plain text, then a control \u{1} character\"}",
            false,
        ),
        (r#"{"é": "🦀", "s": "éé"}"#, true),
        (r#"{"é": "🦀", "s": "🦀🦀🦀🦀"}"#, false),
        (r#"{"é": "🦀", "deep": 01}"#, false),
        (r#"{"é": "🦀"} x"#, false),
        (r#" {"é" : "🦀" } "#, true),
        (r#"{"é": "🦀", "other": 1}"#, false),
    ] {
        assert_eq!(stream.is_valid(text), proven, "{text}");
        assert_agree(&validator, &schema, text);
    }
    let nested = format!(
        r#"{{"é": "🦀", "deep": {}1{}}}"#,
        "[".repeat(150),
        "]".repeat(150)
    );
    assert!(!stream.is_valid(&nested));
}
