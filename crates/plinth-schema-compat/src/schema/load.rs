//! Builds the [`Arena`] from JSON the way everit's `SchemaLoader.loadSchemaObject` does.
//!
//! Keyword groups are extracted in everit's order (`enum`, `allOf`/`anyOf`/`oneOf`, `not`,
//! `const`, `type`, then the type keywords left over are "sniffed"); more than one group makes
//! a synthetic `allOf`. A keyword a group reads is consumed, so `{"type": "string",
//! "maxLength": 3}` is one string schema, while `{"type": "string", "properties": {}}` is a
//! string schema and a sniffed object schema under an `allOf`. Values of the wrong JSON type
//! are skipped as if absent, and a node that is not a schema at all becomes [`Kind::Invalid`].

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::keywords::{
    CONDITIONAL_KEYWORDS, NUMBER_KEYWORDS, STRING_KEYWORDS, array_keywords, object_keywords,
    type_keywords,
};
use super::resolve::{Documents, Draft, escape_token};
use super::{
    Additional, Arena, ArraySchema, CombinedSchema, Common, Criterion, Kind, Node, NodeId,
    NumberSchema, ObjectSchema, PatternProperty, StringSchema,
};
use crate::ReferenceResolver;

/// Nesting below this depth is not a schema we compare: the node becomes [`Kind::Invalid`].
pub(super) const MAX_DEPTH: usize = 128;

/// Parses both schemas (and whatever they reference) into one arena.
pub(crate) fn load_pair<'a>(
    original: &'a Value,
    update: &'a Value,
    resolver: &'a dyn ReferenceResolver,
) -> (Arena, NodeId, NodeId) {
    let mut loader = Loader {
        documents: Documents::new(resolver),
        arena: Arena::default(),
        by_location: HashMap::new(),
    };
    let original_doc = loader.documents.add(original, "");
    let update_doc = loader.documents.add(update, "");
    let original_root = loader.load(original_doc, String::new(), 0);
    let update_root = loader.load(update_doc, String::new(), 0);
    (loader.arena, original_root, update_root)
}

struct Loader<'a> {
    documents: Documents<'a>,
    arena: Arena,
    /// One node per location, so every `$ref` to a place shares the node there.
    by_location: HashMap<(usize, String), NodeId>,
}

impl<'a> Loader<'a> {
    /// The node at `pointer` of `doc`, built on first use. The id is reserved before building
    /// so that a `$ref` back to an enclosing schema finds it and recursion ends.
    fn load(&mut self, doc: usize, pointer: String, depth: usize) -> NodeId {
        if let Some(&id) = self.by_location.get(&(doc, pointer.clone())) {
            return id;
        }
        let id = self.arena.push(Node::default());
        self.by_location.insert((doc, pointer.clone()), id);
        let root: &'a Value = self.documents.get(doc).root;
        let node = match root.pointer(&pointer) {
            Some(value) if depth <= MAX_DEPTH => self.build(doc, &pointer, value, depth),
            Some(value) => invalid(value),
            None => invalid(&Value::Null),
        };
        self.arena.set(id, node);
        id
    }

    fn child(&mut self, doc: usize, pointer: &str, key: &str, depth: usize) -> NodeId {
        self.load(doc, format!("{pointer}/{}", escape_token(key)), depth + 1)
    }

    fn grandchild(
        &mut self,
        doc: usize,
        pointer: &str,
        key: &str,
        inner: &str,
        depth: usize,
    ) -> NodeId {
        let pointer = format!("{pointer}/{}/{}", escape_token(key), escape_token(inner));
        self.load(doc, pointer, depth + 1)
    }

    fn build(&mut self, doc: usize, pointer: &str, value: &'a Value, depth: usize) -> Node {
        match value {
            Value::Bool(true) => kind_only(Kind::True),
            Value::Bool(false) => kind_only(Kind::False),
            Value::Object(object) => self.build_object(doc, pointer, object, depth),
            other => invalid(other),
        }
    }

