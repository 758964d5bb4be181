//! The platform tasks against a real feature store in this process and an Open Inference Protocol
//! server standing in for model serving (see `support`), one module per task type.

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::*;
use crate::domain::pipeline::TaskKind;

mod batch_score;
mod deploy;
mod feature_store;
mod model_repository;
mod support;
mod tensor;

/// 2026-01-01T00:00:00Z.
const T0_SECONDS: i64 = 1_767_225_600;

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn interval() -> DataInterval {
    DataInterval {
        start: time(T0_SECONDS),
        end: time(T0_SECONDS + 24 * 3600),
    }
}

/// A cancel signal that never turns true (its sender is dropped, which must not read as a cancel).
fn never_cancelled() -> watch::Receiver<bool> {
    watch::channel(false).1
}

fn failure(result: Result<impl std::fmt::Debug, TaskError>) -> (String, bool) {
    match result {
        Err(TaskError::Failed { message, retryable }) => (message, retryable),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn deploy_task(model: &str, version: &str) -> TaskKind {
    TaskKind::DeployModel {
        model: model.to_owned(),
        version: version.to_owned(),
    }
}
