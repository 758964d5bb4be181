//! Feast's feature-server HTTP API on the HTTP port, so Feast-style clients work unchanged:
//! `POST /get-online-features` and `POST /push`, with Feast's request and response JSON shapes
//! (column-major results, join keys first, statuses by name, RFC 3339 event timestamps).
//!
//! ```text
//! POST /get-online-features
//! {"feature_service": "driver_ranking_v1"  |  "features": ["driver_hourly_stats:conv_rate", ...],
//!  "entities": {"driver_id": [1001, 1002]}, "full_feature_names": false}
//! → {"metadata": {"feature_names": ["driver_id", "conv_rate"]},
//!    "results": [{"values": [1001, 1002], "statuses": ["PRESENT", "PRESENT"],
//!                 "event_timestamps": ["1970-01-01T00:00:00Z", ...]}, ...]}
//! ```

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use plinth_runtime::error::ApiError;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value as Json_};

use crate::domain::online_row::Status;
use crate::domain::selection::FeatureRequest;
use crate::domain::value::{Value, format_timestamp};
use crate::feature_store::FeatureStore;
use crate::push::{PushRequest, PushTarget};
use crate::retrieval::{OnlineColumn, OnlineFeatures};

/// The router: Feast's online endpoints.
pub fn router(store: Arc<FeatureStore>) -> axum::Router {
    axum::Router::new()
        .route("/get-online-features", post(get_online_features))
        .route("/push", post(push))
        .with_state(store)
}

/// `/get-online-features` body.
#[derive(Debug, Deserialize)]
struct OnlineBody {
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    feature_service: Option<String>,
    #[serde(default)]
    entities: Map<String, Json_>,
    #[serde(default)]
    full_feature_names: bool,
}

/// `/push` body.
#[derive(Debug, Deserialize)]
struct PushBody {
    push_source_name: String,
    df: Map<String, Json_>,
    #[serde(default)]
    to: Option<String>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        ApiError::invalid_argument(
            "INVALID_JSON",
            format!("the request body is not the expected JSON: {err}"),
        )
    })
}

async fn get_online_features(
    State(store): State<Arc<FeatureStore>>,
    body: axum::body::Bytes,
) -> Response {
    match online(&store, &body).await {
        Ok(answer) => Json(OnlineAnswer::of(&answer)).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn online(store: &FeatureStore, body: &[u8]) -> Result<OnlineFeatures, ApiError> {
    let body: OnlineBody = parse_body(body)?;
    let selection = match (body.feature_service, body.features) {
        (Some(service), _) if !service.is_empty() => FeatureRequest::Service(service),
        (_, Some(features)) if !features.is_empty() => FeatureRequest::Refs(features),
        _ => {
            return Err(ApiError::required(
                "features",
                "send `feature_service` or a non-empty `features` list of `view:feature`",
            ));
        }
    };
    let entities = columns_from_json(body.entities, "entities")?;
    store
        .get_online_features(&selection, entities, body.full_feature_names)
        .await
}

/// The `/get-online-features` answer in Feast's shape, serialized straight from the domain answer
/// (no intermediate JSON tree: this is every HTTP read's response).
#[derive(Serialize)]
struct OnlineAnswer<'a> {
    metadata: AnswerMetadata<'a>,
    results: Vec<AnswerColumn<'a>>,
}

#[derive(Serialize)]
struct AnswerMetadata<'a> {
    feature_names: &'a [String],
}

/// One column: its values, their statuses by name and their event times in RFC 3339 (the epoch
/// where there is none, as Feast answers).
struct AnswerColumn<'a>(&'a OnlineColumn);

impl<'a> OnlineAnswer<'a> {
    fn of(answer: &'a OnlineFeatures) -> Self {
        Self {
            metadata: AnswerMetadata {
                feature_names: &answer.names,
            },
            results: answer.columns.iter().map(AnswerColumn).collect(),
        }
    }
}

impl Serialize for AnswerColumn<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;

        struct Values<'a>(&'a [Value]);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(JsonValue))
            }
        }
        struct Statuses<'a>(&'a [Status]);
        impl Serialize for Statuses<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|status| status_name(*status)))
            }
        }
        struct EventTimes<'a>(&'a [Option<i64>]);
        impl Serialize for EventTimes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(
                    self.0
                        .iter()
                        .map(|micros| format_timestamp(micros.unwrap_or(0))),
                )
            }
        }

        let mut column = serializer.serialize_struct("AnswerColumn", 3)?;
        column.serialize_field("event_timestamps", &EventTimes(&self.0.event_timestamps))?;
        column.serialize_field("statuses", &Statuses(&self.0.statuses))?;
        column.serialize_field("values", &Values(&self.0.values))?;
        column.end()
    }
}

async fn push(State(store): State<Arc<FeatureStore>>, body: axum::body::Bytes) -> Response {
    match push_rows(&store, &body).await {
        Ok(()) => axum::http::StatusCode::OK.into_response(),
        Err(err) => err.into_response(),
    }
}

async fn push_rows(store: &FeatureStore, body: &[u8]) -> Result<(), ApiError> {
    let body: PushBody = parse_body(body)?;
    let to = match body.to.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("online") => PushTarget::Online,
        Some("offline") => PushTarget::Offline,
        Some("online_and_offline") => PushTarget::OnlineAndOffline,
        Some(other) => {
            return Err(ApiError::invalid_argument(
                "PUSH_TARGET_INVALID",
                format!("`to` is `{other}`; use online, offline or online_and_offline"),
            )
            .with_field("to", "online, offline or online_and_offline"));
        }
    };
    let columns = columns_from_json(body.df, "df")?;
    store
        .push(PushRequest {
            source: body.push_source_name,
            columns,
            to,
        })
        .await?;
    Ok(())
}

