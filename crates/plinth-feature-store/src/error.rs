//! Errors as the client sees them: every API path answers with [`plinth_runtime::error::ApiError`]
//! (one mapping to gRPC status and HTTP, with field details). This module maps the feature store's own
//! error types into it, once, so the same failure reads the same over gRPC and HTTP.

use plinth_runtime::error::ApiError;

use crate::domain::selection::SelectionError;
use crate::online::OnlineError;

/// A selection that does not resolve: unknown names are NOT_FOUND, malformed requests INVALID_ARGUMENT,
/// a view not declared for this use FAILED_PRECONDITION.
pub fn selection(err: SelectionError) -> ApiError {
    let message = err.to_string();
    match err {
        SelectionError::Empty => ApiError::invalid_argument("FEATURES_REQUIRED", message)
            .with_field("features", "required"),
        SelectionError::UnknownService { name, .. } => {
            ApiError::not_found("FEATURE_SERVICE_NOT_FOUND", message)
                .with_metadata("feature_service", name)
        }
        SelectionError::BadReference { reference } => {
            ApiError::invalid_argument("BAD_FEATURE_REFERENCE", message)
                .with_field("features", format!("`{reference}` is not `view:feature`"))
        }
        SelectionError::UnknownView { view, .. } => {
            ApiError::not_found("FEATURE_VIEW_NOT_FOUND", message)
                .with_metadata("feature_view", view)
        }
        SelectionError::UnknownFeature { view, feature, .. } => {
            ApiError::not_found("FEATURE_NOT_FOUND", message)
                .with_metadata("feature_view", view)
                .with_metadata("feature", feature)
        }
        SelectionError::NotAvailable { view, .. } => {
            ApiError::failed_precondition("FEATURE_VIEW_NOT_AVAILABLE", message)
                .with_metadata("feature_view", view)
        }
        SelectionError::NameCollision { feature, .. } => {
            ApiError::invalid_argument("FEATURE_NAME_COLLISION", message)
                .with_field("full_feature_names", format!("`{feature}` is ambiguous"))
        }
    }
}

/// An online store failure: an unreachable store is UNAVAILABLE (retry), anything else is internal and
/// logged.
pub fn online(err: OnlineError) -> ApiError {
    match &err {
        OnlineError::Unavailable { .. } => {
            ApiError::unavailable("ONLINE_STORE_UNAVAILABLE", err.to_string())
        }
        OnlineError::Corrupt { .. } => {
            ApiError::failed_precondition("ONLINE_ROW_CORRUPT", err.to_string())
        }
        OnlineError::Unencodable { .. } => {
            ApiError::invalid_argument("ONLINE_ROW_TOO_LARGE", err.to_string())
        }
        OnlineError::Backend { .. } => ApiError::internal(err),
    }
}

/// An offline failure: bad entity input is INVALID_ARGUMENT, data that does not fit its definition
/// FAILED_PRECONDITION, an unreachable store UNAVAILABLE, an existing output ALREADY_EXISTS.
pub fn offline(err: crate::offline::OfflineError) -> ApiError {
    use crate::offline::OfflineError;
    let message = err.to_string();
    match err {
        OfflineError::Selection(selection_err) => selection(selection_err),
        OfflineError::MissingEntityColumn { column, .. }
        | OfflineError::EntityColumnType { column, .. } => {
            ApiError::invalid_argument("ENTITY_COLUMN_INVALID", message)
                .with_field(format!("entities.{column}"), "see the message")
        }
        OfflineError::OutputColumnCollision { column } => {
            ApiError::invalid_argument("OUTPUT_COLUMN_COLLISION", message).with_field(
                format!("entities.{column}"),
                "collides with a feature column",
            )
        }
        OfflineError::Join(_) => ApiError::invalid_argument("TRAINING_SET_INPUT_INVALID", message),
        OfflineError::OutputExists { url } => {
            ApiError::already_exists("OUTPUT_EXISTS", message).with_metadata("url", url)
        }
        OfflineError::NoFiles { .. }
        | OfflineError::TimestampColumnMissing { .. }
        | OfflineError::SourceColumnType { .. }
        | OfflineError::ViewUnusable { .. } => {
            ApiError::failed_precondition("SOURCE_DATA_INVALID", message)
        }
        OfflineError::Location { .. } => ApiError::failed_precondition("LOCATION_INVALID", message),
        OfflineError::SourceUnreadable { .. } | OfflineError::OutputUnwritable { .. } => {
            ApiError::unavailable("LAKE_UNAVAILABLE", message)
        }
        OfflineError::Cancelled => ApiError::unavailable("CANCELLED", message),
        OfflineError::Scratch { .. } | OfflineError::Arrow(_) => ApiError::internal(message),
    }
}
