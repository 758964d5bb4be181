//! `--param NAME=VALUE` overrides: values read as JSON when they parse and as text otherwise, sent as a
//! `google.protobuf.Struct`; and the way back, for printing a run's parameters.

use std::collections::BTreeMap;

use anyhow::bail;
use prost_types::value::Kind;
use serde_json::Value as Json;

/// The largest integer a `google.protobuf.Value` (a double) carries exactly: 2^53.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Parses one `--param NAME=VALUE`. The value is JSON when it parses as JSON (`20`, `0.5`, `true`,
/// `null`, `[1,2]`, `{"a":1}`, `"20"`), text otherwise (`v2`, `2026-01-01`, an empty value).
pub(crate) fn parse_param(text: &str) -> Result<(String, Json), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not NAME=VALUE, e.g. epochs=20 or model_version=v2"
        ));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`{text}` has no parameter name before `=`"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

/// The overrides as the request's `params`, refusing a parameter given twice.
pub(crate) fn params_struct(params: Vec<(String, Json)>) -> anyhow::Result<prost_types::Struct> {
    let mut fields = BTreeMap::new();
    for (name, value) in params {
        let value =
            to_proto(&value).map_err(|reason| anyhow::anyhow!("--param {name}: {reason}"))?;
        if fields.insert(name.clone(), value).is_some() {
            bail!("--param {name} is given twice: keep one");
        }
    }
    Ok(prost_types::Struct { fields })
}

/// A JSON value as a protobuf `Value`. Integers beyond 2^53 are refused: a `Value` holds a double and
/// would change them silently.
pub(crate) fn to_proto(value: &Json) -> Result<prost_types::Value, String> {
    let kind = match value {
        Json::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        Json::Bool(flag) => Kind::BoolValue(*flag),
        Json::Number(number) => {
            let exact = match (number.as_u64(), number.as_i64()) {
                (Some(unsigned), _) => unsigned <= MAX_EXACT_INTEGER,
                (None, Some(signed)) => signed.unsigned_abs() <= MAX_EXACT_INTEGER,
                (None, None) => true,
            };
            if !exact {
                return Err(format!(
                    "{number} is too large to send exactly (parameters travel as doubles, exact up to 2^53): pass it as text, \"{number}\""
                ));
            }
            match number.as_f64() {
                Some(double) => Kind::NumberValue(double),
                None => return Err(format!("{number} is not a number a double can hold")),
            }
        }
        Json::String(text) => Kind::StringValue(text.clone()),
        Json::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_proto).collect::<Result<_, _>>()?,
        }),
        Json::Object(object) => Kind::StructValue(prost_types::Struct {
            fields: object
                .iter()
                .map(|(key, item)| Ok((key.clone(), to_proto(item)?)))
                .collect::<Result<_, String>>()?,
        }),
    };
    Ok(prost_types::Value { kind: Some(kind) })
}

/// A protobuf `Value` as JSON; whole doubles print as integers (`20`, not `20.0`).
pub(crate) fn to_json(value: &prost_types::Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(flag)) => Json::Bool(*flag),
        Some(Kind::NumberValue(number)) => number_json(*number),
        Some(Kind::StringValue(text)) => Json::String(text.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(to_json).collect()),
        Some(Kind::StructValue(object)) => struct_json(object),
    }
}

/// A protobuf `Struct` as a JSON object, keys sorted.
pub(crate) fn struct_json(object: &prost_types::Struct) -> Json {
    Json::Object(
        object
            .fields
            .iter()
            .map(|(key, value)| (key.clone(), to_json(value)))
            .collect(),
    )
}

// Only whole doubles within ±2^53 are cast to i64, and those convert exactly.
fn number_json(number: f64) -> Json {
    if number.fract() == 0.0 && number.abs() <= MAX_EXACT_INTEGER as f64 {
        return Json::from(number as i64);
    }
    serde_json::Number::from_f64(number).map_or(Json::Null, Json::Number)
}
