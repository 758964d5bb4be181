//! Schemas as registered: parsing, meta-validation, canonical form, fingerprints and references.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;

use plinth_proto::ids::Subject;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The kind of schema. Plinth registers JSON Schemas only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SchemaType {
    /// JSON Schema.
    #[default]
    Json,
}

impl SchemaType {
    /// Confluent's name for the type.
    pub fn as_str(self) -> &'static str {
        "JSON"
    }
}

impl FromStr for SchemaType {
    type Err = InvalidSchema;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.eq_ignore_ascii_case("JSON") {
            Ok(Self::Json)
        } else {
            Err(InvalidSchema::new(
                "",
                format!(
                    "schema type `{value}` is not supported; Plinth registers JSON Schemas (schemaType JSON)"
                ),
            ))
        }
    }
}

/// The JSON Schema drafts the registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SchemaDraft {
    /// Draft 4.
    Draft4,
    /// Draft 6.
    Draft6,
    /// Draft 7.
    Draft7,
    /// Draft 2019-09.
    Draft201909,
    /// Draft 2020-12.
    #[default]
    Draft202012,
}

impl SchemaDraft {
    /// The draft's short name as used in configuration (`4`, `6`, `7`, `2019-09`, `2020-12`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft4 => "4",
            Self::Draft6 => "6",
            Self::Draft7 => "7",
            Self::Draft201909 => "2019-09",
            Self::Draft202012 => "2020-12",
        }
    }

    /// The draft named by a `$schema` URI, if it is a known draft.
    pub fn from_meta_schema_uri(uri: &str) -> Option<Self> {
        let trimmed = uri.trim_end_matches('#').trim_end_matches('/');
        let trimmed = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .unwrap_or(trimmed);
        match trimmed {
            "json-schema.org/draft-04/schema" => Some(Self::Draft4),
            "json-schema.org/draft-06/schema" => Some(Self::Draft6),
            "json-schema.org/draft-07/schema" => Some(Self::Draft7),
            "json-schema.org/draft/2019-09/schema" => Some(Self::Draft201909),
            "json-schema.org/draft/2020-12/schema" => Some(Self::Draft202012),
            _ => None,
        }
    }

    pub(crate) fn to_jsonschema(self) -> jsonschema::Draft {
        match self {
            Self::Draft4 => jsonschema::Draft::Draft4,
            Self::Draft6 => jsonschema::Draft::Draft6,
            Self::Draft7 => jsonschema::Draft::Draft7,
            Self::Draft201909 => jsonschema::Draft::Draft201909,
            Self::Draft202012 => jsonschema::Draft::Draft202012,
        }
    }
}

impl FromStr for SchemaDraft {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value
            .trim()
            .trim_start_matches("draft")
            .trim_start_matches('-')
        {
            "4" | "04" => Ok(Self::Draft4),
            "6" | "06" => Ok(Self::Draft6),
            "7" | "07" => Ok(Self::Draft7),
            "2019-09" => Ok(Self::Draft201909),
            "2020-12" => Ok(Self::Draft202012),
            _ => Err(format!(
                "`{value}` is not a JSON Schema draft; use one of 4, 6, 7, 2019-09, 2020-12"
            )),
        }
    }
}

/// A reference from a schema to another registered schema (Confluent's `SchemaReference`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaReference {
    /// The URI the referencing schema uses in `$ref`.
    pub name: String,
    /// The subject of the referenced schema.
    pub subject: Subject,
    /// The version of the referenced schema.
    pub version: i32,
}

/// Why a schema was refused: the JSON pointer into the schema and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", if pointer.is_empty() { String::new() } else { format!("at `{pointer}`: ") })]
pub struct InvalidSchema {
    /// JSON pointer into the schema document (empty for the whole document).
    pub pointer: String,
    /// What is wrong.
    pub reason: String,
}

impl InvalidSchema {
    /// Builds an error at a pointer.
    pub fn new(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            reason: reason.into(),
        }
    }
}

/// A schema document that parsed, passed meta-validation and has a canonical form.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The document.
    pub value: Value,
    /// The canonical text: compact JSON with object keys sorted. Equal schemas have equal canonical text.
    pub canonical: String,
    /// The draft the schema is read as.
    pub draft: SchemaDraft,
}

