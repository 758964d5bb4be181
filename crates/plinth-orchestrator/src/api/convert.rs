//! Conversions between the store's records and `plinth.orchestrator.v1` messages, and between
//! `google.protobuf.Struct` and JSON parameter values.

use std::collections::BTreeMap;

use plinth_proto::orchestrator::v1 as pb;
use prost_types::value::Kind;

use crate::domain::pipeline::ParamValue;
use crate::domain::state::{RunState, TaskState};
use crate::store::{AttemptRecord, EventRecord, RunRecord, RunTrigger, TaskRecord};

/// Microseconds since the epoch as a protobuf timestamp.
pub(crate) fn micros_to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

/// A protobuf timestamp as microseconds since the epoch; `None` when out of range.
pub(crate) fn timestamp_to_micros(timestamp: &prost_types::Timestamp) -> Option<i64> {
    timestamp
        .seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(timestamp.nanos) / 1000)
}

pub(crate) fn run_state_to_proto(state: RunState) -> pb::RunState {
    match state {
        RunState::Queued => pb::RunState::Queued,
        RunState::Running => pb::RunState::Running,
        RunState::Succeeded => pb::RunState::Succeeded,
        RunState::Failed => pb::RunState::Failed,
        RunState::Cancelled => pb::RunState::Cancelled,
    }
}

pub(crate) fn run_state_from_proto(state: i32) -> Option<RunState> {
    match pb::RunState::try_from(state).ok()? {
        pb::RunState::Unspecified => None,
        pb::RunState::Queued => Some(RunState::Queued),
        pb::RunState::Running => Some(RunState::Running),
        pb::RunState::Succeeded => Some(RunState::Succeeded),
        pb::RunState::Failed => Some(RunState::Failed),
        pb::RunState::Cancelled => Some(RunState::Cancelled),
    }
}

pub(crate) fn task_state_to_proto(state: TaskState) -> pb::TaskState {
    match state {
        TaskState::Pending => pb::TaskState::Pending,
        TaskState::Queued => pb::TaskState::Queued,
        TaskState::Running => pb::TaskState::Running,
        TaskState::Succeeded => pb::TaskState::Succeeded,
        TaskState::Failed => pb::TaskState::Failed,
        TaskState::UpForRetry => pb::TaskState::UpForRetry,
        TaskState::Skipped => pb::TaskState::Skipped,
        TaskState::UpstreamFailed => pb::TaskState::UpstreamFailed,
        TaskState::Cancelled => pb::TaskState::Cancelled,
    }
}

/// A run (with its tasks when given).
pub(crate) fn run_to_proto(run: &RunRecord, tasks: Vec<pb::TaskRun>) -> pb::Run {
    pb::Run {
        id: run.id.clone(),
        pipeline: run.pipeline.clone(),
        pipeline_version: run.pipeline_version,
        state: run_state_to_proto(run.state).into(),
        trigger: match run.trigger {
            RunTrigger::Schedule => pb::RunTrigger::Schedule,
            RunTrigger::Manual => pb::RunTrigger::Manual,
        }
        .into(),
        logical_date: Some(micros_to_timestamp(run.logical_date)),
        params: Some(params_to_struct(&run.params)),
        create_time: Some(micros_to_timestamp(run.create_time)),
        start_time: run.start_time.map(micros_to_timestamp),
        end_time: run.end_time.map(micros_to_timestamp),
        reason: run.reason.clone(),
        tasks,
        triggered_by: run.triggered_by.clone(),
    }
}

/// A task of a run with its attempts.
pub(crate) fn task_to_proto<'a>(
    task: &TaskRecord,
    attempts: impl Iterator<Item = &'a AttemptRecord>,
    dependencies: Vec<String>,
) -> pb::TaskRun {
    pb::TaskRun {
        name: task.task.clone(),
        uses: task.uses.clone(),
        state: task_state_to_proto(task.state).into(),
        try_number: task.try_number,
        next_attempt_time: task.next_attempt_time.map(micros_to_timestamp),
        reason: task.reason.clone(),
        attempts: attempts
            .map(|attempt| pb::TaskAttempt {
                try_number: attempt.try_number,
                state: task_state_to_proto(attempt.state).into(),
                start_time: Some(micros_to_timestamp(attempt.start_time)),
                end_time: attempt.end_time.map(micros_to_timestamp),
                exit_code: attempt.exit_code,
                reason: attempt.reason.clone(),
                executor_ref: attempt.executor_ref.clone(),
            })
            .collect(),
        dependencies,
    }
}

/// A stored event.
pub(crate) fn event_to_proto(event: &EventRecord) -> pb::RunEvent {
    pb::RunEvent {
        sequence: event.sequence,
        time: Some(micros_to_timestamp(event.time)),
        pipeline: event.pipeline.clone(),
        pipeline_version: event.pipeline_version,
        run_id: event.run_id.clone(),
        task: event.task.clone(),
        try_number: event.try_number,
        run_state: event
            .run_state
            .map_or(pb::RunState::Unspecified, run_state_to_proto)
            .into(),
        task_state: event
            .task_state
            .map_or(pb::TaskState::Unspecified, task_state_to_proto)
            .into(),
        reason: event.reason.clone(),
    }
}

fn json_to_value(json: &serde_json::Value) -> prost_types::Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(value) => Kind::BoolValue(*value),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(text) => Kind::StringValue(text.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields
                .iter()
                .map(|(key, value)| (key.clone(), json_to_value(value)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn value_to_json(value: &prost_types::Value) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(value)) => serde_json::Value::Bool(*value),
        Some(Kind::NumberValue(number)) => {
            // Integral numbers stay integers, so integer parameters accept them.
            if number.fract() == 0.0 && number.abs() < 9.0e15 {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "checked integral and in range"
                )]
                let integer = *number as i64;
                serde_json::Value::from(integer)
            } else {
                serde_json::Number::from_f64(*number)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Some(Kind::StringValue(text)) => serde_json::Value::String(text.clone()),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(fields)) => serde_json::Value::Object(
            fields
                .fields
                .iter()
                .map(|(key, value)| (key.clone(), value_to_json(value)))
                .collect(),
        ),
    }
}

/// A `Struct` as JSON values by key.
pub(crate) fn struct_to_json(fields: &prost_types::Struct) -> BTreeMap<String, serde_json::Value> {
    fields
        .fields
        .iter()
        .map(|(key, value)| (key.clone(), value_to_json(value)))
        .collect()
}

/// JSON values by key as a `Struct`.
pub(crate) fn json_to_struct(values: &BTreeMap<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: values
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect(),
    }
}

/// A run's parameters as a `Struct`.
pub(crate) fn params_to_struct(params: &BTreeMap<String, ParamValue>) -> prost_types::Struct {
    let json: BTreeMap<String, serde_json::Value> = params
        .iter()
        .map(|(key, value)| {
            (
                key.clone(),
                serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    json_to_struct(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_numbers_come_back_as_integers() {
        let mut params = BTreeMap::new();
        params.insert("epochs".to_owned(), serde_json::json!(10));
        params.insert("alpha".to_owned(), serde_json::json!(0.5));
        params.insert("name".to_owned(), serde_json::json!("x"));
        let back = struct_to_json(&json_to_struct(&params));
        assert_eq!(back, params);
    }

    #[test]
    fn timestamps_round_trip() {
        for micros in [0, 1, -1, 1_700_000_000_123_456] {
            assert_eq!(
                timestamp_to_micros(&micros_to_timestamp(micros)),
                Some(micros)
            );
        }
    }
}