    fn build_object(
        &mut self,
        doc: usize,
        pointer: &str,
        object: &'a Map<String, Value>,
        depth: usize,
    ) -> Node {
        let common = self.common(doc, object);
        let Some(reference) = object.get("$ref").and_then(Value::as_str) else {
            let kind = self.build_keywords(doc, pointer, object, depth);
            return Node { common, kind };
        };
        let target = self
            .documents
            .locate(doc, pointer, reference)
            .map(|(target_doc, target_pointer)| self.load(target_doc, target_pointer, depth + 1));
        let reference_kind = Kind::Reference {
            reference: reference.to_string(),
            target,
        };
        if self.documents.get(doc).draft.is_modern() {
            // From 2019-09 `$ref` applies beside its siblings; Confluent's translator makes the
            // pair an `allOf`. Draft-07 and older ignore the siblings, as everit does.
            let rest = self.build_keywords(doc, pointer, object, depth);
            if !matches!(rest, Kind::Empty) {
                let reference_id = self.arena.push(kind_only(reference_kind));
                let rest_id = self.arena.push(kind_only(rest));
                let kind = Kind::Combined(CombinedSchema {
                    criterion: Criterion::AllOf,
                    subschemas: vec![reference_id, rest_id],
                });
                return Node { common, kind };
            }
        }
        Node {
            common,
            kind: reference_kind,
        }
    }

    fn common(&self, doc: usize, object: &Map<String, Value>) -> Common {
        let document = self.documents.get(doc);
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let number = |key: &str| object.get(key).and_then(Value::as_f64);
        Common {
            // Confluent's 2019-09/2020-12 test data expect `$id` changes to go unreported.
            id: if document.draft.is_modern() {
                None
            } else {
                document.id_of(object).map(str::to_string)
            },
            title: text("title"),
            description: text("description"),
            default: object.get("default").cloned(),
            connect_type: text("connect.type"),
            max_contains: number("maxContains"),
            min_contains: number("minContains"),
        }
    }

    /// Runs everit's extractors over the keywords of `object` (ignoring `$ref`).
    fn build_keywords(
        &mut self,
        doc: usize,
        pointer: &str,
        object: &'a Map<String, Value>,
        depth: usize,
    ) -> Kind {
        let draft = self.documents.get(doc).draft;
        let mut consumed: HashSet<&str> = HashSet::new();
        let mut kinds: Vec<Kind> = Vec::new();

        if let Some(Value::Array(values)) = object.get("enum") {
            kinds.push(Kind::Enum(values.clone()));
        }
        for criterion in [Criterion::AllOf, Criterion::AnyOf, Criterion::OneOf] {
            let keyword = criterion.keyword();
            if let Some(Value::Array(members)) = object.get(keyword) {
                let subschemas = (0..members.len())
                    .map(|index| self.grandchild(doc, pointer, keyword, &index.to_string(), depth))
                    .collect();
                kinds.push(Kind::Combined(CombinedSchema {
                    criterion,
                    subschemas,
                }));
            }
        }
        if object.contains_key("not") {
            kinds.push(Kind::Not(self.child(doc, pointer, "not", depth)));
        }
        if draft >= Draft::Draft6
            && let Some(value) = object.get("const")
        {
            kinds.push(Kind::Const(value.clone()));
        }
        match object.get("type") {
            Some(Value::String(type_name)) => {
                if let Some(kind) = self.explicit_type(doc, pointer, object, type_name, depth) {
                    consumed.extend(type_keywords(type_name, draft));
                    kinds.push(kind);
                }
            }
            Some(Value::Array(type_names)) => {
                let mut members = Vec::new();
                for type_name in type_names.iter().filter_map(Value::as_str) {
                    if let Some(kind) = self.explicit_type(doc, pointer, object, type_name, depth) {
                        consumed.extend(type_keywords(type_name, draft));
                        members.push(self.arena.push(kind_only(kind)));
                    }
                }
                if !members.is_empty() {
                    kinds.push(Kind::Combined(CombinedSchema {
                        criterion: Criterion::AnyOf,
                        subschemas: members,
                    }));
                }
            }
            _ => {}
        }

        // Confluent's 2019-09/2020-12 loader drops an empty `properties`: `{"properties": {}}`
        // is an empty schema there, an object schema in older drafts.
        let ignored = |keyword: &str| {
            draft.is_modern()
                && keyword == "properties"
                && object
                    .get(keyword)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
        };
        let sniffed = |group: &[&str]| {
            group.iter().any(|keyword| {
                !consumed.contains(keyword) && object.contains_key(*keyword) && !ignored(keyword)
            })
        };
        let sniff_array = sniffed(array_keywords(draft));
        let sniff_object = sniffed(object_keywords(draft));
        let sniff_number = sniffed(NUMBER_KEYWORDS);
        let sniff_string = sniffed(STRING_KEYWORDS);
        let sniff_conditional = draft >= Draft::Draft7 && sniffed(CONDITIONAL_KEYWORDS);
        if sniff_array {
            kinds.push(Kind::Array(Box::new(
                self.array_schema(doc, pointer, object, depth),
            )));
        }
        if sniff_object {
            kinds.push(Kind::Object(Box::new(
                self.object_schema(doc, pointer, object, depth),
            )));
        }
        if sniff_number {
            kinds.push(Kind::Number(number_schema(object, false)));
        }
        if sniff_string {
            kinds.push(Kind::String(string_schema(object)));
        }
        if sniff_conditional {
            kinds.push(Kind::Conditional);
        }

        match kinds.len() {
            0 => Kind::Empty,
            1 => kinds.pop().unwrap_or_default(),
            _ => Kind::Combined(CombinedSchema {
                criterion: Criterion::AllOf,
                subschemas: kinds
                    .into_iter()
                    .map(|kind| self.arena.push(kind_only(kind)))
                    .collect(),
            }),
        }
    }

