//! How `plinth model` prints: models and predictions as aligned tables, or as JSON with `-o json`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use plinth_proto::featurestore::v1 as fs;
use plinth_proto::inference::InferTensorContents;
use plinth_proto::serving::v1 as pb;
use serde_json::{Value as Json, json};

use super::parse::EntityRows;
use crate::output::{dash, table};

/// A version state's name (`ready`, `failed`, ...).
pub(crate) fn state_name(state: pb::VersionState) -> &'static str {
    match state {
        pb::VersionState::Available => "available",
        pb::VersionState::Loading => "loading",
        pb::VersionState::Ready => "ready",
        pb::VersionState::Failed => "failed",
        pb::VersionState::Unspecified => "unknown",
    }
}

/// A prediction status's name (`ok`, `entity_not_found`, `missing_features`).
pub(crate) fn status_name(status: pb::PredictionStatus) -> &'static str {
    match status {
        pb::PredictionStatus::Ok => "ok",
        pb::PredictionStatus::EntityNotFound => "entity_not_found",
        pb::PredictionStatus::MissingFeatures => "missing_features",
        pb::PredictionStatus::Unspecified => "unknown",
    }
}

/// A tensor's signature as `name TYPE[d0,d1]`, e.g. `input FP32[-1,4]`.
pub(crate) fn tensor_text(tensor: &pb::TensorSpec) -> String {
    let shape: Vec<String> = tensor.shape.iter().map(i64::to_string).collect();
    format!("{} {}[{}]", tensor.name, tensor.datatype, shape.join(","))
}

fn tensors_text(tensors: &[pb::TensorSpec]) -> String {
    let parts: Vec<String> = tensors.iter().map(tensor_text).collect();
    dash(&parts.join(", "))
}

fn tensors_json(tensors: &[pb::TensorSpec]) -> Json {
    json!(
        tensors
            .iter()
            .map(|tensor| json!({
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": tensor.shape,
            }))
            .collect::<Vec<_>>()
    )
}

/// A model's versions as `v1 available, v2 ready*` (`*`: the serving version).
pub(crate) fn versions_text(model: &pb::Model) -> String {
    let parts: Vec<String> = model
        .versions
        .iter()
        .map(|version| {
            format!(
                "{} {}{}",
                version.version,
                state_name(version.state()),
                if version.serving { "*" } else { "" }
            )
        })
        .collect();
    dash(&parts.join(", "))
}

/// The feature service column: `service (join keys)`, or `-` for a model that takes tensors only.
fn feature_service_text(model: &pb::Model) -> String {
    if model.feature_service.is_empty() {
        return "-".to_owned();
    }
    if model.entity_keys.is_empty() {
        return model.feature_service.clone();
    }
    format!(
        "{} ({})",
        model.feature_service,
        model.entity_keys.join(", ")
    )
}

/// A model as JSON.
pub(crate) fn model_json(model: &pb::Model) -> Json {
    json!({
        "name": model.name,
        "versions": model.versions.iter().map(|version| json!({
            "version": version.version,
            "state": state_name(version.state()),
            "serving": version.serving,
            "reason": version.reason,
        })).collect::<Vec<_>>(),
        "inputs": tensors_json(&model.inputs),
        "outputs": tensors_json(&model.outputs),
        "feature_service": model.feature_service,
        "entity_keys": model.entity_keys,
        "features": model.features,
    })
}

/// The models as a JSON array.
pub(crate) fn models_json(models: &[pb::Model]) -> Json {
    json!(models.iter().map(model_json).collect::<Vec<_>>())
}

/// The models as a table, then why each failed version failed.
pub(crate) fn models_text(models: &[pb::Model], prefix: Option<&str>) -> String {
    if models.is_empty() {
        return match prefix {
            Some(prefix) if !prefix.is_empty() => format!("no model name starts with {prefix}"),
            _ => "no models in the repository: train one (a pipeline's train task writes \
                  models/<name>/<version>/) and `plinth model load NAME`"
                .to_owned(),
        };
    }
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|model| {
            vec![
                model.name.clone(),
                versions_text(model),
                tensors_text(&model.inputs),
                tensors_text(&model.outputs),
                feature_service_text(model),
            ]
        })
        .collect();
    let mut text = table(
        &["MODEL", "VERSIONS", "INPUTS", "OUTPUTS", "FEATURE SERVICE"],
        &rows,
    );
    if models
        .iter()
        .any(|model| model.versions.iter().any(|version| version.serving))
    {
        text.push_str("\n* serving: requests that name no version go to it");
    }
    for model in models {
        for version in &model.versions {
            if version.state() == pb::VersionState::Failed {
                let _ = write!(
                    text,
                    "\n{} {} failed: {}",
                    model.name,
                    version.version,
                    dash(&version.reason)
                );
            }
        }
    }
    text
}

