//! Every conversion between `plinth.featurestore.v1` messages and domain types, once.

use plinth_proto::featurestore::v1 as pb;
use plinth_runtime::error::ApiError;

use crate::domain::selection::FeatureRequest;
use crate::domain::value::Value;

/// The domain value of a proto value; an unset `val` is null.
pub(crate) fn value_from_proto(value: &pb::Value) -> Value {
    use pb::value::Val;
    match &value.val {
        None => Value::Null,
        Some(Val::BytesVal(bytes)) => Value::Bytes(bytes.clone()),
        Some(Val::StringVal(text)) => Value::String(text.clone()),
        Some(Val::Int32Val(number)) => Value::Int32(*number),
        Some(Val::Int64Val(number)) => Value::Int64(*number),
        Some(Val::DoubleVal(number)) => Value::Float64(*number),
        Some(Val::FloatVal(number)) => Value::Float32(*number),
        Some(Val::BoolVal(flag)) => Value::Bool(*flag),
        Some(Val::UnixTimestampVal(timestamp)) => {
            Value::UnixTimestamp(timestamp_to_micros(timestamp))
        }
    }
}

/// The proto value of a domain value.
pub(crate) fn value_to_proto(value: &Value) -> pb::Value {
    use pb::value::Val;
    let val = match value {
        Value::Null => None,
        Value::String(text) => Some(Val::StringVal(text.clone())),
        Value::Bytes(bytes) => Some(Val::BytesVal(bytes.clone())),
        Value::Int32(number) => Some(Val::Int32Val(*number)),
        Value::Int64(number) => Some(Val::Int64Val(*number)),
        Value::Float32(number) => Some(Val::FloatVal(*number)),
        Value::Float64(number) => Some(Val::DoubleVal(*number)),
        Value::Bool(flag) => Some(Val::BoolVal(*flag)),
        Value::UnixTimestamp(micros) => Some(Val::UnixTimestampVal(micros_to_timestamp(*micros))),
    };
    pb::Value { val }
}

/// Microseconds since the epoch of a protobuf timestamp (sub-microsecond digits dropped).
pub(crate) fn timestamp_to_micros(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp
        .seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(timestamp.nanos / 1_000))
}

/// The protobuf timestamp of microseconds since the epoch.
pub(crate) fn micros_to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

/// The selection a request names, as references or a service; `field` names the request field in errors.
pub(crate) fn selection_from_proto(
    selection: Option<&pb::FeatureSelection>,
    field: &str,
) -> Result<FeatureRequest, ApiError> {
    match selection.and_then(|selection| selection.selection.as_ref()) {
        Some(pb::feature_selection::Selection::FeatureService(name)) if !name.is_empty() => {
            Ok(FeatureRequest::Service(name.clone()))
        }
        Some(pb::feature_selection::Selection::Features(list)) if !list.refs.is_empty() => {
            Ok(FeatureRequest::Refs(list.refs.clone()))
        }
        _ => Err(ApiError::invalid_argument(
            "FEATURES_REQUIRED",
            format!("`{field}` is required: name a feature service or list feature references `view:feature`"),
        )
        .with_field(field, "required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for value in [
            Value::Null,
            Value::String("a".to_owned()),
            Value::Bytes(vec![0, 1]),
            Value::Int32(-3),
            Value::Int64(1 << 40),
            Value::Float32(0.5),
            Value::Float64(-2.25),
            Value::Bool(true),
            Value::UnixTimestamp(-1_500_001),
            Value::UnixTimestamp(1_700_000_000_123_456),
        ] {
            assert_eq!(value_from_proto(&value_to_proto(&value)), value);
        }
    }

    #[test]
    fn timestamps_before_the_epoch_keep_positive_nanos() {
        let timestamp = micros_to_timestamp(-1);
        assert_eq!(timestamp.seconds, -1);
        assert_eq!(timestamp.nanos, 999_999_000);
        assert_eq!(timestamp_to_micros(&timestamp), -1);
    }
}