/// Parses and meta-validates a schema document. `default_draft` applies when `$schema` is absent.
pub fn parse_schema(text: &str, default_draft: SchemaDraft) -> Result<ParsedSchema, InvalidSchema> {
    let value: Value = serde_json::from_str(text).map_err(|err| {
        InvalidSchema::new(
            "",
            format!(
                "invalid JSON at line {} column {}: {err}",
                err.line(),
                err.column()
            ),
        )
    })?;
    let Value::Object(object) = &value else {
        return Err(InvalidSchema::new(
            "",
            format!("a schema must be a JSON object, got {}", json_kind(&value)),
        ));
    };
    let draft = match object.get("$schema") {
        None => default_draft,
        Some(Value::String(uri)) => SchemaDraft::from_meta_schema_uri(uri).ok_or_else(|| {
            InvalidSchema::new(
                "/$schema",
                format!(
                    "unknown meta-schema `{uri}`; use a draft 4, 6, 7, 2019-09 or 2020-12 URI such as https://json-schema.org/draft/2020-12/schema"
                ),
            )
        })?,
        Some(other) => {
            return Err(InvalidSchema::new(
                "/$schema",
                format!("`$schema` must be a string URI, got {}", json_kind(other)),
            ));
        }
    };
    meta_validate(&value, draft)?;
    check_ref_cycles(&value)?;
    let canonical = canonical_json(&value);
    Ok(ParsedSchema {
        value,
        canonical,
        draft,
    })
}

fn meta_validate(value: &Value, draft: SchemaDraft) -> Result<(), InvalidSchema> {
    let validator = match draft {
        SchemaDraft::Draft4 => jsonschema::draft4::meta::validator(),
        SchemaDraft::Draft6 => jsonschema::draft6::meta::validator(),
        SchemaDraft::Draft7 => jsonschema::draft7::meta::validator(),
        SchemaDraft::Draft201909 => jsonschema::draft201909::meta::validator(),
        SchemaDraft::Draft202012 => jsonschema::draft202012::meta::validator(),
    };
    let errors: Vec<_> = validator.iter_errors(value).collect();
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let mut reason = format!(
        "does not conform to the draft {} meta-schema: {first}",
        draft.as_str()
    );
    if errors.len() > 1 {
        let _ = write!(reason, " (and {} more)", errors.len() - 1);
    }
    Err(InvalidSchema::new(
        first.instance_path().to_string(),
        reason,
    ))
}

/// Refuses local `$ref` chains that loop without ever reaching a schema (`a` → `b` → `a`).
fn check_ref_cycles(root: &Value) -> Result<(), InvalidSchema> {
    let mut refs = Vec::new();
    collect_refs(root, String::new(), &mut refs);
    for (start_pointer, _) in &refs {
        let mut seen = HashSet::new();
        let mut pointer = start_pointer.clone();
        let mut chain = vec![pointer.clone()];
        loop {
            if !seen.insert(pointer.clone()) {
                return Err(InvalidSchema::new(
                    start_pointer.clone(),
                    format!(
                        "`$ref` cycle that never reaches a schema: {}",
                        chain.join(" -> ")
                    ),
                ));
            }
            let Some(target) = root.pointer(&pointer).and_then(ref_only_target) else {
                break;
            };
            let Some(next) = target.strip_prefix('#') else {
                break;
            };
            pointer = decode_fragment(next);
            chain.push(format!("#{pointer}"));
        }
    }
    Ok(())
}

/// The `$ref` of a node whose only schema keyword is `$ref` (annotations aside).
fn ref_only_target(node: &Value) -> Option<&str> {
    let object = node.as_object()?;
    let target = object.get("$ref")?.as_str()?;
    let annotations = [
        "$ref",
        "$comment",
        "title",
        "description",
        "$id",
        "$schema",
        "$defs",
        "definitions",
    ];
    object
        .keys()
        .all(|key| annotations.contains(&key.as_str()))
        .then_some(target)
}

fn collect_refs(node: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match node {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref") {
                out.push((pointer.clone(), target.clone()));
            }
            for (key, child) in object {
                collect_refs(
                    child,
                    format!("{pointer}/{}", escape_pointer_token(key)),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (idx, child) in items.iter().enumerate() {
                collect_refs(child, format!("{pointer}/{idx}"), out);
            }
        }
        _ => {}
    }
}

fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn decode_fragment(fragment: &str) -> String {
    let mut out = String::with_capacity(fragment.len());
    let bytes = fragment.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%'
            && idx + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&fragment[idx + 1..idx + 3], 16)
        {
            out.push(char::from(byte));
            idx += 3;
            continue;
        }
        out.push(char::from(bytes[idx]));
        idx += 1;
    }
    out
}

/// Compact JSON with object keys sorted at every level: the form equality is decided on.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(object) => {
            out.push('{');
            let keys: BTreeSet<&String> = object.keys().collect();
            for (idx, key) in keys.into_iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(child) = object.get(key) {
                    write_canonical(child, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The identity of a schema across subjects: type, canonical text and references. Equal fingerprints get
/// the same global id.
pub fn fingerprint(
    schema_type: SchemaType,
    canonical: &str,
    references: &[SchemaReference],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(schema_type.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(canonical.as_bytes());
    for reference in references {
        hasher.update([0]);
        hasher.update(reference.name.as_bytes());
        hasher.update([0]);
        hasher.update(reference.subject.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(reference.version.to_be_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// A short name for the JSON type of a value, for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