/// Columns from a JSON object of arrays (`{"driver_id": [1001, 1002]}`); a scalar is a one-row column.
fn columns_from_json(
    object: Map<String, Json_>,
    field: &str,
) -> Result<Vec<(String, Vec<Value>)>, ApiError> {
    let mut columns = Vec::with_capacity(object.len());
    for (name, values) in object {
        let values = match values {
            Json_::Array(items) => items,
            scalar => vec![scalar],
        };
        let mut converted = Vec::with_capacity(values.len());
        for (row_idx, item) in values.into_iter().enumerate() {
            converted.push(value_from_json(item).ok_or_else(|| {
                ApiError::invalid_argument(
                    "VALUE_NOT_SCALAR",
                    format!("`{field}.{name}`[{row_idx}] is an object or array; send numbers, strings, booleans or null"),
                )
                .with_field(format!("{field}.{name}"), "scalar values")
            })?);
        }
        columns.push((name, converted));
    }
    Ok(columns)
}

/// A JSON scalar as a value: integral numbers as int64, other numbers as float64.
fn value_from_json(json: Json_) -> Option<Value> {
    Some(match json {
        Json_::Null => Value::Null,
        Json_::Bool(flag) => Value::Bool(flag),
        Json_::Number(number) => match number.as_i64() {
            Some(integer) => Value::Int64(integer),
            None => Value::Float64(number.as_f64()?),
        },
        Json_::String(text) => Value::String(text),
        Json_::Array(_) | Json_::Object(_) => return None,
    })
}

/// A value as JSON: numbers, strings, booleans; bytes as base64; timestamps as RFC 3339; NaN and
/// infinities as null.
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let float = |number: f64, serializer: S| {
            if number.is_finite() {
                serializer.serialize_f64(number)
            } else {
                serializer.serialize_unit()
            }
        };
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::String(text) => serializer.serialize_str(text),
            Value::Bytes(bytes) => serializer.serialize_str(&base64(bytes)),
            Value::Int32(number) => serializer.serialize_i32(*number),
            Value::Int64(number) => serializer.serialize_i64(*number),
            Value::Float32(number) => float(f64::from(*number), serializer),
            Value::Float64(number) => float(*number, serializer),
            Value::Bool(flag) => serializer.serialize_bool(*flag),
            Value::UnixTimestamp(micros) => serializer.serialize_str(&format_timestamp(*micros)),
        }
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Present => "PRESENT",
        Status::NullValue => "NULL_VALUE",
        Status::NotFound => "NOT_FOUND",
        Status::OutsideMaxAge => "OUTSIDE_MAX_AGE",
    }
}

/// Standard base64 with padding (protobuf's JSON form of bytes, which Feast clients decode).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let triple = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (position, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if position <= chunk.len() {
                out.push(char::from(ALPHABET[((triple >> shift) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn json_scalars_become_values_and_back() {
        let columns = columns_from_json(
            serde_json::from_str(r#"{"driver_id": [1001, 2.5, "x", true, null], "one": 7}"#)
                .unwrap(),
            "entities",
        )
        .unwrap();
        assert_eq!(
            columns[0].1,
            vec![
                Value::Int64(1001),
                Value::Float64(2.5),
                Value::String("x".to_owned()),
                Value::Bool(true),
                Value::Null
            ]
        );
        assert_eq!(columns[1].1, vec![Value::Int64(7)]);
        let json = |value: Value| serde_json::to_value(JsonValue(&value)).unwrap();
        assert_eq!(json(Value::Float64(f64::NAN)), Json_::Null);
        assert_eq!(json(Value::Float32(f32::INFINITY)), Json_::Null);
        assert_eq!(json(Value::Float32(0.5)), serde_json::json!(0.5));
        assert_eq!(json(Value::Int32(-3)), serde_json::json!(-3));
        assert_eq!(
            json(Value::Bytes(b"fo".to_vec())),
            serde_json::json!("Zm8=")
        );
        assert_eq!(
            json(Value::UnixTimestamp(0)),
            Json_::String("1970-01-01T00:00:00Z".to_owned())
        );
        let err = columns_from_json(
            serde_json::from_str(r#"{"driver_id": [[1]]}"#).unwrap(),
            "entities",
        )
        .unwrap_err();
        assert!(
            err.message.contains("`entities.driver_id`[0]"),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_online_answer_has_feasts_shape() {
        let answer = OnlineFeatures {
            names: vec!["driver_id".to_owned(), "conv_rate".to_owned()],
            columns: vec![
                OnlineColumn {
                    values: vec![Value::Int64(1001), Value::Int64(1002)],
                    statuses: vec![Status::Present, Status::Present],
                    event_timestamps: vec![None, None],
                },
                OnlineColumn {
                    values: vec![Value::Float64(0.25), Value::Null],
                    statuses: vec![Status::Present, Status::NotFound],
                    event_timestamps: vec![Some(1_618_225_182_000_000), None],
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(OnlineAnswer::of(&answer)).unwrap(),
            serde_json::json!({
                "metadata": {"feature_names": ["driver_id", "conv_rate"]},
                "results": [
                    {
                        "values": [1001, 1002],
                        "statuses": ["PRESENT", "PRESENT"],
                        "event_timestamps": ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"],
                    },
                    {
                        "values": [0.25, null],
                        "statuses": ["PRESENT", "NOT_FOUND"],
                        "event_timestamps": ["2021-04-12T10:59:42Z", "1970-01-01T00:00:00Z"],
                    },
                ],
            })
        );
    }
}
