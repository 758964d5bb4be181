//! Errors the gateway's operations return: every API path answers with
//! [`plinth_runtime::error::ApiError`] (one mapping to gRPC status with field details). This module holds
//! the constructors the gateway uses more than once, so the same failure reads the same everywhere.

use plinth_proto::ids::{DatasetName, TopicName};
use plinth_runtime::error::ApiError;

/// The topic has no binding in the gateway.
pub fn topic_not_found(topic: &TopicName) -> ApiError {
    ApiError::not_found(
        "TOPIC_NOT_FOUND",
        format!("topic `{topic}` is not bound through the gateway; create it with `plinth topic create {topic} --value-subject <subject>` or list topics with `plinth topic list`"),
    )
    .with_metadata("topic", topic.as_str())
}

/// The dataset has no lake sink.
pub fn sink_not_found(dataset: &DatasetName) -> ApiError {
    ApiError::not_found(
        "LAKE_SINK_NOT_FOUND",
        format!("dataset `{dataset}` has no lake sink; list sinks with `plinth lake sink list`"),
    )
    .with_metadata("dataset", dataset.as_str())
}