    /// everit's `loadForExplicitType`; `None` for a type name it does not know.
    fn explicit_type(
        &mut self,
        doc: usize,
        pointer: &str,
        object: &'a Map<String, Value>,
        type_name: &str,
        depth: usize,
    ) -> Option<Kind> {
        let kind = match type_name {
            "string" => Kind::String(string_schema(object)),
            "integer" => Kind::Number(number_schema(object, true)),
            "number" => Kind::Number(number_schema(object, false)),
            "boolean" => Kind::Boolean,
            "null" => Kind::Null,
            "object" => Kind::Object(Box::new(self.object_schema(doc, pointer, object, depth))),
            "array" => Kind::Array(Box::new(self.array_schema(doc, pointer, object, depth))),
            _ => return None,
        };
        Some(kind)
    }

    fn object_schema(
        &mut self,
        doc: usize,
        pointer: &str,
        object: &'a Map<String, Value>,
        depth: usize,
    ) -> ObjectSchema {
        let draft = self.documents.get(doc).draft;
        let mut schema = ObjectSchema {
            required: strings(object.get("required")),
            additional_properties: self.additional(
                doc,
                pointer,
                object,
                "additionalProperties",
                depth,
            ),
            min_properties: integer(object.get("minProperties")),
            max_properties: integer(object.get("maxProperties")),
            ..ObjectSchema::default()
        };
        if let Some(Value::Object(properties)) = object.get("properties") {
            for name in properties.keys() {
                let id = self.grandchild(doc, pointer, "properties", name, depth);
                schema.properties.push((name.clone(), id));
            }
        }
        if let Some(Value::Object(patterns)) = object.get("patternProperties") {
            for pattern in patterns.keys() {
                schema.pattern_properties.push(PatternProperty {
                    pattern: pattern.clone(),
                    regex: regex::Regex::new(pattern).ok(),
                    schema: self.grandchild(doc, pointer, "patternProperties", pattern, depth),
                });
            }
        }
        let mut dependency_keywords = vec!["dependencies"];
        if draft.is_modern() {
            dependency_keywords.extend(["dependentRequired", "dependentSchemas"]);
            if object.contains_key("unevaluatedProperties") {
                schema.unevaluated_properties =
                    Some(self.child(doc, pointer, "unevaluatedProperties", depth));
            }
        }
        for keyword in dependency_keywords {
            let Some(Value::Object(dependencies)) = object.get(keyword) else {
                continue;
            };
            for (name, dependency) in dependencies {
                match dependency {
                    Value::Array(_) => schema
                        .property_dependencies
                        .push((name.clone(), strings(Some(dependency)))),
                    Value::Object(_) | Value::Bool(_) => {
                        let id = self.grandchild(doc, pointer, keyword, name, depth);
                        schema.schema_dependencies.push((name.clone(), id));
                    }
                    _ => {}
                }
            }
        }
        schema
    }

