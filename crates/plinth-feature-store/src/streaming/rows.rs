//! One consumed data-hub record (its value as JSON text) turned into online rows for every online view
//! its stream source feeds, by the source's field mapping, join keys and feature types. Pure: no IO.
//!
//! A record that cannot be read (not a JSON object, no valid event time, a missing or mistyped join key,
//! a feature value of the wrong type) is a [`Skip`] with what is wrong: the consumer counts it and logs
//! it, and moves on. A feature absent from the record is written as null.

use std::collections::BTreeMap;

use crate::domain::definitions::{FeatureView, JoinKey, Project, Source};
use crate::domain::entity_key::{self, EntityKey};
use crate::domain::online_row::{LatestRows, OnlineRow};
use crate::domain::value::{Value, ValueType};

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Skip {
    /// The record has no value (a tombstone).
    #[error("the record has no value (a tombstone); stream sources need a JSON object per record")]
    Tombstone,
    /// The value is not a JSON object.
    #[error("the value is not a JSON object ({0}); produce one object per record")]
    NotAnObject(String),
    /// The event time is missing or not a timestamp.
    #[error(
        "field `{field}` {problem}; every record needs its event time as RFC 3339 text such as 2026-01-02T03:04:05Z"
    )]
    EventTime {
        /// The source's timestamp field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The created time is not a timestamp.
    #[error(
        "field `{field}` {problem}; send RFC 3339 text or leave it out (the Kafka timestamp is used)"
    )]
    CreatedTime {
        /// The source's created-timestamp column.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A join key is missing, null or of the wrong type.
    #[error("join key `{field}` {problem}; every record needs a {value_type} value for it")]
    Key {
        /// The record field holding the join key.
        field: String,
        /// The join key's type.
        value_type: ValueType,
        /// What is wrong with it.
        problem: String,
    },
    /// A feature value does not fit the feature's type.
    #[error("feature field `{field}` of view `{view}`: {problem}")]
    Feature {
        /// The view.
        view: String,
        /// The record field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The rows of one batch of records, latest per (view, entity key), ready for the online store.
#[derive(Debug, Default)]
pub(crate) struct BatchRows {
    /// View → its newest row per entity key.
    pub(crate) views: BTreeMap<String, LatestRows>,
}

impl BatchRows {
    /// Keeps `row` for `key` of `view` unless the batch already holds a newer row for it.
    pub(crate) fn add(&mut self, view: &str, key: EntityKey, row: OnlineRow) {
        self.views.entry(view.to_owned()).or_default().add(key, row);
    }
}

/// The online views `source` feeds in `project`.
pub(crate) fn online_views<'a>(project: &'a Project, source: &str) -> Vec<&'a FeatureView> {
    project
        .feature_views
        .values()
        .filter(|view| view.online && view.source == source)
        .collect()
}

/// The rows one record gives: one per online view of the source. `kafka_ts` (UTC µs) is the created
/// time when the source has no created-timestamp column or the record leaves it out.
pub(crate) fn record_rows(
    project: &Project,
    source: &Source,
    views: &[&FeatureView],
    value: Option<&str>,
    kafka_ts: Option<i64>,
) -> Result<Vec<(String, EntityKey, OnlineRow)>, Skip> {
    let text = value.ok_or(Skip::Tombstone)?;
    let object = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(other) => return Err(Skip::NotAnObject(format!("a JSON {}", json_kind(&other)))),
        Err(err) => return Err(Skip::NotAnObject(err.to_string())),
    };
    let field = |name: &str| object.get(name).map_or(Value::Null, json_value);

    let event_ts =
        timestamp(field(&source.timestamp_field)).map_err(|problem| Skip::EventTime {
            field: source.timestamp_field.clone(),
            problem,
        })?;
    let created_ts = match &source.created_timestamp_column {
        Some(column) => match field(column) {
            Value::Null => None,
            given => Some(timestamp(given).map_err(|problem| Skip::CreatedTime {
                field: column.clone(),
                problem,
            })?),
        },
        None => None,
    }
    .or(kafka_ts)
    .unwrap_or(event_ts);

    let mut rows = Vec::with_capacity(views.len());
    for view in views {
        let join_keys = project.join_keys(view);
        let mut parts = Vec::with_capacity(join_keys.len());
        for join_key in &join_keys {
            let name = source.source_column(&join_key.name);
            parts.push((
                join_key.name.as_str(),
                key_value(field(name), join_key, name)?,
            ));
        }
        let key = entity_key::encode(&parts).map_err(|err| Skip::Key {
            field: join_keys
                .iter()
                .map(|key| key.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            value_type: join_keys
                .first()
                .map_or(ValueType::String, |key| key.value_type),
            problem: err.to_string(),
        })?;
        let mut values = Vec::with_capacity(view.features.len());
        for feature in &view.features {
            let name = source.source_column(&feature.name);
            let value = feature_value(field(name), feature.value_type).map_err(|problem| {
                Skip::Feature {
                    view: view.name.clone(),
                    field: name.to_owned(),
                    problem,
                }
            })?;
            values.push((feature.name.clone(), value));
        }
        rows.push((
            view.name.clone(),
            key,
            OnlineRow {
                event_ts,
                created_ts,
                values,
            },
        ));
    }
    Ok(rows)
}

/// A JSON value as a loosely typed [`Value`]: integers as int64, other numbers as float64; arrays and
/// objects as their JSON text (a feature of type string takes them as such, others refuse them).
fn json_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(flag) => Value::Bool(*flag),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(integer) => Value::Int64(integer),
            None => number.as_f64().map_or(Value::Null, Value::Float64),
        },
        serde_json::Value::String(text) => Value::String(text.clone()),
        other => Value::String(other.to_string()),
    }
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// A timestamp from RFC 3339 text; numbers are refused (their unit would be a guess).
fn timestamp(value: Value) -> Result<i64, String> {
    match value {
        Value::Null => Err("is missing or null".to_owned()),
        Value::String(text) => match Value::String(text.clone()).coerce(ValueType::UnixTimestamp) {
            Ok(Value::UnixTimestamp(micros)) => Ok(micros),
            _ => Err(format!("is {text:?}, not a timestamp")),
        },
        other => Err(format!(
            "is a {}, not RFC 3339 text (epoch numbers are not read: their unit is ambiguous)",
            other.value_type().map_or("null", ValueType::as_str)
        )),
    }
}

fn key_value(value: Value, join_key: &JoinKey, field: &str) -> Result<Value, Skip> {
    let problem = |problem: String| Skip::Key {
        field: field.to_owned(),
        value_type: join_key.value_type,
        problem,
    };
    if value.is_null() {
        return Err(problem("is missing or null".to_owned()));
    }
    let value = match (join_key.value_type, value) {
        (ValueType::Bytes, Value::String(text)) => Value::Bytes(text.into_bytes()),
        (_, value) => value,
    };
    value
        .coerce(join_key.value_type)
        .map_err(|err| problem(format!("does not fit: {err}")))
}

fn feature_value(value: Value, value_type: ValueType) -> Result<Value, String> {
    let value = match (value_type, value) {
        (ValueType::Bytes, Value::String(text)) => Value::Bytes(text.into_bytes()),
        (_, value) => value,
    };
    value
        .coerce(value_type)
        .map_err(|err| format!("{err}; produce {value_type} values"))
}

#[cfg(test)]
mod tests;