/// What `load` prints.
pub(crate) fn loaded_text(model: &pb::Model, version: &str) -> String {
    let serving = model
        .versions
        .iter()
        .any(|candidate| candidate.version == version && candidate.serving);
    let mut text = format!(
        "loaded {} version {version}{}",
        model.name,
        if serving {
            ": it serves requests that name no version"
        } else {
            " (another version serves requests that name no version)"
        }
    );
    let _ = write!(
        text,
        "\ninputs:  {}\noutputs: {}",
        tensors_text(&model.inputs),
        tensors_text(&model.outputs)
    );
    if !model.feature_service.is_empty() {
        let _ = write!(text, "\nfeature service: {}", feature_service_text(model));
    }
    text
}

/// What `unload` prints.
pub(crate) fn unloaded_text(name: &str, versions: &[String]) -> String {
    match versions {
        [] => format!("model {name} had no loaded version: nothing unloaded"),
        [version] => format!("unloaded {name} version {version}"),
        _ => format!("unloaded {name} versions {}", versions.join(", ")),
    }
}

/// A feature store value as text: `-` for null, hex for bytes.
pub(crate) fn value_text(value: Option<&fs::Value>) -> String {
    match value_json(value) {
        Json::Null => "-".to_owned(),
        Json::String(text) => text,
        other => other.to_string(),
    }
}