    fn array_schema(
        &mut self,
        doc: usize,
        pointer: &str,
        object: &'a Map<String, Value>,
        depth: usize,
    ) -> ArraySchema {
        let draft = self.documents.get(doc).draft;
        let mut schema = ArraySchema {
            min_items: integer(object.get("minItems")),
            max_items: integer(object.get("maxItems")),
            unique_items: object.get("uniqueItems") == Some(&Value::Bool(true)),
            ..ArraySchema::default()
        };
        let prefix_items = match object.get("prefixItems") {
            Some(Value::Array(prefix)) if draft == Draft::Draft202012 => Some(prefix.len()),
            _ => None,
        };
        if let Some(length) = prefix_items {
            // 2020-12: `prefixItems` is the tuple, `items` what may follow it.
            schema.item_schemas = (0..length)
                .map(|index| {
                    self.grandchild(doc, pointer, "prefixItems", &index.to_string(), depth)
                })
                .collect();
            schema.additional_items = self.additional(doc, pointer, object, "items", depth);
        } else {
            match object.get("items") {
                // 2020-12 without `prefixItems`: a boolean `items` is the flag Confluent's
                // translator reports as `additionalItems`.
                Some(Value::Bool(_)) if draft == Draft::Draft202012 => {
                    schema.additional_items = self.additional(doc, pointer, object, "items", depth);
                }
                Some(Value::Array(items)) => {
                    schema.item_schemas = (0..items.len())
                        .map(|index| {
                            self.grandchild(doc, pointer, "items", &index.to_string(), depth)
                        })
                        .collect();
                }
                Some(Value::Object(_) | Value::Bool(_)) => {
                    schema.all_items = Some(self.child(doc, pointer, "items", depth));
                }
                _ => {}
            }
            if draft != Draft::Draft202012 {
                schema.additional_items =
                    self.additional(doc, pointer, object, "additionalItems", depth);
            }
        }
        if draft.is_modern() && object.contains_key("unevaluatedItems") {
            schema.unevaluated_items = Some(self.child(doc, pointer, "unevaluatedItems", depth));
        }
        schema
    }

    /// `additionalProperties`-style keywords: a boolean is a flag, an object a schema.
    fn additional(
        &mut self,
        doc: usize,
        pointer: &str,
        object: &'a Map<String, Value>,
        keyword: &str,
        depth: usize,
    ) -> Additional {
        match object.get(keyword) {
            Some(Value::Bool(false)) => Additional::Forbidden,
            Some(Value::Object(_)) => Additional::Schema(self.child(doc, pointer, keyword, depth)),
            _ => Additional::Permitted,
        }
    }
}

fn string_schema(object: &Map<String, Value>) -> StringSchema {
    StringSchema {
        min_length: integer(object.get("minLength")),
        max_length: integer(object.get("maxLength")),
        pattern: object
            .get("pattern")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn number_schema(object: &Map<String, Value>, requires_integer: bool) -> NumberSchema {
    let number = |key: &str| object.get(key).and_then(Value::as_f64);
    NumberSchema {
        requires_integer,
        maximum: number("maximum"),
        minimum: number("minimum"),
        // A draft-04 boolean `exclusiveMaximum` is only a flag on `maximum`; Confluent compares
        // the numeric limits alone, so the flag is not kept.
        exclusive_maximum: number("exclusiveMaximum"),
        exclusive_minimum: number("exclusiveMinimum"),
        multiple_of: match object.get("multipleOf") {
            Some(Value::Number(number)) => Some(number.clone()),
            _ => None,
        },
    }
}

fn integer(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn kind_only(kind: Kind) -> Node {
    Node {
        common: Common::default(),
        kind,
    }
}

fn invalid(value: &Value) -> Node {
    kind_only(Kind::Invalid(digest(value)))
}

/// A digest of a JSON value, computed with an explicit stack so that no nesting depth can
/// exhaust the call stack (this is what too-deep trees are reduced to).
fn digest(value: &Value) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};

    let mut hasher = DefaultHasher::new();
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Null => 0u8.hash(&mut hasher),
            Value::Bool(flag) => (1u8, flag).hash(&mut hasher),
            Value::Number(number) => (2u8, number.to_string()).hash(&mut hasher),
            Value::String(text) => (3u8, text).hash(&mut hasher),
            Value::Array(items) => {
                (4u8, items.len()).hash(&mut hasher);
                pending.extend(items.iter().rev());
            }
            Value::Object(object) => {
                (5u8, object.len()).hash(&mut hasher);
                let mut entries: Vec<(&String, &Value)> = object.iter().collect();
                entries.sort_by(|left, right| left.0.cmp(right.0));
                for (key, _) in &entries {
                    key.hash(&mut hasher);
                }
                pending.extend(entries.into_iter().rev().map(|(_, child)| child));
            }
        }
    }
    hasher.finish()
}