/// A feature store value as JSON: null, a string, a number, a boolean; bytes as a hex string,
/// timestamps as RFC 3339.
pub(crate) fn value_json(value: Option<&fs::Value>) -> Json {
    match value.and_then(|value| value.val.as_ref()) {
        None => Json::Null,
        Some(fs::value::Val::StringVal(text)) => json!(text),
        Some(fs::value::Val::BytesVal(bytes)) => json!(format!("0x{}", hex(bytes))),
        Some(fs::value::Val::Int32Val(number)) => json!(number),
        Some(fs::value::Val::Int64Val(number)) => json!(number),
        Some(fs::value::Val::DoubleVal(number)) => json!(number),
        Some(fs::value::Val::FloatVal(number)) => float32(*number),
        Some(fs::value::Val::BoolVal(flag)) => json!(flag),
        Some(fs::value::Val::UnixTimestampVal(time)) => {
            json!(super::super::format_timestamp(Some(time)))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// An f32 as the JSON number it prints as (0.1f32 is 0.1, not 0.10000000149011612); NaN and
/// infinities as null.
fn float32(number: f32) -> Json {
    number
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Json::Null, Json::Number)
}

/// A BYTES element: its text when it is UTF-8, else hex.
fn bytes_json(bytes: &[u8]) -> Json {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!(text),
        Err(_) => json!(format!("0x{}", hex(bytes))),
    }
}

/// The elements of a tensor's contents, read from the field of its data type (or, for a type this
/// CLI does not know, from whichever field has values).
pub(crate) fn contents_json(datatype: &str, contents: &InferTensorContents) -> Vec<Json> {
    let bools = || contents.bool_contents.iter().map(|v| json!(v)).collect();
    let ints = || contents.int_contents.iter().map(|v| json!(v)).collect();
    let int64s = || contents.int64_contents.iter().map(|v| json!(v)).collect();
    let uints = || contents.uint_contents.iter().map(|v| json!(v)).collect();
    let uint64s = || contents.uint64_contents.iter().map(|v| json!(v)).collect();
    let fp32s = || {
        contents
            .fp32_contents
            .iter()
            .copied()
            .map(float32)
            .collect()
    };
    let fp64s = || contents.fp64_contents.iter().map(|v| json!(v)).collect();
    let bytes = || {
        contents
            .bytes_contents
            .iter()
            .map(Vec::as_slice)
            .map(bytes_json)
            .collect()
    };
    match datatype {
        "BOOL" => bools(),
        "INT8" | "INT16" | "INT32" => ints(),
        "INT64" => int64s(),
        "UINT8" | "UINT16" | "UINT32" => uints(),
        "UINT64" => uint64s(),
        "FP32" => fp32s(),
        "FP64" => fp64s(),
        "BYTES" => bytes(),
        _ => [
            bools(),
            ints(),
            int64s(),
            uints(),
            uint64s(),
            fp32s(),
            fp64s(),
            bytes(),
        ]
        .into_iter()
        .find(|values: &Vec<Json>| !values.is_empty())
        .unwrap_or_default(),
    }
}

/// Row-major `values` nested by `shape`: a scalar for shape `[]`, arrays for the dimensions; a flat
/// array when the shape does not match the element count.
pub(crate) fn nest(values: Vec<Json>, shape: &[i64]) -> Json {
    let dims: Option<Vec<usize>> = shape.iter().map(|dim| usize::try_from(*dim).ok()).collect();
    let Some(dims) = dims else {
        return Json::Array(values);
    };
    if dims.iter().product::<usize>() != values.len() {
        return Json::Array(values);
    }
    nest_dims(values, &dims)
}

fn nest_dims(mut values: Vec<Json>, dims: &[usize]) -> Json {
    match dims {
        [] => values.pop().unwrap_or(Json::Null),
        [_] => Json::Array(values),
        [outer, inner @ ..] => {
            let chunk = inner.iter().product::<usize>();
            let mut rows = Vec::with_capacity(*outer);
            let mut rest = values.into_iter();
            for _ in 0..*outer {
                let part: Vec<Json> = rest.by_ref().take(chunk).collect();
                rows.push(nest_dims(part, inner));
            }
            Json::Array(rows)
        }
    }
}

/// An output row's value: nested by its shape.
pub(crate) fn output_value(output: &pb::PredictionOutput) -> Json {
    let values = output
        .contents
        .as_ref()
        .map(|contents| contents_json(&output.datatype, contents))
        .unwrap_or_default();
    nest(values, &output.shape)
}

fn json_text(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        Json::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// A key's status cell: `ok`, `ok (defaulted: a, b)`, `entity_not_found`, `missing_features: a, b`.
pub(crate) fn status_text(prediction: &pb::KeyPrediction) -> String {
    let status = prediction.status();
    let name = status_name(status);
    match status {
        pb::PredictionStatus::Ok if !prediction.defaulted_features.is_empty() => {
            format!(
                "ok (defaulted: {})",
                prediction.defaulted_features.join(", ")
            )
        }
        pb::PredictionStatus::MissingFeatures if !prediction.missing_features.is_empty() => {
            format!("{name}: {}", prediction.missing_features.join(", "))
        }
        _ => name.to_owned(),
    }
}

/// What `predict` prints, and whether every key got a prediction.
#[derive(Debug)]
pub(crate) struct PredictReport {
    /// The text form: a header line and a table, one row per key.
    pub(crate) text: String,
    /// The JSON form.
    pub(crate) json: Json,
    /// Whether every key's status is OK.
    pub(crate) all_ok: bool,
}

/// Renders a PredictByKey answer against the request's rows (same order).
pub(crate) fn predictions(
    answer: &pb::PredictByKeyResponse,
    rows: &EntityRows,
    include_features: bool,
) -> PredictReport {
    let keys: Vec<&str> = rows.keys().collect();
    // Outputs in the order they first appear; features sorted by name.
    let mut outputs: Vec<&str> = Vec::new();
    let mut features: BTreeSet<&str> = BTreeSet::new();
    for prediction in &answer.predictions {
        for output in &prediction.outputs {
            if !outputs.contains(&output.name.as_str()) {
                outputs.push(&output.name);
            }
        }
        if include_features {
            features.extend(prediction.features.keys().map(String::as_str));
        }
    }

    let mut headers: Vec<&str> = keys.clone();
    headers.push("STATUS");
    headers.extend(outputs.iter().copied());
    headers.extend(features.iter().copied());

    let mut cells = Vec::with_capacity(answer.predictions.len());
    let mut items = Vec::with_capacity(answer.predictions.len());
    for (index, prediction) in answer.predictions.iter().enumerate() {
        let mut row: Vec<String> = Vec::with_capacity(headers.len());
        let mut key = serde_json::Map::new();
        for (name, value) in rows.row(index) {
            row.push(value_text(value));
            key.insert(name.to_owned(), value_json(value));
        }
        row.push(status_text(prediction));
        let mut output_json = serde_json::Map::new();
        for output in &prediction.outputs {
            output_json.insert(
                output.name.clone(),
                json!({
                    "datatype": output.datatype,
                    "shape": output.shape,
                    "value": output_value(output),
                }),
            );
        }
        for name in &outputs {
            row.push(
                output_json
                    .get(*name)
                    .map_or_else(|| "-".to_owned(), |output| json_text(&output["value"])),
            );
        }
        for name in &features {
            row.push(value_text(prediction.features.get(*name)));
        }
        let mut item = json!({
            "key": key,
            "status": status_name(prediction.status()),
            "outputs": output_json,
            "defaulted_features": prediction.defaulted_features,
            "missing_features": prediction.missing_features,
        });
        if include_features {
            let used: serde_json::Map<String, Json> = prediction
                .features
                .iter()
                .map(|(name, value)| (name.clone(), value_json(Some(value))))
                .collect();
            item["features"] = Json::Object(used);
        }
        cells.push(row);
        items.push(item);
    }

    let all_ok = answer
        .predictions
        .iter()
        .all(|prediction| prediction.status() == pb::PredictionStatus::Ok);
    let ok_count = answer
        .predictions
        .iter()
        .filter(|prediction| prediction.status() == pb::PredictionStatus::Ok)
        .count();
    let mut text = format!(
        "model {} version {} (request {}): {ok_count} of {} keys predicted\n",
        answer.model,
        dash(&answer.version),
        dash(&answer.request_id),
        answer.predictions.len()
    );
    text.push_str(&table(&headers, &cells));
    PredictReport {
        text,
        json: json!({
            "model": answer.model,
            "version": answer.version,
            "request_id": answer.request_id,
            "predictions": items,
        }),
        all_ok,
    }
}
